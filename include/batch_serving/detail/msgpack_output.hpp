// The buffer codec<T>::encode writes to, and how floating-point values are
// written into it.
//
// msgpack-cxx 4.1 writes a float or double whose value is integral as an
// integer, converting it with uint64_t(d) whenever d <= 2^64: at d == 2^64
// that conversion is undefined behaviour, and -0.0 comes out as 0. So the
// packer of our own buffer type writes every float as a MessagePack float32
// and every double as a float64, bit for bit (NaN payloads, -0.0, infinities
// included): what a sender had is what a receiver gets, in any language.
// Everything else is msgpack-cxx's packer unchanged.
#pragma once

#include <bit>
#include <cstdint>
#include <msgpack.hpp>

namespace batch_serving::detail {

// msgpack-cxx's sbuffer under a name of our own, so that the floating-point
// members of packer<msgpack_buffer> can be ours (below). Not thread-safe;
// allocates as it grows.
class msgpack_buffer : public msgpack::sbuffer {
 public:
  using msgpack::sbuffer::sbuffer;
};

}  // namespace batch_serving::detail

// Explicit specializations of two members of msgpack::packer for our buffer
// only, declared before anything can instantiate them. packer lives in
// msgpack::v1 whatever MSGPACK_DEFAULT_API_VERSION is.
namespace msgpack {
namespace v1 {

template <>
inline packer<batch_serving::detail::msgpack_buffer>&
packer<batch_serving::detail::msgpack_buffer>::pack_double(double d) {
  char buf[9];
  buf[0] = static_cast<char>(0xcbU);
  _msgpack_store64(&buf[1], std::bit_cast<std::uint64_t>(d));
  append_buffer(buf, sizeof(buf));
  return *this;
}

template <>
inline packer<batch_serving::detail::msgpack_buffer>&
packer<batch_serving::detail::msgpack_buffer>::pack_float(float d) {
  char buf[5];
  buf[0] = static_cast<char>(0xcaU);
  _msgpack_store32(&buf[1], std::bit_cast<std::uint32_t>(d));
  append_buffer(buf, sizeof(buf));
  return *this;
}

}  // namespace v1
}  // namespace msgpack
