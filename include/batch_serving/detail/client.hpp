// The caller side of a server: maps caller items to batch values in the
// caller's thread, builds the call of the requested completion style, hands it
// to the engine, and maps the answer back.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "batch_serving/detail/call_kinds.hpp"
#include "batch_serving/detail/endpoint.hpp"
#include "batch_serving/detail/server_core.hpp"
#include "batch_serving/detail/serving_definition.hpp"

namespace batch_serving::detail {

inline error empty_batch_error(const char* operation) {
  return error(errc::invalid_argument,
               std::string(operation) + " needs at least one item; got an empty batch");
}

template <class In, class Out, class CallIn, class CallOut>
class client final : public endpoint<CallIn, CallOut> {
 public:
  using definition = serving_definition<In, Out, CallIn, CallOut>;
  using core = server_core<In, Out>;

  client(std::shared_ptr<const definition> def, std::shared_ptr<core> engine)
      : def_(std::move(def)), core_(std::move(engine)) {}

  core& engine() noexcept { return *core_; }

  result<CallOut> dispatch(const CallIn& item) override {
    std::optional<In> input;
    if (auto bad = def_->to_batch(item, input)) return *bad;
    return def_->finish(wait_for<false>(std::move(*input)));
  }

  result<std::vector<CallOut>> dispatch_many(std::span<const CallIn> items) override {
    if (items.empty()) return empty_batch_error("dispatch_many");
    std::vector<In> inputs;
    if (auto bad = def_->to_batch(items, inputs)) return *bad;
    return def_->finish(wait_for<true>(std::move(inputs)));
  }

  future<CallOut> dispatch_async(CallIn item) override {
    using kind = future_call<In, Out, CallIn, CallOut, false>;
    std::optional<In> input;
    std::optional<error> bad = def_->to_batch(item, input);
    return start_future<kind>(std::move(input), std::move(bad));
  }

  future<std::vector<CallOut>> dispatch_many_async(std::vector<CallIn> items) override {
    using kind = future_call<In, Out, CallIn, CallOut, true>;
    std::optional<std::vector<In>> inputs;
    std::optional<error> bad = batch_inputs(std::move(items), inputs);
    return start_future<kind>(std::move(inputs), std::move(bad));
  }

  void dispatch_async(CallIn item, std::function<void(result<CallOut>)> done) override {
    dispatch_with_callback(std::move(item), std::move(done));
  }

  void dispatch_many_async(std::vector<CallIn> items,
                           std::function<void(result<std::vector<CallOut>>)> done) override {
    dispatch_many_with_callback(std::move(items), std::move(done));
  }

  template <class Callback>
  void dispatch_with_callback(CallIn item, Callback&& done) {
    using kind = callback_call<In, Out, CallIn, CallOut, false, std::decay_t<Callback>>;
    std::optional<In> input;
    std::optional<error> bad = def_->to_batch(item, input);
    start_callback<kind>(std::move(input), std::move(bad), std::forward<Callback>(done));
  }

  template <class Callback>
  void dispatch_many_with_callback(std::vector<CallIn> items, Callback&& done) {
    using kind = callback_call<In, Out, CallIn, CallOut, true, std::decay_t<Callback>>;
    std::optional<std::vector<In>> inputs;
    std::optional<error> bad = batch_inputs(std::move(items), inputs);
    start_callback<kind>(std::move(inputs), std::move(bad), std::forward<Callback>(done));
  }

 private:
  template <bool Many>
  auto wait_for(typename stored_call<In, Out, Many>::inputs_type inputs)
      -> result<typename stored_call<In, Out, Many>::answer_type> {
    auto* c = new waiting_call<In, Out, Many>(std::move(inputs));
    struct releaser {
      call<In, Out>* c;
      ~releaser() { c->release(); }
    } guard{c};
    if (auto refused = core_->submit(*c)) return *refused;
    c->wait();
    return c->take_answer();
  }

  // Maps an explicit batch; moves it through untouched when no mapping is set.
  std::optional<error> batch_inputs(std::vector<CallIn>&& items,
                                    std::optional<std::vector<In>>& inputs) const {
    if (items.empty()) return empty_batch_error("dispatch_many_async");
    if constexpr (std::is_same_v<In, CallIn>) {
      if (!def_->map_in) {
        inputs.emplace(std::move(items));
        return std::nullopt;
      }
    }
    inputs.emplace();
    return def_->to_batch(std::span<const CallIn>(items), *inputs);
  }

  // Hands `c` to the engine; a refusal (shutting down) answers it at once, so
  // the caller still gets exactly one answer.
  void submit_or_refuse(call<In, Out>& c) {
    if (auto refused = core_->submit(c); refused && c.fail(*refused)) c.complete();
  }

  template <class Kind, class Inputs>
  auto start_future(std::optional<Inputs>&& inputs, std::optional<error>&& bad) {
    using value_type = typename Kind::value_type;
    if (bad) return future<value_type>(new ready_future_state<value_type>(std::move(*bad)));
    auto* c = new Kind(std::move(*inputs), def_);
    submit_or_refuse(*c);
    return future<value_type>(c);  // the creation reference goes to the future
  }

  template <class Kind, class Inputs, class Callback>
  void start_callback(std::optional<Inputs>&& inputs, std::optional<error>&& bad, Callback&& done) {
    using value_type = typename Kind::value_type;
    if (bad) {
      call_dropping_exceptions(done, result<value_type>(std::move(*bad)));
      return;
    }
    auto* c = new Kind(std::move(*inputs), def_, std::forward<Callback>(done));
    submit_or_refuse(*c);
    c->release();  // the server's references keep it until it completes
  }

  std::shared_ptr<const definition> def_;
  std::shared_ptr<core> core_;
};

}  // namespace batch_serving::detail
