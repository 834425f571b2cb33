// Hooks of inline streaming runs, and checking the hook names a streaming
// serving declares.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "batch_serving/detail/hook_payload.hpp"

namespace batch_serving::detail {

// Collects an inline execution's hooks for its one caller.
class inline_hooks final : public hook_sink {
 public:
  explicit inline_hooks(const std::vector<std::string>& declared) : declared_(declared) {}
  bool wants(std::string_view hook) const noexcept override;
  void emit(std::string_view hook, const hook_payload& payload) override;
  void dropped(std::string_view) noexcept override {}  // inline runs keep no counters
  std::vector<hook_slice> take() { return std::exchange(emitted_, {}); }

 private:
  const std::vector<std::string>& declared_;
  std::vector<hook_slice> emitted_;
};

// Checks hook names once, when a serving is marked streaming; throws
// serving_error(invalid_argument) for an empty or repeated name.
std::vector<std::string> validated_hooks(std::vector<std::string> hooks);

}  // namespace batch_serving::detail
