// Per-call options: a timeout or deadline, and a stop_token that cancels.
//
//   std::stop_source cancel;
//   auto f = srv.dispatch_async(7, {.timeout = std::chrono::milliseconds(50),
//                                   .stop_token = cancel.get_token()});
//   cancel.request_stop();              // f.get() -> errc::cancelled (if not done yet)
//   auto r = srv.dispatch(8, {.deadline = std::chrono::steady_clock::now() +
//                                         std::chrono::milliseconds(20)});
//   if (!r.ok() && r.error().code() == batch_serving::errc::timeout) { /* too late */ }
//
// A call whose deadline passes while its items are still queued is answered
// timeout and its items never run. One whose deadline passes while they run
// is answered timeout at the deadline; the late results are discarded.
// Cancelling works the same way with errc::cancelled; cancelling a call that
// already finished does nothing.
#pragma once

#include <chrono>
#include <optional>
#include <stop_token>

#include "batch_serving/call_timing.hpp"

namespace batch_serving {

struct call_options {
  // Answer timeout if the call has not finished this long after dispatch.
  // Must not be negative; zero times out at once; one too long for the clock
  // (microseconds::max()) means no timeout.
  std::optional<std::chrono::microseconds> timeout{};
  // Answer timeout if the call has not finished by then. With timeout too,
  // the earlier of the two applies. With neither, the server's
  // default_timeout applies (if set).
  std::optional<std::chrono::steady_clock::time_point> deadline{};
  // A stop request cancels the call (errc::cancelled).
  std::stop_token stop_token{};
  // Filled in with where the call's time went before it is answered: read it
  // once the answer is there (it must outlive the call). Left as it was for
  // a call refused at the door. Costs a few clock reads for this call.
  call_timing* timing = nullptr;
};

}  // namespace batch_serving
