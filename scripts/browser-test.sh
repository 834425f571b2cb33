#!/usr/bin/env bash
# The browser test of examples/live_progress: tests/browser/live_progress.mjs
# drives Debian's Chromium (/usr/bin/chromium, headless) with playwright-core
# against the built example. Screenshots go to BUILD_DIR/artifacts/.
#
#   scripts/browser-test.sh [BUILD_DIR]   # default: build
#
# Needs node, npm and /usr/bin/chromium. Without them it prints how to get
# them and exits 0 (skipped), except under CI (CI set), where it fails. It
# runs `npm ci` in tests/browser when its node_modules is missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build}
binary=$build/examples/live_progress/live_progress
chromium=${CHROMIUM:-/usr/bin/chromium}

skip_or_fail() {
  if [ -n "${CI:-}" ]; then
    echo "browser-test: FAILED: $1 (CI is set, so this is not skipped)" >&2
    echo "$2" >&2
    exit 1
  fi
  echo "browser-test: skipped: $1"
  echo "$2"
  exit 0
}

missing=()
command -v node >/dev/null 2>&1 || missing+=(node)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ -x "$chromium" ] || missing+=("$chromium")
if [ "${#missing[@]}" -gt 0 ]; then
  skip_or_fail "missing ${missing[*]}" \
    "  install: sudo apt-get install chromium nodejs npm (or scripts/install-deps.sh)
  then:    npm ci --prefix tests/browser"
fi
if [ ! -x "$binary" ]; then
  skip_or_fail "$binary is not built" \
    "  it needs cpp-httplib: sudo apt-get install libcpp-httplib-dev, then
  cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build $build -j2"
fi

if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "\$ npm ci --prefix tests/browser"
  npm ci --prefix tests/browser --no-audit --no-fund
fi

echo "node $(node --version), $("$chromium" --version 2>/dev/null | head -n1)"
echo "\$ node tests/browser/live_progress.mjs $binary --screenshot $build/artifacts/live_progress.png"
CHROMIUM=$chromium timeout 300 node tests/browser/live_progress.mjs "$binary" \
  --screenshot "$build/artifacts/live_progress.png"
