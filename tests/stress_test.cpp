// Seeded randomized stress: many threads mix every dispatch form, with random
// explicit batch sizes, deadlines and cancellations, against servers with
// random batch sizes, timeouts, partitions, queue bounds, default timeouts and
// failure isolation, a batch function that throws, miscounts or dawdles for
// marked items, and shutdowns at random moments.
//
// Invariant for every call: exactly one answer; on success exactly its own
// results in its own order; on failure a code that fits what happened to it:
//   execution_failed  it had a poisoned item (isolate_failures), or one of its
//                     items shared an execution that failed (without)
//   timeout           it had a deadline (its own or default_timeout), and the
//                     answer came no earlier than that deadline
//   cancelled         its caller cancelled it (stop_token, future::cancel)
//   overloaded        the server has a max_queue
//   invalid_argument  its explicit batch is larger than max_queue
//   shutting_down / no_serving   the server's shutdown had begun
// A call with a deadline is answered by then plus a generous slack; a
// future::cancel() that returned true means the answer is cancelled. Each
// round also checks the server's counters against what its callers saw,
// that every call and the server core were released at the end, and that
// stopping a server with nothing left to do returns at once.
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
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <random>
#include <span>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "batch_serving/server.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;

namespace {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define STRESS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define STRESS_SANITIZED 1
#endif
#endif

#if defined(STRESS_SANITIZED)
constexpr std::uint64_t default_calls = 300'000;
constexpr std::uint64_t round_calls_lo = 2'000;
constexpr std::uint64_t round_calls_hi = 8'000;
constexpr auto lateness_bound = 10s;  // a deadline's answer may come this much after it
constexpr auto round_time_cap = 3s;   // callers stop issuing after this
constexpr auto idle_stop_bound = 3s;  // stop() of a server with nothing to do
#elif !defined(NDEBUG)
constexpr std::uint64_t default_calls = 200'000;  // unoptimized builds
constexpr std::uint64_t round_calls_lo = 5'000;
constexpr std::uint64_t round_calls_hi = 30'000;
constexpr auto lateness_bound = 5s;
constexpr auto round_time_cap = 3s;
constexpr auto idle_stop_bound = 3s;
#else
constexpr std::uint64_t default_calls = 1'000'000;
constexpr std::uint64_t round_calls_lo = 10'000;
constexpr std::uint64_t round_calls_hi = 60'000;
constexpr auto lateness_bound = 2s;
// Slow configurations (one blocking caller, a 1 ms batch_timeout) issue
// fewer calls: the run's count comes from more rounds instead.
constexpr auto round_time_cap = 1500ms;
constexpr auto idle_stop_bound = 1s;
#endif

using clock_type = std::chrono::steady_clock;
using item_t = std::int64_t;
using server_t = bs::server<item_t, item_t>;
using answer_t = bs::result<std::vector<item_t>>;

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

// ---------------------------------------------------------------- items

// An item: caller (8 bits) | sequence (40 bits) | flags (4 bits). Unique in a
// round, so a result that went to the wrong call or place shows.
constexpr item_t flag_throw = 1;        // the batch function throws
constexpr item_t flag_wrong_count = 2;  // it returns one output too few
constexpr item_t flag_slow = 4;         // it sleeps a little first
constexpr item_t poison_flags = flag_throw | flag_wrong_count;

item_t make_item(int caller, std::uint64_t seq, item_t flags) {
  return ((static_cast<item_t>(caller) << 40 | static_cast<item_t>(seq)) << 4) | flags;
}
item_t expected_output(item_t x) { return 3 * x + 1; }
bool is_poison(item_t x) { return (x & poison_flags) != 0; }

std::chrono::microseconds slow_time(item_t x) {
  std::uint64_t h = static_cast<std::uint64_t>(x) * 0x9E3779B97F4A7C15ull;
  h ^= h >> 29;
  return std::chrono::microseconds(50 + h % 1500);
}

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
  double deadline_rate;     // per call
  double cancel_rate;       // per call
  bool drop_futures;        // some futures are dropped unanswered
  std::optional<std::chrono::microseconds> stop_after;  // shut down mid-round
  bool stop_from_callback;  // ... from inside a completion callback
  std::chrono::milliseconds shutdown_timeout;

  std::string describe() const {
    std::string s =
        "batch_size " + std::to_string(batch_size) + ", batch_timeout " +
        std::to_string(batch_timeout.count()) + "us, partitions " + std::to_string(partitions) +
        ", max_queue " + (max_queue ? std::to_string(*max_queue) : "none") + ", default_timeout " +
        (default_timeout ? std::to_string(default_timeout->count()) + "us" : "none") +
        ", isolate " + (isolate_failures ? "on" : "off") + ", callers " + std::to_string(callers) +
        ", in_flight " + std::to_string(in_flight) + ", poison " + std::to_string(poison_rate) +
        ", slow " + std::to_string(slow_rate) + ", deadlines " + std::to_string(deadline_rate) +
        ", cancels " + std::to_string(cancel_rate) + (drop_futures ? ", drops futures" : "");
    if (stop_after) {
      s += ", stop after " + std::to_string(stop_after->count()) + "us" +
           (stop_from_callback ? " from a callback" : "") + " (shutdown_timeout " +
           std::to_string(shutdown_timeout.count()) + "ms)";
    }
    return s;
  }
};

round_config random_config(std::mt19937_64& rng) {
  auto pick = [&](std::uint64_t lo, std::uint64_t hi) {
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng);
  };
  auto one_of = [&](auto... values) {
    using T = std::common_type_t<decltype(values)...>;
    const T all[] = {static_cast<T>(values)...};
    return all[pick(0, sizeof...(values) - 1)];
  };
  round_config c;
  c.batch_size = pick(0, 5) == 0 ? pick(33, 128) : pick(1, 32);
  c.batch_timeout = std::chrono::microseconds(one_of(0, 0, 50, 200, 1000));
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
    c.default_timeout = std::chrono::microseconds(one_of(200, 2'000, 20'000, 1'000'000));
  }
  c.isolate_failures = pick(0, 1) == 1;
  c.callers = static_cast<int>(pick(1, 16));
  c.in_flight = one_of(1, 4, 32, 128);
  c.poison_rate = one_of(0.0, 0.0, 0.002, 0.02);
  c.slow_rate = one_of(0.0, 0.0005, 0.003);
  c.deadline_rate = one_of(0.0, 0.2, 0.6);
  c.cancel_rate = one_of(0.0, 0.05, 0.3);
  c.drop_futures = pick(0, 4) == 0;
  c.stop_from_callback = false;
  c.shutdown_timeout = 5s;
  if (pick(0, 9) < 3) {
    c.stop_after = std::chrono::microseconds(pick(0, 150'000));
    switch (pick(0, 4)) {
      case 0: c.shutdown_timeout = 0ms; break;
      case 1: c.shutdown_timeout = 1ms; break;
      case 2:
        c.stop_from_callback = true;
        c.shutdown_timeout = 1ms;  // the callback's own partition cannot drain
        break;
      default: break;
    }
  }
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

// Everything a round's callers, callbacks and batch function share. Held by
// shared_ptr from the batch function and every callback, so the test can
// tell when the server core and every call were released.
struct round_state {
  round_config config;
  std::uint64_t seed = 0;
  std::string where;
  failure_log* failures = nullptr;
  clock_type::time_point started{};
  clock_type::time_point issue_until{};  // callers issue no call after this

  std::mutex tainted_mu;
  std::unordered_set<item_t> tainted;  // items of executions that failed

  std::atomic<bool> stop_started{false};
  std::atomic<bool> stop_done{false};
  std::atomic<server_t*> server{nullptr};  // for stop_from_callback

  std::atomic<std::uint64_t> issued{0};
  std::atomic<std::uint64_t> answered{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> ok{0}, failed{0}, timed_out{0}, cancelled{0}, overloaded{0},
      shut_down{0}, invalid{0};
  std::atomic<std::int64_t> max_lateness_us{0};
  // The call each caller is blocked in or about to issue: for the watchdog's
  // message only (read racily, when the run is about to abort).
  std::vector<std::atomic<const call_plan*>> current{16};  // callers: at most 16

  void taint(std::span<const item_t> xs) {
    std::lock_guard lock(tainted_mu);
    tainted.insert(xs.begin(), xs.end());
  }
  bool any_tainted(const std::vector<item_t>& xs) {
    std::lock_guard lock(tainted_mu);
    return std::any_of(xs.begin(), xs.end(), [&](item_t x) { return tainted.count(x) != 0; });
  }
};

bs::serving<item_t, item_t> stress_serving(std::shared_ptr<round_state> st) {
  return bs::serving<item_t, item_t>([st = std::move(st)](std::span<const item_t> xs) {
    std::vector<item_t> out;
    out.reserve(xs.size());
    bool short_count = false;
    for (auto x : xs) {
      if (x & flag_throw) {
        st->taint(xs);
        throw std::runtime_error("poisoned item " + std::to_string(x));
      }
      if (x & flag_wrong_count) short_count = true;
      if (x & flag_slow) std::this_thread::sleep_for(slow_time(x));
      out.push_back(expected_output(x));
    }
    if (short_count) {
      st->taint(xs);
      out.pop_back();
    }
    return out;
  });
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

// One call as issued, and what its answer may be.
struct call_plan {
  form kind = form::dispatch;
  std::vector<item_t> items;
  clock_type::time_point issued_at{};
  bool has_deadline = false;
  clock_type::time_point deadline_lo{};  // its deadline is no earlier than this
  std::string deadline_kind = "none";
  cancel_mode cancel = cancel_mode::none;
  std::shared_ptr<std::stop_source> stop;  // when cancelled by stop_token
  bool cancel_returned_true = false;       // future::cancel() said it cancelled
  bool was_ready_before_cancel = false;

  bool stop_requested() const { return stop && stop->stop_requested(); }
  std::string describe() const {
    const auto poisoned = std::count_if(items.begin(), items.end(), is_poison);
    const auto slow =
        std::count_if(items.begin(), items.end(), [](item_t x) { return (x & flag_slow) != 0; });
    std::string s = std::string(form_name(kind)) + " of " + std::to_string(items.size()) +
                    " items (" + std::to_string(poisoned) + " poisoned, " + std::to_string(slow) +
                    " slow), deadline " + deadline_kind + ", cancel ";
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
    std::int64_t seen = st.max_lateness_us.load(std::memory_order_relaxed);
    while (late > seen && !st.max_lateness_us.compare_exchange_weak(seen, late)) {
    }
    if (std::chrono::microseconds(late) > lateness_bound) {
      fail("answered " + std::to_string(late) + "us after its deadline");
    }
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
      if ((*answer)[i] != expected_output(p.items[i])) {
        fail("result " + std::to_string(i) + " is not its item's (another call's, or misplaced)");
        return;
      }
      if (is_poison(p.items[i])) {
        fail("succeeded with a poisoned item");
        return;
      }
    }
    if (too_big) fail("an explicit batch larger than max_queue succeeded");
    return;
  }
  const auto code = answer.error().code();
  if (too_big && code != bs::errc::invalid_argument && code != bs::errc::timeout &&
      code != bs::errc::cancelled) {
    fail("an explicit batch larger than max_queue was not answered invalid_argument");
  }
  switch (code) {
    case bs::errc::execution_failed: {
      st.failed.fetch_add(1, std::memory_order_relaxed);
      const bool own_poison = std::any_of(p.items.begin(), p.items.end(), is_poison);
      if (cfg.isolate_failures) {
        if (!own_poison) fail("execution_failed without a poisoned item of its own (isolated)");
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
      if (!too_big) fail("invalid_argument for a valid call");
      break;
    case bs::errc::shutting_down:
    case bs::errc::no_serving:
      st.shut_down.fetch_add(1, std::memory_order_relaxed);
      if (!st.stop_started.load()) fail("shutting_down/no_serving before the shutdown began");
      break;
    default: fail("unexpected error code"); break;
  }
}

answer_t as_many(const bs::result<item_t>& r) {
  if (r.ok()) return answer_t(std::vector<item_t>{*r});
  return answer_t(r.error());
}

// Counts an answer (after it was checked): the round's and the watchdog's.
void answered(round_state& st) {
  st.answered.fetch_add(1, std::memory_order_acq_rel);
  progress().answers.fetch_add(1, std::memory_order_relaxed);
}

// Set in caller threads: a callback refused overloaded runs at once in its
// caller's thread, and tells the caller to back off through this.
thread_local bool* overload_seen = nullptr;

// The completion callback of a callback-form call: checks its answer,
// exactly once, and may shut the server down from inside (stop_from_callback).
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
    if constexpr (std::is_same_v<T, item_t>) {
      check(*st, *plan, as_many(r), now, true);
    } else {
      check(*st, *plan, r, now, true);
    }
    if (overload_seen != nullptr && !r.ok() && r.error().code() == bs::errc::overloaded) {
      *overload_seen = true;
    }
    const round_config& cfg = st->config;
    // Every callback due stops the server: from server threads, from callers'
    // threads (refusals), concurrently with each other and with the owner's
    // stop() at the end of the round.
    if (cfg.stop_from_callback && now - st->started >= *cfg.stop_after && !st->stop_done.load()) {
      st->stop_started.store(true);
      st->server.load()->stop();
      st->stop_done.store(true);
    }
    answered(*st);
  }
};

// One caller thread: a random mix of every form and option.
void run_caller(const std::shared_ptr<round_state>& shared, server_t& srv, canceller& cancels,
                int caller, std::uint64_t budget) {
  round_state& st = *shared;
  const round_config& cfg = st.config;
  std::mt19937_64 rng(st.seed * 7919 + static_cast<std::uint64_t>(caller));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  auto chance = [&](double p) { return p > 0 && unit(rng) < p; };
  auto pick = [&](std::uint64_t lo, std::uint64_t hi) {
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng);
  };
  std::uint64_t seq = 0;
  auto fresh_item = [&] {
    item_t flags = 0;
    if (chance(cfg.poison_rate)) flags |= pick(0, 1) == 0 ? flag_throw : flag_wrong_count;
    if (chance(cfg.slow_rate)) flags |= flag_slow;
    return make_item(caller, ++seq, flags);
  };

  struct pending_one {
    call_plan plan;
    bs::future<item_t> f;
  };
  struct pending_many {
    call_plan plan;
    bs::future<std::vector<item_t>> f;
  };
  std::deque<pending_one> singles;
  std::deque<pending_many> manys;
  bool backing_off = false;  // saw overloaded: wait for its calls in flight, like a client would
  overload_seen = &backing_off;
  auto settle_future = [&](call_plan& p, auto& f) {
    st.current[static_cast<std::size_t>(caller)].store(&p, std::memory_order_relaxed);
    if (p.cancel == cancel_mode::handle_later) {
      p.was_ready_before_cancel = f.ready();
      p.cancel_returned_true = f.cancel();
    }
    auto r = f.get();
    const auto now = clock_type::now();
    if constexpr (std::is_same_v<decltype(r), bs::result<item_t>>) {
      check(st, p, as_many(r), now, false);
    } else {
      check(st, p, r, now, false);
    }
    answered(st);
    backing_off = backing_off || (!r.ok() && r.error().code() == bs::errc::overloaded);
    st.current[static_cast<std::size_t>(caller)].store(nullptr, std::memory_order_relaxed);
  };
  auto settle = [&](std::size_t keep) {
    while (singles.size() > keep) {
      settle_future(singles.front().plan, singles.front().f);
      singles.pop_front();
    }
    while (manys.size() > keep) {
      settle_future(manys.front().plan, manys.front().f);
      manys.pop_front();
    }
  };

  const std::size_t most_items = 2 * cfg.batch_size + 3;
  std::uint64_t after_stop = 0;
  for (std::uint64_t i = 0; i < budget; ++i) {
    // Once the shutdown began, a few more calls (refused), then stop issuing.
    if (st.stop_started.load(std::memory_order_relaxed) && ++after_stop > 16) break;
    if (clock_type::now() >= st.issue_until) break;
    call_plan p;
    p.kind = static_cast<form>(pick(0, 5));
    const bool many = p.kind == form::dispatch_many || p.kind == form::future_many ||
                      p.kind == form::callback_many;
    std::size_t n = 1;
    if (many) {
      // Now and then an explicit batch too large for max_queue (invalid_argument).
      const std::size_t fits = std::min(most_items, cfg.max_queue.value_or(SIZE_MAX));
      n = pick(0, 49) == 0 ? pick(1, 4 * most_items) : pick(1, fits);
    }
    p.items.reserve(n);
    for (std::size_t k = 0; k < n; ++k) p.items.push_back(fresh_item());

    bs::call_options opts;
    p.issued_at = clock_type::now();
    if (chance(cfg.deadline_rate)) {
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
    } else if (cfg.default_timeout) {
      p.has_deadline = true;
      p.deadline_lo = p.issued_at + *cfg.default_timeout;
      p.deadline_kind = "default_timeout";
    }

    if (chance(cfg.cancel_rate)) {
      const bool is_future = p.kind == form::future_one || p.kind == form::future_many;
      switch (pick(0, is_future ? 4 : 1)) {
        case 0: p.cancel = cancel_mode::stop_before; break;
        case 1: p.cancel = cancel_mode::stop_later; break;
        case 2: p.cancel = cancel_mode::handle_now; break;
        default: p.cancel = cancel_mode::handle_later; break;
      }
    }
    if (cfg.drop_futures && (p.kind == form::future_one || p.kind == form::future_many) &&
        pick(0, 19) == 0) {
      p.cancel = cancel_mode::drop;
    }
    if (p.cancel == cancel_mode::stop_before || p.cancel == cancel_mode::stop_later) {
      p.stop = std::make_shared<std::stop_source>();
      opts.stop_token = p.stop->get_token();
      if (p.cancel == cancel_mode::stop_before) {
        p.stop->request_stop();
      } else {
        cancels.add(clock_type::now() + std::chrono::microseconds(pick(0, 2'000)), p.stop);
      }
    }

    st.issued.fetch_add(1, std::memory_order_relaxed);
    st.current[static_cast<std::size_t>(caller)].store(&p, std::memory_order_relaxed);
    switch (p.kind) {
      case form::dispatch: {
        auto r = srv.dispatch(p.items[0], opts);
        check(st, p, as_many(r), clock_type::now(), true);
        answered(st);
        backing_off = !r.ok() && r.error().code() == bs::errc::overloaded;
        break;
      }
      case form::dispatch_many: {
        auto r = srv.dispatch_many(std::span<const item_t>(p.items), opts);
        check(st, p, r, clock_type::now(), true);
        answered(st);
        backing_off = !r.ok() && r.error().code() == bs::errc::overloaded;
        break;
      }
      case form::future_one: {
        auto f = srv.dispatch_async(p.items[0], opts);
        if (p.cancel == cancel_mode::drop) {
          st.dropped.fetch_add(1, std::memory_order_relaxed);
          break;  // the future dies unanswered here
        }
        if (p.cancel == cancel_mode::handle_now) p.cancel_returned_true = f.cancel();
        singles.push_back({std::move(p), std::move(f)});
        break;
      }
      case form::future_many: {
        auto f = srv.dispatch_many_async(p.items, opts);
        if (p.cancel == cancel_mode::drop) {
          st.dropped.fetch_add(1, std::memory_order_relaxed);
          break;
        }
        if (p.cancel == cancel_mode::handle_now) p.cancel_returned_true = f.cancel();
        manys.push_back({std::move(p), std::move(f)});
        break;
      }
      case form::callback_one: {
        auto plan = std::make_shared<call_plan>(std::move(p));
        srv.dispatch_async(plan->items[0], opts, checking_callback{shared, plan});
        break;
      }
      case form::callback_many: {
        auto plan = std::make_shared<call_plan>(std::move(p));
        srv.dispatch_many_async(plan->items, opts, checking_callback{shared, plan});
        break;
      }
    }
    st.current[static_cast<std::size_t>(caller)].store(nullptr, std::memory_order_relaxed);
    settle(cfg.in_flight);
    if (backing_off) {
      backing_off = false;
      settle(0);
      std::this_thread::yield();
    }
  }
  settle(0);
  overload_seen = nullptr;
}

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
  std::int64_t max_lateness_us = 0;
};

// Runs one round; returns false if it found failures.
void run_round(std::uint64_t seed, int index, const round_config& cfg, std::uint64_t round_seed,
               std::uint64_t budget, failure_log& failures, totals& sum) {
  auto st = std::make_shared<round_state>();
  st->config = cfg;
  st->seed = round_seed;
  st->where = "seed " + std::to_string(seed) + ", round " + std::to_string(index) + " (" +
              cfg.describe() + ")";
  st->failures = &failures;
  {
    std::lock_guard lock(progress().mu);
    progress().round = st;
  }
  const std::uint64_t per_caller =
      std::max<std::uint64_t>(1, budget / static_cast<std::uint64_t>(cfg.callers));
  bs::server_stats stats;
  {
    server_t srv(stress_serving(st), {.batch_size = cfg.batch_size,
                                      .batch_timeout = cfg.batch_timeout,
                                      .partitions = cfg.partitions,
                                      .max_queue = cfg.max_queue,
                                      .default_timeout = cfg.default_timeout,
                                      .isolate_failures = cfg.isolate_failures,
                                      .shutdown_timeout = cfg.shutdown_timeout});
    st->server.store(&srv);
    st->started = clock_type::now();
    st->issue_until = st->started + round_time_cap;
    std::thread stopper;
    if (cfg.stop_after && !cfg.stop_from_callback) {
      stopper = std::thread([&srv, st, after = *cfg.stop_after] {
        std::this_thread::sleep_for(after);
        st->stop_started.store(true);
        srv.stop();
        st->stop_done.store(true);
      });
    }
    {
      canceller cancels;
      std::vector<std::thread> callers;
      for (int c = 0; c < cfg.callers; ++c) {
        callers.emplace_back([&, c] { run_caller(st, srv, cancels, c, per_caller); });
      }
      for (auto& t : callers) t.join();
      if (stopper.joinable()) stopper.join();
      // Callback calls may still be running; in a round without a shutdown
      // they must all finish on their own.
      if (!st->stop_started.load()) {
        wait_until([&] { return st->answered.load() + st->dropped.load() == st->issued.load(); });
      }
    }
    const bool idle = !st->stop_started.load();  // every call answered, no stop yet
    st->stop_started.store(true);  // from here on shutting_down is a fair answer
    const auto stop_began = clock_type::now();
    srv.stop();
    if (idle && clock_type::now() - stop_began > idle_stop_bound) {
      failures.add(
          st->where + ": stop() of an idle server took " +
          std::to_string(std::chrono::duration<double>(clock_type::now() - stop_began).count()) +
          " s (shutdown_timeout " + std::to_string(cfg.shutdown_timeout.count()) +
          " ms): a partition missed the stop");
    }
    // A call finished by a partition the shutdown gave up on may be
    // completed (its callback run) just after stop() returns.
    wait_until([&] { return st->answered.load() + st->dropped.load() >= st->issued.load(); });
    stats = srv.stats();
    st->server.store(nullptr);
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
  auto fail = [&](const std::string& why) { failures.add(st->where + ": " + why); };
  if (answered_calls + dropped != issued) {
    fail(std::to_string(issued) + " calls issued, " + std::to_string(answered_calls) +
         " answered, " + std::to_string(dropped) + " dropped: answers lost or doubled");
  }
  // The server's counters against what the callers saw: exact, except that
  // a dropped future's answer was seen by nobody.
  auto same = [&](const char* what, std::uint64_t counted, std::uint64_t seen) {
    if (counted < seen || counted > seen + dropped) {
      fail(std::string("server_stats.") + what + " = " + std::to_string(counted) +
           ", but callers saw " + std::to_string(seen) +
           (dropped ? " (+ up to " + std::to_string(dropped) + " dropped)" : std::string()));
    }
  };
  same("calls_cancelled", stats.calls_cancelled, st->cancelled.load());
  same("calls_timed_out", stats.calls_timed_out, st->timed_out.load());
  same("calls_overloaded", stats.calls_overloaded, st->overloaded.load());
  same("calls_failed", stats.calls_failed, st->failed.load());
  same("calls_rejected + calls_shut_down", stats.calls_rejected + stats.calls_shut_down,
       st->shut_down.load());
  if (stats.calls_accepted + stats.calls_overloaded + stats.calls_rejected > issued) {
    fail("server_stats counts more calls than were issued");
  }
  if (cfg.poison_rate == 0 && (stats.failed_executions != 0 || stats.calls_failed != 0)) {
    fail("failed executions without poisoned items");
  }
  if (!cfg.isolate_failures && (stats.isolation_executions != 0 || stats.calls_isolated != 0)) {
    fail("isolation executions with isolate_failures off");
  }
  if (stats.items_executed < stats.executions) fail("executions with no items");

  if (options().verbose) {
    std::printf(
        "  round %d: %llu calls in %.2f s (%llu ok, %llu failed, %llu timeout, %llu "
        "cancelled, %llu overloaded, %llu shut down); %s\n",
        index, static_cast<unsigned long long>(issued),
        std::chrono::duration<double>(clock_type::now() - st->started).count(),
        static_cast<unsigned long long>(st->ok.load()),
        static_cast<unsigned long long>(st->failed.load()),
        static_cast<unsigned long long>(st->timed_out.load()),
        static_cast<unsigned long long>(st->cancelled.load()),
        static_cast<unsigned long long>(st->overloaded.load()),
        static_cast<unsigned long long>(st->shut_down.load()), cfg.describe().c_str());
    std::fflush(stdout);
  }
  ++sum.rounds;
  sum.calls += issued;
  sum.dropped += dropped;
  sum.ok += st->ok.load();
  sum.failed += st->failed.load();
  sum.timed_out += st->timed_out.load();
  sum.cancelled += st->cancelled.load();
  sum.overloaded += st->overloaded.load();
  sum.shut_down += st->shut_down.load();
  sum.invalid += st->invalid.load();
  sum.executions += stats.executions;
  sum.isolation_executions += stats.isolation_executions;
  sum.calls_isolated += stats.calls_isolated;
  sum.max_lateness_us = std::max(sum.max_lateness_us, st->max_lateness_us.load());
}

// What the watchdog prints about the round that hangs.
void describe_hang(round_state& st) {
  std::fprintf(stderr, "  %s\n  issued %llu, answered %llu, dropped %llu%s%s\n", st.where.c_str(),
               static_cast<unsigned long long>(st.issued.load()),
               static_cast<unsigned long long>(st.answered.load()),
               static_cast<unsigned long long>(st.dropped.load()),
               st.stop_started.load() ? ", shutdown begun" : "",
               st.stop_done.load() ? ", shutdown done" : "");
  if (server_t* srv = st.server.load()) {
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
  }
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
  auto next_report = start + 1min;
  if (o.round >= 0) {
    // One round again: its configuration and seed do not depend on timing.
    round_config cfg{};
    std::uint64_t round_seed = 0;
    std::uint64_t budget = 0;
    for (int index = 0; index <= o.round; ++index) {
      cfg = random_config(rng);
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
    const round_config cfg = random_config(rng);
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
      "latest answer %.1f ms after its deadline\n",
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
      static_cast<double>(sum.max_lateness_us) / 1000.0);
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
