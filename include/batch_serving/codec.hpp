// codec<T>: how a value of type T travels between processes (the Redis
// transport, batch_serving::redis). Values are MessagePack, written and read
// by msgpack-cxx, never by a format of our own. Comes with the Redis
// transport: link batch_serving::redis (it brings msgpack-cxx along).
//
// Built in: bool, the integer types, float, double, std::string, and
// std::vector, std::array, std::map, std::unordered_map, std::set,
// std::optional, std::pair and std::tuple of built-in types; and your own
// types that list their fields with msgpack-cxx's MSGPACK_DEFINE (float and
// double travel as MessagePack float32 / float64, bit for bit):
//
//   struct point {
//     double x = 0;
//     double y = 0;
//     std::string label;
//     MSGPACK_DEFINE(x, y, label)  // travels as the array [x, y, label]; no semicolon
//   };
//   static_assert(batch_serving::encodable<point>);
//   std::string bytes = batch_serving::encode_value(point{1, 2, "a"}).value();
//   batch_serving::result<point> back = batch_serving::decode_value<point>(bytes);
//   // decode_value<int>(bytes) is an invalid_argument error, never a throw.
//
// For any other type specialize codec<T> with the two static members below
// (encode writes exactly one MessagePack object; decode may throw on a value
// of the wrong shape, the library turns that into invalid_argument):
//
//   template <> struct batch_serving::codec<my_type> {
//     static void encode(batch_serving::msgpack_packer& out, const my_type& v);
//     static my_type decode(const msgpack::object& in);
//   };
//
// A type that has msgpack-cxx adaptors of its own (msgpack::adaptor::pack /
// convert, MSGPACK_ADD_ENUM) opts in with
//   template <> struct batch_serving::codec<my_type> : batch_serving::msgpack_codec<my_type> {};
// Containers of such types are built in only once msgpack-cxx can pack the
// element (the built-in codec of std::vector<U> is msgpack-cxx's, it does not
// go through codec<U>).
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <exception>
#include <map>
#include <msgpack.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

#include "batch_serving/detail/msgpack_input.hpp"
#include "batch_serving/detail/msgpack_output.hpp"
#include "batch_serving/detail/type_name.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving {

// What codec<T>::encode writes to: msgpack-cxx's packer, over a buffer whose
// floats and doubles are always MessagePack float32 and float64 (see
// detail/msgpack_output.hpp).
using msgpack_packer = msgpack::packer<detail::msgpack_buffer>;

// The codec of a type msgpack-cxx packs and converts itself. Stateless;
// encode allocates in the packer's buffer; decode throws msgpack::type_error
// (or what the type's convert throws) on a value of the wrong shape.
template <class T>
struct msgpack_codec {
  static void encode(msgpack_packer& out, const T& value) { out.pack(value); }
  static T decode(const msgpack::object& in) { return in.as<T>(); }
};

namespace detail {

template <class T>
struct is_msgpack_native;

template <class T>
inline constexpr bool is_msgpack_native_v = is_msgpack_native<std::remove_cv_t<T>>::value;

template <class T>
concept msgpack_define_type =
    std::default_initializable<T> &&
    requires(const T& value, T& target, msgpack_packer& out, const msgpack::object& in) {
      value.msgpack_pack(out);
      target.msgpack_unpack(in);
    };

template <class T>
inline constexpr bool is_msgpack_scalar_v =
    std::is_same_v<T, bool> || std::is_same_v<T, char> || std::is_same_v<T, signed char> ||
    std::is_same_v<T, unsigned char> || std::is_same_v<T, wchar_t> || std::is_same_v<T, short> ||
    std::is_same_v<T, unsigned short> || std::is_same_v<T, int> ||
    std::is_same_v<T, unsigned int> || std::is_same_v<T, long> ||
    std::is_same_v<T, unsigned long> || std::is_same_v<T, long long> ||
    std::is_same_v<T, unsigned long long> || std::is_same_v<T, float> || std::is_same_v<T, double>;

template <class T>
struct is_msgpack_native
    : std::bool_constant<is_msgpack_scalar_v<T> || std::is_same_v<T, std::string> ||
                         msgpack_define_type<T>> {};
template <class T, class A>
struct is_msgpack_native<std::vector<T, A>> : std::bool_constant<is_msgpack_native_v<T>> {};
template <class T, std::size_t N>
struct is_msgpack_native<std::array<T, N>> : std::bool_constant<is_msgpack_native_v<T>> {};
template <class T, class C, class A>
struct is_msgpack_native<std::set<T, C, A>> : std::bool_constant<is_msgpack_native_v<T>> {};
template <class T>
struct is_msgpack_native<std::optional<T>> : std::bool_constant<is_msgpack_native_v<T>> {};
template <class K, class V, class C, class A>
struct is_msgpack_native<std::map<K, V, C, A>>
    : std::bool_constant<is_msgpack_native_v<K> && is_msgpack_native_v<V>> {};
template <class K, class V, class H, class E, class A>
struct is_msgpack_native<std::unordered_map<K, V, H, E, A>>
    : std::bool_constant<is_msgpack_native_v<K> && is_msgpack_native_v<V>> {};
template <class A, class B>
struct is_msgpack_native<std::pair<A, B>>
    : std::bool_constant<is_msgpack_native_v<A> && is_msgpack_native_v<B>> {};
template <class... Ts>
struct is_msgpack_native<std::tuple<Ts...>> : std::bool_constant<(is_msgpack_native_v<Ts> && ...)> {
};

}  // namespace detail

// The codec of T. Not encodable unless specialized or built in (above).
template <class T>
struct codec {};

template <class T>
  requires detail::is_msgpack_native_v<T>
struct codec<T> : msgpack_codec<T> {};

// T has a codec: codec<T>::encode(msgpack_packer&, const T&) and
// codec<T>::decode(const msgpack::object&) -> T.
template <class T>
concept encodable = requires(msgpack_packer& out, const T& value, const msgpack::object& in) {
  codec<T>::encode(out, value);
  { codec<T>::decode(in) } -> std::same_as<T>;
};

namespace detail {

// codec<T>::decode(in), with whatever it throws turned into invalid_argument
// "WHAT: expected TYPE, got KIND" (and the exception's message, unless it is
// msgpack-cxx's type_error). Never throws.
template <encodable T>
result<T> decode_object(const msgpack::object& in, std::string_view what) {
  std::string reason;
  try {
    return codec<T>::decode(in);
  } catch (const msgpack::type_error&) {
    // msgpack-cxx's own "std::bad_cast" says nothing; an integer of the
    // wrong size is the one case the kind alone does not explain.
    const bool integer =
        in.type == msgpack::type::POSITIVE_INTEGER || in.type == msgpack::type::NEGATIVE_INTEGER;
    if (std::is_integral_v<T> && !std::is_same_v<T, bool> && integer) {
      reason = " out of its range";
    }
  } catch (const std::exception& e) {
    reason = std::string(" (") + e.what() + ")";
  } catch (...) {
    reason = " (unknown exception)";
  }
  try {
    return error(errc::invalid_argument, std::string(what) + ": expected " + type_name(typeid(T)) +
                                             ", got " + std::string(msgpack_kind(in)) + reason);
  } catch (...) {
    return error(errc::invalid_argument, "value of the wrong shape");
  }
}

}  // namespace detail

// The MessagePack bytes of `value`. Thread-safe as codec<T>::encode is (the
// built-in ones are); allocates. An exception from a user's codec becomes an
// invalid_argument error, as does a value msgpack-cxx cannot pack (a string
// over 4 GiB).
template <encodable T>
[[nodiscard]] result<std::string> encode_value(const T& value) {
  try {
    detail::msgpack_buffer buffer;
    msgpack_packer out(buffer);
    codec<T>::encode(out, value);
    return std::string(buffer.data(), buffer.size());
  } catch (const std::exception& e) {
    return error(errc::invalid_argument,
                 "cannot encode a " + detail::type_name(typeid(T)) + ": " + e.what());
  }
}

// The value `bytes` holds: exactly one MessagePack object of T's shape,
// nested at most detail::default_max_depth deep. Anything else (truncated,
// trailing bytes, wrong shape, out of range) is an invalid_argument error
// whose message starts with `what`. Never throws; thread-safe; allocates.
template <encodable T>
[[nodiscard]] result<T> decode_value(std::string_view bytes, std::string_view what = "value") {
  result<msgpack::object_handle> object =
      detail::unpack_untrusted(bytes, detail::default_max_depth, what);
  if (!object.ok()) return object.error();
  return detail::decode_object<T>(object->get(), what);
}

}  // namespace batch_serving
