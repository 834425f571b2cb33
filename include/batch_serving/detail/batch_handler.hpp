// The type-erased batch function of one partition, and running it safely.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "batch_serving/error.hpp"
#include "batch_serving/execution_context.hpp"

namespace batch_serving::detail {

// One partition's batch function and state (a module instance, or a shared
// plain function). Called by one thread at a time.
template <class In, class Out>
class batch_handler {
 public:
  virtual ~batch_handler() = default;
  virtual std::vector<Out> handle_batch(std::span<const In> batch, execution_context& ctx) = 0;
};

// Creates a partition's handler; called once per partition (the seed's init).
template <class In, class Out>
using handler_factory =
    std::function<std::unique_ptr<batch_handler<In, Out>>(const partition_info&)>;

// Runs one execution. User exceptions and a wrong number of outputs become an
// execution_failed error; nothing escapes.
template <class In, class Out>
std::optional<error> run_batch(batch_handler<In, Out>& handler, std::span<const In> inputs,
                               execution_context& ctx, std::vector<Out>& outputs) {
  try {
    outputs = handler.handle_batch(inputs, ctx);
  } catch (const std::exception& e) {
    return error(errc::execution_failed, std::string("batch function threw: ") + e.what());
  } catch (...) {
    return error(errc::execution_failed, "batch function threw a non-std::exception");
  }
  if (outputs.size() != inputs.size()) {
    return error(errc::execution_failed, "batch function returned " +
                                             std::to_string(outputs.size()) + " outputs for " +
                                             std::to_string(inputs.size()) + " inputs");
  }
  return std::nullopt;
}

// Turns the exception in flight into a message for an error.
inline std::string describe_current_exception() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "a non-std::exception";
  }
}

// Calls a user callback that has no caller left to report to: an exception
// it throws is dropped, never let onto a library thread.
template <class F, class... Args>
void call_dropping_exceptions(F& f, Args&&... args) noexcept {
  try {
    f(std::forward<Args>(args)...);
  } catch (...) {
  }
}

}  // namespace batch_serving::detail
