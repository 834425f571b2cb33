// serving<In, Out>: what to run on a batch, and how callers' items map to it.
// A serving is a cheap, immutable value: builder methods return a new one.
// Run it inline in the caller's thread (run, run_many) or start a server
// from it (see server.hpp).
//
//   // From a batch function (the seed's new/1):
//   batch_serving::serving<int, int> squares([](std::span<const int> xs) {
//     std::vector<int> out;
//     for (int x : xs) out.push_back(x * x);
//     return out;
//   });
//   auto r = squares.batch_size(2).run_many({1, 2, 3});   // 2 executions: [1 2], [3]
//   // r.value() == std::vector{1, 4, 9}
//
//   // Caller-facing types may differ from batch types:
//   auto by_point = squares.map_inputs([](const point& p) { return p.x; })
//                          .map_results([](int sq) { return std::to_string(sq); });
//   // by_point.run(point{3, 0}).value() == "9"
//
// A module serving (the seed's new/2 with init/3 and handle_batch/3) gives
// each partition its own state: see from_module.
#pragma once

#include <concepts>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/callable_traits.hpp"
#include "batch_serving/detail/handlers.hpp"
#include "batch_serving/detail/serving_definition.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/execution_context.hpp"
#include "batch_serving/result.hpp"
#include "batch_serving/streaming_options.hpp"

namespace batch_serving {

// Defined in streaming.hpp, which serving::streaming() needs.
template <class In, class Out, class CallIn, class CallOut>
class streaming_serving;

// A batch function: takes the execution's inputs (and optionally its
// context) and returns exactly one output per input, in order.
template <class F, class In, class Out>
concept batch_function =
    (std::invocable<F&, std::span<const In>, execution_context&> &&
     std::convertible_to<std::invoke_result_t<F&, std::span<const In>, execution_context&>,
                         std::vector<Out>>) ||
    (std::invocable<F&, std::span<const In>> &&
     std::convertible_to<std::invoke_result_t<F&, std::span<const In>>, std::vector<Out>>);

// A module: per-partition state with a handle_batch member, taking the
// execution's inputs and, if it wants it, the execution's context.
template <class M, class In, class Out>
concept batch_module = requires(M& m, std::span<const In> batch, execution_context& ctx) {
  { m.handle_batch(batch, ctx) } -> std::convertible_to<std::vector<Out>>;
} || requires(M& m, std::span<const In> batch) {
  { m.handle_batch(batch) } -> std::convertible_to<std::vector<Out>>;
};

// Copies share one immutable definition: copying never copies the batch
// function. Every const member is thread-safe.
template <class In, class Out, class CallIn = In, class CallOut = Out>
class serving {
  using definition = detail::serving_definition<In, Out, CallIn, CallOut>;

 public:
  using input_type = CallIn;    // what callers pass, per item
  using output_type = CallOut;  // what callers get, per item
  using batch_input_type = In;
  using batch_output_type = Out;

  // A serving from a batch function, `std::vector<Out>(std::span<const In>)`
  // or `std::vector<Out>(std::span<const In>, execution_context&)`. The one
  // function object is shared by all partitions of a server, which may call
  // it concurrently; use from_module for per-partition state. Allocates.
  template <class F>
    requires batch_function<F, In, Out> && std::same_as<In, CallIn> && std::same_as<Out, CallOut> &&
             (!std::same_as<std::remove_cvref_t<F>, serving>)
  explicit serving(F fn) : def_(std::make_shared<definition>()) {
    auto shared = std::make_shared<std::decay_t<F>>(std::move(fn));
    mutable_def().factory = [shared](const partition_info&) {
      return std::make_unique<detail::function_handler<In, Out, std::decay_t<F>>>(shared);
    };
  }
  // Not a batch function: it must be callable as std::vector<Out>(std::span<const In>) or
  // std::vector<Out>(std::span<const In>, execution_context&) (see batch_function above).
  template <class NotABatchFunction>
    requires(!batch_function<NotABatchFunction, In, Out>) && std::same_as<In, CallIn> &&
                std::same_as<Out, CallOut> &&
                (!std::same_as<std::remove_cvref_t<NotABatchFunction>, serving>)
  explicit serving(NotABatchFunction) = delete;  // wants vector<Out>(span<const In>[, ctx&])

  // A serving whose state lives in a `Module`, created once per partition
  // (the seed's init): as Module(const partition_info&, args...) when that
  // constructor exists, otherwise Module(args...). Each partition calls its
  // own instance's `handle_batch(std::span<const In>, execution_context&)`,
  // never concurrently; the context parameter may be left out. Inline runs
  // create a fresh instance per run, as the seed does. `args` are copied and
  // kept for later partitions. Allocates; constructs no Module yet.
  template <class Module, class... Args>
    requires batch_module<Module, In, Out> && std::same_as<In, CallIn> &&
             std::same_as<Out, CallOut> &&
             (std::constructible_from<Module, const partition_info&, const Args&...> ||
              std::constructible_from<Module, const Args&...>)
  static serving from_module(Args... args) {
    serving s;
    // Shared, so that the factory stays copyable whatever the arguments are.
    s.mutable_def().factory =
        [stored = std::make_shared<const std::tuple<Args...>>(std::move(args)...)](
            const partition_info& where) -> std::unique_ptr<detail::batch_handler<In, Out>> {
      return std::apply(
          [&](const auto&... a) {
            using handler = detail::module_handler<In, Out, Module>;
            if constexpr (std::constructible_from<Module, const partition_info&, const Args&...>) {
              return std::make_unique<handler>(where, a...);
            } else {
              return std::make_unique<handler>(a...);
            }
          },
          *stored);
    };
    return s;
  }
  // Not a module for these types, or not constructible from the arguments: a
  // Module needs handle_batch(std::span<const In>[, execution_context&])
  // returning std::vector<Out>, and a constructor (const partition_info&,
  // const Args&...) or (const Args&...) (see batch_module above).
  template <class NotAModule, class... Args>
    requires(!batch_module<NotAModule, In, Out> ||
             !(std::constructible_from<NotAModule, const partition_info&, const Args&...> ||
               std::constructible_from<NotAModule, const Args&...>)) &&
                std::same_as<In, CallIn> && std::same_as<Out, CallOut>
  static serving from_module(Args... args) = delete;  // wants handle_batch(span<const In>)

  // A copy whose executions hold at most `n` items: the default batch size
  // of servers started from it, and the chunk size of run_many. Throws
  // serving_error (invalid_argument) if n is 0. Allocates the copy's
  // definition. The getter never blocks or allocates.
  serving batch_size(std::size_t n) const {
    if (n == 0)
      throw serving_error(errc::invalid_argument, "serving::batch_size must be at least 1");
    serving copy = *this;
    copy.mutable_def().batch_size = n;
    return copy;
  }
  std::optional<std::size_t> batch_size() const noexcept { return def_->batch_size; }

  // A copy whose callers pass `NewCallIn` items; `f` maps each to an `In`,
  // in the caller's thread. An exception from `f` fails only that call
  // (invalid_argument). Replaces an earlier map_inputs. Allocates.
  template <class NewCallIn, class F>
    requires std::is_invocable_r_v<In, F&, const NewCallIn&>
  serving<In, Out, NewCallIn, CallOut> map_inputs(F f) const {
    serving<In, Out, NewCallIn, CallOut> mapped;
    auto& d = mapped.mutable_def();
    d.factory = def_->factory;
    d.batch_size = def_->batch_size;
    d.map_in = detail::shared_function<In(const NewCallIn&)>(std::move(f));
    d.map_out = def_->map_out;
    return mapped;
  }
  template <class F>
    requires detail::has_sole_parameter<F>
  auto map_inputs(F f) const {
    return map_inputs<detail::sole_parameter_t<F>>(std::move(f));
  }

  // A copy whose callers receive `f(out)` for each of their outputs, run in
  // the caller's thread (for callbacks: the thread that runs the callback).
  // An exception from `f` fails only that call (execution_failed). Replaces
  // an earlier map_results. Allocates.
  template <class F>
    requires std::invocable<F&, Out&&>
  auto map_results(F f) const {
    using NewCallOut = std::remove_cvref_t<std::invoke_result_t<F&, Out&&>>;
    serving<In, Out, CallIn, NewCallOut> mapped;
    auto& d = mapped.mutable_def();
    d.factory = def_->factory;
    d.batch_size = def_->batch_size;
    d.map_in = def_->map_in;
    d.map_out = detail::shared_function<NewCallOut(Out&&)>(std::move(f));
    return mapped;
  }

  // Runs the batch function on one item in this thread, with no server (the
  // seed's inline/2). Blocks for the batch function; allocates (the
  // partition state, the batch).
  result<CallOut> run(const CallIn& item) const {
    auto many = run_many(std::span<const CallIn>(&item, 1));
    if (!many.ok()) return many.error();
    return std::move(many->front());
  }

  // Runs the batch function on `items` in this thread (the seed's
  // inline_many/2), in executions of at most batch_size() items, and returns
  // all outputs in order. Creates the partition state once per call. Blocks
  // for the batch function; allocates.
  result<std::vector<CallOut>> run_many(std::span<const CallIn> items) const {
    if (items.empty()) {
      return error(errc::invalid_argument, "run_many needs at least one item; got an empty batch");
    }
    std::vector<In> inputs;
    if (auto bad = def_->to_batch(items, inputs)) return *bad;
    const std::size_t chunk = def_->batch_size.value_or(inputs.size());
    const partition_info where{execution_mode::inline_run, 0, chunk};
    std::unique_ptr<detail::batch_handler<In, Out>> handler;
    try {
      handler = def_->factory(where);
    } catch (...) {
      return error(errc::execution_failed,
                   "serving init threw: " + detail::describe_current_exception());
    }
    std::vector<Out> all;
    all.reserve(inputs.size());
    std::vector<Out> outputs;
    for (std::size_t at = 0; at < inputs.size(); at += chunk) {
      const auto batch =
          std::span<const In>(inputs).subspan(at, std::min(chunk, inputs.size() - at));
      execution_context ctx(where, batch.size());
      if (auto failed = detail::run_batch(*handler, batch, ctx, outputs)) return *failed;
      for (auto& out : outputs) all.push_back(std::move(out));
    }
    return def_->finish(result<std::vector<Out>>(std::move(all)));
  }
  result<std::vector<CallOut>> run_many(std::initializer_list<CallIn> items) const {
    return run_many(std::span<const CallIn>(items.begin(), items.size()));
  }

  // A streaming copy: callers get event streams, and the batch function may
  // emit the declared hooks. Needs batch_serving/streaming.hpp (or the
  // umbrella header). Throws serving_error (invalid_argument) for an empty or
  // repeated hook name. Thread-safe; allocates.
  auto streaming(streaming_options options) const {
    using streaming_type = streaming_serving<In, Out, CallIn, CallOut>;
    static_assert(detail::complete_type<streaming_type>,
                  "serving::streaming() needs #include <batch_serving/streaming.hpp>");
    return streaming_type(*this, std::move(options));
  }

  // For server: the shared definition.
  const std::shared_ptr<const definition>& definition_ptr() const noexcept { return def_; }

 private:
  template <class, class, class, class>
  friend class serving;

  serving() : def_(std::make_shared<definition>()) {}

  // Builders only touch a definition no one else shares yet, or copy it first.
  definition& mutable_def() {
    if (def_.use_count() != 1) def_ = std::make_shared<definition>(*def_);
    return const_cast<definition&>(*def_);
  }

  std::shared_ptr<const definition> def_;
};

}  // namespace batch_serving
