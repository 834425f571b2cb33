// streaming_server<In, Out>: a server started from a streaming_serving (the
// specialization server<..., true>, which `server srv(streaming_serving)`
// deduces). Every dispatch returns an event_stream right away (it never
// blocks on the work); reading the stream blocks until each event arrives.
// Callback forms receive each event in order on server threads, ending with
// an `end` or `error` event.
//
//   batch_serving::server srv(serving.streaming({.hooks = {"progress"}}),
//                             {.batch_size = 3});
//   for (auto& ev : srv.dispatch_many({1, 2, 3, 4, 5})) { ... }
//   // progress[1,2,3], batch[..], progress[4,5], batch[..]
//   auto late = srv.dispatch(6, {.timeout = std::chrono::milliseconds(20)});
//   // ... ends with an error event (errc::timeout) if it is not done by then
//
// Lifecycle, options, names and stats are as for a plain server (server.hpp),
// and so are call_options. A streaming server registered under a name is
// reached by name with dispatch_stream (registry.hpp); the plain by-name forms
// get a clear invalid_argument error.
#pragma once

#include <concepts>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "batch_serving/call_options.hpp"
#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/collected_stream.hpp"
#include "batch_serving/detail/core_options.hpp"
#include "batch_serving/detail/engine.hpp"
#include "batch_serving/detail/server_handle.hpp"
#include "batch_serving/detail/stream_client.hpp"
#include "batch_serving/event.hpp"
#include "batch_serving/event_stream.hpp"
#include "batch_serving/server.hpp"
#include "batch_serving/server_options.hpp"
#include "batch_serving/streaming.hpp"

namespace batch_serving {

template <class In, class Out, class CallIn, class CallOut>
class server<In, Out, CallIn, CallOut, true>
    : public detail::server_handle<detail::engine<In, Out>,
                                   detail::stream_client<In, Out, CallIn, CallOut>> {
  using client_type = detail::stream_client<In, Out, CallIn, CallOut>;
  using engine_type = detail::engine<In, Out>;
  using handle = detail::server_handle<engine_type, client_type>;

 public:
  // Starts the server as server.hpp describes. stop(), stats(), name(),
  // batch_size(), partitions(): see server_handle.hpp.
  server(const streaming_serving<In, Out, CallIn, CallOut>& s, server_options options = {})
      : server(std::make_shared<engine_type>(s.base().definition_ptr()->factory,
                                             detail::resolve_options(options, s.batch_size()),
                                             s.hooks()),
               s) {}

  // Every form takes optional call_options, as plain dispatch does: a
  // timeout or deadline ends the stream with a timeout error event, a stop
  // request with a cancelled one. Every form is thread-safe and never blocks
  // on the work; each takes one call block from the pool and allocates the
  // stream's events.

  // The item's events: its hook events, then one item event (or an error).
  event_stream<CallOut> dispatch(CallIn item, const call_options& options = {}) {
    if (auto* c = this->client()) return c->dispatch(std::move(item), options, {});
    return detail::failed_stream<CallOut>(this->moved_from());
  }

  // The items' events: per slice, its hook events then a batch event.
  event_stream<CallOut> dispatch_many(std::span<const CallIn> items,
                                      const call_options& options = {}) {
    if (auto* c = this->client()) return c->dispatch_many(items, options, {});
    return detail::failed_stream<CallOut>(this->moved_from());
  }
  event_stream<CallOut> dispatch_many(std::initializer_list<CallIn> items,
                                      const call_options& options = {}) {
    return dispatch_many(std::span<const CallIn>(items.begin(), items.size()), options);
  }

  // Callback forms: `on_event(event)` runs for each event in order, one at a
  // time, on server threads (or in this thread if refused at once); the last
  // event is `end` or `error`. Exceptions it throws are dropped.
  template <class Callback>
    requires std::invocable<Callback&, event<CallOut>>
  void dispatch_async(CallIn item, Callback&& on_event) {
    dispatch_async(std::move(item), call_options{}, std::forward<Callback>(on_event));
  }
  template <class Callback>
    requires std::invocable<Callback&, event<CallOut>>
  void dispatch_async(CallIn item, const call_options& options, Callback&& on_event) {
    if (auto* c = this->client()) {
      (void)c->dispatch(std::move(item), options, std::forward<Callback>(on_event));
    } else {
      detail::call_dropping_exceptions(on_event, event<CallOut>::make_error(this->moved_from()));
    }
  }
  template <class Callback>
    requires std::invocable<Callback&, event<CallOut>>
  void dispatch_many_async(std::span<const CallIn> items, Callback&& on_event) {
    dispatch_many_async(items, call_options{}, std::forward<Callback>(on_event));
  }
  template <class Callback>
    requires std::invocable<Callback&, event<CallOut>>
  void dispatch_many_async(std::span<const CallIn> items, const call_options& options,
                           Callback&& on_event) {
    if (auto* c = this->client()) {
      (void)c->dispatch_many(items, options, std::forward<Callback>(on_event));
    } else {
      detail::call_dropping_exceptions(on_event, event<CallOut>::make_error(this->moved_from()));
    }
  }

 private:
  server(std::shared_ptr<engine_type> engine, const streaming_serving<In, Out, CallIn, CallOut>& s)
      : handle(engine,
               std::make_shared<client_type>(s.base().definition_ptr(), engine,
                                             s.hooks().empty() ? 0
                                                               : engine->options().batch_size)) {}
};

// The streaming server of a streaming_serving<In, Out, CallIn, CallOut>.
template <class In, class Out, class CallIn = In, class CallOut = Out>
using streaming_server = server<In, Out, CallIn, CallOut, true>;

}  // namespace batch_serving
