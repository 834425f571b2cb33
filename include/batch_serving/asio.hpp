// asio completion tokens for a server's calls: header-only, on standalone
// asio (Debian libasio-dev); CMake builds its tests and example only when it
// finds asio (target batch_serving::asio).
//
//   asio::awaitable<void> session(bs::server<int, int>& squares, std::vector<int> batch) {
//     bs::result<int> four = co_await bs::async_dispatch(squares, 2, asio::use_awaitable);
//     auto all = co_await bs::async_dispatch_many(squares, std::move(batch), asio::use_awaitable);
//   }
//   bs::async_dispatch(squares, 5, [](bs::result<int> r) { /* ... */ });   // a callback
//   std::future<bs::result<int>> f = bs::async_dispatch(squares, 6, asio::use_future);
//   auto later = bs::async_dispatch(squares, 7, asio::experimental::deferred);
//   bs::async_dispatch(squares, 8, {.timeout = std::chrono::milliseconds(20)}, token);
//
// (GCC 12 rejects a braced list such as {2, 3} inside a coroutine: pass a
// vector.)
//
// Completion signature: void(result<Out>) (void(result<std::vector<Out>>)
// for async_dispatch_many), so every token yields the same result as every
// other dispatch form; errors (timeout, cancelled, overloaded,
// execution_failed, ...) are values, never exceptions.
//
// Where the handler runs: on its associated executor (a strand, the
// coroutine's executor, ...), dispatched from the server thread that
// finished the call, so never on a server thread unless that executor runs
// work inline (the default for a plain callback is asio::system_executor,
// which does: bind_executor to choose). An answer ready before the
// initiating function returns (refused at once) is posted, never run inside
// it. Until the handler is handed over, the operation keeps outstanding
// work on that executor (io_context::run() does not return). The hand-off
// allocates with the handler's associated allocator; the operation's own
// state (one allocation, freed on the server's thread, possibly after the
// handler ran) uses std::allocator, as asio's rule that such memory be freed
// before the handler runs could not be kept with the handler's allocator.
//
// Cancellation: the handler's associated cancellation slot. Terminal and
// partial cancellation stop the call as call_options::stop_token does (and
// together with the caller's own stop_token, if given): it is answered
// cancelled, and items still queued never run (items already running finish;
// their results are discarded). Total cancellation alone is not supported
// (ignored): the items may already have run. Emitting after completion does
// nothing. As for every asio operation, emit on the handler's executor.
//
// Lifetimes: a server stopped or destroyed answers its outstanding calls
// shutting_down (delivered as any answer). An execution context shut down
// (destroyed) before its operations were answered destroys their handlers
// without calling them, as asio does for its own operations; their calls are
// cancelled. A context only stopped keeps the answers queued until it runs
// again (or is destroyed). Thread-safe as the server's dispatch forms are;
// one allocation per operation beyond the call block and the executor's
// hand-off (two with a connected cancellation slot: the stop state).
#pragma once

#include <asio/async_result.hpp>

#include <type_traits>
#include <utility>
#include <vector>

#include "batch_serving/call_options.hpp"
#include "batch_serving/detail/asio_operation.hpp"
#include "batch_serving/result.hpp"
#include "batch_serving/server.hpp"

namespace batch_serving {

// Dispatches one item; completes with its result<CallOut>. The item is moved
// into the call (with asio::experimental::deferred or use_awaitable, first
// into the deferred operation).
template <class In, class Out, class CallIn, class CallOut,
          asio::completion_token_for<void(result<CallOut>)> Token>
auto async_dispatch(server<In, Out, CallIn, CallOut>& srv, std::type_identity_t<CallIn> item,
                    const call_options& options, Token&& token) {
  using initiation =
      detail::asio_initiate_dispatch<server<In, Out, CallIn, CallOut>, CallOut, false>;
  return asio::async_initiate<Token, void(result<CallOut>)>(initiation{&srv}, token,
                                                            std::move(item), options);
}
template <class In, class Out, class CallIn, class CallOut,
          asio::completion_token_for<void(result<CallOut>)> Token>
auto async_dispatch(server<In, Out, CallIn, CallOut>& srv, std::type_identity_t<CallIn> item,
                    Token&& token) {
  return async_dispatch(srv, std::move(item), call_options{}, std::forward<Token>(token));
}

// Dispatches an explicit batch; completes with its results in the items'
// order (an empty batch: invalid_argument).
template <class In, class Out, class CallIn, class CallOut,
          asio::completion_token_for<void(result<std::vector<CallOut>>)> Token>
auto async_dispatch_many(server<In, Out, CallIn, CallOut>& srv,
                         std::type_identity_t<std::vector<CallIn>> items,
                         const call_options& options, Token&& token) {
  using initiation =
      detail::asio_initiate_dispatch<server<In, Out, CallIn, CallOut>, std::vector<CallOut>, true>;
  return asio::async_initiate<Token, void(result<std::vector<CallOut>>)>(initiation{&srv}, token,
                                                                         std::move(items), options);
}
template <class In, class Out, class CallIn, class CallOut,
          asio::completion_token_for<void(result<std::vector<CallOut>>)> Token>
auto async_dispatch_many(server<In, Out, CallIn, CallOut>& srv,
                         std::type_identity_t<std::vector<CallIn>> items, Token&& token) {
  return async_dispatch_many(srv, std::move(items), call_options{}, std::forward<Token>(token));
}

}  // namespace batch_serving
