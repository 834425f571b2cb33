// By-name dispatch across processes, as the seed's dispatch(MyServing, x):
// a server of this process under the name (registry.hpp) when there is one,
// else the serving's workers over Redis (redis_worker.hpp), once this
// process has been told which Redis.
//
//   batch_serving::distributed::configure({.endpoint = {.host = "10.0.0.5", .port = 6379}});
//   auto r = batch_serving::distributed::dispatch<int, int>("squares", 3);  // here, or on a worker
//   auto v = batch_serving::distributed::dispatch_many<int, int>("squares", {2, 3});
//   for (auto& ev : batch_serving::distributed::dispatch_stream<int, int>("progress", 3)) { ... }
//
//   // Or name the route once and reuse it:
//   batch_serving::distributed::target<int, int> squares("squares",
//                                                         batch_serving::distributed::route::remote_only);
//   auto later = squares.dispatch_async(5);                                  // future<int>
//
// Routes. local_first (the default): a local server under the name takes
// the call; only when none runs does it go to Redis (and with no Redis
// configured it is answered no_serving, as batch_serving::dispatch). A local
// server of the name with other types answers invalid_argument: the call is
// not sent elsewhere. local_only never uses Redis; remote_only always does
// (invalid_argument when no Redis is configured).
//
// Remote calls go through one redis_client<CallIn, CallOut> per serving name
// and pair of types, made on first use from the configured options and kept
// until reset() or the next configure(); every form, error and guarantee is
// redis_client's (redis_client.hpp). A client that cannot be made (a bad
// serving name, Redis refusing the credentials) answers each call with that
// error, and is tried again on the next call.
//
// Every function here is thread-safe. The route is chosen at each call, so
// a local server started or stopped later is seen by the next call.
#pragma once

#include <concepts>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeindex>
#include <utility>
#include <vector>

#include "batch_serving/call_options.hpp"
#include "batch_serving/codec.hpp"
#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/callable_traits.hpp"
#include "batch_serving/detail/collected_stream.hpp"
#include "batch_serving/detail/endpoint.hpp"
#include "batch_serving/detail/future_state.hpp"
#include "batch_serving/detail/registry.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/event_stream.hpp"
#include "batch_serving/future.hpp"
#include "batch_serving/redis_client.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving::distributed {

// Where a by-name call may run.
enum class route {
  local_first,  // this process's server under the name, else Redis
  local_only,  // this process's server only (batch_serving::dispatch)
  remote_only,  // the serving's workers over Redis only
};

// Sets the Redis that by-name calls fall back to. `client` is the template of
// every redis_client made for it: its serving and client_id must be empty
// (each client gets the serving's name and an id of its own); its endpoint
// and limits are checked here, the rest when a client is made. Throws
// serving_error(invalid_argument) naming a bad field. Replaces an earlier
// configuration, stopping its clients (their outstanding calls are answered
// shutting_down). Connects nothing: clients connect on first use.
void configure(const redis_client_options& client);

// Forgets the configuration and stops the clients made for it; by-name calls
// are then local only. Safe from a callback of a remote call.
void reset();

// True while a Redis is configured.
[[nodiscard]] bool configured();

namespace detail {

using client_factory = std::shared_ptr<void> (*)(const redis_client_options&);

// The configuration's client for `serving` and the types, made with `make`
// on first use: no_serving when nothing is configured, or the error making it
// threw (serving_error's own, else unavailable).
result<std::shared_ptr<void>> remote_client(std::string_view serving, std::type_index in,
                                            std::type_index out, client_factory make);

template <class CallIn, class CallOut>
result<std::shared_ptr<redis_client<CallIn, CallOut>>> client_for(std::string_view serving) {
  constexpr client_factory make = [](const redis_client_options& options) {
    return std::shared_ptr<void>(std::make_shared<redis_client<CallIn, CallOut>>(options));
  };
  result<std::shared_ptr<void>> found =
      remote_client(serving, typeid(CallIn), typeid(CallOut), make);
  if (!found.ok()) return found.error();
  return std::static_pointer_cast<redis_client<CallIn, CallOut>>(std::move(*found));
}

// Where one call goes: the local endpoint, or (local null) Redis.
template <class Endpoint, class CallIn, class CallOut>
struct resolved {
  std::shared_ptr<Endpoint> local;
  std::shared_ptr<redis_client<CallIn, CallOut>> remote;
};

// Endpoint: batch_serving::detail::endpoint (plain calls) or stream_endpoint.
template <class Endpoint, class CallIn, class CallOut>
result<resolved<Endpoint, CallIn, CallOut>> resolve(std::string_view serving, route where) {
  using found = resolved<Endpoint, CallIn, CallOut>;
  constexpr bool streaming =
      std::is_same_v<Endpoint, batch_serving::detail::stream_endpoint<CallIn, CallOut>>;
  if (where != route::remote_only) {
    auto local =
        batch_serving::detail::find_typed_endpoint<Endpoint, CallIn, CallOut>(serving, streaming);
    if (local.ok()) return found{std::move(*local), nullptr};
    if (where == route::local_only || local.error().code() != errc::no_serving || !configured()) {
      return local.error();
    }
  } else if (!configured()) {
    return batch_serving::error(errc::invalid_argument,
                                "remote dispatch of '" + std::string(serving) +
                                    "': no Redis is configured (batch_serving::distributed::"
                                    "configure)");
  }
  auto remote = client_for<CallIn, CallOut>(serving);
  if (!remote.ok()) return remote.error();
  return found{nullptr, std::move(*remote)};
}

template <class T>
future<T> failed_future(batch_serving::error e) {
  return future<T>(new batch_serving::detail::ready_future_state<T>(std::move(e)));
}

}  // namespace detail

// A serving by name and route: dispatch in every form of redis_client, each
// call routed as the header says. Cheap to copy; holds no connection.
template <encodable CallIn, encodable CallOut>
class target {
 public:
  using input_type = CallIn;  // what co_dispatch (coroutine.hpp) takes
  using output_type = CallOut;  // and answers
  explicit target(std::string serving, route where = route::local_first)
      : serving_(std::move(serving)), where_(where) {}

  const std::string& serving() const noexcept { return serving_; }
  route where() const noexcept { return where_; }

  result<CallOut> dispatch(const CallIn& item, const call_options& options = {}) const {
    auto to = resolve();
    if (!to.ok()) return to.error();
    if (to->local) return to->local->dispatch(item, options);
    return to->remote->dispatch(item, options);
  }

  result<std::vector<CallOut>> dispatch_many(std::span<const CallIn> items,
                                             const call_options& options = {}) const {
    auto to = resolve();
    if (!to.ok()) return to.error();
    if (to->local) return to->local->dispatch_many(items, options);
    return to->remote->dispatch_many(items, options);
  }
  result<std::vector<CallOut>> dispatch_many(std::initializer_list<CallIn> items,
                                             const call_options& options = {}) const {
    return dispatch_many(std::span<const CallIn>(items.begin(), items.size()), options);
  }
  result<std::vector<CallOut>> dispatch_many(const std::vector<CallIn>& items,
                                             const call_options& options = {}) const {
    return dispatch_many(std::span<const CallIn>(items), options);
  }

  future<CallOut> dispatch_async(const CallIn& item, const call_options& options = {}) const {
    auto to = resolve();
    if (!to.ok()) return detail::failed_future<CallOut>(to.error());
    if (to->local) return to->local->dispatch_async(item, options);
    return to->remote->dispatch_async(item, options);
  }

  future<std::vector<CallOut>> dispatch_many_async(std::vector<CallIn> items,
                                                   const call_options& options = {}) const {
    auto to = resolve();
    if (!to.ok()) return detail::failed_future<std::vector<CallOut>>(to.error());
    if (to->local) return to->local->dispatch_many_async(std::move(items), options);
    return to->remote->dispatch_many_async(items, options);
  }

  // Callback forms: `done` runs once, on the thread that answered (a local
  // server's, the client's receiver, or this one when refused at once).
  template <class Callback>
    requires std::invocable<Callback&, result<CallOut>>
  void dispatch_async(const CallIn& item, const call_options& options, Callback&& done) const {
    auto to = resolve();
    if (!to.ok()) {
      batch_serving::detail::call_dropping_exceptions(done, result<CallOut>(to.error()));
    } else if (to->local) {
      to->local->dispatch_async(item, options,
                                batch_serving::detail::shared_function<void(result<CallOut>)>(
                                    std::decay_t<Callback>(std::forward<Callback>(done))));
    } else {
      to->remote->dispatch_async(item, options, std::forward<Callback>(done));
    }
  }

  template <class Callback>
    requires std::invocable<Callback&, result<std::vector<CallOut>>>
  void dispatch_many_async(std::vector<CallIn> items, const call_options& options,
                           Callback&& done) const {
    auto to = resolve();
    if (!to.ok()) {
      batch_serving::detail::call_dropping_exceptions(done,
                                                      result<std::vector<CallOut>>(to.error()));
    } else if (to->local) {
      to->local->dispatch_many_async(
          std::move(items), options,
          batch_serving::detail::shared_function<void(result<std::vector<CallOut>>)>(
              std::decay_t<Callback>(std::forward<Callback>(done))));
    } else {
      to->remote->dispatch_many_async(std::span<const CallIn>(items), options,
                                      std::forward<Callback>(done));
    }
  }

  // Streaming (a streaming server here, or one a redis_worker attached):
  // the events as streaming_server.hpp and redis_client.hpp describe.
  // HookPayload: the type remote hook entries decode as (redis_client's
  // dispatch_stream<P>); a local stream's payloads need none.
  template <class HookPayload = void>
  event_stream<CallOut> dispatch_stream(const CallIn& item,
                                        const call_options& options = {}) const {
    auto to = resolve_stream();
    if (!to.ok()) return batch_serving::detail::failed_stream<CallOut>(to.error());
    if (to->local) return to->local->dispatch(item, options, {});
    return to->remote->template dispatch_stream<HookPayload>(item, options);
  }
  template <class HookPayload = void>
  event_stream<CallOut> dispatch_many_stream(std::span<const CallIn> items,
                                             const call_options& options = {}) const {
    auto to = resolve_stream();
    if (!to.ok()) return batch_serving::detail::failed_stream<CallOut>(to.error());
    if (to->local) return to->local->dispatch_many(items, options, {});
    return to->remote->template dispatch_many_stream<HookPayload>(items, options);
  }
  template <class HookPayload = void>
  event_stream<CallOut> dispatch_many_stream(std::initializer_list<CallIn> items,
                                             const call_options& options = {}) const {
    return dispatch_many_stream<HookPayload>(std::span<const CallIn>(items.begin(), items.size()),
                                             options);
  }

 private:
  using plain_endpoint = batch_serving::detail::endpoint<CallIn, CallOut>;
  using stream_endpoint = batch_serving::detail::stream_endpoint<CallIn, CallOut>;

  result<detail::resolved<plain_endpoint, CallIn, CallOut>> resolve() const {
    return detail::resolve<plain_endpoint, CallIn, CallOut>(serving_, where_);
  }
  result<detail::resolved<stream_endpoint, CallIn, CallOut>> resolve_stream() const {
    return detail::resolve<stream_endpoint, CallIn, CallOut>(serving_, where_);
  }

  std::string serving_;
  route where_;
};

// The free forms route local_first.
template <encodable CallIn, encodable CallOut>
result<CallOut> dispatch(std::string_view serving, const CallIn& item,
                         const call_options& options = {}) {
  return target<CallIn, CallOut>(std::string(serving)).dispatch(item, options);
}

template <encodable CallIn, encodable CallOut>
result<std::vector<CallOut>> dispatch_many(std::string_view serving, std::span<const CallIn> items,
                                           const call_options& options = {}) {
  return target<CallIn, CallOut>(std::string(serving)).dispatch_many(items, options);
}
template <encodable CallIn, encodable CallOut>
result<std::vector<CallOut>> dispatch_many(std::string_view serving,
                                           std::initializer_list<CallIn> items,
                                           const call_options& options = {}) {
  return target<CallIn, CallOut>(std::string(serving)).dispatch_many(items, options);
}

template <encodable CallIn, encodable CallOut>
future<CallOut> dispatch_async(std::string_view serving, const CallIn& item,
                               const call_options& options = {}) {
  return target<CallIn, CallOut>(std::string(serving)).dispatch_async(item, options);
}

template <encodable CallIn, encodable CallOut>
future<std::vector<CallOut>> dispatch_many_async(std::string_view serving,
                                                 std::vector<CallIn> items,
                                                 const call_options& options = {}) {
  return target<CallIn, CallOut>(std::string(serving))
      .dispatch_many_async(std::move(items), options);
}

template <encodable CallIn, encodable CallOut, class HookPayload = void>
event_stream<CallOut> dispatch_stream(std::string_view serving, const CallIn& item,
                                      const call_options& options = {}) {
  return target<CallIn, CallOut>(std::string(serving))
      .template dispatch_stream<HookPayload>(item, options);
}

template <encodable CallIn, encodable CallOut, class HookPayload = void>
event_stream<CallOut> dispatch_many_stream(std::string_view serving, std::span<const CallIn> items,
                                           const call_options& options = {}) {
  return target<CallIn, CallOut>(std::string(serving))
      .template dispatch_many_stream<HookPayload>(items, options);
}

}  // namespace batch_serving::distributed
