#!/usr/bin/env bash
# Soak test (not part of CI): runs the stress test's mix of calls, deadlines,
# cancellations, poisoned and slow items, overloads and shutdowns
# (tests/stress_test.cpp) for a chosen number of minutes, checking every call
# as CI does, and reports the process's resident memory (VmRSS) at the start,
# after the first round (warm: threads and allocator arenas exist) and at the
# end, with a line a minute in between. With glibc it also reports the heap
# bytes in use (a leak grows them) next to the bytes malloc holds.
#
# The stress mix starts ~20 threads per round, hundreds of rounds a minute.
# With glibc's default of up to 8 malloc arenas per core, freed memory
# spreads over many arenas and RSS keeps climbing with no leak (heap in use
# flat: 2 min took RSS from 7 MB to 160 MB, 6 min to over 300 MB). So this
# script runs with MALLOC_ARENA_MAX=2 unless you set it (e.g. to 16 for
# glibc's default on 2 cores), which keeps RSS about the library's memory.
#
#   scripts/soak.sh [MINUTES] [stress_test options...]
#   scripts/soak.sh 10                 # 10 minutes, the default seed
#   scripts/soak.sh 60 --seed=42       # an hour, another seed (random rounds)
#
# Builds Release into $BATCH_SERVING_SOAK_BUILD (default: build-soak) first;
# the build is incremental after the first time. Exits non-zero if a call got
# a wrong answer, an answer was lost, or the watchdog found a hang.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
minutes="${1:-10}"
[ "$#" -gt 0 ] && shift
case "$minutes" in
  '' | *[!0-9.]*) echo "usage: scripts/soak.sh [MINUTES] [stress_test options...]" >&2; exit 2 ;;
esac
build="${BATCH_SERVING_SOAK_BUILD:-$repo/build-soak}"

if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DBATCH_SERVING_BUILD_EXAMPLES=OFF -DBATCH_SERVING_BUILD_BENCH=OFF
fi
cmake --build "$build" -j2 --target stress_test

export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "soak: running the stress mix for $minutes min ($build/tests/stress_test," \
  "MALLOC_ARENA_MAX=$MALLOC_ARENA_MAX)"
set +e
"$build/tests/stress_test" --gtest_filter='StressTest.*' --minutes="$minutes" "$@" | tee "$log"
rc=${PIPESTATUS[0]}
set -e

field() { sed -n "s/^$1 \([0-9-]*\) kB.*/\1/p" "$log" | tail -n 1; }
rss_start="$(field 'soak: RSS start')"
rss_warm="$(field 'soak: RSS after the first round')"
rss_end="$(field 'soak: RSS end')"
summary="$(grep -E '^stress: seed .* rounds' "$log" | tail -n 1 || true)"
echo
echo "================ soak summary ================"
echo "duration:        $minutes min (MALLOC_ARENA_MAX=$MALLOC_ARENA_MAX)"
echo "${summary:-stress: (no summary: the run failed early)}"
echo "RSS at start:    ${rss_start:-?} kB"
echo "RSS warm:        ${rss_warm:-?} kB (after the first round)"
echo "RSS at end:      ${rss_end:-?} kB"
heap_end="$(sed -n 's/^soak: RSS end .*; \(heap .*\))$/\1/p' "$log" | tail -n 1)"
[ -n "$heap_end" ] && echo "allocator:       $heap_end at the end (in use: not freed; held: kept from the OS)"
if [ -n "$rss_warm" ] && [ -n "$rss_end" ]; then
  echo "growth:          $((rss_end - rss_warm)) kB since warm, $((rss_end - rss_start)) kB since start"
fi
if [ "$rc" -eq 0 ]; then echo "soak: OK"; else echo "soak: FAILED (exit $rc)"; fi
exit "$rc"
