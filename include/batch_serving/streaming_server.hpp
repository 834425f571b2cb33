// server<..., true>: a server started from a streaming_serving. Every
// dispatch returns an event_stream right away (it never blocks on the work);
// reading the stream blocks until each event arrives. Callback forms receive
// each event in order on server threads, ending with an `end` or `error`
// event.
//
//   batch_serving::server srv(serving.streaming({.hooks = {"progress"}}),
//                             {.batch_size = 3});
//   for (auto& ev : srv.dispatch_many({1, 2, 3, 4, 5})) { ... }
//   // progress[1,2,3], batch[..], progress[4,5], batch[..]
//
// Lifecycle, options, names and stats are as for a plain server (server.hpp).
// A streaming server registered under a name serves streams only: dispatch by
// name with the plain forms gets a clear invalid_argument error.
#pragma once

#include <concepts>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "batch_serving/detail/registry.hpp"
#include "batch_serving/detail/stream_client.hpp"
#include "batch_serving/event.hpp"
#include "batch_serving/event_stream.hpp"
#include "batch_serving/server.hpp"
#include "batch_serving/streaming.hpp"

namespace batch_serving {

template <class In, class Out, class CallIn, class CallOut>
class server<In, Out, CallIn, CallOut, true>
    : public detail::server_handle<detail::stream_client<In, Out, CallIn, CallOut>> {
  using client_type = detail::stream_client<In, Out, CallIn, CallOut>;
  using handle = detail::server_handle<client_type>;

 public:
  // Starts the server as server.hpp describes. stop(), stats(), name(),
  // batch_size(), partitions(): see server_handle.
  server(const streaming_serving<In, Out, CallIn, CallOut>& s, server_options options = {})
      : handle(make_client(s, options)) {}

  // The item's events: its hook events, then one item event (or an error).
  event_stream<CallOut> dispatch(const CallIn& item) { return this->client().dispatch(item); }

  // The items' events: per slice, its hook events then a batch event.
  event_stream<CallOut> dispatch_many(std::span<const CallIn> items) {
    return this->client().dispatch_many(items);
  }
  event_stream<CallOut> dispatch_many(std::initializer_list<CallIn> items) {
    return this->client().dispatch_many(std::span<const CallIn>(items.begin(), items.size()));
  }

  // Callback forms: `on_event(event)` runs for each event in order, one at a
  // time, on server threads (or in this thread if refused at once); the last
  // event is `end` or `error`. Exceptions it throws are dropped.
  template <class Callback>
    requires std::invocable<Callback&, event<CallOut>>
  void dispatch_async(const CallIn& item, Callback&& on_event) {
    (void)this->client().dispatch(item, std::forward<Callback>(on_event));
  }
  template <class Callback>
    requires std::invocable<Callback&, event<CallOut>>
  void dispatch_many_async(std::span<const CallIn> items, Callback&& on_event) {
    (void)this->client().dispatch_many(items, std::forward<Callback>(on_event));
  }

 private:
  static std::shared_ptr<client_type> make_client(
      const streaming_serving<In, Out, CallIn, CallOut>& s, const server_options& options) {
    const auto& def = s.base().definition_ptr();
    return std::make_shared<client_type>(def,
                                         std::make_shared<detail::server_core<In, Out>>(
                                             def->factory,
                                             detail::resolve_options(options, s.batch_size()),
                                             s.hooks()),
                                         !s.hooks().empty());
  }
};

template <class In, class Out, class CallIn, class CallOut>
server(const streaming_serving<In, Out, CallIn, CallOut>&, server_options)
    -> server<In, Out, CallIn, CallOut, true>;
template <class In, class Out, class CallIn, class CallOut>
server(const streaming_serving<In, Out, CallIn, CallOut>&)
    -> server<In, Out, CallIn, CallOut, true>;

}  // namespace batch_serving
