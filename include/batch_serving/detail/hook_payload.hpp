// A hook's per-item payload, type-erased but checked: one shared vector<T>
// per emission, and per caller a view of its own items' entries.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

namespace batch_serving::detail {

// One emission: the whole execution's payload.
struct hook_payload {
  std::shared_ptr<const void> owner;  // a std::vector<T>
  const std::type_info* type = nullptr;
  const void* first = nullptr;  // element 0
  std::size_t element_size = 0;
  std::size_t count = 0;  // entries: one per item of the execution
};

// One caller's part of an emission: entries [offset, offset + length).
struct hook_slice {
  const std::string* name = nullptr;  // the declared hook name (owned by the serving)
  std::shared_ptr<const void> owner;
  const std::type_info* type = nullptr;
  const void* first = nullptr;  // this caller's first entry
  std::size_t length = 0;

  static hook_slice of(const std::string& name, const hook_payload& whole, std::size_t offset,
                       std::size_t length) {
    return {&name, whole.owner, whole.type,
            static_cast<const char*>(whole.first) + offset * whole.element_size, length};
  }
};

// What a hook_slice of this type points to (`first`): a payload that came
// over Redis and could not be decoded as the caller's type, so
// event::payload<P>() throws saying why (redis_client.hpp). `owner` holds it.
struct undecoded_hook_payload {
  std::string name;  // the hook name (the slice's name points here)
  std::string why;  // "came over Redis as ..., not decoded: ..."
};

// The declared name equal to `hook`, or null.
const std::string* find_declared_hook(const std::vector<std::string>& declared,
                                      std::string_view hook) noexcept;

// Where an execution's emitted hooks go (the executor routes them to callers).
class hook_sink {
 public:
  // Whether the serving declared `hook` (someone reads its events).
  virtual bool wants(std::string_view hook) const noexcept = 0;
  // Delivers an emission of a wanted hook.
  virtual void emit(std::string_view hook, const hook_payload& payload) = 0;
  // An emission of a hook nobody wants was dropped.
  virtual void dropped(std::string_view hook) noexcept = 0;

 protected:
  ~hook_sink() = default;
};

}  // namespace batch_serving::detail
