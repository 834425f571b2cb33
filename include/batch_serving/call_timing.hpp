// Where one call's time went, for a caller that asks (call_options::timing).
//
//   batch_serving::call_timing took;
//   auto r = srv.dispatch(7, {.timing = &took});
//   // took.queued: waiting for a batch; took.executing: in the batch function
#pragma once

#include <chrono>
#include <cstddef>

namespace batch_serving {

struct call_timing {
  // From when the call was queued until its first execution started.
  std::chrono::nanoseconds queued{};
  // The time the executions holding its items ran (summed when its items
  // were spread over several).
  std::chrono::nanoseconds executing{};
  // How many executions held its items (failure-isolation re-runs included).
  std::size_t executions = 0;
};

}  // namespace batch_serving
