// Runs the check on every target in one browser, one page after another:
// the baseline herd run is compared with, and a quick loop for working on
// the detector.
//   LOGINFORM_LABELS=labels.json node sequential.js TARGETS RESULTS.jsonl [WEBDRIVER_URL]
'use strict'

const fs = require('node:fs')
const { Builder } = require('selenium-webdriver')
const { check, browserOptions, loadLabels } = require('./check')

async function main() {
  const [targetsFile, resultsFile, server] = process.argv.slice(2)
  const labels = loadLabels()
  const targets = fs.readFileSync(targetsFile, 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#')).map((l) => l.split(/\s+/)[0])
  let builder = new Builder().forBrowser('chrome').setChromeOptions(browserOptions())
  if (server) builder = builder.usingServer(server)
  const driver = await builder.build()
  await driver.manage().setTimeouts({ pageLoad: 20000, script: 20000 })
  const out = fs.createWriteStream(resultsFile)
  const start = Date.now()
  try {
    for (const url of targets) {
      try {
        out.write(JSON.stringify(await check(driver, url, labels[url])) + '\n')
      } catch (e) {
        out.write(JSON.stringify({ url, ...labels[url], error: String(e.message).slice(0, 300) }) + '\n')
      }
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
