// Runs the detector on the page a WebDriver session shows and compares what
// it found with the page's labels. Shared by login.test.js (one page per
// herd run chunk) and sequential.js (every page in one browser).
'use strict'

const fs = require('node:fs')
const path = require('node:path')
const { Builder } = require('selenium-webdriver')
const chrome = require('selenium-webdriver/chrome')
const { detectLoginForm } = require('./detector')

const keywords = JSON.parse(fs.readFileSync(path.join(__dirname, 'keywords.json'), 'utf8'))

// Runs in the page: finds the labelled elements, removes Fathom's labels
// (so the detector cannot see them), runs the detector, compares.
function checkInPage(labels, K, detect) {
  const doc = document
  const describeEl = (el) => el && [el.tagName.toLowerCase(), el.getAttribute('type'), el.getAttribute('name'), el.id].filter(Boolean).join(' ')
  let expected = null
  if (labels.corpus === 'fathom') {
    const pick = (v) => doc.querySelector('[data-fathom="' + v + '"]')
    expected = { username: pick('username'), password: pick('password'), submit: pick('next') }
    for (const el of doc.querySelectorAll('[data-fathom]')) el.removeAttribute('data-fathom')
  }
  const t0 = performance.now()
  const r = detect(doc, K)
  const ms = performance.now() - t0
  const fields = ['username', 'password', 'submit']
  const out = { found: r.found, step: r.step, confidence: r.confidence, reason: r.reason, ms, lang: ((doc.documentElement.getAttribute('lang') || '').toLowerCase().match(/^[a-z]{2,3}\b/) || [''])[0] }
  out.detected = {}
  for (const f of fields) out.detected[f] = describeEl(r[f])
  out.fields = {}
  if (labels.corpus === 'fathom') {
    for (const f of fields) {
      if (expected[f]) out.fields[f] = { ok: r[f] === expected[f], want: describeEl(expected[f]) }
    }
  } else {
    // The labelled login form holding what the detector found, else the
    // first. Formasaurus counted forms with lxml, which keeps nested forms
    // the browser drops, so a form is found by its index only when its
    // fields' names agree, else by those names.
    // Not doc.forms: a <form name="forms"> shadows it (named properties
    // override a document's own).
    const forms = Array.from(doc.querySelectorAll('form'))
    const elementsOf = Object.getOwnPropertyDescriptor(HTMLFormElement.prototype, 'elements').get
    const namesOf = (form) => new Set(Array.from(elementsOf.call(form)).map((el) => el.getAttribute('name')))
    const holds = (form, lf) => [...lf.username, ...lf.password].every((n) => namesOf(form).has(n))
    const cands = labels.loginForms
      .map((lf) => ({ lf, form: forms[lf.index] && holds(forms[lf.index], lf) ? forms[lf.index] : forms.find((f) => holds(f, lf)) }))
      .filter((x) => x.form)
    const inForm = (el, form) => el && (el.form === form || form.contains(el))
    const chosen = cands.find((x) => inForm(r.password, x.form) || inForm(r.username, x.form)) || cands[0] || (labels.loginForms.length ? { lf: labels.loginForms[0], form: null } : null)
    if (chosen) {
      for (const f of fields) {
        const names = chosen.lf[f]
        if (!names.length) continue
        const el = r[f]
        out.fields[f] = { ok: !!el && !!chosen.form && inForm(el, chosen.form) && names.includes(el.getAttribute('name')), want: names.join('|') }
      }
    }
  }
  return out
}

const script = `${detectLoginForm.toString()}\nreturn (${checkInPage.toString()})(arguments[0], arguments[1], detectLoginForm)`

// check loads url in driver and returns the comparison for its labels; a
// page that cannot be loaded or checked gives a record with its error.
async function check(driver, url, labels) {
  try {
    const start = Date.now()
    await driver.get(url)
    const refreshes = await driver.executeScript('return location.href !== arguments[0] || !!document.querySelector(\'meta[http-equiv="refresh" i]\')', url)
    if (refreshes) await loadAsSaved(driver, url)
    const loaded = Date.now()
    const res = await driver.executeScript(script, labels, keywords)
    return { url, corpus: labels.corpus, split: labels.split, positive: labels.positive, tld: labels.tld, loadMs: loaded - start, ...res }
  } catch (e) {
    return { url, ...labels, error: String(e.message).slice(0, 300) }
  }
}

// loadAsSaved shows the page at url as it was saved, for snapshots that send
// the browser elsewhere with a <meta http-equiv="refresh"> (with scripts
// off, a <noscript> refresh to a "please enable JavaScript" page fires): the
// same HTML without the refresh, from a data: URL, with a <base> so its
// relative links still point where they did.
async function loadAsSaved(driver, url) {
  const html = await (await fetch(url)).text()
  const cleaned = html.replace(/<meta[^>]*http-equiv\s*=\s*["']?refresh[^>]*>/gi, '').replace(/<head[^>]*>/i, (h) => `${h}<base href="${url}">`)
  await driver.get('data:text/html;charset=utf-8;base64,' + Buffer.from(cleaned).toString('base64'))
}

// newDriver starts a browser session with browserOptions, on server when
// given, else where SELENIUM_REMOTE_URL points (or a local driver).
async function newDriver(server) {
  let builder = new Builder().forBrowser('chrome').setChromeOptions(browserOptions())
  if (server) builder = builder.usingServer(server)
  const driver = await builder.build()
  await driver.manage().setTimeouts({ pageLoad: 20000, script: 20000 })
  return driver
}

// The browser options every evaluation uses: Fathom's viewport, no network
// beyond loopback (the corpora's pages reference the live web), and the
// pages' own scripts off. The corpora are saved snapshots labelled as saved
// (Fathom's pages forbid their scripts with a CSP already); their scripts
// would only fail against the dead network. The detector itself runs
// through WebDriver, which page settings do not stop.
function browserOptions() {
  const options = new chrome.Options()
    .addArguments('--window-size=1100,900', '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1')
    .setUserPreferences({ 'profile.managed_default_content_settings.javascript': 2 })
    .setPageLoadStrategy('eager')
  options.set('unhandledPromptBehavior', 'dismiss')
  return options
}

function loadLabels() {
  const file = process.env.LOGINFORM_LABELS
  if (!file) throw new Error('LOGINFORM_LABELS is not set: run prepare.js and point it at labels.json')
  return JSON.parse(fs.readFileSync(file, 'utf8'))
}

module.exports = { check, newDriver, browserOptions, loadLabels, keywords }
