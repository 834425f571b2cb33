// Dispatch to a server by the name it was started with (server_options::name),
// from anywhere in the process, as the seed's dispatch(MyServing, 2).
// Template arguments are the caller-facing element types the server was
// started with; other types, or a plain form for a streaming server (and the
// other way round), get a clear invalid_argument error naming both
// signatures, never undefined behaviour. An unknown or stopped name gets
// no_serving at once.
//
//   batch_serving::server srv(squares, {.name = "squares"});
//   ...
//   auto r = batch_serving::dispatch<int, int>("squares", 3);      // r.value() == 9
//   auto v = batch_serving::dispatch_many<int, int>("squares", {2, 3});
//   auto e = batch_serving::dispatch<int, int>("cubes", 3);        // errc::no_serving
//   // A streaming server, by name:
//   for (auto& ev : batch_serving::dispatch_stream<int, int>("progress", 3)) { ... }
//
// Every function here is thread-safe and behaves as the server's own form
// of the same name (blocking, allocation, call_options), after one lookup
// of the name under the registry's mutex. Callback forms take any callable,
// move-only ones too (one allocation to share it).
#pragma once

#include <concepts>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "batch_serving/call_options.hpp"
#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/callable_traits.hpp"
#include "batch_serving/detail/collected_stream.hpp"
#include "batch_serving/detail/endpoint.hpp"
#include "batch_serving/detail/future_state.hpp"
#include "batch_serving/detail/registry.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/event.hpp"
#include "batch_serving/event_stream.hpp"
#include "batch_serving/future.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving {

// True if a server is registered under `name` (running, or still starting).
// Never blocks on the work; allocates nothing.
inline bool is_running(std::string_view name) { return detail::find_endpoint(name) != nullptr; }

template <class CallIn, class CallOut>
result<CallOut> dispatch(std::string_view name, CallIn item, const call_options& options = {}) {
  auto target =
      detail::find_typed_endpoint<detail::endpoint<CallIn, CallOut>, CallIn, CallOut>(name, false);
  if (!target.ok()) return target.error();
  return (*target)->dispatch(std::move(item), options);
}

template <class CallIn, class CallOut>
result<std::vector<CallOut>> dispatch_many(std::string_view name, std::span<const CallIn> items,
                                           const call_options& options = {}) {
  auto target =
      detail::find_typed_endpoint<detail::endpoint<CallIn, CallOut>, CallIn, CallOut>(name, false);
  if (!target.ok()) return target.error();
  return (*target)->dispatch_many(items, options);
}
template <class CallIn, class CallOut>
result<std::vector<CallOut>> dispatch_many(std::string_view name,
                                           std::initializer_list<CallIn> items,
                                           const call_options& options = {}) {
  return dispatch_many<CallIn, CallOut>(name, std::span<const CallIn>(items.begin(), items.size()),
                                        options);
}

template <class CallIn, class CallOut>
future<CallOut> dispatch_async(std::string_view name, CallIn item,
                               const call_options& options = {}) {
  auto target =
      detail::find_typed_endpoint<detail::endpoint<CallIn, CallOut>, CallIn, CallOut>(name, false);
  if (!target.ok()) return future<CallOut>(new detail::ready_future_state<CallOut>(target.error()));
  return (*target)->dispatch_async(std::move(item), options);
}

template <class CallIn, class CallOut>
future<std::vector<CallOut>> dispatch_many_async(std::string_view name, std::vector<CallIn> items,
                                                 const call_options& options = {}) {
  auto target =
      detail::find_typed_endpoint<detail::endpoint<CallIn, CallOut>, CallIn, CallOut>(name, false);
  if (!target.ok()) {
    return future<std::vector<CallOut>>(
        new detail::ready_future_state<std::vector<CallOut>>(target.error()));
  }
  return (*target)->dispatch_many_async(std::move(items), options);
}

// Callback forms: `done` runs once, on a server thread, or in this thread
// when the call is answered at once (unknown name, bad input, shutting down).
template <class CallIn, class CallOut, class Callback>
  requires std::invocable<Callback&, result<CallOut>>
void dispatch_async(std::string_view name, CallIn item, const call_options& options,
                    Callback&& done) {
  auto target =
      detail::find_typed_endpoint<detail::endpoint<CallIn, CallOut>, CallIn, CallOut>(name, false);
  if (!target.ok()) {
    detail::call_dropping_exceptions(done, result<CallOut>(target.error()));
    return;
  }
  (*target)->dispatch_async(std::move(item), options,
                            detail::shared_function<void(result<CallOut>)>(
                                std::decay_t<Callback>(std::forward<Callback>(done))));
}
template <class CallIn, class CallOut, class Callback>
  requires std::invocable<Callback&, result<CallOut>>
void dispatch_async(std::string_view name, CallIn item, Callback&& done) {
  dispatch_async<CallIn, CallOut>(name, std::move(item), call_options{},
                                  std::forward<Callback>(done));
}

template <class CallIn, class CallOut, class Callback>
  requires std::invocable<Callback&, result<std::vector<CallOut>>>
void dispatch_many_async(std::string_view name, std::vector<CallIn> items,
                         const call_options& options, Callback&& done) {
  auto target =
      detail::find_typed_endpoint<detail::endpoint<CallIn, CallOut>, CallIn, CallOut>(name, false);
  if (!target.ok()) {
    detail::call_dropping_exceptions(done, result<std::vector<CallOut>>(target.error()));
    return;
  }
  (*target)->dispatch_many_async(std::move(items), options,
                                 detail::shared_function<void(result<std::vector<CallOut>>)>(
                                     std::decay_t<Callback>(std::forward<Callback>(done))));
}
template <class CallIn, class CallOut, class Callback>
  requires std::invocable<Callback&, result<std::vector<CallOut>>>
void dispatch_many_async(std::string_view name, std::vector<CallIn> items, Callback&& done) {
  dispatch_many_async<CallIn, CallOut>(name, std::move(items), call_options{},
                                       std::forward<Callback>(done));
}

// ---- streaming servers ------------------------------------------------------

namespace detail {
template <class CallIn, class CallOut>
using found_stream_endpoint = result<std::shared_ptr<stream_endpoint<CallIn, CallOut>>>;

template <class CallIn, class CallOut>
found_stream_endpoint<CallIn, CallOut> find_stream_endpoint(std::string_view name) {
  return find_typed_endpoint<stream_endpoint<CallIn, CallOut>, CallIn, CallOut>(name, true);
}
}  // namespace detail

// The item's events from the streaming server `name` (see streaming_server.hpp).
template <class CallIn, class CallOut>
event_stream<CallOut> dispatch_stream(std::string_view name, CallIn item,
                                      const call_options& options = {}) {
  auto target = detail::find_stream_endpoint<CallIn, CallOut>(name);
  if (!target.ok()) return detail::failed_stream<CallOut>(target.error());
  return (*target)->dispatch(std::move(item), options, {});
}

// The items' events from the streaming server `name`.
template <class CallIn, class CallOut>
event_stream<CallOut> dispatch_many_stream(std::string_view name, std::span<const CallIn> items,
                                           const call_options& options = {}) {
  auto target = detail::find_stream_endpoint<CallIn, CallOut>(name);
  if (!target.ok()) return detail::failed_stream<CallOut>(target.error());
  return (*target)->dispatch_many(items, options, {});
}
template <class CallIn, class CallOut>
event_stream<CallOut> dispatch_many_stream(std::string_view name,
                                           std::initializer_list<CallIn> items,
                                           const call_options& options = {}) {
  return dispatch_many_stream<CallIn, CallOut>(name,
                                               std::span<const CallIn>(items.begin(), items.size()),
                                               options);
}

// Callback forms: `on_event` runs for each event in order, on server threads
// (or in this thread when the call is answered at once: unknown name, bad
// input, shutting down); the last event is `end` or `error`.
template <class CallIn, class CallOut, class Callback>
  requires std::invocable<Callback&, event<CallOut>>
void dispatch_stream_async(std::string_view name, CallIn item, const call_options& options,
                           Callback&& on_event) {
  auto events = detail::shared_function<void(event<CallOut>)>(
      std::decay_t<Callback>(std::forward<Callback>(on_event)));
  auto target = detail::find_stream_endpoint<CallIn, CallOut>(name);
  if (!target.ok()) {
    (void)detail::refused_stream<CallOut>(target.error(), events);
    return;
  }
  (void)(*target)->dispatch(std::move(item), options, std::move(events));
}
template <class CallIn, class CallOut, class Callback>
  requires std::invocable<Callback&, event<CallOut>>
void dispatch_stream_async(std::string_view name, CallIn item, Callback&& on_event) {
  dispatch_stream_async<CallIn, CallOut>(name, std::move(item), call_options{},
                                         std::forward<Callback>(on_event));
}

template <class CallIn, class CallOut, class Callback>
  requires std::invocable<Callback&, event<CallOut>>
void dispatch_many_stream_async(std::string_view name, std::span<const CallIn> items,
                                const call_options& options, Callback&& on_event) {
  auto events = detail::shared_function<void(event<CallOut>)>(
      std::decay_t<Callback>(std::forward<Callback>(on_event)));
  auto target = detail::find_stream_endpoint<CallIn, CallOut>(name);
  if (!target.ok()) {
    (void)detail::refused_stream<CallOut>(target.error(), events);
    return;
  }
  (void)(*target)->dispatch_many(items, options, std::move(events));
}
template <class CallIn, class CallOut, class Callback>
  requires std::invocable<Callback&, event<CallOut>>
void dispatch_many_stream_async(std::string_view name, std::span<const CallIn> items,
                                Callback&& on_event) {
  dispatch_many_stream_async<CallIn, CallOut>(name, items, call_options{},
                                              std::forward<Callback>(on_event));
}

}  // namespace batch_serving
