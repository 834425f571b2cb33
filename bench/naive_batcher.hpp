// naive_batcher: the baseline the benchmark compares batch_serving with. It is
// the dynamic batcher a competent engineer writes by hand in an afternoon, and
// it is meant to be a fair, reasonably written reference, not a straw man:
//
//   - one worker thread;
//   - a std::deque of {value, std::promise, arrival time} under one
//     std::mutex, and one std::condition_variable the worker sleeps on;
//   - the worker waits until batch_size items are queued or batch_timeout has
//     passed since the oldest queued item arrived (0: run what is queued at
//     once), runs the batch function outside the lock, fulfils the promises;
//   - submitters notify only when the worker has a reason to wake (the queue
//     became non-empty, or a batch became full);
//   - blocking dispatch is submit + future.get().
//
//   naive_batcher<int, int> b(square_all, 64, std::chrono::milliseconds(1));
//   int nine = b.dispatch(3);
//   std::future<int> later = b.submit(4);
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace bench {

template <class In, class Out>
class naive_batcher {
 public:
  using batch_function = std::function<std::vector<Out>(std::span<const In>)>;
  using clock = std::chrono::steady_clock;

  naive_batcher(batch_function fn, std::size_t batch_size, std::chrono::microseconds batch_timeout)
      : fn_(std::move(fn)), batch_size_(batch_size), batch_timeout_(batch_timeout) {
    worker_ = std::thread([this] { run(); });
  }

  naive_batcher(const naive_batcher&) = delete;
  naive_batcher& operator=(const naive_batcher&) = delete;

  // Runs what is still queued, then stops the worker.
  ~naive_batcher() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    worker_.join();
  }

  std::future<Out> submit(In value) {
    std::promise<Out> promise;
    std::future<Out> result = promise.get_future();
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      queue_.push_back({std::move(value), std::move(promise), clock::now()});
      wake = queue_.size() == 1 || queue_.size() >= batch_size_;
    }
    if (wake) cv_.notify_one();
    return result;
  }

  // Queues all items under one lock; one future per item.
  std::vector<std::future<Out>> submit_many(std::span<const In> values) {
    std::vector<std::future<Out>> results;
    results.reserve(values.size());
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      const bool was_empty = queue_.empty();
      const auto now = clock::now();
      for (const In& v : values) {
        std::promise<Out> promise;
        results.push_back(promise.get_future());
        queue_.push_back({v, std::move(promise), now});
      }
      wake = was_empty || queue_.size() >= batch_size_;
    }
    if (wake) cv_.notify_one();
    return results;
  }

  // Blocking forms; they throw what the batch function threw.
  Out dispatch(In value) { return submit(std::move(value)).get(); }
  std::vector<Out> dispatch_many(std::span<const In> values) {
    auto futures = submit_many(values);
    std::vector<Out> out;
    out.reserve(futures.size());
    for (auto& f : futures) out.push_back(f.get());
    return out;
  }

  std::uint64_t executions() const {
    std::lock_guard lock(mu_);
    return executions_;
  }
  std::uint64_t items_executed() const {
    std::lock_guard lock(mu_);
    return items_executed_;
  }

 private:
  struct entry {
    In value;
    std::promise<Out> promise;
    clock::time_point arrived;
  };

  void run() {
    std::vector<In> inputs;
    std::vector<std::promise<Out>> promises;
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      // Skip the timed wait once the deadline has passed (always, for a zero
      // timeout): a timed wait with a past deadline still sleeps for the
      // kernel's timer slack (50 us by default).
      const auto due = queue_.front().arrived + batch_timeout_;
      if (queue_.size() < batch_size_ && clock::now() < due) {
        cv_.wait_until(lock, due, [&] { return stopping_ || queue_.size() >= batch_size_; });
      }

      const std::size_t n = std::min(batch_size_, queue_.size());
      for (std::size_t i = 0; i < n; ++i) {
        inputs.push_back(std::move(queue_.front().value));
        promises.push_back(std::move(queue_.front().promise));
        queue_.pop_front();
      }
      ++executions_;
      items_executed_ += n;
      lock.unlock();

      execute(inputs, promises);
      inputs.clear();
      promises.clear();
      lock.lock();
    }
  }

  void execute(const std::vector<In>& inputs, std::vector<std::promise<Out>>& promises) {
    try {
      std::vector<Out> outputs = fn_(std::span<const In>(inputs));
      if (outputs.size() != inputs.size()) {
        throw std::runtime_error("batch function returned " + std::to_string(outputs.size()) +
                                 " outputs for " + std::to_string(inputs.size()) + " inputs");
      }
      for (std::size_t i = 0; i < outputs.size(); ++i) promises[i].set_value(std::move(outputs[i]));
    } catch (...) {
      for (auto& p : promises) {
        try {
          p.set_exception(std::current_exception());
        } catch (const std::future_error&) {
          // Already satisfied before the failure.
        }
      }
    }
  }

  batch_function fn_;
  const std::size_t batch_size_;
  const std::chrono::microseconds batch_timeout_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<entry> queue_;          // guarded by mu_
  bool stopping_ = false;            // guarded by mu_
  std::uint64_t executions_ = 0;     // guarded by mu_
  std::uint64_t items_executed_ = 0; // guarded by mu_
  std::thread worker_;
};

}  // namespace bench
