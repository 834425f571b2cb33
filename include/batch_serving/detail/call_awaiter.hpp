// The awaiters behind co_dispatch / co_dispatch_many (coroutine.hpp): start
// the call through the server's callback form with a callback that holds only
// a pointer to the awaiter, so the call block is the only allocation (and it
// comes from the call pool).
#pragma once

#include <atomic>
#include <coroutine>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "batch_serving/call_options.hpp"
#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/resume_node.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/registry.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving::detail {

// Value: what the call answers. Resumer: where it resumes (resumer.hpp).
template <class Value, class Resumer>
class call_awaiter_base {
 public:
  explicit call_awaiter_base(Resumer resumer) : resumer_(std::move(resumer)) {}
  call_awaiter_base(const call_awaiter_base&) = delete;
  call_awaiter_base& operator=(const call_awaiter_base&) = delete;

  bool await_ready() const noexcept { return false; }
  result<Value> await_resume() { return std::move(*answer_); }

 protected:
  // The callback stored in the call block: one pointer.
  struct on_answer {
    call_awaiter_base* self;
    void operator()(result<Value> r) const noexcept { self->answered(std::move(r)); }
  };

  // After the call was submitted: true to stay suspended, false if the answer
  // is already here (refused at once: go on in this thread, no hand-off).
  // Its exchange is the last touch of the awaiter.
  bool stay_suspended() noexcept {
    return !answer_or_suspended_.exchange(true, std::memory_order_acq_rel);
  }
  void set_handle(std::coroutine_handle<> h) noexcept { node_.handle = h; }

 private:
  // Who comes second of (the answer, await_suspend's end) resumes: the answer
  // then resumes on the target; await_suspend then declines to suspend.
  void answered(result<Value>&& r) noexcept {
    try {
      answer_.emplace(std::move(r));
    } catch (...) {
      answer_.emplace(error(errc::execution_failed, "moving the result into the coroutine threw: " +
                                                        describe_current_exception()));
    }
    if (answer_or_suspended_.exchange(true, std::memory_order_acq_rel)) resumer_.resume(node_);
  }

  resume_node node_;
  Resumer resumer_;
  std::optional<result<Value>> answer_;
  std::atomic<bool> answer_or_suspended_{false};
};

// co_dispatch: one item (Many = false) or an explicit batch (Many = true).
// Target: what the call goes to, with the callback forms dispatch_async /
// dispatch_many_async(input, options, callback): a pointer to a server or a
// client (used by reference), or a named_target held by value.
template <class Target, class Input, class Value, class Resumer, bool Many>
class call_awaiter : public call_awaiter_base<Value, Resumer> {
  using base = call_awaiter_base<Value, Resumer>;

 public:
  call_awaiter(Target target, Input input, call_options options, Resumer resumer)
      : base(std::move(resumer)),
        target_(std::move(target)),
        input_(std::move(input)),
        options_(std::move(options)) {}

  bool await_suspend(std::coroutine_handle<> h) {
    this->set_handle(h);
    auto& to = dispatcher();
    if constexpr (Many) {
      to.dispatch_many_async(std::move(input_), options_, typename base::on_answer{this});
    } else {
      to.dispatch_async(std::move(input_), options_, typename base::on_answer{this});
    }
    return this->stay_suspended();
  }

 private:
  auto& dispatcher() {
    if constexpr (std::is_pointer_v<Target>) {
      return *target_;
    } else {
      return target_;
    }
  }

  Target target_;
  Input input_;
  call_options options_;
};

// A server of this process by name (registry.hpp), for the by-name co_ forms.
template <class CallIn, class CallOut>
struct named_target {
  std::string name;

  template <class Callback>
  void dispatch_async(CallIn item, const call_options& options, Callback done) const {
    batch_serving::dispatch_async<CallIn, CallOut>(name, std::move(item), options, std::move(done));
  }
  template <class Callback>
  void dispatch_many_async(std::vector<CallIn> items, const call_options& options,
                           Callback done) const {
    batch_serving::dispatch_many_async<CallIn, CallOut>(name, std::move(items), options,
                                                        std::move(done));
  }
};

}  // namespace batch_serving::detail
