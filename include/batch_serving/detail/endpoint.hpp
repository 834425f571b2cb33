// What the process-wide registry knows of a running server: its caller-facing
// element types, and dispatch in every completion style for those types.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <typeinfo>
#include <vector>

#include "batch_serving/call_options.hpp"
#include "batch_serving/future.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving::detail {

// Readable name of a type ("std::string", not a mangled symbol).
std::string type_name(const std::type_info& type);

class endpoint_base {
 public:
  virtual ~endpoint_base() = default;
  // "int -> int": the caller-facing input and result element types.
  virtual std::string signature() const = 0;
};

template <class CallIn, class CallOut>
class endpoint : public endpoint_base {
 public:
  std::string signature() const final {
    return type_name(typeid(CallIn)) + " -> " + type_name(typeid(CallOut));
  }

  virtual result<CallOut> dispatch(const CallIn& item, const call_options& options) = 0;
  virtual result<std::vector<CallOut>> dispatch_many(std::span<const CallIn> items,
                                                     const call_options& options) = 0;
  virtual future<CallOut> dispatch_async(CallIn item, const call_options& options) = 0;
  virtual future<std::vector<CallOut>> dispatch_many_async(std::vector<CallIn> items,
                                                           const call_options& options) = 0;
  virtual void dispatch_async(CallIn item, const call_options& options,
                              std::function<void(result<CallOut>)> done) = 0;
  virtual void dispatch_many_async(std::vector<CallIn> items, const call_options& options,
                                   std::function<void(result<std::vector<CallOut>>)> done) = 0;
};

}  // namespace batch_serving::detail
