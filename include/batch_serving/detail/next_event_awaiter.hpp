// The awaiter behind co_next (coroutine.hpp): waits for a stream's next event
// without blocking a thread, through stream_state::ready_or_notify.
#pragma once

#include <coroutine>
#include <optional>
#include <utility>

#include "batch_serving/detail/resume_node.hpp"
#include "batch_serving/detail/stream_state.hpp"
#include "batch_serving/event.hpp"
#include "batch_serving/event_stream.hpp"

namespace batch_serving::detail {

struct stream_access {
  template <class T>
  static stream_state<T>* state(event_stream<T>& s) noexcept {
    return s.state_;
  }
};

template <class T, class Resumer>
class next_event_awaiter final : private stream_waiter {
 public:
  next_event_awaiter(event_stream<T>& stream, Resumer resumer)
      : stream_(&stream), resumer_(std::move(resumer)) {}
  next_event_awaiter(const next_event_awaiter&) = delete;
  next_event_awaiter& operator=(const next_event_awaiter&) = delete;

  // A moved-from stream (no state) has ended: nothing to wait for.
  bool await_ready() const noexcept { return stream_access::state(*stream_) == nullptr; }
  bool await_suspend(std::coroutine_handle<> h) {
    node_.handle = h;
    // ready_or_notify's unlock is its last touch; event_ready may run (and
    // resume us elsewhere) as soon as it registered us.
    return !stream_access::state(*stream_)->ready_or_notify(*this);
  }
  // Does not block: the event (or the end) is there. Runs the serving's
  // map_results here, in the resumed thread.
  std::optional<event<T>> await_resume() { return stream_->next(); }

 private:
  void event_ready() noexcept override { resumer_.resume(node_); }

  event_stream<T>* stream_;
  resume_node node_;
  Resumer resumer_;
};

}  // namespace batch_serving::detail
