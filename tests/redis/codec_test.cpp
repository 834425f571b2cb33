#include "batch_serving/codec.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace bs = batch_serving;
using namespace std::string_literals;

namespace {

struct point {
  double x = 0;
  double y = 0;
  std::string label;
  std::vector<std::int32_t> tags;
  MSGPACK_DEFINE(x, y, label, tags)
  friend bool operator==(const point&, const point&) = default;
};

struct no_fields_declared {
  int x = 0;
};

// A type with a codec of its own: travels as its value in hundredths.
struct celsius {
  double degrees = 0;
};

}  // namespace

template <>
struct batch_serving::codec<celsius> {
  static void encode(msgpack_packer& out, const celsius& value) {
    out.pack(static_cast<std::int64_t>(std::llround(value.degrees * 100)));
  }
  static celsius decode(const msgpack::object& in) {
    const auto hundredths = in.as<std::int64_t>();
    if (hundredths < -27'315) throw std::out_of_range("below absolute zero");
    return {static_cast<double>(hundredths) / 100};
  }
};

namespace {

// A codec whose decode throws something that is not a std::exception.
struct throws_anything {};

}  // namespace

template <>
struct batch_serving::codec<throws_anything> {
  static void encode(msgpack_packer& out, const throws_anything& /*value*/) { out.pack_nil(); }
  static throws_anything decode(const msgpack::object& /*in*/) { throw 42; }
};

namespace {

static_assert(bs::encodable<int>);
static_assert(bs::encodable<bool>);
static_assert(bs::encodable<std::string>);
static_assert(bs::encodable<std::vector<std::map<std::string, std::optional<double>>>>);
static_assert(bs::encodable<point>);
static_assert(bs::encodable<std::vector<point>>);
static_assert(bs::encodable<celsius>);
static_assert(!bs::encodable<no_fields_declared>);
static_assert(!bs::encodable<std::vector<no_fields_declared>>);
static_assert(!bs::encodable<std::thread>);
static_assert(!bs::encodable<long double>);
static_assert(!bs::encodable<const char*>);

template <class T>
T round_trip(const T& value) {
  bs::result<std::string> bytes = bs::encode_value(value);
  EXPECT_TRUE(bytes.ok()) << bytes.error().to_string();
  bs::result<T> back = bs::decode_value<T>(bytes.value());
  EXPECT_TRUE(back.ok()) << back.error().to_string();
  return back.value();
}

template <class T>
void expect_round_trip(const T& value) {
  EXPECT_EQ(round_trip(value), value);
}

// The error of decoding `bytes` as T; fails the test when it decodes.
template <class T>
bs::error decode_error(const std::string& bytes, std::string_view what = "value") {
  bs::result<T> decoded = bs::decode_value<T>(bytes, what);
  EXPECT_FALSE(decoded.ok());
  if (decoded.ok()) return {bs::errc::no_serving, "decoded"};
  EXPECT_EQ(decoded.error().code(), bs::errc::invalid_argument);
  return decoded.error();
}

template <class T>
std::string encoded(const T& value) {
  return bs::encode_value(value).value();
}

// The example at the top of codec.hpp, as written there.
struct header_point {
  double x = 0;
  double y = 0;
  std::string label;
  MSGPACK_DEFINE(x, y, label)  // travels as the array [x, y, label]; no semicolon
};

TEST(CodecTest, TheHeaderExampleWorks) {
  using point = header_point;
  static_assert(batch_serving::encodable<point>);
  std::string bytes = batch_serving::encode_value(point{1, 2, "a"}).value();
  batch_serving::result<point> back = batch_serving::decode_value<point>(bytes);
  // decode_value<int>(bytes) is an invalid_argument error, never a throw.
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->label, "a");
  EXPECT_EQ(batch_serving::decode_value<int>(bytes).error().code(), bs::errc::invalid_argument);
}

TEST(CodecTest, RoundTripsScalars) {
  expect_round_trip(true);
  expect_round_trip(false);
  expect_round_trip('x');
  expect_round_trip(std::numeric_limits<std::int8_t>::min());
  expect_round_trip(std::numeric_limits<std::uint8_t>::max());
  expect_round_trip(std::numeric_limits<std::int16_t>::min());
  expect_round_trip(std::numeric_limits<std::int32_t>::min());
  expect_round_trip(std::numeric_limits<std::uint32_t>::max());
  expect_round_trip(std::numeric_limits<std::int64_t>::min());
  expect_round_trip(std::numeric_limits<std::int64_t>::max());
  expect_round_trip(std::numeric_limits<std::uint64_t>::max());
  expect_round_trip(0.1F);
  expect_round_trip(-2.5e300);
  expect_round_trip(std::numeric_limits<double>::infinity());
  expect_round_trip(std::numeric_limits<double>::denorm_min());
  EXPECT_TRUE(std::isnan(round_trip(std::numeric_limits<double>::quiet_NaN())));
}

TEST(CodecTest, FloatingPointValuesTravelBitForBit) {
  // msgpack-cxx would write these as integers: -0.0 as 0, 2^64 through an
  // out-of-range conversion.
  const double minus_zero = round_trip(-0.0);
  EXPECT_TRUE(std::signbit(minus_zero));
  expect_round_trip(18446744073709551616.0);
  expect_round_trip(-9223372036854775808.0);
  expect_round_trip(18446744073709551616.0F);
  EXPECT_EQ(encoded(1.0), "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"s);
  EXPECT_EQ(encoded(1.0F), "\xca\x3f\x80\x00\x00"s);
  EXPECT_EQ(encoded(std::vector<double>{2.0}), "\x91\xcb\x40\x00\x00\x00\x00\x00\x00\x00"s);
  // What other writers send as integers still reads as a double.
  msgpack::sbuffer plain;
  msgpack::pack(plain, 3);
  EXPECT_EQ(bs::decode_value<double>(std::string(plain.data(), plain.size())).value(), 3.0);
}

TEST(CodecTest, RoundTripsStringsWithAnyBytes) {
  expect_round_trip(std::string());
  expect_round_trip("caf\xc3\xa9 \0 nul inside"s);
  expect_round_trip(std::string(70'000, 'z'));
}

TEST(CodecTest, RoundTripsContainersOfBuiltInTypes) {
  expect_round_trip(std::vector<int>{});
  expect_round_trip(std::vector<int>{1, -2, 3});
  expect_round_trip(std::vector<std::string>{"a", "", "ccc"});
  expect_round_trip(std::vector<bool>{true, false, true});
  expect_round_trip(std::vector<unsigned char>{0, 255, 7});
  expect_round_trip(std::array<double, 3>{1.5, -0.0, 3});
  expect_round_trip(std::map<std::string, int>{{"one", 1}, {"two", 2}});
  expect_round_trip(std::unordered_map<int, std::string>{{1, "a"}, {-7, "b"}});
  expect_round_trip(std::set<std::int64_t>{5, -5});
  expect_round_trip(std::optional<int>{});
  expect_round_trip(std::optional<int>{4});
  expect_round_trip(std::pair<int, std::string>{3, "three"});
  expect_round_trip(std::tuple<int, bool, std::string>{1, true, "x"});
  expect_round_trip(
      std::vector<std::map<std::string, std::vector<double>>>{{{"a", {1, 2}}, {"b", {}}}, {}});
  expect_round_trip(std::optional<std::vector<std::string>>{{"x", "y"}});
}

TEST(CodecTest, RoundTripsAUserTypeDeclaredWithMsgpackDefine) {
  expect_round_trip(point{.x = 1.5, .y = -2, .label = "p", .tags = {1, 2, 3}});
  expect_round_trip(std::vector<point>{{.x = 1, .y = 0, .label = "", .tags = {}},
                                       {.x = 0, .y = 0, .label = "second", .tags = {7}}});
  // It travels as the array of its fields, in declaration order.
  EXPECT_EQ(encoded(point{.x = 1, .y = 2, .label = "a", .tags = {}}),
            encoded(std::make_tuple(1.0, 2.0, "a"s, std::vector<std::int32_t>{})));
}

TEST(CodecTest, UsesAUserSpecializedCodec) {
  EXPECT_EQ(encoded(celsius{21.5}), encoded(std::int64_t{2150}));
  EXPECT_DOUBLE_EQ(round_trip(celsius{-3.25}).degrees, -3.25);
  const bs::error e = decode_error<celsius>(encoded(std::int64_t{-30'000}), "reading");
  EXPECT_NE(e.message().find("reading: expected "), std::string::npos) << e.message();
  EXPECT_NE(e.message().find("celsius"), std::string::npos) << e.message();
  EXPECT_NE(e.message().find("below absolute zero"), std::string::npos) << e.message();
}

TEST(CodecTest, ACodecThrowingANonStandardExceptionIsInvalidArgument) {
  const bs::error e = decode_error<throws_anything>(encoded(1));
  EXPECT_NE(e.message().find("unknown exception"), std::string::npos) << e.message();
}

TEST(CodecTest, WrongShapeNamesTheExpectedTypeAndWhatCame) {
  bs::error e = decode_error<int>(encoded("text"s), "item 3");
  EXPECT_EQ(e.message().rfind("item 3: expected int, got a string", 0), 0U) << e.message();

  e = decode_error<std::string>(encoded(7));
  EXPECT_NE(e.message().find("expected std::string, got a non-negative integer"), std::string::npos)
      << e.message();

  e = decode_error<point>(encoded(std::map<std::string, int>{{"x", 1}}));
  EXPECT_NE(e.message().find("point, got a map"), std::string::npos) << e.message();

  e = decode_error<std::vector<double>>(encoded(std::vector<std::string>{"a"}));
  EXPECT_NE(e.message().find("std::vector<double"), std::string::npos) << e.message();

  e = decode_error<bool>(encoded(1));
  EXPECT_EQ(e.message(), "value: expected bool, got a non-negative integer");
}

TEST(CodecTest, OutOfRangeNumbersAreInvalidArgument) {
  EXPECT_TRUE(
      decode_error<std::uint8_t>(encoded(300))
          .message()
          .ends_with("expected unsigned char, got a non-negative integer out of its range"));
  decode_error<std::int8_t>(encoded(-129));
  decode_error<std::uint32_t>(encoded(-1));
  decode_error<std::int64_t>(encoded(std::numeric_limits<std::uint64_t>::max()));
  decode_error<int>(encoded(1.5));
}

TEST(CodecTest, MalformedBytesAreInvalidArgument) {
  bs::error e = decode_error<int>("");
  EXPECT_NE(e.message().find("no bytes"), std::string::npos) << e.message();

  // An array header claiming 2^32 - 1 elements and nothing after it: refused
  // without reserving room for them.
  e = decode_error<std::vector<int>>("\xdd\xff\xff\xff\xff"s);
  EXPECT_NE(e.message().find("truncated"), std::string::npos) << e.message();

  e = decode_error<std::string>(
      "\xdb\xff\xff\xff\xf0"
      "abc"s);
  EXPECT_NE(e.message().find("truncated"), std::string::npos) << e.message();

  e = decode_error<int>(encoded(1) + encoded(2));
  EXPECT_NE(e.message().find("1 bytes after the end"), std::string::npos) << e.message();

  e = decode_error<int>("\xc1"s);  // never used in MessagePack
  EXPECT_NE(e.message().find("not MessagePack"), std::string::npos) << e.message();
}

TEST(CodecTest, NestingDeeperThanTheLimitIsInvalidArgument) {
  const std::string deep = std::string(bs::detail::default_max_depth + 1, '\x91') + '\x01';
  const bs::error e = decode_error<int>(deep);
  EXPECT_NE(e.message().find("nested deeper than 32"), std::string::npos) << e.message();

  const std::string at_limit = std::string(bs::detail::default_max_depth, '\x91') + '\x01';
  // Within the limit it is read, and only the shape is wrong.
  EXPECT_NE(decode_error<int>(at_limit).message().find("got an array"), std::string::npos);
}

}  // namespace
