// Seeded randomized stress: many threads mix every dispatch form, with random
// explicit batch sizes, deadlines and cancellations, against servers with
// random batch sizes, timeouts, partitions, queue bounds, default timeouts and
// failure isolation, a batch function that throws, miscounts or dawdles for
// marked items, and shutdowns at random moments. On top of that, the misuse
// of misuse_test.cpp at random: items whose copy or move throws, the server
// stopped or destroyed from inside its completion callbacks and its batch
// function, and calls to the same server from those (nested calls).
//
// Invariant for every call: exactly one answer; on success exactly its own
// results in its own order; on failure a code that fits what happened to it:
//   execution_failed  it had a poisoned item (isolate_failures), or one of its
//                     items shared an execution that failed (without); or
//                     moving its own fragile item into the batch, or its
//                     result out, threw (the message names that item)
//   timeout           it had a deadline (its own or default_timeout), and the
//                     answer came no earlier than that deadline
//   cancelled         its caller cancelled it (stop_token, future::cancel)
//   overloaded        the server has a max_queue
//   invalid_argument  its explicit batch is larger than max_queue; or it was
//                     given as a span and copying its fragile item threw
//                     (then nothing else is a right answer); or it is a
//                     nested blocking call (then nothing else is), or a
//                     nested future waited for on a partition while queued
//   shutting_down / no_serving   the server's shutdown had begun
// A call with a deadline is answered by then plus a generous slack; a
// future::cancel() that returned true means the answer is cancelled. Each
// round also checks the server's counters against what its callers saw
// (unless the server was destroyed from inside: no counters are left), that
// every call and the server core were released at the end, that stopping a
// server with nothing left to do returns at once, and that a stop() or
// destruction on a partition's own thread returns at once too.
//
// The bugs this test found, each cut down to a small test, are in
// stress_findings_test.cpp.
//
// A watchdog aborts the run, printing the seed, if no call is answered for
// 60 s. Options (after the gtest ones), or environment variables:
//   --seed=N      BATCH_SERVING_STRESS_SEED   (default: fixed)
//   --calls=N     BATCH_SERVING_STRESS_CALLS  (default 1,000,000; 300,000 under sanitizers)
//   --minutes=M   BATCH_SERVING_STRESS_MINUTES: soak, run rounds for M minutes
//                 (ignores --calls) and print VmRSS at the start and the end
//   --watchdog=S  BATCH_SERVING_STRESS_WATCHDOG: seconds without progress (default 60)
//   --verbose     a line per round
//   --round=R [--repeat=K]  only round R of the seed's sequence (its
//                 configuration and seed do not depend on timing), K times
#include <gtest/gtest.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <random>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "batch_serving/server.hpp"
#include "support/sanitizers.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;

namespace {

#if defined(BATCH_SERVING_TEST_SANITIZED)
constexpr std::uint64_t default_calls = 300'000;
constexpr std::uint64_t round_calls_lo = 2'000;
constexpr std::uint64_t round_calls_hi = 8'000;
constexpr auto lateness_bound = 10s;  // a deadline's answer may come this much after it
constexpr auto round_time_cap = 3s;   // callers stop issuing after this
constexpr auto idle_stop_bound = 3s;  // stop() of a server with nothing to do
constexpr auto elsewhere_stop_bound = 6s;  // see below
#elif !defined(NDEBUG)
constexpr std::uint64_t default_calls = 200'000;  // unoptimized builds
constexpr std::uint64_t round_calls_lo = 5'000;
constexpr std::uint64_t round_calls_hi = 30'000;
constexpr auto lateness_bound = 5s;
constexpr auto round_time_cap = 3s;
constexpr auto idle_stop_bound = 3s;
constexpr auto elsewhere_stop_bound = 3s;
#else
constexpr std::uint64_t default_calls = 1'000'000;
constexpr std::uint64_t round_calls_lo = 10'000;
constexpr std::uint64_t round_calls_hi = 60'000;
constexpr auto lateness_bound = 2s;
// Slow configurations (one blocking caller, a 1 ms batch_timeout) issue
// fewer calls: the run's count comes from more rounds instead.
constexpr auto round_time_cap = 1500ms;
constexpr auto idle_stop_bound = 1s;
constexpr auto elsewhere_stop_bound = 3s;
#endif
// A stop() or destruction on a partition's own thread returns at once (it
// must not wait for the partition it runs on), whatever shutdown_timeout is.
constexpr auto inside_stop_bound = 2s;
// One in a completion callback on another thread (a caller's, the
// canceller's, the timer's) waits for the partitions to drain, which the
// test's short executions do quickly: taking longer means it waited for
// something that was not running (shutdown_timeout is 10 s or more there).

using clock_type = std::chrono::steady_clock;
using item_t = std::int64_t;

// ---------------------------------------------------------------- options

struct stress_options {
  std::uint64_t seed = 20261127;
  std::uint64_t calls = default_calls;
  double minutes = 0;  // > 0: soak for this long
  int watchdog_seconds = 60;
  bool verbose = false;  // a line per round
  int round = -1;         // >= 0: run only this round of the seed's sequence ...
  int repeat = 1;         // ... this many times
};

stress_options& options() {
  static stress_options o;
  return o;
}

std::optional<std::string> env(const char* name) {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): only main() calls it, before any thread starts
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// ---------------------------------------------------------------- items

// An item: caller (8 bits) | sequence (40 bits) | flags (8 bits). Unique in a
// round, so a result that went to the wrong call or place shows.
constexpr int flag_bits = 8;
constexpr item_t flag_throw = 1;        // the batch function throws
constexpr item_t flag_wrong_count = 2;  // it returns one output too few
constexpr item_t flag_slow = 4;         // it sleeps a little first
constexpr item_t poison_flags = flag_throw | flag_wrong_count;
// Fragile items: the caller's element type misbehaves (misuse_test.cpp).
constexpr item_t flag_copy_throws = 8;   // copying it throws, on any thread
constexpr item_t flag_move_throws = 16;  // moving it off a caller's thread throws
constexpr item_t flag_result_move_throws = 32;            // so does moving its result
constexpr item_t flag_result_move_throws_on_caller = 64;  // moving its result on one does
constexpr item_t fragile_flags = flag_copy_throws | flag_move_throws | flag_result_move_throws |
                                 flag_result_move_throws_on_caller;
// The "caller" of nested calls (made on the server's own threads); real
// callers are 0-15.
constexpr int nested_caller = 255;

item_t make_item(int caller, std::uint64_t seq, item_t flags) {
  return ((static_cast<item_t>(caller) << 40 | static_cast<item_t>(seq)) << flag_bits) | flags;
}
item_t expected_output(item_t x) { return 3 * x + 1; }
bool is_poison(item_t x) { return (x & poison_flags) != 0; }

std::chrono::microseconds slow_time(item_t x) {
  std::uint64_t h = static_cast<std::uint64_t>(x) * 0x9E3779B97F4A7C15ull;
  h ^= h >> 29;
  return std::chrono::microseconds(50 + h % 1500);
}

// Set in caller threads only: there a fragile item's moves do not throw
// (but its result's may), so the test's own code moves answers freely.
thread_local bool on_callers_thread = false;

// The element type of inputs and results. A fragile one throws from its copy
// or its move, naming its number ("value N ..."), so a failure can be traced
// to the item that caused it.
struct value {
  enum : std::uint8_t {
    throws_on_copy = 1,
    throws_on_move_off_caller = 2,  // a partition thread moving it
    throws_on_move_on_caller = 4,   // a caller thread moving it
  };
  item_t n = 0;
  std::uint8_t throws = 0;

  value(item_t number, std::uint8_t how) : n(number), throws(how) {}
  value(const value& other) : n(other.n), throws(other.throws) {
    if (throws & throws_on_copy) fail("copying");
  }
  // Not noexcept, as a type whose move can throw would be: std::vector then
  // copies it when it grows.
  value(value&& other) : n(other.n), throws(other.throws) {  // NOLINT(bugprone-exception-escape)
    if (throws & (on_callers_thread ? throws_on_move_on_caller : throws_on_move_off_caller)) {
      fail(on_callers_thread ? "moving, on a caller's thread," : "moving, off a caller's thread,");
    }
  }
  value& operator=(const value&) = default;
  value& operator=(value&&) = default;

 private:
  [[noreturn]] void fail(const char* what) const {
    throw std::runtime_error(std::string(what) + " value " + std::to_string(n) + " threw");
  }
};

// The input a caller hands over for item `x` (returned as a prvalue: no move).
value input_of(item_t x) {
  return value(x,
               static_cast<std::uint8_t>(((x & flag_copy_throws) ? value::throws_on_copy : 0) |
                                         ((x & flag_move_throws) ? value::throws_on_move_off_caller
                                                                 : 0)));
}
std::uint8_t result_throws(item_t x) {
  return static_cast<std::uint8_t>(
      ((x & flag_result_move_throws) ? value::throws_on_move_off_caller : 0) |
      ((x & flag_result_move_throws_on_caller) ? value::throws_on_move_on_caller : 0));
}
// Built in place, never copied or moved on the way.
std::vector<value> inputs_of(const std::vector<item_t>& xs) {
  std::vector<value> out;
  out.reserve(xs.size());
  for (item_t x : xs) out.emplace_back(input_of(x));
  return out;
}

using server_t = bs::server<value, value>;
// What a call's answer is checked as: its results, one or more.
using answer_t = bs::result<std::vector<value>>;

answer_t as_many(const bs::result<value>& r) {
  if (!r.ok()) return answer_t(r.error());
  std::vector<value> one;
  one.emplace_back(r->n, 0);  // only its number is checked
  return answer_t(std::move(one));
}
const answer_t& as_many(const answer_t& r) { return r; }

long rss_kb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

// The allocator's view (glibc): bytes handed out and not given back (a leak
// grows this), and bytes it holds from the system, free or not (RSS follows
// this; glibc keeps freed memory in per-thread arenas).
std::string heap_kb() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const struct mallinfo2 m = mallinfo2();
  return "heap in use " + std::to_string((m.uordblks + m.hblkhd) / 1024) + " kB, held " +
         std::to_string((m.arena + m.hblkhd) / 1024) + " kB";
#else
  return "heap figures need glibc";
#endif
}

// ---------------------------------------------------------------- rounds

// Where a round's mid-round shutdown comes from.
enum class stop_site { outside, callback, batch_function };

struct round_config {
  std::size_t batch_size;
  std::chrono::microseconds batch_timeout;
  std::size_t partitions;
  std::optional<std::size_t> max_queue;
  std::optional<std::chrono::microseconds> default_timeout;
  bool isolate_failures;
  int callers;
  std::size_t in_flight;    // futures a caller keeps before getting the oldest
  double poison_rate;       // per item
  double slow_rate;         // per item
  double fragile_rate;      // per item: its copy, its move or its result's move throws
  double deadline_rate;     // per call
  double cancel_rate;       // per call
  double nest_rate;         // per batch function run and per callback: a nested call
  bool drop_futures;        // some futures are dropped unanswered
  std::optional<std::chrono::microseconds> stop_after;  // shut down mid-round
  stop_site stop_from;      // ... from another thread, or from inside the server
  bool destroy;             // ... by dropping the server's last reference instead (inside)
  std::chrono::milliseconds shutdown_timeout;

  std::string describe() const {
    std::string s =
        "batch_size " + std::to_string(batch_size) + ", batch_timeout " +
        std::to_string(batch_timeout.count()) + "us, partitions " + std::to_string(partitions) +
        ", max_queue " + (max_queue ? std::to_string(*max_queue) : "none") + ", default_timeout " +
        (default_timeout ? std::to_string(default_timeout->count()) + "us" : "none") +
        ", isolate " + (isolate_failures ? "on" : "off") + ", callers " + std::to_string(callers) +
        ", in_flight " + std::to_string(in_flight) + ", poison " + std::to_string(poison_rate) +
        ", slow " + std::to_string(slow_rate) + ", fragile " + std::to_string(fragile_rate) +
        ", deadlines " + std::to_string(deadline_rate) + ", cancels " +
        std::to_string(cancel_rate) + ", nested " + std::to_string(nest_rate) +
        (drop_futures ? ", drops futures" : "");
    if (stop_after) {
      const char* site = stop_from == stop_site::outside    ? ""
                         : stop_from == stop_site::callback ? " from a callback"
                                                            : " from the batch function";
      s += std::string(destroy ? ", destroy after " : ", stop after ") +
           std::to_string(stop_after->count()) + "us" + site + " (shutdown_timeout " +
           std::to_string(shutdown_timeout.count()) + "ms)";
    }
    return s;
  }
};

// What tells a seed's generator of misuse choices from its other one.
constexpr std::uint64_t misuse_seed = 0x6d69737573650000ull;  // "misuse"

std::uint64_t uniform(std::mt19937_64& rng, std::uint64_t lo, std::uint64_t hi) {
  return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng);
}
template <class... T>
auto one_of(std::mt19937_64& rng, T... values) {
  using U = std::common_type_t<T...>;
  const U all[] = {static_cast<U>(values)...};
  return all[uniform(rng, 0, sizeof...(values) - 1)];
}

// When and how the round's server is shut down mid-round, if it is. `rng`
// draws what the test drew before it stopped servers from inside (so a
// seed's rounds keep their other settings); `misuse` the rest.
void random_stop(round_config& c, std::mt19937_64& rng, std::mt19937_64& misuse) {
  c.stop_from = stop_site::outside;
  c.destroy = false;
  c.shutdown_timeout = 5s;
  if (uniform(rng, 0, 9) >= 3) return;
  c.stop_after = std::chrono::microseconds(uniform(rng, 0, 150'000));
  switch (uniform(rng, 0, 4)) {
    case 0: c.shutdown_timeout = 0ms; return;
    case 1: c.shutdown_timeout = 1ms; return;
    case 2: c.stop_from = stop_site::callback; break;
    case 3: c.stop_from = stop_site::batch_function; break;
    default: return;
  }
  // From inside: sooner (rounds are short), and with a long
  // shutdown_timeout, which costs nothing unless the stop waits for its own
  // partition (then it shows).
  c.stop_after = std::chrono::microseconds(uniform(misuse, 0, 60'000));
  c.destroy = uniform(misuse, 0, 1) == 1;
  c.shutdown_timeout = one_of(misuse, 0ms, 10'000ms, 30'000ms);
}

// A round's configuration; the same for the same two generators' states.
round_config random_config(std::mt19937_64& rng, std::mt19937_64& misuse) {
  auto pick = [&](std::uint64_t lo, std::uint64_t hi) { return uniform(rng, lo, hi); };
  round_config c;
  c.batch_size = pick(0, 5) == 0 ? pick(33, 128) : pick(1, 32);
  c.batch_timeout = std::chrono::microseconds(one_of(rng, 0, 0, 50, 200, 1000));
  c.partitions = pick(1, 4);
  // max_queue: none 40%, under a batch 10%, a few batches 30%, large 20%.
  const auto queue_kind = pick(0, 9);
  if (queue_kind == 4) {
    c.max_queue = pick(1, c.batch_size);
  } else if (queue_kind >= 5 && queue_kind <= 7) {
    c.max_queue = pick(c.batch_size, 4 * c.batch_size + 8);
  } else if (queue_kind >= 8) {
    c.max_queue = pick(256, 4096);
  }
  if (pick(0, 3) == 0) {
    c.default_timeout = std::chrono::microseconds(one_of(rng, 200, 2'000, 20'000, 1'000'000));
  }
  c.isolate_failures = pick(0, 1) == 1;
  c.callers = static_cast<int>(pick(1, 16));
  c.in_flight = one_of(rng, 1, 4, 32, 128);
  c.poison_rate = one_of(rng, 0.0, 0.0, 0.002, 0.02);
  c.slow_rate = one_of(rng, 0.0, 0.0005, 0.003);
  c.deadline_rate = one_of(rng, 0.0, 0.2, 0.6);
  c.cancel_rate = one_of(rng, 0.0, 0.05, 0.3);
  c.drop_futures = pick(0, 4) == 0;
  random_stop(c, rng, misuse);
  c.fragile_rate = one_of(misuse, 0.0, 0.0, 0.005, 0.03);
  c.nest_rate = one_of(misuse, 0.0, 0.0, 0.005, 0.03);
  return c;
}

// Where failures found in any thread are collected; the test thread reports them.
struct failure_log {
  std::mutex mu;
  std::vector<std::string> first;
  std::atomic<std::uint64_t> count{0};

  void add(std::string what) {
    if (count.fetch_add(1) < 20) {
      std::lock_guard lock(mu);
      first.push_back(std::move(what));
    }
  }
};

// The watchdog's view of the run.
struct round_state;
struct call_plan;

struct progress_state {
  std::atomic<std::uint64_t> answers{0};
  std::mutex mu;
  std::weak_ptr<round_state> round;  // the current round, for the watchdog's message
};

progress_state& progress() {
  static progress_state p;
  return p;
}

// Lets the server's own threads make nested calls until the round's owner
// closes it; close() then waits for those being made, so that the counts
// and the server's counters read after it include all of them.
class issue_gate {
 public:
  bool enter() {
    inside_.fetch_add(1);
    if (!closed_.load()) return true;
    inside_.fetch_sub(1);
    return false;
  }
  void leave() { inside_.fetch_sub(1); }
  void close() {
    closed_.store(true);
    while (inside_.load() != 0) std::this_thread::sleep_for(200us);
  }

 private:
  std::atomic<int> inside_{0};
  std::atomic<bool> closed_{false};
};

// A round's serial number, unique in the run (--repeat runs a round again).
std::atomic<std::uint64_t> round_serials{0};
// The round whose batch function ran on this thread: a partition thread of
// its server, where blocking forms are refused and stop() returns at once.
thread_local std::uint64_t partition_of_round = 0;

// Everything a round's callers, callbacks and batch function share. Held by
// shared_ptr from the batch function and every callback, so the test can
// tell when the server core and every call were released.
struct round_state {
  round_config config;
  std::uint64_t seed = 0;
  std::uint64_t serial = ++round_serials;
  std::string where;
  failure_log* failures = nullptr;
  clock_type::time_point started{};
  clock_type::time_point issue_until{};  // callers issue no call after this

  std::mutex tainted_mu;
  std::unordered_set<item_t> tainted;  // items of executions that failed

  std::atomic<bool> stop_started{false};
  std::atomic<bool> stop_done{false};
  // Set once, before the first call. Everyone reaches the server through
  // it, holding a reference while they use it: a server destroyed from
  // inside dies with its last reference, never under a call.
  std::weak_ptr<server_t> server;
  issue_gate nesting;

  std::atomic<std::uint64_t> issued{0};
  std::atomic<std::uint64_t> answered{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> ok{0}, failed{0}, timed_out{0}, cancelled{0}, overloaded{0},
      shut_down{0}, invalid{0};
  // execution_failed answered in the caller's thread (moving the result to
  // it threw): after the server delivered, so it cannot count them.
  std::atomic<std::uint64_t> failed_in_caller{0};
  std::atomic<std::uint64_t> nested{0};
  std::atomic<std::uint64_t> nested_seq{0};
  std::atomic<std::uint64_t> inside_stops{0};
  std::atomic<bool> destroyed_inside{
      false};  // the last reference went in a callback / batch function
  std::atomic<std::int64_t> max_lateness_us{0};
  std::atomic<std::int64_t> longest_inside_stop_us{0};     // on a partition thread
  std::atomic<std::int64_t> longest_elsewhere_stop_us{0};  // in a callback on another thread
  // The call each caller is blocked in or about to issue: for the watchdog's
  // message only (read racily, when the run is about to abort).
  std::vector<std::atomic<const call_plan*>> current{16};  // callers: at most 16

  void taint(std::span<const value> xs) {
    std::lock_guard lock(tainted_mu);
    for (const value& x : xs) tainted.insert(x.n);
  }
  bool any_tainted(const std::vector<item_t>& xs) {
    std::lock_guard lock(tainted_mu);
    return std::any_of(xs.begin(), xs.end(), [&](item_t x) { return tainted.count(x) != 0; });
  }

  // The owner's reference to the server (the round's until it is taken).
  std::shared_ptr<server_t> take_owner() {
    std::lock_guard lock(owner_mu_);
    return std::exchange(owner_, nullptr);
  }
  void give_owner(std::shared_ptr<server_t> srv) {
    std::lock_guard lock(owner_mu_);
    owner_ = std::move(srv);
  }

 private:
  std::mutex owner_mu_;
  std::shared_ptr<server_t> owner_;
};

void record_max(std::atomic<std::int64_t>& most, std::int64_t seen) {
  std::int64_t was = most.load(std::memory_order_relaxed);
  while (seen > was && !most.compare_exchange_weak(was, seen)) {
  }
}

// Requests stops at their time, for calls cancelled "later" by stop_token.
class canceller {
 public:
  canceller() : thread_([this] { run(); }) {}
  ~canceller() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void add(clock_type::time_point when, std::shared_ptr<std::stop_source> source) {
    bool first;
    {
      std::lock_guard lock(mu_);
      queue_.push({when, std::move(source)});
      first = queue_.top().when == when;
    }
    if (first) cv_.notify_one();
  }

 private:
  struct entry {
    clock_type::time_point when;
    std::shared_ptr<std::stop_source> source;
    bool operator>(const entry& other) const { return when > other.when; }
  };
  void run() {
    std::unique_lock lock(mu_);
    while (!done_) {
      if (queue_.empty()) {
        cv_.wait(lock);
        continue;
      }
      const auto when = queue_.top().when;  // a copy: add() may move the entries
      if (clock_type::now() < when) {
        cv_.wait_until(lock, when);
        continue;
      }
      auto source = queue_.top().source;
      queue_.pop();
      lock.unlock();
      source->request_stop();  // may run a cancellation and a completion callback here
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<entry, std::vector<entry>, std::greater<entry>> queue_;
  bool done_ = false;
  std::thread thread_;
};

enum class form { dispatch, dispatch_many, future_one, future_many, callback_one, callback_many };
enum class cancel_mode { none, handle_now, handle_later, stop_before, stop_later, drop };

const char* form_name(form f) {
  switch (f) {
    case form::dispatch: return "dispatch";
    case form::dispatch_many: return "dispatch_many";
    case form::future_one: return "dispatch_async (future)";
    case form::future_many: return "dispatch_many_async (future)";
    case form::callback_one: return "dispatch_async (callback)";
    case form::callback_many: return "dispatch_many_async (callback)";
  }
  return "?";
}
bool is_many(form f) {
  return f == form::dispatch_many || f == form::future_many || f == form::callback_many;
}
bool is_blocking(form f) { return f == form::dispatch || f == form::dispatch_many; }
bool is_future(form f) { return f == form::future_one || f == form::future_many; }

// One call as issued, and what its answer may be.
struct call_plan {
  form kind = form::dispatch;
  std::vector<item_t> items;
  bool by_span = false;  // an explicit batch handed over as a span (copied), else moved
  // Made on the server's own thread (a batch function or completion
  // callback): "" for a caller's call, else where.
  const char* nested_in = "";
  bool on_partition = false;  // ... on a partition thread
  clock_type::time_point issued_at{};
  bool has_deadline = false;
  clock_type::time_point deadline_lo{};  // its deadline is no earlier than this
  std::string deadline_kind = "none";
  cancel_mode cancel = cancel_mode::none;
  std::shared_ptr<std::stop_source> stop;  // when cancelled by stop_token
  bool cancel_returned_true = false;       // future::cancel() said it cancelled
  bool was_ready_before_cancel = false;

  bool stop_requested() const { return stop && stop->stop_requested(); }
  bool nested() const { return *nested_in != '\0'; }
  bool has(item_t flag) const {
    return std::any_of(items.begin(), items.end(), [&](item_t x) { return (x & flag) != 0; });
  }
  // Copying its fragile item into the call throws: the answer is decided
  // before anything else is looked at.
  bool copy_must_throw() const { return by_span && has(flag_copy_throws); }
  // Moving its result to it in its own thread throws (single results only:
  // an explicit batch's results move as one vector; callbacks run on the
  // server's thread).
  bool result_move_throws_in_caller() const {
    return (kind == form::dispatch || kind == form::future_one) &&
           has(flag_result_move_throws_on_caller);
  }
  std::string describe() const {
    const auto poisoned = std::count_if(items.begin(), items.end(), is_poison);
    const auto slow =
        std::count_if(items.begin(), items.end(), [](item_t x) { return (x & flag_slow) != 0; });
    const auto fragile = std::count_if(items.begin(), items.end(),
                                       [](item_t x) { return (x & fragile_flags) != 0; });
    std::string s = std::string(nested() ? std::string("nested (in ") + nested_in +
                                               (on_partition ? ", on a partition) " : ") ")
                                         : std::string()) +
                    form_name(kind) + (is_many(kind) ? (by_span ? " (span)" : " (moved)") : "") +
                    " of " + std::to_string(items.size()) + " items (" + std::to_string(poisoned) +
                    " poisoned, " + std::to_string(slow) + " slow, " + std::to_string(fragile) +
                    " fragile), deadline " + deadline_kind + ", cancel ";
    switch (cancel) {
      case cancel_mode::none: s += "none"; break;
      case cancel_mode::handle_now: s += "future::cancel() at once"; break;
      case cancel_mode::handle_later: s += "future::cancel() later"; break;
      case cancel_mode::stop_before: s += "stop_token stopped before dispatch"; break;
      case cancel_mode::stop_later: s += "stop_token stopped later"; break;
      case cancel_mode::drop: s += "dropped future"; break;
    }
    return s;
  }
};

// Whether `message` names one of the call's items carrying `flag` (as the
// value's exception says: "... value N threw"), as an input or its result.
bool names_own_item(const call_plan& p, const std::string& message, item_t flag, bool result) {
  return std::any_of(p.items.begin(), p.items.end(), [&](item_t x) {
    return (x & flag) != 0 &&
           contains(message, " value " + std::to_string(result ? expected_output(x) : x) + " ");
  });
}

// The execution_failed of a throwing move: whether the message says so and
// names an item of the call's own whose move throws there. Sets `moved`
// when the message blames a move at all.
bool own_move_failure(const call_plan& p, const std::string& message, bool& moved) {
  if (contains(message, "moving an input into the batch threw")) {
    moved = true;
    return names_own_item(p, message, flag_move_throws, false);
  }
  if (contains(message, "moving a result to its caller threw")) {
    moved = true;
    return names_own_item(p, message, flag_result_move_throws, true);
  }
  if (contains(message, "moving the result to its caller threw")) {
    moved = true;
    return p.result_move_throws_in_caller() &&
           names_own_item(p, message, flag_result_move_throws_on_caller, true);
  }
  return false;
}

// What a call whose answer is decided before anything else happens to it
// must be told (with invalid_argument), or nullptr: a nested blocking call
// on a partition is refused at once, and a call given as a span whose
// fragile item cannot be copied fails on the copy, which comes first.
const char* fixed_refusal(const call_plan& p) {
  if (p.on_partition && is_blocking(p.kind)) return "would wait for that thread itself";
  if (p.copy_must_throw()) return "copying the input threw";
  return nullptr;
}

// Checks one call's answer. `observed`: when the answer was seen; `prompt`:
// whether that is (about) when it was given (blocking calls, callbacks),
// rather than whenever the caller got round to a future.
void check(round_state& st, const call_plan& p, const answer_t& answer,
           clock_type::time_point observed, bool prompt) {
  const round_config& cfg = st.config;
  auto fail = [&](const std::string& why) {
    st.failures->add(st.where + ": " + p.describe() + ": " + why +
                     (answer.ok() ? std::string(" (answer: ok)")
                                  : " (answer: " + answer.error().to_string() + ")"));
  };
  if (p.cancel_returned_true && (answer.ok() || answer.error().code() != bs::errc::cancelled)) {
    fail("future::cancel() returned true but the answer is not cancelled");
  }
  if (p.was_ready_before_cancel && p.cancel_returned_true) {
    fail("future::cancel() returned true on a call that had already finished");
  }
  if (p.has_deadline && prompt) {
    // Whatever the answer, it comes by the deadline (plus scheduling slack).
    const auto late =
        std::chrono::duration_cast<std::chrono::microseconds>(observed - p.deadline_lo).count();
    record_max(st.max_lateness_us, late);
    if (std::chrono::microseconds(late) > lateness_bound) {
      fail("answered " + std::to_string(late) + "us after its deadline");
    }
  }
  if (const char* must_say = fixed_refusal(p)) {
    st.invalid.fetch_add(1, std::memory_order_relaxed);
    if (answer.ok() || answer.error().code() != bs::errc::invalid_argument ||
        !contains(answer.error().message(), must_say)) {
      fail(std::string("expected invalid_argument saying \"") + must_say + "\"");
    } else if (p.copy_must_throw() &&
               !names_own_item(p, answer.error().message(), flag_copy_throws, false)) {
      fail("the copy that threw was not of one of its own items");
    }
    return;
  }
  const bool too_big = cfg.max_queue && p.items.size() > *cfg.max_queue;
  if (answer.ok()) {
    st.ok.fetch_add(1, std::memory_order_relaxed);
    if (answer->size() != p.items.size()) {
      fail("got " + std::to_string(answer->size()) + " results for " +
           std::to_string(p.items.size()) + " items");
      return;
    }
    for (std::size_t i = 0; i < p.items.size(); ++i) {
      if ((*answer)[i].n != expected_output(p.items[i])) {
        fail("result " + std::to_string(i) + " is not its item's (another call's, or misplaced)");
        return;
      }
      if (is_poison(p.items[i])) {
        fail("succeeded with a poisoned item");
        return;
      }
    }
    if (too_big) fail("an explicit batch larger than max_queue succeeded");
    if (p.has(flag_move_throws) || p.has(flag_result_move_throws) ||
        p.result_move_throws_in_caller()) {
      fail("succeeded, though moving one of its items or results had to throw");
    }
    return;
  }
  const auto code = answer.error().code();
  const std::string& message = answer.error().message();
  if (too_big && code != bs::errc::invalid_argument && code != bs::errc::timeout &&
      code != bs::errc::cancelled) {
    fail("an explicit batch larger than max_queue was not answered invalid_argument");
  }
  switch (code) {
    case bs::errc::execution_failed: {
      st.failed.fetch_add(1, std::memory_order_relaxed);
      bool moved = false;
      if (own_move_failure(p, message, moved)) {
        if (contains(message, "moving the result")) {
          st.failed_in_caller.fetch_add(1, std::memory_order_relaxed);
        }
        break;
      }
      if (moved) {
        fail("execution_failed for a throwing move that is not of one of its own items");
      } else if (cfg.isolate_failures) {
        if (!std::any_of(p.items.begin(), p.items.end(), is_poison)) {
          fail("execution_failed without a poisoned item of its own (isolated)");
        }
      } else if (!st.any_tainted(p.items)) {
        fail("execution_failed, but none of its items was in a failed execution");
      }
      break;
    }
    case bs::errc::timeout:
      st.timed_out.fetch_add(1, std::memory_order_relaxed);
      if (!p.has_deadline) {
        fail("timeout for a call without a deadline");
      } else if (observed < p.deadline_lo) {
        fail("timeout " +
             std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(p.deadline_lo -
                                                                                  observed)
                                .count()) +
             "us before its deadline");
      }
      break;
    case bs::errc::cancelled:
      st.cancelled.fetch_add(1, std::memory_order_relaxed);
      if (!p.cancel_returned_true && !p.stop_requested()) fail("cancelled but nobody cancelled it");
      break;
    case bs::errc::overloaded:
      st.overloaded.fetch_add(1, std::memory_order_relaxed);
      if (!cfg.max_queue) fail("overloaded without a max_queue");
      if (too_big) fail("overloaded instead of invalid_argument");
      break;
    case bs::errc::invalid_argument:
      st.invalid.fetch_add(1, std::memory_order_relaxed);
      // A nested future waited for on its partition while still queued is
      // answered instead of waiting for that thread itself.
      if (!too_big &&
          !(p.on_partition && is_future(p.kind) && contains(message, "while still queued"))) {
        fail("invalid_argument for a valid call");
      }
      break;
    case bs::errc::shutting_down:
    case bs::errc::no_serving:
      st.shut_down.fetch_add(1, std::memory_order_relaxed);
      if (!st.stop_started.load()) fail("shutting_down/no_serving before the shutdown began");
      break;
    default: fail("unexpected error code"); break;
  }
}

// Counts an answer (after it was checked): the round's and the watchdog's.
void answered(round_state& st) {
  st.answered.fetch_add(1, std::memory_order_acq_rel);
  progress().answers.fetch_add(1, std::memory_order_relaxed);
}

// An exception escaped a dispatch form (none may): a failure, and the call's
// answer, so the round's count still adds up.
void escaped(round_state& st, const call_plan& p, const std::exception& e) {
  st.failures->add(st.where + ": " + p.describe() +
                   ": an exception escaped the dispatch (every form answers instead): " + e.what());
  answered(st);
}

// Set in caller threads: a callback refused overloaded runs at once in its
// caller's thread, and tells the caller to back off through this.
thread_local bool* overload_seen = nullptr;

void act_from_inside(const std::shared_ptr<round_state>& st, stop_site site, bool on_partition);

// The completion callback of a callback-form call: checks its answer,
// exactly once; a caller's call may then stop the server or call it again
// from inside (nested calls do neither: one level is enough).
struct checking_callback {
  std::shared_ptr<round_state> st;
  std::shared_ptr<call_plan> plan;
  std::shared_ptr<std::atomic<int>> runs = std::make_shared<std::atomic<int>>(0);

  template <class T>
  void operator()(bs::result<T> r) const {
    const auto now = clock_type::now();
    if (runs->fetch_add(1) != 0) {
      st->failures->add(st->where + ": " + plan->describe() + ": the callback ran twice");
      return;
    }
    check(*st, *plan, as_many(r), now, true);
    if (overload_seen != nullptr && !r.ok() && r.error().code() == bs::errc::overloaded) {
      *overload_seen = true;
    }
    // From server threads, and from callers' threads (refusals), concurrently
    // with each other and with the owner's stop() at the end of the round.
    if (!plan->nested()) {
      act_from_inside(st, stop_site::callback, partition_of_round == st->serial);
    }
    answered(*st);
  }

  // For an exception that escaped the dispatch: the call's answer, unless
  // the callback ran.
  void report_escape(const std::exception& e) const {
    if (runs->fetch_add(1) == 0) escaped(*st, *plan, e);
  }
};

// The explicit-batch forms, handing the items over as the plan says: a
// span (copied, in this thread) or a vector given up (moved through).
bs::result<std::vector<value>> dispatch_many(server_t& srv, const call_plan& p,
                                             const bs::call_options& opts) {
  std::vector<value> xs = inputs_of(p.items);
  if (p.by_span) return srv.dispatch_many(std::span<const value>(xs), opts);
  return srv.dispatch_many(std::move(xs), opts);
}
bs::future<std::vector<value>> dispatch_many_async(server_t& srv, const call_plan& p,
                                                   const bs::call_options& opts) {
  std::vector<value> xs = inputs_of(p.items);
  if (p.by_span) return srv.dispatch_many_async(std::span<const value>(xs), opts);
  return srv.dispatch_many_async(std::move(xs), opts);
}
void dispatch_many_async(server_t& srv, const call_plan& p, const bs::call_options& opts,
                         const checking_callback& done) {
  std::vector<value> xs = inputs_of(p.items);
  if (p.by_span) {
    srv.dispatch_many_async(std::span<const value>(xs), opts, done);
  } else {
    srv.dispatch_many_async(std::move(xs), opts, done);
  }
}

// ---------------------------------------------------------------- from inside

// A per-thread random source for what the server's own threads do (not
// part of a round's deterministic configuration: which thread runs what is
// timing anyway).
std::minstd_rand& inside_rng() {
  thread_local std::minstd_rand rng(static_cast<std::minstd_rand::result_type>(
      std::hash<std::thread::id>{}(std::this_thread::get_id())));
  return rng;
}
bool inside_chance(double p) {
  return p > 0 && std::uniform_real_distribution<double>(0.0, 1.0)(inside_rng()) < p;
}

// Issues one nested call and settles it: a blocking or future form waits
// here (refused, or answered "while still queued", on a partition thread),
// a callback form is checked by its callback. Returns at once otherwise.
void nested_call(const std::shared_ptr<round_state>& shared, std::shared_ptr<server_t> srv,
                 call_plan p) {
  round_state& st = *shared;
  st.issued.fetch_add(1, std::memory_order_relaxed);
  st.nested.fetch_add(1, std::memory_order_relaxed);
  try {
    switch (p.kind) {
      case form::dispatch: {
        auto r = srv->dispatch(input_of(p.items[0]));
        check(st, p, as_many(r), clock_type::now(), true);
        break;
      }
      case form::dispatch_many: {
        auto r = dispatch_many(*srv, p, {});
        check(st, p, as_many(r), clock_type::now(), true);
        break;
      }
      case form::future_one: {
        auto f = srv->dispatch_async(input_of(p.items[0]));
        srv.reset();  // a future outlives its server: do not keep it alive meanwhile
        auto r = f.get();
        check(st, p, as_many(r), clock_type::now(), true);
        break;
      }
      case form::future_many: {
        auto f = dispatch_many_async(*srv, p, {});
        srv.reset();
        auto r = f.get();
        check(st, p, as_many(r), clock_type::now(), true);
        break;
      }
      case form::callback_one:
      case form::callback_many: {
        const checking_callback done{shared, std::make_shared<call_plan>(std::move(p))};
        try {
          if (done.plan->kind == form::callback_one) {
            srv->dispatch_async(input_of(done.plan->items[0]), done);
          } else {
            dispatch_many_async(*srv, *done.plan, {}, done);
          }
        } catch (const std::exception& e) {
          done.report_escape(e);
        }
        return;  // its callback counts its answer
      }
    }
  } catch (const std::exception& e) {
    escaped(st, p, e);
    return;
  }
  answered(st);
}

// Now and then (nest_rate), a call to the same server from inside it
// (misuse_test.cpp): any form on a partition thread, where blocking ones are
// refused at once; only callback forms elsewhere (a caller's, the
// canceller's or the timer's thread), where a blocking one would just wait.
void maybe_nest(const std::shared_ptr<round_state>& shared, const char* in, bool on_partition) {
  round_state& st = *shared;
  if (!inside_chance(st.config.nest_rate) || !st.nesting.enter()) return;
  if (std::shared_ptr<server_t> srv = st.server.lock()) {
    auto& rng = inside_rng();
    call_plan p;
    p.nested_in = in;
    p.on_partition = on_partition;
    p.kind = static_cast<form>(on_partition ? rng() % 6 : 4 + rng() % 2);
    const std::size_t n = is_many(p.kind) ? 1 + rng() % 3 : 1;
    for (std::size_t k = 0; k < n; ++k) {
      p.items.push_back(make_item(nested_caller, ++st.nested_seq, 0));
    }
    p.by_span = rng() % 2 == 0;
    p.issued_at = clock_type::now();
    if (st.config.default_timeout) {
      p.has_deadline = true;
      p.deadline_lo = p.issued_at + *st.config.default_timeout;
      p.deadline_kind = "default_timeout";
    }
    nested_call(shared, std::move(srv), std::move(p));
  }
  st.nesting.leave();
}

// Stops or destroys the server from inside, once the round's stop is due:
// every due callback or batch function of the configured site does, from
// server threads and callers' threads (refusals), concurrently with each
// other and with the owner's stop() at the end of the round. To destroy, the
// first one due drops the owner's reference: the server dies here unless a
// call elsewhere still holds it (then with that call's). On a partition's
// own thread either returns at once, whatever shutdown_timeout is.
void stop_from_inside(round_state& st, bool on_partition) {
  const round_config& cfg = st.config;
  st.stop_started.store(true);
  const auto began = clock_type::now();
  if (cfg.destroy) {
    if (std::shared_ptr<server_t> victim = st.take_owner()) {
      victim.reset();
      if (st.server.expired()) st.destroyed_inside.store(true);
    }
  } else if (std::shared_ptr<server_t> srv = st.server.lock()) {
    srv->stop();
  }
  const auto took = clock_type::now() - began;
  st.inside_stops.fetch_add(1, std::memory_order_relaxed);
  const auto took_us = std::chrono::duration_cast<std::chrono::microseconds>(took).count();
  record_max(on_partition ? st.longest_inside_stop_us : st.longest_elsewhere_stop_us, took_us);
  if (took > (on_partition ? inside_stop_bound : elsewhere_stop_bound)) {
    st.failures->add(st.where + ": " + (cfg.destroy ? "destroying the server" : "stop()") +
                     (on_partition ? " on its own partition thread" : " in a callback elsewhere") +
                     " took " + std::to_string(std::chrono::duration<double>(took).count()) +
                     " s (shutdown_timeout " + std::to_string(cfg.shutdown_timeout.count()) +
                     " ms): it waited for " +
                     (on_partition ? "the partition it runs on"
                                   : "something that was not running"));
  }
  st.stop_done.store(true);
}

// What a batch function or a caller's callback does from inside the server
// besides its work: a nested call now and then, and the round's stop when
// it is due there.
void act_from_inside(const std::shared_ptr<round_state>& st, stop_site site, bool on_partition) {
  const round_config& cfg = st->config;
  maybe_nest(st, site == stop_site::callback ? "a callback" : "the batch function", on_partition);
  if (cfg.stop_after && cfg.stop_from == site && !st->stop_done.load() &&
      clock_type::now() - st->started >= *cfg.stop_after) {
    stop_from_inside(*st, on_partition);
  }
}

bs::serving<value, value> stress_serving(std::shared_ptr<round_state> st) {
  return bs::serving<value, value>([st = std::move(st)](std::span<const value> xs) {
    partition_of_round = st->serial;  // its callbacks will know they run on a partition
    act_from_inside(st, stop_site::batch_function, true);
    std::vector<value> out;
    out.reserve(xs.size());  // never grows: growing would copy the results
    bool short_count = false;
    for (const value& x : xs) {
      if (x.n & flag_throw) {
        st->taint(xs);
        throw std::runtime_error("poisoned item " + std::to_string(x.n));
      }
      if (x.n & flag_wrong_count) short_count = true;
      if (x.n & flag_slow) std::this_thread::sleep_for(slow_time(x.n));
      out.emplace_back(expected_output(x.n), result_throws(x.n));  // in place: no move
    }
    if (short_count) {
      st->taint(xs);
      out.pop_back();
    }
    return out;
  });
}

// ---------------------------------------------------------------- callers

// One caller's random choices for its next call (all but the answer).
class call_planner {
 public:
  call_planner(const round_state& st, canceller& cancels, int caller)
      : cfg_(st.config),
        cancels_(cancels),
        caller_(caller),
        rng_(st.seed * 7919 + static_cast<std::uint64_t>(caller)),
        misuse_rng_((st.seed * 7919 + static_cast<std::uint64_t>(caller)) ^ misuse_seed) {}

  // The plan of the next call, and its options.
  call_plan next(bs::call_options& opts) {
    call_plan p;
    // A server destroyed from inside dies with its last reference: a caller
    // blocked in it would hold that, so such rounds only use the forms that
    // return at once.
    p.kind = static_cast<form>(cfg_.destroy ? pick(2, 5) : pick(0, 5));
    std::size_t n = 1;
    if (is_many(p.kind)) {
      // Now and then an explicit batch too large for max_queue (invalid_argument).
      const std::size_t most_items = 2 * cfg_.batch_size + 3;
      const std::size_t fits = std::min(most_items, cfg_.max_queue.value_or(SIZE_MAX));
      n = pick(0, 49) == 0 ? pick(1, 4 * most_items) : pick(1, fits);
      p.by_span = uniform(misuse_rng_, 0, 1) == 0;
    }
    p.items.reserve(n);
    for (std::size_t k = 0; k < n; ++k) p.items.push_back(fresh_item());
    p.issued_at = clock_type::now();
    plan_deadline(p, opts);
    plan_cancel(p, opts);
    return p;
  }

 private:
  bool chance(double p) { return p > 0 && unit_(rng_) < p; }
  std::uint64_t pick(std::uint64_t lo, std::uint64_t hi) {
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng_);
  }

  item_t fresh_item() {
    item_t flags = 0;
    if (chance(cfg_.poison_rate)) flags |= pick(0, 1) == 0 ? flag_throw : flag_wrong_count;
    if (chance(cfg_.slow_rate)) flags |= flag_slow;
    if (cfg_.fragile_rate > 0 && unit_(misuse_rng_) < cfg_.fragile_rate) {
      flags |= one_of(misuse_rng_, flag_copy_throws, flag_move_throws, flag_result_move_throws,
                      flag_result_move_throws_on_caller);
    }
    return make_item(caller_, ++seq_, flags);
  }

  void plan_deadline(call_plan& p, bs::call_options& opts) {
    if (chance(cfg_.deadline_rate)) {
      // 0 (10%: answered timeout at the door), tiny, medium, generous (30% each).
      const auto size = pick(0, 9);
      std::chrono::microseconds d = size == 0   ? 0us
                                    : size <= 3 ? std::chrono::microseconds(pick(1, 300))
                                    : size <= 6 ? std::chrono::microseconds(pick(1'000, 10'000))
                                                : std::chrono::microseconds(1s);
      p.deadline_kind = size == 0 ? "0" : size <= 3 ? "tiny" : size <= 6 ? "medium" : "generous";
      const int how = static_cast<int>(pick(0, 2));
      if (how != 1) opts.timeout = d;
      if (how != 0) opts.deadline = p.issued_at + d;
      if (how == 1 && pick(0, 9) == 0) {
        opts.deadline = p.issued_at - 1ms;  // already passed
        d = -1ms;
        p.deadline_kind = "passed";
      }
      p.deadline_kind += how == 0 ? " (timeout)" : how == 1 ? " (deadline)" : " (both)";
      p.has_deadline = true;
      p.deadline_lo = p.issued_at + d;
    } else if (cfg_.default_timeout) {
      p.has_deadline = true;
      p.deadline_lo = p.issued_at + *cfg_.default_timeout;
      p.deadline_kind = "default_timeout";
    }
  }

  void plan_cancel(call_plan& p, bs::call_options& opts) {
    if (chance(cfg_.cancel_rate)) {
      switch (pick(0, is_future(p.kind) ? 4 : 1)) {
        case 0: p.cancel = cancel_mode::stop_before; break;
        case 1: p.cancel = cancel_mode::stop_later; break;
        case 2: p.cancel = cancel_mode::handle_now; break;
        default: p.cancel = cancel_mode::handle_later; break;
      }
    }
    if (cfg_.drop_futures && is_future(p.kind) && pick(0, 19) == 0) p.cancel = cancel_mode::drop;
    if (p.cancel == cancel_mode::stop_before || p.cancel == cancel_mode::stop_later) {
      p.stop = std::make_shared<std::stop_source>();
      opts.stop_token = p.stop->get_token();
      if (p.cancel == cancel_mode::stop_before) {
        p.stop->request_stop();
      } else {
        cancels_.add(clock_type::now() + std::chrono::microseconds(pick(0, 2'000)), p.stop);
      }
    }
  }

  const round_config& cfg_;
  canceller& cancels_;
  const int caller_;
  // rng_ makes the choices the test made before it had fragile items and
  // spans (so a seed's calls stay the same otherwise); misuse_rng_ the rest.
  std::mt19937_64 rng_;
  std::mt19937_64 misuse_rng_;
  std::uniform_real_distribution<double> unit_{0.0, 1.0};
  std::uint64_t seq_ = 0;
};

// One caller thread: a random mix of every form and option.
class caller {
 public:
  caller(std::shared_ptr<round_state> shared, canceller& cancels, int index)
      : shared_(std::move(shared)),
        st_(*shared_),
        planner_(st_, cancels, index),
        current_(st_.current[static_cast<std::size_t>(index)]),
        // Where the server is destroyed from inside, a reference held between
        // calls would keep it alive: there a caller takes one per call
        // (waiting for a future needs none). Elsewhere it keeps this one.
        kept_(st_.config.destroy ? nullptr : st_.server.lock()) {}

  void run(std::uint64_t budget) {
    on_callers_thread = true;
    overload_seen = &backing_off_;
    std::uint64_t after_stop = 0;
    for (std::uint64_t i = 0; i < budget; ++i) {
      // Once the shutdown began, a few more calls (refused), then stop issuing.
      const bool stopping = st_.stop_started.load(std::memory_order_relaxed);
      if (stopping && ++after_stop > 16) break;
      if (clock_type::now() >= st_.issue_until) break;
      // Destroyed from inside, or about to be: none of these calls keeps it
      // alive then (the destruction is likelier to happen inside).
      if (stopping && st_.config.destroy) break;
      if (!issue_next()) break;
      settle(st_.config.in_flight);
      if (backing_off_) {  // saw overloaded: wait for its calls in flight, like a client would
        backing_off_ = false;
        settle(0);
        std::this_thread::yield();
      }
    }
    settle(0);
    overload_seen = nullptr;
    on_callers_thread = false;
  }

 private:
  template <class T>
  struct pending {
    call_plan plan;
    bs::future<T> f;
  };

  // Plans and issues one call; false once the server is gone.
  bool issue_next() {
    const std::shared_ptr<server_t> per_call = kept_ ? nullptr : st_.server.lock();
    server_t* const srv = kept_ ? kept_.get() : per_call.get();
    if (srv == nullptr) return false;
    bs::call_options opts;
    call_plan p = planner_.next(opts);
    st_.issued.fetch_add(1, std::memory_order_relaxed);
    current_.store(&p, std::memory_order_relaxed);
    try {
      issue(*srv, p, opts);
    } catch (const std::exception& e) {
      escaped(st_, p, e);  // a blocking or future form (p is still the plan)
    }
    current_.store(nullptr, std::memory_order_relaxed);
    return true;
  }

  void issue(server_t& srv, call_plan& p, const bs::call_options& opts) {
    switch (p.kind) {
      case form::dispatch: answer_now(p, srv.dispatch(input_of(p.items[0]), opts)); break;
      case form::dispatch_many: answer_now(p, dispatch_many(srv, p, opts)); break;
      case form::future_one:
        keep(singles_, p, srv.dispatch_async(input_of(p.items[0]), opts));
        break;
      case form::future_many: keep(manys_, p, dispatch_many_async(srv, p, opts)); break;
      case form::callback_one:
      case form::callback_many: {
        const checking_callback done{shared_, std::make_shared<call_plan>(std::move(p))};
        try {
          if (done.plan->kind == form::callback_one) {
            srv.dispatch_async(input_of(done.plan->items[0]), opts, done);
          } else {
            dispatch_many_async(srv, *done.plan, opts, done);
          }
        } catch (const std::exception& e) {
          done.report_escape(e);
        }
        break;
      }
    }
  }

  // A blocking call's answer.
  template <class T>
  void answer_now(const call_plan& p, const bs::result<T>& r) {
    check(st_, p, as_many(r), clock_type::now(), true);
    answered(st_);
    backing_off_ = !r.ok() && r.error().code() == bs::errc::overloaded;
  }

  // A future, kept to be settled later (or dropped, or cancelled at once).
  template <class T>
  void keep(std::deque<pending<T>>& queue, call_plan& p, bs::future<T>&& f) {
    if (p.cancel == cancel_mode::drop) {
      st_.dropped.fetch_add(1, std::memory_order_relaxed);
      return;  // the future dies unanswered here
    }
    if (p.cancel == cancel_mode::handle_now) p.cancel_returned_true = f.cancel();
    queue.push_back({std::move(p), std::move(f)});
  }

  // Gets the oldest futures until at most `keep` of each kind are left.
  void settle(std::size_t keep) {
    for (; singles_.size() > keep; singles_.pop_front()) settle(singles_.front());
    for (; manys_.size() > keep; manys_.pop_front()) settle(manys_.front());
  }
  template <class T>
  void settle(pending<T>& one) {
    call_plan& p = one.plan;
    current_.store(&p, std::memory_order_relaxed);
    if (p.cancel == cancel_mode::handle_later) {
      p.was_ready_before_cancel = one.f.ready();
      p.cancel_returned_true = one.f.cancel();
    }
    auto r = one.f.get();
    check(st_, p, as_many(r), clock_type::now(), false);
    answered(st_);
    backing_off_ = backing_off_ || (!r.ok() && r.error().code() == bs::errc::overloaded);
    current_.store(nullptr, std::memory_order_relaxed);
  }

  const std::shared_ptr<round_state> shared_;
  round_state& st_;
  call_planner planner_;
  std::atomic<const call_plan*>& current_;
  const std::shared_ptr<server_t> kept_;
  std::deque<pending<value>> singles_;
  std::deque<pending<std::vector<value>>> manys_;
  bool backing_off_ = false;
};

// Waits until `done()` or the watchdog fires (it aborts the process).
template <class Pred>
void wait_until(Pred done) {
  while (!done()) std::this_thread::sleep_for(200us);
}

// Waits until `done()`, at most `limit`; returns done().
template <class Pred>
bool wait_for(clock_type::duration limit, Pred done) {
  const auto until = clock_type::now() + limit;
  while (!done() && clock_type::now() < until) std::this_thread::sleep_for(200us);
  return done();
}

struct totals {
  std::uint64_t rounds = 0, calls = 0, dropped = 0, ok = 0, failed = 0, timed_out = 0,
                cancelled = 0, overloaded = 0, shut_down = 0, invalid = 0;
  std::uint64_t executions = 0, isolation_executions = 0, calls_isolated = 0;
  std::uint64_t nested = 0, inside_stops = 0, destroyed_inside = 0;
  std::int64_t max_lateness_us = 0, longest_inside_stop_us = 0, longest_elsewhere_stop_us = 0;
};

// ---------------------------------------------------------------- a round

std::shared_ptr<server_t> start_server(const std::shared_ptr<round_state>& st) {
  const round_config& cfg = st->config;
  return std::make_shared<server_t>(stress_serving(st),
                                    bs::server_options{.batch_size = cfg.batch_size,
                                                       .batch_timeout = cfg.batch_timeout,
                                                       .partitions = cfg.partitions,
                                                       .max_queue = cfg.max_queue,
                                                       .default_timeout = cfg.default_timeout,
                                                       .isolate_failures = cfg.isolate_failures,
                                                       .shutdown_timeout = cfg.shutdown_timeout});
}

// Runs the callers (and the stopper from outside, if any) until they are done.
void run_callers(const std::shared_ptr<round_state>& st, std::uint64_t budget) {
  const round_config& cfg = st->config;
  const std::uint64_t per_caller =
      std::max<std::uint64_t>(1, budget / static_cast<std::uint64_t>(cfg.callers));
  std::thread stopper;
  if (cfg.stop_after && cfg.stop_from == stop_site::outside) {
    stopper = std::thread([st, after = *cfg.stop_after] {
      std::this_thread::sleep_for(after);
      st->stop_started.store(true);
      if (auto srv = st->server.lock()) srv->stop();
      st->stop_done.store(true);
    });
  }
  canceller cancels;
  std::vector<std::thread> callers;
  for (int c = 0; c < cfg.callers; ++c) {
    callers.emplace_back([&, c] { caller(st, cancels, c).run(per_caller); });
  }
  for (auto& t : callers) t.join();
  if (stopper.joinable()) stopper.join();
  // Callback calls may still be running; in a round without a shutdown
  // they must all finish on their own.
  if (!st->stop_started.load()) {
    wait_until([&] { return st->answered.load() + st->dropped.load() == st->issued.load(); });
  }
}

// Stops the server the owner still holds; returns its counters once every
// call was answered.
bs::server_stats stop_and_count(round_state& st, std::shared_ptr<server_t> srv) {
  const bool idle = !st.stop_started.load();  // every call answered, no stop yet
  st.stop_started.store(true);  // from here on shutting_down is a fair answer
  const auto stop_began = clock_type::now();
  srv->stop();
  if (idle && clock_type::now() - stop_began > idle_stop_bound) {
    st.failures->add(
        st.where + ": stop() of an idle server took " +
        std::to_string(std::chrono::duration<double>(clock_type::now() - stop_began).count()) +
        " s (shutdown_timeout " + std::to_string(st.config.shutdown_timeout.count()) +
        " ms): a partition missed the stop");
  }
  // No nested call from here on, and a call finished by a partition the
  // shutdown gave up on may be completed (its callback run) just after
  // stop() returns.
  st.nesting.close();
  wait_until([&] { return st.answered.load() + st.dropped.load() >= st.issued.load(); });
  return srv->stats();
}

// The server's counters against what the callers saw: exact, except that
// a dropped future's answer was seen by nobody.
void check_stats(round_state& st, const bs::server_stats& stats) {
  const round_config& cfg = st.config;
  const std::uint64_t dropped = st.dropped.load();
  auto fail = [&](const std::string& why) { st.failures->add(st.where + ": " + why); };
  auto same = [&](const char* what, std::uint64_t counted, std::uint64_t seen) {
    if (counted < seen || counted > seen + dropped) {
      fail(std::string("server_stats.") + what + " = " + std::to_string(counted) +
           ", but callers saw " + std::to_string(seen) +
           (dropped ? " (+ up to " + std::to_string(dropped) + " dropped)" : std::string()));
    }
  };
  same("calls_cancelled", stats.calls_cancelled, st.cancelled.load());
  same("calls_timed_out", stats.calls_timed_out, st.timed_out.load());
  same("calls_overloaded", stats.calls_overloaded, st.overloaded.load());
  same("calls_failed", stats.calls_failed, st.failed.load() - st.failed_in_caller.load());
  same("calls_rejected + calls_shut_down", stats.calls_rejected + stats.calls_shut_down,
       st.shut_down.load());
  if (stats.calls_accepted + stats.calls_overloaded + stats.calls_rejected > st.issued.load()) {
    fail("server_stats counts more calls than were issued");
  }
  if (cfg.poison_rate == 0 && stats.failed_executions != 0) {
    fail("failed executions without poisoned items");
  }
  if (cfg.poison_rate == 0 && cfg.fragile_rate == 0 && stats.calls_failed != 0) {
    fail("failed calls without poisoned or fragile items");
  }
  if (!cfg.isolate_failures && (stats.isolation_executions != 0 || stats.calls_isolated != 0)) {
    fail("isolation executions with isolate_failures off");
  }
  if (stats.items_executed < stats.executions) fail("executions with no items");
}

void add_round(totals& sum, const round_state& st, const bs::server_stats& stats) {
  ++sum.rounds;
  sum.calls += st.issued.load();
  sum.dropped += st.dropped.load();
  sum.ok += st.ok.load();
  sum.failed += st.failed.load();
  sum.timed_out += st.timed_out.load();
  sum.cancelled += st.cancelled.load();
  sum.overloaded += st.overloaded.load();
  sum.shut_down += st.shut_down.load();
  sum.invalid += st.invalid.load();
  sum.executions += stats.executions;
  sum.isolation_executions += stats.isolation_executions;
  sum.calls_isolated += stats.calls_isolated;
  sum.nested += st.nested.load();
  sum.inside_stops += st.inside_stops.load();
  sum.destroyed_inside += st.destroyed_inside.load() ? 1 : 0;
  sum.max_lateness_us = std::max(sum.max_lateness_us, st.max_lateness_us.load());
  sum.longest_inside_stop_us =
      std::max(sum.longest_inside_stop_us, st.longest_inside_stop_us.load());
  sum.longest_elsewhere_stop_us =
      std::max(sum.longest_elsewhere_stop_us, st.longest_elsewhere_stop_us.load());
}

void print_round(int index, const round_state& st, bool counted) {
  std::printf(
      "  round %d: %llu calls in %.2f s (%llu ok, %llu failed, %llu timeout, %llu cancelled, "
      "%llu overloaded, %llu shut down, %llu invalid; %llu nested, %llu stops from inside%s)%s; "
      "%s\n",
      index, static_cast<unsigned long long>(st.issued.load()),
      std::chrono::duration<double>(clock_type::now() - st.started).count(),
      static_cast<unsigned long long>(st.ok.load()),
      static_cast<unsigned long long>(st.failed.load()),
      static_cast<unsigned long long>(st.timed_out.load()),
      static_cast<unsigned long long>(st.cancelled.load()),
      static_cast<unsigned long long>(st.overloaded.load()),
      static_cast<unsigned long long>(st.shut_down.load()),
      static_cast<unsigned long long>(st.invalid.load()),
      static_cast<unsigned long long>(st.nested.load()),
      static_cast<unsigned long long>(st.inside_stops.load()),
      st.destroyed_inside.load() ? ", destroyed inside" : "",
      counted ? "" : " (destroyed from inside: no counters)", st.config.describe().c_str());
  std::fflush(stdout);
}

// Runs one round; failures go to `failures`.
void run_round(std::uint64_t seed, int index, const round_config& cfg, std::uint64_t round_seed,
               std::uint64_t budget, failure_log& failures, totals& sum) {
  auto st = std::make_shared<round_state>();
  st->config = cfg;
  st->seed = round_seed;
  st->where = "seed " + std::to_string(seed) + ", round " + std::to_string(index) + " (" +
              cfg.describe() + ")";
  st->failures = &failures;
  {
    std::shared_ptr<server_t> srv = start_server(st);
    st->server = srv;  // before any call, and before the watchdog can see the round
    st->give_owner(std::move(srv));
  }
  {
    std::lock_guard lock(progress().mu);
    progress().round = st;
  }
  st->started = clock_type::now();
  st->issue_until = st->started + round_time_cap;
  run_callers(st, budget);

  bs::server_stats stats;
  std::shared_ptr<server_t> srv = st->take_owner();  // null: taken to destroy it inside
  const bool counted = srv != nullptr;
  if (counted) {
    stats = stop_and_count(*st, std::move(srv));
  } else {
    // Nobody can read the counters of a server destroyed from inside.
    st->nesting.close();
    wait_until([&] { return st->answered.load() + st->dropped.load() >= st->issued.load(); });
  }
  // Every call released its references (callbacks and futures hold the round
  // state through the serving), and the server core is gone, or will be
  // once a partition the shutdown gave up on returns from the batch function.
  if (!wait_for(20s, [&] { return st.use_count() == 1; })) {
    failures.add(st->where +
                 ": 20 s after the round, a call or the server core is still alive (a leak, or a "
                 "partition thread that never exited)");
    return;
  }
  const std::uint64_t issued = st->issued.load();
  const std::uint64_t answered_calls = st->answered.load();
  const std::uint64_t dropped = st->dropped.load();
  if (answered_calls + dropped != issued) {
    failures.add(st->where + ": " + std::to_string(issued) + " calls issued, " +
                 std::to_string(answered_calls) + " answered, " + std::to_string(dropped) +
                 " dropped: answers lost or doubled");
  }
  if (counted) check_stats(*st, stats);
  if (options().verbose) print_round(index, *st, counted);
  add_round(sum, *st, stats);
}

// What the watchdog prints about the round that hangs.
void describe_hang(round_state& st) {
  std::fprintf(stderr, "  %s\n  issued %llu, answered %llu, dropped %llu%s%s\n", st.where.c_str(),
               static_cast<unsigned long long>(st.issued.load()),
               static_cast<unsigned long long>(st.answered.load()),
               static_cast<unsigned long long>(st.dropped.load()),
               st.stop_started.load() ? ", shutdown begun" : "",
               st.stop_done.load() ? ", shutdown done" : "");
  if (std::shared_ptr<server_t> srv = st.server.lock()) {
    const auto s = srv->stats();
    std::fprintf(stderr,
                 "  server_stats: accepted %llu calls / %llu items, executed %llu items in %llu "
                 "runs (%llu failed), rejected %llu, overloaded %llu, failed %llu, timed out "
                 "%llu, cancelled %llu, shut down %llu, isolation runs %llu\n",
                 static_cast<unsigned long long>(s.calls_accepted),
                 static_cast<unsigned long long>(s.items_accepted),
                 static_cast<unsigned long long>(s.items_executed),
                 static_cast<unsigned long long>(s.executions),
                 static_cast<unsigned long long>(s.failed_executions),
                 static_cast<unsigned long long>(s.calls_rejected),
                 static_cast<unsigned long long>(s.calls_overloaded),
                 static_cast<unsigned long long>(s.calls_failed),
                 static_cast<unsigned long long>(s.calls_timed_out),
                 static_cast<unsigned long long>(s.calls_cancelled),
                 static_cast<unsigned long long>(s.calls_shut_down),
                 static_cast<unsigned long long>(s.isolation_executions));
  } else {
    std::fprintf(stderr, "  the server is gone (destroyed)\n");
  }
  std::fprintf(stderr, "  nested calls issued %llu\n",
               static_cast<unsigned long long>(st.nested.load()));
  for (std::size_t c = 0; c < st.current.size(); ++c) {
    if (const call_plan* p = st.current[c].load()) {
      std::fprintf(stderr, "  caller %zu is in: %s\n", c, p->describe().c_str());
    }
  }
}

// Aborts the process, naming the seed and round, if no call is answered for
// `limit`: a hang must fail the run, not stall CI until its timeout.
class watchdog {
 public:
  watchdog(std::uint64_t seed, std::chrono::seconds limit)
      : thread_([this, seed, limit] { run(seed, limit); }) {}
  ~watchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  void run(std::uint64_t seed, std::chrono::seconds limit) {
    std::unique_lock lock(mu_);
    std::uint64_t last = progress().answers.load();
    auto last_change = clock_type::now();
    while (!cv_.wait_for(lock, 1s, [&] { return done_; })) {
      const std::uint64_t now_answers = progress().answers.load();
      if (now_answers != last) {
        last = now_answers;
        last_change = clock_type::now();
      } else if (clock_type::now() - last_change >= limit) {
        std::shared_ptr<round_state> round;
        {
          std::lock_guard p(progress().mu);
          round = progress().round.lock();
        }
        std::fprintf(stderr, "\nstress watchdog: no call answered for %lld s: a hang.\n",
                     static_cast<long long>(limit.count()));
        if (round) describe_hang(*round);
        std::fprintf(stderr, "  reproduce with: stress_test --seed=%llu\n",
                     static_cast<unsigned long long>(seed));
        std::fflush(stderr);
        std::abort();
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

TEST(StressTest, EveryCallGetsExactlyItsOwnAnswerOnce) {
  const stress_options& o = options();
  const bool soak = o.minutes > 0;
  const auto start = clock_type::now();
  const auto soak_end = start + std::chrono::duration_cast<clock_type::duration>(
                                    std::chrono::duration<double, std::ratio<60>>(o.minutes));
  std::printf("stress: seed %llu, %s (reproduce with --seed=%llu)\n",
              static_cast<unsigned long long>(o.seed),
              soak ? ("soak for " + std::to_string(o.minutes) + " min").c_str()
                   : (std::to_string(o.calls) + " calls").c_str(),
              static_cast<unsigned long long>(o.seed));
  const long rss_start = rss_kb();
  if (soak) std::printf("soak: RSS start %ld kB (%s)\n", rss_start, heap_kb().c_str());
  std::fflush(stdout);

  watchdog dog(o.seed, std::chrono::seconds(o.watchdog_seconds));
  failure_log failures;
  totals sum;
  std::mt19937_64 rng(o.seed);
  std::mt19937_64 misuse_rng(o.seed ^ misuse_seed);  // see random_stop
  auto next_report = start + 1min;
  if (o.round >= 0) {
    // One round again: its configuration and seed do not depend on timing.
    round_config cfg{};
    std::uint64_t round_seed = 0;
    std::uint64_t budget = 0;
    for (int index = 0; index <= o.round; ++index) {
      cfg = random_config(rng, misuse_rng);
      round_seed = rng();
      budget = std::uniform_int_distribution<std::uint64_t>(round_calls_lo, round_calls_hi)(rng);
    }
    std::printf("stress: round %d, %d times: %s\n", o.round, o.repeat, cfg.describe().c_str());
    for (int r = 0; r < o.repeat && failures.count.load() == 0; ++r) {
      run_round(o.seed, o.round, cfg, round_seed, budget, failures, sum);
    }
  }
  for (int index = 0; o.round < 0; ++index) {
    if (soak ? clock_type::now() >= soak_end : sum.calls >= o.calls) break;
    const round_config cfg = random_config(rng, misuse_rng);
    const std::uint64_t round_seed = rng();
    std::uint64_t budget =
        std::uniform_int_distribution<std::uint64_t>(round_calls_lo, round_calls_hi)(rng);
    if (!soak) budget = std::min(budget, std::max<std::uint64_t>(o.calls - sum.calls, 64));
    run_round(o.seed, index, cfg, round_seed, budget, failures, sum);
    if (failures.count.load() != 0) break;
    if (soak && index == 0) {
      std::printf("soak: RSS after the first round %ld kB (%s)\n", rss_kb(), heap_kb().c_str());
      std::fflush(stdout);
    }
    if (soak && clock_type::now() >= next_report) {
      next_report += 1min;
      std::printf("soak: %.1f min, %llu rounds, %llu calls, RSS %ld kB (%s)\n",
                  std::chrono::duration<double, std::ratio<60>>(clock_type::now() - start).count(),
                  static_cast<unsigned long long>(sum.rounds),
                  static_cast<unsigned long long>(sum.calls), rss_kb(), heap_kb().c_str());
      std::fflush(stdout);
    }
  }
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();

  {
    std::lock_guard lock(failures.mu);
    for (const auto& f : failures.first) ADD_FAILURE() << f;
  }
  EXPECT_EQ(failures.count.load(), 0u)
      << "failures (first 20 shown above); reproduce with --seed=" << o.seed;
  if (!soak && o.round < 0) {
    EXPECT_GE(sum.calls, o.calls);
  }
  std::printf(
      "stress: seed %llu, %llu rounds, %llu calls in %.1f s (%.0f/s): %llu ok, %llu "
      "execution_failed, %llu timeout, %llu cancelled, %llu overloaded, %llu shut down, %llu "
      "invalid, %llu dropped; %llu executions, %llu isolation re-runs (%llu calls saved); "
      "latest answer %.1f ms after its deadline; %llu nested calls; %llu stops from inside "
      "(%llu rounds destroyed inside; longest on a partition %.1f ms, elsewhere %.1f ms)\n",
      static_cast<unsigned long long>(o.seed), static_cast<unsigned long long>(sum.rounds),
      static_cast<unsigned long long>(sum.calls), seconds, static_cast<double>(sum.calls) / seconds,
      static_cast<unsigned long long>(sum.ok), static_cast<unsigned long long>(sum.failed),
      static_cast<unsigned long long>(sum.timed_out),
      static_cast<unsigned long long>(sum.cancelled),
      static_cast<unsigned long long>(sum.overloaded),
      static_cast<unsigned long long>(sum.shut_down), static_cast<unsigned long long>(sum.invalid),
      static_cast<unsigned long long>(sum.dropped), static_cast<unsigned long long>(sum.executions),
      static_cast<unsigned long long>(sum.isolation_executions),
      static_cast<unsigned long long>(sum.calls_isolated),
      static_cast<double>(sum.max_lateness_us) / 1000.0,
      static_cast<unsigned long long>(sum.nested),
      static_cast<unsigned long long>(sum.inside_stops),
      static_cast<unsigned long long>(sum.destroyed_inside),
      static_cast<double>(sum.longest_inside_stop_us) / 1000.0,
      static_cast<double>(sum.longest_elsewhere_stop_us) / 1000.0);
  if (soak) {
    std::printf("soak: RSS end %ld kB (start %ld kB; %s)\n", rss_kb(), rss_start,
                heap_kb().c_str());
  }
  std::fflush(stdout);
}

namespace {
bool parse_number(const char* arg, const char* name, double& out) {
  const std::size_t len = std::strlen(name);
  if (std::strncmp(arg, name, len) != 0 || arg[len] != '=') return false;
  char* end = nullptr;
  out = std::strtod(arg + len + 1, &end);
  if (end == arg + len + 1 || *end != '\0' || out < 0) {
    std::fprintf(stderr, "stress_test: bad value in '%s'\n", arg);
    std::exit(2);  // NOLINT(concurrency-mt-unsafe): option parsing, before any thread starts
  }
  return true;
}
}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  stress_options& o = options();
  if (auto v = env("BATCH_SERVING_STRESS_SEED")) o.seed = std::strtoull(v->c_str(), nullptr, 10);
  if (auto v = env("BATCH_SERVING_STRESS_CALLS")) o.calls = std::strtoull(v->c_str(), nullptr, 10);
  if (auto v = env("BATCH_SERVING_STRESS_MINUTES")) o.minutes = std::strtod(v->c_str(), nullptr);
  if (auto v = env("BATCH_SERVING_STRESS_WATCHDOG")) o.watchdog_seconds = std::atoi(v->c_str());
  for (int i = 1; i < argc; ++i) {
    double value = 0;
    if (parse_number(argv[i], "--seed", value)) {
      o.seed = std::strtoull(std::strchr(argv[i], '=') + 1, nullptr, 10);  // all 64 bits
    } else if (parse_number(argv[i], "--calls", value)) {
      o.calls = static_cast<std::uint64_t>(value);
    } else if (parse_number(argv[i], "--minutes", value)) {
      o.minutes = value;
    } else if (parse_number(argv[i], "--watchdog", value)) {
      o.watchdog_seconds = static_cast<int>(value);
    } else if (parse_number(argv[i], "--round", value)) {
      o.round = static_cast<int>(value);
    } else if (parse_number(argv[i], "--repeat", value)) {
      o.repeat = static_cast<int>(value);
    } else if (std::strcmp(argv[i], "--verbose") == 0) {
      o.verbose = true;
    } else {
      std::fprintf(stderr,
                   "stress_test: unknown option '%s'\n"
                   "usage: stress_test [gtest options] [--seed=N] [--calls=N] [--minutes=M] "
                   "[--watchdog=S] [--verbose] [--round=R [--repeat=K]]\n",
                   argv[i]);
      return 2;
    }
  }
  if (o.watchdog_seconds < 1) o.watchdog_seconds = 1;
  return RUN_ALL_TESTS();
}
