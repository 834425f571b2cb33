// The entry formats of the Redis Streams transport (issue 12), independent of
// the Redis client: entries in and out are lists of (field, value) pairs, the
// way XADD writes and XREADGROUP returns them. This comment is the reference
// for the worker and the client.
//
// KEYS. All keys of serving NAME share the Redis Cluster hash tag {NAME}, so
// one serving lives on one shard and servings spread over shards:
//   bs:{NAME}:requests          request stream; consumer group "workers";
//                               an entry is deleted once acknowledged
//   bs:{NAME}:replies:CLIENT    answer stream of one client process
//   bs:{NAME}:worker:CONSUMER   a worker's heartbeat key (SET ... PX expiry)
//   bs:{NAME}:workers           sorted set of the live workers: member
//                               CONSUMER, score the time its heartbeat
//                               expires, in ms on Redis's own clock (TIME)
// NAME: 1..200 bytes, no '{', '}' (they would move the hash tag) and no
// control characters (bytes < 0x20, 0x7f); other bytes, UTF-8 included, are
// fine. CLIENT and CONSUMER: 1..64 bytes of [A-Za-z0-9._-]. A CLIENT id
// names one client process, never reused by a later one (e.g. host-pid-random):
// late answers to a dead process's calls must not match a new process's.
//
// REQUEST ENTRY (XADD bs:{NAME}:requests * ...), by a client:
//   v          "1", the format version
//   id         the call id "CLIENT/SEQ": CLIENT the client id, SEQ a decimal
//              number the client never reuses while its process lives
//   reply      the client's answer stream, "bs:{NAME}:replies:CLIENT", with
//              the CLIENT of the call id; a worker writes only to keys of that
//              form of its own serving, whatever an entry says
//   form       "one" (dispatch), "many" (dispatch_many), "stream_one"
//              (dispatch_stream), "stream_many" (dispatch_many_stream);
//              "one" and "stream_one" carry exactly one item
//   budget_us  only when the call has a deadline: the microseconds left when
//              the entry was written, decimal, 0 = expired. A remaining time,
//              never a timestamp: the machines' clocks differ. Saturates at
//              max_budget_us. A worker charges the time the entry waited in
//              the stream to it with Redis's clock alone (entry_id_ms,
//              budget_after_wait).
//   pack       optional: the client reads answer packs (below) of at most
//              this many bytes, decimal, at least min_entry_bytes. A worker
//              sends packs only to a client that says so: an older client,
//              or one that leaves it out, gets one answer entry per answer
//   items      a MessagePack array, one element per item (codec<In>)
//
// ANSWER ENTRY (XADD bs:{NAME}:replies:CLIENT * ...), by a worker:
//   v          "1"
//   id         the call id of the request
//   kind       plain calls: "results" or "error", one answer per call;
//              streams: "batch", "hook", "end" or "error" events
//   seq        stream events: 0, 1, 2, ... in the order the caller reads
//              them. An error ending a stream has one; an error answering a
//              plain call, or a request the worker could not read (whose form
//              it may not know), has none: a stream reader takes that as its
//              end too
//   attempt    stream events: which run of the call wrote the event, 1..64
//              bytes of [A-Za-z0-9._-], chosen by the worker when it starts
//              the call (its consumer id's random prefix and a counter). A
//              call whose worker died is run again from the start by another
//              worker, whose seq counts from 0 again and whose batches may be
//              cut differently: a client follows the first attempt it sees;
//              events of another attempt replace it while nothing of the first
//              was delivered, and end the stream with an unavailable error once
//              something was (the call may have run twice). Optional when
//              parsing (an event without one belongs to the attempt ""); a
//              worker always writes it
//   results    results and batch: a MessagePack array, one element per item
//              (codec<Out>), in the items' order. A stream_one call's single
//              result is a batch event of one element (the caller reads an
//              item event)
//   hook       hook: the hook's name
//   payload    hook: its MessagePack payload for the caller's items, an
//              array of one entry per item, each by codec<P> of the hook
//              payload type P the worker was attached with
//   payload_type hook, optional: the C++ name of P on the worker, at most
//              max_type_name_bytes, no control characters (for messages)
//   code       error: the errc name ("timeout", "execution_failed", ...)
//   message    error: the message, at most max_error_message_bytes
//
// ANSWER PACK (XADD bs:{NAME}:replies:CLIENT * ...), by a worker: several
// answer entries of one reply stream in one, so that the answers of one
// worker round trip cost the client one entry to read, not one each:
//   v          "1"
//   kind       "pack"
//   answers    a MessagePack array of answer entries in the order they were
//              written, each an array of its fields' names and values in turn
//              (name, value, name, value, ...; each a str or bin). Each is read
//              exactly as an entry of its own would be; one that is malformed
//              is dropped alone. A pack holds no pack
// A pack is at most the smaller of the client's `pack` and the worker's
// max_entry_bytes, like any entry counting its field names and values.
//
// PARSING trusts nothing: an entry larger than limits::max_entry_bytes (the
// sum of its field names and values), more than max_entry_fields fields, a
// field twice, a missing required field, another version, a malformed
// number, a reply key that is not the call's client's reply stream of this
// serving, an unknown kind, form or errc name, items or results that are not
// one complete MessagePack array of at most limits::max_items elements: each
// is its own invalid_argument error naming the field. Unknown fields are
// ignored (a later version 1 may add optional ones). A malformed request
// that still names a valid call id and its client's reply stream can be
// answered (`reply_to`); one that does not is skipped and counted. Encoding
// refuses the same things before anything is sent.
//
// Every function here is pure: thread-safe, never blocks, never throws
// (failures are returned), allocates only what it returns.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "batch_serving/codec.hpp"
#include "batch_serving/detail/msgpack_input.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving::detail::wire {

inline constexpr std::string_view format_version = "1";
inline constexpr std::string_view consumer_group = "workers";
inline constexpr std::size_t max_serving_name_bytes = 200;
inline constexpr std::size_t max_id_bytes = 64;  // client and consumer ids
inline constexpr std::size_t max_hook_name_bytes = 200;
inline constexpr std::size_t max_type_name_bytes = 512;
inline constexpr std::size_t max_entry_fields = 32;
inline constexpr std::size_t max_pack_answers = 1024;  // answers in one answer pack
// error_answer() cuts longer messages, so an error answer always fits.
inline constexpr std::size_t max_error_message_bytes = 8192;
// The largest budget: its nanoseconds still fit a signed 64-bit count (292 years).
inline constexpr std::uint64_t max_budget_us = 9'223'372'036'854'775ULL;

// Bounds on what one entry may hold, both ways. Validate with check_limits().
struct limits {
  std::size_t max_entry_bytes = std::size_t{1} << 20;  // at least min_entry_bytes
  std::size_t max_items = 65'536;  // items of a request, results of an answer
  std::size_t max_depth = default_max_depth;  // nesting inside one item (arrays, maps)
};
inline constexpr std::size_t min_entry_bytes = std::size_t{16} * 1024;

// nullopt, or invalid_argument naming the bad field.
[[nodiscard]] std::optional<error> check_limits(const limits& bounds);

using field_view = std::pair<std::string_view, std::string_view>;
using field = std::pair<std::string, std::string>;

// ---------------------------------------------------------------- keys and ids

// nullopt when valid, else invalid_argument saying why.
[[nodiscard]] std::optional<error> check_serving_name(std::string_view name);
[[nodiscard]] std::optional<error> check_client_id(std::string_view id);
[[nodiscard]] std::optional<error> check_consumer_id(std::string_view id);

// The keys of one serving. A value type; const members are thread-safe.
class serving_keys {
 public:
  // invalid_argument when check_serving_name(serving) fails.
  [[nodiscard]] static result<serving_keys> make(std::string_view serving);

  const std::string& serving() const noexcept { return serving_; }
  const std::string& request_stream() const noexcept { return request_stream_; }
  const std::string& workers_set() const noexcept { return workers_set_; }
  // "bs:{NAME}:replies:": every reply stream of this serving starts so.
  const std::string& reply_stream_prefix() const noexcept { return reply_prefix_; }

  [[nodiscard]] result<std::string> reply_stream(std::string_view client_id) const;
  [[nodiscard]] result<std::string> heartbeat_key(std::string_view consumer_id) const;
  // The client id of `key` when it is a reply stream of this serving.
  [[nodiscard]] std::optional<std::string_view> reply_stream_client(
      std::string_view key) const noexcept;

 private:
  explicit serving_keys(std::string_view serving);

  std::string serving_;
  std::string request_stream_;
  std::string workers_set_;
  std::string reply_prefix_;
  std::string heartbeat_prefix_;
};

struct call_id_parts {
  std::string_view client_id;
  std::uint64_t sequence = 0;
};
// "CLIENT/SEQ". Requires check_client_id(client_id) to pass.
[[nodiscard]] std::string make_call_id(std::string_view client_id, std::uint64_t sequence);
// The parts of a well-formed call id, else nullopt.
[[nodiscard]] std::optional<call_id_parts> parse_call_id(std::string_view call_id) noexcept;

// ---------------------------------------------------------------- time budgets

// The budget of a call whose deadline is `deadline`, seen at `now`: the
// microseconds left, rounded up (a live call never reads as expired),
// 0 when the deadline has passed, at most max_budget_us. Exact for every
// pair of time points (no overflow). Never blocks.
[[nodiscard]] std::uint64_t budget_until(std::chrono::steady_clock::time_point deadline,
                                         std::chrono::steady_clock::time_point now) noexcept;
// The local deadline of a budget received at `now`; time_point::max() rather
// than overflowing.
[[nodiscard]] std::chrono::steady_clock::time_point deadline_after(
    std::chrono::steady_clock::time_point now, std::uint64_t budget_us) noexcept;
// The milliseconds part of a Redis stream entry id "MS-SEQ" (Redis's clock
// when it added the entry), else nullopt. With Redis's TIME at read, a worker
// can charge the time an entry waited in the stream to its budget using one
// clock only: budget_after_wait(budget, added_ms, redis_now_ms).
[[nodiscard]] std::optional<std::uint64_t> entry_id_ms(std::string_view entry_id) noexcept;
[[nodiscard]] std::uint64_t budget_after_wait(std::uint64_t budget_us, std::uint64_t added_ms,
                                              std::uint64_t now_ms) noexcept;

// ---------------------------------------------------------------- requests

enum class call_form { one, many, stream_one, stream_many };
[[nodiscard]] std::string_view to_string(call_form form) noexcept;

struct request_entry {
  std::string call_id;
  std::string reply_stream;
  call_form form = call_form::one;
  std::optional<std::uint64_t> budget_us;  // nullopt: no deadline
  std::string items;  // MessagePack array (encode_items)
  std::size_t item_count = 0;  // set by parse_request
  // The largest answer pack the client reads; nullopt: it reads none.
  std::optional<std::size_t> pack_bytes;
};

// Where a worker sends the answer to a request.
struct reply_address {
  std::string reply_stream;
  std::string call_id;
};

struct parsed_request {
  // The request, or invalid_argument naming the field that is wrong.
  result<request_entry> request;
  // Set whenever the entry names a valid call id and its client's reply stream
  // of this serving, also when `request` is an error: answer that caller with
  // request.error(). Unset with an error: nobody to answer, skip the entry.
  std::optional<reply_address> reply_to;
};

// The fields of a request entry, checked as parse_request checks them
// (call id, reply stream of `keys`, form and item count, sizes). Allocates;
// never throws.
[[nodiscard]] result<std::vector<field>> encode_request(const serving_keys& keys,
                                                        request_entry request,
                                                        const limits& bounds);
[[nodiscard]] parsed_request parse_request(const serving_keys& keys,
                                           std::span<const field_view> fields,
                                           const limits& bounds);

// ---------------------------------------------------------------- answers

enum class answer_kind { results, error, batch, hook, end };
[[nodiscard]] std::string_view to_string(answer_kind kind) noexcept;

struct answer_entry {
  std::string call_id;
  answer_kind kind = answer_kind::results;
  std::optional<std::uint64_t> seq;  // stream events (see the top of this file)
  std::string attempt;  // stream events: the run of the call that wrote it
  std::string results;  // results, batch: MessagePack array
  std::size_t result_count = 0;  // set by parse_answer
  std::string hook_name;  // hook
  std::string hook_payload;  // hook: one MessagePack value
  std::string payload_type;  // hook: the payload's C++ type on the worker (may be empty)
  errc error_code = errc::execution_failed;  // error
  std::string error_message;  // error
};

// An error answer (a plain call's when seq is unset, else the event ending a
// stream); the message is cut to max_error_message_bytes.
[[nodiscard]] answer_entry error_answer(std::string call_id, const error& failure,
                                        std::optional<std::uint64_t> seq = std::nullopt);
[[nodiscard]] answer_entry hook_event(std::string call_id, std::uint64_t seq, std::string hook,
                                      std::string payload);
[[nodiscard]] answer_entry end_event(std::string call_id, std::uint64_t seq);

[[nodiscard]] result<std::vector<field>> encode_answer(answer_entry answer, const limits& bounds);
[[nodiscard]] result<answer_entry> parse_answer(std::span<const field_view> fields,
                                                const limits& bounds);

// Builds one answer pack from encoded answers (encode_answer's fields), in
// the order they are added. Not thread-safe; allocates.
class answer_pack {
 public:
  // A pack whose entry stays within max_bytes (names and values counted).
  explicit answer_pack(std::size_t max_bytes);

  // Adds `answer` when the pack still has room for it, else returns false and
  // adds nothing (an empty pack refuses only an answer too large for it).
  [[nodiscard]] bool add(std::span<const field> answer);
  std::size_t size() const noexcept { return count_; }

  // The pack's entry fields; the pack is empty again afterwards.
  [[nodiscard]] std::vector<field> take();

 private:
  std::size_t max_payload_;
  std::size_t count_ = 0;
  std::string payload_;
};

// The answers one entry of a reply stream carries, in order: an answer entry
// gives one (parse_answer's result), a pack its members, each parsed as an
// entry of its own (one that is malformed is an error in its place; the others
// still count). A pack that cannot be read at all gives one error. Never
// throws.
[[nodiscard]] std::vector<result<answer_entry>> parse_answers(std::span<const field_view> fields,
                                                              const limits& bounds);

// The errc named `name` ("timeout"), else nullopt.
[[nodiscard]] std::optional<errc> errc_from_string(std::string_view name) noexcept;

// ---------------------------------------------------------------- typed payloads

// invalid_argument "WHAT: COUNT elements, more than max_items ..." and the like;
// the outline of a MessagePack array of at most bounds.max_items elements.
[[nodiscard]] result<msgpack_outline> inspect_array(std::string_view bytes, const limits& bounds,
                                                    std::string_view what);

// `values` as one MessagePack array (each element by codec<T>), at most
// bounds.max_items elements and bounds.max_entry_bytes bytes. An exception
// from a codec becomes invalid_argument "ELEMENT N: cannot encode ...".
// Never throws; allocates.
template <encodable T>
[[nodiscard]] result<std::string> encode_items(std::span<const T> values, const limits& bounds,
                                               std::string_view what = "items",
                                               std::string_view element = "item") {
  if (values.size() > bounds.max_items) {
    return error(errc::invalid_argument, std::string(what) + ": " + std::to_string(values.size()) +
                                             " elements, more than max_items " +
                                             std::to_string(bounds.max_items));
  }
  std::size_t at = 0;
  try {
    msgpack_buffer buffer;
    msgpack_packer out(buffer);
    out.pack_array(static_cast<std::uint32_t>(values.size()));
    for (; at < values.size(); ++at) {
      codec<T>::encode(out, values[at]);
      if (buffer.size() > bounds.max_entry_bytes) break;
    }
    if (buffer.size() > bounds.max_entry_bytes) {
      return error(errc::invalid_argument, std::string(what) + ": more than max_entry_bytes " +
                                               std::to_string(bounds.max_entry_bytes) +
                                               " bytes encoded (at " + std::string(element) + " " +
                                               std::to_string(at) + " of " +
                                               std::to_string(values.size()) + ")");
    }
    return std::string(buffer.data(), buffer.size());
  } catch (const std::exception& e) {
    return error(errc::invalid_argument, std::string(element) + " " + std::to_string(at) +
                                             ": cannot encode a " + type_name(typeid(T)) + ": " +
                                             e.what());
  }
}

// The elements of the MessagePack array `bytes` as T, checked against
// `expected_count` when given. Errors are invalid_argument naming the array
// or the element ("item 3: expected std::string, got a non-negative
// integer"; "results: 2 elements, expected 3"). Never throws; allocates.
template <encodable T>
[[nodiscard]] result<std::vector<T>> decode_items(
    std::string_view bytes, const limits& bounds,
    std::optional<std::size_t> expected_count = std::nullopt, std::string_view what = "items",
    std::string_view element = "item") {
  result<msgpack_outline> outline = inspect_array(bytes, bounds, what);
  if (!outline.ok()) return outline.error();
  if (expected_count && outline->size != *expected_count) {
    return error(errc::invalid_argument, std::string(what) + ": " + std::to_string(outline->size) +
                                             " elements, expected " +
                                             std::to_string(*expected_count));
  }
  result<msgpack::object_handle> object = unpack_untrusted(bytes, bounds.max_depth + 1, what);
  if (!object.ok()) return object.error();
  try {
    const msgpack::object_array& array = object->get().via.array;
    std::vector<T> values;
    values.reserve(array.size);
    for (std::uint32_t i = 0; i < array.size; ++i) {
      result<T> value =
          decode_object<T>(array.ptr[i], std::string(element) + " " + std::to_string(i));
      if (!value.ok()) return value.error();
      values.push_back(std::move(*value));
    }
    return values;
  } catch (const std::exception& e) {
    return error(errc::invalid_argument, std::string(what) + ": " + e.what());
  }
}

// A plain call's answer as its results: an error answer gives its error, a
// results answer its elements (checked against expected_count); any other
// kind is invalid_argument. Never throws.
template <encodable T>
[[nodiscard]] result<std::vector<T>> decode_results(
    const answer_entry& answer, const limits& bounds,
    std::optional<std::size_t> expected_count = std::nullopt) {
  switch (answer.kind) {
    case answer_kind::error: return error(answer.error_code, answer.error_message);
    case answer_kind::results:
    case answer_kind::batch:
      return decode_items<T>(answer.results, bounds, expected_count, "results", "result");
    case answer_kind::hook:
    case answer_kind::end: break;
  }
  return error(errc::invalid_argument,
               "answer: a " + std::string(to_string(answer.kind)) + " event carries no results");
}

// A results answer (seq unset) or a batch event (seq set) carrying `values`.
template <encodable T>
[[nodiscard]] result<answer_entry> results_answer(std::string call_id, std::span<const T> values,
                                                  const limits& bounds,
                                                  std::optional<std::uint64_t> seq = std::nullopt) {
  result<std::string> bytes = encode_items(values, bounds, "results", "result");
  if (!bytes.ok()) return bytes.error();
  answer_entry answer;
  answer.call_id = std::move(call_id);
  answer.kind = seq ? answer_kind::batch : answer_kind::results;
  answer.seq = seq;
  answer.results = std::move(*bytes);
  answer.result_count = values.size();
  return answer;
}

}  // namespace batch_serving::detail::wire
