#include <string_view>

#include "batch_serving/telemetry.hpp"

namespace batch_serving {

std::string_view to_string(batch_trigger trigger) noexcept {
  switch (trigger) {
    case batch_trigger::full: return "full";
    case batch_trigger::timeout: return "timeout";
    case batch_trigger::eager: return "eager";
    case batch_trigger::drain: return "drain";
  }
  return "unknown";
}

}  // namespace batch_serving
