"""A line-driven Selenium client: lets a Go test act, step by step, as a
user of the official Python bindings would.

Usage: client.py GRID_URL
Reads one command a line on stdin and answers one line on stdout:
  new [browserName]   start a session (default chrome)  -> ok <session id>
  get URL             navigate                          -> ok
  title               the page's title                  -> ok <title>
  quit                end the session                   -> ok
A failure answers: error <exception class>: <message>
"""
import sys

from selenium import webdriver


def run(driver, grid, cmd, arg):
    if cmd == "new":
        options = webdriver.ChromeOptions()
        if arg:
            options.set_capability("browserName", arg)
        driver = webdriver.Remote(command_executor=grid, options=options)
        return driver, driver.session_id
    if driver is None:
        raise RuntimeError("no session: send new first")
    if cmd == "get":
        driver.get(arg)
        return driver, ""
    if cmd == "title":
        return driver, driver.title
    if cmd == "quit":
        driver.quit()
        return None, ""
    raise ValueError("unknown command %r" % cmd)


def main():
    grid = sys.argv[1]
    driver = None
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        try:
            driver, out = run(driver, grid, cmd, arg)
            print("ok", out, flush=True)
        except Exception as e:  # every failure is the answer, not a crash
            print("error %s: %s" % (type(e).__name__, " ".join(str(e).split())), flush=True)


if __name__ == "__main__":
    main()
