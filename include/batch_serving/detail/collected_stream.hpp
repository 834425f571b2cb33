// Streams whose events are all there already: inline runs, and calls
// answered before they started (an error event).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/stream_state.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/event.hpp"
#include "batch_serving/event_stream.hpp"

namespace batch_serving::detail {

template <class T>
class collected_stream final : public stream_state<T> {
 public:
  void add(event<T> ev) { events_.push_back(std::move(ev)); }
  std::optional<event<T>> next() override {
    if (at_ == events_.size()) return std::nullopt;
    return std::move(events_[at_++]);
  }
  bool ready_or_notify(stream_waiter&) override { return true; }  // all there
  void abandon() noexcept override { delete this; }

 private:
  std::vector<event<T>> events_;
  std::size_t at_ = 0;
};

template <class T>
event_stream<T> failed_stream(error e) {
  auto* s = new collected_stream<T>();
  s->add(event<T>::make_error(std::move(e)));
  return event_stream<T>(s);
}

// The stream of a call answered before it started: its one error event, read
// from the stream, or passed to `on_event` (then the stream is empty).
template <class T>
event_stream<T> refused_stream(error e, const std::function<void(event<T>)>& on_event) {
  if (!on_event) return failed_stream<T>(std::move(e));
  call_dropping_exceptions(on_event, event<T>::make_error(std::move(e)));
  return event_stream<T>(nullptr);
}

}  // namespace batch_serving::detail
