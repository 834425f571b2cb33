// The call queue alone (detail/call_queue.hpp): no server, no threads, the
// clock passed in. What forms a batch, in which order, and when it is due.
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "batch_serving/detail/batch.hpp"
#include "batch_serving/detail/call_queue.hpp"
#include "support/test_call.hpp"

namespace bs = batch_serving;
namespace detail = batch_serving::detail;
using namespace std::chrono_literals;
using bs::testing::call_handle;
using queue_t = detail::fifo_queue<int, int>;
using batch_t = detail::batch<int, int>;

static_assert(detail::call_queue<queue_t, int, int>);

namespace {
const detail::clock::time_point t0 = detail::clock::now();

// What the batch holds, as {call, offset, length} per slice.
struct placed {
  const detail::call<int, int>* target;
  std::size_t offset;
  std::size_t length;
  bool operator==(const placed&) const = default;
};
std::vector<placed> slices_of(const batch_t& b) {
  std::vector<placed> out;
  for (const auto& s : b.slices) out.push_back({s.target, s.offset, s.length});
  return out;
}

// Empties the queue, giving back the references it held.
void release_queued(queue_t& q) {
  std::vector<detail::call<int, int>*> all;
  q.take_all(all);
  for (auto* call : all) call->release();
}

// Gives back the references the batch's slices and lists hold.
void release_all(batch_t& b) {
  for (const auto& s : b.slices) s.target->release();
  for (auto* c : b.skipped) c->release();
  for (auto* c : b.expired) c->release();
  b = {};
}
}  // namespace

TEST(CallQueueTest, TakesWholeCallsInArrivalOrderUpToBatchSize) {
  queue_t q(3, 1ms);
  call_handle a({1}), b({2}), c({3}), d({4});
  for (auto* call : {a.get(), b.get(), c.get(), d.get()}) (void)q.push(*call, t0);
  EXPECT_EQ(q.queued_items(), 4u);
  batch_t first;
  q.take(first, t0);
  EXPECT_EQ(slices_of(first),
            (std::vector<placed>{{a.get(), 0, 1}, {b.get(), 0, 1}, {c.get(), 0, 1}}));
  EXPECT_EQ(q.queued_items(), 1u);
  batch_t second;
  q.take(second, t0);
  EXPECT_EQ(slices_of(second), (std::vector<placed>{{d.get(), 0, 1}}));
  EXPECT_EQ(q.queued_items(), 0u);
  release_all(first);
  release_all(second);
}

// The README's Semantics 2: batch_size 3, three 2-item calls a, b, c run as
// [a1 a2 b1] and [b2 c1 c2].
TEST(CallQueueTest, MergesExplicitBatchesAndSplitsThemToFillBatches) {
  queue_t q(3, 1ms);
  call_handle a({1, 2}), b({3, 4}), c({5, 6});
  for (auto* call : {a.get(), b.get(), c.get()}) (void)q.push(*call, t0);
  batch_t first, second;
  q.take(first, t0);
  q.take(second, t0);
  EXPECT_EQ(slices_of(first), (std::vector<placed>{{a.get(), 0, 2}, {b.get(), 0, 1}}));
  EXPECT_EQ(slices_of(second), (std::vector<placed>{{b.get(), 1, 1}, {c.get(), 0, 2}}));
  release_all(first);
  release_all(second);
}

TEST(CallQueueTest, SplitsAnOversizedCallIntoFullBatches) {
  queue_t q(2, 1ms);
  call_handle big({1, 2, 3, 4, 5});
  (void)q.push(*big, t0);
  std::vector<placed> all;
  while (q.queued_items() > 0) {
    batch_t b;
    q.take(b, t0);
    ASSERT_EQ(b.slices.size(), 1u);
    all.push_back(slices_of(b).front());
    release_all(b);
  }
  EXPECT_EQ(all, (std::vector<placed>{{big.get(), 0, 2}, {big.get(), 2, 2}, {big.get(), 4, 1}}));
}

TEST(CallQueueTest, ACallAskingForWholeChunksIsSplitOnlyAtChunkBoundaries) {
  queue_t q(3, 1ms);
  call_handle single({1}), chunked({2, 3, 4, 5});
  chunked->indivisible_chunk = 2;
  (void)q.push(*single, t0);
  (void)q.push(*chunked, t0);
  batch_t first, second;
  q.take(first, t0);  // room for 2 more: exactly one chunk
  q.take(second, t0);
  EXPECT_EQ(slices_of(first), (std::vector<placed>{{single.get(), 0, 1}, {chunked.get(), 0, 2}}));
  EXPECT_EQ(slices_of(second), (std::vector<placed>{{chunked.get(), 2, 2}}));
  release_all(first);
  release_all(second);
}

TEST(CallQueueTest, AChunkThatDoesNotFitWaitsForTheNextBatch) {
  queue_t q(3, 1ms);
  call_handle pair({1, 2}), chunked({3, 4, 5, 6});
  chunked->indivisible_chunk = 2;
  (void)q.push(*pair, t0);
  (void)q.push(*chunked, t0);
  batch_t first;
  q.take(first, t0);  // room for 1: no whole chunk fits
  EXPECT_EQ(slices_of(first), (std::vector<placed>{{pair.get(), 0, 2}}));
  EXPECT_EQ(q.queued_items(), 4u);
  release_all(first);
  batch_t rest;
  q.take(rest, t0);
  EXPECT_EQ(slices_of(rest), (std::vector<placed>{{chunked.get(), 0, 2}}));
  release_all(rest);
  q.take(rest, t0);
  release_all(rest);
}

TEST(CallQueueTest, PushAsksForAWakeWhenTheQueueWasEmptyOrABatchFilled) {
  queue_t q(3, 1ms);
  call_handle a({1}), b({2}), c({3}), d({4});
  EXPECT_TRUE(q.push(*a, t0));   // a new first item: its window starts
  EXPECT_FALSE(q.push(*b, t0));  // nothing changes for a sleeping partition
  EXPECT_TRUE(q.push(*c, t0));   // a full batch
  EXPECT_TRUE(q.has_full_batch());
  EXPECT_TRUE(q.push(*d, t0));  // still full
  release_queued(q);
}

TEST(CallQueueTest, ABatchIsDueBatchTimeoutAfterItsFirstItemArrived) {
  queue_t q(10, 5ms);
  call_handle a({1}), b({2});
  (void)q.push(*a, t0);
  (void)q.push(*b, t0 + 3ms);  // joins a's window
  EXPECT_FALSE(q.has_full_batch());
  EXPECT_EQ(q.next_due(), t0 + 5ms);
  EXPECT_EQ(q.next_wake(), t0 + 5ms);
  release_queued(q);
}

TEST(CallQueueTest, ItemsLeftBehindAFullBatchStartAWindowWhenItLeaves) {
  queue_t q(1, 5ms);
  call_handle a({1}), b({2});
  (void)q.push(*a, t0);
  (void)q.push(*b, t0);
  batch_t first;
  q.take(first, t0 + 2ms);
  EXPECT_EQ(q.next_due(), t0 + 2ms + 5ms);
  release_all(first);
  q.take(first, t0 + 7ms);
  release_all(first);
}

TEST(CallQueueTest, TheRestOfASplitCallKeepsItsWindow) {
  queue_t q(2, 5ms);
  call_handle big({1, 2, 3});
  (void)q.push(*big, t0);
  batch_t first;
  q.take(first, t0 + 2ms);
  EXPECT_EQ(q.next_due(), t0 + 5ms);  // its caller has waited already
  release_all(first);
  q.take(first, t0 + 5ms);
  release_all(first);
}

TEST(CallQueueTest, ANewHeadInheritsTheWindowOfARemovedHead) {
  queue_t q(10, 5ms);
  call_handle a({1}), b({2});
  (void)q.push(*a, t0);
  (void)q.push(*b, t0 + 4ms);
  ASSERT_TRUE(q.remove(*a));
  a->release();  // the queue's reference came back with it
  EXPECT_EQ(q.next_due(), t0 + 5ms);
  release_queued(q);
}

TEST(CallQueueTest, ARemovedCallLeavesRoomAndNeverRuns) {
  queue_t q(10, 5ms);
  call_handle a({1}), b({2, 3}), c({4});
  for (auto* call : {a.get(), b.get(), c.get()}) (void)q.push(*call, t0);
  ASSERT_TRUE(q.remove(*b));
  b->release();
  EXPECT_EQ(q.queued_items(), 2u);
  EXPECT_FALSE(q.remove(*b)) << "a call that is not queued";
  batch_t all;
  q.take(all, t0);
  EXPECT_EQ(slices_of(all), (std::vector<placed>{{a.get(), 0, 1}, {c.get(), 0, 1}}));
  release_all(all);
}

TEST(CallQueueTest, RemovingTheRestOfASplitCallCountsOnlyItsItemsNotYetTaken) {
  queue_t q(2, 5ms);
  call_handle big({1, 2, 3, 4, 5});
  (void)q.push(*big, t0);
  batch_t first;
  q.take(first, t0);
  ASSERT_TRUE(q.remove(*big));
  big->release();
  EXPECT_EQ(q.queued_items(), 0u);
  release_all(first);
}

TEST(CallQueueTest, SkipsFinishedAndExpiredCallsAtTheHead) {
  queue_t q(10, 5ms);
  call_handle done({1}), expired({2}), live({3}), done_behind({4});
  expired->set_deadline(t0 + 1ms);
  (void)done->fail(bs::error(bs::errc::cancelled, "test"));
  (void)done_behind->fail(bs::error(bs::errc::cancelled, "test"));
  for (auto* call : {done.get(), expired.get(), live.get(), done_behind.get()}) {
    (void)q.push(*call, t0);
  }
  batch_t b;
  q.skip_finished(b, t0 + 2ms);
  EXPECT_EQ(b.skipped, (std::vector<detail::call<int, int>*>{done.get()}));
  EXPECT_EQ(b.expired, (std::vector<detail::call<int, int>*>{expired.get()}));
  EXPECT_TRUE(b.slices.empty());
  EXPECT_EQ(q.queued_items(), 2u) << "only the head is skipped; a live call stops it";
  release_all(b);
  q.take(b, t0 + 2ms);  // skips the finished call behind the live one on the way
  EXPECT_EQ(slices_of(b), (std::vector<placed>{{live.get(), 0, 1}}));
  EXPECT_EQ(b.skipped, (std::vector<detail::call<int, int>*>{done_behind.get()}));
  release_all(b);
}

TEST(CallQueueTest, ASleepingPartitionWakesForTheHeadsDeadlineIfItComesFirst) {
  queue_t q(10, 5ms);
  call_handle a({1});
  a->set_deadline(t0 + 2ms);
  (void)q.push(*a, t0);
  EXPECT_EQ(q.next_due(), t0 + 5ms);
  EXPECT_EQ(q.next_wake(), t0 + 2ms);
  release_queued(q);
}

TEST(CallQueueTest, AWindowTooLongForTheClockIsNeverDue) {
  queue_t q(10, detail::clock::duration::max());
  call_handle a({1});
  (void)q.push(*a, t0);
  EXPECT_EQ(q.next_due(), detail::clock::time_point::max());
  release_queued(q);
}

TEST(CallQueueTest, TakeAllEmptiesTheQueueInOrderWithItsReferences) {
  int destroyed = 0;
  queue_t q(10, 5ms);
  {
    call_handle a({1}, &destroyed), b({2, 3}, &destroyed);
    (void)q.push(*a, t0);
    (void)q.push(*b, t0);
    std::vector<detail::call<int, int>*> all;
    q.take_all(all);
    EXPECT_EQ(all, (std::vector<detail::call<int, int>*>{a.get(), b.get()}));
    EXPECT_EQ(q.queued_items(), 0u);
    for (auto* call : all) call->release();
    EXPECT_EQ(destroyed, 0) << "the handles still hold their references";
  }
  EXPECT_EQ(destroyed, 2);
}

TEST(CallQueueTest, EverySliceOfASplitCallHoldsAReference) {
  int destroyed = 0;
  queue_t q(2, 5ms);
  batch_t first, second;
  {
    call_handle big({1, 2, 3, 4}, &destroyed);
    (void)q.push(*big, t0);
    q.take(first, t0);
    q.take(second, t0);
  }
  release_all(first);
  EXPECT_EQ(destroyed, 0) << "the second slice still holds one";
  release_all(second);
  EXPECT_EQ(destroyed, 1);
}
