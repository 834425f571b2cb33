// Reading MessagePack bytes nobody vouches for (a Redis stream entry anyone
// with access to the Redis could have written).
//
// msgpack-cxx's unpacker reserves room for as many elements as an array or
// map header claims before it sees them: a 5-byte header claiming 2^32
// elements would cost 100 GiB. So the bytes are first walked without
// building anything (msgpack::parse with a visitor that only counts depth),
// which proves that every element an header claims is really there; only
// then are they unpacked, into at most a few dozen bytes per input byte.
#pragma once

#include <cstddef>
#include <msgpack.hpp>
#include <string_view>

#include "batch_serving/result.hpp"

namespace batch_serving::detail {

// How deep arrays and maps may nest in one value unless a limit says otherwise.
inline constexpr std::size_t default_max_depth = 32;

// The top level of a MessagePack value: its kind and, for an array or map, its
// element (pair) count.
struct msgpack_outline {
  msgpack::type::object_type kind = msgpack::type::NIL;
  std::size_t size = 0;
};

// Checks that `bytes` is exactly one complete MessagePack value nested at most
// `max_depth` deep, without allocating. Errors are invalid_argument "WHAT:
// ..." (truncated, trailing bytes, malformed, too deep). Thread-safe; never
// throws.
[[nodiscard]] result<msgpack_outline> inspect_untrusted(std::string_view bytes,
                                                        std::size_t max_depth,
                                                        std::string_view what);

// inspect_untrusted, then the value itself (its strings copied into the
// handle's zone, so `bytes` may go away). Thread-safe; never throws;
// allocates.
[[nodiscard]] result<msgpack::object_handle> unpack_untrusted(std::string_view bytes,
                                                              std::size_t max_depth,
                                                              std::string_view what);

// "a string", "an array", ... for error messages. Never allocates.
[[nodiscard]] std::string_view msgpack_kind(msgpack::type::object_type kind) noexcept;
[[nodiscard]] std::string_view msgpack_kind(const msgpack::object& value) noexcept;

}  // namespace batch_serving::detail
