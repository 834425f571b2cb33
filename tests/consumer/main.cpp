// A consumer of the installed (or add_subdirectory'd) batch_serving: starts a
// server over a squaring serving and checks a few results.
#include <batch_serving/batch_serving.hpp>

#include <cstdio>
#include <span>
#include <thread>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "consumer FAILED: %s\n", what);
    ++failures;
  }
}

}  // namespace

int main() {
  batch_serving::serving<int, int> squares([](std::span<const int> xs) {
    std::vector<int> out;
    out.reserve(xs.size());
    for (int x : xs) out.push_back(x * x);
    return out;
  });
  batch_serving::server srv(squares, {.batch_size = 4});

  check(srv.dispatch(3).value() == 9, "dispatch(3) == 9");
  check(srv.dispatch_many({1, 2, 5}).value() == std::vector<int>{1, 4, 25},
        "dispatch_many({1, 2, 5}) == {1, 4, 25}");

  std::vector<int> results(8);
  std::vector<std::thread> callers;
  for (int n = 0; n < 8; ++n) {
    callers.emplace_back([&, n] { results[n] = srv.dispatch(n).value(); });
  }
  for (auto& t : callers) t.join();
  for (int n = 0; n < 8; ++n) check(results[n] == n * n, "concurrent dispatch(n) == n * n");

  if (failures != 0) return 1;
  std::printf("consumer OK\n");
  return 0;
}
