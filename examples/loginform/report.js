// Prints the accuracy table from check results (JSON lines):
//   node report.js RESULTS... [--minutes M] [--misses]
// RESULTS are .jsonl files or folders of them; a page checked more than once
// counts once (its last result). --minutes gives the wall time for a
// pages-per-minute figure; --misses lists every wrong page.
'use strict'

const fs = require('node:fs')
const path = require('node:path')

const args = process.argv.slice(2)
const flag = (name) => args.includes('--' + name)
const value = (name) => {
  const i = args.indexOf('--' + name)
  return i >= 0 ? args[i + 1] : undefined
}
const inputs = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1] === '--minutes'))

const byURL = new Map()
for (const input of inputs) {
  const files = fs.statSync(input).isDirectory() ? fs.readdirSync(input).filter((f) => f.endsWith('.jsonl')).map((f) => path.join(input, f)) : [input]
  for (const f of files) {
    for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
      if (line.trim()) {
        const r = JSON.parse(line)
        byURL.set(r.url, r)
      }
    }
  }
}

const LANGS = { ru: 'ru', ua: 'uk', de: 'de', at: 'de', fr: 'fr', es: 'es', it: 'it', br: 'pt', pt: 'pt', jp: 'ja', cn: 'zh', tw: 'zh', kr: 'ko', pl: 'pl', nl: 'nl', cz: 'cs', hu: 'hu', vn: 'vi', tr: 'tr', se: 'sv', ro: 'ro', ir: 'fa', in: 'en', uk: 'en', us: 'en', au: 'en', ca: 'en' }
const language = (r) => r.lang || LANGS[r.tld] || (['com', 'net', 'org', 'edu', 'gov', 'io', 'info'].includes(r.tld) ? 'en?' : '?')

function tally(rows) {
  const t = { pos: 0, neg: 0, fp: 0, errors: 0, form: 0 }
  for (const f of ['username', 'password', 'submit']) t[f] = { ok: 0, n: 0 }
  for (const r of rows) {
    if (r.error) {
      t.errors++
      if (!r.positive) continue
    }
    if (!r.positive) {
      t.neg++
      if (r.found) t.fp++
      continue
    }
    t.pos++
    let all = !r.error
    for (const f of ['username', 'password', 'submit']) {
      const fr = r.fields && r.fields[f]
      if (r.error) {
        t[f].n++
        continue
      }
      if (!fr) continue
      t[f].n++
      if (fr.ok) t[f].ok++
      else all = false
    }
    if (all) t.form++
  }
  return t
}

const pct = (ok, n) => (n ? ((100 * ok) / n).toFixed(1) + '%' : '—')
const row = (name, t) =>
  `| ${name} | ${t.pos} | ${pct(t.username.ok, t.username.n)} (${t.username.n}) | ${pct(t.password.ok, t.password.n)} (${t.password.n}) | ${pct(t.submit.ok, t.submit.n)} (${t.submit.n}) | ${pct(t.form, t.pos)} | ${t.neg} | ${pct(t.fp, t.neg)} |`

const rows = [...byURL.values()]
console.log('| corpus | pages with a login form | username | password | submit | form (all labelled fields) | pages without | false positives |')
console.log('|---|---|---|---|---|---|---|---|')
const groups = [
  ['both corpora', () => true],
  ['Fathom (all)', (r) => r.corpus === 'fathom'],
  ['Fathom training', (r) => r.corpus === 'fathom' && r.split === 'training'],
  ['Fathom validation', (r) => r.corpus === 'fathom' && r.split === 'validation'],
  ['Formasaurus (all)', (r) => r.corpus === 'formasaurus'],
]
for (const [name, pick] of groups) {
  const sel = rows.filter(pick)
  if (sel.length) console.log(row(name, tally(sel)))
}
const langs = {}
for (const r of rows.filter((r) => r.corpus === 'formasaurus')) (langs[language(r)] ||= []).push(r)
for (const [lang, sel] of Object.entries(langs).sort((a, b) => b[1].length - a[1].length)) {
  if (sel.some((r) => r.positive)) console.log(row(`Formasaurus, language ${lang}`, tally(sel)))
}
const errors = rows.filter((r) => r.error).length
const minutes = Number(value('minutes'))
console.log(`\n${rows.length} pages${errors ? `, ${errors} could not be checked` : ''}` + (minutes ? `; ${(rows.length / minutes).toFixed(0)} pages per minute` : ''))
const ms = rows.filter((r) => r.ms != null).map((r) => r.ms).sort((a, b) => a - b)
if (ms.length) console.log(`detector time per page: p50 ${ms[ms.length >> 1].toFixed(1)} ms, p95 ${ms[Math.floor(ms.length * 0.95)].toFixed(1)} ms`)

if (flag('misses')) {
  for (const r of rows) {
    const wrong = r.error || (r.positive ? !r.found || Object.values(r.fields || {}).some((f) => !f.ok) : r.found)
    if (!wrong) continue
    const fields = Object.entries(r.fields || {}).filter(([, f]) => !f.ok).map(([k, f]) => `${k}: want ${f.want}, got ${r.detected[k] || 'nothing'}`)
    console.log(`MISS ${r.url} ${r.positive ? 'login' : 'no login'} found=${r.found} ${r.error || ''} ${fields.join('; ')} (${r.reason})`)
  }
}
