// A line-driven Selenium client: lets a Go test act, step by step, as a user
// of the official JavaScript bindings (selenium-webdriver) would.
//
// Usage: node client.js GRID_URL
// Reads one command a line on stdin and answers one line on stdout:
//   new [browserName]   start a session (default chrome)  -> ok <session id>
//   get URL             navigate                          -> ok
//   title               the page's title                  -> ok <title>
//   quit                end the session                   -> ok
// A failure answers: error <error class>: <message>
'use strict'

const readline = require('node:readline')
const { Builder } = require('selenium-webdriver')
const chrome = require('selenium-webdriver/chrome')

async function run(state, grid, cmd, arg) {
  if (cmd === 'new') {
    state.driver = await new Builder().forBrowser(arg || 'chrome').setChromeOptions(new chrome.Options()).usingServer(grid).build()
    return (await state.driver.getSession()).getId()
  }
  if (!state.driver) throw new Error('no session: send new first')
  switch (cmd) {
    case 'get':
      await state.driver.get(arg)
      return ''
    case 'title':
      return await state.driver.getTitle()
    case 'quit':
      await state.driver.quit()
      state.driver = null
      return ''
  }
  throw new Error('unknown command ' + cmd)
}

async function main() {
  const grid = process.argv[2]
  const state = { driver: null }
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const [cmd, ...rest] = line.trim().split(' ')
    try {
      console.log('ok ' + (await run(state, grid, cmd, rest.join(' '))))
    } catch (e) {
      console.log('error ' + e.name + ': ' + String(e.message).split(/\s+/).join(' '))
    }
  }
}

main()
