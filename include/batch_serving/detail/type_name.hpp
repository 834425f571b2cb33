// Readable type names for error messages ("std::string", not a mangled symbol).
#pragma once

#include <string>
#include <typeinfo>

namespace batch_serving::detail {

std::string type_name(const std::type_info& type);

}  // namespace batch_serving::detail
