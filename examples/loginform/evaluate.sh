#!/usr/bin/env bash
# Runs the login-form suite over the public corpora with herd run on a local
# herd standalone grid, then prints the accuracy table and the throughput.
#
#   examples/loginform/evaluate.sh [--slots N] [--batch K] [--limit PAGES] [--sequential]
#
# From the repository root. Reads the corpora in place from
# ${LOGINFORM_DATA:-../shared/data} (formasaurus/ and fathom-login/); writes
# everything to bench/out/loginform/. --sequential also runs the same pages
# one after another in a single browser, for the throughput comparison.
set -euo pipefail
cd "$(dirname "$0")/../.."
slots=4 batch=5 limit=0 sequential=""
while (($#)); do
  case "$1" in
    --slots) slots=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    --sequential) sequential=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
data=$(cd "${LOGINFORM_DATA:-../shared/data}" && pwd)
out=bench/out/loginform
rm -rf "$out/results" && mkdir -p "$out/results"
go build -o "$out/herd" ./cmd/herd
(cd examples/loginform && npm ci --no-audit --no-fund --silent)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pages=127.0.0.1:$(free_port) grid=127.0.0.1:$(free_port)
"$out/herd" serve-dir --addr "$pages" "$data" 2>"$out/serve-dir.log" &
servedir=$!
"$out/herd" standalone --addr "$grid" --browser "maxSessions=$slots" --profile-dir /tmp/herd-loginform --log-level warn 2>"$out/grid.log" &
standalone=$!
trap 'kill $servedir $standalone 2>/dev/null; wait 2>/dev/null' EXIT
for _ in $(seq 100); do curl -sf "http://$grid/status" >/dev/null && curl -sf "http://$pages/" >/dev/null && break; sleep 0.1; done

node examples/loginform/prepare.js --data "$data" --base "http://$pages" --out "$out" --limit "$limit"
export LOGINFORM_LABELS=$out/labels.json
start=$(date +%s.%N)
LOGINFORM_RESULTS=$out/results "$out/herd" run --grid "http://$grid" --targets "$out/targets.txt" --batch "$batch" \
  --parallel "$slots" --junit "$out/report.xml" -- \
  node --test --test-reporter=junit --test-reporter-destination={report} examples/loginform/login.test.js >"$out/run.log" || true
minutes=$(python3 -c "import time; print(($(date +%s.%N) - $start) / 60)")
tail -n 1 "$out/run.log"
echo "JUnit report: $out/report.xml"
echo
echo "## herd run, $slots slots, batches of $batch"
node examples/loginform/report.js "$out/results" --minutes "$minutes"
if [ -n "$sequential" ]; then
  echo
  echo "## one browser, one page after another"
  start=$(date +%s.%N)
  node examples/loginform/sequential.js "$out/targets.txt" "$out/sequential.jsonl" "http://$grid"
  minutes=$(python3 -c "import time; print(($(date +%s.%N) - $start) / 60)")
  node examples/loginform/report.js "$out/sequential.jsonl" --minutes "$minutes" | tail -n 2
fi
