// What this machine charges for the hand-offs a waiting thread chooses
// between, measured rather than assumed: hosts of the same kind differ 10x
// (a `pause` takes 13 ns on one and 40 ns on another, waking a sleeping
// thread 3 µs on one and 36 µs on another), so a spin counted in iterations
// and tuned on one host always misses, or always wastes, on the other.
//
// Spinning pays only while it is shorter than what blocking would cost:
// spin_budget() is two futex round trips here (each one a sleep and a wake
// on both sides), so a spin that misses wastes about what blocking costs,
// and a spin that starts while the other side is being woken still catches
// its answer: that is what lets a lone caller and its partition fall into
// step, both spinning, instead of both sleeping on every call. (Half a
// round trip left them asleep in 4 runs of 6 on one host; one was enough
// there; two leave a margin for hosts whose round trip varies 3x from one
// measurement to the next: docs/performance.md.)
// Measured once per process, on first use (a few dozen round trips: well
// under 10 ms even where waking is slow); servers ask for it when they
// start, so no call pays it.
#pragma once

#include <chrono>

namespace batch_serving::detail {

struct host_costs {
  double pause_ns = 0;      // one cpu_relax()
  double clock_ns = 0;      // one steady_clock::now()
  double spin_rtt_ns = 0;   // two threads hand a turn back and forth, spinning
                            // (0: one core, or no answer within 20 ms)
  double futex_rtt_ns = 0;  // the same, each sleeping on a futex until the other wakes it
};

// Measures now (medians of a few dozen round trips, each kind bounded in time).
host_costs measure_host_costs();

// This process's measurement, taken on the first call.
const host_costs& this_host();

// How long a waiter spins before it sleeps: two futex round trips on this
// host, kept within [2 µs, 50 µs] so that a measurement disturbed by a busy
// moment neither disables spinning nor burns a core for long.
std::chrono::nanoseconds spin_budget();

}  // namespace batch_serving::detail
