// Runs the check on every target in one browser, one page after another:
// the baseline herd run is compared with, and a quick loop for working on
// the detector.
//   LOGINFORM_LABELS=labels.json node sequential.js TARGETS RESULTS.jsonl [WEBDRIVER_URL]
'use strict'

const fs = require('node:fs')
const { check, newDriver, loadLabels } = require('./check')

async function main() {
  const [targetsFile, resultsFile, server] = process.argv.slice(2)
  const labels = loadLabels()
  const targets = fs.readFileSync(targetsFile, 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#')).map((l) => l.split(/\s+/)[0])
  const driver = await newDriver(server)
  const out = fs.createWriteStream(resultsFile)
  const start = Date.now()
  try {
    for (const url of targets) {
      out.write(JSON.stringify(await check(driver, url, labels[url])) + '\n')
    }
  } finally {
    await driver.quit()
    out.end()
  }
  const minutes = (Date.now() - start) / 60000
  console.error(`sequential: ${targets.length} pages in ${(minutes * 60).toFixed(1)} s, ${(targets.length / minutes).toFixed(1)} pages/min`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
