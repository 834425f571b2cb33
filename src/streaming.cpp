#include "batch_serving/detail/inline_hooks.hpp"

#include <algorithm>

#include "batch_serving/detail/hook_payload.hpp"
#include "batch_serving/error.hpp"

namespace batch_serving::detail {

const std::string* find_declared_hook(const std::vector<std::string>& declared,
                                      std::string_view hook) noexcept {
  auto found = std::find(declared.begin(), declared.end(), hook);
  return found != declared.end() ? &*found : nullptr;
}

bool inline_hooks::wants(std::string_view hook) const noexcept {
  return find_declared_hook(declared_, hook) != nullptr;
}

void inline_hooks::emit(std::string_view hook, const hook_payload& payload) {
  const std::string* name = find_declared_hook(declared_, hook);
  if (name != nullptr) emitted_.push_back(hook_slice::of(*name, payload, 0, payload.count));
}

std::vector<std::string> validated_hooks(std::vector<std::string> hooks) {
  for (std::size_t i = 0; i < hooks.size(); ++i) {
    if (hooks[i].empty()) {
      throw serving_error(errc::invalid_argument, "streaming_options.hooks: a hook name is empty");
    }
    if (std::find(hooks.begin(), hooks.begin() + static_cast<std::ptrdiff_t>(i), hooks[i]) !=
        hooks.begin() + static_cast<std::ptrdiff_t>(i)) {
      throw serving_error(errc::invalid_argument,
                          "streaming_options.hooks: '" + hooks[i] + "' is declared twice");
    }
  }
  return hooks;
}

}  // namespace batch_serving::detail
