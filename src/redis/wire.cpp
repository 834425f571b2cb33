#include "batch_serving/detail/wire.hpp"

#include <array>
#include <charconv>
#include <limits>
#include <ratio>
#include <system_error>

namespace batch_serving::detail::wire {

namespace {

constexpr std::string_view key_prefix = "bs:{";

// Field names, shared by requests and answers.
constexpr std::string_view f_version = "v";
constexpr std::string_view f_id = "id";
constexpr std::string_view f_reply = "reply";
constexpr std::string_view f_form = "form";
constexpr std::string_view f_budget = "budget_us";
constexpr std::string_view f_items = "items";
constexpr std::string_view f_kind = "kind";
constexpr std::string_view f_seq = "seq";
constexpr std::string_view f_results = "results";
constexpr std::string_view f_hook = "hook";
constexpr std::string_view f_attempt = "attempt";
constexpr std::string_view f_payload_type = "payload_type";
constexpr std::string_view f_payload = "payload";
constexpr std::string_view f_code = "code";
constexpr std::string_view f_message = "message";
constexpr std::string_view f_pack = "pack";
constexpr std::string_view f_answers = "answers";
constexpr std::string_view pack_kind = "pack";

error invalid(std::string message) { return {errc::invalid_argument, std::move(message)}; }

// `text` for an error message: at most 64 bytes, non-printable bytes as \xNN,
// in double quotes. An entry's bytes are anyone's; a log line is not theirs.
std::string printable(std::string_view text) {
  constexpr std::size_t shown = 64;
  constexpr std::string_view hex = "0123456789abcdef";
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < shown; ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x20 || byte >= 0x7f || byte == '"' || byte == '\\') {
      out += "\\x";
      out += hex[byte >> 4U];
      out += hex[byte & 0xfU];
    } else {
      out += static_cast<char>(byte);
    }
  }
  if (text.size() > shown) out += "...";
  out += '"';
  return out;
}

std::string field_error(std::string_view entry, std::string_view name, std::string_view why) {
  std::string message(entry);
  message += " field \"";
  message += name;
  message += "\": ";
  message += why;
  return message;
}

// A canonical decimal: digits only, no sign, no leading zero (but "0").
std::optional<std::uint64_t> parse_decimal(std::string_view text) noexcept {
  if (text.empty() || (text.size() > 1 && text.front() == '0')) return std::nullopt;
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [stop, failure] = std::from_chars(text.data(), end, value);
  if (failure != std::errc() || stop != end) return std::nullopt;
  return value;
}

bool is_id_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

std::optional<error> check_id(std::string_view what, std::string_view id) {
  if (id.empty()) return invalid(std::string(what) + ": empty");
  if (id.size() > max_id_bytes) {
    return invalid(std::string(what) + " " + printable(id) + ": " + std::to_string(id.size()) +
                   " bytes, more than " + std::to_string(max_id_bytes));
  }
  for (std::size_t i = 0; i < id.size(); ++i) {
    if (!is_id_char(id[i])) {
      return invalid(std::string(what) + " " + printable(id) + ": byte " + std::to_string(i) +
                     " is not one of A-Z a-z 0-9 . _ -");
    }
  }
  return std::nullopt;
}

bool has_control_char(std::string_view text) noexcept {
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) return true;
  }
  return false;
}

// The fields an entry format knows, each found at most once.
template <std::size_t N>
class field_table {
 public:
  explicit field_table(const std::array<std::string_view, N>& names) : names_(names) {}

  // Records `fields`; returns the name of a known field given twice, if any.
  std::optional<std::string_view> read(std::span<const field_view> fields) {
    std::optional<std::string_view> twice;
    for (const field_view& f : fields) {
      bytes_ += f.first.size() + f.second.size();
      for (std::size_t i = 0; i < N; ++i) {
        if (f.first != names_[i]) continue;
        if (values_[i]) {
          duplicated_[i] = true;
          if (!twice) twice = names_[i];
        } else {
          values_[i] = f.second;
        }
      }
    }
    return twice;
  }

  // The value of `name`, unless absent or given twice.
  std::optional<std::string_view> get(std::string_view name) const {
    for (std::size_t i = 0; i < N; ++i) {
      if (names_[i] == name) return duplicated_[i] ? std::nullopt : values_[i];
    }
    return std::nullopt;
  }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  std::array<std::string_view, N> names_;
  std::array<std::optional<std::string_view>, N> values_{};
  std::array<bool, N> duplicated_{};
  std::size_t bytes_ = 0;
};

// The checks every entry gets before its fields are looked at.
template <std::size_t N>
std::optional<error> check_entry_shape(std::string_view entry, std::span<const field_view> fields,
                                       field_table<N>& table, const limits& bounds) {
  const std::optional<std::string_view> twice = table.read(fields);
  if (table.bytes() > bounds.max_entry_bytes) {
    return invalid(std::string(entry) + ": " + std::to_string(table.bytes()) +
                   " bytes, more than max_entry_bytes " + std::to_string(bounds.max_entry_bytes));
  }
  if (fields.size() > max_entry_fields) {
    return invalid(std::string(entry) + ": " + std::to_string(fields.size()) +
                   " fields, more than " + std::to_string(max_entry_fields));
  }
  if (twice) return invalid(field_error(entry, *twice, "given more than once"));
  const std::optional<std::string_view> version = table.get(f_version);
  if (!version) return invalid(field_error(entry, f_version, "missing (the format version)"));
  if (*version != format_version) {
    return invalid(field_error(entry, f_version,
                               "unknown format version " + printable(*version) +
                                   " (this build reads " + std::string(format_version) + ")"));
  }
  return std::nullopt;
}

std::optional<error> check_call_id(std::string_view entry, std::string_view call_id) {
  if (!parse_call_id(call_id)) {
    return invalid(field_error(entry, f_id,
                               printable(call_id) + " is not a call id CLIENT/SEQ (CLIENT: 1-" +
                                   std::to_string(max_id_bytes) +
                                   " of A-Z a-z 0-9 . _ -, SEQ: a decimal number)"));
  }
  return std::nullopt;
}

// Requires check_call_id(entry, call_id) to have passed.
std::optional<error> check_reply_stream(std::string_view entry, const serving_keys& keys,
                                        std::string_view call_id, std::string_view reply) {
  const std::optional<std::string_view> client = keys.reply_stream_client(reply);
  if (!client) {
    return invalid(field_error(entry, f_reply,
                               printable(reply) + " is not a reply stream of serving " +
                                   printable(keys.serving()) + " (" +
                                   printable(keys.reply_stream_prefix() + "CLIENT") + ")"));
  }
  // A call's answer goes to the stream of the client that made it, and to no other.
  if (parse_call_id(call_id)->client_id != *client) {
    return invalid(field_error(entry, f_reply,
                               printable(reply) + " is not the reply stream of client " +
                                   printable(parse_call_id(call_id)->client_id) +
                                   ", whose call id this is"));
  }
  return std::nullopt;
}

// Whether a request with these id and reply fields can be answered.
bool answerable(const serving_keys& keys, std::string_view call_id, std::string_view reply) {
  const std::optional<call_id_parts> parts = parse_call_id(call_id);
  const std::optional<std::string_view> client = keys.reply_stream_client(reply);
  return parts && client && parts->client_id == *client;
}

std::optional<call_form> parse_form(std::string_view text) noexcept {
  for (call_form form :
       {call_form::one, call_form::many, call_form::stream_one, call_form::stream_many}) {
    if (text == to_string(form)) return form;
  }
  return std::nullopt;
}

std::optional<answer_kind> parse_kind(std::string_view text) noexcept {
  for (answer_kind kind : {answer_kind::results, answer_kind::error, answer_kind::batch,
                           answer_kind::hook, answer_kind::end}) {
    if (text == to_string(kind)) return kind;
  }
  return std::nullopt;
}

bool takes_one_item(call_form form) noexcept {
  return form == call_form::one || form == call_form::stream_one;
}

std::optional<error> check_item_count(std::string_view entry, call_form form, std::size_t count) {
  if (takes_one_item(form) && count != 1) {
    return invalid(field_error(entry, f_items,
                               std::to_string(count) + " items, but form \"" +
                                   std::string(to_string(form)) + "\" carries exactly one"));
  }
  return std::nullopt;
}

std::optional<error> check_hook_name(std::string_view entry, std::string_view name) {
  if (name.empty()) return invalid(field_error(entry, f_hook, "empty hook name"));
  if (name.size() > max_hook_name_bytes) {
    return invalid(field_error(entry, f_hook,
                               std::to_string(name.size()) + " bytes, more than " +
                                   std::to_string(max_hook_name_bytes)));
  }
  if (has_control_char(name)) {
    return invalid(field_error(entry, f_hook, printable(name) + " contains a control character"));
  }
  return std::nullopt;
}

// Whether an answer of `kind` carries a seq: always for stream events, never
// for a plain results answer; an error either way.
std::optional<error> check_seq(std::string_view entry, answer_kind kind, bool has_seq) {
  const bool stream_event =
      kind == answer_kind::batch || kind == answer_kind::hook || kind == answer_kind::end;
  if (stream_event && !has_seq) {
    return invalid(field_error(entry, f_seq,
                               "missing (" + std::string(to_string(kind)) + " events carry one)"));
  }
  if (kind == answer_kind::results && has_seq) {
    return invalid(field_error(entry, f_seq,
                               "given on a results answer (stream results are batch events)"));
  }
  return std::nullopt;
}

// The encoded size of `fields`, as the parsers count it.
std::size_t entry_bytes(const std::vector<field>& fields) noexcept {
  std::size_t bytes = 0;
  for (const field& f : fields) bytes += f.first.size() + f.second.size();
  return bytes;
}

std::optional<error> check_encoded_size(std::string_view entry, const std::vector<field>& fields,
                                        const limits& bounds) {
  const std::size_t bytes = entry_bytes(fields);
  if (bytes > bounds.max_entry_bytes) {
    return invalid(std::string(entry) + ": " + std::to_string(bytes) +
                   " bytes, more than max_entry_bytes " + std::to_string(bounds.max_entry_bytes) +
                   "; nothing was sent");
  }
  return std::nullopt;
}

// Cuts `message` to `limit` bytes, ending in "..." and never inside a UTF-8
// sequence.
std::string shortened(const std::string& message, std::size_t limit) {
  if (message.size() <= limit) return message;
  constexpr std::string_view ellipsis = "...";
  std::size_t cut = limit - ellipsis.size();
  while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xc0U) == 0x80U) --cut;
  return message.substr(0, cut) + std::string(ellipsis);
}

constexpr std::string_view request_entry_name = "request entry";
constexpr std::string_view answer_entry_name = "answer entry";
constexpr std::string_view items_field = "request entry field \"items\"";
constexpr std::string_view results_field = "answer entry field \"results\"";
constexpr std::string_view payload_field = "answer entry field \"payload\"";

}  // namespace

// ---------------------------------------------------------------- limits

std::optional<error> check_limits(const limits& bounds) {
  if (bounds.max_entry_bytes < min_entry_bytes) {
    return invalid("wire limits: max_entry_bytes = " + std::to_string(bounds.max_entry_bytes) +
                   " is below the minimum " + std::to_string(min_entry_bytes) +
                   " (an error answer must always fit)");
  }
  if (bounds.max_items == 0 || bounds.max_items > std::numeric_limits<std::uint32_t>::max()) {
    return invalid("wire limits: max_items = " + std::to_string(bounds.max_items) +
                   " is not in 1..4294967295 (a MessagePack array's size)");
  }
  if (bounds.max_depth > 1024) {
    return invalid("wire limits: max_depth = " + std::to_string(bounds.max_depth) +
                   " is more than 1024");
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- keys and ids

std::optional<error> check_serving_name(std::string_view name) {
  if (name.empty()) return invalid("serving name: empty");
  if (name.size() > max_serving_name_bytes) {
    return invalid("serving name " + printable(name) + ": " + std::to_string(name.size()) +
                   " bytes, more than " + std::to_string(max_serving_name_bytes));
  }
  if (name.find_first_of("{}") != std::string_view::npos) {
    return invalid("serving name " + printable(name) +
                   ": '{' and '}' are not allowed (the name is the Redis Cluster hash tag)");
  }
  if (has_control_char(name)) {
    return invalid("serving name " + printable(name) + ": contains a control character");
  }
  return std::nullopt;
}

std::optional<error> check_client_id(std::string_view id) { return check_id("client id", id); }

std::optional<error> check_consumer_id(std::string_view id) { return check_id("consumer id", id); }

serving_keys::serving_keys(std::string_view serving)
    : serving_(serving),
      request_stream_(std::string(key_prefix) + serving_ + "}:requests"),
      workers_set_(std::string(key_prefix) + serving_ + "}:workers"),
      reply_prefix_(std::string(key_prefix) + serving_ + "}:replies:"),
      heartbeat_prefix_(std::string(key_prefix) + serving_ + "}:worker:") {}

result<serving_keys> serving_keys::make(std::string_view serving) {
  if (std::optional<error> bad = check_serving_name(serving)) return *bad;
  return serving_keys(serving);
}

result<std::string> serving_keys::reply_stream(std::string_view client_id) const {
  if (std::optional<error> bad = check_client_id(client_id)) return *bad;
  return reply_prefix_ + std::string(client_id);
}

result<std::string> serving_keys::heartbeat_key(std::string_view consumer_id) const {
  if (std::optional<error> bad = check_consumer_id(consumer_id)) return *bad;
  return heartbeat_prefix_ + std::string(consumer_id);
}

std::optional<std::string_view> serving_keys::reply_stream_client(
    std::string_view key) const noexcept {
  if (!key.starts_with(reply_prefix_)) return std::nullopt;
  const std::string_view client = key.substr(reply_prefix_.size());
  if (client.empty() || client.size() > max_id_bytes) return std::nullopt;
  for (char c : client) {
    if (!is_id_char(c)) return std::nullopt;
  }
  return client;
}

std::string make_call_id(std::string_view client_id, std::uint64_t sequence) {
  std::string id(client_id);
  id += '/';
  id += std::to_string(sequence);
  return id;
}

std::optional<call_id_parts> parse_call_id(std::string_view call_id) noexcept {
  const std::size_t slash = call_id.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const std::string_view client = call_id.substr(0, slash);
  if (client.empty() || client.size() > max_id_bytes) return std::nullopt;
  for (char c : client) {
    if (!is_id_char(c)) return std::nullopt;
  }
  const std::optional<std::uint64_t> sequence = parse_decimal(call_id.substr(slash + 1));
  if (!sequence) return std::nullopt;
  return call_id_parts{.client_id = client, .sequence = *sequence};
}

// ---------------------------------------------------------------- time budgets

namespace {
using steady = std::chrono::steady_clock;
// Ticks per microsecond: steady_clock's tick divides one microsecond evenly
// (nanoseconds on libstdc++ and libc++).
using ticks_per_us = std::ratio_divide<std::micro, steady::period>;
static_assert(ticks_per_us::den == 1 && ticks_per_us::num >= 1,
              "steady_clock ticks must divide a microsecond evenly");
constexpr std::uint64_t tick_count_per_us = ticks_per_us::num;
}  // namespace

std::uint64_t budget_until(steady::time_point deadline, steady::time_point now) noexcept {
  if (deadline <= now) return 0;
  // Unsigned subtraction: exact, as deadline > now, whatever their signs.
  const std::uint64_t ticks = static_cast<std::uint64_t>(deadline.time_since_epoch().count()) -
                              static_cast<std::uint64_t>(now.time_since_epoch().count());
  const std::uint64_t us = ticks / tick_count_per_us + (ticks % tick_count_per_us != 0 ? 1 : 0);
  return us < max_budget_us ? us : max_budget_us;
}

steady::time_point deadline_after(steady::time_point now, std::uint64_t budget_us) noexcept {
  const std::uint64_t room =
      static_cast<std::uint64_t>(steady::time_point::max().time_since_epoch().count()) -
      static_cast<std::uint64_t>(now.time_since_epoch().count());
  if (budget_us > room / tick_count_per_us) return steady::time_point::max();
  return now + steady::duration(static_cast<steady::rep>(budget_us * tick_count_per_us));
}

std::optional<std::uint64_t> entry_id_ms(std::string_view entry_id) noexcept {
  const std::size_t dash = entry_id.find('-');
  if (dash == std::string_view::npos || !parse_decimal(entry_id.substr(dash + 1))) {
    return std::nullopt;
  }
  return parse_decimal(entry_id.substr(0, dash));
}

std::uint64_t budget_after_wait(std::uint64_t budget_us, std::uint64_t added_ms,
                                std::uint64_t now_ms) noexcept {
  const std::uint64_t waited_ms = now_ms > added_ms ? now_ms - added_ms : 0;
  constexpr std::uint64_t us_per_ms = 1000;
  if (waited_ms >= budget_us / us_per_ms + 1) return 0;  // also where waited_ms * 1000 overflows
  const std::uint64_t waited_us = waited_ms * us_per_ms;
  return budget_us > waited_us ? budget_us - waited_us : 0;
}

// ---------------------------------------------------------------- names

std::string_view to_string(call_form form) noexcept {
  switch (form) {
    case call_form::one: return "one";
    case call_form::many: return "many";
    case call_form::stream_one: return "stream_one";
    case call_form::stream_many: return "stream_many";
  }
  return "unknown";
}

std::string_view to_string(answer_kind kind) noexcept {
  switch (kind) {
    case answer_kind::results: return "results";
    case answer_kind::error: return "error";
    case answer_kind::batch: return "batch";
    case answer_kind::hook: return "hook";
    case answer_kind::end: return "end";
  }
  return "unknown";
}

std::optional<errc> errc_from_string(std::string_view name) noexcept {
  for (errc code :
       {errc::no_serving, errc::execution_failed, errc::invalid_argument, errc::shutting_down,
        errc::overloaded, errc::timeout, errc::cancelled, errc::unavailable}) {
    if (name == batch_serving::to_string(code)) return code;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- payloads

result<msgpack_outline> inspect_array(std::string_view bytes, const limits& bounds,
                                      std::string_view what) {
  // One level for the array itself, max_depth inside each element.
  result<msgpack_outline> outline = inspect_untrusted(bytes, bounds.max_depth + 1, what);
  if (!outline.ok()) return outline;
  if (outline->kind != msgpack::type::ARRAY) {
    return invalid(std::string(what) + ": expected a MessagePack array, got " +
                   std::string(msgpack_kind(outline->kind)));
  }
  if (outline->size > bounds.max_items) {
    return invalid(std::string(what) + ": " + std::to_string(outline->size) +
                   " elements, more than max_items " + std::to_string(bounds.max_items));
  }
  return outline;
}

// ---------------------------------------------------------------- requests

result<std::vector<field>> encode_request(const serving_keys& keys, request_entry request,
                                          const limits& bounds) {
  try {
    const std::string_view entry = request_entry_name;
    if (std::optional<error> bad = check_call_id(entry, request.call_id)) return *bad;
    if (std::optional<error> bad =
            check_reply_stream(entry, keys, request.call_id, request.reply_stream)) {
      return *bad;
    }
    result<msgpack_outline> items = inspect_array(request.items, bounds, items_field);
    if (!items.ok()) return items.error();
    if (std::optional<error> bad = check_item_count(entry, request.form, items->size)) return *bad;

    std::vector<field> fields;
    fields.reserve(6);
    fields.emplace_back(f_version, format_version);
    fields.emplace_back(f_id, std::move(request.call_id));
    fields.emplace_back(f_reply, std::move(request.reply_stream));
    fields.emplace_back(f_form, to_string(request.form));
    if (request.budget_us) {
      const std::uint64_t budget =
          *request.budget_us < max_budget_us ? *request.budget_us : max_budget_us;
      fields.emplace_back(f_budget, std::to_string(budget));
    }
    if (request.pack_bytes) {
      if (*request.pack_bytes < min_entry_bytes) {
        return invalid(field_error(entry, f_pack,
                                   std::to_string(*request.pack_bytes) +
                                       " bytes, less than min_entry_bytes " +
                                       std::to_string(min_entry_bytes)));
      }
      fields.emplace_back(f_pack, std::to_string(*request.pack_bytes));
    }
    fields.emplace_back(f_items, std::move(request.items));
    if (std::optional<error> bad = check_encoded_size(entry, fields, bounds)) return *bad;
    return fields;
  } catch (const std::exception& e) {
    return invalid(std::string("request entry: cannot encode: ") + e.what());
  }
}

parsed_request parse_request(const serving_keys& keys, std::span<const field_view> fields,
                             const limits& bounds) {
  const std::string_view entry = request_entry_name;
  try {
    field_table<7> table({f_version, f_id, f_reply, f_form, f_budget, f_pack, f_items});
    std::optional<error> shape = check_entry_shape(entry, fields, table, bounds);

    // Who to answer, found before anything else can be wrong.
    const std::optional<std::string_view> id = table.get(f_id);
    const std::optional<std::string_view> reply = table.get(f_reply);
    std::optional<reply_address> reply_to;
    if (id && reply && answerable(keys, *id, *reply)) {
      reply_to = reply_address{.reply_stream = std::string(*reply), .call_id = std::string(*id)};
    }
    auto fail = [&](error problem) {
      return parsed_request{.request = std::move(problem), .reply_to = std::move(reply_to)};
    };

    if (shape) return fail(std::move(*shape));
    if (!id) return fail(invalid(field_error(entry, f_id, "missing (the call id)")));
    if (std::optional<error> bad = check_call_id(entry, *id)) return fail(std::move(*bad));
    if (!reply) return fail(invalid(field_error(entry, f_reply, "missing (the reply stream)")));
    if (std::optional<error> bad = check_reply_stream(entry, keys, *id, *reply)) {
      return fail(std::move(*bad));
    }

    request_entry request;
    const std::optional<std::string_view> form_text = table.get(f_form);
    if (!form_text) return fail(invalid(field_error(entry, f_form, "missing (the call form)")));
    const std::optional<call_form> form = parse_form(*form_text);
    if (!form) {
      return fail(invalid(field_error(entry, f_form,
                                      "unknown call form " + printable(*form_text) +
                                          " (one, many, stream_one, stream_many)")));
    }
    request.form = *form;

    if (const std::optional<std::string_view> budget = table.get(f_budget)) {
      const std::optional<std::uint64_t> us = parse_decimal(*budget);
      if (!us) {
        return fail(invalid(field_error(
            entry, f_budget,
            printable(*budget) + " is not a decimal number of microseconds (0 to 2^64-1)")));
      }
      request.budget_us = *us < max_budget_us ? *us : max_budget_us;
    }
    if (const std::optional<std::string_view> pack = table.get(f_pack)) {
      const std::optional<std::uint64_t> bytes = parse_decimal(*pack);
      if (!bytes || *bytes < min_entry_bytes) {
        return fail(invalid(field_error(entry, f_pack,
                                        printable(*pack) + " is not a decimal number of bytes of " +
                                            std::to_string(min_entry_bytes) + " or more")));
      }
      request.pack_bytes = static_cast<std::size_t>(
          std::min<std::uint64_t>(*bytes, std::numeric_limits<std::size_t>::max()));
    }

    const std::optional<std::string_view> items = table.get(f_items);
    if (!items) return fail(invalid(field_error(entry, f_items, "missing (the items)")));
    result<msgpack_outline> outline = inspect_array(*items, bounds, items_field);
    if (!outline.ok()) return fail(outline.error());
    if (std::optional<error> bad = check_item_count(entry, request.form, outline->size)) {
      return fail(std::move(*bad));
    }

    request.call_id = std::string(*id);
    request.reply_stream = std::string(*reply);
    request.items = std::string(*items);
    request.item_count = outline->size;
    return parsed_request{.request = std::move(request), .reply_to = std::move(reply_to)};
  } catch (const std::exception& e) {
    return parsed_request{.request = invalid(std::string("request entry: ") + e.what()),
                          .reply_to = std::nullopt};
  }
}

// ---------------------------------------------------------------- answers

answer_entry error_answer(std::string call_id, const error& failure,
                          std::optional<std::uint64_t> seq) {
  answer_entry answer;
  answer.call_id = std::move(call_id);
  answer.kind = answer_kind::error;
  answer.seq = seq;
  answer.error_code = failure.code();
  answer.error_message = shortened(failure.message(), max_error_message_bytes);
  return answer;
}

answer_entry hook_event(std::string call_id, std::uint64_t seq, std::string hook,
                        std::string payload) {
  answer_entry answer;
  answer.call_id = std::move(call_id);
  answer.kind = answer_kind::hook;
  answer.seq = seq;
  answer.hook_name = std::move(hook);
  answer.hook_payload = std::move(payload);
  return answer;
}

answer_entry end_event(std::string call_id, std::uint64_t seq) {
  answer_entry answer;
  answer.call_id = std::move(call_id);
  answer.kind = answer_kind::end;
  answer.seq = seq;
  return answer;
}

namespace {

// The checks of an answer's kind-specific fields, shared by encode and parse.
// Sets answer.result_count.
std::optional<error> check_answer_body(answer_entry& answer, const limits& bounds) {
  const std::string_view entry = answer_entry_name;
  if (std::optional<error> bad = check_seq(entry, answer.kind, answer.seq.has_value())) {
    return bad;
  }
  if (!answer.attempt.empty()) {
    if (std::optional<error> bad = check_id("attempt", answer.attempt)) {
      return invalid(field_error(entry, f_attempt, bad->message()));
    }
  }
  if (answer.payload_type.size() > max_type_name_bytes) {
    return invalid(field_error(entry, f_payload_type,
                               std::to_string(answer.payload_type.size()) + " bytes, more than " +
                                   std::to_string(max_type_name_bytes)));
  }
  for (const char c : answer.payload_type) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      return invalid(field_error(entry, f_payload_type, "contains a control character"));
    }
  }
  switch (answer.kind) {
    case answer_kind::results:
    case answer_kind::batch: {
      result<msgpack_outline> outline = inspect_array(answer.results, bounds, results_field);
      if (!outline.ok()) return outline.error();
      answer.result_count = outline->size;
      return std::nullopt;
    }
    case answer_kind::hook: {
      if (std::optional<error> bad = check_hook_name(entry, answer.hook_name)) return bad;
      result<msgpack_outline> outline =
          inspect_untrusted(answer.hook_payload, bounds.max_depth + 1, payload_field);
      if (!outline.ok()) return outline.error();
      return std::nullopt;
    }
    case answer_kind::error:
      if (answer.error_message.size() > max_error_message_bytes) {
        return invalid(field_error(entry, f_message,
                                   std::to_string(answer.error_message.size()) +
                                       " bytes, more than " +
                                       std::to_string(max_error_message_bytes)));
      }
      return std::nullopt;
    case answer_kind::end: return std::nullopt;
  }
  return invalid(field_error(entry, f_kind, "unknown answer kind"));
}

}  // namespace

result<std::vector<field>> encode_answer(answer_entry answer, const limits& bounds) {
  try {
    const std::string_view entry = answer_entry_name;
    if (std::optional<error> bad = check_call_id(entry, answer.call_id)) return *bad;
    if (std::optional<error> bad = check_answer_body(answer, bounds)) return *bad;

    std::vector<field> fields;
    fields.reserve(6);
    fields.emplace_back(f_version, format_version);
    fields.emplace_back(f_id, std::move(answer.call_id));
    fields.emplace_back(f_kind, to_string(answer.kind));
    if (answer.seq) fields.emplace_back(f_seq, std::to_string(*answer.seq));
    if (!answer.attempt.empty()) fields.emplace_back(f_attempt, std::move(answer.attempt));
    switch (answer.kind) {
      case answer_kind::results:
      case answer_kind::batch: fields.emplace_back(f_results, std::move(answer.results)); break;
      case answer_kind::hook:
        fields.emplace_back(f_hook, std::move(answer.hook_name));
        fields.emplace_back(f_payload, std::move(answer.hook_payload));
        if (!answer.payload_type.empty()) {
          fields.emplace_back(f_payload_type, std::move(answer.payload_type));
        }
        break;
      case answer_kind::error:
        fields.emplace_back(f_code, batch_serving::to_string(answer.error_code));
        fields.emplace_back(f_message, std::move(answer.error_message));
        break;
      case answer_kind::end: break;
    }
    if (std::optional<error> bad = check_encoded_size(entry, fields, bounds)) return *bad;
    return fields;
  } catch (const std::exception& e) {
    return invalid(std::string("answer entry: cannot encode: ") + e.what());
  }
}

result<answer_entry> parse_answer(std::span<const field_view> fields, const limits& bounds) {
  const std::string_view entry = answer_entry_name;
  try {
    field_table<11> table({f_version, f_id, f_kind, f_seq, f_attempt, f_results, f_hook, f_payload,
                           f_payload_type, f_code, f_message});
    if (std::optional<error> bad = check_entry_shape(entry, fields, table, bounds)) return *bad;

    answer_entry answer;
    const std::optional<std::string_view> id = table.get(f_id);
    if (!id) return invalid(field_error(entry, f_id, "missing (the call id)"));
    if (std::optional<error> bad = check_call_id(entry, *id)) return *bad;
    answer.call_id = std::string(*id);

    const std::optional<std::string_view> kind_text = table.get(f_kind);
    if (!kind_text) return invalid(field_error(entry, f_kind, "missing (the answer kind)"));
    const std::optional<answer_kind> kind = parse_kind(*kind_text);
    if (!kind) {
      return invalid(field_error(entry, f_kind,
                                 "unknown answer kind " + printable(*kind_text) +
                                     " (results, error, batch, hook, end)"));
    }
    answer.kind = *kind;

    if (const std::optional<std::string_view> attempt = table.get(f_attempt)) {
      if (attempt->empty()) return invalid(field_error(entry, f_attempt, "empty"));
      answer.attempt = std::string(*attempt);
    }
    if (const std::optional<std::string_view> seq = table.get(f_seq)) {
      answer.seq = parse_decimal(*seq);
      if (!answer.seq) {
        return invalid(field_error(entry, f_seq,
                                   printable(*seq) + " is not a decimal number (0 to 2^64-1)"));
      }
    }

    auto require = [&](std::string_view name) -> result<std::string> {
      const std::optional<std::string_view> value = table.get(name);
      if (!value) {
        return invalid(field_error(entry, name,
                                   "missing (" + std::string(to_string(answer.kind)) +
                                       " answers carry it)"));
      }
      return std::string(*value);
    };
    switch (answer.kind) {
      case answer_kind::results:
      case answer_kind::batch: {
        result<std::string> results = require(f_results);
        if (!results.ok()) return results.error();
        answer.results = std::move(*results);
        break;
      }
      case answer_kind::hook: {
        result<std::string> hook = require(f_hook);
        if (!hook.ok()) return hook.error();
        result<std::string> payload = require(f_payload);
        if (!payload.ok()) return payload.error();
        answer.hook_name = std::move(*hook);
        answer.hook_payload = std::move(*payload);
        if (const std::optional<std::string_view> type = table.get(f_payload_type)) {
          answer.payload_type = std::string(*type);
        }
        break;
      }
      case answer_kind::error: {
        result<std::string> code = require(f_code);
        if (!code.ok()) return code.error();
        const std::optional<errc> parsed_code = errc_from_string(*code);
        if (!parsed_code) {
          return invalid(field_error(entry, f_code, "unknown error code " + printable(*code)));
        }
        result<std::string> message = require(f_message);
        if (!message.ok()) return message.error();
        answer.error_code = *parsed_code;
        answer.error_message = std::move(*message);
        break;
      }
      case answer_kind::end: break;
    }
    if (std::optional<error> bad = check_answer_body(answer, bounds)) return *bad;
    return answer;
  } catch (const std::exception& e) {
    return invalid(std::string("answer entry: ") + e.what());
  }
}

// ---------------------------------------------------------------- packs

namespace {

// "v" "1" "kind" "pack" "answers": what a pack's entry holds besides its answers.
constexpr std::size_t pack_field_bytes =
    f_version.size() + format_version.size() + f_kind.size() + pack_kind.size() + f_answers.size();
// The outer array's header: always array 32, so its count can be written last.
constexpr std::size_t pack_header_bytes = 5;
// A MessagePack header is at most 5 bytes (array 32, str 32, bin 32).
constexpr std::size_t max_header_bytes = 5;

// msgpack::packer's output, appended to a string.
struct string_sink {
  std::string& out;
  void write(const char* data, std::size_t size) { out.append(data, size); }
};

constexpr std::string_view pack_entry_name = "answer pack";
constexpr std::string_view answers_field = "answer pack field \"answers\"";

}  // namespace

answer_pack::answer_pack(std::size_t max_bytes)
    : max_payload_(max_bytes > pack_field_bytes ? max_bytes - pack_field_bytes : 0) {}

bool answer_pack::add(std::span<const field> answer) {
  std::size_t bytes = max_header_bytes;
  for (const field& f : answer) bytes += 2 * max_header_bytes + f.first.size() + f.second.size();
  const std::size_t used = payload_.empty() ? pack_header_bytes : payload_.size();
  if (count_ >= max_pack_answers || answer.size() > max_entry_fields ||
      used + bytes > max_payload_) {
    return false;
  }
  if (payload_.empty()) payload_.assign(pack_header_bytes, '\0');
  string_sink sink{payload_};
  msgpack::packer<string_sink> out(sink);
  out.pack_array(static_cast<std::uint32_t>(2 * answer.size()));
  for (const field& f : answer) {
    out.pack_str(static_cast<std::uint32_t>(f.first.size()));
    out.pack_str_body(f.first.data(), static_cast<std::uint32_t>(f.first.size()));
    out.pack_bin(static_cast<std::uint32_t>(f.second.size()));
    out.pack_bin_body(f.second.data(), static_cast<std::uint32_t>(f.second.size()));
  }
  ++count_;
  return true;
}

std::vector<field> answer_pack::take() {
  if (payload_.empty()) payload_.assign(pack_header_bytes, '\0');
  payload_[0] = static_cast<char>(0xdd);  // array 32, big-endian count
  for (std::size_t i = 0; i < 4; ++i) {
    payload_[1 + i] = static_cast<char>((count_ >> (8 * (3 - i))) & 0xffU);
  }
  std::vector<field> fields;
  fields.reserve(3);
  fields.emplace_back(f_version, format_version);
  fields.emplace_back(f_kind, pack_kind);
  fields.emplace_back(f_answers, std::move(payload_));
  payload_.clear();
  count_ = 0;
  return fields;
}

namespace {

std::vector<result<answer_entry>> one_error(error problem) {
  std::vector<result<answer_entry>> out;
  out.emplace_back(std::move(problem));
  return out;
}

// A pack member's fields, pointing into `member`; invalid_argument when it is
// not an array of str/bin names and values.
result<std::vector<field_view>> member_fields(const msgpack::object& member, std::size_t index) {
  const std::string what = std::string(answers_field) + ": answer " + std::to_string(index);
  if (member.type != msgpack::type::ARRAY) {
    return invalid(what + ": " + std::string(msgpack_kind(member)) + ", expected an array");
  }
  const msgpack::object_array& items = member.via.array;
  if (items.size % 2 != 0 || items.size > 2 * max_entry_fields) {
    return invalid(what + ": " + std::to_string(items.size) +
                   " elements, expected names and values of at most " +
                   std::to_string(max_entry_fields) + " fields");
  }
  std::vector<field_view> fields;
  fields.reserve(items.size / 2);
  auto text = [](const msgpack::object& o) -> std::optional<std::string_view> {
    if (o.type == msgpack::type::STR) return std::string_view(o.via.str.ptr, o.via.str.size);
    if (o.type == msgpack::type::BIN) return std::string_view(o.via.bin.ptr, o.via.bin.size);
    return std::nullopt;
  };
  for (std::uint32_t i = 0; i + 1 < items.size; i += 2) {
    const std::optional<std::string_view> name = text(items.ptr[i]);
    const std::optional<std::string_view> value = text(items.ptr[i + 1]);
    if (!name || !value) {
      return invalid(what + ": element " + std::to_string(name ? i + 1 : i) + " is " +
                     std::string(msgpack_kind(name ? items.ptr[i + 1] : items.ptr[i])) +
                     ", expected a string");
    }
    fields.emplace_back(*name, *value);
  }
  return fields;
}

}  // namespace

std::vector<result<answer_entry>> parse_answers(std::span<const field_view> fields,
                                                const limits& bounds) {
  bool pack = false;
  for (const field_view& f : fields) pack = pack || (f.first == f_kind && f.second == pack_kind);
  if (!pack) {
    std::vector<result<answer_entry>> out;
    out.push_back(parse_answer(fields, bounds));
    return out;
  }
  try {
    field_table<3> table({f_version, f_kind, f_answers});
    if (std::optional<error> bad = check_entry_shape(pack_entry_name, fields, table, bounds)) {
      return one_error(std::move(*bad));
    }
    const std::optional<std::string_view> answers = table.get(f_answers);
    if (!answers) {
      return one_error(invalid(field_error(pack_entry_name, f_answers, "missing (the answers)")));
    }
    // The outer array, its members, their strings: three levels.
    result<msgpack::object_handle> object = unpack_untrusted(*answers, 3, answers_field);
    if (!object.ok()) return one_error(object.error());
    const msgpack::object& array = object->get();
    if (array.type != msgpack::type::ARRAY) {
      return one_error(invalid(std::string(answers_field) + ": " +
                               std::string(msgpack_kind(array)) + ", expected an array"));
    }
    if (array.via.array.size > max_pack_answers) {
      return one_error(invalid(std::string(answers_field) + ": " +
                               std::to_string(array.via.array.size) + " answers, more than " +
                               std::to_string(max_pack_answers)));
    }
    std::vector<result<answer_entry>> out;
    out.reserve(array.via.array.size);
    for (std::uint32_t i = 0; i < array.via.array.size; ++i) {
      result<std::vector<field_view>> member = member_fields(array.via.array.ptr[i], i);
      if (!member.ok()) {
        out.emplace_back(member.error());
      } else {
        out.push_back(parse_answer(*member, bounds));
      }
    }
    return out;
  } catch (const std::exception& e) {
    return one_error(invalid(std::string("answer pack: ") + e.what()));
  }
}

}  // namespace batch_serving::detail::wire
