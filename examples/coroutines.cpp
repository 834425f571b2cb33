// co_await a server from C++20 coroutines: one item, an explicit batch, the
// events of a stream, cancellation, and the three places a coroutine can
// resume (the shared pool by default, a resume_pool of your own, inline on
// the partition thread). The coroutine type is any; this one is the smallest
// that works (a real program would use its framework's task).
#include <batch_serving/batch_serving.hpp>
#include <batch_serving/coroutine.hpp>
#include <batch_serving/resume_pool.hpp>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdio>
#include <exception>
#include <span>
#include <stop_token>
#include <vector>

namespace {

// Starts at once and runs detached; its frame frees itself at the end.
struct fire_and_forget {
  struct promise_type {
    fire_and_forget get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

// Globals: coroutines still return (and notify) after main saw them done.
std::atomic<int> failures{0};
std::atomic<int> done{0};

void check(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAILED: %s\n", what);
    ++failures;
  }
}

fire_and_forget one_of_each(batch_serving::server<int, int>& srv,
                            batch_serving::resume_pool& pool) {
  // One item; resumes on the library's shared pool (never on a partition thread).
  batch_serving::result<int> r = co_await batch_serving::co_dispatch(srv, 3);
  check(r.ok() && *r == 9, "co_dispatch");

  // An explicit batch, resumed on a pool of our own.
  std::vector<int> items{1, 2, 3};
  auto many = co_await batch_serving::co_dispatch_many(srv, items, pool);
  check(many.ok() && *many == std::vector<int>{1, 4, 9}, "co_dispatch_many");

  // Inline on the partition thread: lowest latency; keep such code short.
  auto fast = co_await batch_serving::co_dispatch(srv, 4, batch_serving::resume_inline);
  check(fast.ok() && *fast == 16, "resume_inline");

  // A stop token cancels: the call is answered cancelled, its item never runs.
  std::stop_source stop;
  stop.request_stop();
  auto cancelled = co_await batch_serving::co_dispatch(srv, 5, stop.get_token());
  check(!cancelled.ok() && cancelled.error().code() == batch_serving::errc::cancelled, "cancel");
  done.fetch_add(1);
  done.notify_all();
}

fire_and_forget read_stream(batch_serving::streaming_server<int, int>& srv) {
  std::vector<int> got;
  auto events = srv.dispatch_many({1, 2, 3, 4, 5});
  while (auto ev = co_await batch_serving::co_next(events)) {
    if (ev->kind() == batch_serving::event_kind::batch) {
      for (int v : ev->batch()) got.push_back(v);
    }
  }
  check(got == std::vector<int>{1, 4, 9, 16, 25}, "co_next");
  done.fetch_add(1);
  done.notify_all();
}

}  // namespace

int main() try {
  batch_serving::serving<int, int> squares([](std::span<const int> xs) {
    std::vector<int> out;
    for (int x : xs) out.push_back(x * x);
    return out;
  });
  batch_serving::server srv(squares,
                            {.batch_size = 64, .batch_timeout = std::chrono::milliseconds(1)});
  batch_serving::streaming_server<int, int> streaming(squares.streaming({}),
                                                      {.batch_size = 2, .batch_timeout = {}});
  batch_serving::resume_pool pool(2);

  // 1000 coroutines wait at once on a few threads: no thread per caller.
  constexpr int coroutines = 1000;
  for (int i = 0; i < coroutines; ++i) one_of_each(srv, pool);
  read_stream(streaming);
  for (int seen = done.load(); seen < coroutines + 1; seen = done.load()) done.wait(seen);

  std::printf("%d coroutines answered, %d failures\n", coroutines + 1, failures.load());
  return failures == 0 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "coroutines: %s\n", e.what());
  return 1;
}
