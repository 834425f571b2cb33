// Test support: a squaring batch function the test steers. An execution that
// holds the item 0 ("blocker") signals that it started and waits until the
// test releases it; a negative item ("poison") makes the execution throw.
// Records every execution's inputs. Thread-safe.
#pragma once

#include <mutex>
#include <span>
#include <stdexcept>
#include <vector>

#include "batch_serving/server.hpp"
#include "callback_record.hpp"

namespace batch_serving::testing {

class controlled_function {
 public:
  std::vector<int> operator()(std::span<const int> xs) {
    {
      std::lock_guard lock(mu_);
      executions_.emplace_back(xs.begin(), xs.end());
    }
    std::vector<int> out;
    bool poisoned = false;
    for (int x : xs) {
      if (x == 0) {
        blocked.open();
        released.wait();
      }
      poisoned = poisoned || x < 0;
      out.push_back(x * x);
    }
    if (poisoned) throw std::runtime_error("poisoned item");
    return out;
  }

  std::vector<std::vector<int>> executions() const {
    std::lock_guard lock(mu_);
    return executions_;
  }

  // True if any execution held `item`.
  bool ran(int item) const {
    std::lock_guard lock(mu_);
    for (const auto& e : executions_) {
      for (int x : e) {
        if (x == item) return true;
      }
    }
    return false;
  }

  gate blocked;   // opens when an execution holding 0 starts
  gate released;  // the test opens it to let that execution finish

 private:
  mutable std::mutex mu_;
  std::vector<std::vector<int>> executions_;
};

// A serving that runs `fn` (which must outlive it).
inline serving<int, int> serving_of(controlled_function& fn) {
  return serving<int, int>([&fn](std::span<const int> xs) { return fn(xs); });
}

// Occupies `srv`'s executor: dispatches the blocker (0) and waits until it
// runs. It finishes once the test opens fn.released.
inline future<int> block_executor(server<int, int>& srv, controlled_function& fn) {
  auto f = srv.dispatch_async(0);
  fn.blocked.wait();
  return f;
}

// Opens a gate when it goes out of scope. Declare it after the server, so a
// test that fails early does not leave the server's shutdown waiting on a
// blocked execution.
struct open_on_exit {
  gate& g;
  ~open_on_exit() { g.open(); }
};

}  // namespace batch_serving::testing
