// redis_worker's untyped part (include/batch_serving/redis_worker.hpp has the
// behaviour, detail/wire.hpp the formats).
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <initializer_list>
#include <memory>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "batch_serving/detail/mutex.hpp"
#include "batch_serving/detail/reconnect_backoff.hpp"
#include "batch_serving/detail/redis_connection.hpp"
#include "batch_serving/detail/redis_worker_core.hpp"
#include "batch_serving/detail/thread_annotations.hpp"
#include "batch_serving/detail/wire.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/redis_worker_options.hpp"
#include "batch_serving/redis_worker_stats.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving::detail {
namespace {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

static_assert(static_cast<std::size_t>(errc::unavailable) <
                  redis_worker_stats{}.answered_errors.size(),
              "redis_worker_stats::answered_errors has a slot per errc");

// The most answers one writer round trip carries, and the most entries one
// claim script moves (Lua's unpack() has a stack limit of a few thousand).
constexpr std::size_t max_answers_per_round_trip = 512;
constexpr std::size_t max_claim_count = 4096;

// KEYS[1] the live-workers set, KEYS[2] the heartbeat key; ARGV[1] the
// consumer id, ARGV[2] the expiry in ms. Scores the member with the time its
// heartbeat expires on Redis's clock; returns Redis's now (ms).
constexpr std::string_view heartbeat_script = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + expiry, ARGV[1])
redis.call('SET', KEYS[2], now + expiry, 'PX', expiry)
return now
)lua";

// KEYS[1] the live-workers set, KEYS[2] the request stream; ARGV[1] this
// consumer, ARGV[2] the most entries to claim, ARGV[3] how long (ms) a
// consumer that is not in the set at all must have been idle to count as
// dead. The dead: members of the set whose heartbeat expired, and consumers
// of the group that are not in the set and have not touched the group
// (read, claimed) for that long. Their pending
// entries move to ARGV[1] (XCLAIM, min idle 0: a dead worker is not slow);
// a dead worker with nothing pending leaves the set and the group. One
// script, so two workers never claim the same entry: the second finds the
// dead worker's pending list empty. Returns {now, claimed entries (as
// XCLAIM gives them), workers removed}.
constexpr std::string_view claim_script = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me = ARGV[1]
local budget = tonumber(ARGV[2])
local orphan_idle = tonumber(ARGV[3])
local consumers = redis.pcall('XINFO', 'CONSUMERS', KEYS[2], 'workers')
if type(consumers) ~= 'table' or consumers.err then return {now, {}, 0} end
local dead = {}
local seen = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)) do
  if member ~= me then
    dead[#dead + 1] = member
    seen[member] = true
  end
end
for _, c in ipairs(consumers) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  local name = info['name']
  if name and name ~= me and not seen[name] and (tonumber(info['idle']) or 0) >= orphan_idle and
      not redis.call('ZSCORE', KEYS[1], name) then
    dead[#dead + 1] = name
    seen[name] = true
  end
end
local claimed = {}
local removed = 0
for _, d in ipairs(dead) do
  if budget <= 0 then break end
  local pending = redis.call('XPENDING', KEYS[2], 'workers', '-', '+', budget, d)
  if #pending == 0 then
    redis.call('ZREM', KEYS[1], d)
    redis.call('XGROUP', 'DELCONSUMER', KEYS[2], 'workers', d)
    removed = removed + 1
  else
    local ids = {}
    for i, p in ipairs(pending) do ids[i] = p[1] end
    local entries = redis.call('XCLAIM', KEYS[2], 'workers', me, 0, unpack(ids))
    for _, e in ipairs(entries) do claimed[#claimed + 1] = e end
    budget = budget - #ids
  end
end
return {now, claimed, removed}
)lua";

// KEYS[1] the live-workers set, KEYS[2] the request stream, KEYS[3] the
// heartbeat key; ARGV[1] this consumer. With nothing pending: leaves the set
// and the group (returns 0). With entries still pending (answers that could
// not be written in time): marks the heartbeat expired so that others claim
// them at once (returns 1).
constexpr std::string_view goodbye_script = R"lua(
redis.call('DEL', KEYS[3])
local pending = redis.pcall('XPENDING', KEYS[2], 'workers', '-', '+', 1, ARGV[1])
local readable = type(pending) == 'table' and not pending.err
if readable and #pending > 0 then
  redis.call('ZADD', KEYS[1], 0, ARGV[1])
  return 1
end
redis.call('ZREM', KEYS[1], ARGV[1])
if readable then redis.pcall('XGROUP', 'DELCONSUMER', KEYS[2], 'workers', ARGV[1]) end
return 0
)lua";

std::string ms_text(milliseconds d) { return std::to_string(d.count()) + " ms"; }

serving_error bad_option(const std::string& what) {
  return serving_error(errc::invalid_argument, "redis_worker_options." + what);
}

void validate(const redis_worker_options& o) {
  if (std::optional<error> bad = o.endpoint.validate()) throw serving_error(*bad);
  if (std::optional<error> bad = wire::check_limits(o.limits)) throw serving_error(*bad);
  if (o.block_time <= milliseconds(0)) {
    throw bad_option("block_time must be more than 0 (got " + ms_text(o.block_time) + ")");
  }
  if (o.heartbeat_interval <= milliseconds(0)) {
    throw bad_option("heartbeat_interval must be more than 0 (got " +
                     ms_text(o.heartbeat_interval) + ")");
  }
  if (o.heartbeat_expiry <= o.heartbeat_interval) {
    throw bad_option("heartbeat_expiry must exceed heartbeat_interval (got " +
                     ms_text(o.heartbeat_expiry) + " and " + ms_text(o.heartbeat_interval) + ")");
  }
  if (o.claim_interval <= milliseconds(0)) {
    throw bad_option("claim_interval must be more than 0 (got " + ms_text(o.claim_interval) + ")");
  }
  if (o.claim_count == 0 || o.claim_count > max_claim_count) {
    throw bad_option("claim_count must be in 1.." + std::to_string(max_claim_count) + " (got " +
                     std::to_string(o.claim_count) + ")");
  }
  if (o.shutdown_timeout < milliseconds(0)) {
    throw bad_option("shutdown_timeout must not be negative (got " + ms_text(o.shutdown_timeout) +
                     ")");
  }
  reconnect_backoff check(o.reconnect);  // throws naming the field
}

// "HOST-PID-RANDOM", HOST cut to 32 bytes of [A-Za-z0-9._-].
std::string generated_consumer_id() {
  std::array<char, 256> host{};
  std::string id;
  if (::gethostname(host.data(), host.size() - 1) == 0) {
    for (const char* c = host.data(); *c != '\0' && id.size() < 32; ++c) {
      const bool plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                         (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-';
      id.push_back(plain ? *c : '_');
    }
  }
  if (id.empty()) id = "worker";
  std::random_device entropy;
  const std::uint64_t random = (static_cast<std::uint64_t>(entropy()) << 32U) ^ entropy();
  std::array<char, 17> hex{};
  const auto end = std::to_chars(hex.data(), hex.data() + 16, random, 16).ptr;
  id += "-" + std::to_string(::getpid()) + "-" + std::string(hex.data(), end);
  return id;
}

std::optional<std::uint64_t> decimal(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// TIME's reply: [seconds, microseconds] as ms; nullopt when it is not that.
std::optional<std::uint64_t> time_ms(redis_reply_view reply) {
  if (!reply.is_array() || reply.size() != 2) return std::nullopt;
  const std::optional<std::uint64_t> seconds = decimal(reply[0].text());
  const std::optional<std::uint64_t> micros = decimal(reply[1].text());
  if (!seconds || !micros) return std::nullopt;
  return *seconds * 1000 + *micros / 1000;
}

// The Redis error reply `reply` as an error saying what failed.
error reply_error(std::string_view what, redis_reply_view reply) {
  return error(errc::unavailable, std::string(what) + " failed: " + reply.describe());
}

}  // namespace

// ---------------------------------------------------------------- shared state

namespace {

std::string random_attempt_prefix() {
  std::random_device entropy;
  const std::uint64_t random = (std::uint64_t{entropy()} << 32U) ^ entropy();
  std::string hex(16, '0');
  for (std::size_t i = 0; i < hex.size(); ++i) {
    hex[i] = "0123456789abcdef"[(random >> (4 * (15 - i))) & 0xfU];
  }
  return hex;
}

}  // namespace

// One answer (or bare acknowledgement) on its way to Redis.
struct outgoing {
  std::string entry_id;
  std::string reply_stream;  // empty: acknowledge only (nobody to answer)
  std::vector<wire::field> fields;
  std::optional<errc> code;  // an error answer's code; unset: results (or none)
  // False for a stream event before the final one: written, not acknowledged.
  bool final = true;
  // The largest answer pack its client reads; 0: none (an entry of its own).
  std::size_t pack_bytes = 0;
};

// What the worker's threads, its completion callbacks (through
// worker_reply) and stop() share. Held by shared_ptr: a callback of the
// local server that fires after the worker gave up on it still finds it.
struct worker_state {
  worker_state(wire::serving_keys k, redis_worker_options o, std::string consumer_id,
               std::string heartbeat)
      : keys(std::move(k)),
        options(std::move(o)),
        consumer(std::move(consumer_id)),
        heartbeat_key(std::move(heartbeat)) {}

  const wire::serving_keys keys;
  const redis_worker_options options;
  const std::string consumer;
  const std::string heartbeat_key;
  // Attempt ids of streaming calls (wire.hpp): this prefix, random per
  // worker instance (a restarted worker with the same consumer id gets
  // another), and a counter.
  const std::string attempt_prefix = random_attempt_prefix();
  std::atomic<std::uint64_t> attempts_started{0};

  // Queues `out` for the writer; `items` leave the in-flight count.
  void enqueue(outgoing out, std::size_t items) {
    {
      lock_guard<mutex> lock(mu);
      queue.push_back(std::move(out));
      in_flight_items -= std::min(items, in_flight_items);
    }
    changed.notify_all();
  }

  // Wakes every waiter on `changed` after a stop request, without losing
  // the wake-up: a waiter checks its stop token with mu held.
  void wake_all() {
    { lock_guard<mutex> lock(mu); }
    changed.notify_all();
  }

  mutex mu;
  // Notified when the queue grows, entries leave `held` or the in-flight
  // count drops, and on stop requests.
  std::condition_variable changed;
  std::deque<outgoing> queue BATCH_SERVING_GUARDED_BY(mu);
  // Entries taken (read or claimed) and not yet acknowledged: an entry read
  // again (the worker's own pending entries after a reconnect) is not run
  // twice.
  std::unordered_set<std::string> held BATCH_SERVING_GUARDED_BY(mu);
  // The entries acknowledged last, oldest first (at most
  // recently_acked_limit): a read of the worker's own pending entries
  // answered by Redis just before an acknowledgement may be handled just
  // after it, when the entry is no longer held; it must not run again.
  std::deque<std::string> recently_acked BATCH_SERVING_GUARDED_BY(mu);
  std::unordered_set<std::string> recently_acked_set BATCH_SERVING_GUARDED_BY(mu);
  static constexpr std::size_t recently_acked_limit = 4096;

  void acknowledged(std::string entry_id) BATCH_SERVING_REQUIRES(mu) {
    held.erase(entry_id);
    if (!recently_acked_set.insert(entry_id).second) return;
    recently_acked.push_back(std::move(entry_id));
    if (recently_acked.size() > recently_acked_limit) {
      recently_acked_set.erase(recently_acked.front());
      recently_acked.pop_front();
    }
  }
  // Items dispatched to the local server and not yet answered.
  std::size_t in_flight_items BATCH_SERVING_GUARDED_BY(mu) = 0;

  // Counters (redis_worker_stats). Each is exact on its own; the snapshot
  // is not a cut. Release increments and acquire loads: a reader that sees
  // a count also sees the counts bumped before it (an answer's is bumped
  // before its entry's acknowledgement).
  std::atomic<std::uint64_t> entries_read{0};
  std::atomic<std::uint64_t> entries_claimed{0};
  std::atomic<std::uint64_t> entries_recovered{0};
  std::atomic<std::uint64_t> calls_dispatched{0};
  std::atomic<std::uint64_t> answered_results{0};
  std::array<std::atomic<std::uint64_t>, 9> answered_errors{};
  std::atomic<std::uint64_t> skipped_malformed{0};
  std::atomic<std::uint64_t> entries_acked{0};
  std::atomic<std::uint64_t> answers_refused{0};
  std::atomic<std::uint64_t> dead_workers_removed{0};
  std::atomic<std::uint64_t> reconnects{0};
};

namespace {

void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) {
  counter.fetch_add(by, std::memory_order_release);
}

}  // namespace

// ---------------------------------------------------------------- worker_reply

worker_reply::worker_reply(std::shared_ptr<worker_state> state, std::string entry_id,
                           std::string call_id, std::string reply_stream, std::size_t items,
                           std::optional<std::string> attempt) noexcept
    : state_(std::move(state)),
      entry_id_(std::move(entry_id)),
      call_id_(std::move(call_id)),
      reply_stream_(std::move(reply_stream)),
      items_(items),
      attempt_(std::move(attempt)) {}

worker_reply& worker_reply::operator=(worker_reply&& other) noexcept {
  if (this != &other) {
    if (state_) fail(error(errc::execution_failed, "the worker dropped the call unanswered"));
    state_ = std::move(other.state_);
    entry_id_ = std::move(other.entry_id_);
    call_id_ = std::move(other.call_id_);
    reply_stream_ = std::move(other.reply_stream_);
    items_ = other.items_;
    attempt_ = std::move(other.attempt_);
    next_seq_ = other.next_seq_;
    pack_bytes_ = other.pack_bytes_;
  }
  return *this;
}

worker_reply::~worker_reply() {
  if (state_) {
    fail(error(errc::execution_failed, "the local server dropped the call without answering it"));
  }
}

void worker_reply::results(result<wire::answer_entry> answer) noexcept {
  if (!state_) return;
  if (!answer.ok()) {
    fail(error(errc::execution_failed,
               "the results cannot be sent back: " + answer.error().message()));
    return;
  }
  send(std::move(*answer));
}

void worker_reply::fail(const error& failure) noexcept {
  if (!state_) return;
  try {
    if (attempt_) {
      send(wire::error_answer(call_id_, failure, next_seq_));
    } else {
      send(wire::error_answer(call_id_, failure));
    }
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory, see send()
  }
}

void worker_reply::end() noexcept {
  if (!state_) return;
  try {
    send(wire::end_event(call_id_, next_seq_));
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory, see send()
  }
}

void worker_reply::event(result<wire::answer_entry> ev) noexcept {
  if (!state_) return;
  if (!attempt_) {
    fail(error(errc::execution_failed, "a stream event for a call that is not streaming"));
    return;
  }
  if (!ev.ok()) {
    fail(error(errc::execution_failed, "the event cannot be sent back: " + ev.error().message()));
    return;
  }
  ev->call_id = call_id_;
  enqueue(std::move(*ev), false);
}

void worker_reply::send(wire::answer_entry answer) noexcept { enqueue(std::move(answer), true); }

void worker_reply::enqueue(wire::answer_entry answer, bool final) noexcept {
  std::shared_ptr<worker_state> state = final ? std::move(state_) : state_;
  if (!state) return;
  try {
    std::optional<errc> code;
    if (answer.kind == wire::answer_kind::error) code = answer.error_code;
    if (attempt_) {
      answer.seq = next_seq_;
      answer.attempt = *attempt_;
    }
    result<std::vector<wire::field>> fields =
        wire::encode_answer(std::move(answer), state->options.limits);
    if (!fields.ok()) {
      // Too large for the limits: say so instead (an error answer always fits).
      if (!final) {
        fail(error(errc::execution_failed,
                   "the event cannot be sent back: " + fields.error().message()));
        return;
      }
      code = errc::execution_failed;
      wire::answer_entry instead =
          wire::error_answer(call_id_,
                             error(errc::execution_failed,
                                   "the results cannot be sent back: " + fields.error().message()),
                             attempt_ ? std::optional<std::uint64_t>(next_seq_) : std::nullopt);
      if (attempt_) instead.attempt = *attempt_;
      fields = wire::encode_answer(std::move(instead), state->options.limits);
    }
    ++next_seq_;
    outgoing out{.entry_id = final ? std::move(entry_id_) : entry_id_,
                 .reply_stream = final ? std::move(reply_stream_) : reply_stream_,
                 .fields = fields.ok() ? std::move(*fields) : std::vector<wire::field>{},
                 .code = code,
                 .final = final,
                 .pack_bytes = std::min(pack_bytes_, state->options.limits.max_entry_bytes)};
    if (out.fields.empty()) out.reply_stream.clear();  // cannot happen: acknowledge at least
    state->enqueue(std::move(out), final ? items_ : 0);
  } catch (...) {  // NOLINT(bugprone-empty-catch)
    // Out of memory: the entry stays pending in Redis (held by this worker
    // until it dies or restarts; then it is claimed or read again).
  }
}

// ---------------------------------------------------------------- connections

namespace {

// A thread's connection, which stop() may interrupt from another thread.
// Only the owning thread replaces the connection (under mu_) and uses it
// (without mu_: interrupt() is the one member redis_connection lets another
// thread call meanwhile, and it is only called under mu_, so never during a
// replacement).
class connection_slot {
 public:
  explicit connection_slot(redis_connection connection) : connection_(std::move(connection)) {}

  // The owning thread's connection. The owner is the only thread that
  // replaces it, so its own unlocked reads race with nothing.
  redis_connection& get() BATCH_SERVING_NO_THREAD_SAFETY_ANALYSIS { return connection_; }

  // Owner thread only.
  void replace(redis_connection connection) {
    lock_guard<mutex> lock(mu_);
    connection_ = std::move(connection);
    if (closed_) connection_.interrupt();
  }

  // Any thread: wakes the owner's blocked command, and every later one fails
  // at once (the owner then sees its stop request). Never blocks long.
  void close() {
    lock_guard<mutex> lock(mu_);
    closed_ = true;
    connection_.interrupt();
  }

 private:
  mutex mu_;
  redis_connection connection_ BATCH_SERVING_GUARDED_BY(mu_);
  bool closed_ BATCH_SERVING_GUARDED_BY(mu_) = false;
};

// Connects again, waiting with `backoff` before each attempt, until it works
// (true) or `stop` is requested (false). Credentials that Redis now refuses
// are retried too: a worker does not give up on its own.
bool reconnect(worker_state& s, connection_slot& slot, reconnect_backoff& backoff,
               const std::stop_token& stop) {
  while (!stop.stop_requested()) {
    if (!backoff.wait(stop)) return false;
    result<redis_connection> fresh = redis_connection::connect(s.options.endpoint);
    if (fresh.ok()) {
      slot.replace(std::move(*fresh));
      backoff.reset();
      bump(s.reconnects);
      return true;
    }
  }
  return false;
}

// XGROUP CREATE at id 0 (entries written before any worker existed are
// served); an existing group is fine. A Redis error reply other than
// BUSYGROUP is returned; an I/O failure breaks the connection (returned too).
std::optional<error> create_group(worker_state& s, redis_connection& conn) {
  result<redis_reply> reply = conn.command({"XGROUP", "CREATE", s.keys.request_stream(),
                                            wire::consumer_group, "0", "MKSTREAM"});
  if (!reply.ok()) return reply.error();
  if (reply->is_error() && reply->error_code() != "BUSYGROUP") {
    return error(errc::invalid_argument, "cannot create the consumer group of " +
                                             s.keys.request_stream() + ": " + reply->describe());
  }
  return std::nullopt;
}

// The heartbeat script; Redis's now (ms) on success.
result<std::uint64_t> heartbeat(worker_state& s, redis_connection& conn) {
  const std::string expiry = std::to_string(s.options.heartbeat_expiry.count());
  result<redis_reply> reply = conn.command({"EVAL", heartbeat_script, "2", s.keys.workers_set(),
                                            s.heartbeat_key, s.consumer, expiry});
  if (!reply.ok()) return reply.error();
  if (reply->kind() != redis_reply_kind::integer) return reply_error("the heartbeat", *reply);
  return static_cast<std::uint64_t>(reply->integer());
}

// ---------------------------------------------------------------- entries

// Takes one request entry (read or claimed) and starts its answer: an error
// answer at once, or a dispatch to the local server.
void handle_entry(const std::shared_ptr<worker_state>& shared, worker_dispatcher& dispatcher,
                  std::string_view entry_id, redis_reply_view fields, std::uint64_t redis_now_ms,
                  steady::time_point local_now) {
  worker_state& s = *shared;
  {
    lock_guard<mutex> lock(s.mu);
    if (s.recently_acked_set.count(std::string(entry_id)) != 0) return;  // answered already
    if (!s.held.insert(std::string(entry_id)).second) return;           // in flight already
  }
  auto acknowledge_only = [&] {
    bump(s.skipped_malformed);
    s.enqueue(outgoing{.entry_id = std::string(entry_id),
                       .reply_stream = {},
                       .fields = {},
                       .code = std::nullopt},
              0);
  };
  if (!fields.is_array()) {  // the entry was deleted while pending: nothing to read
    acknowledge_only();
    return;
  }
  std::vector<wire::field_view> views;
  views.reserve(fields.size() / 2);
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
    views.emplace_back(fields[i].text(), fields[i + 1].text());
  }
  wire::parsed_request parsed = wire::parse_request(s.keys, views, s.options.limits);
  if (!parsed.request.ok()) {
    if (!parsed.reply_to) {
      acknowledge_only();
      return;
    }
    worker_reply(shared, std::string(entry_id), std::move(parsed.reply_to->call_id),
                 std::move(parsed.reply_to->reply_stream), 0)
        .fail(parsed.request.error());
    return;
  }
  wire::request_entry& request = *parsed.request;
  auto answer_now = [&](const error& failure) {
    worker_reply(shared, std::string(entry_id), request.call_id, request.reply_stream, 0)
        .fail(failure);
  };
  const bool stream_form =
      request.form == wire::call_form::stream_one || request.form == wire::call_form::stream_many;
  if (stream_form != dispatcher.streaming()) {
    answer_now(error(errc::invalid_argument,
                     dispatcher.streaming()
                         ? "serving '" + s.keys.serving() +
                               "' is a streaming serving on this worker: call it with "
                               "dispatch_stream or dispatch_many_stream (form " +
                               std::string(wire::to_string(request.form)) + ")"
                         : "serving '" + s.keys.serving() +
                               "' is not a streaming serving on this worker: call it with "
                               "dispatch or dispatch_many (form " +
                               std::string(wire::to_string(request.form)) + ")"));
    return;
  }
  steady::time_point deadline = steady::time_point::max();
  if (request.budget_us) {
    const std::uint64_t added_ms = wire::entry_id_ms(entry_id).value_or(redis_now_ms);
    const std::uint64_t left = wire::budget_after_wait(*request.budget_us, added_ms, redis_now_ms);
    if (left == 0) {
      const std::uint64_t waited_ms = redis_now_ms - std::min(redis_now_ms, added_ms);
      answer_now(error(errc::timeout,
                       "the call's deadline passed before a worker took it (budget " +
                           std::to_string(*request.budget_us) + " us, waited " +
                           std::to_string(waited_ms) + " ms in Redis)"));
      return;
    }
    deadline = wire::deadline_after(local_now, left);
  }
  {
    lock_guard<mutex> lock(s.mu);
    s.in_flight_items += request.item_count;
  }
  bump(s.calls_dispatched);
  std::optional<std::string> attempt;
  if (stream_form) {
    attempt = s.attempt_prefix + "." +
              std::to_string(s.attempts_started.fetch_add(1, std::memory_order_relaxed));
  }
  worker_reply reply(shared, std::string(entry_id), request.call_id, request.reply_stream,
                     request.item_count, std::move(attempt));
  if (request.pack_bytes) reply.allow_packs(*request.pack_bytes);
  dispatcher.dispatch(request, deadline, std::move(reply));
}

// The entries of an XREADGROUP / XCLAIM reply: [[id, [f, v, ...]], ...].
template <class Each>
void for_each_entry(redis_reply_view entries, Each&& each) {
  if (!entries.is_array()) return;
  for (redis_reply_view entry : entries) {
    if (!entry.is_array() || entry.size() != 2) continue;
    each(entry[0].text(), entry[1]);
  }
}

}  // namespace

// ---------------------------------------------------------------- threads

struct redis_worker_core::threads {
  threads(redis_connection reader_conn, redis_connection writer_conn, redis_connection keeper_conn)
      : reader_slot(std::move(reader_conn)),
        writer_slot(std::move(writer_conn)),
        keeper_slot(std::move(keeper_conn)) {}

  connection_slot reader_slot;
  connection_slot writer_slot;
  connection_slot keeper_slot;
  std::stop_source reading;  // the reader, and the keeper's claiming
  std::stop_source writing;  // the writer
  std::stop_source keeping;  // the keeper (heartbeat, then goodbye)
  std::thread reader;
  std::thread writer;
  std::thread keeper;

  mutex done_mu;
  std::condition_variable done_cv;
  bool reader_done BATCH_SERVING_GUARDED_BY(done_mu) = false;
  bool writer_done BATCH_SERVING_GUARDED_BY(done_mu) = false;
  bool keeper_done BATCH_SERVING_GUARDED_BY(done_mu) = false;

  mutex stop_mu;  // held through stop(): a second caller waits for the first
  bool stopped BATCH_SERVING_GUARDED_BY(stop_mu) = false;

  void mark_done(bool threads::*flag) {
    {
      lock_guard<mutex> lock(done_mu);
      this->*flag = true;  // NOLINT: the analysis cannot see through a member pointer
    }
    done_cv.notify_all();
  }
  // Waits until *flag or `deadline`; whether the thread finished.
  bool wait_done(bool threads::*flag, steady::time_point deadline)
      BATCH_SERVING_NO_THREAD_SAFETY_ANALYSIS {  // member pointers to guarded flags
    unique_lock lock(done_mu);
    while (!(this->*flag)) {
      if (done_cv.wait_until(lock.native(), deadline) == std::cv_status::timeout) {
        return this->*flag;
      }
    }
    return true;
  }
};

namespace {

// The reader thread: XREADGROUP and TIME in one round trip, each entry
// handled (dispatched, never waited for). After every (re)connect it first
// reads the worker's own pending entries ("0" onwards), whose delivery may
// have been lost with the previous connection.
void run_reader(const std::shared_ptr<worker_state>& shared, worker_dispatcher& dispatcher,
                connection_slot& slot, const std::stop_token& stop) {
  worker_state& s = *shared;
  reconnect_backoff backoff(s.options.reconnect);
  const std::size_t max_in_flight = s.options.max_in_flight_items != 0
                                        ? s.options.max_in_flight_items
                                        : std::max<std::size_t>(1, 2 * dispatcher.capacity());
  const std::string block = std::to_string(s.options.block_time.count());
  bool recovering = true;
  std::string history_from = "0";
  while (!stop.stop_requested()) {
    redis_connection& conn = slot.get();
    if (conn.broken()) {
      if (!reconnect(s, slot, backoff, stop)) break;
      recovering = true;
      history_from = "0";
      continue;
    }
    std::size_t count = s.options.claim_count;
    if (!recovering) {
      unique_lock lock(s.mu);
      const steady::time_point until = steady::now() + s.options.block_time;
      while (s.in_flight_items >= max_in_flight && !stop.stop_requested() &&
             s.changed.wait_until(lock.native(), until) == std::cv_status::no_timeout) {
      }
      if (s.in_flight_items >= max_in_flight) continue;  // still busy: look again
      count = s.options.read_count != 0 ? s.options.read_count : max_in_flight - s.in_flight_items;
    }
    if (stop.stop_requested()) break;
    const std::string count_text = std::to_string(count);
    conn.append({"XREADGROUP", "GROUP", wire::consumer_group, s.consumer, "COUNT", count_text,
                 "BLOCK", block, "STREAMS", s.keys.request_stream(),
                 recovering ? std::string_view(history_from) : std::string_view(">")});
    conn.append({"TIME"});
    result<std::vector<redis_reply>> replies = conn.read_replies(s.options.block_time);
    if (!replies.ok()) continue;  // broken: reconnect above
    const steady::time_point local_now = steady::now();
    const redis_reply& read = (*replies)[0];
    const std::optional<std::uint64_t> now_ms = time_ms((*replies)[1]);
    if (read.is_error()) {
      // NOGROUP: Redis lost its data (a restart), join again. Any other error
      // reply (or a failure to create the group): wait a little, do not spin.
      const bool rejoined = read.error_code() == "NOGROUP" && !create_group(s, conn);
      if (!rejoined && !reconnect_backoff::sleep_for(stop, s.options.block_time)) break;
      continue;
    }
    std::size_t entries = 0;
    if (read.is_array()) {
      for (redis_reply_view stream : read) {
        if (!stream.is_array() || stream.size() != 2) continue;
        for_each_entry(stream[1], [&](std::string_view id, redis_reply_view fields) {
          ++entries;
          bump(s.entries_read);
          if (recovering) history_from = std::string(id);
          // Without TIME (cannot happen) no wait is charged.
          handle_entry(shared, dispatcher, id, fields,
                       now_ms.value_or(wire::entry_id_ms(id).value_or(0)), local_now);
        });
      }
    }
    if (recovering && entries == 0) recovering = false;
  }
}

// One XADD of the writer: an answer entry of its own (pack empty), or a pack
// of the answers `members` (indices into the writer's batch).
struct planned_entry {
  std::vector<std::size_t> members;
  std::vector<wire::field> pack;
};

// The entries that carry `batch`'s answers: the answers to one client that
// reads packs go in packs (in their order, each pack as large as the client
// and the limits allow), the others one entry each.
void plan_entries(const std::vector<outgoing>& batch, std::vector<planned_entry>& entries) {
  entries.clear();
  std::vector<bool> planned(batch.size(), false);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const outgoing& first = batch[i];
    if (first.reply_stream.empty() || planned[i]) continue;
    planned_entry entry{.members = {i}, .pack = {}};
    if (first.pack_bytes > 0) {
      wire::answer_pack pack(first.pack_bytes);
      for (std::size_t j = i; j < batch.size(); ++j) {
        const outgoing& out = batch[j];
        if (planned[j] || out.pack_bytes == 0 || out.reply_stream != first.reply_stream) continue;
        if (!pack.add(out.fields)) break;  // the rest in the next pack, in order
        if (j != i) entry.members.push_back(j);
        planned[j] = true;
      }
      if (entry.members.size() > 1) entry.pack = pack.take();
    }
    planned[i] = true;
    entries.push_back(std::move(entry));
  }
}

// The writer thread: every queued answer's XADD (packed per client that
// reads packs), then one XACK of their entries, in one round trip; on a lost
// connection, the same batch again once reconnected (an answer may then be
// written twice: callers keep the first). Exits on its stop request, even
// with answers left (stop() asks only once everything is written or its time
// is up).
void run_writer(worker_state& s, connection_slot& slot, const std::stop_token& stop) {
  reconnect_backoff backoff(s.options.reconnect);
  std::vector<outgoing> batch;
  std::vector<planned_entry> entries;
  std::vector<std::string_view> argv;
  while (!stop.stop_requested()) {
    if (batch.empty()) {
      unique_lock lock(s.mu);
      while (s.queue.empty() && !stop.stop_requested()) s.changed.wait(lock.native());
      if (stop.stop_requested()) break;
      while (!s.queue.empty() && batch.size() < max_answers_per_round_trip) {
        batch.push_back(std::move(s.queue.front()));
        s.queue.pop_front();
      }
    }
    redis_connection& conn = slot.get();
    if (conn.broken()) {
      if (!reconnect(s, slot, backoff, stop)) break;
      continue;
    }
    plan_entries(batch, entries);
    for (const planned_entry& entry : entries) {
      argv.assign({"XADD", batch[entry.members.front()].reply_stream, "*"});
      for (const wire::field& f :
           entry.pack.empty() ? batch[entry.members.front()].fields : entry.pack) {
        argv.emplace_back(f.first);
        argv.emplace_back(f.second);
      }
      conn.append(argv);
    }
    const std::size_t answers = entries.size();
    // Stream events before a call's final one are written, not acknowledged.
    argv.assign({"XACK", s.keys.request_stream(), wire::consumer_group});
    for (const outgoing& out : batch) {
      if (out.final) argv.emplace_back(out.entry_id);
    }
    const bool acks = argv.size() > 3;
    if (acks) {
      conn.append(argv);
      // And deleted: the request stream holds only calls not yet answered,
      // instead of every call ever made (the group no longer needs them).
      argv.erase(argv.begin() + 2);  // the group
      argv[0] = "XDEL";
      conn.append(argv);
    }
    result<std::vector<redis_reply>> replies = conn.read_replies();
    if (!replies.ok()) continue;  // broken: reconnect, then the same batch again
    for (std::size_t at = 0; at < entries.size(); ++at) {
      const bool refused = (*replies)[at].is_error();
      for (const std::size_t member : entries[at].members) {
        const outgoing& out = batch[member];
        if (refused) {
          bump(s.answers_refused);
        } else if (!out.final) {
          continue;  // counted with its stream's final answer
        } else if (out.code) {
          bump(s.answered_errors[static_cast<std::size_t>(*out.code) % s.answered_errors.size()]);
        } else {
          bump(s.answered_results);
        }
      }
    }
    if (acks) {
      const redis_reply& ack = (*replies)[answers];
      if (ack.kind() == redis_reply_kind::integer && ack.integer() > 0) {
        bump(s.entries_acked, static_cast<std::uint64_t>(ack.integer()));
      }
    }
    {
      lock_guard<mutex> lock(s.mu);
      for (const outgoing& out : batch) {
        if (out.final) s.acknowledged(out.entry_id);
      }
    }
    s.changed.notify_all();
    batch.clear();
  }
}

// One look for dead workers: their pending entries, claimed, handled like
// new ones. False when the connection broke.
bool claim_from_dead(const std::shared_ptr<worker_state>& shared, worker_dispatcher& dispatcher,
                     redis_connection& conn) {
  worker_state& s = *shared;
  const std::string count = std::to_string(s.options.claim_count);
  const std::string orphan_idle = std::to_string(s.options.heartbeat_expiry.count());
  result<redis_reply> reply =
      conn.command({"EVAL", claim_script, "2", s.keys.workers_set(), s.keys.request_stream(),
                    s.consumer, count, orphan_idle});
  if (!reply.ok()) return false;
  if (!reply->is_array() || reply->size() != 3) return true;  // an error reply: next time
  const steady::time_point local_now = steady::now();
  const auto now_ms = static_cast<std::uint64_t>((*reply)[0].integer());
  for_each_entry((*reply)[1], [&](std::string_view id, redis_reply_view fields) {
    bump(s.entries_claimed);
    handle_entry(shared, dispatcher, id, fields, now_ms, local_now);
  });
  if ((*reply)[2].integer() > 0) {
    bump(s.dead_workers_removed, static_cast<std::uint64_t>((*reply)[2].integer()));
  }
  return true;
}

// Entries pending for this worker that it does not hold: their delivery was
// lost (an XREADGROUP that Redis ran after the connection that sent it
// timed out, e.g. when a hung Redis resumes). Only entries idle longer than
// a reply to the reader can be in flight (command timeout + block time) and
// a claim interval more are taken, so a reply still on its way is not
// mistaken for a lost one; they are claimed again by this worker (XCLAIM to
// itself returns their fields) and handled like new ones. False when the
// connection broke.
bool recover_lost_deliveries(const std::shared_ptr<worker_state>& shared,
                             worker_dispatcher& dispatcher, redis_connection& conn) {
  worker_state& s = *shared;
  const std::string lost_after = std::to_string((s.options.endpoint.command_timeout +
                                                 s.options.block_time + s.options.claim_interval)
                                                    .count());
  const std::string count = std::to_string(s.options.claim_count);
  result<redis_reply> pending =
      conn.command({"XPENDING", s.keys.request_stream(), wire::consumer_group, "IDLE", lost_after,
                    "-", "+", count, s.consumer});
  if (!pending.ok()) return false;
  if (!pending->is_array() || pending->size() == 0) return true;  // none, or no group
  std::vector<std::string> lost;
  {
    lock_guard<mutex> lock(s.mu);
    for (redis_reply_view row : *pending) {
      if (!row.is_array() || row.size() < 1) continue;
      std::string id(row[0].text());
      if (s.held.count(id) == 0) lost.push_back(std::move(id));
    }
  }
  if (lost.empty()) return true;
  std::vector<std::string_view> argv{"XCLAIM", s.keys.request_stream(), wire::consumer_group,
                                     s.consumer, "0"};
  argv.insert(argv.end(), lost.begin(), lost.end());
  conn.append(argv);
  conn.append({"TIME"});
  result<std::vector<redis_reply>> replies = conn.read_replies();
  if (!replies.ok()) return false;
  const steady::time_point local_now = steady::now();
  const std::optional<std::uint64_t> now_ms = time_ms((*replies)[1]);
  for_each_entry((*replies)[0], [&](std::string_view id, redis_reply_view fields) {
    bump(s.entries_recovered);
    handle_entry(shared, dispatcher, id, fields, now_ms.value_or(wire::entry_id_ms(id).value_or(0)),
                 local_now);
  });
  return true;
}

// The keeper thread: the heartbeat every heartbeat_interval, the claiming
// every claim_interval (until reading stops), and on its stop request the
// goodbye (one attempt; a broken connection gets one reconnect).
void run_keeper(const std::shared_ptr<worker_state>& shared, worker_dispatcher& dispatcher,
                connection_slot& slot, const std::stop_token& reading,
                const std::stop_token& keeping) {
  worker_state& s = *shared;
  reconnect_backoff backoff(s.options.reconnect);
  steady::time_point next_heartbeat = steady::now() + s.options.heartbeat_interval;
  steady::time_point next_claim = steady::now();  // at once: a dead worker may be waiting
  while (!keeping.stop_requested()) {
    redis_connection& conn = slot.get();
    if (conn.broken()) {
      if (!reconnect(s, slot, backoff, keeping)) break;
      next_heartbeat = steady::now();  // Redis may have lost the set: at once
      continue;
    }
    steady::time_point now = steady::now();
    if (now >= next_heartbeat) {
      if (heartbeat(s, conn).ok()) {
        next_heartbeat = now + s.options.heartbeat_interval;
      } else if (conn.broken()) {
        continue;  // reconnect above
      } else {
        // An error reply (out of memory, a script error): try again soon.
        next_heartbeat = now + std::max(milliseconds(1), s.options.heartbeat_interval / 5);
      }
    }
    if (!reading.stop_requested() && now >= next_claim) {
      if (!claim_from_dead(shared, dispatcher, conn)) continue;
      if (!recover_lost_deliveries(shared, dispatcher, conn)) continue;
      next_claim = now + s.options.claim_interval;
    }
    const steady::time_point next =
        reading.stop_requested() ? next_heartbeat : std::min(next_heartbeat, next_claim);
    now = steady::now();
    if (next > now && !reconnect_backoff::sleep_for(keeping, next - now)) break;
  }
  redis_connection* conn = &slot.get();
  if (conn->broken()) {
    result<redis_connection> fresh = redis_connection::connect(s.options.endpoint);
    if (!fresh.ok()) return;  // our heartbeat expires; others claim what is pending
    slot.replace(std::move(*fresh));
    conn = &slot.get();
  }
  (void)conn->command({"EVAL", goodbye_script, "3", s.keys.workers_set(), s.keys.request_stream(),
                       s.heartbeat_key, s.consumer});
}

}  // namespace

// ---------------------------------------------------------------- core

namespace {

redis_connection connect_or_throw(const redis_endpoint& endpoint) {
  result<redis_connection> conn = redis_connection::connect(endpoint);
  if (!conn.ok()) throw serving_error(conn.error());
  return std::move(*conn);
}

std::shared_ptr<worker_state> make_state(std::string_view serving, redis_worker_options options) {
  result<wire::serving_keys> keys = wire::serving_keys::make(serving);
  if (!keys.ok()) throw serving_error(keys.error());
  validate(options);
  std::string consumer =
      options.consumer_id.empty() ? generated_consumer_id() : options.consumer_id;
  if (std::optional<error> bad = wire::check_consumer_id(consumer)) {
    throw serving_error(errc::invalid_argument,
                        "redis_worker_options.consumer_id: " + bad->message());
  }
  result<std::string> heartbeat_key = keys->heartbeat_key(consumer);
  if (!heartbeat_key.ok()) throw serving_error(heartbeat_key.error());
  return std::make_shared<worker_state>(std::move(*keys), std::move(options), std::move(consumer),
                                        std::move(*heartbeat_key));
}

}  // namespace

redis_worker_core::redis_worker_core(std::string_view serving, redis_worker_options options,
                                     std::unique_ptr<worker_dispatcher> dispatcher)
    : state_(make_state(serving, std::move(options))), dispatcher_(std::move(dispatcher)) {
  const redis_endpoint& endpoint = state_->options.endpoint;
  redis_connection reader_conn = connect_or_throw(endpoint);
  if (std::optional<error> bad = create_group(*state_, reader_conn)) throw serving_error(*bad);
  redis_connection keeper_conn = connect_or_throw(endpoint);
  if (result<std::uint64_t> first = heartbeat(*state_, keeper_conn); !first.ok()) {
    throw serving_error(first.error());
  }
  threads_ = std::make_unique<threads>(std::move(reader_conn), connect_or_throw(endpoint),
                                       std::move(keeper_conn));
  threads& t = *threads_;
  try {
    t.writer = std::thread([this, &t, stop = t.writing.get_token()] {
      try {
        run_writer(*state_, t.writer_slot, stop);
      } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; stop() goes on
      }
      t.mark_done(&threads::writer_done);
    });
    t.keeper =
        std::thread([this, &t, reading = t.reading.get_token(), keeping = t.keeping.get_token()] {
          try {
            run_keeper(state_, *dispatcher_, t.keeper_slot, reading, keeping);
          } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; stop() goes on
          }
          t.mark_done(&threads::keeper_done);
        });
    t.reader = std::thread([this, &t, stop = t.reading.get_token()] {
      try {
        run_reader(state_, *dispatcher_, t.reader_slot, stop);
      } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; stop() goes on
      }
      t.mark_done(&threads::reader_done);
    });
  } catch (...) {
    stop();
    throw;
  }
}

redis_worker_core::~redis_worker_core() { stop(); }

void redis_worker_core::stop() noexcept {
  if (!threads_) return;
  threads& t = *threads_;
  lock_guard<mutex> lock(t.stop_mu);
  if (t.stopped) return;
  t.stopped = true;
  worker_state& s = *state_;
  const steady::time_point deadline = steady::now() + s.options.shutdown_timeout;

  auto finish = [&](std::stop_source& source, connection_slot& slot, std::thread& thread,
                    bool threads::*done) {
    source.request_stop();
    s.wake_all();
    if (!thread.joinable()) return;
    if (!t.wait_done(done, deadline)) slot.close();  // out of time: cut its I/O short
    thread.join();
  };

  // 1. Stop reading (and claiming); what was read is dispatched.
  finish(t.reading, t.reader_slot, t.reader, &threads::reader_done);
  // 2. Wait for the answers to what the worker took, and their acknowledgements.
  {
    unique_lock held_lock(s.mu);
    while (!s.held.empty() &&
           s.changed.wait_until(held_lock.native(), deadline) == std::cv_status::no_timeout) {
    }
  }
  // 3. The writer: done, or out of time.
  finish(t.writing, t.writer_slot, t.writer, &threads::writer_done);
  // 4. The keeper: its goodbye (bounded by the connect and command timeouts).
  t.keeping.request_stop();
  if (t.keeper.joinable()) t.keeper.join();
}

redis_worker_stats redis_worker_core::stats() const noexcept {
  const worker_state& s = *state_;
  auto get = [](const std::atomic<std::uint64_t>& n) { return n.load(std::memory_order_acquire); };
  redis_worker_stats out;
  out.entries_read = get(s.entries_read);
  out.entries_claimed = get(s.entries_claimed);
  out.entries_recovered = get(s.entries_recovered);
  out.calls_dispatched = get(s.calls_dispatched);
  out.answered_results = get(s.answered_results);
  for (std::size_t i = 0; i < out.answered_errors.size(); ++i) {
    out.answered_errors[i] = get(s.answered_errors[i]);
  }
  out.skipped_malformed = get(s.skipped_malformed);
  out.entries_acked = get(s.entries_acked);
  out.answers_refused = get(s.answers_refused);
  out.dead_workers_removed = get(s.dead_workers_removed);
  out.reconnects = get(s.reconnects);
  return out;
}

const std::string& redis_worker_core::consumer_id() const noexcept { return state_->consumer; }
const std::string& redis_worker_core::serving() const noexcept { return state_->keys.serving(); }

}  // namespace batch_serving::detail
