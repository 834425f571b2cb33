// Where calls enter a batching engine: the one admission path of every call
// form (blocking, future, callback, event stream, and the coming coroutine,
// asio and remote forms).
//
// A caller side (client.hpp, stream_client.hpp) builds a call of its form and
// hands it to an intake with the caller's call_options; from then on the
// intake owns what happens to it:
//   - the deadline: call_options::timeout / deadline, else the server's
//     default_timeout (admission.hpp has the rules);
//   - the stop_token, armed before the call is queued, so any stop requested
//     before the call finishes cancels it;
//   - refusal at the door: bad options, a stop already requested, a deadline
//     already passed, an explicit batch that can never fit max_queue, a full
//     queue (overloaded), a server that is not running;
//   - the answer, through the call's completion interface (call.hpp): each
//     slice is delivered or failed, and complete() runs exactly once. A
//     refused call is completed at once, in the submitting thread.
//
// The in-process engine (engine.hpp) is one intake; a remote transport feeds
// calls to its workers' engines through the same interface, and the client
// side never names which one it talks to.
#pragma once

#include <optional>

#include "batch_serving/call_options.hpp"
#include "batch_serving/detail/call.hpp"
#include "batch_serving/detail/observer.hpp"
#include "batch_serving/error.hpp"

namespace batch_serving::detail {

template <class In, class Out>
class intake : public call_canceller {
 public:
  virtual ~intake() = default;

  // Admits `c` as described above. Every outcome, refusal included, reaches
  // the caller through `c`'s completion; the intake takes references of its
  // own for as long as it needs the call. Thread-safe; never blocks on
  // executions (it may wait a moment for the queue lock); allocates only on
  // refusal (the error message), for a stop_token (the cancellation block)
  // and when a call with a deadline grows the deadline timer's heap.
  virtual void submit(call<In, Out>& c, const call_options& options) = 0;

  // Answers `c` (a call this intake admitted) cancelled unless it finished:
  // its queued items never run, results of running ones are discarded.
  // Returns true if this cancelled it. Thread-safe; never blocks on
  // executions.
  bool cancel(call_base& c) noexcept override = 0;

  // Why a blocking wait for a new call would wait for itself on this thread
  // (one of the threads that execute this intake's calls: a batch function,
  // or a completion callback run there), if it would. Never blocks.
  virtual std::optional<error> blocking_wait_refusal() const { return std::nullopt; }

  // Called before this thread blocks waiting for `c` (future::wait): if that
  // would wait for itself (`c` is still queued and this is one of the threads
  // that must run it), answers `c` invalid_argument at once instead.
  // Thread-safe; never blocks on executions.
  virtual void before_blocking_wait(call<In, Out>& c) noexcept { static_cast<void>(c); }

  // Who times the caller-side mappings of calls to this intake, if anyone.
  // Constant for the intake's life, which it outlives.
  virtual mapping_observer* mapping_spans() const noexcept { return nullptr; }
};

}  // namespace batch_serving::detail
