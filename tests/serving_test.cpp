// serving<In, Out>: building servings and running them inline (run, run_many),
// with no server.
#include "batch_serving/serving.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "batch_serving/error.hpp"
#include "batch_serving/execution_context.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving {
// Lets GoogleTest print codes by name in failure messages.
inline void PrintTo(errc code, std::ostream* os) { *os << to_string(code); }
}  // namespace batch_serving

namespace bs = batch_serving;

namespace {

::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

std::vector<int> squares_of(std::span<const int> xs) {
  std::vector<int> out;
  out.reserve(xs.size());
  for (int x : xs) out.push_back(x * x);
  return out;
}

bs::serving<int, int> squares() { return bs::serving<int, int>(squares_of); }

// What a batch function saw, execution by execution.
struct execution_log {
  std::mutex mu;
  std::vector<std::vector<int>> batches;
  std::vector<std::size_t> context_sizes;
  std::vector<bs::execution_mode> modes;
  std::vector<std::size_t> partitions;

  std::vector<std::size_t> batch_sizes() {
    std::lock_guard lock(mu);
    std::vector<std::size_t> sizes;
    for (const auto& b : batches) sizes.push_back(b.size());
    return sizes;
  }
};

// A serving squaring its inputs that records each execution in `log`.
bs::serving<int, int> recording_squares(execution_log& log) {
  return bs::serving<int, int>([&log](std::span<const int> xs, bs::execution_context& ctx) {
    std::lock_guard lock(log.mu);
    log.batches.emplace_back(xs.begin(), xs.end());
    log.context_sizes.push_back(ctx.size());
    log.modes.push_back(ctx.mode());
    log.partitions.push_back(ctx.partition());
    return squares_of(xs);
  });
}

struct point {
  int x;
  int y;
};

// What module instances saw; shared through a pointer passed as an init arg.
struct module_log {
  int constructions = 0;
  int destructions = 0;
  std::vector<bs::partition_info> inits;
  std::vector<int> extra_args;
  std::vector<std::size_t> context_sizes;
  std::vector<bs::execution_mode> context_modes;
  std::vector<std::size_t> context_partitions;
  bool used_partition_constructor = false;
  bool used_plain_constructor = false;
};

// A module whose constructor takes partition_info and extra args; each
// output is input + offset, tagged with how many executions this instance
// ran before (so tests can see which instance handled which item).
struct offset_module {
  offset_module(const bs::partition_info& where, module_log* log, int offset)
      : log_(log), offset_(offset) {
    ++log_->constructions;
    log_->inits.push_back(where);
    log_->extra_args.push_back(offset);
  }
  offset_module(const offset_module&) = delete;
  offset_module& operator=(const offset_module&) = delete;
  ~offset_module() { ++log_->destructions; }

  std::vector<int> handle_batch(std::span<const int> batch, bs::execution_context& ctx) {
    log_->context_sizes.push_back(ctx.size());
    log_->context_modes.push_back(ctx.mode());
    log_->context_partitions.push_back(ctx.partition());
    std::vector<int> out;
    for (int x : batch) out.push_back(x + offset_ + 1000 * executions_);
    ++executions_;
    return out;
  }

  module_log* log_;
  int offset_;
  int executions_ = 0;
};

// A module whose constructor takes only its args, no partition_info.
struct args_only_module {
  args_only_module(module_log* log, int factor) : log_(log), factor_(factor) {
    ++log_->constructions;
    log_->extra_args.push_back(factor);
  }
  std::vector<int> handle_batch(std::span<const int> batch, bs::execution_context&) {
    std::vector<int> out;
    for (int x : batch) out.push_back(x * factor_);
    return out;
  }
  module_log* log_;
  int factor_;
};

// A module with both constructors: the partition_info one must win.
struct both_constructors_module {
  both_constructors_module(const bs::partition_info&, module_log* log) : log_(log) {
    log_->used_partition_constructor = true;
  }
  explicit both_constructors_module(module_log* log) : log_(log) {
    log_->used_plain_constructor = true;
  }
  std::vector<int> handle_batch(std::span<const int> batch, bs::execution_context&) {
    return std::vector<int>(batch.begin(), batch.end());
  }
  module_log* log_;
};

// A module with a default constructor and no args at all.
struct no_args_module {
  std::vector<int> handle_batch(std::span<const int> batch, bs::execution_context& ctx) {
    return std::vector<int>(batch.size(), static_cast<int>(ctx.size()));
  }
};

// A module whose init throws.
struct failing_init_module {
  explicit failing_init_module(const bs::partition_info&) {
    throw std::runtime_error("cannot load the model");
  }
  std::vector<int> handle_batch(std::span<const int> batch, bs::execution_context&) {
    return std::vector<int>(batch.begin(), batch.end());
  }
};

// A module that keeps a string arg; proves args are stored by value.
struct prefix_module {
  prefix_module(const bs::partition_info&, std::string prefix) : prefix_(std::move(prefix)) {}
  std::vector<std::string> handle_batch(std::span<const int> batch, bs::execution_context&) {
    std::vector<std::string> out;
    for (int x : batch) out.push_back(prefix_ + std::to_string(x));
    return out;
  }
  std::string prefix_;
};

}  // namespace

// ---- plain functions -----------------------------------------------------------

TEST(ServingTest, RunAppliesAPlainFunctionToOneItem) {
  auto r = squares().run(3);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value(), 9);
}

TEST(ServingTest, RunManyAppliesAPlainFunctionToEveryItemInOrder) {
  auto r = squares().run_many({1, 2, 3, 4});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value(), (std::vector<int>{1, 4, 9, 16}));
}

TEST(ServingTest, RunManyAcceptsASpanOfItems) {
  const std::vector<int> items{5, 6};
  auto r = squares().run_many(std::span<const int>(items));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value(), (std::vector<int>{25, 36}));
}

TEST(ServingTest, RunPassesExactlyOneItemToTheBatchFunction) {
  execution_log log;
  auto r = recording_squares(log).run(4);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value(), 16);
  EXPECT_EQ(log.batches, (std::vector<std::vector<int>>{{4}}));
}

TEST(ServingTest, AFunctionTakingAContextIsToldSizeInlineModeAndPartitionZero) {
  execution_log log;
  auto r = recording_squares(log).run_many({1, 2, 3});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(log.context_sizes, (std::vector<std::size_t>{3}));
  EXPECT_EQ(log.modes, (std::vector<bs::execution_mode>{bs::execution_mode::inline_run}));
  EXPECT_EQ(log.partitions, (std::vector<std::size_t>{0}));
}

TEST(ServingTest, WithoutABatchSizeRunManyRunsAllItemsInOneExecution) {
  execution_log log;
  const auto s = recording_squares(log);
  EXPECT_FALSE(s.batch_size().has_value());
  auto r = s.run_many({1, 2, 3, 4, 5, 6, 7, 8, 9});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(log.batch_sizes(), (std::vector<std::size_t>{9}));
}

TEST(ServingTest, BatchSizeSplitsRunManyIntoExecutionsOfAtMostThatMany) {
  execution_log log;
  const auto s = recording_squares(log).batch_size(3);
  auto r = s.run_many({1, 2, 3, 4, 5, 6, 7});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(log.batch_sizes(), (std::vector<std::size_t>{3, 3, 1}));
  EXPECT_EQ(log.batches, (std::vector<std::vector<int>>{{1, 2, 3}, {4, 5, 6}, {7}}));
  EXPECT_EQ(log.context_sizes, (std::vector<std::size_t>{3, 3, 1}));
  EXPECT_EQ(r.value(), (std::vector<int>{1, 4, 9, 16, 25, 36, 49}));
}

TEST(ServingTest, BatchSizeThatDividesTheItemsEvenlyLeavesNoShortExecution) {
  execution_log log;
  auto r = recording_squares(log).batch_size(2).run_many({1, 2, 3, 4});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(log.batch_sizes(), (std::vector<std::size_t>{2, 2}));
  EXPECT_EQ(r.value(), (std::vector<int>{1, 4, 9, 16}));
}

TEST(ServingTest, BatchSizeLargerThanTheItemsRunsThemInOneExecution) {
  execution_log log;
  auto r = recording_squares(log).batch_size(100).run_many({1, 2, 3});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(log.batch_sizes(), (std::vector<std::size_t>{3}));
}

TEST(ServingTest, BatchSizeOneRunsEachItemAlone) {
  execution_log log;
  auto r = recording_squares(log).batch_size(1).run_many({3, 2, 1});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(log.batches, (std::vector<std::vector<int>>{{3}, {2}, {1}}));
  EXPECT_EQ(r.value(), (std::vector<int>{9, 4, 1}));
}

TEST(ServingTest, BatchSizeZeroThrowsInvalidArgument) {
  try {
    (void)squares().batch_size(0);
    FAIL() << "batch_size(0) did not throw";
  } catch (const bs::serving_error& ex) {
    EXPECT_EQ(ex.code(), bs::errc::invalid_argument);
    EXPECT_TRUE(contains(ex.error().message(), "batch_size"));
  }
}

TEST(ServingTest, RunManyOfAnEmptyListIsInvalidArgument) {
  execution_log log;
  const auto s = recording_squares(log);
  auto from_list = s.run_many(std::initializer_list<int>{});
  ASSERT_FALSE(from_list.ok());
  EXPECT_EQ(from_list.error().code(), bs::errc::invalid_argument);
  EXPECT_TRUE(contains(from_list.error().message(), "empty"));

  const std::vector<int> none;
  auto from_span = s.run_many(std::span<const int>(none));
  ASSERT_FALSE(from_span.ok());
  EXPECT_EQ(from_span.error().code(), bs::errc::invalid_argument);

  EXPECT_TRUE(log.batches.empty()) << "the batch function ran on an empty batch";
}

TEST(ServingTest, AThrowingBatchFunctionIsExecutionFailedWithTheExceptionsMessage) {
  bs::serving<int, int> s([](std::span<const int>) -> std::vector<int> {
    throw std::runtime_error("boom: the model fell over");
  });
  auto r = s.run(1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::execution_failed);
  EXPECT_TRUE(contains(r.error().message(), "boom: the model fell over"));

  auto many = s.run_many({1, 2});
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.error().code(), bs::errc::execution_failed);
  EXPECT_TRUE(contains(many.error().message(), "boom: the model fell over"));
}

TEST(ServingTest, ABatchFunctionThrowingANonStdExceptionIsExecutionFailed) {
  bs::serving<int, int> s([](std::span<const int>) -> std::vector<int> { throw 42; });
  auto r = s.run(1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::execution_failed);
  EXPECT_FALSE(r.error().message().empty());
}

TEST(ServingTest, AFailureInALaterExecutionFailsTheWholeRunMany) {
  execution_log log;
  bs::serving<int, int> s([&log](std::span<const int> xs) {
    log.batches.emplace_back(xs.begin(), xs.end());
    if (xs.front() == 3) throw std::runtime_error("three is bad");
    return squares_of(xs);
  });
  auto r = s.batch_size(2).run_many({1, 2, 3, 4, 5});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::execution_failed);
  EXPECT_TRUE(contains(r.error().message(), "three is bad"));
  // It stops at the failing execution.
  EXPECT_EQ(log.batch_sizes(), (std::vector<std::size_t>{2, 2}));
}

TEST(ServingTest, AFunctionReturningTooFewOutputsIsExecutionFailedMentioningTheCounts) {
  bs::serving<int, int> s([](std::span<const int> xs) {
    return std::vector<int>(xs.size() - 3, 0);
  });
  auto r = s.run_many({1, 2, 3, 4, 5});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::execution_failed);
  EXPECT_TRUE(contains(r.error().message(), "2 outputs"));
  EXPECT_TRUE(contains(r.error().message(), "5 inputs"));
}

TEST(ServingTest, AFunctionReturningTooManyOutputsIsExecutionFailedMentioningTheCounts) {
  bs::serving<int, int> s([](std::span<const int> xs) {
    return std::vector<int>(xs.size() + 1, 0);
  });
  auto r = s.run(7);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::execution_failed);
  EXPECT_TRUE(contains(r.error().message(), "2 outputs"));
  EXPECT_TRUE(contains(r.error().message(), "1 inputs"));
}

TEST(ServingTest, AFunctionReturningNoOutputsForRunIsExecutionFailedNotACrash) {
  bs::serving<int, int> s([](std::span<const int>) { return std::vector<int>{}; });
  auto r = s.run(7);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::execution_failed);
  EXPECT_TRUE(contains(r.error().message(), "0 outputs"));
}

TEST(ServingTest, ResultsMayBeMoveOnly) {
  bs::serving<int, std::unique_ptr<int>> s([](std::span<const int> xs) {
    std::vector<std::unique_ptr<int>> out;
    for (int x : xs) out.push_back(std::make_unique<int>(x * 10));
    return out;
  });
  auto one = s.run(4);
  ASSERT_TRUE(one.ok()) << one.error().to_string();
  std::unique_ptr<int> p = std::move(one).value();
  EXPECT_EQ(*p, 40);

  auto many = s.batch_size(2).run_many({1, 2, 3});
  ASSERT_TRUE(many.ok()) << many.error().to_string();
  ASSERT_EQ(many->size(), 3u);
  EXPECT_EQ(*(*many)[0], 10);
  EXPECT_EQ(*(*many)[1], 20);
  EXPECT_EQ(*(*many)[2], 30);
}

TEST(ServingTest, RunIsSafeFromManyThreadsAtOnce) {
  const auto s = squares().batch_size(2);
  constexpr int threads = 4;
  constexpr int runs = 200;
  std::latch start(threads);
  std::vector<int> failures(threads, 0);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < runs; ++i) {
        const int x = t * runs + i;
        auto one = s.run(x);
        auto many = s.run_many({x, x + 1, x + 2});
        if (!one.ok() || *one != x * x) ++failures[static_cast<std::size_t>(t)];
        if (!many.ok() || *many != std::vector<int>{x * x, (x + 1) * (x + 1), (x + 2) * (x + 2)}) {
          ++failures[static_cast<std::size_t>(t)];
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(failures, std::vector<int>(threads, 0));
}

TEST(ServingTest, BatchFunctionConceptAcceptsBothSignaturesAndRejectsOthers) {
  auto plain = [](std::span<const int> xs) { return std::vector<int>(xs.size()); };
  auto with_ctx = [](std::span<const int> xs, bs::execution_context&) {
    return std::vector<int>(xs.size());
  };
  auto returns_one = [](std::span<const int>) { return 1; };
  auto takes_vector = [](const std::vector<int>& xs) { return xs; };
  static_assert(bs::batch_function<decltype(plain), int, int>);
  static_assert(bs::batch_function<decltype(with_ctx), int, int>);
  static_assert(bs::batch_function<decltype(&squares_of), int, int>);
  static_assert(!bs::batch_function<decltype(returns_one), int, int>);
  static_assert(!bs::batch_function<decltype(takes_vector), int, int>);
  static_assert(!bs::batch_function<decltype(plain), int, std::string>);
  static_assert(!std::is_constructible_v<bs::serving<int, int>, decltype(returns_one)>);
  SUCCEED();
}

TEST(ServingTest, BatchModuleConceptAcceptsHandleBatchWithOrWithoutAContext) {
  struct no_handle_batch {};
  struct handle_batch_without_context {
    std::vector<int> handle_batch(std::span<const int> xs) { return {xs.begin(), xs.end()}; }
  };
  struct handle_batch_of_strings {
    std::vector<int> handle_batch(std::span<const std::string> xs, bs::execution_context&) {
      return std::vector<int>(xs.size());
    }
  };
  struct handle_batch_returning_one {
    int handle_batch(std::span<const int>, bs::execution_context&) { return 1; }
  };
  static_assert(bs::batch_module<offset_module, int, int>);
  static_assert(bs::batch_module<no_args_module, int, int>);
  static_assert(bs::batch_module<handle_batch_without_context, int, int>);
  static_assert(!bs::batch_module<no_handle_batch, int, int>);
  static_assert(!bs::batch_module<handle_batch_of_strings, int, int>);
  static_assert(!bs::batch_module<handle_batch_returning_one, int, int>);
  SUCCEED();
}

// ---- modules -------------------------------------------------------------------

TEST(ServingTest, FromModuleConstructorGetsInlinePartitionInfoAndExtraArgs) {
  module_log log;
  const auto s = bs::serving<int, int>::from_module<offset_module>(&log, 100).batch_size(3);
  auto r = s.run_many({1, 2});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(log.inits.size(), 1u);
  EXPECT_EQ(log.inits[0].mode, bs::execution_mode::inline_run);
  EXPECT_EQ(log.inits[0].index, 0u);
  EXPECT_EQ(log.inits[0].batch_size, 3u);
  EXPECT_EQ(log.extra_args, (std::vector<int>{100}));
  EXPECT_EQ(r.value(), (std::vector<int>{101, 102}));
}

TEST(ServingTest, FromModuleWithoutBatchSizeTellsInitTheWholeRunIsOneBatch) {
  module_log log;
  const auto s = bs::serving<int, int>::from_module<offset_module>(&log, 0);
  auto r = s.run_many({1, 2, 3, 4});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(log.inits.size(), 1u);
  EXPECT_EQ(log.inits[0].batch_size, 4u);
}

TEST(ServingTest, FromModuleIsConstructedOncePerRunManyAndKeepsStateAcrossItsExecutions) {
  module_log log;
  const auto s = bs::serving<int, int>::from_module<offset_module>(&log, 0).batch_size(3);

  auto first = s.run_many({1, 2, 3, 4, 5, 6, 7});
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  EXPECT_EQ(log.constructions, 1);
  // One instance ran all three executions: its execution counter advanced.
  EXPECT_EQ(first.value(), (std::vector<int>{1, 2, 3, 1004, 1005, 1006, 2007}));
  EXPECT_EQ(log.context_sizes, (std::vector<std::size_t>{3, 3, 1}));

  // A second run_many gets a fresh instance (the seed's inline creates state per call).
  auto second = s.run_many({1, 2, 3, 4});
  ASSERT_TRUE(second.ok()) << second.error().to_string();
  EXPECT_EQ(log.constructions, 2);
  EXPECT_EQ(second.value(), (std::vector<int>{1, 2, 3, 1004}));

  auto third = s.run(9);
  ASSERT_TRUE(third.ok()) << third.error().to_string();
  EXPECT_EQ(log.constructions, 3);
  EXPECT_EQ(third.value(), 9);
}

TEST(ServingTest, FromModuleDestroysEachRunsInstanceWhenTheRunEnds) {
  module_log log;
  const auto s = bs::serving<int, int>::from_module<offset_module>(&log, 0);
  (void)s.run(1);
  (void)s.run_many({1, 2});
  EXPECT_EQ(log.constructions, 2);
  EXPECT_EQ(log.destructions, 2);
}

TEST(ServingTest, FromModuleHandleBatchGetsTheExecutionContext) {
  module_log log;
  const auto s = bs::serving<int, int>::from_module<offset_module>(&log, 0).batch_size(2);
  auto r = s.run_many({1, 2, 3});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(log.context_sizes, (std::vector<std::size_t>{2, 1}));
  EXPECT_EQ(log.context_modes,
            (std::vector<bs::execution_mode>(2, bs::execution_mode::inline_run)));
  EXPECT_EQ(log.context_partitions, (std::vector<std::size_t>{0, 0}));
}

TEST(ServingTest, FromModuleAcceptsAConstructorTakingOnlyTheArgs) {
  module_log log;
  const auto s = bs::serving<int, int>::from_module<args_only_module>(&log, 3);
  auto r = s.run_many({1, 2, 3});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value(), (std::vector<int>{3, 6, 9}));
  EXPECT_EQ(log.constructions, 1);
  EXPECT_EQ(log.extra_args, (std::vector<int>{3}));
}

TEST(ServingTest, FromModuleAcceptsAHandleBatchWithoutAContext) {
  struct doubler {
    std::vector<int> handle_batch(std::span<const int> batch) {
      ++executions;
      std::vector<int> out;
      for (int x : batch) out.push_back(2 * x + 100 * (executions - 1));
      return out;
    }
    int executions = 0;
  };
  const auto s = bs::serving<int, int>::from_module<doubler>().batch_size(2);
  auto r = s.run_many({1, 2, 3});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value(), (std::vector<int>{2, 4, 106}));
}

TEST(ServingTest, FromModuleCallsTheContextOverloadWhenHandleBatchHasBoth) {
  struct both_overloads {
    std::vector<int> handle_batch(std::span<const int> batch) {
      return std::vector<int>(batch.size(), -1);
    }
    std::vector<int> handle_batch(std::span<const int> batch, bs::execution_context& ctx) {
      return std::vector<int>(batch.size(), static_cast<int>(ctx.size()));
    }
  };
  const auto s = bs::serving<int, int>::from_module<both_overloads>();
  auto r = s.run_many({5, 5, 5});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value(), (std::vector<int>{3, 3, 3}));
}

TEST(ServingTest, FromModulePrefersTheConstructorTakingPartitionInfo) {
  module_log log;
  const auto s = bs::serving<int, int>::from_module<both_constructors_module>(&log);
  auto r = s.run(5);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_TRUE(log.used_partition_constructor);
  EXPECT_FALSE(log.used_plain_constructor);
}

TEST(ServingTest, FromModuleWithNoArgsUsesTheDefaultConstructor) {
  const auto s = bs::serving<int, int>::from_module<no_args_module>().batch_size(2);
  auto r = s.run_many({7, 7, 7});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value(), (std::vector<int>{2, 2, 1}));  // each output is its ctx.size()
}

TEST(ServingTest, FromModuleKeepsCopiesOfItsArgsForLaterRuns) {
  std::optional<bs::serving<int, std::string>> s;
  {
    std::string prefix = "item-";
    s.emplace(bs::serving<int, std::string>::from_module<prefix_module>(prefix));
    prefix = "changed-";
  }
  auto first = s->run(1);
  auto second = s->run_many({2, 3});
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  ASSERT_TRUE(second.ok()) << second.error().to_string();
  EXPECT_EQ(first.value(), "item-1");
  EXPECT_EQ(second.value(), (std::vector<std::string>{"item-2", "item-3"}));
}

TEST(ServingTest, AModuleInitThatThrowsMakesRunExecutionFailedMentioningInit) {
  const auto s = bs::serving<int, int>::from_module<failing_init_module>();
  auto r = s.run(1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::execution_failed);
  EXPECT_TRUE(contains(r.error().message(), "init"));
  EXPECT_TRUE(contains(r.error().message(), "cannot load the model"));

  auto many = s.run_many({1, 2});
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.error().code(), bs::errc::execution_failed);
  EXPECT_TRUE(contains(many.error().message(), "init"));
}

// ---- map_inputs / map_results ----------------------------------------------------

TEST(ServingTest, MapInputsChangesTheCallerFacingInputType) {
  const auto by_point = squares().map_inputs([](const point& p) { return p.x; });
  static_assert(std::is_same_v<decltype(by_point)::input_type, point>);
  static_assert(std::is_same_v<decltype(by_point)::output_type, int>);
  static_assert(std::is_same_v<decltype(by_point)::batch_input_type, int>);
  auto r = by_point.run(point{3, 100});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value(), 9);
}

TEST(ServingTest, MapInputsIsAppliedToEachItemAndTheBatchFunctionSeesMappedValues) {
  execution_log log;
  int mapped = 0;
  const auto by_point = recording_squares(log).batch_size(2).map_inputs([&mapped](const point& p) {
    ++mapped;
    return p.x;
  });
  auto r = by_point.run_many({point{1, 9}, point{2, 9}, point{3, 9}});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(mapped, 3);
  EXPECT_EQ(log.batches, (std::vector<std::vector<int>>{{1, 2}, {3}}));
  EXPECT_EQ(r.value(), (std::vector<int>{1, 4, 9}));
}

TEST(ServingTest, MapInputsAcceptsAnExplicitTypeForAGenericLambda) {
  const auto by_point = squares().map_inputs<point>([](const auto& p) { return p.x; });
  static_assert(std::is_same_v<decltype(by_point)::input_type, point>);
  auto r = by_point.run_many({point{4, 0}, point{5, 0}});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value(), (std::vector<int>{16, 25}));
}

TEST(ServingTest, MapInputsAcceptsAFunctionPointer) {
  const auto by_string = squares().map_inputs(+[](const std::string& s) { return std::stoi(s); });
  static_assert(std::is_same_v<decltype(by_string)::input_type, std::string>);
  auto r = by_string.run(std::string("6"));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value(), 36);
}

TEST(ServingTest, MapResultsChangesTheResultTypeAndIsAppliedToEachItem) {
  int mapped = 0;
  const auto as_text = squares().map_results([&mapped](int sq) {
    ++mapped;
    return std::to_string(sq);
  });
  static_assert(std::is_same_v<decltype(as_text)::output_type, std::string>);
  static_assert(std::is_same_v<decltype(as_text)::batch_output_type, int>);
  auto one = as_text.run(3);
  ASSERT_TRUE(one.ok()) << one.error().to_string();
  EXPECT_EQ(one.value(), "9");
  EXPECT_EQ(mapped, 1);

  auto many = as_text.run_many({1, 2, 3});
  ASSERT_TRUE(many.ok()) << many.error().to_string();
  EXPECT_EQ(many.value(), (std::vector<std::string>{"1", "4", "9"}));
  EXPECT_EQ(mapped, 4);
}

TEST(ServingTest, MapInputsAndMapResultsComposeInEitherOrder) {
  const auto to_x = [](const point& p) { return p.x; };
  const auto to_text = [](int sq) { return std::to_string(sq); };
  const auto inputs_first = squares().map_inputs(to_x).map_results(to_text);
  const auto results_first = squares().map_results(to_text).map_inputs(to_x);
  static_assert(std::is_same_v<decltype(inputs_first), decltype(results_first)>);
  EXPECT_EQ(inputs_first.run(point{3, 0}).value(), "9");
  EXPECT_EQ(results_first.run(point{3, 0}).value(), "9");
  EXPECT_EQ(inputs_first.run_many({point{1, 0}, point{2, 0}}).value(),
            (std::vector<std::string>{"1", "4"}));
  EXPECT_EQ(results_first.run_many({point{1, 0}, point{2, 0}}).value(),
            (std::vector<std::string>{"1", "4"}));
}

TEST(ServingTest, ALaterMapInputsReplacesTheEarlierOne) {
  const auto by_point = squares().map_inputs([](const point& p) { return p.x; });
  const auto by_y = by_point.map_inputs([](const point& p) { return p.y; });
  EXPECT_EQ(by_y.run(point{2, 5}).value(), 25);
  const auto by_text = by_point.map_inputs([](const std::string& s) { return std::stoi(s); });
  EXPECT_EQ(by_text.run(std::string("4")).value(), 16);
}

TEST(ServingTest, ALaterMapResultsReplacesTheEarlierOne) {
  const auto as_text = squares().map_results([](int sq) { return std::to_string(sq); });
  const auto negated = as_text.map_results([](int sq) { return -sq; });
  static_assert(std::is_same_v<decltype(negated)::output_type, int>);
  EXPECT_EQ(negated.run(3).value(), -9);
}

TEST(ServingTest, AThrowingMapInputsIsInvalidArgumentAndSkipsTheBatchFunction) {
  execution_log log;
  const auto s = recording_squares(log).map_inputs([](const point& p) {
    if (p.x < 0) throw std::out_of_range("negative x");
    return p.x;
  });
  auto one = s.run(point{-1, 0});
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.error().code(), bs::errc::invalid_argument);
  EXPECT_TRUE(contains(one.error().message(), "negative x"));

  auto many = s.run_many({point{1, 0}, point{-2, 0}, point{3, 0}});
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.error().code(), bs::errc::invalid_argument);
  EXPECT_TRUE(contains(many.error().message(), "negative x"));

  EXPECT_TRUE(log.batches.empty());
}

TEST(ServingTest, AThrowingMapResultsIsExecutionFailedAfterTheBatchFunctionRan) {
  execution_log log;
  const auto s = recording_squares(log).map_results([](int sq) -> std::string {
    if (sq == 4) throw std::domain_error("four is unprintable");
    return std::to_string(sq);
  });
  auto one = s.run(2);
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.error().code(), bs::errc::execution_failed);
  EXPECT_TRUE(contains(one.error().message(), "four is unprintable"));

  auto many = s.run_many({1, 2, 3});
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.error().code(), bs::errc::execution_failed);
  EXPECT_TRUE(contains(many.error().message(), "four is unprintable"));

  EXPECT_EQ(log.batch_sizes(), (std::vector<std::size_t>{1, 3}));
}

TEST(ServingTest, MappingsKeepTheBatchSize) {
  const auto s = squares().batch_size(4);
  const auto mapped =
      s.map_inputs([](const point& p) { return p.x; }).map_results([](int v) { return v + 1; });
  EXPECT_EQ(mapped.batch_size(), std::optional<std::size_t>(4));
  const auto resized = mapped.batch_size(2);
  EXPECT_EQ(resized.batch_size(), std::optional<std::size_t>(2));
  EXPECT_EQ(mapped.batch_size(), std::optional<std::size_t>(4));
}

TEST(ServingTest, MappingsWorkWithModules) {
  module_log log;
  const auto s = bs::serving<int, int>::from_module<offset_module>(&log, 10)
                     .map_inputs([](const point& p) { return p.x; })
                     .map_results([](int v) { return std::to_string(v); });
  auto r = s.run_many({point{1, 0}, point{2, 0}});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value(), (std::vector<std::string>{"11", "12"}));
  EXPECT_EQ(log.constructions, 1);
}

// ---- servings are values ---------------------------------------------------------

TEST(ServingTest, BatchSizeReturnsACopyAndLeavesTheOriginalUnchanged) {
  execution_log log;
  const auto original = recording_squares(log);
  const auto pairs = original.batch_size(2);
  EXPECT_FALSE(original.batch_size().has_value());
  EXPECT_EQ(pairs.batch_size(), std::optional<std::size_t>(2));

  const auto fives = pairs.batch_size(5);
  EXPECT_EQ(pairs.batch_size(), std::optional<std::size_t>(2));
  EXPECT_EQ(fives.batch_size(), std::optional<std::size_t>(5));

  ASSERT_TRUE(original.run_many({1, 2, 3}).ok());
  ASSERT_TRUE(pairs.run_many({1, 2, 3}).ok());
  EXPECT_EQ(log.batch_sizes(), (std::vector<std::size_t>{3, 2, 1}));
}

TEST(ServingTest, ACopiedServingIsIndependentOfLaterBuildsFromTheOriginal) {
  const auto original = squares().batch_size(3);
  const auto copy = original;  // NOLINT: testing the copy
  const auto changed = original.batch_size(1);
  EXPECT_EQ(copy.batch_size(), std::optional<std::size_t>(3));
  EXPECT_EQ(original.batch_size(), std::optional<std::size_t>(3));
  EXPECT_EQ(changed.batch_size(), std::optional<std::size_t>(1));
}

TEST(ServingTest, MappingReturnsANewServingAndLeavesTheOriginalsBehaviour) {
  const auto original = squares();
  const auto as_text = original.map_results([](int v) { return std::to_string(v); });
  static_assert(std::is_same_v<decltype(original)::output_type, int>);
  EXPECT_EQ(original.run(3).value(), 9);
  EXPECT_EQ(as_text.run(3).value(), "9");
}

TEST(ServingTest, AServingIsACopyableAndAssignableValue) {
  static_assert(std::is_copy_constructible_v<bs::serving<int, int>>);
  static_assert(std::is_copy_assignable_v<bs::serving<int, int>>);
  auto a = squares().batch_size(2);
  const auto b = bs::serving<int, int>([](std::span<const int> xs) {
    return std::vector<int>(xs.begin(), xs.end());
  });
  a = b;
  EXPECT_FALSE(a.batch_size().has_value());
  EXPECT_EQ(a.run(7).value(), 7);
}
