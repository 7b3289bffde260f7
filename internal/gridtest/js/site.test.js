// A test as users of herd run write them: Node's test runner and the official
// JavaScript bindings. The grid comes from SELENIUM_REMOTE_URL (read by
// selenium-webdriver itself), the site from HERD_TARGET.
//
//   herd run --targets sites.txt -- node --test --test-reporter=junit \
//     --test-reporter-destination={report} site.test.js
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { Builder, By } = require('selenium-webdriver')
const chrome = require('selenium-webdriver/chrome')

let driver

test.before(async () => {
  driver = await new Builder().forBrowser('chrome').setChromeOptions(new chrome.Options()).build()
  await driver.get(process.env.HERD_TARGET)
})

test.after(async () => {
  if (driver) await driver.quit()
})

test('page has a title', async () => {
  const title = await driver.getTitle()
  assert.notEqual(title, '')
  if (title === 'hold') await driver.sleep(60000) // for interrupt tests
})

test('page has a heading', async () => {
  const h1 = await driver.findElement(By.css('h1'))
  assert.match(await h1.getText(), /\S/)
})
