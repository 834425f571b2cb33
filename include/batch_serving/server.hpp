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
// All dispatch forms are thread-safe and may be called from any thread,
// including from a completion callback.
#pragma once

#include <algorithm>
#include <chrono>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "batch_serving/call_options.hpp"
#include "batch_serving/detail/client.hpp"
#include "batch_serving/detail/registry.hpp"
#include "batch_serving/detail/server_core.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/future.hpp"
#include "batch_serving/result.hpp"
#include "batch_serving/server_options.hpp"
#include "batch_serving/server_stats.hpp"
#include "batch_serving/serving.hpp"

namespace batch_serving {

namespace detail {
// Validates options, applies defaults; throws serving_error naming the field.
core_options resolve_options(const server_options& options,
                             std::optional<std::size_t> serving_batch_size);

// What every kind of server shares: the name, start-up, shutdown, stats.
// Owns the client; the client owns the engine.
template <class Client>
class server_handle {
 public:
  server_handle(server_handle&&) noexcept = default;
  server_handle& operator=(server_handle&&) = delete;
  server_handle(const server_handle&) = delete;
  server_handle& operator=(const server_handle&) = delete;

  // Performs stop().
  ~server_handle() { stop(); }

  // Shuts down as server.hpp describes: refuses new calls, drains, answers
  // the rest shutting_down. Blocks up to shutdown_timeout. Idempotent.
  void stop() noexcept {
    if (!client_) return;
    const std::string& name = client_->engine().options().name;
    if (!name.empty()) unregister_endpoint(name, client_.get());
    client_->engine().stop();
  }

  server_stats stats() const { return client_->engine().stats(); }
  const std::string& name() const noexcept { return client_->engine().options().name; }
  std::size_t batch_size() const noexcept { return client_->engine().options().batch_size; }
  std::size_t partitions() const noexcept { return client_->engine().options().partitions; }

 protected:
  // Takes the engine's name (if any) for `client`, then starts the engine.
  // Throws serving_error(invalid_argument) if the name is taken; rethrows
  // what a partition's init threw, releasing the name first.
  explicit server_handle(std::shared_ptr<Client> client) : client_(std::move(client)) {
    const std::string& name = client_->engine().options().name;
    if (!name.empty() && !register_endpoint(name, client_)) {
      throw serving_error(errc::invalid_argument,
                          "a server named '" + name + "' is already running");
    }
    try {
      client_->engine().start();
    } catch (...) {
      if (!name.empty()) unregister_endpoint(name, client_.get());
      throw;
    }
  }

  Client& client() const noexcept { return *client_; }

 private:
  std::shared_ptr<Client> client_;
};
}  // namespace detail

// Streaming: a server started from a streaming_serving answers with event
// streams instead (see streaming_server.hpp).
template <class In, class Out, class CallIn = In, class CallOut = Out, bool Streaming = false>
class server : public detail::server_handle<detail::client<In, Out, CallIn, CallOut>> {
  using client_type = detail::client<In, Out, CallIn, CallOut>;
  using handle = detail::server_handle<client_type>;

 public:
  // Starts the server: creates each partition's state (in its thread) and,
  // if options.name is set, registers the name. Blocks until every partition
  // is ready. Throws serving_error(invalid_argument) for bad options or a
  // name already in use, and rethrows what a partition's init threw.
  // stop(), stats(), name(), batch_size(), partitions(): see server_handle.
  server(const serving<In, Out, CallIn, CallOut>& s, server_options options = {})
      : handle(make_client(s, options)) {}

  // Every dispatch form takes optional call_options: a timeout or deadline
  // (errc::timeout) and a stop_token that cancels (errc::cancelled). A call
  // refused at the door (shutting down, overloaded: max_queue reached, bad
  // options) is answered at once.

  // Blocks until the item's result is there.
  result<CallOut> dispatch(const CallIn& item, const call_options& options = {}) {
    return this->client().dispatch(item, options);
  }

  // Blocks until all of the items' results are there; they come in the
  // items' order. An empty batch is invalid_argument.
  result<std::vector<CallOut>> dispatch_many(std::span<const CallIn> items,
                                             const call_options& options = {}) {
    return this->client().dispatch_many(items, options);
  }
  result<std::vector<CallOut>> dispatch_many(std::initializer_list<CallIn> items,
                                             const call_options& options = {}) {
    return this->client().dispatch_many(std::span<const CallIn>(items.begin(), items.size()),
                                        options);
  }

  // Never blocks on the work: returns a future for the result (which can
  // also cancel the call, see future::cancel).
  future<CallOut> dispatch_async(CallIn item, const call_options& options = {}) {
    return this->client().dispatch_async(std::move(item), options);
  }
  future<std::vector<CallOut>> dispatch_many_async(std::vector<CallIn> items,
                                                   const call_options& options = {}) {
    return this->client().dispatch_many_async(std::move(items), options);
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
    this->client().dispatch_with_callback(std::move(item), options, std::forward<Callback>(done));
  }
  template <class Callback>
    requires std::invocable<Callback&, result<std::vector<CallOut>>>
  void dispatch_many_async(std::vector<CallIn> items, Callback&& done) {
    dispatch_many_async(std::move(items), call_options{}, std::forward<Callback>(done));
  }
  template <class Callback>
    requires std::invocable<Callback&, result<std::vector<CallOut>>>
  void dispatch_many_async(std::vector<CallIn> items, const call_options& options,
                           Callback&& done) {
    this->client().dispatch_many_with_callback(std::move(items), options,
                                               std::forward<Callback>(done));
  }

 private:
  static std::shared_ptr<client_type> make_client(const serving<In, Out, CallIn, CallOut>& s,
                                                  const server_options& options) {
    const auto& def = s.definition_ptr();
    return std::make_shared<client_type>(def,
                                         std::make_shared<detail::server_core<In, Out>>(
                                             def->factory,
                                             detail::resolve_options(options, s.batch_size())));
  }
};

}  // namespace batch_serving

// The streaming specialization of server.
#include "batch_serving/streaming_server.hpp"
