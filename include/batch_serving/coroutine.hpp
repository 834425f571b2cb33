// co_await a dispatch from any C++20 coroutine: the coroutine suspends while
// the call waits for its execution, and no thread blocks.
//
//   batch_serving::result<int> r = co_await batch_serving::co_dispatch(srv, 3);
//   auto both = co_await batch_serving::co_dispatch_many(srv, std::vector<int>{1, 2});
//   auto fast = co_await batch_serving::co_dispatch(srv, 4, batch_serving::resume_inline);
//   auto soon = co_await batch_serving::co_dispatch(srv, 5, {.timeout = 20ms}, pool);
//   auto stop = co_await batch_serving::co_dispatch(srv, 6, my_stop_token);  // cancellable
//   auto named = co_await batch_serving::co_dispatch<int, int>("squares", 7);  // by name
//   auto remote = co_await batch_serving::co_dispatch(my_redis_client, 8);    // or a target
//   auto events = streaming_srv.dispatch_many({1, 2, 3});
//   while (auto ev = co_await batch_serving::co_next(events)) { ... }  // nullopt at the end
//
// The names mirror the blocking forms (dispatch, dispatch_many,
// event_stream::next) with co_ in front: the same arguments, the same
// answers (result, std::optional<event>), awaited instead of blocked on.
// They take any coroutine type: the awaiters need only a
// std::coroutine_handle<>. Where the coroutine resumes is the last argument
// (resume_target.hpp); by default on resume_pool::shared(), never on a
// partition thread.
//
// Cost: a call is the server's callback form with a callback of one pointer
// into the awaiter, which lives in the coroutine frame: no allocation per
// await beyond the call block (from the call pool, so none once warm).
//
// Cancellation: a stop request on call_options::stop_token (or the
// std::stop_token passed instead of options) answers the call cancelled; its
// queued items do not run. Pass the coroutine's own token to tie the call to
// it. Every other answer (timeout, overloaded, shutting_down when the server
// stops or is destroyed while the coroutine waits) comes as the result, on
// the same resume target. A call refused before it was queued does not
// suspend.
//
// Rules: the server (and an executor passed by reference) must outlive the
// co_await's start; the server may be stopped or destroyed while coroutines
// wait (they resume with shutting_down), including by a coroutine resumed
// inline. Do not destroy a coroutine while it is suspended in one of these
// awaits (its call would answer into a freed frame). An exception escaping a
// resumed coroutine is dropped where it resumed (resume_pool.hpp).
#pragma once

#include <concepts>
#include <stop_token>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "batch_serving/call_options.hpp"
#include "batch_serving/detail/call_awaiter.hpp"
#include "batch_serving/detail/next_event_awaiter.hpp"
#include "batch_serving/detail/resumer.hpp"
#include "batch_serving/event_stream.hpp"
#include "batch_serving/resume_pool.hpp"
#include "batch_serving/resume_target.hpp"
#include "batch_serving/server.hpp"

namespace batch_serving {

// ---- one item: awaits result<CallOut> -----------------------------------

template <class In, class Out, class CallIn, class CallOut, class Where>
  requires resume_target<Where>
[[nodiscard]] auto co_dispatch(server<In, Out, CallIn, CallOut>& srv,
                               std::type_identity_t<CallIn> item, call_options options,
                               Where&& where) {
  using resumer = detail::resumer_for<Where&&>;
  return detail::call_awaiter<server<In, Out, CallIn, CallOut>*, CallIn, CallOut, resumer, false>(
      &srv, std::move(item), std::move(options), detail::make_resumer(std::forward<Where>(where)));
}
template <class In, class Out, class CallIn, class CallOut>
[[nodiscard]] auto co_dispatch(server<In, Out, CallIn, CallOut>& srv,
                               std::type_identity_t<CallIn> item, call_options options = {}) {
  return co_dispatch(srv, std::move(item), std::move(options), resume_pool::shared());
}
template <class In, class Out, class CallIn, class CallOut, class Where>
  requires resume_target<Where>
[[nodiscard]] auto co_dispatch(server<In, Out, CallIn, CallOut>& srv,
                               std::type_identity_t<CallIn> item, Where&& where) {
  return co_dispatch(srv, std::move(item), call_options{}, std::forward<Where>(where));
}
template <class In, class Out, class CallIn, class CallOut, std::same_as<std::stop_token> Token>
[[nodiscard]] auto co_dispatch(server<In, Out, CallIn, CallOut>& srv,
                               std::type_identity_t<CallIn> item, Token stop) {
  return co_dispatch(srv, std::move(item), call_options{.stop_token = std::move(stop)});
}
template <class In, class Out, class CallIn, class CallOut, std::same_as<std::stop_token> Token,
          class Where>
  requires resume_target<Where>
[[nodiscard]] auto co_dispatch(server<In, Out, CallIn, CallOut>& srv,
                               std::type_identity_t<CallIn> item, Token stop, Where&& where) {
  return co_dispatch(srv, std::move(item), call_options{.stop_token = std::move(stop)},
                     std::forward<Where>(where));
}

// ---- an explicit batch: awaits result<std::vector<CallOut>> -------------
// The items are moved into the call (taken over without a copy when the
// serving maps no inputs). An empty batch answers invalid_argument at once.

template <class In, class Out, class CallIn, class CallOut, class Where>
  requires resume_target<Where>
[[nodiscard]] auto co_dispatch_many(server<In, Out, CallIn, CallOut>& srv,
                                    std::vector<CallIn> items, call_options options,
                                    Where&& where) {
  using resumer = detail::resumer_for<Where&&>;
  return detail::call_awaiter<server<In, Out, CallIn, CallOut>*, std::vector<CallIn>,
                              std::vector<CallOut>, resumer, true>(
      &srv, std::move(items), std::move(options), detail::make_resumer(std::forward<Where>(where)));
}
template <class In, class Out, class CallIn, class CallOut>
[[nodiscard]] auto co_dispatch_many(server<In, Out, CallIn, CallOut>& srv,
                                    std::vector<CallIn> items, call_options options = {}) {
  return co_dispatch_many(srv, std::move(items), std::move(options), resume_pool::shared());
}
template <class In, class Out, class CallIn, class CallOut, class Where>
  requires resume_target<Where>
[[nodiscard]] auto co_dispatch_many(server<In, Out, CallIn, CallOut>& srv,
                                    std::vector<CallIn> items, Where&& where) {
  return co_dispatch_many(srv, std::move(items), call_options{}, std::forward<Where>(where));
}
template <class In, class Out, class CallIn, class CallOut, std::same_as<std::stop_token> Token>
[[nodiscard]] auto co_dispatch_many(server<In, Out, CallIn, CallOut>& srv,
                                    std::vector<CallIn> items, Token stop) {
  return co_dispatch_many(srv, std::move(items), call_options{.stop_token = std::move(stop)});
}
template <class In, class Out, class CallIn, class CallOut, std::same_as<std::stop_token> Token,
          class Where>
  requires resume_target<Where>
[[nodiscard]] auto co_dispatch_many(server<In, Out, CallIn, CallOut>& srv,
                                    std::vector<CallIn> items, Token stop, Where&& where) {
  return co_dispatch_many(srv, std::move(items), call_options{.stop_token = std::move(stop)},
                          std::forward<Where>(where));
}

// ---- a server of this process by name (registry.hpp) --------------------
// co_dispatch<CallIn, CallOut>("squares", 3): as batch_serving::dispatch by
// name, awaited; an unknown name (or other types) answers at once without
// suspending. The by-name callback form allocates its callback's holder.

template <class CallIn, class CallOut, class Where>
  requires resume_target<Where>
[[nodiscard]] auto co_dispatch(std::string_view name, std::type_identity_t<CallIn> item,
                               call_options options, Where&& where) {
  using resumer = detail::resumer_for<Where&&>;
  return detail::call_awaiter<detail::named_target<CallIn, CallOut>, CallIn, CallOut, resumer,
                              false>({std::string(name)}, std::move(item), std::move(options),
                                     detail::make_resumer(std::forward<Where>(where)));
}
template <class CallIn, class CallOut>
[[nodiscard]] auto co_dispatch(std::string_view name, std::type_identity_t<CallIn> item,
                               call_options options = {}) {
  return co_dispatch<CallIn, CallOut>(name, std::move(item), std::move(options),
                                      resume_pool::shared());
}
template <class CallIn, class CallOut, class Where>
  requires resume_target<Where>
[[nodiscard]] auto co_dispatch(std::string_view name, std::type_identity_t<CallIn> item,
                               Where&& where) {
  return co_dispatch<CallIn, CallOut>(name, std::move(item), call_options{},
                                      std::forward<Where>(where));
}

template <class CallIn, class CallOut, class Where>
  requires resume_target<Where>
[[nodiscard]] auto co_dispatch_many(std::string_view name, std::vector<CallIn> items,
                                    call_options options, Where&& where) {
  using resumer = detail::resumer_for<Where&&>;
  return detail::call_awaiter<detail::named_target<CallIn, CallOut>, std::vector<CallIn>,
                              std::vector<CallOut>, resumer, true>(
      {std::string(name)}, std::move(items), std::move(options),
      detail::make_resumer(std::forward<Where>(where)));
}
template <class CallIn, class CallOut>
[[nodiscard]] auto co_dispatch_many(std::string_view name, std::vector<CallIn> items,
                                    call_options options = {}) {
  return co_dispatch_many<CallIn, CallOut>(name, std::move(items), std::move(options),
                                           resume_pool::shared());
}
template <class CallIn, class CallOut, class Where>
  requires resume_target<Where>
[[nodiscard]] auto co_dispatch_many(std::string_view name, std::vector<CallIn> items,
                                    Where&& where) {
  return co_dispatch_many<CallIn, CallOut>(name, std::move(items), call_options{},
                                           std::forward<Where>(where));
}

// ---- a client of remote workers (redis_client, distributed::target) -----
// Any client that names its types (input_type, output_type) and has the
// callback forms; the client must outlive the co_await's start. Its answers
// come on its receiver thread (or a local server's, for a target), and the
// coroutine resumes where it says.

template <class Client>
concept callback_client = requires {
  typename Client::input_type;
  typename Client::output_type;
} && requires(Client& c, const typename Client::input_type& x, const call_options& o) {
  c.dispatch_async(x, o, [](result<typename Client::output_type>) {});
};

template <callback_client Client, class Where>
  requires resume_target<Where>
[[nodiscard]] auto co_dispatch(Client& client, typename Client::input_type item,
                               call_options options, Where&& where) {
  using resumer = detail::resumer_for<Where&&>;
  return detail::call_awaiter<Client*, typename Client::input_type, typename Client::output_type,
                              resumer, false>(&client, std::move(item), std::move(options),
                                              detail::make_resumer(std::forward<Where>(where)));
}
template <callback_client Client>
[[nodiscard]] auto co_dispatch(Client& client, typename Client::input_type item,
                               call_options options = {}) {
  return co_dispatch(client, std::move(item), std::move(options), resume_pool::shared());
}
template <callback_client Client, class Where>
  requires resume_target<Where>
[[nodiscard]] auto co_dispatch(Client& client, typename Client::input_type item, Where&& where) {
  return co_dispatch(client, std::move(item), call_options{}, std::forward<Where>(where));
}

template <callback_client Client, class Where>
  requires resume_target<Where>
[[nodiscard]] auto co_dispatch_many(Client& client, std::vector<typename Client::input_type> items,
                                    call_options options, Where&& where) {
  using resumer = detail::resumer_for<Where&&>;
  return detail::call_awaiter<Client*, std::vector<typename Client::input_type>,
                              std::vector<typename Client::output_type>, resumer, true>(
      &client, std::move(items), std::move(options),
      detail::make_resumer(std::forward<Where>(where)));
}
template <callback_client Client>
[[nodiscard]] auto co_dispatch_many(Client& client, std::vector<typename Client::input_type> items,
                                    call_options options = {}) {
  return co_dispatch_many(client, std::move(items), std::move(options), resume_pool::shared());
}
template <callback_client Client, class Where>
  requires resume_target<Where>
[[nodiscard]] auto co_dispatch_many(Client& client, std::vector<typename Client::input_type> items,
                                    Where&& where) {
  return co_dispatch_many(client, std::move(items), call_options{}, std::forward<Where>(where));
}

// ---- the next event of a stream: awaits std::optional<event<T>> ---------
// nullopt once the stream ended (as event_stream::next). One reader at a
// time; the stream must outlive the await. map_results runs where the
// coroutine resumed.

template <class T, class Where>
  requires resume_target<Where>
[[nodiscard]] auto co_next(event_stream<T>& stream, Where&& where) {
  using resumer = detail::resumer_for<Where&&>;
  return detail::next_event_awaiter<T, resumer>(stream,
                                                detail::make_resumer(std::forward<Where>(where)));
}
template <class T>
[[nodiscard]] auto co_next(event_stream<T>& stream) {
  return co_next(stream, resume_pool::shared());
}

}  // namespace batch_serving
