// The process-wide table of named servers.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "batch_serving/detail/endpoint.hpp"
#include "batch_serving/detail/type_name.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving::detail {

// Registers `server` under `name`. False if a live server holds the name.
bool register_endpoint(const std::string& name, std::weak_ptr<endpoint_base> server);
// Removes `name` if it still refers to `server`.
void unregister_endpoint(const std::string& name, const endpoint_base* server) noexcept;
// The live server under `name`, or null.
std::shared_ptr<endpoint_base> find_endpoint(std::string_view name);

// The server under `name` as an `Endpoint` (endpoint<CallIn, CallOut> or
// stream_endpoint<CallIn, CallOut>): no_serving if none runs, or
// invalid_argument naming both signatures if it serves something else.
template <class Endpoint, class CallIn, class CallOut>
result<std::shared_ptr<Endpoint>> find_typed_endpoint(std::string_view name, bool streaming) {
  std::shared_ptr<endpoint_base> found = find_endpoint(name);
  if (found == nullptr) {
    return error(errc::no_serving, "no server named '" + std::string(name) + "' is running");
  }
  auto typed = std::dynamic_pointer_cast<Endpoint>(found);
  if (typed == nullptr) {
    const bool found_streaming =
        dynamic_cast<const stream_endpoint<CallIn, CallOut>*>(found.get()) != nullptr;
    const char* hint = "";
    if (found_streaming && !streaming) hint = " (reach a streaming server with dispatch_stream)";
    if (!found_streaming && streaming &&
        dynamic_cast<const endpoint<CallIn, CallOut>*>(found.get())) {
      hint = " (reach a plain server with dispatch)";
    }
    return error(errc::invalid_argument, "server '" + std::string(name) + "' serves " +
                                             found->signature() + ", but this call was made for " +
                                             signature_of<CallIn, CallOut>(streaming) + hint);
  }
  return typed;
}

}  // namespace batch_serving::detail
