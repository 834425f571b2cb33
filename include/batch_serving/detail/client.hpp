// The caller side of a plain server: maps caller items to batch values in the
// caller's thread, builds the call of the requested completion style, hands
// it to an intake (which admits, queues or refuses it), and maps the answer
// back. It never names the engine: any intake will do.
#pragma once

#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "batch_serving/call_options.hpp"
#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/call_kinds.hpp"
#include "batch_serving/detail/endpoint.hpp"
#include "batch_serving/detail/future_state.hpp"
#include "batch_serving/detail/intake.hpp"
#include "batch_serving/detail/serving_definition.hpp"
#include "batch_serving/future.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving::detail {

inline error empty_batch_error(const char* operation) {
  return error(errc::invalid_argument,
               std::string(operation) + " needs at least one item; got an empty batch");
}

// Why an explicit batch of `n` items cannot be a call, if it cannot.
inline std::optional<error> bad_batch_size(std::size_t n, const char* operation) {
  if (n == 0) return empty_batch_error(operation);
  if (n > most_items_per_call) {
    return error(errc::invalid_argument, std::string(operation) + " takes at most " +
                                             std::to_string(most_items_per_call) +
                                             " items per call; got " + std::to_string(n));
  }
  return std::nullopt;
}

// Builds a call of kind `Kind`; a throwing move of the caller's items (or
// callback) into it becomes an error for this caller alone. Out of memory
// still throws.
template <class Kind, class... Args>
Kind* make_call(std::optional<error>& bad, Args&&... args) {
  // Only moving the caller's values can throw anything but bad_alloc. When
  // none can, no handler: it keeps the construction out of line, ~50
  // instructions a call (callgrind).
  if constexpr ((std::is_nothrow_constructible_v<std::decay_t<Args>, Args&&> && ...)) {
    return new Kind(std::forward<Args>(args)...);
  } else {
    try {
      return new Kind(std::forward<Args>(args)...);
    } catch (const std::bad_alloc&) {
      throw;
    } catch (...) {
      bad = error(errc::invalid_argument,
                  "moving the input into its call threw: " + describe_current_exception());
      return nullptr;
    }
  }
}

template <class In, class Out, class CallIn, class CallOut>
class client final : public endpoint<CallIn, CallOut>,
                     public std::enable_shared_from_this<client<In, Out, CallIn, CallOut>> {
 public:
  using definition = serving_definition<In, Out, CallIn, CallOut>;

  client(std::shared_ptr<const definition> def, std::shared_ptr<intake<In, Out>> target)
      : def_(std::move(def)),
        intake_(std::move(target)),
        spans_(def_->map_in || def_->map_out ? intake_->mapping_spans() : nullptr) {}

  result<CallOut> dispatch(CallIn item, const call_options& options) override {
    std::optional<In> input;
    if (auto bad = mapped_inputs(std::move(item), input)) return *bad;
    return map_answer(wait_for<false>(std::move(*input), options));
  }

  result<std::vector<CallOut>> dispatch_many(std::span<const CallIn> items,
                                             const call_options& options) override {
    if (auto bad = bad_batch_size(items.size(), "dispatch_many")) return *bad;
    std::vector<In> inputs;
    if (auto bad = mapped_inputs(items, inputs)) return *bad;
    return map_answer(wait_for<true>(std::move(inputs), options));
  }

  // dispatch_many for items the caller gave up (moved through when no
  // map_inputs is set).
  result<std::vector<CallOut>> dispatch_many_owned(std::vector<CallIn>&& items,
                                                   const call_options& options) {
    std::optional<std::vector<In>> inputs;
    if (auto bad = batch_inputs(std::move(items), inputs, "dispatch_many")) return *bad;
    return map_answer(wait_for<true>(std::move(*inputs), options));
  }

  future<CallOut> dispatch_async(CallIn item, const call_options& options) override {
    using kind = future_call<In, Out, CallIn, CallOut, false, client>;
    std::optional<In> input;
    std::optional<error> bad = mapped_inputs(std::move(item), input);
    return start_future<kind>(std::move(input), std::move(bad), options);
  }

  future<std::vector<CallOut>> dispatch_many_async(std::vector<CallIn> items,
                                                   const call_options& options) override {
    using kind = future_call<In, Out, CallIn, CallOut, true, client>;
    std::optional<std::vector<In>> inputs;
    std::optional<error> bad = batch_inputs(std::move(items), inputs);
    return start_future<kind>(std::move(inputs), std::move(bad), options);
  }

  // dispatch_many_async of items the caller keeps (copied, or mapped).
  future<std::vector<CallOut>> dispatch_many_async_copied(std::span<const CallIn> items,
                                                          const call_options& options) {
    using kind = future_call<In, Out, CallIn, CallOut, true, client>;
    std::optional<std::vector<In>> inputs;
    std::optional<error> bad = batch_inputs(items, inputs);
    return start_future<kind>(std::move(inputs), std::move(bad), options);
  }

  void dispatch_async(CallIn item, const call_options& options,
                      std::function<void(result<CallOut>)> done) override {
    dispatch_with_callback(std::move(item), options, std::move(done));
  }

  void dispatch_many_async(std::vector<CallIn> items, const call_options& options,
                           std::function<void(result<std::vector<CallOut>>)> done) override {
    dispatch_many_with_callback(std::move(items), options, std::move(done));
  }

  template <class Callback>
  void dispatch_with_callback(CallIn item, const call_options& options, Callback&& done) {
    using kind = callback_call<In, Out, CallIn, CallOut, false, client, std::decay_t<Callback>>;
    std::optional<In> input;
    std::optional<error> bad = mapped_inputs(std::move(item), input);
    start_callback<kind>(std::move(input), std::move(bad), options, std::forward<Callback>(done));
  }

  template <class Callback>
  void dispatch_many_with_callback(std::vector<CallIn> items, const call_options& options,
                                   Callback&& done) {
    using kind = callback_call<In, Out, CallIn, CallOut, true, client, std::decay_t<Callback>>;
    std::optional<std::vector<In>> inputs;
    std::optional<error> bad = batch_inputs(std::move(items), inputs);
    start_callback<kind>(std::move(inputs), std::move(bad), options, std::forward<Callback>(done));
  }

  template <class Callback>
  void dispatch_many_copied_with_callback(std::span<const CallIn> items,
                                          const call_options& options, Callback&& done) {
    using kind = callback_call<In, Out, CallIn, CallOut, true, client, std::decay_t<Callback>>;
    std::optional<std::vector<In>> inputs;
    std::optional<error> bad = batch_inputs(items, inputs);
    start_callback<kind>(std::move(inputs), std::move(bad), options, std::forward<Callback>(done));
  }

  // The caller's answer, mapped (map_results), and timed for telemetry
  // when someone asked. Also for the asynchronous calls this client made
  // (see call_kinds.hpp).
  template <class Answer>
  auto map_answer(result<Answer>&& answer) const {
    if (spans_ == nullptr || !def_->map_out || !answer.ok()) return def_->finish(std::move(answer));
    std::size_t items = 1;
    if constexpr (std::is_same_v<Answer, std::vector<Out>>) items = answer->size();
    const clock::time_point start = clock::now();
    auto mapped = def_->finish(std::move(answer));
    spans_->mapping_ran(mapping_phase::map_results, items, clock::now() - start);
    return mapped;
  }
  bool cancel(call<In, Out>& c) noexcept { return intake_->cancel(c); }
  void before_blocking_wait(call<In, Out>& c) noexcept { intake_->before_blocking_wait(c); }

 private:
  template <bool Many>
  auto wait_for(typename stored_call<In, Out, Many>::inputs_type inputs,
                const call_options& options)
      -> result<typename stored_call<In, Out, Many>::answer_type> {
    if (auto refused = intake_->blocking_wait_refusal()) return *refused;
    std::optional<error> bad;
    auto* c = make_call<waiting_call<In, Out, Many>>(bad, std::move(inputs));
    if (c == nullptr) return *bad;
    struct releaser {
      call<In, Out>* c;
      ~releaser() { c->release(); }
    } guard{c};
    intake_->submit(*c, options);  // a refusal completes it at once
    c->wait();
    return c->take_answer();
  }

  // Maps an explicit batch; moves it through untouched when no mapping is set.
  std::optional<error> batch_inputs(std::vector<CallIn>&& items,
                                    std::optional<std::vector<In>>& inputs,
                                    const char* operation = "dispatch_many_async") const {
    if (auto bad = bad_batch_size(items.size(), operation)) return bad;
    if constexpr (std::is_same_v<In, CallIn>) {
      if (!def_->map_in) {
        inputs.emplace(std::move(items));
        return std::nullopt;
      }
    }
    inputs.emplace();
    return mapped_inputs(std::span<const CallIn>(items), *inputs);
  }

  // Copies (or maps) an explicit batch the caller keeps; a throwing copy
  // answers invalid_argument rather than escaping.
  std::optional<error> batch_inputs(std::span<const CallIn> items,
                                    std::optional<std::vector<In>>& inputs) const {
    if (auto bad = bad_batch_size(items.size(), "dispatch_many_async")) return bad;
    inputs.emplace();
    return mapped_inputs(items, *inputs);
  }

  template <class Kind, class Inputs>
  auto start_future(std::optional<Inputs>&& inputs, std::optional<error>&& bad,
                    const call_options& options) {
    using value_type = typename Kind::value_type;
    Kind* c = bad ? nullptr : make_call<Kind>(bad, std::move(*inputs), this->shared_from_this());
    if (c == nullptr)
      return future<value_type>(new ready_future_state<value_type>(std::move(*bad)));
    intake_->submit(*c, options);
    return future<value_type>(c);  // the creation reference goes to the future
  }

  template <class Kind, class Inputs, class Callback>
  void start_callback(std::optional<Inputs>&& inputs, std::optional<error>&& bad,
                      const call_options& options, Callback&& done) {
    using value_type = typename Kind::value_type;
    Kind* c = bad ? nullptr
                  : make_call<Kind>(bad, std::move(*inputs), this->shared_from_this(),
                                    std::forward<Callback>(done));
    if (c == nullptr) {
      call_dropping_exceptions(done, result<value_type>(std::move(*bad)));
      return;
    }
    intake_->submit(*c, options);
    c->release();  // the intake's references keep it until it completes
  }

  // The caller's items mapped into `inputs` (map_inputs), timed for
  // telemetry when someone asked.
  template <class Items, class Inputs>
  std::optional<error> mapped_inputs(Items&& items, Inputs& inputs) const {
    if (spans_ == nullptr || !def_->map_in)
      return def_->to_batch(std::forward<Items>(items), inputs);
    std::size_t count = 1;
    if constexpr (std::is_same_v<std::remove_cvref_t<Items>, std::span<const CallIn>>) {
      count = items.size();
    }
    const clock::time_point start = clock::now();
    auto bad = def_->to_batch(std::forward<Items>(items), inputs);
    spans_->mapping_ran(mapping_phase::map_inputs, count, clock::now() - start);
    return bad;
  }

  std::shared_ptr<const definition> def_;
  std::shared_ptr<intake<In, Out>> intake_;
  mapping_observer* const spans_;  // null: nobody times the mappings
};

}  // namespace batch_serving::detail
