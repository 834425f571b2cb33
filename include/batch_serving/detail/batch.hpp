// What the call queue hands a partition and execution works on: the slices
// of calls that make up one execution, and the calls the queue dropped on the
// way (finished already, or expired) for the engine to settle.
#pragma once

#include <cstddef>
#include <vector>

#include "batch_serving/detail/call.hpp"

namespace batch_serving::detail {

// Items [offset, offset + length) of `target`, placed in one execution.
template <class In, class Out>
struct slice {
  call<In, Out>* target;
  std::size_t offset;
  std::size_t length;
};

template <class In, class Out>
struct batch {
  // The execution's slices, in queue order; each holds a reference.
  std::vector<slice<In, Out>> slices;
  // Calls taken off the queue without running, each with the queue's
  // reference: already finished (cancelled, timed out, a failed split call),
  // or expired (their deadline passed; the engine answers them timeout).
  std::vector<call<In, Out>*> skipped;
  std::vector<call<In, Out>*> expired;

  std::size_t items() const noexcept {
    std::size_t n = 0;
    for (const auto& s : slices) n += s.length;
    return n;
  }
};

}  // namespace batch_serving::detail
