// The README's quick start: a squaring serving, dispatched to from one thread
// and from many, in the ok and the error forms.
#include <batch_serving/batch_serving.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <span>
#include <stdexcept>
#include <thread>
#include <vector>

namespace bs = batch_serving;

int main() try {
  // 1) Define and start a serving.
  bs::serving<int, int> squares([](std::span<const int> xs) {
    std::vector<int> out;
    for (int x : xs) {
      if (x < 0) throw std::invalid_argument("negative input");
      out.push_back(x * x);
    }
    return out;
  });
  bs::server srv(squares, {.name = "my_serving",
                           .batch_size = 10,
                           .batch_timeout = std::chrono::milliseconds(100)});

  // 2) Submit work. value() throws bs::serving_error (the seed's dispatch!).
  std::vector<int> both = srv.dispatch_many({2, 3}).value();   // {4, 9}
  int four = srv.dispatch(2).value();                          // 4

  // The result form never throws: check ok() and read error().
  bs::result<int> bad = srv.dispatch(-2);
  std::printf("dispatch_many({2, 3}) -> {%d, %d}; dispatch(2) -> %d\n", both[0], both[1], four);
  std::printf("dispatch(-2) -> %s\n", bad.ok() ? "ok" : bad.error().to_string().c_str());

  // By name, from anywhere in the process.
  bs::result<int> nine = bs::dispatch<int, int>("my_serving", 3);
  std::printf("dispatch<int, int>(\"my_serving\", 3) -> %d\n", nine.value());

  // 3) From many concurrent callers: each gets its own result, executions are shared.
  std::vector<int> results(20);
  std::vector<std::thread> callers;
  for (int n = 0; n < 20; ++n) {
    callers.emplace_back([&, n] { results[n] = srv.dispatch(n).value(); });
  }
  for (auto& t : callers) t.join();
  const auto stats = srv.stats();
  std::printf("20 concurrent callers: results[19] = %d, %llu executions (mean batch %.1f)\n",
              results[19], static_cast<unsigned long long>(stats.executions), stats.mean_batch());
  return results[19] == 361 ? 0 : 1;
} catch (const std::exception& e) {  // e.g. serving_error from result::value()
  std::printf("FAILED: %s\n", e.what());
  return 1;
}
