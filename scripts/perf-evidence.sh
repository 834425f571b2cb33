#!/usr/bin/env bash
# Per-item costs of batch_serving and of the naive batcher, one implementation
# per process, for docs/performance.md ("Targets not met and why").
#
# batch_serving_bench runs both implementations in one process, so system-call
# and context-switch counters cannot tell them apart. This script builds a tiny
# fixed-count driver on the bench's workload (squaring ints, batch_size 64,
# through batch_serving or through bench/naive_batcher.hpp) and reports, for
# each case and implementation:
#   items/s, batch    median items/s of 3 plain runs; mean items per execution
#   ctxsw/it          context switches per item (GNU time: voluntary + involuntary)
#   user_us, sys_us   user and kernel CPU time per item, all threads, in us (GNU time)
#   faults/it         minor page faults per item (GNU time)
#   futex/it          futex system calls per item (strace -f -c)
#   syscl/it          all system calls per item (strace -f -c)
# strace slows every system call down, so its run is only counted, not timed;
# the slowdown also lets some waiters find their answer before they sleep, so
# its futex counts are a lower bound (the ping-pong's 4 per round trip shows
# as about 2).
# Cases: a bare futex ping-pong between two threads (per round trip: two
# sleeps, two wake-ups, no spinning: the floor of a blocking hand-off); sync
# C=64 and C=512 (batch_timeout 1 ms); sync C=1 (timeout 0); async (1,000,000
# items with the future form, timeout 1 ms).
#
#   scripts/perf-evidence.sh [BUILD_DIR]   # BUILD_DIR holds libbatch_serving.a (default: build)
#
# Needs g++, strace and GNU time (/usr/bin/time); perf (linux-perf) for the
# last part, where the CPU time goes. Takes about 2 minutes. Not part of CI.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$repo/build}"
lib="$build/libbatch_serving.a"
[[ -f "$lib" ]] || { echo "perf-evidence.sh: no $lib (cmake --build $build first)" >&2; exit 2; }
for tool in g++ strace /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "perf-evidence.sh: needs $tool" >&2; exit 2; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cat >"$work/probe.cpp" <<'PROBE'
#include <batch_serving/batch_serving.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <atomic>
#include <climits>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "naive_batcher.hpp"
#include "workload.hpp"

// The bare cost of a blocking hand-off: two threads pass a turn back and forth
// CALLS times, each sleeping on a futex (no spinning) until it is its turn.
int ping_pong(std::size_t round_trips) {
  std::atomic<std::uint32_t> turn{0};
  const auto wait = [&](std::uint32_t busy) {
    while (turn.load() == busy) {
      syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&turn), FUTEX_WAIT_PRIVATE, busy,
              nullptr, nullptr, 0);
    }
  };
  const auto pass = [&](std::uint32_t to) {
    turn.store(to);
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&turn), FUTEX_WAKE_PRIVATE, INT_MAX,
            nullptr, nullptr, 0);
  };
  const auto start = std::chrono::steady_clock::now();
  std::thread other([&] {
    for (std::size_t i = 0; i < round_trips; ++i) {
      wait(0);
      pass(0);
    }
  });
  for (std::size_t i = 0; i < round_trips; ++i) {
    pass(1);
    wait(1);
  }
  other.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%zu %.0f 0\n", round_trips, static_cast<double>(round_trips) / s);
  return 0;
}

// probe IMPL CALLERS CALLS TIMEOUT_US: CALLERS threads make CALLS blocking calls
// each (the sync scenario); CALLERS 0: one thread submits CALLS items with the
// future form, then collects them all (the async scenario). IMPL ping_pong:
// CALLS futex round trips (the rest is ignored).
// Prints: items (round trips), items/s, mean items per execution.
int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: probe batch_serving|naive|ping_pong CALLERS CALLS TIMEOUT_US\n");
    return 2;
  }
  if (std::strcmp(argv[1], "ping_pong") == 0) return ping_pong(std::strtoul(argv[3], nullptr, 10));
  const bool ours = std::strcmp(argv[1], "batch_serving") == 0;
  const std::size_t callers = std::strtoul(argv[2], nullptr, 10);
  const std::size_t calls = std::strtoul(argv[3], nullptr, 10);
  const std::chrono::microseconds timeout(std::strtol(argv[4], nullptr, 10));
  // Only the measured implementation exists (no idle second worker thread).
  std::optional<batch_serving::server<int, int>> srv;
  std::optional<bench::naive_batcher<int, int>> naive;
  if (ours) {
    srv.emplace(bench::squares(),
                batch_serving::server_options{.batch_size = 64, .batch_timeout = timeout});
  } else {
    naive.emplace(bench::square_all, 64, timeout);
  }
  std::size_t bad = 0;
  const auto start = std::chrono::steady_clock::now();
  if (callers == 0) {
    std::vector<batch_serving::future<int>> ours_f;
    std::vector<std::future<int>> naive_f;
    ours_f.reserve(ours ? calls : 0);
    naive_f.reserve(ours ? 0 : calls);
    for (std::size_t n = 0; n < calls; ++n) {
      const int x = bench::input_for(0, n);
      if (ours) {
        ours_f.push_back(srv->dispatch_async(x));
      } else {
        naive_f.push_back(naive->submit(x));
      }
    }
    for (std::size_t n = 0; n < calls; ++n) {
      const int x = bench::input_for(0, n);
      int y = -1;
      if (ours) {
        const auto r = ours_f[n].get();
        if (r.ok()) y = *r;
      } else {
        y = naive_f[n].get();
      }
      if (y != x * x) ++bad;
    }
  } else {
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < callers; ++t) {
      threads.emplace_back([&, t] {
        for (std::size_t n = 0; n < calls; ++n) {
          const int x = bench::input_for(t, n);
          int y = -1;
          if (ours) {
            const auto r = srv->dispatch(x);
            if (r.ok()) y = *r;
          } else {
            y = naive->dispatch(x);
          }
          if (y != x * x) __atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
        }
      });
    }
    for (auto& th : threads) th.join();
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double items = static_cast<double>((callers == 0 ? 1 : callers) * calls);
  const auto c = ours ? bench::counters_of(*srv) : bench::counters_of(*naive);
  std::printf("%.0f %.0f %.2f\n", items, items / s,
              static_cast<double>(c.items) / static_cast<double>(c.executions ? c.executions : 1));
  return bad == 0 ? 0 : 1;
}
PROBE

g++ -std=c++20 -O2 -g -DNDEBUG -I"$repo/include" -I"$repo/bench" "$work/probe.cpp" "$lib" -pthread \
  -o "$work/probe"

median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }

echo "# $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-17s %-14s %9s %6s %8s %8s %8s %8s %8s %8s\n' \
  case impl items/s batch ctxsw/it user_us sys_us faults/it futex/it syscl/it
# Each case: callers calls timeout_us (callers 0: async; -: the futex ping-pong).
for case in "- 100000 0" "64 2000 1000" "512 250 1000" "1 20000 0" "0 1000000 1000"; do
  read -r callers calls timeout <<<"$case"
  impls=(batch_serving naive)
  if [[ "$callers" == - ]]; then
    label="futex ping-pong"
    impls=(ping_pong)
  elif ((callers == 0)); then
    label="async t=$timeout"
  else
    label="sync C=$callers t=$timeout"
  fi
  for impl in "${impls[@]}"; do
    run=("$work/probe" "$impl" "$callers" "$calls" "$timeout")
    rates=()
    for _ in 1 2 3; do
      read -r items rate batch < <("${run[@]}")
      rates+=("$rate")
    done
    rate="$(median3 "${rates[@]}")"
    # GNU time reports wait4's rusage: all threads of the process, summed.
    /usr/bin/time -o "$work/time" -f '%w %c %U %S %R' "${run[@]}" >/dev/null
    read -r vol invol user sys faults <"$work/time"
    strace -f -c -o "$work/strace" "${run[@]}" >/dev/null
    futex="$(awk '$NF=="futex"{print $4}' "$work/strace")"
    total="$(awk '$NF=="total"{print $4}' "$work/strace")"
    awk -v c="$label" -v impl="$impl" -v items="$items" -v rate="$rate" -v batch="$batch" \
      -v ctxsw="$((vol + invol))" -v user="$user" -v sys="$sys" -v faults="$faults" \
      -v futex="${futex:-0}" -v total="${total:-0}" 'BEGIN{
        printf "%-17s %-14s %9.0f %6.2f %8.2f %8.2f %8.2f %8.3f %8.3f %8.3f\n", c, impl, rate,
          batch, ctxsw / items, user * 1e6 / items, sys * 1e6 / items, faults / items,
          futex / items, total / items }'
  done
done

# Where the CPU goes at C=64 (sampled with perf's cpu-clock; hardware counters
# are often missing on virtual machines). Skipped without a working perf.
if command -v perf >/dev/null &&
  perf record -e cpu-clock -o "$work/perf.data" true >/dev/null 2>&1; then
  for impl in batch_serving naive; do
    echo "# perf record -e cpu-clock, sync C=64 t=1000, $impl: top symbols, % of all samples"
    perf record -q -e cpu-clock -o "$work/perf.data" "$work/probe" "$impl" 64 2000 1000 \
      >/dev/null 2>&1
    perf report -i "$work/perf.data" --no-children --sort sym --stdio 2>/dev/null |
      grep -v -e '^#' -e '^$' | head -6 || true  # head closes the pipe early
  done
fi
