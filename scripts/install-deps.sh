#!/usr/bin/env bash
# Installs the Debian packages needed to build, test and check batch_serving.
# Idempotent: checks each package with dpkg first and only touches apt (and
# so the network) when something is missing. Quiet when everything is there.
set -euo pipefail

packages=(
  cmake
  ninja-build
  g++
  libgtest-dev
  libsqlite3-dev
  pkg-config
  libeigen3-dev
  clang
  clang-tidy
  libclang-rt-dev  # libFuzzer, for scripts/fuzz.sh
  libhiredis-dev      # the Redis transport (batch_serving::redis)
  libmsgpack-cxx-dev  # its codecs
  redis-server        # its tests start their own
  libasio-dev         # the asio completion tokens (batch_serving/asio.hpp)
  libcpp-httplib-dev  # examples/live_progress
  chromium            # its browser test (scripts/browser-test.sh)
  prometheus          # promtool, which checks the metrics text (tests/metrics_test.cpp)
)

# The browser test also needs node and npm: Debian's unless some node is on
# PATH already (a newer one from elsewhere would conflict with Debian's npm).
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

# The format check needs clang-format 16 or later (.clang-format uses options
# that 14, Debian 12's default clang-format, rejects): install Debian 12's
# clang-format-16 unless a new enough clang-format is already on PATH.
have_new_clang_format() {
  local cf major
  for cf in clang-format-{16..25} clang-format; do
    command -v "$cf" >/dev/null 2>&1 || continue
    major=$("$cf" --version 2>/dev/null | sed -n 's/.*version \([0-9][0-9]*\)\..*/\1/p' || true)
    major=${major%%$'\n'*}
    if [ -n "$major" ] && [ "$major" -ge 16 ]; then return 0; fi
  done
  return 1
}
if ! have_new_clang_format; then
  packages+=(clang-format-16)
fi

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [ "$status" != "install ok installed" ]; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "install-deps: missing packages (${missing[*]}) and not root without sudo;" \
      "install them by hand" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
