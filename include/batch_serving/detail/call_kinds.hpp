// The concrete kinds of call: where inputs are kept, where outputs go, and
// how the caller learns the call finished.
//
//   owned_inputs_call  owns its inputs
//   stored_call        + collects its outputs
//   waiting_call       + a completion flag a blocking caller waits on
//   future_call        + the future_state a future<T> waits on
//   callback_call      + a callback run when the call finishes
// (stream_call.hpp has the streaming kind.)
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/call.hpp"
#include "batch_serving/detail/completion_flag.hpp"
#include "batch_serving/detail/future_state.hpp"
#include "batch_serving/detail/serving_definition.hpp"
#include "batch_serving/detail/thread_annotations.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving::detail {

// A call that owns its inputs. Many: an explicit batch; otherwise one item.
template <class In, class Out, bool Many>
class owned_inputs_call : public call<In, Out> {
 public:
  using inputs_type = std::conditional_t<Many, std::vector<In>, In>;

 protected:
  explicit owned_inputs_call(inputs_type inputs) : inputs_(std::move(inputs)) {
    if constexpr (Many) {
      this->set_inputs(std::span<In>(inputs_));
    } else {
      this->set_inputs(std::span<In>(&inputs_, 1));
    }
  }

 private:
  inputs_type inputs_;
};

// ... that also collects its outputs into one answer.
template <class In, class Out, bool Many>
class stored_call : public owned_inputs_call<In, Out, Many> {
 public:
  using typename owned_inputs_call<In, Out, Many>::inputs_type;
  using answer_type = std::conditional_t<Many, std::vector<Out>, Out>;

  // The batch-level answer; call once, after the call finished. A result
  // type whose move throws becomes execution_failed.
  result<answer_type> take_answer() {
    if (this->failure()) return *this->failure();
    try {
      if constexpr (Many) {
        return std::move(outputs_);
      } else {
        return std::move(*outputs_);
      }
    } catch (...) {
      return error(errc::execution_failed,
                   "moving the result to its caller threw: " + describe_current_exception());
    }
  }

 protected:
  explicit stored_call(inputs_type inputs) : owned_inputs_call<In, Out, Many>(std::move(inputs)) {
    if constexpr (Many) outputs_.reserve(this->size());
  }

  void accept(std::span<Out> outputs) override BATCH_SERVING_REQUIRES(this->lock_) {
    if constexpr (Many) {
      for (auto& out : outputs) outputs_.push_back(std::move(out));
    } else {
      outputs_.emplace(std::move(outputs.front()));
    }
  }

 private:
  std::conditional_t<Many, std::vector<Out>, std::optional<Out>> outputs_;
};

// A blocking caller's call: the caller waits on its completion flag.
template <class In, class Out, bool Many>
class waiting_call : public stored_call<In, Out, Many> {
 public:
  explicit waiting_call(typename stored_call<In, Out, Many>::inputs_type inputs)
      : stored_call<In, Out, Many>(std::move(inputs)) {}
  ~waiting_call() override { this->stop_cancelling(); }

  void wait() noexcept { done_.wait(); }
  bool wait_until(clock::time_point deadline) noexcept { return done_.wait_until(deadline); }
  bool ready() const noexcept { return done_.is_set(); }

 protected:
  void on_complete() noexcept override { done_.set(); }

 private:
  completion_flag done_;
};

// Owner: the client that made the call; it maps answers (map_answer()) and
// cancels (cancel(call)), and outlives the call through owner_.
template <class In, class Out, class CallIn, class CallOut, bool Many, class Owner>
class future_call final
    : public waiting_call<In, Out, Many>,
      public future_state<std::conditional_t<Many, std::vector<CallOut>, CallOut>> {
 public:
  using value_type = std::conditional_t<Many, std::vector<CallOut>, CallOut>;

  future_call(typename stored_call<In, Out, Many>::inputs_type inputs, std::shared_ptr<Owner> owner)
      : waiting_call<In, Out, Many>(std::move(inputs)), owner_(std::move(owner)) {}
  ~future_call() override { this->stop_cancelling(); }

  void wait() noexcept override {
    if (!ready()) owner_->before_blocking_wait(*this);
    waiting_call<In, Out, Many>::wait();
  }
  bool wait_until(clock::time_point deadline) noexcept override {
    if (!ready()) owner_->before_blocking_wait(*this);
    return waiting_call<In, Out, Many>::wait_until(deadline);
  }
  bool ready() const noexcept override { return waiting_call<In, Out, Many>::ready(); }
  result<value_type> take() override { return owner_->map_answer(this->take_answer()); }
  bool cancel() noexcept override { return owner_->cancel(*this); }
  void drop() noexcept override { this->release(); }

 private:
  std::shared_ptr<Owner> owner_;
};

template <class In, class Out, class CallIn, class CallOut, bool Many, class Owner, class Callback>
class callback_call final : public stored_call<In, Out, Many> {
 public:
  using value_type = std::conditional_t<Many, std::vector<CallOut>, CallOut>;

  callback_call(typename stored_call<In, Out, Many>::inputs_type inputs,
                std::shared_ptr<Owner> owner, Callback callback)
      : stored_call<In, Out, Many>(std::move(inputs)),
        owner_(std::move(owner)),
        callback_(std::move(callback)) {}
  ~callback_call() override { this->stop_cancelling(); }

 protected:
  void on_complete() noexcept override {
    // Its exception has no caller left to go to (documented on dispatch_async).
    call_dropping_exceptions(callback_, owner_->map_answer(this->take_answer()));
  }

 private:
  std::shared_ptr<Owner> owner_;
  Callback callback_;
};

}  // namespace batch_serving::detail
