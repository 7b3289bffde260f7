"""WebDriver scenarios run with the official Python bindings against a grid.

Usage: scenarios.py GRID_URL PAGES_URL [SCENARIO ...]
Prints "ok <name>" per passed scenario; exits non-zero on the first failure.
Run with Debian's /usr/bin/python3 (python3-selenium).
"""
import base64
import sys
import time

from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.chromium.remote_connection import ChromiumRemoteConnection
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def new_driver(grid):
    options = webdriver.ChromeOptions()
    # Chromium's connection knows the goog/cdp commands; the remote driver is
    # what a grid client uses.
    executor = ChromiumRemoteConnection(grid, "goog", "chrome", keep_alive=True)
    return webdriver.Remote(command_executor=executor, options=options)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def navigation(d, pages):
    d.get(pages + "/form.html")
    check(d.title == "Form page", "title %r" % d.title)
    d.get(pages + "/other.html")
    check(d.title == "Other page", "title %r" % d.title)
    d.back()
    check(d.title == "Form page", "back: title %r" % d.title)
    d.forward()
    check(d.current_url.endswith("/other.html"), "forward: url %r" % d.current_url)
    d.refresh()


def elements(d, pages):
    d.get(pages + "/form.html")
    user = d.find_element(By.ID, "user")
    user.send_keys("alice")
    check(user.get_attribute("value") == "alice", "typed value")
    inputs = d.find_elements(By.CSS_SELECTOR, "input")
    check(len(inputs) == 3, "%d inputs" % len(inputs))
    d.find_element(By.ID, "go").click()
    WebDriverWait(d, 5).until(lambda d: d.find_element(By.ID, "out").text == "hello alice")


def scripts(d, pages):
    d.get(pages + "/form.html")
    check(d.execute_script("return 6 * 7;") == 42, "sync script")
    check(d.execute_script("return arguments[0] + arguments[1];", 2, 3) == 5, "script args")
    got = d.execute_async_script("var done = arguments[arguments.length - 1]; setTimeout(function () { done('later'); }, 50);")
    check(got == "later", "async script %r" % got)


def screenshot(d, pages):
    d.get(pages + "/form.html")
    png = base64.b64decode(d.get_screenshot_as_base64())
    check(png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000, "screenshot is not a PNG")


def frames_and_windows(d, pages):
    d.get(pages + "/frames.html")
    d.switch_to.frame(d.find_element(By.ID, "inner"))
    check(d.find_element(By.ID, "user") is not None, "element inside frame")
    d.switch_to.default_content()
    main = d.current_window_handle
    d.switch_to.new_window("tab")
    d.get(pages + "/other.html")
    check(len(d.window_handles) == 2, "two windows")
    d.close()
    d.switch_to.window(main)
    check(d.title == "Frames page", "back in main window")


def alerts(d, pages):
    d.get(pages + "/form.html")
    d.find_element(By.ID, "alert").click()
    alert = WebDriverWait(d, 5).until(lambda d: d.switch_to.alert)
    check(alert.text == "careful", "alert text %r" % alert.text)
    alert.accept()


def actions(d, pages):
    d.get(pages + "/form.html")
    box = d.find_element(By.ID, "user")
    ActionChains(d).click(box).send_keys("bob").perform()
    check(box.get_attribute("value") == "bob", "actions typed %r" % box.get_attribute("value"))


def cookies(d, pages):
    d.get(pages + "/form.html")
    d.add_cookie({"name": "flavour", "value": "oat"})
    check(d.get_cookie("flavour")["value"] == "oat", "cookie read back")
    d.delete_all_cookies()
    check(d.get_cookies() == [], "cookies cleared")


def cdp(d, pages):
    d.get(pages + "/form.html")
    got = d.execute("executeCdpCommand", {"cmd": "Runtime.evaluate", "params": {"expression": "1 + 2", "returnByValue": True}})["value"]
    check(got["result"]["value"] == 3, "cdp result %r" % got)


SCENARIOS = [navigation, elements, scripts, screenshot, frames_and_windows, alerts, actions, cookies, cdp]


def main():
    grid, pages = sys.argv[1], sys.argv[2]
    wanted = set(sys.argv[3:])
    d = new_driver(grid)
    try:
        for scenario in SCENARIOS:
            if wanted and scenario.__name__ not in wanted:
                continue
            scenario(d, pages)
            print("ok", scenario.__name__, flush=True)
    finally:
        d.quit()


if __name__ == "__main__":
    main()
