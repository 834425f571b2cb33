// libFuzzer target over the Redis transport's decode path
// (detail/wire.hpp, codec.hpp); scripts/fuzz.sh runs it with
// BATCH_SERVING_FUZZ_TARGET=batch_serving_wire_fuzz.
//
// Each input is one of:
//   - a request entry, parsed as the worker of serving "fuzz" parses it;
//   - an answer entry or an answer pack, parsed as a client parses it;
//   - item bytes, decoded as std::int64_t, std::string, std::vector<double>
//     or a MSGPACK_DEFINE struct (decode_items, and decode_value of the whole).
// Requests and answers that parse have their items (results, payload)
// decoded as each of those types too.
//
// Checked (abort() with "batch_serving_wire_fuzz: VIOLATION: ..."):
//   - nothing crashes, leaks or trips a sanitizer, nothing throws out of the
//     library's parse and decode functions;
//   - every failure is invalid_argument (an error answer's own code aside);
//   - a parsed request has a reply address, and every reply address (also of
//     a malformed request) is a reply stream of serving "fuzz" whose client
//     made the call (a well-formed call id of that client);
//   - what parses re-encodes, and the re-encoded entry parses to the same
//     thing (answers also when packed together); decoded values re-encode to bytes that decode to
//     the same value (bit-for-bit for doubles, so NaN and -0.0 count).
//
// Input format: byte 0 picks the kind (mod 3: request, answer, items) and
// byte 1 the limits (bit 0: the smallest entries, 8 items, depth 3) and,
// for items, the type (bits 1-2). Entries: then fields, each
// [name length: 1 byte][name][value length: 2 bytes LE][value], until the
// input ends. Items: then the MessagePack bytes. Reproduce a crash with
// `batch_serving_wire_fuzz <file>`.
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "batch_serving/codec.hpp"
#include "batch_serving/detail/wire.hpp"

namespace bs = batch_serving;
namespace wire = batch_serving::detail::wire;

namespace {

struct sample {
  std::int64_t id = 0;
  std::string name;
  std::vector<double> values;
  std::optional<bool> flag;
  std::map<std::string, std::int32_t> counts;
  MSGPACK_DEFINE(id, name, values, flag, counts)
};

[[noreturn]] void violation(const std::string& what) {
  std::fprintf(stderr, "\nbatch_serving_wire_fuzz: VIOLATION: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

void expect_invalid_argument(const bs::error& e, std::string_view where) {
  if (e.code() != bs::errc::invalid_argument) {
    violation(std::string(where) + " failed with " + e.to_string() + ", not invalid_argument");
  }
  if (e.message().empty()) violation(std::string(where) + " failed without a message");
}

// Equality that sees doubles bit for bit (NaN equals itself, -0.0 is not 0.0).
bool same(double a, double b) {
  return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}
bool same(std::int64_t a, std::int64_t b) { return a == b; }
bool same(const std::string& a, const std::string& b) { return a == b; }
bool same(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!same(a[i], b[i])) return false;
  }
  return true;
}
bool same(const sample& a, const sample& b) {
  return a.id == b.id && a.name == b.name && same(a.values, b.values) && a.flag == b.flag &&
         a.counts == b.counts;
}
template <class T>
bool same(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!same(a[i], b[i])) return false;
  }
  return true;
}

// Room enough to re-encode whatever decoded: a value may grow when encoded
// again (a fixint read as a double becomes a 9-byte float64).
const wire::limits roomy{.max_entry_bytes = std::size_t{1} << 30,
                         .max_items = 1U << 30,
                         .max_depth = 1024};

template <class T>
void check_items(std::string_view bytes, const wire::limits& bounds, std::string_view where) {
  bs::result<std::vector<T>> values = wire::decode_items<T>(bytes, bounds);
  if (!values.ok()) {
    expect_invalid_argument(values.error(), where);
    return;
  }
  bs::result<std::string> again = wire::encode_items(std::span<const T>(*values), roomy);
  if (!again.ok())
    violation(std::string(where) +
              ": decoded items do not re-encode: " + again.error().to_string());
  bs::result<std::vector<T>> back = wire::decode_items<T>(*again, roomy, values->size());
  if (!back.ok())
    violation(std::string(where) + ": re-encoded items do not decode: " + back.error().to_string());
  if (!same(*back, *values)) violation(std::string(where) + ": items changed in a round trip");
  bs::result<std::string> third = wire::encode_items(std::span<const T>(*back), roomy);
  if (!third.ok() || *third != *again) {
    violation(std::string(where) + ": re-encoding is not stable");
  }
}

template <class T>
void check_value(std::string_view bytes, std::string_view where) {
  bs::result<T> value = bs::decode_value<T>(bytes);
  if (!value.ok()) {
    expect_invalid_argument(value.error(), where);
    return;
  }
  bs::result<std::string> again = bs::encode_value(*value);
  if (!again.ok()) violation(std::string(where) + ": decoded value does not re-encode");
  bs::result<T> back = bs::decode_value<T>(*again);
  if (!back.ok() || !same(*back, *value)) {
    violation(std::string(where) + ": value changed in a round trip");
  }
}

void check_items_as_every_type(std::string_view bytes, const wire::limits& bounds) {
  check_items<std::int64_t>(bytes, bounds, "items as int64");
  check_items<std::string>(bytes, bounds, "items as string");
  check_items<std::vector<double>>(bytes, bounds, "items as vector<double>");
  check_items<sample>(bytes, bounds, "items as sample");
}

void check_request(const wire::serving_keys& keys, std::span<const wire::field_view> fields,
                   const wire::limits& bounds) {
  const wire::parsed_request parsed = wire::parse_request(keys, fields, bounds);
  if (parsed.reply_to) {
    const std::optional<std::string_view> client =
        keys.reply_stream_client(parsed.reply_to->reply_stream);
    if (!client) {
      violation("reply address outside the serving's reply streams: " +
                parsed.reply_to->reply_stream);
    }
    const std::optional<wire::call_id_parts> id = wire::parse_call_id(parsed.reply_to->call_id);
    if (!id) violation("reply address with a malformed call id");
    if (id->client_id != *client) violation("reply address of another client than the call's");
  }
  if (!parsed.request.ok()) {
    expect_invalid_argument(parsed.request.error(), "parse_request");
    return;
  }
  const wire::request_entry& request = *parsed.request;
  if (!parsed.reply_to || parsed.reply_to->call_id != request.call_id ||
      parsed.reply_to->reply_stream != request.reply_stream) {
    violation("a parsed request without its own reply address");
  }
  bs::result<std::vector<wire::field>> again = wire::encode_request(keys, request, bounds);
  if (!again.ok()) violation("a parsed request does not re-encode: " + again.error().to_string());
  const std::vector<wire::field_view> views(again->begin(), again->end());
  const wire::parsed_request back = wire::parse_request(keys, views, bounds);
  if (!back.request.ok()) {
    violation("a re-encoded request does not parse: " + back.request.error().to_string());
  }
  const wire::request_entry& r = *back.request;
  if (r.call_id != request.call_id || r.reply_stream != request.reply_stream ||
      r.form != request.form || r.budget_us != request.budget_us || r.items != request.items ||
      r.item_count != request.item_count || r.pack_bytes != request.pack_bytes) {
    violation("a request changed in a round trip");
  }
  check_items_as_every_type(request.items, bounds);
}

// One answer that parsed (an entry's or a pack member's); returns its fields
// re-encoded.
std::vector<wire::field> check_one_answer(const wire::answer_entry& answer,
                                          const wire::limits& bounds) {
  bs::result<std::vector<wire::field>> again = wire::encode_answer(answer, bounds);
  if (!again.ok()) violation("a parsed answer does not re-encode: " + again.error().to_string());
  const std::vector<wire::field_view> views(again->begin(), again->end());
  const bs::result<wire::answer_entry> back = wire::parse_answer(views, bounds);
  if (!back.ok()) violation("a re-encoded answer does not parse: " + back.error().to_string());
  if (back->call_id != answer.call_id || back->kind != answer.kind || back->seq != answer.seq ||
      back->results != answer.results || back->result_count != answer.result_count ||
      back->attempt != answer.attempt || back->payload_type != answer.payload_type ||
      back->hook_name != answer.hook_name || back->hook_payload != answer.hook_payload ||
      back->error_code != answer.error_code || back->error_message != answer.error_message) {
    violation("an answer changed in a round trip");
  }
  switch (answer.kind) {
    case wire::answer_kind::results:
    case wire::answer_kind::batch: {
      const bs::result<std::vector<std::int64_t>> decoded =
          wire::decode_results<std::int64_t>(answer, bounds, answer.result_count);
      if (!decoded.ok()) expect_invalid_argument(decoded.error(), "decode_results");
      check_items_as_every_type(answer.results, bounds);
      break;
    }
    case wire::answer_kind::hook:
      check_value<std::vector<double>>(answer.hook_payload, "hook payload as vector<double>");
      check_value<sample>(answer.hook_payload, "hook payload as sample");
      break;
    case wire::answer_kind::error: {
      const bs::result<std::vector<std::int64_t>> decoded =
          wire::decode_results<std::int64_t>(answer, bounds);
      if (decoded.ok() || decoded.error().code() != answer.error_code) {
        violation("an error answer does not decode to its own error");
      }
      break;
    }
    case wire::answer_kind::end: break;
  }
  return std::move(*again);
}

// An entry of a reply stream: an answer or a pack of them. What parses is
// packed again, and that pack must read back as the same answers.
void check_answer(std::span<const wire::field_view> fields, const wire::limits& bounds) {
  wire::answer_pack pack(bounds.max_entry_bytes);
  std::vector<std::vector<wire::field>> packed;
  for (const bs::result<wire::answer_entry>& parsed : wire::parse_answers(fields, bounds)) {
    if (!parsed.ok()) {
      expect_invalid_argument(parsed.error(), "parse_answers");
      continue;
    }
    std::vector<wire::field> encoded = check_one_answer(*parsed, bounds);
    if (pack.add(encoded)) packed.push_back(std::move(encoded));
  }
  if (packed.empty()) return;
  const std::vector<wire::field> entry = pack.take();
  const std::vector<wire::field_view> views(entry.begin(), entry.end());
  const std::vector<bs::result<wire::answer_entry>> back = wire::parse_answers(views, bounds);
  if (back.size() != packed.size()) violation("a pack read back with another answer count");
  for (std::size_t i = 0; i < back.size(); ++i) {
    if (!back[i].ok()) violation("a packed answer does not parse: " + back[i].error().to_string());
    bs::result<std::vector<wire::field>> again = wire::encode_answer(*back[i], bounds);
    if (!again.ok() || *again != packed[i]) violation("an answer changed in a pack");
  }
}

// The fields of an entry: [name length][name][value length, 2 bytes LE][value]...
std::vector<wire::field_view> read_fields(std::string_view in) {
  std::vector<wire::field_view> fields;
  std::size_t at = 0;
  while (at < in.size()) {
    const std::size_t name_size = static_cast<unsigned char>(in[at++]);
    const std::string_view name = in.substr(at, name_size);
    at += name.size();
    std::size_t value_size = 0;
    if (at < in.size()) value_size = static_cast<unsigned char>(in[at++]);
    if (at < in.size())
      value_size |= static_cast<std::size_t>(static_cast<unsigned char>(in[at++])) << 8U;
    const std::string_view value = in.substr(std::min(at, in.size()), value_size);
    at += value.size();
    fields.emplace_back(name, value);
  }
  return fields;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (input.size() < 2) return 0;
  const auto kind = static_cast<unsigned char>(input[0]) % 3;
  const auto flags = static_cast<unsigned char>(input[1]);
  const wire::limits bounds =
      (flags & 1U) != 0
          ? wire::limits{.max_entry_bytes = wire::min_entry_bytes, .max_items = 8, .max_depth = 3}
          : wire::limits{};
  if (std::optional<bs::error> bad = wire::check_limits(bounds)) violation(bad->to_string());
  static const wire::serving_keys keys = wire::serving_keys::make("fuzz").value();
  const std::string_view body = input.substr(2);

  switch (kind) {
    case 0: check_request(keys, read_fields(body), bounds); break;
    case 1: check_answer(read_fields(body), bounds); break;
    default:
      switch ((flags >> 1U) & 3U) {
        case 0:
          check_items<std::int64_t>(body, bounds, "items as int64");
          check_value<std::int64_t>(body, "value as int64");
          break;
        case 1:
          check_items<std::string>(body, bounds, "items as string");
          check_value<std::string>(body, "value as string");
          break;
        case 2:
          check_items<std::vector<double>>(body, bounds, "items as vector<double>");
          check_value<std::vector<double>>(body, "value as vector<double>");
          break;
        default:
          check_items<sample>(body, bounds, "items as sample");
          check_value<sample>(body, "value as sample");
          break;
      }
      break;
  }
  return 0;
}
