// Streaming calls: each slice's hook events and outputs become events, in the
// caller's order, read by an event_stream (pull) or passed to a callback (push).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/call_kinds.hpp"
#include "batch_serving/detail/mutex.hpp"
#include "batch_serving/detail/serving_definition.hpp"
#include "batch_serving/detail/stream_state.hpp"
#include "batch_serving/detail/thread_annotations.hpp"
#include "batch_serving/event.hpp"

namespace batch_serving::detail {

// Many: dispatch_many (batch events); otherwise dispatch (item events).
template <class In, class Out, class CallIn, class CallOut, bool Many>
class stream_call final : public owned_inputs_call<In, Out, Many>, public stream_state<CallOut> {
 public:
  using definition = serving_definition<In, Out, CallIn, CallOut>;
  using callback = std::function<void(event<CallOut>)>;

  // Without `on_event` the stream is read through stream_state (pull).
  stream_call(typename owned_inputs_call<In, Out, Many>::inputs_type inputs,
              std::shared_ptr<const definition> def, callback on_event = {})
      : owned_inputs_call<In, Out, Many>(std::move(inputs)),
        def_(std::move(def)),
        on_event_(std::move(on_event)) {}
  ~stream_call() override { this->stop_cancelling(); }

  std::optional<event<CallOut>> next() override {
    unique_lock lock(mu_);
    if (reader_done_) return std::nullopt;
    while (events_.empty()) ready_.wait(lock.native());
    raw_event raw = std::move(events_.front());
    events_.pop_front();
    if (raw.kind == event_kind::end || raw.kind == event_kind::error) reader_done_ = true;
    if (raw.kind == event_kind::end) return std::nullopt;
    lock.unlock();
    auto ev = to_event(std::move(raw));
    if (ev.kind() == event_kind::error) {
      lock_guard again(mu_);
      reader_done_ = true;
    }
    return ev;
  }

  bool ready_or_notify(stream_waiter& waiter) override {
    lock_guard lock(mu_);
    if (reader_done_ || !events_.empty()) return true;
    waiter_ = &waiter;
    return false;
  }

  void abandon() noexcept override {
    {
      lock_guard lock(mu_);
      abandoned_ = true;
      events_.clear();
      waiter_ = nullptr;
    }
    this->release();
  }

  void after_delivery() noexcept override { wake(); }

  bool has_callback() const noexcept { return static_cast<bool>(on_event_); }

 protected:
  void accept(std::span<Out> outputs) override BATCH_SERVING_REQUIRES(this->lock_) {
    raw_event raw{event_kind::batch, {}, {}, std::nullopt};
    raw.outputs.reserve(outputs.size());
    for (auto& out : outputs) raw.outputs.push_back(std::move(out));
    push(std::move(raw));
  }

  void accept_hook(hook_slice&& hook) override BATCH_SERVING_REQUIRES(this->lock_) {
    push(raw_event{event_kind::hook, {}, std::move(hook), std::nullopt});
  }

  bool orders_failures() const noexcept override { return true; }

  void on_complete() noexcept override {
    if (this->failure()) {
      push(raw_event{event_kind::error, {}, {}, *this->failure()});
    } else {
      push(raw_event{event_kind::end, {}, {}, std::nullopt});
    }
    wake();
  }

 private:
  struct raw_event {
    event_kind kind;
    std::vector<Out> outputs;
    hook_slice hook;
    std::optional<error> failure;
  };

  void push(raw_event&& raw) {
    lock_guard lock(mu_);
    if (!abandoned_) events_.push_back(std::move(raw));
  }

  // Maps outputs for the caller (map_results runs here, in the reader's or
  // the callback's thread).
  event<CallOut> to_event(raw_event&& raw) const {
    switch (raw.kind) {
      case event_kind::hook: return event<CallOut>::make_hook(std::move(raw.hook));
      case event_kind::error: return event<CallOut>::make_error(std::move(*raw.failure));
      case event_kind::end: return event<CallOut>::make_end();
      default: break;
    }
    auto mapped = def_->finish(result<std::vector<Out>>(std::move(raw.outputs)));
    if (!mapped.ok()) return event<CallOut>::make_error(mapped.error());
    if constexpr (Many) {
      return event<CallOut>::make_batch(std::move(*mapped));
    } else {
      return event<CallOut>::make_item(std::move(mapped->front()));
    }
  }

  void wake() noexcept {
    if (on_event_) {
      pump();
      return;
    }
    stream_waiter* waiter = nullptr;
    {
      lock_guard lock(mu_);
      if (!events_.empty()) waiter = std::exchange(waiter_, nullptr);
    }
    ready_.notify_all();
    // Last: the reader may resume right here and destroy its stream (our
    // caller's reference keeps this call alive, not the reader).
    if (waiter != nullptr) waiter->event_ready();
  }

  // Runs the callback for queued events, in order, one thread at a time:
  // whoever finds the pump idle drains the queue; others leave their events.
  void pump() noexcept {
    unique_lock lock(mu_);
    if (pumping_) return;
    pumping_ = true;
    while (!events_.empty()) {
      raw_event raw = std::move(events_.front());
      events_.pop_front();
      lock.unlock();
      call_dropping_exceptions(on_event_, to_event(std::move(raw)));  // documented: dropped
      lock.lock();
    }
    pumping_ = false;
  }

  std::shared_ptr<const definition> def_;
  callback on_event_;

  mutex mu_;
  std::condition_variable ready_;  // pull: events_ became non-empty
  std::deque<raw_event> events_ BATCH_SERVING_GUARDED_BY(mu_);
  bool abandoned_ BATCH_SERVING_GUARDED_BY(mu_) = false;
  bool reader_done_ BATCH_SERVING_GUARDED_BY(mu_) = false;
  bool pumping_ BATCH_SERVING_GUARDED_BY(mu_) = false;
  stream_waiter* waiter_ BATCH_SERVING_GUARDED_BY(mu_) = nullptr;  // a non-blocking reader
};

}  // namespace batch_serving::detail
