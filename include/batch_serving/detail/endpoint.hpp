// What the process-wide registry knows of a running server: its caller-facing
// element types, and dispatch in every completion style for those types.
// Plain servers are `endpoint`s, streaming servers `stream_endpoint`s; the
// registry tells them apart by type, so a call of the wrong kind or types
// gets a clear error naming both signatures.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <typeinfo>
#include <vector>

#include "batch_serving/call_options.hpp"
#include "batch_serving/detail/type_name.hpp"
#include "batch_serving/event.hpp"
#include "batch_serving/event_stream.hpp"
#include "batch_serving/future.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving::detail {

class endpoint_base {
 public:
  virtual ~endpoint_base() = default;
  // "int -> int": the caller-facing input and result element types, with
  // " (streaming)" for a streaming server.
  virtual std::string signature() const = 0;
};

template <class CallIn, class CallOut>
std::string signature_of(bool streaming) {
  return type_name(typeid(CallIn)) + " -> " + type_name(typeid(CallOut)) +
         (streaming ? " (streaming)" : "");
}

template <class CallIn, class CallOut>
class endpoint : public endpoint_base {
 public:
  std::string signature() const final { return signature_of<CallIn, CallOut>(false); }

  virtual result<CallOut> dispatch(CallIn item, const call_options& options) = 0;
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

template <class CallIn, class CallOut>
class stream_endpoint : public endpoint_base {
 public:
  using on_event = std::function<void(event<CallOut>)>;

  std::string signature() const final { return signature_of<CallIn, CallOut>(true); }

  // With `callback`, events go to it and the returned stream is empty.
  virtual event_stream<CallOut> dispatch(CallIn item, const call_options& options,
                                         on_event callback) = 0;
  virtual event_stream<CallOut> dispatch_many(std::span<const CallIn> items,
                                              const call_options& options, on_event callback) = 0;
};

}  // namespace batch_serving::detail
