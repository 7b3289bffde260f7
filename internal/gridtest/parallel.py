"""Opens N sessions at once on a grid; each loads a page, holds it, quits.

Usage: parallel.py GRID_URL PAGES_URL N HOLD_SECONDS
Prints "done <i> <seconds waited for the session>" per session.
"""
import sys
import threading
import time

from selenium import webdriver


def one(i, grid, pages, hold, results):
    start = time.time()
    d = webdriver.Remote(command_executor=grid, options=webdriver.ChromeOptions())
    waited = time.time() - start
    try:
        d.get(pages + "/other.html")
        assert d.title == "Other page", d.title
        time.sleep(hold)
    finally:
        d.quit()
    results[i] = waited


def main():
    grid, pages, n, hold = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    results = {}
    threads = [threading.Thread(target=one, args=(i, grid, pages, hold, results)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(n):
        print("done", i, "%.2f" % results[i])
    if len(results) != n:
        sys.exit(1)


if __name__ == "__main__":
    main()
