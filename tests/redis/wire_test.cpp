#include "batch_serving/detail/wire.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bs = batch_serving;
namespace wire = batch_serving::detail::wire;
using namespace std::string_literals;
using namespace std::chrono_literals;

namespace {

struct point {
  double x = 0;
  std::string label;
  MSGPACK_DEFINE(x, label)
  friend bool operator==(const point&, const point&) = default;
};

const wire::limits bounds{};

wire::serving_keys keys_of(std::string_view serving) {
  return wire::serving_keys::make(serving).value();
}

std::vector<wire::field_view> views(const std::vector<wire::field>& fields) {
  return {fields.begin(), fields.end()};
}

template <class T>
std::string items_of(const std::vector<T>& values, const wire::limits& with = bounds) {
  return wire::encode_items(std::span<const T>(values), with).value();
}

bool contains(const bs::error& e, std::string_view text) {
  return e.message().find(text) != std::string::npos;
}

// ---------------------------------------------------------------- keys

TEST(WireKeysTest, AllKeysOfAServingShareItsHashTag) {
  const wire::serving_keys keys = keys_of("embed.v2");
  EXPECT_EQ(keys.request_stream(), "bs:{embed.v2}:requests");
  EXPECT_EQ(keys.workers_set(), "bs:{embed.v2}:workers");
  EXPECT_EQ(keys.reply_stream("client-7").value(), "bs:{embed.v2}:replies:client-7");
  EXPECT_EQ(keys.heartbeat_key("host_a.1").value(), "bs:{embed.v2}:worker:host_a.1");
  EXPECT_EQ(keys.reply_stream_prefix(), "bs:{embed.v2}:replies:");
  EXPECT_EQ(wire::consumer_group, "workers");
}

TEST(WireKeysTest, RefusesServingNamesThatWouldBreakTheHashTag) {
  for (std::string_view bad : {"", "a{b", "a}b", "{x}", "line\nbreak", "tab\there", "del\x7f"}) {
    const std::optional<bs::error> e = wire::check_serving_name(bad);
    ASSERT_TRUE(e.has_value()) << bad;
    EXPECT_EQ(e->code(), bs::errc::invalid_argument);
    EXPECT_TRUE(contains(*e, "serving name")) << e->message();
    EXPECT_FALSE(wire::serving_keys::make(bad).ok());
  }
  EXPECT_TRUE(contains(*wire::check_serving_name("a{b"), "hash tag"));
  EXPECT_TRUE(contains(*wire::check_serving_name(""), "empty"));
  EXPECT_TRUE(contains(*wire::check_serving_name(std::string(201, 'n')), "more than 200"));
  // The message shows control bytes escaped, never raw.
  EXPECT_TRUE(contains(*wire::check_serving_name("line\nbreak"), "line\\x0abreak"));
  for (std::string_view good :
       {"n", "my.serving", "with space", "a:b:c", "caf\xc3\xa9", "x-1_2/3"}) {
    EXPECT_FALSE(wire::check_serving_name(good).has_value()) << good;
  }
  EXPECT_FALSE(wire::check_serving_name(std::string(200, 'n')).has_value());
}

TEST(WireKeysTest, RefusesClientAndConsumerIdsOutsideTheSafeSet) {
  const wire::serving_keys keys = keys_of("s");
  for (std::string_view bad : {"", "a/b", "a b", "a:b", "a{", "\xc3\xa9", "x\n"}) {
    EXPECT_TRUE(wire::check_client_id(bad).has_value()) << bad;
    EXPECT_TRUE(wire::check_consumer_id(bad).has_value()) << bad;
    EXPECT_FALSE(keys.reply_stream(bad).ok()) << bad;
    EXPECT_FALSE(keys.heartbeat_key(bad).ok()) << bad;
  }
  EXPECT_TRUE(contains(*wire::check_client_id(std::string(65, 'c')), "more than 64"));
  EXPECT_TRUE(contains(*wire::check_consumer_id("a b"), "consumer id"));
  EXPECT_TRUE(contains(*wire::check_client_id("a b"), "byte 1 is not one of"));
  EXPECT_FALSE(wire::check_client_id(std::string(64, 'c')).has_value());
  EXPECT_FALSE(wire::check_consumer_id("Worker-1.a_b").has_value());
}

TEST(WireKeysTest, RecognizesOnlyItsOwnReplyStreams) {
  const wire::serving_keys keys = keys_of("s");
  EXPECT_EQ(keys.reply_stream_client("bs:{s}:replies:c1"), "c1");
  for (std::string_view foreign :
       {"bs:{t}:replies:c1", "bs:{s}:replies:", "bs:{s}:requests", "bs:{s}:worker:w1",
        "bs:{s}:replies:c1:x", "bs:{s}:replies:a/b", "other", "", "BS:{s}:replies:c1"}) {
    EXPECT_FALSE(keys.reply_stream_client(foreign).has_value()) << foreign;
  }
}

TEST(WireKeysTest, CallIdsAreClientSlashSequence) {
  EXPECT_EQ(wire::make_call_id("c-1", 42), "c-1/42");
  const std::optional<wire::call_id_parts> parts = wire::parse_call_id("c-1/42");
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->client_id, "c-1");
  EXPECT_EQ(parts->sequence, 42U);
  EXPECT_EQ(wire::parse_call_id("c/18446744073709551615")->sequence,
            std::numeric_limits<std::uint64_t>::max());
  for (std::string_view bad : {"c", "/1", "c/", "c/01", "c/-1", "c/+1", "c/1x", "a b/1",
                               "c/18446744073709551616", "c/1/2", ""}) {
    EXPECT_FALSE(wire::parse_call_id(bad).has_value()) << bad;
  }
}

TEST(WireLimitsTest, ValidatesEachField) {
  EXPECT_FALSE(wire::check_limits({}).has_value());
  std::optional<bs::error> e = wire::check_limits({.max_entry_bytes = 100});
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(contains(*e, "max_entry_bytes = 100")) << e->message();
  e = wire::check_limits({.max_items = 0});
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(contains(*e, "max_items = 0")) << e->message();
  e = wire::check_limits({.max_depth = 5000});
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(contains(*e, "max_depth = 5000")) << e->message();
}

// ---------------------------------------------------------------- budgets

TEST(WireBudgetTest, CarriesTheRemainingTimeRoundedUp) {
  const auto now = std::chrono::steady_clock::now();
  EXPECT_EQ(wire::budget_until(now + 1500us, now), 1500U);
  EXPECT_EQ(wire::budget_until(now + 1ns, now), 1U);
  EXPECT_EQ(wire::budget_until(now + 1001ns, now), 2U);
  EXPECT_EQ(wire::budget_until(now, now), 0U);
  EXPECT_EQ(wire::budget_until(now - 5s, now), 0U);
  EXPECT_EQ(wire::deadline_after(now, 1500), now + 1500us);
  EXPECT_EQ(wire::deadline_after(now, 0), now);
}

TEST(WireBudgetTest, SaturatesInsteadOfOverflowing) {
  using tp = std::chrono::steady_clock::time_point;
  EXPECT_EQ(wire::budget_until(tp::max(), tp::min()), wire::max_budget_us);
  EXPECT_EQ(wire::budget_until(tp::max(), tp{}), wire::max_budget_us);
  EXPECT_EQ(wire::budget_until(tp::min(), tp::max()), 0U);
  const auto now = std::chrono::steady_clock::now();
  EXPECT_EQ(wire::deadline_after(now, wire::max_budget_us), tp::max());
  EXPECT_EQ(wire::deadline_after(now, std::numeric_limits<std::uint64_t>::max()), tp::max());
  EXPECT_EQ(wire::deadline_after(tp::max(), 1), tp::max());
  EXPECT_EQ(wire::deadline_after(tp::min(), wire::max_budget_us),
            tp::min() + std::chrono::microseconds(wire::max_budget_us));
}

TEST(WireBudgetTest, ChargesTheTimeAnEntryWaitedUsingRedisClockOnly) {
  EXPECT_EQ(wire::entry_id_ms("1700000000123-4"), 1700000000123U);
  for (std::string_view bad : {"", "-", "12", "12-", "-3", "a-1", "1-b", "01-1"}) {
    EXPECT_FALSE(wire::entry_id_ms(bad).has_value()) << bad;
  }
  EXPECT_EQ(wire::budget_after_wait(5000, 100, 102), 3000U);
  EXPECT_EQ(wire::budget_after_wait(5000, 100, 100), 5000U);
  EXPECT_EQ(wire::budget_after_wait(5000, 100, 90), 5000U);  // Redis's clock went back
  EXPECT_EQ(wire::budget_after_wait(5000, 100, 105), 0U);
  EXPECT_EQ(wire::budget_after_wait(5999, 100, 105), 999U);
  EXPECT_EQ(wire::budget_after_wait(5000, 0, std::numeric_limits<std::uint64_t>::max()), 0U);
  EXPECT_EQ(wire::budget_after_wait(std::numeric_limits<std::uint64_t>::max(), 0,
                                    std::numeric_limits<std::uint64_t>::max()),
            0U);
  EXPECT_EQ(wire::budget_after_wait(std::numeric_limits<std::uint64_t>::max(), 10, 12),
            std::numeric_limits<std::uint64_t>::max() - 2000);
}

// ---------------------------------------------------------------- requests

wire::request_entry request_with(std::string items, wire::call_form form = wire::call_form::many,
                                 std::optional<std::uint64_t> budget = std::nullopt) {
  return {.call_id = "c1/7",
          .reply_stream = "bs:{s}:replies:c1",
          .form = form,
          .budget_us = budget,
          .items = std::move(items),
          .item_count = 0,
          .pack_bytes = std::nullopt};
}

std::vector<wire::field> encoded_request(const wire::request_entry& request) {
  return wire::encode_request(keys_of("s"), request, bounds).value();
}

TEST(WireRequestTest, RoundTripsEveryForm) {
  const std::vector<std::int64_t> one{5};
  const std::vector<std::int64_t> three{1, -2, 3};
  for (wire::call_form form : {wire::call_form::one, wire::call_form::many,
                               wire::call_form::stream_one, wire::call_form::stream_many}) {
    const bool single = form == wire::call_form::one || form == wire::call_form::stream_one;
    const std::vector<std::int64_t>& items = single ? one : three;
    for (std::optional<std::uint64_t> budget :
         {std::optional<std::uint64_t>{}, std::optional<std::uint64_t>{0},
          std::optional<std::uint64_t>{250'000}}) {
      const std::vector<wire::field> fields =
          encoded_request(request_with(items_of(items), form, budget));
      const wire::parsed_request parsed = wire::parse_request(keys_of("s"), views(fields), bounds);
      ASSERT_TRUE(parsed.request.ok()) << parsed.request.error().to_string();
      const wire::request_entry& r = *parsed.request;
      EXPECT_EQ(r.call_id, "c1/7");
      EXPECT_EQ(r.reply_stream, "bs:{s}:replies:c1");
      EXPECT_EQ(r.form, form);
      EXPECT_EQ(r.budget_us, budget);
      EXPECT_EQ(r.item_count, items.size());
      EXPECT_EQ(wire::decode_items<std::int64_t>(r.items, bounds, items.size()).value(), items);
      ASSERT_TRUE(parsed.reply_to.has_value());
      EXPECT_EQ(parsed.reply_to->reply_stream, "bs:{s}:replies:c1");
      EXPECT_EQ(parsed.reply_to->call_id, "c1/7");
    }
  }
}

TEST(WireRequestTest, WritesTheDocumentedFields) {
  const std::vector<wire::field> fields =
      encoded_request(request_with(items_of(std::vector<int>{1}), wire::call_form::one, 99));
  const std::vector<wire::field> expected{
      {"v", "1"},      {"id", "c1/7"},      {"reply", "bs:{s}:replies:c1"},
      {"form", "one"}, {"budget_us", "99"}, {"items", "\x91\x01"}};
  EXPECT_EQ(fields, expected);
}

TEST(WireRequestTest, ClampsAHugeBudgetToTheMaximum) {
  std::vector<wire::field> fields =
      encoded_request(request_with(items_of(std::vector<int>{1}), wire::call_form::many,
                                   std::numeric_limits<std::uint64_t>::max()));
  EXPECT_EQ(fields[4], wire::field("budget_us", std::to_string(wire::max_budget_us)));
  fields[4].second = "18446744073709551615";
  const wire::parsed_request parsed = wire::parse_request(keys_of("s"), views(fields), bounds);
  ASSERT_TRUE(parsed.request.ok()) << parsed.request.error().to_string();
  EXPECT_EQ(parsed.request->budget_us, wire::max_budget_us);
}

TEST(WireRequestTest, IgnoresUnknownFields) {
  std::vector<wire::field> fields = encoded_request(request_with(items_of(std::vector<int>{1})));
  fields.emplace_back("trace", "abc");
  EXPECT_TRUE(wire::parse_request(keys_of("s"), views(fields), bounds).request.ok());
}

// A valid request's fields with `name` replaced by `value` (removed when nullopt).
std::vector<wire::field> request_fields_with(std::string_view name,
                                             std::optional<std::string> value) {
  std::vector<wire::field> fields =
      encoded_request(request_with(items_of(std::vector<int>{1, 2}), wire::call_form::many, 1000));
  std::erase_if(fields, [&](const wire::field& f) { return f.first == name; });
  if (value) fields.emplace_back(std::string(name), std::move(*value));
  return fields;
}

struct malformed_request {
  std::string name;                  // the field changed
  std::optional<std::string> value;  // its new value, or removed
  std::string_view message;          // what the error says
  bool answerable;                   // whether it still names who to answer
};

TEST(WireRequestTest, EachMalformedFieldIsItsOwnError) {
  const std::vector<malformed_request> cases{
      {"v", std::nullopt, "field \"v\": missing", true},
      {"v", "2", "field \"v\": unknown format version \"2\"", true},
      {"v", "", "unknown format version", true},
      {"id", std::nullopt, "field \"id\": missing", false},
      {"id", "c1", "field \"id\": \"c1\" is not a call id", false},
      {"id", "c1/x", "is not a call id", false},
      {"reply", std::nullopt, "field \"reply\": missing", false},
      {"reply", "bs:{t}:replies:c1", "is not a reply stream of serving \"s\"", false},
      {"reply", "bs:{s}:requests", "is not a reply stream", false},
      {"reply", "users:passwords", "is not a reply stream", false},
      {"reply", "bs:{s}:replies:c2",
       "\"bs:{s}:replies:c2\" is not the reply stream of client \"c1\"", false},
      {"form", std::nullopt, "field \"form\": missing", true},
      {"form", "all", "unknown call form \"all\"", true},
      {"form", "one", "2 items, but form \"one\" carries exactly one", true},
      {"budget_us", "12x", "field \"budget_us\": \"12x\" is not a decimal", true},
      {"budget_us", "-1", "budget_us", true},
      {"budget_us", "", "budget_us", true},
      {"budget_us", "007", "budget_us", true},
      {"budget_us", "18446744073709551616", "budget_us", true},
      {"items", std::nullopt, "field \"items\": missing", true},
      {"items", "", "field \"items\": no bytes", true},
      {"items", "\x92\x01"s, "field \"items\": truncated", true},
      {"items", "\x01"s, "field \"items\": expected a MessagePack array, got a non-negative", true},
      {"items", "\x91\x01\x01"s, "1 bytes after the end", true},
      {"items", "\x91\xc1"s, "not MessagePack", true},
  };
  for (const malformed_request& c : cases) {
    const std::vector<wire::field> fields = request_fields_with(c.name, c.value);
    const wire::parsed_request parsed = wire::parse_request(keys_of("s"), views(fields), bounds);
    ASSERT_FALSE(parsed.request.ok()) << c.name << " = " << c.value.value_or("(none)");
    EXPECT_EQ(parsed.request.error().code(), bs::errc::invalid_argument);
    EXPECT_TRUE(contains(parsed.request.error(), c.message))
        << "expected \"" << c.message << "\" in: " << parsed.request.error().message();
    EXPECT_EQ(parsed.reply_to.has_value(), c.answerable) << parsed.request.error().message();
    if (parsed.reply_to) {
      EXPECT_EQ(parsed.reply_to->call_id, "c1/7");
    }
  }
}

TEST(WireRequestTest, AFieldGivenTwiceIsAnErrorAndNeverAnAddress) {
  std::vector<wire::field> fields = request_fields_with("x", std::nullopt);
  fields.emplace_back("items", "\x90");
  wire::parsed_request parsed = wire::parse_request(keys_of("s"), views(fields), bounds);
  ASSERT_FALSE(parsed.request.ok());
  EXPECT_TRUE(contains(parsed.request.error(), "field \"items\": given more than once"));
  EXPECT_TRUE(parsed.reply_to.has_value());

  fields = request_fields_with("x", std::nullopt);
  fields.emplace_back("reply", "bs:{s}:replies:other");
  parsed = wire::parse_request(keys_of("s"), views(fields), bounds);
  ASSERT_FALSE(parsed.request.ok());
  EXPECT_TRUE(contains(parsed.request.error(), "field \"reply\": given more than once"));
  EXPECT_FALSE(parsed.reply_to.has_value());
}

TEST(WireRequestTest, RefusesOversizedEntriesButStillNamesTheCaller) {
  const wire::limits small{.max_entry_bytes = wire::min_entry_bytes};
  std::vector<wire::field> fields = request_fields_with("x", std::nullopt);
  fields.emplace_back("padding", std::string(wire::min_entry_bytes, 'p'));
  const wire::parsed_request parsed = wire::parse_request(keys_of("s"), views(fields), small);
  ASSERT_FALSE(parsed.request.ok());
  EXPECT_TRUE(contains(parsed.request.error(), "more than max_entry_bytes 16384"))
      << parsed.request.error().message();
  EXPECT_TRUE(parsed.reply_to.has_value());
}

TEST(WireRequestTest, RefusesTooManyFieldsAndTooManyItems) {
  std::vector<wire::field> fields = request_fields_with("x", std::nullopt);
  for (int i = 0; i < 40; ++i) fields.emplace_back("unknown_" + std::to_string(i) + "_field", "");
  wire::parsed_request parsed = wire::parse_request(keys_of("s"), views(fields), bounds);
  ASSERT_FALSE(parsed.request.ok());
  EXPECT_TRUE(contains(parsed.request.error(), "46 fields, more than 32"))
      << parsed.request.error().message();

  const wire::limits few{.max_items = 2};
  fields = request_fields_with("items", items_of(std::vector<int>{1, 2, 3}));
  parsed = wire::parse_request(keys_of("s"), views(fields), few);
  ASSERT_FALSE(parsed.request.ok());
  EXPECT_TRUE(contains(parsed.request.error(), "3 elements, more than max_items 2"))
      << parsed.request.error().message();
}

TEST(WireRequestTest, RefusesItemsNestedDeeperThanTheLimit) {
  const wire::limits shallow{.max_depth = 2};
  // [[[[1]]]]: the items array, then three levels inside its one item.
  const std::vector<wire::field> fields = request_fields_with("items", "\x91\x91\x91\x91\x01"s);
  const wire::parsed_request parsed = wire::parse_request(keys_of("s"), views(fields), shallow);
  ASSERT_FALSE(parsed.request.ok());
  EXPECT_TRUE(contains(parsed.request.error(), "nested deeper than 3 levels"))
      << parsed.request.error().message();
  const std::vector<wire::field> ok = request_fields_with("items", "\x91\x91\x91\x01"s);
  EXPECT_TRUE(wire::parse_request(keys_of("s"), views(ok), shallow).request.ok());
}

TEST(WireRequestTest, EncodeRefusesWhatParseWouldRefuseBeforeAnythingIsSent) {
  const wire::serving_keys keys = keys_of("s");
  const std::string two = items_of(std::vector<int>{1, 2});
  wire::request_entry bad = request_with(two);
  bad.call_id = "no-sequence";
  EXPECT_TRUE(contains(wire::encode_request(keys, bad, bounds).error(), "is not a call id"));

  bad = request_with(two);
  bad.reply_stream = "bs:{other}:replies:c1";
  EXPECT_TRUE(contains(wire::encode_request(keys, bad, bounds).error(), "not a reply stream"));
  bad.reply_stream = "bs:{s}:replies:c2";
  EXPECT_TRUE(contains(wire::encode_request(keys, bad, bounds).error(), "not the reply stream"));

  EXPECT_TRUE(contains(
      wire::encode_request(keys, request_with(two, wire::call_form::stream_one), bounds).error(),
      "carries exactly one"));
  EXPECT_TRUE(contains(wire::encode_request(keys, request_with("\x01"), bounds).error(),
                       "expected a MessagePack array"));

  // Items that fit on their own, but not with the other fields.
  const wire::limits small{.max_entry_bytes = wire::min_entry_bytes};
  const std::string big = items_of(std::vector<std::string>{std::string(16'370, 'b')}, small);
  const bs::result<std::vector<wire::field>> too_big =
      wire::encode_request(keys, request_with(big), small);
  ASSERT_FALSE(too_big.ok());
  EXPECT_TRUE(contains(too_big.error(), "more than max_entry_bytes 16384; nothing was sent"))
      << too_big.error().message();
}

// ---------------------------------------------------------------- typed items

TEST(WireItemsTest, EncodeRefusesTooManyOrTooLargeItems) {
  const wire::limits few{.max_items = 2};
  const std::vector<int> three{1, 2, 3};
  bs::result<std::string> bytes = wire::encode_items(std::span<const int>(three), few);
  ASSERT_FALSE(bytes.ok());
  EXPECT_TRUE(contains(bytes.error(), "items: 3 elements, more than max_items 2"));

  const wire::limits small{.max_entry_bytes = wire::min_entry_bytes};
  const std::vector<std::string> large(3, std::string(8000, 'x'));
  bytes = wire::encode_items(std::span<const std::string>(large), small);
  ASSERT_FALSE(bytes.ok());
  EXPECT_TRUE(contains(bytes.error(), "more than max_entry_bytes 16384 bytes encoded"))
      << bytes.error().message();
}

TEST(WireItemsTest, DecodeNamesTheItemOfTheWrongShape) {
  const std::string mixed = items_of(std::vector<std::string>{"a", "b", "c", "d"});
  EXPECT_EQ(wire::decode_items<std::string>(mixed, bounds).value().size(), 4U);
  // A point is the array [x, label]; item 2 is a map.
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> out(buffer);
  out.pack_array(3);
  out.pack(point{.x = 1, .label = "a"});
  out.pack(point{.x = 2, .label = "b"});
  out.pack(std::map<std::string, int>{{"x", 3}});
  const bs::result<std::vector<point>> points =
      wire::decode_items<point>(std::string(buffer.data(), buffer.size()), bounds);
  ASSERT_FALSE(points.ok());
  EXPECT_EQ(points.error().code(), bs::errc::invalid_argument);
  EXPECT_TRUE(contains(points.error(), "item 2: expected")) << points.error().message();
  EXPECT_TRUE(contains(points.error(), "point, got a map")) << points.error().message();

  const bs::result<std::vector<int>> ints = wire::decode_items<int>(mixed, bounds);
  ASSERT_FALSE(ints.ok());
  EXPECT_TRUE(contains(ints.error(), "item 0: expected int, got a string"))
      << ints.error().message();
}

TEST(WireItemsTest, DecodeChecksTheExpectedCount) {
  const std::string two = items_of(std::vector<int>{1, 2});
  EXPECT_TRUE(wire::decode_items<int>(two, bounds, 2).ok());
  const bs::result<std::vector<int>> wrong = wire::decode_items<int>(two, bounds, 3, "results");
  ASSERT_FALSE(wrong.ok());
  EXPECT_TRUE(contains(wrong.error(), "results: 2 elements, expected 3"))
      << wrong.error().message();
}

TEST(WireItemsTest, RoundTripsUserTypes) {
  const std::vector<point> points{{.x = 1, .label = "a"}, {.x = -2.5, .label = ""}};
  EXPECT_EQ(wire::decode_items<point>(items_of(points), bounds, 2).value(), points);
}

// ---------------------------------------------------------------- answers

wire::answer_entry parsed_answer(const wire::answer_entry& answer) {
  const std::vector<wire::field> fields = wire::encode_answer(answer, bounds).value();
  bs::result<wire::answer_entry> parsed = wire::parse_answer(views(fields), bounds);
  EXPECT_TRUE(parsed.ok()) << parsed.error().to_string();
  return parsed.value();
}

TEST(WireAnswerTest, RoundTripsResultsAnswers) {
  const std::vector<std::string> results{"x", "yy"};
  const wire::answer_entry answer =
      wire::results_answer("c1/7", std::span<const std::string>(results), bounds).value();
  const std::vector<wire::field> expected{{"v", "1"},
                                          {"id", "c1/7"},
                                          {"kind", "results"},
                                          {"results", "\x92\xa1x\xa2yy"}};
  EXPECT_EQ(wire::encode_answer(answer, bounds).value(), expected);
  const wire::answer_entry back = parsed_answer(answer);
  EXPECT_EQ(back.call_id, "c1/7");
  EXPECT_EQ(back.kind, wire::answer_kind::results);
  EXPECT_FALSE(back.seq.has_value());
  EXPECT_EQ(back.result_count, 2U);
  EXPECT_EQ(wire::decode_results<std::string>(back, bounds, 2).value(), results);
}

TEST(WireAnswerTest, RoundTripsErrorAnswersOfEveryCode) {
  for (bs::errc code : {bs::errc::no_serving, bs::errc::execution_failed,
                        bs::errc::invalid_argument, bs::errc::shutting_down, bs::errc::overloaded,
                        bs::errc::timeout, bs::errc::cancelled, bs::errc::unavailable}) {
    const bs::error failure(code, "because \xc3\xa9\n");
    const wire::answer_entry back = parsed_answer(wire::error_answer("c1/1", failure));
    EXPECT_EQ(back.kind, wire::answer_kind::error);
    EXPECT_EQ(back.error_code, code);
    EXPECT_EQ(back.error_message, failure.message());
    const bs::result<std::vector<int>> decoded = wire::decode_results<int>(back, bounds);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.error(), failure);
  }
}

TEST(WireAnswerTest, RoundTripsStreamEventsInOrder) {
  const std::vector<int> batch{4, 9};
  wire::answer_entry back =
      parsed_answer(wire::results_answer("c1/2", std::span<const int>(batch), bounds, 0).value());
  EXPECT_EQ(back.kind, wire::answer_kind::batch);
  EXPECT_EQ(back.seq, 0U);
  EXPECT_EQ(wire::decode_results<int>(back, bounds).value(), batch);

  const std::string payload = bs::encode_value(std::vector<double>{0.5, 1}).value();
  back = parsed_answer(wire::hook_event("c1/2", 1, "progress", payload));
  EXPECT_EQ(back.kind, wire::answer_kind::hook);
  EXPECT_EQ(back.seq, 1U);
  EXPECT_EQ(back.hook_name, "progress");
  EXPECT_EQ(back.hook_payload, payload);
  EXPECT_TRUE(contains(wire::decode_results<int>(back, bounds).error(), "hook event"));

  back = parsed_answer(wire::end_event("c1/2", 2));
  EXPECT_EQ(back.kind, wire::answer_kind::end);
  EXPECT_EQ(back.seq, 2U);

  back = parsed_answer(wire::error_answer("c1/2", {bs::errc::timeout, "late"}, 3));
  EXPECT_EQ(back.kind, wire::answer_kind::error);
  EXPECT_EQ(back.seq, 3U);
  EXPECT_EQ(back.attempt, "");  // optional: none written, none read
}

TEST(WireAnswerTest, RoundTripsTheAttemptAndThePayloadType) {
  wire::answer_entry hook = wire::hook_event("c1/2", 4, "progress", "\x91\x01");
  hook.attempt = "0123456789abcdef.12";
  hook.payload_type = "std::vector<long, std::allocator<long> >";
  const wire::answer_entry back = parsed_answer(hook);
  EXPECT_EQ(back.attempt, hook.attempt);
  EXPECT_EQ(back.payload_type, hook.payload_type);
  wire::answer_entry end = wire::end_event("c1/2", 5);
  end.attempt = "w-1.0";
  EXPECT_EQ(parsed_answer(end).attempt, "w-1.0");
}

TEST(WireAnswerTest, CutsLongErrorMessagesOutsideUtf8Sequences) {
  std::string message(wire::max_error_message_bytes - 4, 'm');
  message += "\xc3\xa9\xc3\xa9\xc3\xa9";  // é crosses the limit
  const wire::answer_entry answer =
      wire::error_answer("c1/1", {bs::errc::execution_failed, message});
  EXPECT_LE(answer.error_message.size(), wire::max_error_message_bytes);
  EXPECT_EQ(answer.error_message.substr(answer.error_message.size() - 4), "m...");
  EXPECT_TRUE(wire::encode_answer(answer, {.max_entry_bytes = wire::min_entry_bytes}).ok());
}

std::vector<wire::field> answer_fields_with(const wire::answer_entry& answer, std::string_view name,
                                            std::optional<std::string> value) {
  std::vector<wire::field> fields = wire::encode_answer(answer, bounds).value();
  std::erase_if(fields, [&](const wire::field& f) { return f.first == name; });
  if (value) fields.emplace_back(std::string(name), std::move(*value));
  return fields;
}

struct malformed_answer {
  wire::answer_entry base;
  std::string name;
  std::optional<std::string> value;
  std::string_view message;
};

TEST(WireAnswerTest, EachMalformedFieldIsItsOwnError) {
  const std::vector<int> two{1, 2};
  const wire::answer_entry results =
      wire::results_answer("c1/1", std::span<const int>(two), bounds).value();
  const wire::answer_entry batch =
      wire::results_answer("c1/1", std::span<const int>(two), bounds, 4).value();
  const wire::answer_entry failed = wire::error_answer("c1/1", {bs::errc::timeout, "late"});
  const wire::answer_entry hook = wire::hook_event("c1/1", 0, "progress", "\x91\x01");
  const wire::answer_entry end = wire::end_event("c1/1", 5);
  const std::vector<malformed_answer> cases{
      {results, "v", std::nullopt, "answer entry field \"v\": missing"},
      {results, "v", "0", "unknown format version \"0\""},
      {results, "id", std::nullopt, "field \"id\": missing"},
      {results, "id", "c1:1", "field \"id\": \"c1:1\" is not a call id"},
      {results, "kind", std::nullopt, "field \"kind\": missing"},
      {results, "kind", "result", "unknown answer kind \"result\""},
      {results, "seq", "0", "field \"seq\": given on a results answer"},
      {results, "results", std::nullopt, "field \"results\": missing"},
      {results, "results", "\x81\x01\x01"s, "field \"results\": expected a MessagePack array"},
      {results, "results", "\x93\x01"s, "field \"results\": truncated"},
      {batch, "seq", std::nullopt, "field \"seq\": missing (batch events carry one)"},
      {batch, "seq", "x", "field \"seq\": \"x\" is not a decimal"},
      {batch, "seq", "18446744073709551616", "field \"seq\""},
      {hook, "seq", std::nullopt, "missing (hook events carry one)"},
      {hook, "hook", std::nullopt, "field \"hook\": missing"},
      {hook, "hook", "", "field \"hook\": empty hook name"},
      {hook, "hook", "a\nb", "contains a control character"},
      {hook, "payload", std::nullopt, "field \"payload\": missing"},
      {hook, "payload", "\x92\x01"s, "field \"payload\": truncated"},
      {end, "seq", std::nullopt, "missing (end events carry one)"},
      {end, "attempt", "", "field \"attempt\": empty"},
      {end, "attempt", "a/b", "field \"attempt\""},
      {end, "attempt", std::string(wire::max_id_bytes + 1, 'a'), "field \"attempt\""},
      {hook, "payload_type", std::string(wire::max_type_name_bytes + 1, 't'),
       "field \"payload_type\": 513 bytes, more than 512"},
      {hook, "payload_type", "int\x01", "field \"payload_type\": contains a control character"},
      {failed, "code", std::nullopt, "field \"code\": missing"},
      {failed, "code", "bogus", "field \"code\": unknown error code \"bogus\""},
      {failed, "code", "TIMEOUT", "unknown error code"},
      {failed, "message", std::nullopt, "field \"message\": missing"},
      {failed, "message", std::string(wire::max_error_message_bytes + 1, 'm'),
       "field \"message\": 8193 bytes, more than 8192"},
  };
  for (const malformed_answer& c : cases) {
    const std::vector<wire::field> fields = answer_fields_with(c.base, c.name, c.value);
    const bs::result<wire::answer_entry> parsed = wire::parse_answer(views(fields), bounds);
    ASSERT_FALSE(parsed.ok()) << c.name << " = " << c.value.value_or("(none)");
    EXPECT_EQ(parsed.error().code(), bs::errc::invalid_argument);
    EXPECT_TRUE(contains(parsed.error(), c.message))
        << "expected \"" << c.message << "\" in: " << parsed.error().message();
  }
}

TEST(WireAnswerTest, ResultCountAndShapeAreCheckedOnDecode) {
  const std::vector<int> two{1, 2};
  const wire::answer_entry back =
      parsed_answer(wire::results_answer("c1/1", std::span<const int>(two), bounds).value());
  const bs::result<std::vector<int>> wrong_count = wire::decode_results<int>(back, bounds, 3);
  ASSERT_FALSE(wrong_count.ok());
  EXPECT_TRUE(contains(wrong_count.error(), "results: 2 elements, expected 3"));
  const bs::result<std::vector<std::string>> wrong_type =
      wire::decode_results<std::string>(back, bounds, 2);
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_TRUE(contains(wrong_type.error(), "result 0: expected std::string"))
      << wrong_type.error().message();
}

TEST(WireAnswerTest, EncodeRefusesMalformedAndOversizedAnswers) {
  const std::vector<int> two{1, 2};
  wire::answer_entry answer =
      wire::results_answer("c1/1", std::span<const int>(two), bounds).value();
  answer.seq = 1;
  answer.kind = wire::answer_kind::results;
  EXPECT_TRUE(contains(wire::encode_answer(answer, bounds).error(), "given on a results answer"));

  answer.seq.reset();
  answer.kind = wire::answer_kind::batch;
  EXPECT_TRUE(contains(wire::encode_answer(answer, bounds).error(), "batch events carry one"));

  EXPECT_TRUE(contains(wire::encode_answer(wire::end_event("bad id", 0), bounds).error(),
                       "is not a call id"));

  const wire::limits small{.max_entry_bytes = wire::min_entry_bytes};
  answer = wire::hook_event("c1/1", 0, "progress",
                            bs::encode_value(std::string(wire::min_entry_bytes, 'p')).value());
  const bs::result<std::vector<wire::field>> too_big = wire::encode_answer(answer, small);
  ASSERT_FALSE(too_big.ok());
  EXPECT_TRUE(contains(too_big.error(), "more than max_entry_bytes 16384; nothing was sent"))
      << too_big.error().message();

  const std::vector<std::string> large(3, std::string(8000, 'x'));
  const bs::result<wire::answer_entry> results =
      wire::results_answer("c1/1", std::span<const std::string>(large), small);
  ASSERT_FALSE(results.ok());
  EXPECT_TRUE(contains(results.error(), "results: more than max_entry_bytes"))
      << results.error().message();
}

TEST(WireAnswerTest, RefusesOversizedAnswerEntries) {
  const wire::limits small{.max_entry_bytes = wire::min_entry_bytes};
  std::vector<wire::field> fields = wire::encode_answer(wire::end_event("c1/1", 0), small).value();
  fields.emplace_back("padding", std::string(wire::min_entry_bytes, 'p'));
  const bs::result<wire::answer_entry> parsed = wire::parse_answer(views(fields), small);
  ASSERT_FALSE(parsed.ok());
  EXPECT_TRUE(contains(parsed.error(), "answer entry: ")) << parsed.error().message();
  EXPECT_TRUE(contains(parsed.error(), "more than max_entry_bytes 16384"));
}

TEST(WireAnswerTest, KnowsEveryErrcName) {
  for (bs::errc code : {bs::errc::no_serving, bs::errc::execution_failed,
                        bs::errc::invalid_argument, bs::errc::shutting_down, bs::errc::overloaded,
                        bs::errc::timeout, bs::errc::cancelled, bs::errc::unavailable}) {
    EXPECT_EQ(wire::errc_from_string(bs::to_string(code)), code);
  }
  EXPECT_FALSE(wire::errc_from_string("unknown").has_value());
  EXPECT_FALSE(wire::errc_from_string("").has_value());
}

// ---------------------------------------------------------------- packs

TEST(WireRequestTest, CarriesTheLargestAnswerPackTheClientReads) {
  wire::request_entry request = request_with(items_of(std::vector<int>{1}));
  request.pack_bytes = 1U << 20U;
  std::vector<wire::field> fields = encoded_request(request);
  EXPECT_EQ(fields[4], wire::field("pack", "1048576"));
  wire::parsed_request parsed = wire::parse_request(keys_of("s"), views(fields), bounds);
  ASSERT_TRUE(parsed.request.ok()) << parsed.request.error().to_string();
  EXPECT_EQ(parsed.request->pack_bytes, std::optional<std::size_t>(1U << 20U));
  EXPECT_FALSE(wire::parse_request(keys_of("s"), views(encoded_request(request_with("\x91\x01"))),
                                   bounds)
                   .request->pack_bytes.has_value());  // an older client: no packs

  for (const char* bad : {"100", "x", "-1", ""}) {
    fields[4].second = bad;
    parsed = wire::parse_request(keys_of("s"), views(fields), bounds);
    ASSERT_FALSE(parsed.request.ok()) << bad;
    EXPECT_TRUE(contains(parsed.request.error(), "field \"pack\""))
        << parsed.request.error().message();
    EXPECT_TRUE(parsed.reply_to.has_value());  // still answerable
  }
  request.pack_bytes = wire::min_entry_bytes - 1;
  const auto refused = wire::encode_request(keys_of("s"), request, bounds);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(contains(refused.error(), "less than min_entry_bytes"));
}

std::vector<wire::field> encoded(const wire::answer_entry& answer) {
  return wire::encode_answer(answer, bounds).value();
}

std::vector<wire::answer_entry> unpacked(const std::vector<wire::field>& fields) {
  std::vector<wire::answer_entry> out;
  for (bs::result<wire::answer_entry>& answer : wire::parse_answers(views(fields), bounds)) {
    EXPECT_TRUE(answer.ok()) << answer.error().to_string();
    if (answer.ok()) out.push_back(std::move(*answer));
  }
  return out;
}

TEST(WireAnswerPackTest, CarriesAnswersOfEveryKindInTheirOrder) {
  const std::vector<int> results{4, 9};
  std::vector<wire::answer_entry> answers{
      wire::results_answer("c1/1", std::span<const int>(results), bounds).value(),
      wire::error_answer("c1/2", bs::error(bs::errc::timeout, "too late")),
      wire::results_answer("c1/3", std::span<const int>(results), bounds, 0).value(),
      wire::hook_event("c1/3", 1, "progress", "\x01"), wire::end_event("c1/3", 2)};
  answers[2].attempt = "a.1";
  wire::answer_pack pack(bounds.max_entry_bytes);
  for (const wire::answer_entry& a : answers) ASSERT_TRUE(pack.add(encoded(a)));
  EXPECT_EQ(pack.size(), answers.size());
  const std::vector<wire::field> fields = pack.take();
  EXPECT_EQ(pack.size(), 0U);
  ASSERT_EQ(fields.size(), 3U);
  EXPECT_EQ(fields[0], wire::field("v", "1"));
  EXPECT_EQ(fields[1], wire::field("kind", "pack"));
  EXPECT_EQ(fields[2].first, "answers");

  const std::vector<wire::answer_entry> back = unpacked(fields);
  ASSERT_EQ(back.size(), answers.size());
  for (std::size_t i = 0; i < back.size(); ++i) {
    EXPECT_EQ(encoded(back[i]), encoded(answers[i])) << "answer " << i;
  }
  EXPECT_EQ(wire::decode_results<int>(back[0], bounds, 2).value(), results);
  EXPECT_EQ(back[1].error_code, bs::errc::timeout);
  EXPECT_EQ(back[2].attempt, "a.1");
}

TEST(WireAnswerPackTest, AnEntryOfItsOwnReadsAsOneAnswer) {
  const wire::answer_entry answer = wire::end_event("c1/5", 3);
  const std::vector<wire::answer_entry> back = unpacked(encoded(answer));
  ASSERT_EQ(back.size(), 1U);
  EXPECT_EQ(encoded(back[0]), encoded(answer));

  std::vector<wire::field> bad = encoded(answer);
  bad.erase(bad.begin() + 1);  // no id
  const std::vector<bs::result<wire::answer_entry>> refused =
      wire::parse_answers(views(bad), bounds);
  ASSERT_EQ(refused.size(), 1U);
  ASSERT_FALSE(refused[0].ok());
  EXPECT_TRUE(contains(refused[0].error(), "answer entry field \"id\""));
}

TEST(WireAnswerPackTest, StaysWithinItsBytesAndRefusesWhatCannotFit) {
  const std::string big(6000, 'r');
  wire::answer_pack pack(wire::min_entry_bytes);
  std::size_t added = 0;
  wire::answer_entry answer;
  answer.call_id = "c1/1";
  answer.kind = wire::answer_kind::results;
  answer.results = "\x91\xda\x17\x70" + big;  // one str 16 of 6000 bytes
  while (pack.add(encoded(answer))) ++added;
  EXPECT_EQ(added, 2U);  // a third would pass 16 KiB
  const std::vector<wire::field> fields = pack.take();
  std::size_t bytes = 0;
  for (const wire::field& f : fields) bytes += f.first.size() + f.second.size();
  EXPECT_LE(bytes, wire::min_entry_bytes);
  const wire::limits small{.max_entry_bytes = wire::min_entry_bytes};
  EXPECT_EQ(wire::parse_answers(views(fields), small).size(), 2U);

  answer.results = "\x91\xda\x3f\xff" + std::string(0x3fff, 'r');  // alone near 16 KiB
  EXPECT_FALSE(pack.add(encoded(answer)));  // an empty pack refuses only what is too large
  EXPECT_EQ(pack.size(), 0U);
}

// A pack written by hand: `members` are MessagePack values, one per answer.
std::vector<wire::field> pack_of(const std::vector<std::string>& members) {
  std::string payload = "\xdd";
  for (int shift = 24; shift >= 0; shift -= 8) {
    payload += static_cast<char>((members.size() >> static_cast<unsigned>(shift)) & 0xffU);
  }
  for (const std::string& m : members) payload += m;
  return {{"v", "1"}, {"kind", "pack"}, {"answers", payload}};
}

// An answer's fields as a pack member: an array of str names and values.
std::string member_of(const std::vector<wire::field>& fields) {
  std::string out(1, static_cast<char>(0x90 + 2 * fields.size()));
  for (const wire::field& f : fields) {
    for (const std::string& s : {f.first, f.second}) {
      out += static_cast<char>(0xd9);  // str 8
      out += static_cast<char>(s.size());
      out += s;
    }
  }
  return out;
}

TEST(WireAnswerPackTest, AMalformedMemberIsDroppedAloneAndNamed) {
  const std::string good = member_of(encoded(wire::end_event("c1/1", 0)));
  const std::string no_id = member_of({{"v", "1"}, {"kind", "end"}, {"seq", "0"}});
  const std::string nested =
      member_of({{"v", "1"}, {"id", "c1/2"}, {"kind", "pack"}, {"answers", "\x90"}});
  const std::vector<bs::result<wire::answer_entry>> read =
      wire::parse_answers(views(pack_of({good, "\x05", "\x93\xa1v\xa1\x31\xa1x", no_id,
                                         "\x92\xa1v\x07", nested, good})),
                          bounds);
  ASSERT_EQ(read.size(), 7U);
  EXPECT_TRUE(read[0].ok());
  EXPECT_TRUE(contains(read[1].error(), "answer 1: a non-negative integer, expected an array"))
      << read[1].error().message();
  EXPECT_TRUE(contains(read[2].error(), "answer 2: 3 elements")) << read[2].error().message();
  EXPECT_TRUE(contains(read[3].error(), "field \"id\": missing")) << read[3].error().message();
  EXPECT_TRUE(contains(read[4].error(), "answer 4: element 1 is")) << read[4].error().message();
  EXPECT_TRUE(contains(read[5].error(), "unknown answer kind")) << read[5].error().message();
  EXPECT_TRUE(read[6].ok());
}

TEST(WireAnswerPackTest, APackThatCannotBeReadIsOneError) {
  auto only_error = [](const std::vector<wire::field>& fields, std::string_view says) {
    const std::vector<bs::result<wire::answer_entry>> read =
        wire::parse_answers(views(fields), bounds);
    ASSERT_EQ(read.size(), 1U);
    ASSERT_FALSE(read[0].ok());
    EXPECT_TRUE(contains(read[0].error(), says)) << read[0].error().message();
    EXPECT_EQ(read[0].error().code(), bs::errc::invalid_argument);
  };
  only_error({{"v", "1"}, {"kind", "pack"}}, "answer pack field \"answers\": missing");
  only_error({{"v", "2"}, {"kind", "pack"}, {"answers", "\x90"}}, "unknown format version");
  only_error({{"v", "1"}, {"kind", "pack"}, {"answers", "\x91"}}, "answers");  // truncated
  only_error({{"v", "1"}, {"kind", "pack"}, {"answers", "\x05"}}, "expected an array");
  only_error({{"v", "1"}, {"kind", "pack"}, {"answers", "\xdd\xff\xff\xff\xff"}}, "answers");
  only_error(pack_of(std::vector<std::string>(wire::max_pack_answers + 1, "\x90")),
             "1025 answers, more than 1024");
  only_error({{"v", "1"}, {"kind", "pack"}, {"answers", "\x90"}, {"kind", "pack"}},
             "given more than once");
}

}  // namespace
