// What a future<T> waits on: implemented by the asynchronous call kinds
// (call_kinds.hpp) and by a future answered before it started.
#pragma once

#include <chrono>
#include <utility>

#include "batch_serving/error.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving::detail {

template <class T>
class future_state {
 public:
  virtual void wait() noexcept = 0;
  virtual bool wait_until(std::chrono::steady_clock::time_point deadline) noexcept = 0;
  virtual bool ready() const noexcept = 0;
  // The answer, mapped for the caller (map_results runs here). Once.
  virtual result<T> take() = 0;
  // Answers the call cancelled unless it finished. True if this cancelled it.
  virtual bool cancel() noexcept = 0;
  // Gives up the future's reference.
  virtual void drop() noexcept = 0;

 protected:
  ~future_state() = default;
};

// A future that was answered before it started (bad input): holds its answer.
template <class T>
class ready_future_state final : public future_state<T> {
 public:
  explicit ready_future_state(batch_serving::error e) : answer_(std::move(e)) {}
  void wait() noexcept override {}
  bool wait_until(std::chrono::steady_clock::time_point) noexcept override { return true; }
  bool ready() const noexcept override { return true; }
  result<T> take() override { return std::move(answer_); }
  bool cancel() noexcept override { return false; }
  void drop() noexcept override { delete this; }

 private:
  result<T> answer_;
};

}  // namespace batch_serving::detail
