// Streaming servings: callers receive a stream of events instead of one
// final value — their slice of every execution's output as soon as that
// execution finishes, and their entries of every hook the batch function
// emits while it runs (progress, token counts, costs...).
//
//   auto indexer = batch_serving::serving<chunk, vec>([](std::span<const chunk> batch,
//                                                        batch_serving::execution_context& ctx) {
//                    ctx.emit("progress", std::vector<int>(batch.size(), 1));
//                    return embed(batch);
//                  }).streaming({.hooks = {"progress"}});
//   batch_serving::server srv(indexer, {.batch_size = 32});
//   for (auto& ev : srv.dispatch_many(chunks)) {
//     if (ev.kind() == batch_serving::event_kind::hook) bar.advance(ev.payload<int>().size());
//     if (ev.kind() == batch_serving::event_kind::batch) store(ev.batch());
//   }
//
// Order: a caller sees, for its first slice, that slice's hook events then its
// batch; then the same for its next slice; partitions never reorder them.
// With hooks declared, an explicit batch is cut into batch_size chunks that
// are never split across executions (inline runs cut it the same way), so
// each hook event belongs to one execution; without hooks the usual packing
// applies. Hooks the serving did not declare are dropped (counted in
// server_stats::hook_events_dropped). A failure ends the stream with an
// error event; the events before it stay delivered.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/collected_stream.hpp"
#include "batch_serving/detail/inline_hooks.hpp"
#include "batch_serving/event.hpp"
#include "batch_serving/event_stream.hpp"
#include "batch_serving/execution_context.hpp"
#include "batch_serving/serving.hpp"
#include "batch_serving/streaming_options.hpp"

namespace batch_serving {

// A cheap, immutable value like serving: copies share the definition. Every
// const member is thread-safe.
template <class In, class Out, class CallIn = In, class CallOut = Out>
class streaming_serving {
 public:
  using input_type = CallIn;
  using output_type = CallOut;

  // What serving::streaming(options) returns. Throws serving_error
  // (invalid_argument) for an empty or repeated hook name. Allocates.
  streaming_serving(serving<In, Out, CallIn, CallOut> base, streaming_options options)
      : base_(std::move(base)),
        hooks_(std::make_shared<const std::vector<std::string>>(
            detail::validated_hooks(std::move(options.hooks)))) {}

  // The declared hook names. Never blocks, never allocates.
  const std::vector<std::string>& hooks() const noexcept { return *hooks_; }
  // As serving::batch_size. The setter returns a copy (allocates).
  std::optional<std::size_t> batch_size() const noexcept { return base_.batch_size(); }
  streaming_serving batch_size(std::size_t n) const {
    streaming_serving copy = *this;
    copy.base_ = base_.batch_size(n);
    return copy;
  }
  // The plain serving this was made from. Never blocks, never allocates.
  const serving<In, Out, CallIn, CallOut>& base() const noexcept { return base_; }

  // A serving is marked streaming once.
  template <class... Args>
  void streaming(Args&&...) const {
    static_assert(sizeof...(Args) < 0, "this serving is already streaming: call streaming() once");
  }

  // Inline, in this thread: runs everything now and returns its events (an
  // item event, or its hook events then the item event). Blocks for the
  // batch function; allocates the events.
  event_stream<CallOut> run(const CallIn& item) const {
    return run_inline<false>(std::span(&item, 1));
  }

  // Inline: executions of at most batch_size() items, each giving its hook
  // events then a batch event; an explicit batch larger than batch_size() is
  // cut into batch_size chunks, as a server cuts it. Blocks for the batch
  // function; allocates the events.
  event_stream<CallOut> run_many(std::span<const CallIn> items) const {
    return run_inline<true>(items);
  }
  event_stream<CallOut> run_many(std::initializer_list<CallIn> items) const {
    return run_many(std::span<const CallIn>(items.begin(), items.size()));
  }

 private:
  template <bool Many>
  event_stream<CallOut> run_inline(std::span<const CallIn> items) const {
    using event_type = event<CallOut>;
    const auto& def = base_.definition_ptr();
    if (items.empty()) {
      return detail::failed_stream<CallOut>(
          error(errc::invalid_argument, "run_many needs at least one item; got an empty batch"));
    }
    const std::size_t chunk = def->batch_size.value_or(items.size());
    std::vector<In> inputs;
    if (auto bad = def->to_batch(items, inputs)) return detail::failed_stream<CallOut>(*bad);
    auto* stream = new detail::collected_stream<CallOut>();
    event_stream<CallOut> events(stream);
    const partition_info where{execution_mode::inline_run, 0, chunk};
    std::unique_ptr<detail::batch_handler<In, Out>> handler;
    try {
      handler = def->factory(where);
    } catch (...) {
      stream->add(event_type::make_error(error(
          errc::execution_failed, "serving init threw: " + detail::describe_current_exception())));
      return events;
    }
    detail::inline_hooks hooks(*hooks_);
    std::vector<Out> outputs;
    for (std::size_t at = 0; at < inputs.size(); at += chunk) {
      const auto batch =
          std::span<const In>(inputs).subspan(at, std::min(chunk, inputs.size() - at));
      execution_context ctx(where, batch.size(), &hooks);
      const auto failed = detail::run_batch(*handler, batch, ctx, outputs);
      for (auto& hook : hooks.take()) stream->add(event_type::make_hook(std::move(hook)));
      if (failed) {
        stream->add(event_type::make_error(*failed));
        return events;
      }
      auto mapped = def->finish(result<std::vector<Out>>(std::move(outputs)));
      outputs.clear();
      if (!mapped.ok()) {
        stream->add(event_type::make_error(mapped.error()));
        return events;
      }
      if constexpr (Many) {
        stream->add(event_type::make_batch(std::move(*mapped)));
      } else {
        stream->add(event_type::make_item(std::move(mapped->front())));
      }
    }
    return events;
  }

  serving<In, Out, CallIn, CallOut> base_;
  std::shared_ptr<const std::vector<std::string>> hooks_;
};

}  // namespace batch_serving
