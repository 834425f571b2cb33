#include "batch_serving/detail/msgpack_input.hpp"

#include <cstdint>
#include <exception>
#include <string>

namespace batch_serving::detail {

namespace {

// Walks a value without building it: records the top level, refuses to nest
// deeper than the limit (parse stops when a callback returns false).
class outline_visitor : public msgpack::null_visitor {
 public:
  explicit outline_visitor(std::size_t max_depth) : max_depth_(max_depth) {}

  bool visit_nil() { return note(msgpack::type::NIL, 0); }
  bool visit_boolean(bool /*value*/) { return note(msgpack::type::BOOLEAN, 0); }
  bool visit_positive_integer(std::uint64_t /*value*/) {
    return note(msgpack::type::POSITIVE_INTEGER, 0);
  }
  bool visit_negative_integer(std::int64_t /*value*/) {
    return note(msgpack::type::NEGATIVE_INTEGER, 0);
  }
  bool visit_float32(float /*value*/) { return note(msgpack::type::FLOAT32, 0); }
  bool visit_float64(double /*value*/) { return note(msgpack::type::FLOAT64, 0); }
  bool visit_str(const char* /*data*/, std::uint32_t /*size*/) {
    return note(msgpack::type::STR, 0);
  }
  bool visit_bin(const char* /*data*/, std::uint32_t /*size*/) {
    return note(msgpack::type::BIN, 0);
  }
  bool visit_ext(const char* /*data*/, std::uint32_t /*size*/) {
    return note(msgpack::type::EXT, 0);
  }
  bool start_array(std::uint32_t elements) {
    note(msgpack::type::ARRAY, elements);
    return enter();
  }
  bool end_array() { return leave(); }
  bool start_map(std::uint32_t pairs) {
    note(msgpack::type::MAP, pairs);
    return enter();
  }
  bool end_map() { return leave(); }
  void parse_error(std::size_t /*parsed*/, std::size_t error_offset) {
    malformed_at_ = error_offset;
  }

  const msgpack_outline& outline() const { return outline_; }
  bool too_deep() const { return too_deep_; }
  std::size_t malformed_at() const { return malformed_at_; }

 private:
  bool note(msgpack::type::object_type kind, std::size_t size) {
    if (depth_ == 0 && !seen_) {
      seen_ = true;
      outline_ = {.kind = kind, .size = size};
    }
    return true;
  }
  bool enter() {
    if (++depth_ > max_depth_) {
      too_deep_ = true;
      return false;
    }
    return true;
  }
  bool leave() {
    --depth_;
    return true;
  }

  std::size_t max_depth_;
  std::size_t depth_ = 0;
  bool seen_ = false;
  bool too_deep_ = false;
  std::size_t malformed_at_ = static_cast<std::size_t>(-1);
  msgpack_outline outline_;
};

error malformed(std::string_view what, std::string_view why) {
  std::string message(what);
  message += ": ";
  message += why;
  return {errc::invalid_argument, std::move(message)};
}

}  // namespace

result<msgpack_outline> inspect_untrusted(std::string_view bytes, std::size_t max_depth,
                                          std::string_view what) {
  try {
    if (bytes.empty()) return malformed(what, "no bytes (expected one MessagePack value)");
    outline_visitor visitor(max_depth);
    std::size_t offset = 0;
    if (!msgpack::parse(bytes.data(), bytes.size(), offset, visitor)) {
      if (visitor.too_deep()) {
        return malformed(what, "nested deeper than " + std::to_string(max_depth) + " levels");
      }
      if (visitor.malformed_at() != static_cast<std::size_t>(-1)) {
        return malformed(what, "not MessagePack (bad byte at offset " +
                                   std::to_string(visitor.malformed_at()) + ")");
      }
      return malformed(what, "truncated MessagePack (" + std::to_string(bytes.size()) +
                                 " bytes end inside the value)");
    }
    if (offset != bytes.size()) {
      return malformed(what, std::to_string(bytes.size() - offset) +
                                 " bytes after the end of the MessagePack value");
    }
    return visitor.outline();
  } catch (const std::exception& e) {
    return malformed(what, e.what());
  }
}

result<msgpack::object_handle> unpack_untrusted(std::string_view bytes, std::size_t max_depth,
                                                std::string_view what) {
  result<msgpack_outline> outline = inspect_untrusted(bytes, max_depth, what);
  if (!outline.ok()) return outline.error();
  try {
    // Complete by now: no header claims more elements than there are bytes.
    const msgpack::unpack_limit limits(bytes.size(), bytes.size(), bytes.size(), bytes.size(),
                                       bytes.size(), max_depth);
    std::size_t offset = 0;
    bool referenced = false;
    return msgpack::unpack(bytes.data(), bytes.size(), offset, referenced, nullptr, nullptr,
                           limits);
  } catch (const std::exception& e) {
    return malformed(what, e.what());
  }
}

std::string_view msgpack_kind(msgpack::type::object_type kind) noexcept {
  switch (kind) {
    case msgpack::type::NIL: return "nil";
    case msgpack::type::BOOLEAN: return "a boolean";
    case msgpack::type::POSITIVE_INTEGER: return "a non-negative integer";
    case msgpack::type::NEGATIVE_INTEGER: return "a negative integer";
    case msgpack::type::FLOAT32: return "a float32";
    case msgpack::type::FLOAT64: return "a float64";
    case msgpack::type::STR: return "a string";
    case msgpack::type::BIN: return "a binary";
    case msgpack::type::ARRAY: return "an array";
    case msgpack::type::MAP: return "a map";
    case msgpack::type::EXT: return "an extension value";
  }
  return "an unknown MessagePack value";
}

std::string_view msgpack_kind(const msgpack::object& value) noexcept {
  return msgpack_kind(value.type);
}

}  // namespace batch_serving::detail
