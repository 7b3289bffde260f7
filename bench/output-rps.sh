#!/usr/bin/env bash
# /output requests per second under concurrency: herd serve (Python worker in
# separate processes) against the 2016 stack (Flask under uWSGI, model
# in-process), side by side on this machine, with the same wrk load.
#
#   bench/output-rps.sh [workers=2] [connections=32] [seconds=10]
#
# Needs wrk, uwsgi, uwsgi-plugin-python3 and python3-flask (Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."
workers=${1:-2}
conns=${2:-32}
secs=${3:-10}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

mkdir -p "$tmp/files"
echo "1 2 3 4 5 6 7 8" > "$tmp/files/train.txt"
echo "2 3 4 5 6 7 8 9" > "$tmp/files/query.txt"
go build -o "$tmp/herd" ./cmd/herd

"$tmp/herd" serve --addr 127.0.0.1:18080 --worker 'python3 examples/mean-python/worker.py' \
  --files-root "$tmp/files" --data-dir "$tmp/data" --output-workers "$workers" --log-level warn &
for _ in $(seq 100); do curl -sf localhost:18080/readyz >/dev/null && break; sleep 0.1; done
curl -sf -X POST localhost:18080/train -d '{"Files": ["train.txt"], "model": "m"}' >/dev/null
for _ in $(seq 100); do curl -s localhost:18080/jobs?model=m | grep -q '"state":"done"' && break; sleep 0.1; done
curl -sf -X POST localhost:18080/output -d '{"Files": ["query.txt"], "model": "m"}'; echo

state=$(find "$tmp/data/models/m" -name mean.json | head -n1)
BENCH_FILES="$tmp/files" BENCH_STATE="$state" uwsgi --http-socket 127.0.0.1:18081 --plugin python3 \
  --wsgi-file bench/flask_mean.py --callable app --processes "$workers" --master --disable-logging \
  --die-on-term >"$tmp/uwsgi.log" 2>&1 &
for _ in $(seq 100); do curl -sf -X POST localhost:18081/output -d '{"Files": ["query.txt"]}' >/dev/null && break; sleep 0.1; done
curl -sf -X POST localhost:18081/output -d '{"Files": ["query.txt"]}'; echo

rps() { wrk -t2 -c"$conns" -d"${secs}s" -s bench/post-output.lua "$1" | awk '/Requests\/sec/ {print $2}'; }
echo "warm-up"; rps http://127.0.0.1:18080/output >/dev/null; rps http://127.0.0.1:18081/output >/dev/null
echo "| run | herd serve ($workers Python workers) req/s | Flask+uWSGI ($workers processes) req/s | herd / Flask |"
echo "|---|---|---|---|"
for run in 1 2 3; do
  h=$(rps http://127.0.0.1:18080/output)
  f=$(rps http://127.0.0.1:18081/output)
  echo "| $run | $h | $f | $(awk -v h="$h" -v f="$f" 'BEGIN {printf "%.2f", h/f}') |"
done
