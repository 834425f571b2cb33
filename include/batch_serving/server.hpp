// server: runs a serving in background partition threads and batches the
// calls of any number of threads into executions of its batch function.
//
//   batch_serving::serving<int, int> squares([](std::span<const int> xs) {
//     std::vector<int> out;
//     for (int x : xs) out.push_back(x * x);
//     return out;
//   });
//   batch_serving::server srv(squares, {.name = "squares", .batch_size = 10,
//                                       .batch_timeout = std::chrono::milliseconds(100)});
//   int four = srv.dispatch(2).value();                  // 4 (throws if it failed)
//   auto both = srv.dispatch_many({2, 3});                // result: {4, 9}
//   auto later = srv.dispatch_async(5);                   // future<int>
//   srv.dispatch_async(6, [](batch_serving::result<int> r) { /* on a server thread */ });
//   auto soon = srv.dispatch(7, {.timeout = std::chrono::milliseconds(20)});  // or errc::timeout
//
// Every call gets exactly one answer: its own results, in its own order, or
// an error (see error.hpp). Calls that arrive close together share
// executions: up to batch_size items run together; a batch that is not full
// runs batch_timeout after its first item arrived. An explicit batch may be
// split across executions to fill them; its caller still gets its results
// in order. With partitions > 1 executions run in parallel, each partition
// with its own state, one execution at a time.
//
// Lifecycle: running -> draining -> stopped. stop() (and the destructor)
// refuses new calls (shutting_down), runs what is queued at once, waits for
// running executions up to shutdown_timeout, then answers everything left
// with shutting_down. A batch function still running after that keeps its
// thread until it returns; its results are discarded.
//
// Under load: max_queue bounds the items waiting (a call past it gets
// overloaded at once); call_options and default_timeout bound each call's
// wait; isolate_failures keeps one failing caller from failing the others
// in its execution. server_stats counts all of it.
//
// Every member function is thread-safe; dispatch forms may be called from any
// thread. From the server's own threads (a completion callback, the batch
// function) use the future or callback forms: a blocking form there would
// wait for the thread it runs on, so it is refused at once
// (invalid_argument); stop() there returns at once and the shutdown finishes
// on a thread of the server's own. Move-only: a moved-from server answers
// every dispatch invalid_argument. A server of a streaming_serving is the
// specialization in streaming_server.hpp (streaming_server<In, Out>).
#pragma once

#include <concepts>
#include <initializer_list>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "batch_serving/call_options.hpp"
#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/client.hpp"
#include "batch_serving/detail/core_options.hpp"
#include "batch_serving/detail/engine.hpp"
#include "batch_serving/detail/future_state.hpp"
#include "batch_serving/detail/server_handle.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/future.hpp"
#include "batch_serving/result.hpp"
#include "batch_serving/server_options.hpp"
#include "batch_serving/server_stats.hpp"
#include "batch_serving/serving.hpp"

namespace batch_serving {

// Streaming = true is the specialization streaming_server.hpp defines.
template <class In, class Out, class CallIn = In, class CallOut = Out, bool Streaming = false>
class server : public detail::server_handle<detail::engine<In, Out>,
                                            detail::client<In, Out, CallIn, CallOut>> {
  static_assert(
      !Streaming,
      "a server of a streaming_serving needs #include <batch_serving/streaming_server.hpp>");
  using client_type = detail::client<In, Out, CallIn, CallOut>;
  using engine_type = detail::engine<In, Out>;
  using handle = detail::server_handle<engine_type, client_type>;

 public:
  // Starts the server: creates each partition's state (in its thread) and,
  // if options.name is set, registers the name. Blocks until every partition
  // is ready. Throws serving_error(invalid_argument) for bad options or a
  // name already in use, and rethrows what a partition's init threw.
  // Allocates (the engine, its threads).
  // stop(), stats(), name(), batch_size(), partitions(): see server_handle.hpp.
  server(const serving<In, Out, CallIn, CallOut>& s, server_options options = {})
      : server(s.definition_ptr(),
               std::make_shared<engine_type>(s.definition_ptr()->factory,
                                             detail::resolve_options(options, s.batch_size()))) {}

  // Every dispatch form takes optional call_options: a timeout or deadline
  // (errc::timeout) and a stop_token that cancels (errc::cancelled). A call
  // refused at the door (shutting down, overloaded: max_queue reached, bad
  // options) is answered at once. Every form is thread-safe. Each call takes
  // one block from the call pool (no heap allocation once it is warm) unless
  // noted; the serving's map_inputs runs in this thread.

  // Blocks until the item's result is there (map_results runs in this thread).
  // The item is moved into the call (so move-only inputs work), or copied.
  result<CallOut> dispatch(CallIn item, const call_options& options = {}) {
    if (auto* c = this->client()) return c->dispatch(std::move(item), options);
    return this->moved_from();
  }

  // Blocks until all of the items' results are there; they come in the
  // items' order. An empty batch is invalid_argument. Allocates the batch.
  result<std::vector<CallOut>> dispatch_many(std::span<const CallIn> items,
                                             const call_options& options = {}) {
    if (auto* c = this->client()) return c->dispatch_many(items, options);
    return this->moved_from();
  }
  result<std::vector<CallOut>> dispatch_many(std::initializer_list<CallIn> items,
                                             const call_options& options = {}) {
    return dispatch_many(std::span<const CallIn>(items.begin(), items.size()), options);
  }
  // The same for items the caller gives up: moved, not copied (move-only
  // inputs take this form).
  result<std::vector<CallOut>> dispatch_many(std::vector<CallIn>&& items,
                                             const call_options& options = {}) {
    if (auto* c = this->client()) return c->dispatch_many_owned(std::move(items), options);
    return this->moved_from();
  }

  // Never blocks on the work: returns a future for the result (which can
  // also cancel the call, see future::cancel).
  future<CallOut> dispatch_async(CallIn item, const call_options& options = {}) {
    if (auto* c = this->client()) return c->dispatch_async(std::move(item), options);
    return future<CallOut>(new detail::ready_future_state<CallOut>(this->moved_from()));
  }
  // The same for an explicit batch (taken over without a copy when the
  // serving maps no inputs).
  future<std::vector<CallOut>> dispatch_many_async(std::vector<CallIn> items,
                                                   const call_options& options = {}) {
    if (auto* c = this->client()) return c->dispatch_many_async(std::move(items), options);
    return future<std::vector<CallOut>>(
        new detail::ready_future_state<std::vector<CallOut>>(this->moved_from()));
  }
  // Takes the same arguments as dispatch_many (the items are copied).
  future<std::vector<CallOut>> dispatch_many_async(std::span<const CallIn> items,
                                                   const call_options& options = {}) {
    if (auto* c = this->client()) return c->dispatch_many_async_copied(items, options);
    return future<std::vector<CallOut>>(
        new detail::ready_future_state<std::vector<CallOut>>(this->moved_from()));
  }
  future<std::vector<CallOut>> dispatch_many_async(std::initializer_list<CallIn> items,
                                                   const call_options& options = {}) {
    return dispatch_many_async(std::span<const CallIn>(items.begin(), items.size()), options);
  }

  // Never blocks on the work: `done(result)` runs once when the call
  // finishes, on the server thread that finished it (or in this thread if
  // the call is refused at once). Keep it short: other callers of the same
  // execution are answered after it. Exceptions it throws are dropped.
  template <class Callback>
    requires std::invocable<Callback&, result<CallOut>>
  void dispatch_async(CallIn item, Callback&& done) {
    dispatch_async(std::move(item), call_options{}, std::forward<Callback>(done));
  }
  template <class Callback>
    requires std::invocable<Callback&, result<CallOut>>
  void dispatch_async(CallIn item, const call_options& options, Callback&& done) {
    if (auto* c = this->client()) {
      c->dispatch_with_callback(std::move(item), options, std::forward<Callback>(done));
    } else {
      detail::call_dropping_exceptions(done, result<CallOut>(this->moved_from()));
    }
  }
  template <class Callback>
    requires std::invocable<Callback&, result<std::vector<CallOut>>>
  void dispatch_many_async(std::vector<CallIn> items, Callback&& done) {
    dispatch_many_async(std::move(items), call_options{}, std::forward<Callback>(done));
  }
  template <class Callback>
    requires std::invocable<Callback&, result<std::vector<CallOut>>>
  void dispatch_many_async(std::span<const CallIn> items, Callback&& done) {
    dispatch_many_async(items, call_options{}, std::forward<Callback>(done));
  }
  template <class Callback>
    requires std::invocable<Callback&, result<std::vector<CallOut>>>
  void dispatch_many_async(std::span<const CallIn> items, const call_options& options,
                           Callback&& done) {
    if (auto* c = this->client()) {
      c->dispatch_many_copied_with_callback(items, options, std::forward<Callback>(done));
    } else {
      detail::call_dropping_exceptions(done, result<std::vector<CallOut>>(this->moved_from()));
    }
  }
  template <class Callback>
    requires std::invocable<Callback&, result<std::vector<CallOut>>>
  void dispatch_many_async(std::initializer_list<CallIn> items, Callback&& done) {
    dispatch_many_async(std::span<const CallIn>(items.begin(), items.size()), call_options{},
                        std::forward<Callback>(done));
  }
  template <class Callback>
    requires std::invocable<Callback&, result<std::vector<CallOut>>>
  void dispatch_many_async(std::initializer_list<CallIn> items, const call_options& options,
                           Callback&& done) {
    dispatch_many_async(std::span<const CallIn>(items.begin(), items.size()), options,
                        std::forward<Callback>(done));
  }
  template <class Callback>
    requires std::invocable<Callback&, result<std::vector<CallOut>>>
  void dispatch_many_async(std::vector<CallIn> items, const call_options& options,
                           Callback&& done) {
    if (auto* c = this->client()) {
      c->dispatch_many_with_callback(std::move(items), options, std::forward<Callback>(done));
    } else {
      detail::call_dropping_exceptions(done, result<std::vector<CallOut>>(this->moved_from()));
    }
  }

 private:
  using definition_ptr =
      std::shared_ptr<const detail::serving_definition<In, Out, CallIn, CallOut>>;
  server(const definition_ptr& def, std::shared_ptr<engine_type> engine)
      : handle(engine, std::make_shared<client_type>(def, engine)) {}
};

// A server started from a streaming_serving is a streaming server
// (streaming_server.hpp).
template <class In, class Out, class CallIn, class CallOut>
server(const streaming_serving<In, Out, CallIn, CallOut>&, server_options)
    -> server<In, Out, CallIn, CallOut, true>;
template <class In, class Out, class CallIn, class CallOut>
server(const streaming_serving<In, Out, CallIn, CallOut>&)
    -> server<In, Out, CallIn, CallOut, true>;

}  // namespace batch_serving
