// Test support: a batch function that records every execution it runs.
#pragma once

#include <mutex>
#include <span>
#include <vector>

namespace batch_serving::testing {

// Squares its inputs and records each execution's inputs, in the order the
// executions started. Thread-safe.
class recorder {
 public:
  std::vector<int> square(std::span<const int> xs) {
    {
      std::lock_guard lock(mu_);
      executions_.emplace_back(xs.begin(), xs.end());
    }
    std::vector<int> out;
    out.reserve(xs.size());
    for (int x : xs) out.push_back(x * x);
    return out;
  }

  std::vector<std::vector<int>> executions() const {
    std::lock_guard lock(mu_);
    return executions_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::vector<int>> executions_;
};

}  // namespace batch_serving::testing
