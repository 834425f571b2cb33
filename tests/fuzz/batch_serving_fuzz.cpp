// libFuzzer target over the public API (scripts/fuzz.sh runs it).
//
// Each input is decoded into one or two servers (a plain server<int64,
// int64> and/or a streaming_server<int64, int64>, with or without a declared
// hook) and up to 64 operations from the fuzzer's thread: every dispatch form
// (blocking, futures, callbacks, streams, by name), call_options (timeouts,
// deadlines, extreme durations, stop tokens), future::cancel / get / drop,
// stream reads and drops, stop_token requests, stop() of a server, short
// sleeps. Items carry flags the batch function acts on: throw, return one
// output too few, emit a hook payload of the wrong length, sleep (<= 1 ms),
// and a nested action run from inside the batch function (or, per call, from
// its completion callback): a blocking dispatch (must be refused at once with
// invalid_argument on the server's own partition), an async dispatch, a
// future get() there, stop(), a stop request, an empty batch.
//
// Checked for every call (abort() with a message on a violation):
//   - exactly one answer: a callback runs once, a future answers, a stream
//     ends once (end or error), nothing comes after the end;
//   - on success exactly its own results, in order (x -> 3x + 1), and for a
//     stream each hook event carries its own items' entries (x -> x ^ 0x5555)
//     right before the batch of the same items;
//   - on failure a code that fits what happened to it, as
//     tests/stress_test.cpp's checker and tests/misuse_test.cpp describe
//     (see check_failure below);
//   - stop() from the batch function returns at once, stop() elsewhere within
//     shutdown_timeout (plus slack), a call made after stop() returned never
//     succeeds and never gets shutting_down (it gets no_serving);
//   - after the input: every call answered, every server core and call
//     released, server_stats consistent with what the callers saw and with
//     what the batch function ran.
// Nothing may hang: libFuzzer's -timeout catches that.
//
// Input format (bytes past the end read as 0): see run_input(). Reproduce a
// crash with `batch_serving_fuzz <file>`.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "batch_serving/batch_serving.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;

namespace {

using clk = std::chrono::steady_clock;
using item_t = std::int64_t;
using plain_t = bs::server<item_t, item_t>;
using stream_t = bs::streaming_server<item_t, item_t>;
using many_t = bs::result<std::vector<item_t>>;

constexpr const char* plain_name = "fuzz.plain";
constexpr const char* stream_name = "fuzz.stream";
constexpr const char* hook_name = "progress";

// Slack for "at once" and "within shutdown_timeout" under ASan on a busy machine.
constexpr auto at_once = 2s;
constexpr auto stop_slack = 3s;
// How long the teardown waits for answers and releases before calling it a loss.
constexpr auto settle_limit = 8s;

void request_stop_of(const std::shared_ptr<std::stop_source>& source) {
  source->request_stop();  // may cancel (and complete) calls right here, in this thread
}

[[noreturn]] void violation(const std::string& what) {
  std::fprintf(stderr, "\nbatch_serving_fuzz: VIOLATION: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// ---------------------------------------------------------------- items

// An item: id << 8 | flags. Ids are unique per input.
constexpr item_t flag_throw = 1;         // the batch function throws
constexpr item_t flag_wrong_count = 2;   // it returns one output too few
constexpr item_t flag_slow = 4;          // it sleeps 100..1000 us
constexpr item_t flag_bad_emit = 8;      // its hook payload has one entry too many
constexpr int action_shift = 4;          // 3 bits: a nested action (0: none)
constexpr item_t flag_source = 1 << 7;   // which stop source a nested request_stop uses

item_t expected_output(item_t x) { return 3 * x + 1; }
item_t expected_hook(item_t x) { return x ^ 0x5555; }
int action_of(item_t x) { return static_cast<int>((x >> action_shift) & 7); }
int source_of(item_t x) { return (x & flag_source) != 0 ? 1 : 0; }

std::chrono::microseconds slow_time(item_t x) {
  std::uint64_t h = static_cast<std::uint64_t>(x) * 0x9E3779B97F4A7C15ull;
  h ^= h >> 29;
  return std::chrono::microseconds(100 + h % 900);
}

// Flags from one input byte: low 3 bits pick at most one misbehaviour,
// bit 6 enables the nested action in bits 3..5, bit 7 picks the stop source.
item_t flags_of(std::uint8_t b) {
  item_t f = 0;
  switch (b & 7) {
    case 1: f |= flag_throw; break;
    case 2: f |= flag_wrong_count; break;
    case 3: f |= flag_slow; break;
    case 4: f |= flag_bad_emit; break;
    case 5: f |= flag_slow | flag_bad_emit; break;
    default: break;
  }
  if ((b & 0x40) != 0) f |= static_cast<item_t>((b >> 3) & 7) << action_shift;
  if ((b & 0x80) != 0) f |= flag_source;
  return f;
}

// ---------------------------------------------------------------- state

enum class form : std::uint8_t {
  dispatch,
  dispatch_many,
  future_one,
  future_many,
  callback_one,
  callback_many,
  stream_one,
  stream_many,
  stream_callback_one,
  stream_callback_many,
};

const char* form_name(form f) {
  switch (f) {
    case form::dispatch: return "dispatch";
    case form::dispatch_many: return "dispatch_many";
    case form::future_one: return "dispatch_async (future)";
    case form::future_many: return "dispatch_many_async (future)";
    case form::callback_one: return "dispatch_async (callback)";
    case form::callback_many: return "dispatch_many_async (callback)";
    case form::stream_one: return "stream dispatch";
    case form::stream_many: return "stream dispatch_many";
    case form::stream_callback_one: return "stream dispatch_async (callback)";
    case form::stream_callback_many: return "stream dispatch_many_async (callback)";
  }
  return "?";
}

// What the stream of one call has shown so far.
struct stream_progress {
  std::size_t pos = 0;     // items whose results came
  std::size_t hook_k = 0;  // items of the hook events seen since the last batch
  bool ended = false;
};

struct call_rec {
  std::uint64_t serial = 0;
  int srv = 0;  // 0 plain, 1 streaming, -1 none (a by-name call to no server)
  form kind = form::dispatch;
  bool many = false;
  bool by_name = false;
  bool nested = false;  // made by the batch function or a callback
  std::vector<item_t> items;
  clk::time_point issued{};
  bool has_deadline = false;
  clk::time_point deadline_lo{};  // its deadline is no earlier than this
  std::shared_ptr<std::stop_source> stop;
  std::atomic<bool> cancel_returned_true{false};
  bool must_invalid = false;        // empty batch, negative timeout
  bool may_invalid = false;         // a future get() on a server thread while still queued
  bool must_refuse = false;         // a blocking form on the server's own partition
  bool after_stop = false;          // dispatched after a stop() of the fuzzer thread returned
  std::atomic<bool> dropped{false};  // its future or stream was dropped unread
  std::atomic<int> answers{0};
  std::atomic<int> events_after_end{0};
  int callback_action = 0;
  int callback_source = 0;
  std::mutex mu;                    // guards stream (callback streams get events on any thread)
  stream_progress stream;
  // Its answer, written before `answers` counts it: the code it failed with
  // (0: none), or ok.
  std::atomic<int> code{0};
  std::atomic<bool> ok{false};

  std::string describe() const {
    std::string s = "call #" + std::to_string(serial) + " (" + form_name(kind) + " to " +
                    (srv == 0   ? "the plain server"
                     : srv == 1 ? "the streaming server"
                                : "nobody") +
                    (by_name ? ", by name" : "") + (nested ? ", nested" : "") + ", " +
                    std::to_string(items.size()) + " items:";
    for (std::size_t i = 0; i < items.size() && i < 8; ++i) {
      s += " " + std::to_string(items[i] >> 8) + "/" + std::to_string(items[i] & 0xff);
    }
    if (items.size() > 8) s += " ...";
    s += std::string(", deadline ") + (has_deadline ? "yes" : "no");
    if (stop) s += stop->stop_requested() ? ", stop requested" : ", stop token";
    if (cancel_returned_true.load()) s += ", cancel() returned true";
    if (must_invalid) s += ", malformed";
    if (must_refuse) s += ", blocking on its own partition";
    if (after_stop) s += ", after stop()";
    return s + ")";
  }
};

struct slot_t {
  bool exists = false;
  bool streaming = false;
  bool hooks = false;
  bool huge_batch_timeout = false;  // batch_timeout microseconds::max(): every call gets a deadline
  bs::server_options opts;
  std::atomic<bool> stop_started{false};
  std::atomic<bool> stop_returned{false};  // a stop() of the fuzzer thread returned

  // The server, for nested users (copied under mu, used without it).
  std::mutex mu;
  std::shared_ptr<plain_t> plain;
  std::shared_ptr<stream_t> stream;

  std::mutex sources_mu;
  std::shared_ptr<std::stop_source> sources[2];

  std::mutex threads_mu;
  std::vector<std::thread::id> partition_threads;  // threads its batch function ran on

  std::atomic<std::uint64_t> runs{0}, run_items{0};
  std::atomic<int> active_runs{0};

  std::shared_ptr<std::stop_source> source(int k) {
    std::lock_guard lock(sources_mu);
    return sources[k];
  }
  void renew_source(int k) {
    auto fresh = std::make_shared<std::stop_source>();
    std::lock_guard lock(sources_mu);
    sources[k] = std::move(fresh);
  }
  void note_thread() {
    const auto me = std::this_thread::get_id();
    std::lock_guard lock(threads_mu);
    if (std::find(partition_threads.begin(), partition_threads.end(), me) ==
        partition_threads.end()) {
      partition_threads.push_back(me);
    }
  }
  bool on_partition() {
    const auto me = std::this_thread::get_id();
    std::lock_guard lock(threads_mu);
    return std::find(partition_threads.begin(), partition_threads.end(), me) !=
           partition_threads.end();
  }
  std::shared_ptr<plain_t> get_plain() {
    std::lock_guard lock(mu);
    return plain;
  }
  std::shared_ptr<stream_t> get_stream() {
    std::lock_guard lock(mu);
    return stream;
  }
};

struct fuzz_state {
  slot_t slot[2];
  std::thread::id fuzzer_thread;
  std::atomic<std::int64_t> next_id{1};
  std::atomic<std::uint64_t> next_serial{1};
  std::atomic<int> nested_budget{48};
  std::atomic<int> slow_budget{24};

  std::mutex recs_mu;
  std::vector<std::shared_ptr<call_rec>> recs;

  std::mutex taint_mu;
  std::unordered_set<item_t> tainted;  // items of executions that failed

  item_t fresh_item(item_t flags) {
    return (next_id.fetch_add(1, std::memory_order_relaxed) << 8) | flags;
  }
  void add(const std::shared_ptr<call_rec>& rec) {
    rec->serial = next_serial.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(recs_mu);
    recs.push_back(rec);
  }
  void taint(std::span<const item_t> xs) {
    std::lock_guard lock(taint_mu);
    tainted.insert(xs.begin(), xs.end());
  }
  bool any_tainted(const std::vector<item_t>& xs) {
    std::lock_guard lock(taint_mu);
    return std::any_of(xs.begin(), xs.end(), [&](item_t x) { return tainted.count(x) != 0; });
  }
};

// ---------------------------------------------------------------- checks

bool poisoned(const fuzz_state& st, int srv, item_t x) {
  if ((x & (flag_throw | flag_wrong_count)) != 0) return true;
  return (x & flag_bad_emit) != 0 && srv == 1 && st.slot[1].hooks;
}

bool too_big(const fuzz_state& st, const call_rec& rec) {
  if (rec.srv < 0) return false;
  const auto& mq = st.slot[rec.srv].opts.max_queue;
  return mq && rec.items.size() > *mq;
}

void check_success(fuzz_state& st, const call_rec& rec, std::span<const item_t> values) {
  auto fail = [&](const std::string& why) { violation(rec.describe() + ": " + why); };
  if (rec.cancel_returned_true.load()) fail("succeeded after future::cancel() returned true");
  if (rec.must_invalid) fail("a malformed call succeeded");
  if (rec.must_refuse) fail("a blocking dispatch on the server's own partition was not refused");
  if (rec.after_stop) fail("a call dispatched after stop() returned succeeded");
  if (too_big(st, rec)) fail("an explicit batch larger than max_queue succeeded");
  if (values.size() != rec.items.size()) {
    fail("got " + std::to_string(values.size()) + " results for " +
         std::to_string(rec.items.size()) + " items");
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i] != expected_output(rec.items[i])) {
      fail("result " + std::to_string(i) + " is not its item's (another call's, or misplaced)");
    }
    if (poisoned(st, rec.srv, rec.items[i])) fail("succeeded with a poisoned item");
  }
}

void check_failure(fuzz_state& st, const call_rec& rec, const bs::error& e,
                   clk::time_point observed) {
  auto fail = [&](const std::string& why) {
    violation(rec.describe() + ": " + why + " (answer: " + e.to_string() + ")");
  };
  const bs::errc code = e.code();
  const bool stopping = rec.srv >= 0 && st.slot[rec.srv].stop_started.load();
  const bool big = too_big(st, rec);
  if (rec.cancel_returned_true.load() && code != bs::errc::cancelled) {
    fail("future::cancel() returned true but the answer is not cancelled");
  }
  if (rec.must_refuse && code != bs::errc::invalid_argument) {
    fail("a blocking dispatch on the server's own partition was not refused invalid_argument");
  }
  if (rec.must_invalid && code != bs::errc::invalid_argument &&
      !(rec.by_name && code == bs::errc::no_serving)) {
    fail("a malformed call was not answered invalid_argument");
  }
  if (big && code != bs::errc::invalid_argument && code != bs::errc::timeout &&
      code != bs::errc::cancelled && !(rec.by_name && code == bs::errc::no_serving)) {
    fail("an explicit batch larger than max_queue was not answered invalid_argument");
  }
  if (rec.after_stop && code == bs::errc::shutting_down) {
    fail("a call dispatched after stop() returned got shutting_down, not no_serving");
  }
  switch (code) {
    case bs::errc::execution_failed: {
      const bool own_poison = std::any_of(rec.items.begin(), rec.items.end(),
                                          [&](item_t x) { return poisoned(st, rec.srv, x); });
      if (st.slot[rec.srv].opts.isolate_failures) {
        if (!own_poison) fail("execution_failed without a poisoned item of its own (isolated)");
      } else if (!st.any_tainted(rec.items)) {
        fail("execution_failed, but none of its items was in a failed execution");
      }
      break;
    }
    case bs::errc::timeout:
      if (!rec.has_deadline) {
        fail("timeout for a call without a deadline");
      } else if (observed < rec.deadline_lo) {
        fail("timeout " +
             std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(rec.deadline_lo -
                                                                                  observed)
                                .count()) +
             " us before its deadline");
      }
      break;
    case bs::errc::cancelled:
      if (!rec.cancel_returned_true.load() && !(rec.stop && rec.stop->stop_requested())) {
        fail("cancelled but nobody cancelled it");
      }
      break;
    case bs::errc::overloaded:
      if (rec.srv < 0 || !st.slot[rec.srv].opts.max_queue) fail("overloaded without a max_queue");
      if (big) fail("overloaded instead of invalid_argument");
      break;
    case bs::errc::invalid_argument:
      if (!rec.must_invalid && !rec.may_invalid && !rec.must_refuse && !big) {
        fail("invalid_argument for a valid call");
      }
      break;
    case bs::errc::shutting_down:
    case bs::errc::no_serving:
      if (rec.srv < 0) break;  // by name to a name nobody runs
      if (!stopping) fail("shutting_down/no_serving before the shutdown began");
      break;
    default: fail("unexpected error code"); break;
  }
}

// Counts the one answer of `rec` (a second one is a violation), after noting
// what it was: nullopt for success.
void count_answer(call_rec& rec, std::optional<bs::errc> failed) {
  if (failed) {
    rec.code.store(static_cast<int>(*failed));
  } else {
    rec.ok.store(true);
  }
  if (rec.answers.fetch_add(1) != 0) violation(rec.describe() + ": answered twice");
}

void check_answer(fuzz_state& st, call_rec& rec, const many_t& answer) {
  const auto now = clk::now();
  count_answer(rec, answer.ok() ? std::nullopt : std::optional(answer.error().code()));
  if (answer.ok()) {
    check_success(st, rec, *answer);
  } else {
    check_failure(st, rec, answer.error(), now);
  }
}

many_t as_many(bs::result<item_t> r) {
  if (r.ok()) return many_t(std::vector<item_t>{*r});
  return many_t(r.error());
}

// One event of `rec`'s stream (under rec.mu). `from_callback`: a callback
// form (which sees `end`); iteration never yields `end`. Returns true if
// this event ended the stream.
bool feed_event(fuzz_state& st, call_rec& rec, const bs::event<item_t>& ev, bool from_callback) {
  auto fail = [&](const std::string& why) { violation(rec.describe() + ": stream: " + why); };
  stream_progress& p = rec.stream;
  if (p.ended) {
    rec.events_after_end.fetch_add(1);
    fail("an event after the stream's end");
  }
  const std::size_t n = rec.items.size();
  switch (ev.kind()) {
    case bs::event_kind::hook: {
      if (!st.slot[1].hooks) fail("a hook event from a serving that declared none");
      if (ev.hook() != hook_name) fail("a hook event named '" + ev.hook() + "'");
      const auto payload = ev.payload<item_t>();
      if (payload.empty()) fail("an empty hook payload");
      if (p.hook_k != 0 && payload.size() != p.hook_k) fail("hook events of one slice differ");
      if (p.pos + payload.size() > n) fail("hook entries past the call's items");
      for (std::size_t i = 0; i < payload.size(); ++i) {
        if (payload[i] != expected_hook(rec.items[p.pos + i])) {
          fail("hook entry " + std::to_string(p.pos + i) + " is not its item's");
        }
      }
      if (rec.serial % 8 == 0) {
        try {
          (void)ev.payload<int>();
          fail("payload<int>() of an int64 payload did not throw");
        } catch (const bs::serving_error& e) {
          if (e.code() != bs::errc::invalid_argument) fail("payload<int>() threw another code");
        }
      }
      p.hook_k = payload.size();
      return false;
    }
    case bs::event_kind::batch: {
      if (!rec.many) fail("a batch event for a single-item dispatch");
      const auto& values = ev.batch();
      if (p.hook_k != 0 && values.size() != p.hook_k) {
        fail("a batch of " + std::to_string(values.size()) + " after hook events for " +
             std::to_string(p.hook_k) + " items");
      }
      if (p.pos + values.size() > n) fail("more results than items");
      for (std::size_t i = 0; i < values.size(); ++i) {
        if (values[i] != expected_output(rec.items[p.pos + i])) {
          fail("result " + std::to_string(p.pos + i) + " is not its item's");
        }
      }
      p.pos += values.size();
      p.hook_k = 0;
      return false;
    }
    case bs::event_kind::item: {
      if (rec.many) fail("an item event for dispatch_many");
      if (p.pos != 0) fail("a second item event");
      if (p.hook_k > 1) fail("hook events for more than the one item");
      if (ev.item() != expected_output(rec.items[0])) fail("the item's result is not its own");
      p.pos = 1;
      p.hook_k = 0;
      return false;
    }
    case bs::event_kind::error: {
      p.ended = true;
      count_answer(rec, ev.error().code());
      check_failure(st, rec, ev.error(), clk::now());
      return true;
    }
    case bs::event_kind::end: {
      if (!from_callback) fail("iteration yielded an end event");
      p.ended = true;
      count_answer(rec, std::nullopt);
      if (p.hook_k != 0) fail("hook events without their batch before the end");
      if (p.pos != n) fail("ended after " + std::to_string(p.pos) + " of " + std::to_string(n));
      std::vector<item_t> all;  // the values were checked event by event: the flags here
      for (auto x : rec.items) all.push_back(expected_output(x));
      check_success(st, rec, all);
      return true;
    }
  }
  fail("an event of unknown kind");
}

// A stream read by iteration ended (next() returned nullopt).
void stream_iteration_ended(fuzz_state& st, call_rec& rec) {
  std::lock_guard lock(rec.mu);
  stream_progress& p = rec.stream;
  if (p.ended) return;  // ended by its error event
  p.ended = true;
  count_answer(rec, std::nullopt);
  if (p.hook_k != 0) violation(rec.describe() + ": stream: hook events without their batch");
  if (p.pos != rec.items.size()) {
    violation(rec.describe() + ": stream ended after " + std::to_string(p.pos) + " of " +
              std::to_string(rec.items.size()) + " results without an error");
  }
  // check_success's flag checks, values already checked.
  std::vector<item_t> all;
  for (auto x : rec.items) all.push_back(expected_output(x));
  check_success(st, rec, all);
}

// ---------------------------------------------------------------- options

// Call options from a 4-bit kind (table below, 16 = 2 ms for nested blocking
// calls), with `rec`'s deadline bookkeeping.
bs::call_options make_options(fuzz_state& st, call_rec& rec, int kind) {
  bs::call_options o;
  const auto now = clk::now();
  rec.issued = now;
  switch (kind) {
    case 6: o.timeout = 0us; break;
    case 7: o.timeout = 100us; break;
    case 8: o.timeout = 1ms; break;
    case 9: o.timeout = 3ms; break;
    case 10: o.timeout = std::chrono::microseconds::max(); break;
    case 11: o.timeout = -1us; break;
    case 12: o.deadline = now + 2ms; break;
    case 13: o.deadline = now - 1ms; break;
    case 14: o.deadline = clk::time_point::max(); break;
    case 15:
      o.timeout = 5ms;
      o.deadline = now + 500us;
      break;
    case 16: o.timeout = 2ms; break;
    default: break;  // none
  }
  if (o.timeout && o.timeout->count() < 0) rec.must_invalid = true;
  if (rec.srv >= 0 && st.slot[rec.srv].huge_batch_timeout && !rec.must_invalid) {
    // A batch that is not full never runs: every call needs a deadline.
    const bool finite_own =
        (o.timeout && *o.timeout < 1h) || (o.deadline && *o.deadline < now + 1h);
    const auto& dt = st.slot[rec.srv].opts.default_timeout;
    const bool finite_default = !o.timeout && !o.deadline && dt && *dt < 1h;
    if (!finite_own && !finite_default) {
      o.timeout = 3ms;
      o.deadline.reset();
    }
  }
  std::optional<clk::time_point> lo;
  if (o.timeout && !rec.must_invalid && *o.timeout < 1h) lo = now + *o.timeout;
  if (o.deadline && *o.deadline < now + 1h) {
    lo = lo ? std::min(*lo, *o.deadline) : *o.deadline;
  }
  if (!o.timeout && !o.deadline && rec.srv >= 0) {
    const auto& dt = st.slot[rec.srv].opts.default_timeout;
    if (dt && *dt < 1h) lo = now + *dt;
  }
  rec.has_deadline = lo.has_value();
  if (lo) rec.deadline_lo = *lo;
  return o;
}

// The stop token: 0 none, 1/2 the server's source 0/1, 3 one stopped already.
void attach_source(fuzz_state& st, call_rec& rec, bs::call_options& o, int which) {
  if (which == 0 || rec.srv < 0) return;
  if (which == 3) {
    rec.stop = std::make_shared<std::stop_source>();
    rec.stop->request_stop();
  } else {
    rec.stop = st.slot[rec.srv].source(which - 1);
  }
  o.stop_token = rec.stop->get_token();
}

std::shared_ptr<call_rec> new_rec(fuzz_state& st, int srv, form kind, std::vector<item_t> items,
                                  bool nested) {
  auto rec = std::make_shared<call_rec>();
  rec->srv = srv;
  rec->kind = kind;
  rec->many = kind == form::dispatch_many || kind == form::future_many ||
              kind == form::callback_many || kind == form::stream_many ||
              kind == form::stream_callback_many;
  rec->items = std::move(items);
  rec->nested = nested;
  if (rec->items.empty()) rec->must_invalid = true;
  if (srv >= 0 && st.slot[srv].stop_returned.load()) rec->after_stop = true;
  st.add(rec);
  return rec;
}

// ---------------------------------------------------------------- nested actions

void nested_action(const std::shared_ptr<fuzz_state>& st, int srv, int action, int source,
                   bool in_batch_function);

// A completion callback of a plain call: checks the answer, then runs the
// call's callback action.
struct checking_callback {
  std::shared_ptr<fuzz_state> st;
  std::shared_ptr<call_rec> rec;

  void operator()(bs::result<item_t> r) const { finish(as_many(std::move(r))); }
  void operator()(many_t r) const { finish(r); }

 private:
  void finish(const many_t& r) const {
    check_answer(*st, *rec, r);
    if (rec->callback_action != 0) {
      nested_action(st, rec->srv, rec->callback_action, rec->callback_source, false);
    }
  }
};

// The event callback of a streaming call.
struct checking_event_callback {
  std::shared_ptr<fuzz_state> st;
  std::shared_ptr<call_rec> rec;

  void operator()(bs::event<item_t> ev) const {
    bool ended = false;
    {
      std::lock_guard lock(rec->mu);
      ended = feed_event(*st, *rec, ev, true);
    }
    if (ended && rec->callback_action != 0) {
      nested_action(st, rec->srv, rec->callback_action, rec->callback_source, false);
    }
  }
};

// A stop() from a server thread or a callback: from the batch function (or a
// callback on a partition) it returns at once; elsewhere within
// shutdown_timeout plus slack.
template <class Server>
void timed_stop(fuzz_state& st, int srv, Server& server, bool surely_own_thread) {
  st.slot[srv].stop_started.store(true);
  const auto start = clk::now();
  server.stop();
  const auto took = clk::now() - start;
  const auto limit = st.slot[srv].opts.shutdown_timeout;
  if (surely_own_thread && took > at_once) {
    violation("stop() from the server's own partition took " +
              std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()) +
              " ms");
  }
  if (limit < 1h && took > limit + stop_slack) {
    violation("stop() took " +
              std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()) +
              " ms (shutdown_timeout " + std::to_string(limit.count()) + " ms)");
  }
}

void nested_plain(const std::shared_ptr<fuzz_state>& sp, int action, int source,
                  bool in_batch_function) {
  fuzz_state& st = *sp;
  auto srv = st.slot[0].get_plain();
  if (!srv) return;
  // Surely on one of its partitions: the batch function, or a thread it ran on.
  // Another thread than the fuzzer's may be a partition that has not run it
  // yet (one that only settled cancelled calls): refused there too.
  const bool own = in_batch_function || st.slot[0].on_partition();
  const bool maybe_own = std::this_thread::get_id() != st.fuzzer_thread;
  switch (action) {
    case 1: {  // blocking dispatch: refused at once on the server's own partition
      auto rec = new_rec(st, 0, form::dispatch, {st.fresh_item(0)}, true);
      rec->must_refuse = own;
      rec->may_invalid = maybe_own;
      const auto o = make_options(st, *rec, 16);
      const auto start = clk::now();
      auto r = srv->dispatch(rec->items[0], o);
      if (own && clk::now() - start > at_once) {
        violation(rec->describe() + ": a blocking dispatch on the server's partition waited");
      }
      check_answer(st, *rec, as_many(std::move(r)));
      break;
    }
    case 2: {  // blocking dispatch_many, the same
      auto rec = new_rec(st, 0, form::dispatch_many, {st.fresh_item(0), st.fresh_item(0)}, true);
      rec->must_refuse = own;
      rec->may_invalid = maybe_own;
      const auto o = make_options(st, *rec, 16);
      const auto start = clk::now();
      auto r = srv->dispatch_many(std::span<const item_t>(rec->items), o);
      if (own && clk::now() - start > at_once) {
        violation(rec->describe() + ": a blocking dispatch_many on the server's partition waited");
      }
      check_answer(st, *rec, r);
      break;
    }
    case 3: {  // callback form
      auto rec = new_rec(st, 0, form::callback_one, {st.fresh_item(0)}, true);
      const auto o = make_options(st, *rec, 0);
      srv->dispatch_async(rec->items[0], o, checking_callback{sp, rec});
      break;
    }
    case 4: {  // future, got at once: on its own partition a queued call is answered
      auto rec = new_rec(st, 0, form::future_one, {st.fresh_item(0)}, true);
      rec->may_invalid = maybe_own;
      const auto o = make_options(st, *rec, 0);
      auto f = srv->dispatch_async(rec->items[0], o);
      srv.reset();  // not kept while waiting
      check_answer(st, *rec, as_many(f.get()));
      break;
    }
    case 5: timed_stop(st, 0, *srv, in_batch_function); break;
    case 6: {
      auto s = st.slot[0].source(source);
      srv.reset();
      request_stop_of(s);
      break;
    }
    case 7: {  // an empty batch, and a name nobody runs
      auto rec = new_rec(st, 0, form::future_many, {}, true);
      const auto o = make_options(st, *rec, 0);
      check_answer(st, *rec, srv->dispatch_many_async(std::vector<item_t>{}, o).get());
      auto none = new_rec(st, -1, form::callback_one, {st.fresh_item(0)}, true);
      none->by_name = true;
      none->must_invalid = false;
      const auto o2 = make_options(st, *none, 0);
      bs::dispatch_async<item_t, item_t>("fuzz.nobody", none->items[0], o2,
                                         checking_callback{sp, none});
      break;
    }
    default: break;
  }
}

void nested_stream(const std::shared_ptr<fuzz_state>& sp, int action, int source,
                   bool in_batch_function) {
  fuzz_state& st = *sp;
  auto srv = st.slot[1].get_stream();
  if (!srv) return;
  switch (action) {
    case 1:
    case 3: {
      auto rec = new_rec(st, 1, form::stream_callback_one, {st.fresh_item(0)}, true);
      const auto o = make_options(st, *rec, action == 1 ? 16 : 0);
      srv->dispatch_async(rec->items[0], o, checking_event_callback{sp, rec});
      break;
    }
    case 2: {
      auto rec =
          new_rec(st, 1, form::stream_callback_many, {st.fresh_item(0), st.fresh_item(0)}, true);
      const auto o = make_options(st, *rec, 0);
      srv->dispatch_many_async(std::span<const item_t>(rec->items), o,
                               checking_event_callback{sp, rec});
      break;
    }
    case 4: {  // a stream dropped at once: nobody waits for its reader
      auto rec = new_rec(st, 1, form::stream_one, {st.fresh_item(0)}, true);
      rec->dropped = true;
      const auto o = make_options(st, *rec, 0);
      (void)srv->dispatch(rec->items[0], o);
      break;
    }
    case 5: timed_stop(st, 1, *srv, in_batch_function); break;
    case 6: {
      auto s = st.slot[1].source(source);
      srv.reset();
      request_stop_of(s);
      break;
    }
    case 7: {  // an empty batch
      auto rec = new_rec(st, 1, form::stream_callback_many, {}, true);
      const auto o = make_options(st, *rec, 0);
      srv->dispatch_many_async(std::span<const item_t>(), o, checking_event_callback{sp, rec});
      break;
    }
    default: break;
  }
}

void nested_action(const std::shared_ptr<fuzz_state>& st, int srv, int action, int source,
                   bool in_batch_function) {
  if (srv < 0 || action == 0) return;
  if (st->nested_budget.fetch_sub(1) <= 0) return;
  if (srv == 0) {
    nested_plain(st, action, source, in_batch_function);
  } else {
    nested_stream(st, action, source, in_batch_function);
  }
}

// ---------------------------------------------------------------- the batch function

struct batch_function {
  std::shared_ptr<fuzz_state> st;
  int srv;

  std::vector<item_t> operator()(std::span<const item_t> xs, bs::execution_context& ctx) const {
    slot_t& s = st->slot[srv];
    s.note_thread();
    s.active_runs.fetch_add(1);
    struct leave {
      slot_t& s;
      ~leave() { s.active_runs.fetch_sub(1); }
    } on_exit{s};
    s.runs.fetch_add(1);
    s.run_items.fetch_add(xs.size());
    if (ctx.size() != xs.size()) violation("execution_context::size() is not the batch's size");
    // Nobody reads this one: dropped and counted, once per run.
    ctx.emit("undeclared", std::vector<item_t>(xs.size(), 0));
    bool short_count = false;
    bool bad_emit = false;
    for (item_t x : xs) {
      if (const int a = action_of(x)) nested_action(st, srv, a, source_of(x), true);
      if ((x & flag_slow) != 0 && st->slow_budget.fetch_sub(1) > 0) {
        std::this_thread::sleep_for(slow_time(x));
      }
      if ((x & flag_wrong_count) != 0) short_count = true;
      if ((x & flag_bad_emit) != 0) bad_emit = true;
    }
    if (ctx.wants(hook_name)) {
      std::vector<item_t> payload;
      for (item_t x : xs) payload.push_back(expected_hook(x));
      if (bad_emit) payload.push_back(0);
      try {
        ctx.emit(hook_name, std::move(payload));
      } catch (...) {
        if (!bad_emit) violation("emit() of a payload of the right length threw");
        st->taint(xs);
        throw;
      }
      if (bad_emit) violation("emit() of a payload of the wrong length did not throw");
    }
    std::vector<item_t> out;
    out.reserve(xs.size());
    for (item_t x : xs) {
      if ((x & flag_throw) != 0) {
        st->taint(xs);
        throw std::runtime_error("poisoned item " + std::to_string(x));
      }
      out.push_back(expected_output(x));
    }
    if (short_count) {
      st->taint(xs);
      out.pop_back();
    }
    return out;
  }
};

// ---------------------------------------------------------------- the input

struct reader {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t at = 0;
  std::uint8_t byte() { return at < size ? data[at++] : 0; }
  bool done() const { return at >= size; }
};

bs::server_options decode_options(reader& in, slot_t& s, bool named) {
  bs::server_options o;
  const std::uint8_t a = in.byte();
  const std::uint8_t b = in.byte();
  const std::uint8_t c = in.byte();
  o.batch_size = 1 + a % 8;
  switch ((a >> 3) & 15) {
    case 0:
    case 1:
    case 2: o.batch_timeout = 0us; break;
    case 3:
    case 4: o.batch_timeout = 50us; break;
    case 5:
    case 6: o.batch_timeout = 200us; break;
    case 7:
    case 8: o.batch_timeout = 1ms; break;
    case 15: o.batch_timeout = std::chrono::microseconds::max(); break;
    default: o.batch_timeout = 2ms; break;
  }
  s.huge_batch_timeout = o.batch_timeout == std::chrono::microseconds::max();
  o.partitions = 1 + (a >> 7) + (b & 1);  // 1..3
  if ((b & 2) != 0) o.max_queue = 1 + ((b >> 2) & 15);
  switch ((b >> 6) & 3) {
    case 1: o.default_timeout = std::chrono::microseconds(200 + 900 * (c & 3)); break;
    case 2:
      o.default_timeout =
          (c & 3) == 0 ? std::chrono::microseconds(0) : std::chrono::microseconds::max();
      break;
    default: break;
  }
  o.isolate_failures = (c & 4) != 0;
  switch ((c >> 3) & 7) {
    case 0: o.shutdown_timeout = 0ms; break;
    case 1: o.shutdown_timeout = 1ms; break;
    case 2: o.shutdown_timeout = 5ms; break;
    case 3: o.shutdown_timeout = 20ms; break;
    case 4: o.shutdown_timeout = 50ms; break;
    case 5: o.shutdown_timeout = std::chrono::milliseconds::max(); break;
    default: o.shutdown_timeout = 10ms; break;
  }
  if (named) o.name = s.streaming ? stream_name : plain_name;
  return o;
}

struct pending_future {
  std::shared_ptr<call_rec> rec;
  bs::future<item_t> one;
  bs::future<std::vector<item_t>> many;
};

struct pending_stream {
  std::shared_ptr<call_rec> rec;
  bs::event_stream<item_t> events;
};

class driver {
 public:
  explicit driver(std::shared_ptr<fuzz_state> st) : sp_(std::move(st)), st_(*sp_) {}

  void run(reader& in, std::shared_ptr<plain_t> plain, std::shared_ptr<stream_t> stream) {
    plain_ = std::move(plain);
    stream_ = std::move(stream);
    for (int op = 0; op < 64 && !in.done(); ++op) step(in);
    teardown();
  }

 private:
  bool has(int srv) const { return srv == 0 ? plain_ != nullptr : stream_ != nullptr; }
  int pick_server(int want) const { return has(want) ? want : 1 - want; }

  std::vector<item_t> read_items(reader& in, bool many, int srv) {
    std::size_t n = 1;
    if (many) {
      const std::uint8_t nb = in.byte();
      const std::size_t most = 2 * st_.slot[srv].opts.batch_size.value_or(4) + 3;
      n = nb == 255 ? 20 : nb % (most + 1);
    }
    std::vector<item_t> items;
    for (std::size_t i = 0; i < n; ++i) items.push_back(st_.fresh_item(flags_of(in.byte())));
    return items;
  }

  void step(reader& in) {
    const std::uint8_t op = in.byte();
    switch (op % 21) {
      case 0: blocking(in, false); break;
      case 1: blocking(in, true); break;
      case 2: future_call(in, false); break;
      case 3: future_call(in, true); break;
      case 4: callback_call(in, false); break;
      case 5: callback_call(in, true); break;
      case 6: stream_call(in, false, false); break;
      case 7: stream_call(in, true, false); break;
      case 8: stream_call(in, false, true); break;
      case 9: stream_call(in, true, true); break;
      case 10: by_name(in); break;
      case 11: settle_future(in.byte(), false); break;
      case 12: cancel_future(in.byte()); break;
      case 13: drop_future(in.byte()); break;
      case 14: wait_future(in.byte(), in.byte()); break;
      case 15: stream_op(in.byte(), in.byte()); break;
      case 16: {
        const std::uint8_t b = in.byte();
        const int srv = pick_server(b & 1);
        auto s = st_.slot[srv].source((b >> 1) & 1);
        request_stop_of(s);
        break;
      }
      case 17: {
        const std::uint8_t b = in.byte();
        st_.slot[pick_server(b & 1)].renew_source((b >> 1) & 1);
        break;
      }
      case 18: stop_server(pick_server(in.byte() & 1)); break;
      case 19: std::this_thread::sleep_for(std::chrono::microseconds(4 * in.byte())); break;
      case 20: check_stats_sanity(); break;
      default: break;
    }
  }

  // The call options byte: bits 0-3 timeout kind, 4-5 stop token, 6-7 variant.
  bs::call_options options_for(call_rec& rec, std::uint8_t b) {
    auto o = make_options(st_, rec, b & 15);
    attach_source(st_, rec, o, (b >> 4) & 3);
    return o;
  }

  void blocking(reader& in, bool many) {
    const int srv = pick_server(0);
    if (srv != 0) return stream_call(in, many, false);
    auto rec = new_rec(st_, 0, many ? form::dispatch_many : form::dispatch, read_items(in, many, 0),
                       false);
    const std::uint8_t ob = in.byte();
    const auto o = options_for(*rec, ob);
    if (!many) {
      check_answer(st_, *rec, as_many(plain_->dispatch(rec->items[0], o)));
    } else if ((ob >> 6) & 1) {
      std::vector<item_t> copy = rec->items;
      check_answer(st_, *rec, plain_->dispatch_many(std::move(copy), o));
    } else {
      check_answer(st_, *rec, plain_->dispatch_many(std::span<const item_t>(rec->items), o));
    }
  }

  void future_call(reader& in, bool many) {
    const int srv = pick_server(0);
    if (srv != 0) return stream_call(in, many, false);
    if (futures_.size() >= 16) settle_future(0, false);
    auto rec = new_rec(st_, 0, many ? form::future_many : form::future_one, read_items(in, many, 0),
                       false);
    const std::uint8_t ob = in.byte();
    const auto o = options_for(*rec, ob);
    pending_future p{rec, {}, {}};
    if (!many) {
      p.one = plain_->dispatch_async(rec->items[0], o);
    } else if ((ob >> 6) & 1) {
      p.many = plain_->dispatch_many_async(std::span<const item_t>(rec->items), o);
    } else {
      p.many = plain_->dispatch_many_async(std::vector<item_t>(rec->items), o);
    }
    if ((ob >> 7) & 1) {  // cancel at once
      const bool ready = p.one.valid() ? p.one.ready() : p.many.ready();
      const bool cancelled = p.one.valid() ? p.one.cancel() : p.many.cancel();
      if (cancelled) rec->cancel_returned_true.store(true);
      if (ready && cancelled) violation(rec->describe() + ": cancel() true on a ready future");
    }
    futures_.push_back(std::move(p));
  }

  void callback_call(reader& in, bool many) {
    const int srv = pick_server(0);
    if (srv != 0) return stream_call(in, many, true);
    auto rec = new_rec(st_, 0, many ? form::callback_many : form::callback_one,
                       read_items(in, many, 0), false);
    const std::uint8_t ob = in.byte();
    const std::uint8_t ab = in.byte();
    rec->callback_action = (ab & 8) != 0 ? ab & 7 : 0;
    rec->callback_source = (ab >> 4) & 1;
    const auto o = options_for(*rec, ob);
    checking_callback cb{sp_, rec};
    if (!many) {
      plain_->dispatch_async(rec->items[0], o, cb);
    } else if ((ob >> 6) & 1) {
      plain_->dispatch_many_async(std::span<const item_t>(rec->items), o, cb);
    } else {
      plain_->dispatch_many_async(std::vector<item_t>(rec->items), o, cb);
    }
  }

  void stream_call(reader& in, bool many, bool callback) {
    const int srv = pick_server(1);
    if (srv != 1) {
      if (callback) return callback_call(in, many);
      return future_call(in, many);
    }
    if (!callback && streams_.size() >= 16) stream_op(0, 0);
    const form kind = callback ? (many ? form::stream_callback_many : form::stream_callback_one)
                               : (many ? form::stream_many : form::stream_one);
    auto rec = new_rec(st_, 1, kind, read_items(in, many, 1), false);
    const std::uint8_t ob = in.byte();
    if (callback) {
      const std::uint8_t ab = in.byte();
      rec->callback_action = (ab & 8) != 0 ? ab & 7 : 0;
      rec->callback_source = (ab >> 4) & 1;
    }
    const auto o = options_for(*rec, ob);
    if (callback) {
      checking_event_callback cb{sp_, rec};
      if (many) {
        stream_->dispatch_many_async(std::span<const item_t>(rec->items), o, cb);
      } else {
        stream_->dispatch_async(rec->items[0], o, cb);
      }
      return;
    }
    if (many) {
      streams_.push_back({rec, stream_->dispatch_many(std::span<const item_t>(rec->items), o)});
    } else {
      streams_.push_back({rec, stream_->dispatch(rec->items[0], o)});
    }
  }

  // By name: to the plain or the streaming server's name (registered only
  // when the input names its servers), a name nobody runs, or wrong types.
  void by_name(reader& in) {
    const std::uint8_t b = in.byte();
    const std::uint8_t ob = in.byte();
    const int target = b & 3;  // 0 plain, 1 streaming, 2 nobody, 3 wrong types
    if (target == 3) {
      auto r = bs::dispatch<int, int>((b & 4) != 0 ? stream_name : plain_name, 1);
      if (r.ok()) violation("a by-name dispatch with the wrong types succeeded");
      const auto code = r.error().code();
      if (code != bs::errc::invalid_argument && code != bs::errc::no_serving) {
        violation("a by-name dispatch with the wrong types: " + r.error().to_string());
      }
      // A plain form to the streaming name.
      auto p = bs::dispatch<item_t, item_t>(stream_name, 1);
      if (p.ok()) violation("a plain by-name dispatch to the streaming server's name succeeded");
      return;
    }
    // The server behind the name, if any: srv -1 when it is not registered.
    int srv = -1;
    if (target < 2 && has(target) && !st_.slot[target].opts.name.empty()) srv = target;
    const bool streaming = target == 1 || (target == 2 && (b & 4) != 0);
    const bool many = (b & 8) != 0;
    const bool callback = (b & 16) != 0;
    const char* name = target == 0 ? plain_name : target == 1 ? stream_name : "fuzz.nobody";
    const form kind =
        streaming ? (callback ? (many ? form::stream_callback_many : form::stream_callback_one)
                              : (many ? form::stream_many : form::stream_one))
                  : (callback ? (many ? form::callback_many : form::callback_one)
                              : (many ? form::dispatch_many : form::dispatch));
    auto rec = new_rec(st_, srv, kind, read_items(in, many, srv >= 0 ? srv : 0), false);
    rec->by_name = true;
    const auto o = options_for(*rec, ob);
    if (streaming) {
      if (callback) {
        checking_event_callback cb{sp_, rec};
        if (many) {
          bs::dispatch_many_stream_async<item_t, item_t>(name, std::span<const item_t>(rec->items),
                                                         o, cb);
        } else {
          bs::dispatch_stream_async<item_t, item_t>(name, rec->items[0], o, cb);
        }
      } else {
        auto s =
            many ? bs::dispatch_many_stream<item_t, item_t>(name,
                                                            std::span<const item_t>(rec->items), o)
                 : bs::dispatch_stream<item_t, item_t>(name, rec->items[0], o);
        read_stream(*rec, s, SIZE_MAX);
      }
      return;
    }
    if (callback) {
      checking_callback cb{sp_, rec};
      if (many) {
        bs::dispatch_many_async<item_t, item_t>(name, std::vector<item_t>(rec->items), o, cb);
      } else {
        bs::dispatch_async<item_t, item_t>(name, rec->items[0], o, cb);
      }
    } else if (many) {
      check_answer(st_, *rec,
                   bs::dispatch_many<item_t, item_t>(name, std::span<const item_t>(rec->items), o));
    } else {
      check_answer(st_, *rec, as_many(bs::dispatch<item_t, item_t>(name, rec->items[0], o)));
    }
  }

  // ---- futures

  void settle_future(std::uint8_t index, bool) {
    if (futures_.empty()) return;
    const std::size_t i = index % futures_.size();
    pending_future p = std::move(futures_[i]);
    futures_.erase(futures_.begin() + static_cast<std::ptrdiff_t>(i));
    if (p.one.valid()) {
      check_answer(st_, *p.rec, as_many(p.one.get()));
      // A future after get(): no call, every member answers at once.
      if (p.one.valid() || !p.one.ready() || p.one.cancel()) {
        violation(p.rec->describe() + ": a future after get() still holds a call");
      }
      auto again = p.one.get();
      if (again.ok() || again.error().code() != bs::errc::invalid_argument) {
        violation(p.rec->describe() + ": a second get() was not invalid_argument");
      }
    } else {
      check_answer(st_, *p.rec, p.many.get());
    }
  }

  void cancel_future(std::uint8_t index) {
    if (futures_.empty()) return;
    pending_future& p = futures_[index % futures_.size()];
    const bool ready = p.one.valid() ? p.one.ready() : p.many.ready();
    const bool cancelled = p.one.valid() ? p.one.cancel() : p.many.cancel();
    if (cancelled) p.rec->cancel_returned_true.store(true);
    if (ready && cancelled) {
      violation(p.rec->describe() + ": future::cancel() returned true on a ready future");
    }
  }

  void drop_future(std::uint8_t index) {
    if (futures_.empty()) return;
    const std::size_t i = index % futures_.size();
    futures_[i].rec->dropped = true;
    futures_.erase(futures_.begin() + static_cast<std::ptrdiff_t>(i));
  }

  void wait_future(std::uint8_t index, std::uint8_t us) {
    if (futures_.empty()) return;
    pending_future& p = futures_[index % futures_.size()];
    const auto d = std::chrono::microseconds(4 * us);
    const bool done = p.one.valid() ? p.one.wait_for(d) : p.many.wait_for(d);
    const bool ready = p.one.valid() ? p.one.ready() : p.many.ready();
    if (done && !ready) violation(p.rec->describe() + ": wait_for() true but not ready()");
    if ((us & 1) != 0) {  // an extreme wait_for on a ready one returns at once
      if (ready && !(p.one.valid() ? p.one.wait_for(std::chrono::hours::max())
                                   : p.many.wait_for(std::chrono::hours::max()))) {
        violation(p.rec->describe() + ": wait_for(hours::max()) on a ready future was false");
      }
    }
  }

  // ---- streams

  // Reads up to `most` events of `rec`'s stream by iteration.
  void read_stream(call_rec& rec, bs::event_stream<item_t>& s, std::size_t most) {
    for (std::size_t i = 0; i < most; ++i) {
      auto ev = s.next();
      if (!ev) {
        stream_iteration_ended(st_, rec);
        return;
      }
      std::lock_guard lock(rec.mu);
      feed_event(st_, rec, *ev, false);
    }
  }

  // 0: read to the end, 1: one event, 2: collect() (a fresh stream), 3: drop.
  void stream_op(std::uint8_t index, std::uint8_t how) {
    if (streams_.empty()) return;
    const std::size_t i = index % streams_.size();
    pending_stream& p = streams_[i];
    bool remove = true;
    switch (how & 3) {
      case 1:
        read_stream(*p.rec, p.events, 1);
        remove = p.rec->stream.ended;
        break;
      case 2:
        if (p.rec->stream.pos == 0 && p.rec->stream.hook_k == 0 && !p.rec->stream.ended) {
          check_answer(st_, *p.rec, p.events.collect());
          p.rec->stream.ended = true;
          break;
        }
        read_stream(*p.rec, p.events, SIZE_MAX);
        break;
      case 3:
        if (!p.rec->stream.ended) p.rec->dropped = true;
        break;
      default: read_stream(*p.rec, p.events, SIZE_MAX); break;
    }
    if (remove) streams_.erase(streams_.begin() + static_cast<std::ptrdiff_t>(i));
  }

  // ---- shutdown

  void stop_server(int srv) {
    if (srv == 0) {
      timed_stop(st_, 0, *plain_, false);
    } else {
      timed_stop(st_, 1, *stream_, false);
    }
    st_.slot[srv].stop_returned.store(true);
  }

  bs::server_stats stats_of(int srv) const { return srv == 0 ? plain_->stats() : stream_->stats(); }

  // Mid-run snapshots are not one atomic cut (server_stats.hpp), so only
  // what holds counter by counter: none goes down, and no isolation runs
  // without isolate_failures.
  void check_stats_sanity() {
    for (int srv = 0; srv < 2; ++srv) {
      if (!has(srv)) continue;
      const auto s = stats_of(srv);
      const bs::server_stats& p = last_stats_[srv];
      const std::uint64_t now[] = {s.calls_accepted,    s.items_accepted,
                                   s.calls_rejected,    s.calls_overloaded,
                                   s.executions,        s.items_executed,
                                   s.failed_executions, s.calls_failed,
                                   s.calls_timed_out,   s.calls_cancelled,
                                   s.calls_shut_down,   s.isolation_executions,
                                   s.calls_isolated,    s.hook_events_dropped};
      const std::uint64_t before[] = {p.calls_accepted,    p.items_accepted,
                                      p.calls_rejected,    p.calls_overloaded,
                                      p.executions,        p.items_executed,
                                      p.failed_executions, p.calls_failed,
                                      p.calls_timed_out,   p.calls_cancelled,
                                      p.calls_shut_down,   p.isolation_executions,
                                      p.calls_isolated,    p.hook_events_dropped};
      for (std::size_t k = 0; k < std::size(now); ++k) {
        if (now[k] < before[k])
          violation("server_stats: counter " + std::to_string(k) + " went down");
      }
      last_stats_[srv] = s;
      if (!st_.slot[srv].opts.isolate_failures &&
          (s.isolation_executions != 0 || s.calls_isolated != 0)) {
        violation("server_stats: isolation executions with isolate_failures off");
      }
    }
  }

  template <class Pred>
  static bool wait_for(clk::duration limit, Pred done) {
    const auto until = clk::now() + limit;
    while (!done()) {
      if (clk::now() >= until) return false;
      std::this_thread::sleep_for(100us);
    }
    return true;
  }

  std::vector<std::shared_ptr<call_rec>> recs_snapshot() {
    std::lock_guard lock(st_.recs_mu);
    return st_.recs;
  }

  static bool settled(const call_rec& r) { return r.dropped || r.answers.load() != 0; }

  // What the callers of `srv` saw against the server's counters. Exact
  // except for calls nobody saw (dropped), unanswered ones, and by-name
  // no_serving answers (from the registry or from the server).
  void check_stats(int srv) {
    std::uint64_t cancelled = 0, timed_out = 0, overloaded = 0, failed = 0, shut = 0, slack = 0;
    std::uint64_t before = 0;
    {
      const auto recs = recs_snapshot();
      before = recs.size();
      for (const auto& r : recs) {
        if (r->srv != srv) continue;
        if (r->dropped || r->answers.load() == 0 || r->code.load() == 0) {
          if (!r->ok.load()) ++slack;
          continue;
        }
        switch (static_cast<bs::errc>(r->code.load())) {
          case bs::errc::cancelled: ++cancelled; break;
          case bs::errc::timeout: ++timed_out; break;
          case bs::errc::overloaded: ++overloaded; break;
          case bs::errc::execution_failed: ++failed; break;
          case bs::errc::shutting_down: ++shut; break;
          case bs::errc::no_serving:
            if (r->by_name) {
              ++slack;
            } else {
              ++shut;
            }
            break;
          default: break;
        }
      }
    }
    const auto s = stats_of(srv);
    const auto recs = recs_snapshot();
    std::uint64_t calls = 0;
    for (const auto& r : recs) calls += r->srv == srv ? 1 : 0;
    slack += recs.size() - before;
    auto same = [&](const char* what, std::uint64_t counted, std::uint64_t seen,
                    bool exact_low = true) {
      if ((exact_low && counted < seen) || counted > seen + slack) {
        violation(std::string("server_stats.") + what + " = " + std::to_string(counted) +
                  ", but callers saw " + std::to_string(seen) + " (slack " + std::to_string(slack) +
                  ")");
      }
    };
    same("calls_cancelled", s.calls_cancelled, cancelled);
    same("calls_timed_out", s.calls_timed_out, timed_out);
    same("calls_overloaded", s.calls_overloaded, overloaded);
    same("calls_failed", s.calls_failed, failed);
    same("calls_rejected + calls_shut_down", s.calls_rejected + s.calls_shut_down, shut);
    if (s.calls_accepted + s.calls_overloaded + s.calls_rejected > calls) {
      violation("server_stats counts more calls than were made");
    }
  }

  // Runs and items the batch function saw against executions and
  // items_executed; one dropped hook per first run ("undeclared": isolation
  // re-runs emit nothing, execution.hpp).
  void check_runs(int srv) {
    slot_t& slot = st_.slot[srv];
    bs::server_stats s;
    const bool agree = wait_for(settle_limit, [&] {
      s = stats_of(srv);
      return slot.active_runs.load() == 0 && s.executions == slot.runs.load() &&
             s.items_executed == slot.run_items.load() &&
             s.hook_events_dropped == s.executions - s.isolation_executions;
    });
    if (!agree) {
      violation("server_stats: executions " + std::to_string(s.executions) + ", items_executed " +
                std::to_string(s.items_executed) + ", hook_events_dropped " +
                std::to_string(s.hook_events_dropped) + ", isolation_executions " +
                std::to_string(s.isolation_executions) + ", but the batch function ran " +
                std::to_string(slot.runs.load()) + " times on " +
                std::to_string(slot.run_items.load()) + " items");
    }
    if (s.failed_executions > s.executions) violation("server_stats: more failed than executions");
  }

  void teardown() {
    for (int srv = 0; srv < 2; ++srv) {
      if (has(srv)) stop_server(srv);
    }
    // Every future and stream answers now (the shutdown answered what was left).
    while (!futures_.empty()) settle_future(0, false);
    while (!streams_.empty()) stream_op(0, 0);
    // Callbacks may still be running on threads the shutdown gave up on.
    if (!wait_for(settle_limit, [&] {
          const auto recs = recs_snapshot();
          return std::all_of(recs.begin(), recs.end(), [](const auto& r) { return settled(*r); });
        })) {
      for (const auto& r : recs_snapshot()) {
        if (!settled(*r)) violation(r->describe() + ": never answered");
      }
    }
    for (int srv = 0; srv < 2; ++srv) {
      if (!has(srv)) continue;
      check_runs(srv);
      check_stats(srv);
    }
    // No nested user takes the servers any more; wait for the ones that have them.
    for (int srv = 0; srv < 2; ++srv) {
      std::lock_guard lock(st_.slot[srv].mu);
      st_.slot[srv].plain.reset();
      st_.slot[srv].stream.reset();
    }
    if (!wait_for(settle_limit, [&] {
          return (!plain_ || plain_.use_count() == 1) && (!stream_ || stream_.use_count() == 1);
        })) {
      violation("a nested user kept a server for seconds after its shutdown");
    }
    plain_.reset();
    stream_.reset();
  }

  std::shared_ptr<fuzz_state> sp_;
  fuzz_state& st_;
  std::shared_ptr<plain_t> plain_;
  std::shared_ptr<stream_t> stream_;
  std::vector<pending_future> futures_;
  std::vector<pending_stream> streams_;
  bs::server_stats last_stats_[2];
};

// Header byte: bits 0-1 which servers (0 plain, 1 streaming, 2-3 both),
// bit 2 the streaming serving declares the hook, bit 3 the servers are named.
// Then 3 option bytes per server (decode_options), then operations
// (driver::step: an opcode byte, then its operands).
void run_input(const std::uint8_t* data, std::size_t size) {
  reader in{data, size};
  const std::uint8_t header = in.byte();
  const int which = header & 3;
  const bool hooks = (header & 4) != 0;
  const bool named = (header & 8) != 0;

  auto st = std::make_shared<fuzz_state>();
  st->fuzzer_thread = std::this_thread::get_id();
  for (int srv = 0; srv < 2; ++srv) {
    slot_t& s = st->slot[srv];
    s.streaming = srv == 1;
    s.exists = srv == 0 ? which != 1 : which != 0;
    s.hooks = srv == 1 && hooks;
    s.renew_source(0);
    s.renew_source(1);
    if (s.exists) s.opts = decode_options(in, s, named);
  }

  std::shared_ptr<plain_t> plain;
  std::shared_ptr<stream_t> stream;
  {
    bs::serving<item_t, item_t> plain_serving(batch_function{st, 0});
    bs::serving<item_t, item_t> stream_base(batch_function{st, 1});
    auto streaming = stream_base.streaming({.hooks = hooks ? std::vector<std::string>{hook_name}
                                                           : std::vector<std::string>{}});
    if (st->slot[0].exists) plain = std::make_shared<plain_t>(plain_serving, st->slot[0].opts);
    if (st->slot[1].exists) {
      slot_t& s = st->slot[1];
      if (hooks && s.opts.isolate_failures) {
        try {
          stream_t refused(streaming, s.opts);
          violation("a streaming server with hooks started with isolate_failures");
        } catch (const bs::serving_error& e) {
          if (e.code() != bs::errc::invalid_argument) {
            violation(std::string("hooks + isolate_failures: ") + e.what());
          }
        }
        s.opts.isolate_failures = false;
      }
      stream = std::make_shared<stream_t>(streaming, s.opts);
    }
  }
  {
    std::lock_guard lock(st->slot[0].mu);
    st->slot[0].plain = plain;
  }
  {
    std::lock_guard lock(st->slot[1].mu);
    st->slot[1].stream = stream;
  }

  {
    driver d(st);
    d.run(in, std::move(plain), std::move(stream));
  }

  // Every call released its references (callbacks and futures hold the state
  // through the serving), and the server cores are gone.
  const auto until = clk::now() + settle_limit;
  while (st.use_count() != 1) {
    if (clk::now() >= until) {
      violation(
          "seconds after the input, a call or a server core is still alive (a leak, or a "
          "partition thread that never exited)");
    }
    std::this_thread::sleep_for(100us);
  }
  for (const auto& r : st->recs) {
    const int n = r->answers.load();
    if (n > 1 || (n == 0 && !r->dropped)) {
      violation(r->describe() + ": " + std::to_string(n) + " answers");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run_input(data, size);
  return 0;
}
