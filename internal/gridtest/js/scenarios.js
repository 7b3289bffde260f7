// WebDriver scenarios run with the official JavaScript bindings
// (selenium-webdriver) against a grid.
//
// Usage: node scenarios.js GRID_URL PAGES_URL
// Prints "ok <name>" per passed scenario; exits non-zero on the first failure.
'use strict'

const assert = require('node:assert/strict')
const { Builder, By, until } = require('selenium-webdriver')
const chrome = require('selenium-webdriver/chrome')

async function navigation(d, pages) {
  await d.get(pages + '/form.html')
  assert.equal(await d.getTitle(), 'Form page')
  await d.get(pages + '/other.html')
  await d.navigate().back()
  assert.equal(await d.getTitle(), 'Form page')
  await d.navigate().forward()
  assert.match(await d.getCurrentUrl(), /other\.html$/)
  await d.navigate().refresh()
}

async function elements(d, pages) {
  await d.get(pages + '/form.html')
  const user = await d.findElement(By.id('user'))
  await user.sendKeys('alice')
  assert.equal(await user.getAttribute('value'), 'alice')
  assert.equal((await d.findElements(By.css('input'))).length, 3)
  await d.findElement(By.id('go')).click()
  await d.wait(until.elementTextIs(d.findElement(By.id('out')), 'hello alice'), 5000)
}

async function scripts(d, pages) {
  await d.get(pages + '/form.html')
  assert.equal(await d.executeScript('return 6 * 7'), 42)
  assert.equal(await d.executeScript('return arguments[0] + arguments[1]', 2, 3), 5)
  const later = await d.executeAsyncScript('const done = arguments[arguments.length - 1]; setTimeout(() => done("later"), 50)')
  assert.equal(later, 'later')
}

async function screenshot(d, pages) {
  await d.get(pages + '/form.html')
  const png = Buffer.from(await d.takeScreenshot(), 'base64')
  assert.ok(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) && png.length > 1000, 'not a PNG')
}

async function framesAndWindows(d, pages) {
  await d.get(pages + '/frames.html')
  await d.switchTo().frame(d.findElement(By.id('inner')))
  await d.findElement(By.id('user'))
  await d.switchTo().defaultContent()
  const main = await d.getWindowHandle()
  await d.switchTo().newWindow('tab')
  await d.get(pages + '/other.html')
  assert.equal((await d.getAllWindowHandles()).length, 2)
  await d.close()
  await d.switchTo().window(main)
  assert.equal(await d.getTitle(), 'Frames page')
}

async function alerts(d, pages) {
  await d.get(pages + '/form.html')
  await d.findElement(By.id('alert')).click()
  const alert = await d.wait(until.alertIsPresent(), 5000)
  assert.equal(await alert.getText(), 'careful')
  await alert.accept()
}

async function actions(d, pages) {
  await d.get(pages + '/form.html')
  const box = await d.findElement(By.id('user'))
  await d.actions().click(box).sendKeys('bob').perform()
  assert.equal(await box.getAttribute('value'), 'bob')
}

async function cookies(d, pages) {
  await d.get(pages + '/form.html')
  await d.manage().addCookie({ name: 'flavour', value: 'oat' })
  assert.equal((await d.manage().getCookie('flavour')).value, 'oat')
  await d.manage().deleteAllCookies()
  assert.equal((await d.manage().getCookies()).length, 0)
}

// CDP over the hub's WebSocket (SELENIUM_REMOTE_URL makes the bindings use
// ws://<grid>/session/<id>/se/cdp).
async function cdp(d, pages) {
  await d.get(pages + '/form.html')
  const conn = await d.createCDPConnection('page')
  const reply = await conn.send('Browser.getVersion', {})
  assert.match(reply.result.product, /Chrome/)
}

// BiDi over the hub's WebSocket (webSocketUrl rewritten to the hub).
async function bidi(d) {
  const caps = await d.getCapabilities()
  assert.match(caps.get('webSocketUrl'), /\/se\/bidi$/)
  const conn = await d.getBidi()
  const status = await conn.status
  assert.equal(typeof status.result.ready, 'boolean')
  await conn.close()
}

const SCENARIOS = { navigation, elements, scripts, screenshot, framesAndWindows, alerts, actions, cookies, cdp, bidi }

async function main() {
  const [grid, pages] = process.argv.slice(2)
  process.env.SELENIUM_REMOTE_URL = grid
  // With BiDi on, chromedriver would dismiss the alert scenario's prompt.
  const options = new chrome.Options().enableBidi().setAlertBehavior('ignore')
  const d = await new Builder().forBrowser('chrome').setChromeOptions(options).usingServer(grid).build()
  try {
    for (const [name, scenario] of Object.entries(SCENARIOS)) {
      await scenario(d, pages)
      console.log('ok', name)
    }
  } finally {
    await d.quit()
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
