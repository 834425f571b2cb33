#include "batch_serving/error.hpp"

namespace batch_serving {

std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::no_serving: return "no_serving";
    case errc::execution_failed: return "execution_failed";
    case errc::invalid_argument: return "invalid_argument";
    case errc::shutting_down: return "shutting_down";
    case errc::overloaded: return "overloaded";
    case errc::timeout: return "timeout";
    case errc::cancelled: return "cancelled";
    case errc::unavailable: return "unavailable";
  }
  return "unknown";
}

std::string error::to_string() const {
  std::string text(batch_serving::to_string(code_));
  text += ": ";
  text += message_;
  return text;
}

}  // namespace batch_serving
