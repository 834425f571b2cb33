// The process-wide table of named servers.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "batch_serving/detail/endpoint.hpp"

namespace batch_serving::detail {

// Registers `server` under `name`. False if a live server holds the name.
bool register_endpoint(const std::string& name, std::weak_ptr<endpoint_base> server);
// Removes `name` if it still refers to `server`.
void unregister_endpoint(const std::string& name, const endpoint_base* server) noexcept;
// The live server under `name`, or null.
std::shared_ptr<endpoint_base> find_endpoint(std::string_view name);

}  // namespace batch_serving::detail
