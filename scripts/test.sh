#!/usr/bin/env bash
# Runs herd's whole test suite. Installs what the tests need (Python 3, Lua 5.1,
# LuaJIT, lua-cjson, Chromium, chromedriver, the Python Selenium bindings, numpy) from Debian
# packages when missing, and starts the local PostgreSQL cluster if it is
# installed but stopped.
set -euo pipefail
# go-nvml (GPU metrics) compiles NVML's header, whose deprecated calls warn.
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -g} -Wno-deprecated-declarations"
cd "$(dirname "$0")/.."

missing=()
command -v python3 >/dev/null || missing+=(python3)
command -v lua5.1 >/dev/null || missing+=(lua5.1)
command -v luajit >/dev/null || missing+=(luajit)
if ! lua5.1 -e 'require "cjson"' >/dev/null 2>&1; then missing+=(lua-cjson); fi
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
# Debian's own interpreter: the first python3 on PATH may be another build.
if ! /usr/bin/python3 -c 'import selenium' >/dev/null 2>&1; then missing+=(python3-selenium); fi
if ! /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1; then missing+=(python3-numpy); fi
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  echo "installing ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_ctlcluster >/dev/null; then
    echo "starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi

# The JavaScript Selenium bindings for the grid tests and the login-form
# example, pinned by their lock files.
(cd internal/gridtest/js && npm ci --no-audit --no-fund --silent)
(cd examples/loginform && npm ci --no-audit --no-fund --silent)

go vet ./...
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "not gofmt'ed:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go test -race -count=1 -timeout 20m "$@" ./...
