// Writes the evaluation's targets file and labels from the corpora in
// ../shared/data (read in place, never copied):
//   node prepare.js --data DIR --base URL --out DIR [--limit N]
// DIR is the folder herd serve-dir serves at URL; it holds formasaurus/ and
// fathom-login/. Writes OUT/targets.txt (URL and a display name a line) and
// OUT/labels.json (labels per URL).
'use strict'

const fs = require('node:fs')
const path = require('node:path')

function arg(name, def) {
  const i = process.argv.indexOf('--' + name)
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1]
  if (def === undefined) throw new Error('missing --' + name)
  return def
}

const data = arg('data')
const base = arg('base').replace(/\/$/, '')
const out = arg('out')
const limit = Number(arg('limit', '0'))

const labels = {}
const lines = []

// Formasaurus: form types per <form> in document order, field types keyed
// by input name. Pages whose forms are all annotated and none is a login
// form are the negatives; pages with unannotated forms and no login form
// are left out (an unannotated form may be a login form).
const fdir = path.join(data, 'formasaurus', 'data')
const index = JSON.parse(fs.readFileSync(path.join(fdir, 'index.json'), 'utf8'))
const USERNAME = new Set(['us', 'ue', 'e1'])
for (const [file, page] of Object.entries(index)) {
  const loginForms = []
  page.forms.forEach((type, i) => {
    if (type !== 'l') return
    const f = { index: i, username: [], password: [], submit: [] }
    for (const [name, t] of Object.entries(page.visible_html_fields[i] || {})) {
      if (USERNAME.has(t)) f.username.push(name)
      if (t === 'p1') f.password.push(name)
      if (t === 'Bs') f.submit.push(name)
    }
    loginForms.push(f)
  })
  const unknown = page.forms.some((t) => t === 'X' || t === '-')
  if (!loginForms.length && unknown) continue
  const url = `${base}/formasaurus/data/${file}`
  let tld = ''
  try {
    tld = new URL(page.url).hostname.split('.').pop()
  } catch {}
  labels[url] = { corpus: 'formasaurus', positive: loginForms.length > 0, loginForms, tld }
  lines.push(`${url} formasaurus/${path.basename(file, '.html')}`)
}

// Fathom: labels are data-fathom attributes, read in the page.
for (const split of ['training', 'validation']) {
  for (const file of fs.readdirSync(path.join(data, 'fathom-login', split)).sort()) {
    if (!file.endsWith('.html')) continue
    const html = fs.readFileSync(path.join(data, 'fathom-login', split, file), 'latin1')
    const url = `${base}/fathom-login/${split}/${file}`
    labels[url] = { corpus: 'fathom', split, positive: /data-fathom="(username|password|next)"/.test(html) }
    lines.push(`${url} fathom/${split}/${path.basename(file, '.html')}`)
  }
}

const picked = limit > 0 ? lines.filter((_, i) => i % Math.ceil(lines.length / limit) === 0) : lines
fs.mkdirSync(out, { recursive: true })
fs.writeFileSync(path.join(out, 'targets.txt'), picked.join('\n') + '\n')
fs.writeFileSync(path.join(out, 'labels.json'), JSON.stringify(labels))
const pos = picked.filter((l) => labels[l.split(' ')[0]].positive).length
console.error(`prepare: ${picked.length} pages (${pos} with a login form, ${picked.length - pos} without) in ${out}/targets.txt`)
