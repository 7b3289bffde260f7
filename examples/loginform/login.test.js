// The login-form suite for herd run: opens each target page, runs the
// detector in it, and checks what it found against the page's labels. One
// browser session serves all the targets of a chunk (herd run --batch).
//
//   herd run --targets targets.txt --batch 5 -- node --test --test-reporter=junit \
//     --test-reporter-destination={report} examples/loginform/login.test.js
//
// Environment: HERD_TARGETS (from herd run), SELENIUM_REMOTE_URL (the grid,
// read by selenium-webdriver), LOGINFORM_LABELS (labels.json, from
// prepare.js), LOGINFORM_RESULTS (optional: a folder for one JSON line per
// page, which report.js turns into the accuracy table).
'use strict'

const fs = require('node:fs')
const path = require('node:path')
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { check, newDriver, loadLabels } = require('./check')

const targets = fs
  .readFileSync(process.env.HERD_TARGETS, 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => {
    const [url, ...name] = l.trim().split(/\s+/)
    return { url, name: name.join(' ') || url }
  })
const labels = loadLabels()
const resultsDir = process.env.LOGINFORM_RESULTS
const resultsFile = resultsDir && path.join(resultsDir, `chunk-${process.env.HERD_CHUNK || 0}-${process.env.HERD_ATTEMPT || 1}.jsonl`)

let driver
before(async () => {
  driver = await newDriver()
  if (resultsDir) fs.mkdirSync(resultsDir, { recursive: true })
})
after(async () => {
  if (driver) await driver.quit()
})

for (const target of targets) {
  const want = labels[target.url]
  describe(target.name, () => {
    let got
    before(async () => {
      got = await check(driver, target.url, want || { corpus: 'unlabelled', positive: null, loginForms: [] })
      if (resultsFile) fs.appendFileSync(resultsFile, JSON.stringify(got) + '\n')
    })

    if (!want) {
      it('runs the detector', () => assert.equal(got.error, undefined))
    } else if (!want.positive) {
      it('finds no login form', () => assert.equal(got.found, false, `found one: ${JSON.stringify(got.detected)} (${got.reason})`))
    } else {
      for (const [field, what] of [['username', 'username field'], ['password', 'password field'], ['submit', 'submit button']]) {
        it(`finds the ${what}`, (t) => {
          assert.equal(got.error, undefined)
          const f = got.fields[field]
          if (!f) return t.skip(`no ${field} labelled on this page`)
          assert.ok(f.ok, `want ${f.want}, got ${got.detected[field] || 'nothing'} (${got.reason})`)
        })
      }
    }
  })
}
