// Seeded randomized stress: many threads mix every dispatch form against
// servers with random batch sizes, timeouts and partitions, a batch function
// that sometimes throws or dawdles, and shutdowns at random moments.
//
// Invariant for every call: exactly one answer; on success exactly its own
// results in its own order; on failure a code that fits what happened.
//
// Environment: BATCH_SERVING_STRESS_SEED (default: fixed), and
// BATCH_SERVING_STRESS_CALLS (default 200,000; 20,000 under sanitizers).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "batch_serving/server.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;

namespace {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t default_calls = 20'000;
#else
constexpr std::uint64_t default_calls = 200'000;
#endif

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::strtoull(value, nullptr, 10) : fallback;
}

constexpr std::int64_t poison_every = 997;   // items divisible by this make executions throw
constexpr std::int64_t dawdle_every = 1009;  // items divisible by this make executions slow

std::int64_t expected_output(std::int64_t x) { return 3 * x + 1; }
bool is_poison(std::int64_t x) { return x % poison_every == 0; }

struct round_config {
  std::size_t batch_size;
  std::chrono::microseconds batch_timeout;
  std::size_t partitions;
  int callers;
  bool poison;
  std::optional<std::chrono::microseconds> stop_after;  // shut down mid-round
};

struct round_outcome {
  std::uint64_t calls = 0;
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;
  std::uint64_t shut_down = 0;
};

class checker {
 public:
  checker(const round_config& config, std::uint64_t seed) : config_(config), seed_(seed) {}

  // Checks one answer for `items`; thread-safe.
  void check(const std::vector<std::int64_t>& items,
             const bs::result<std::vector<std::int64_t>>& answer) {
    bool has_poison = false;
    for (auto x : items) has_poison = has_poison || (config_.poison && is_poison(x));
    if (answer.ok()) {
      ++outcome_ok_;
      ASSERT_FALSE(has_poison) << "seed " << seed_ << ": a call with a poisoned item succeeded";
      ASSERT_EQ(answer->size(), items.size()) << "seed " << seed_;
      for (std::size_t i = 0; i < items.size(); ++i) {
        ASSERT_EQ((*answer)[i], expected_output(items[i]))
            << "seed " << seed_ << ": item " << i << " of a call got another's result";
      }
      return;
    }
    const auto code = answer.error().code();
    if (code == bs::errc::execution_failed) {
      ++outcome_failed_;
      ASSERT_TRUE(config_.poison) << "seed " << seed_ << ": " << answer.error().to_string();
    } else {
      ++outcome_shut_down_;
      ASSERT_TRUE(config_.stop_after.has_value() &&
                  (code == bs::errc::shutting_down || code == bs::errc::no_serving))
          << "seed " << seed_ << ": " << answer.error().to_string();
    }
  }

  void check_one(std::int64_t item, const bs::result<std::int64_t>& answer) {
    if (answer.ok()) {
      check({item}, bs::result<std::vector<std::int64_t>>(std::vector<std::int64_t>{*answer}));
    } else {
      check({item}, bs::result<std::vector<std::int64_t>>(answer.error()));
    }
  }

  round_outcome outcome() const {
    return {outcome_ok_ + outcome_failed_ + outcome_shut_down_, outcome_ok_, outcome_failed_,
            outcome_shut_down_};
  }

 private:
  round_config config_;
  std::uint64_t seed_;
  std::atomic<std::uint64_t> outcome_ok_{0};
  std::atomic<std::uint64_t> outcome_failed_{0};
  std::atomic<std::uint64_t> outcome_shut_down_{0};
};

bs::serving<std::int64_t, std::int64_t> stress_serving(bool poison) {
  return bs::serving<std::int64_t, std::int64_t>([poison](std::span<const std::int64_t> xs) {
    std::vector<std::int64_t> out;
    out.reserve(xs.size());
    for (auto x : xs) {
      if (poison && is_poison(x)) throw std::runtime_error("poisoned item " + std::to_string(x));
      if (x % dawdle_every == 0) std::this_thread::sleep_for(200us);
      out.push_back(expected_output(x));
    }
    return out;
  });
}

round_config random_config(std::mt19937_64& rng) {
  auto pick = [&](std::uint64_t lo, std::uint64_t hi) {
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng);
  };
  round_config c;
  c.batch_size = pick(1, 32);
  const std::int64_t timeouts_us[] = {0, 0, 50, 200, 1000};
  c.batch_timeout = std::chrono::microseconds(timeouts_us[pick(0, 4)]);
  c.partitions = pick(1, 4);
  c.callers = static_cast<int>(pick(1, 16));
  c.poison = pick(0, 1) == 1;
  if (pick(0, 3) == 0) c.stop_after = std::chrono::microseconds(pick(0, 100'000));
  return c;
}

// One caller thread: a random mix of every dispatch form.
void run_caller(bs::server<std::int64_t, std::int64_t>& srv, checker& check, std::uint64_t seed,
                int caller, std::uint64_t calls, std::size_t batch_size) {
  std::mt19937_64 rng(seed * 7919 + static_cast<std::uint64_t>(caller));
  std::int64_t next_item = static_cast<std::int64_t>(caller) * 100'000'000 + 1;
  auto fresh_items = [&](std::size_t n) {
    std::vector<std::int64_t> items(n);
    for (auto& x : items) x = next_item++;
    return items;
  };
  std::deque<std::pair<std::vector<std::int64_t>, bs::future<std::vector<std::int64_t>>>> many;
  std::deque<std::pair<std::int64_t, bs::future<std::int64_t>>> singles;
  auto settle = [&](std::size_t keep) {
    while (many.size() > keep) {
      check.check(many.front().first, many.front().second.get());
      many.pop_front();
    }
    while (singles.size() > keep) {
      check.check_one(singles.front().first, singles.front().second.get());
      singles.pop_front();
    }
  };
  std::uniform_int_distribution<std::size_t> size_of(1, 2 * batch_size + 3);
  for (std::uint64_t i = 0; i < calls; ++i) {
    switch (rng() % 6) {
      case 0: {
        auto item = fresh_items(1)[0];
        check.check_one(item, srv.dispatch(item));
        break;
      }
      case 1: {
        auto items = fresh_items(size_of(rng));
        check.check(items, srv.dispatch_many(items));
        break;
      }
      case 2: {
        auto item = fresh_items(1)[0];
        singles.emplace_back(item, srv.dispatch_async(item));
        break;
      }
      case 3: {
        auto items = fresh_items(size_of(rng));
        auto f = srv.dispatch_many_async(items);
        many.emplace_back(std::move(items), std::move(f));
        break;
      }
      case 4: {
        auto item = fresh_items(1)[0];
        auto once = std::make_shared<std::atomic<int>>(0);
        srv.dispatch_async(item, [&check, item, once](bs::result<std::int64_t> r) {
          EXPECT_EQ(once->fetch_add(1), 0) << "a callback ran twice";
          check.check_one(item, r);
        });
        break;
      }
      default: {
        auto items = fresh_items(size_of(rng));
        auto once = std::make_shared<std::atomic<int>>(0);
        srv.dispatch_many_async(items,
                                [&check, items, once](bs::result<std::vector<std::int64_t>> r) {
                                  EXPECT_EQ(once->fetch_add(1), 0) << "a callback ran twice";
                                  check.check(items, r);
                                });
        break;
      }
    }
    settle(32);
  }
  settle(0);
}

}  // namespace

TEST(StressTest, EveryCallGetsExactlyItsOwnAnswerOnce) {
  const std::uint64_t seed = env_or("BATCH_SERVING_STRESS_SEED", 20261127);
  const std::uint64_t total_calls = env_or("BATCH_SERVING_STRESS_CALLS", default_calls);
  std::mt19937_64 rng(seed);
  std::uint64_t done = 0;
  int rounds = 0;
  round_outcome sum;
  while (done < total_calls) {
    const round_config config = random_config(rng);
    const std::uint64_t round_seed = rng();
    // About ten rounds whatever the total, so every run sees several configurations.
    const std::uint64_t round_calls =
        std::min(total_calls - done, std::max<std::uint64_t>(2'000, total_calls / 10));
    const std::uint64_t per_caller =
        std::max<std::uint64_t>(1, round_calls / static_cast<std::uint64_t>(config.callers));
    SCOPED_TRACE("seed " + std::to_string(seed) + ", round " + std::to_string(rounds) +
                 ": batch_size " + std::to_string(config.batch_size) + ", timeout " +
                 std::to_string(config.batch_timeout.count()) + "us, partitions " +
                 std::to_string(config.partitions) + ", callers " + std::to_string(config.callers));
    checker check(config, round_seed);
    {
      bs::server<std::int64_t, std::int64_t> srv(stress_serving(config.poison),
                                                 {.batch_size = config.batch_size,
                                                  .batch_timeout = config.batch_timeout,
                                                  .partitions = config.partitions,
                                                  .shutdown_timeout = 5s});
      std::thread stopper;
      if (config.stop_after) {
        stopper = std::thread([&srv, after = *config.stop_after] {
          std::this_thread::sleep_for(after);
          srv.stop();
        });
      }
      std::vector<std::thread> callers;
      for (int c = 0; c < config.callers; ++c) {
        callers.emplace_back([&, c] {
          run_caller(srv, check, round_seed, c, per_caller, config.batch_size);
        });
      }
      for (auto& t : callers) t.join();
      if (stopper.joinable()) stopper.join();
    }  // the server is gone: every callback must have run by now
    const auto outcome = check.outcome();
    // Every call was checked once when answered: a lost or doubled answer shows here.
    EXPECT_EQ(outcome.calls, per_caller * static_cast<std::uint64_t>(config.callers))
        << "calls lost or answered twice";
    done += outcome.calls;
    sum.calls += outcome.calls;
    sum.ok += outcome.ok;
    sum.failed += outcome.failed;
    sum.shut_down += outcome.shut_down;
    ++rounds;
    if (HasFatalFailure()) return;
  }
  std::printf(
      "stress: seed %llu, %d rounds, %llu calls: %llu ok, %llu execution_failed, %llu shut down\n",
      static_cast<unsigned long long>(seed), rounds, static_cast<unsigned long long>(sum.calls),
      static_cast<unsigned long long>(sum.ok), static_cast<unsigned long long>(sum.failed),
      static_cast<unsigned long long>(sum.shut_down));
}
