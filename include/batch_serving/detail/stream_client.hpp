// The caller side of a streaming server: builds stream calls and submits them.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "batch_serving/detail/client.hpp"
#include "batch_serving/detail/endpoint.hpp"
#include "batch_serving/detail/server_core.hpp"
#include "batch_serving/detail/stream_call.hpp"
#include "batch_serving/streaming.hpp"

namespace batch_serving::detail {

template <class In, class Out, class CallIn, class CallOut>
class stream_client final : public endpoint_base {
 public:
  using definition = serving_definition<In, Out, CallIn, CallOut>;
  using core = server_core<In, Out>;
  using on_event = std::function<void(event<CallOut>)>;

  stream_client(std::shared_ptr<const definition> def, std::shared_ptr<core> engine,
                bool with_hooks)
      : def_(std::move(def)), core_(std::move(engine)), with_hooks_(with_hooks) {}

  std::string signature() const override {
    return type_name(typeid(CallIn)) + " -> " + type_name(typeid(CallOut)) + " (streaming)";
  }

  core& engine() noexcept { return *core_; }

  event_stream<CallOut> dispatch(const CallIn& item, on_event callback = {}) {
    std::optional<In> input;
    if (auto bad = def_->to_batch(item, input)) return refuse(*bad, callback);
    return start(new stream_call<In, Out, CallIn, CallOut, false>(std::move(*input), def_,
                                                                  std::move(callback)));
  }

  event_stream<CallOut> dispatch_many(std::span<const CallIn> items, on_event callback = {}) {
    if (auto bad = bad_batch_size(items.size(), "dispatch_many")) return refuse(*bad, callback);
    std::vector<In> inputs;
    if (auto bad = def_->to_batch(items, inputs)) return refuse(*bad, callback);
    auto* c = new stream_call<In, Out, CallIn, CallOut, true>(std::move(inputs), def_,
                                                              std::move(callback));
    // With hooks, each batch_size chunk stays in one execution so that every
    // hook event belongs to exactly one of the caller's slices.
    if (with_hooks_) c->indivisible_chunk = static_cast<std::uint32_t>(core_->options().batch_size);
    return start(c);
  }

 private:
  // Submits `c`; a refusal becomes the stream's one error event. With a
  // callback the stream handle is empty and the server owns the call.
  template <class Call>
  event_stream<CallOut> start(Call* c) {
    const bool pushed = c->has_callback();
    if (auto refused = core_->submit(*c); refused && c->fail(*refused)) c->complete();
    if (pushed) {
      c->release();
      return event_stream<CallOut>(nullptr);
    }
    return event_stream<CallOut>(c);
  }

  event_stream<CallOut> refuse(error e, const on_event& callback) {
    if (!callback) return failed_stream<CallOut>(std::move(e));
    call_dropping_exceptions(callback, event<CallOut>::make_error(std::move(e)));
    return event_stream<CallOut>(nullptr);
  }

  std::shared_ptr<const definition> def_;
  std::shared_ptr<core> core_;
  bool with_hooks_;
};

}  // namespace batch_serving::detail
