// When a partition that comes back from an execution should wait for the
// callers it just answered before it runs a partial batch.
//
// The trap it avoids: 64 closed-loop callers, batch_size 64. One caller is
// late (a delayed wake-up), so a 63-item batch runs without it; the late one
// arrives during that execution and its window closes while the partition is
// busy. When the partition comes back it runs the late item alone, at once
// (it is due), while the 63 it just answered queue up behind it, and so on:
// the callers split into two groups that stay out of step, every execution
// half full.
//
// The rule: a batch whose window closed while this partition was executing
// has not waited for company, it has waited for the partition. If the
// callers just answered could fill it (queued items + the items of the last
// execution >= batch_size), the partition first waits while calls keep
// arriving, each within batch_timeout / 8 of the last, up to a full batch or
// one more batch_timeout in all. A lone caller never meets the rule (its
// window opens at an idle partition), and an item behind an execution whose
// callers do not come back waits at most batch_timeout / 8 more.
#pragma once

#include <cstddef>
#include <cstdint>

#include "batch_serving/detail/call.hpp"

namespace batch_serving::detail {

// What a partition remembers of the batch it took last.
struct last_take {
  clock::time_point at{};              // when it was taken
  std::size_t items = 0;               // items it held: callers who may come back
  std::uint64_t arrivals_at_take = 0;  // the engine's arrival count then
  // Nothing was left queued behind it, and nothing came while it ran: its
  // callers are a closed loop (they call again once answered).
  bool closed_loop = false;
};

// Whether a due, not full batch at the head of the queue (its window opened
// at `window_opened_at`, holding `queued` items) waited behind `last`
// rather than for company.
inline bool waited_behind_execution(const last_take& last, clock::time_point window_opened_at,
                                    std::size_t queued, std::size_t batch_size) noexcept {
  return last.items > 0 && window_opened_at >= last.at && queued + last.items >= batch_size;
}

// How long without an arrival ends the wait for returning callers.
inline clock::duration catch_up_quiet_gap(clock::duration batch_timeout) noexcept {
  return batch_timeout / 8;
}

}  // namespace batch_serving::detail
