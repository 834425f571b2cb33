// Execution alone (detail/execution.hpp): slices of calls in, one run of the
// batch function, every slice answered. No queue, no threads.
#include <gtest/gtest.h>

#include <cmath>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "batch_serving/detail/batch.hpp"
#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/execution.hpp"
#include "batch_serving/execution_context.hpp"
#include "support/test_call.hpp"

namespace bs = batch_serving;
namespace detail = batch_serving::detail;
using bs::testing::call_handle;
using bs::testing::recording_observer;
using slice_t = detail::slice<int, int>;

namespace {
// Squares its inputs and records each run's inputs. A negative input makes
// the run throw; `short_by` drops outputs; `emit` names a hook it emits with
// each item's value as the entry.
class squares final : public detail::batch_handler<int, int> {
 public:
  std::vector<std::vector<int>> runs;
  std::size_t short_by = 0;
  std::string emit;

  std::vector<int> handle_batch(std::span<const int> batch, bs::execution_context& ctx) override {
    runs.emplace_back(batch.begin(), batch.end());
    if (!emit.empty()) ctx.emit(emit, std::vector<int>(batch.begin(), batch.end()));
    std::vector<int> out;
    for (int x : batch) {
      if (x < 0) throw std::runtime_error("poisoned item");
      out.push_back(x * x);
    }
    out.resize(out.size() - short_by);
    return out;
  }
};

struct fixture {
  squares fn;
  recording_observer observed;
  bs::partition_info where{bs::execution_mode::server, 0, 64};
  std::vector<std::string> hooks;

  void run(std::vector<slice_t> slices, bool isolate = false) {
    detail::execution<int, int> exec(fn, where, hooks, isolate, observed);
    exec.run(slices);
  }
};

slice_t whole(call_handle& c) { return {c.get(), 0, c->size()}; }

std::vector<int> squares_of(std::vector<int> xs) {
  for (int& x : xs) x *= x;
  return xs;
}
}  // namespace

TEST(ExecutionTest, RunsOnceOnTheSlicesItemsInOrderAndAnswersEachSlice) {
  fixture f;
  call_handle a({1, 2}), b({3});
  f.run({whole(a), whole(b)});
  EXPECT_EQ(f.fn.runs, (std::vector<std::vector<int>>{{1, 2, 3}}));
  EXPECT_EQ(a->outputs, (std::vector<int>{1, 4}));
  EXPECT_EQ(b->outputs, (std::vector<int>{9}));
  EXPECT_EQ(a->completions, 1);
  EXPECT_EQ(b->completions, 1);
  EXPECT_EQ(a->answer_error(), nullptr);
  const auto seen = f.observed.seen();
  ASSERT_EQ(seen.runs.size(), 1u);
  EXPECT_EQ(seen.runs[0].items, 3u);
  EXPECT_FALSE(seen.runs[0].failed);
  EXPECT_FALSE(seen.runs[0].rerun);
  EXPECT_TRUE(seen.ended.empty());
}

TEST(ExecutionTest, ASplitCallCompletesWithItsLastSliceInItsOwnOrder) {
  fixture f;
  call_handle big({1, 2, 3, 4});
  f.run({{big.get(), 2, 2}});  // the later slice finishes first
  EXPECT_EQ(big->completions, 0);
  EXPECT_TRUE(big->outputs.empty()) << "held back until the slice before it arrives";
  f.run({{big.get(), 0, 2}});
  EXPECT_EQ(big->completions, 1);
  EXPECT_EQ(big->outputs, (std::vector<int>{1, 4, 9, 16}));
}

TEST(ExecutionTest, AFailedRunFailsEverySliceWithTheReason) {
  fixture f;
  call_handle a({1}), b({-2});
  f.run({whole(a), whole(b)});
  for (auto* c : {a.get(), b.get()}) {
    ASSERT_NE(c->answer_error(), nullptr);
    EXPECT_EQ(c->answer_error()->code(), bs::errc::execution_failed);
    EXPECT_EQ(c->answer_error()->message(), "batch function threw: poisoned item");
    EXPECT_EQ(c->completions, 1);
  }
  const auto seen = f.observed.seen();
  ASSERT_EQ(seen.runs.size(), 1u);
  EXPECT_TRUE(seen.runs[0].failed);
  EXPECT_EQ(seen.ended,
            (std::vector<bs::errc>{bs::errc::execution_failed, bs::errc::execution_failed}));
}

TEST(ExecutionTest, AWrongNumberOfOutputsFailsTheRunNamingTheCounts) {
  fixture f;
  f.fn.short_by = 1;
  call_handle a({1, 2});
  f.run({whole(a)});
  ASSERT_NE(a->answer_error(), nullptr);
  EXPECT_EQ(a->answer_error()->message(), "batch function returned 1 outputs for 2 inputs");
}

TEST(ExecutionTest, WithIsolationOnlyTheFailingSliceFails) {
  fixture f;
  call_handle a({1}), b({2}), poisoned({-3}), d({4});
  f.run({whole(a), whole(b), whole(poisoned), whole(d)}, /*isolate=*/true);
  EXPECT_EQ(a->outputs, squares_of({1}));
  EXPECT_EQ(b->outputs, squares_of({2}));
  EXPECT_EQ(d->outputs, squares_of({4}));
  ASSERT_NE(poisoned->answer_error(), nullptr);
  EXPECT_EQ(poisoned->answer_error()->code(), bs::errc::execution_failed);
  for (auto* c : {a.get(), b.get(), poisoned.get(), d.get()}) EXPECT_EQ(c->completions, 1);
  const auto seen = f.observed.seen();
  EXPECT_EQ(seen.calls_isolated, 3u);
  EXPECT_EQ(seen.ended, (std::vector<bs::errc>{bs::errc::execution_failed}));
  // The first run, then halves: [a b] ok, [poisoned d] fails, [poisoned] fails, [d] ok.
  EXPECT_EQ(f.fn.runs, (std::vector<std::vector<int>>{{1, 2, -3, 4}, {1, 2}, {-3, 4}, {-3}, {4}}));
  std::size_t reruns = 0;
  for (const auto& run : seen.runs) reruns += run.rerun ? 1 : 0;
  EXPECT_EQ(reruns, 4u);
  EXPECT_LE(reruns, 2 * std::log2(4.0));
}

TEST(ExecutionTest, IsolationNeverRunsASingleSliceAgain) {
  fixture f;
  call_handle poisoned({1, -2});
  f.run({whole(poisoned)}, /*isolate=*/true);
  EXPECT_EQ(f.fn.runs.size(), 1u);
  ASSERT_NE(poisoned->answer_error(), nullptr);
}

TEST(ExecutionTest, RoutesEachHookEventToTheSlicesItsOwnEntries) {
  fixture f;
  f.hooks = {"progress"};
  f.fn.emit = "progress";
  call_handle a({1, 2}), b({3});
  f.run({whole(a), whole(b)});
  EXPECT_EQ(a->hooks, (std::vector<std::string>{"progress:1,2"}));
  EXPECT_EQ(b->hooks, (std::vector<std::string>{"progress:3"}));
  EXPECT_EQ(a->outputs, squares_of({1, 2}));
}

TEST(ExecutionTest, AHookNobodyWantsIsDroppedAndCountedAndTheRunCarriesOn) {
  fixture f;
  f.hooks = {"progress"};
  f.fn.emit = "tokens";
  call_handle a({1});
  f.run({whole(a)});
  EXPECT_EQ(a->answer_error(), nullptr);
  EXPECT_EQ(a->outputs, squares_of({1}));
  EXPECT_TRUE(a->hooks.empty());
  EXPECT_EQ(f.observed.seen().hooks_dropped, 1u);
}

TEST(ExecutionTest, ASliceOfACallThatFinishedAlreadyIsDiscarded) {
  fixture f;
  call_handle cancelled({1}), live({2});
  ASSERT_TRUE(cancelled->fail(bs::error(bs::errc::cancelled, "by the test")));
  f.run({whole(cancelled), whole(live)});
  EXPECT_EQ(cancelled->completions, 0) << "whoever finished it completes it";
  EXPECT_TRUE(cancelled->outputs.empty());
  EXPECT_EQ(cancelled->answer_error()->code(), bs::errc::cancelled);
  EXPECT_EQ(live->outputs, squares_of({2}));
  EXPECT_TRUE(f.observed.seen().ended.empty());
}

TEST(ExecutionTest, TellsTheBatchFunctionWhereAndHowMuchItRuns) {
  struct probe final : detail::batch_handler<int, int> {
    std::size_t size = 0, partition = 0;
    bs::execution_mode mode = bs::execution_mode::inline_run;
    std::vector<int> handle_batch(std::span<const int> batch, bs::execution_context& ctx) override {
      size = ctx.size();
      partition = ctx.partition();
      mode = ctx.mode();
      return std::vector<int>(batch.begin(), batch.end());
    }
  } fn;
  recording_observer observed;
  const bs::partition_info where{bs::execution_mode::server, 3, 8};
  const std::vector<std::string> no_hooks;
  detail::execution<int, int> exec(fn, where, no_hooks, false, observed);
  call_handle a({1, 2, 3});
  exec.run(std::vector<slice_t>{{a.get(), 1, 2}});
  EXPECT_EQ(fn.size, 2u);
  EXPECT_EQ(fn.partition, 3u);
  EXPECT_EQ(fn.mode, bs::execution_mode::server);
}
