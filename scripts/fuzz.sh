#!/usr/bin/env bash
# Fuzzes with libFuzzer + ASan + UBSan: configures a clang++ build with
# -DBATCH_SERVING_BUILD_FUZZ=ON, builds one fuzz target and runs it for SECONDS on
# a corpus kept in the build dir, seeded from the target's committed seeds:
#   batch_serving_fuzz       the public API (tests/fuzz/batch_serving_fuzz.cpp),
#                            seeds tests/fuzz/corpus/ (the default)
#   batch_serving_wire_fuzz  the Redis transport's decode path (tests/fuzz/wire_fuzz.cpp),
#                            seeds tests/fuzz/corpus-wire/; needs hiredis and msgpack-cxx
#
#   scripts/fuzz.sh [SECONDS] [BUILD_DIR] [libFuzzer options...]
#   scripts/fuzz.sh                       # 60 s, build-fuzz
#   scripts/fuzz.sh 600 /tmp/build-fuzz   # 10 minutes elsewhere
#   scripts/fuzz.sh 60 build-fuzz -jobs=2 -workers=2
#
# Exits non-zero on any crash, sanitizer report, contract violation (the
# target aborts with "<target>: VIOLATION: ..."), hang (-timeout=10)
# or out-of-memory (-rss_limit_mb=2048); the input that did it is written to
# BUILD_DIR/fuzz-artifacts/ (fuzz-artifacts-wire/ for the wire target) and the
# script prints how to replay it.
#
# Environment: BATCH_SERVING_FUZZ_TARGET (default batch_serving_fuzz),
# BATCH_SERVING_FUZZ_CXX (default: clang++, else the newest clang++-N),
# BATCH_SERVING_FUZZ_BUILD_TYPE (default RelWithDebInfo).
#
#   BATCH_SERVING_FUZZ_TARGET=batch_serving_wire_fuzz scripts/fuzz.sh 30
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
[ "$#" -gt 0 ] && shift
build="${1:-$repo/build-fuzz}"
[ "$#" -gt 0 ] && shift
case "$seconds" in
  '' | *[!0-9]*)
    echo "usage: scripts/fuzz.sh [SECONDS] [BUILD_DIR] [libFuzzer options...]" >&2
    exit 2
    ;;
esac
build_type="${BATCH_SERVING_FUZZ_BUILD_TYPE:-RelWithDebInfo}"
target="${BATCH_SERVING_FUZZ_TARGET:-batch_serving_fuzz}"
# Each target keeps its own seeds, corpus, artifacts and log (suffix).
case "$target" in
  batch_serving_fuzz) suffix="" ;;
  batch_serving_wire_fuzz) suffix="-wire" ;;
  *)
    echo "fuzz.sh: unknown BATCH_SERVING_FUZZ_TARGET '$target' (batch_serving_fuzz, batch_serving_wire_fuzz)" >&2
    exit 2
    ;;
esac
seeds="tests/fuzz/corpus$suffix"
install_hint="install clang++ and libFuzzer: sudo apt-get install clang libclang-rt-14-dev (Debian 12), or set BATCH_SERVING_FUZZ_CXX"

# ---------------------------------------------------------------- compiler

cxx="${BATCH_SERVING_FUZZ_CXX:-}"
if [ -z "$cxx" ]; then
  if command -v clang++ >/dev/null 2>&1; then
    cxx=clang++
  else
    for v in 20 19 18 17 16 15 14 13; do
      if command -v "clang++-$v" >/dev/null 2>&1; then cxx="clang++-$v"; break; fi
    done
  fi
fi
if [ -z "$cxx" ] || ! command -v "$cxx" >/dev/null 2>&1; then
  echo "fuzz.sh: clang++ not found; $install_hint" >&2
  exit 2
fi

probe_dir="$(mktemp -d)"
restore_mmap_rnd_bits=""
cleanup() {
  rm -rf "$probe_dir"
  if [ -n "$restore_mmap_rnd_bits" ]; then
    echo "$restore_mmap_rnd_bits" >/proc/sys/vm/mmap_rnd_bits 2>/dev/null || true
  fi
}
trap cleanup EXIT

cat >"$probe_dir/probe.cpp" <<'EOF'
#include <cstddef>
#include <cstdint>
#include <thread>
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  int x = 0;
  std::thread t([&] { x = size > 0 ? data[0] : 1; });
  t.join();
  return x < 0;
}
EOF
if ! "$cxx" -std=c++20 -g -fsanitize=fuzzer,address,undefined "$probe_dir/probe.cpp" \
  -o "$probe_dir/probe" -pthread >"$probe_dir/build.log" 2>&1; then
  echo "fuzz.sh: $cxx cannot build a -fsanitize=fuzzer,address,undefined program:" >&2
  sed 's/^/  | /' "$probe_dir/build.log" | head -n 5 >&2
  echo "fuzz.sh: $install_hint" >&2
  exit 2
fi

# ---------------------------------------------------------------- sanitizer runner

# As .ci/run's prepare_sanitizer_runner: ASan crashes at start when the kernel
# randomizes mmap with more bits than it expects (vm.mmap_rnd_bits = 32), so the
# sanitized binary runs under `setarch -R` (no ASLR) when the sandbox lets us;
# failing that, vm.mmap_rnd_bits is lowered to 28 for the run when writable.
run=()
arch="$(uname -m)"
if setarch "$arch" -R true >/dev/null 2>&1; then
  run=(setarch "$arch" -R)
  echo "fuzz.sh: running under 'setarch $arch -R' (ASLR off)"
else
  echo "fuzz.sh: setarch -R not permitted here; running with ASLR on"
fi
probe_ok=""
for _ in 1 2 3 4 5; do
  if "${run[@]}" "$probe_dir/probe" -runs=10 >"$probe_dir/out" 2>&1; then probe_ok=1; else probe_ok=""; break; fi
done
if [ -z "$probe_ok" ]; then
  bits="$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo "")"
  echo "fuzz.sh: a sanitized probe failed (vm.mmap_rnd_bits = ${bits:-?}):"
  sed 's/^/  | /' "$probe_dir/out" | head -n 5
  if [ -n "$bits" ] && [ "$bits" -gt 28 ] && [ -w /proc/sys/vm/mmap_rnd_bits ] &&
    echo 28 >/proc/sys/vm/mmap_rnd_bits 2>/dev/null; then
    restore_mmap_rnd_bits="$bits"
    echo "fuzz.sh: lowered vm.mmap_rnd_bits $bits -> 28 for this run"
    if ! "${run[@]}" "$probe_dir/probe" -runs=10 >"$probe_dir/out" 2>&1; then
      echo "fuzz.sh: sanitized programs still fail: $(head -n 3 "$probe_dir/out")" >&2
      exit 2
    fi
  else
    echo "fuzz.sh: sanitized programs cannot run here (setarch -R not permitted," \
      "vm.mmap_rnd_bits=${bits:-?} not lowerable); run 'sysctl vm.mmap_rnd_bits=28' as root" >&2
    exit 2
  fi
fi

# ---------------------------------------------------------------- build

generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$repo" -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_BUILD_TYPE="$build_type" -DBATCH_SERVING_SANITIZE=address,undefined \
    -DBATCH_SERVING_BUILD_FUZZ=ON -DBATCH_SERVING_BUILD_TESTS=OFF \
    -DBATCH_SERVING_BUILD_EXAMPLES=OFF -DBATCH_SERVING_BUILD_BENCH=OFF \
    -DBATCH_SERVING_INSTALL=OFF
fi
if ! cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target "$target"; then
  if [ "$target" = batch_serving_wire_fuzz ]; then
    echo "fuzz.sh: could not build $target; it exists only when the Redis transport is built" \
      "(apt-get install libhiredis-dev libmsgpack-cxx-dev, then reconfigure $build)" >&2
  fi
  exit 1
fi
fuzzer="$build/tests/fuzz/$target"

# ---------------------------------------------------------------- run

corpus="$build/fuzz-corpus$suffix"
artifacts="$build/fuzz-artifacts$suffix"
log="$build/fuzz$suffix.log"
mkdir -p "$corpus" "$artifacts"
touch "$probe_dir/started"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
echo "fuzz.sh: fuzzing for $seconds s: $fuzzer (corpus $corpus, seeds $seeds)"
set +e
# New inputs go to the first directory; the committed seeds are only read.
"${run[@]}" "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$artifacts/" "$@" "$corpus" "$repo/$seeds" \
  2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
found="$(find "$artifacts" -type f -newer "$probe_dir/started" | sort)"

echo
echo "================ fuzz summary ================"
grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1 || true
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
  grep -E 'VIOLATION|ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error|SUMMARY' "$log" |
    head -n 5 || true
  echo "fuzz.sh: FAILED (libFuzzer exit $rc); the inputs that did it:"
  if [ -n "$found" ]; then sed 's/^/  /' <<<"$found"; else echo "  (none written; see $log)"; fi
  echo "replay one with: ${run[*]} $fuzzer <input>"
  echo "minimize it with: ${run[*]} $fuzzer -minimize_crash=1 -max_total_time=120 <input>"
  if [ "$rc" -ne 0 ]; then exit "$rc"; fi
  exit 1
fi
echo "fuzz.sh: OK, no findings in $seconds s"
