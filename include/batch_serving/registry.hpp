// Dispatch to a server by the name it was started with (server_options::name),
// from anywhere in the process, as the seed's dispatch(MyServing, 2).
// Template arguments are the caller-facing element types the server was
// started with; other types get a clear invalid_argument error, never
// undefined behaviour. An unknown or stopped name gets no_serving at once.
//
//   batch_serving::server srv(squares, {.name = "squares"});
//   ...
//   auto r = batch_serving::dispatch<int, int>("squares", 3);      // r.value() == 9
//   auto v = batch_serving::dispatch_many<int, int>("squares", {2, 3});
//   auto e = batch_serving::dispatch<int, int>("cubes", 3);        // errc::no_serving
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "batch_serving/call_options.hpp"
#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/endpoint.hpp"
#include "batch_serving/detail/registry.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/future.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving {

namespace detail {
template <class CallIn, class CallOut>
result<std::shared_ptr<endpoint<CallIn, CallOut>>> find_typed_endpoint(std::string_view name) {
  std::shared_ptr<endpoint_base> found = find_endpoint(name);
  if (found == nullptr) {
    return error(errc::no_serving, "no server named '" + std::string(name) + "' is running");
  }
  auto typed = std::dynamic_pointer_cast<endpoint<CallIn, CallOut>>(found);
  if (typed == nullptr) {
    return error(errc::invalid_argument, "server '" + std::string(name) + "' serves " +
                                             found->signature() + ", but this call was made for " +
                                             type_name(typeid(CallIn)) + " -> " +
                                             type_name(typeid(CallOut)));
  }
  return typed;
}
}  // namespace detail

// True if a server is registered under `name` (running, or still starting).
inline bool is_running(std::string_view name) { return detail::find_endpoint(name) != nullptr; }

template <class CallIn, class CallOut>
result<CallOut> dispatch(std::string_view name, const CallIn& item,
                         const call_options& options = {}) {
  auto target = detail::find_typed_endpoint<CallIn, CallOut>(name);
  if (!target.ok()) return target.error();
  return (*target)->dispatch(item, options);
}

template <class CallIn, class CallOut>
result<std::vector<CallOut>> dispatch_many(std::string_view name, std::span<const CallIn> items,
                                           const call_options& options = {}) {
  auto target = detail::find_typed_endpoint<CallIn, CallOut>(name);
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
  auto target = detail::find_typed_endpoint<CallIn, CallOut>(name);
  if (!target.ok()) return future<CallOut>(new detail::ready_future_state<CallOut>(target.error()));
  return (*target)->dispatch_async(std::move(item), options);
}

template <class CallIn, class CallOut>
future<std::vector<CallOut>> dispatch_many_async(std::string_view name, std::vector<CallIn> items,
                                                 const call_options& options = {}) {
  auto target = detail::find_typed_endpoint<CallIn, CallOut>(name);
  if (!target.ok()) {
    return future<std::vector<CallOut>>(
        new detail::ready_future_state<std::vector<CallOut>>(target.error()));
  }
  return (*target)->dispatch_many_async(std::move(items), options);
}

// Callback forms: `done` runs once, on a server thread, or in this thread
// when the call is answered at once (unknown name, bad input, shutting down).
template <class CallIn, class CallOut>
void dispatch_async(std::string_view name, CallIn item, const call_options& options,
                    std::function<void(result<CallOut>)> done) {
  auto target = detail::find_typed_endpoint<CallIn, CallOut>(name);
  if (!target.ok()) {
    detail::call_dropping_exceptions(done, target.error());
    return;
  }
  (*target)->dispatch_async(std::move(item), options, std::move(done));
}
template <class CallIn, class CallOut>
void dispatch_async(std::string_view name, CallIn item, std::function<void(result<CallOut>)> done) {
  dispatch_async<CallIn, CallOut>(name, std::move(item), call_options{}, std::move(done));
}

template <class CallIn, class CallOut>
void dispatch_many_async(std::string_view name, std::vector<CallIn> items,
                         const call_options& options,
                         std::function<void(result<std::vector<CallOut>>)> done) {
  auto target = detail::find_typed_endpoint<CallIn, CallOut>(name);
  if (!target.ok()) {
    detail::call_dropping_exceptions(done, target.error());
    return;
  }
  (*target)->dispatch_many_async(std::move(items), options, std::move(done));
}
template <class CallIn, class CallOut>
void dispatch_many_async(std::string_view name, std::vector<CallIn> items,
                         std::function<void(result<std::vector<CallOut>>)> done) {
  dispatch_many_async<CallIn, CallOut>(name, std::move(items), call_options{}, std::move(done));
}

}  // namespace batch_serving
