// The caller side of a streaming server: builds stream calls and hands them
// to an intake, with the caller's call_options, as the plain client does.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "batch_serving/call_options.hpp"
#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/client.hpp"
#include "batch_serving/detail/collected_stream.hpp"
#include "batch_serving/detail/endpoint.hpp"
#include "batch_serving/detail/intake.hpp"
#include "batch_serving/detail/serving_definition.hpp"
#include "batch_serving/detail/stream_call.hpp"
#include "batch_serving/event.hpp"
#include "batch_serving/event_stream.hpp"

namespace batch_serving::detail {

template <class In, class Out, class CallIn, class CallOut>
class stream_client final : public stream_endpoint<CallIn, CallOut> {
 public:
  using definition = serving_definition<In, Out, CallIn, CallOut>;
  using on_event = typename stream_endpoint<CallIn, CallOut>::on_event;

  // `indivisible_chunk`: with hooks declared, each chunk of this many items of
  // an explicit batch stays in one execution (its batch_size), so that every
  // hook event belongs to exactly one of the caller's slices; 0 otherwise.
  stream_client(std::shared_ptr<const definition> def, std::shared_ptr<intake<In, Out>> target,
                std::size_t indivisible_chunk)
      : def_(std::move(def)),
        intake_(std::move(target)),
        indivisible_chunk_(static_cast<std::uint32_t>(indivisible_chunk)) {}

  event_stream<CallOut> dispatch(CallIn item, const call_options& options,
                                 on_event callback) override {
    std::optional<In> input;
    std::optional<error> bad = def_->to_batch(std::move(item), input);
    using kind = stream_call<In, Out, CallIn, CallOut, false>;
    kind* c = bad ? nullptr : make_call<kind>(bad, std::move(*input), def_, callback);
    if (c == nullptr) return refused_stream<CallOut>(std::move(*bad), callback);
    return start(c, options);
  }

  event_stream<CallOut> dispatch_many(std::span<const CallIn> items, const call_options& options,
                                      on_event callback) override {
    if (auto bad = bad_batch_size(items.size(), "dispatch_many"))
      return refused_stream<CallOut>(std::move(*bad), callback);
    std::vector<In> inputs;
    if (auto bad = def_->to_batch(items, inputs))
      return refused_stream<CallOut>(std::move(*bad), callback);
    auto* c = new stream_call<In, Out, CallIn, CallOut, true>(std::move(inputs), def_,
                                                              std::move(callback));
    c->indivisible_chunk = indivisible_chunk_;
    return start(c, options);
  }

 private:
  // Submits `c`; a refusal becomes the stream's one error event. With a
  // callback the stream handle is empty and the intake owns the call.
  template <class Call>
  event_stream<CallOut> start(Call* c, const call_options& options) {
    const bool pushed = c->has_callback();
    intake_->submit(*c, options);
    if (pushed) {
      c->release();
      return event_stream<CallOut>(nullptr);
    }
    return event_stream<CallOut>(c);
  }

  std::shared_ptr<const definition> def_;
  std::shared_ptr<intake<In, Out>> intake_;
  std::uint32_t indivisible_chunk_;
};

}  // namespace batch_serving::detail
