// Cancellation: future::cancel(), or a std::stop_token in call_options (any
// dispatch form, blocking ones too, stopped from any thread), answers a call
// errc::cancelled if it has not finished. Items cancelled while queued leave
// the queue and never run. Cancelling a finished call does nothing (cancel()
// returns false). Here a first call holds the only partition, so the calls
// behind it are still queued when they are cancelled.
#include <batch_serving/call_options.hpp>
#include <batch_serving/error.hpp>
#include <batch_serving/future.hpp>
#include <batch_serving/server.hpp>
#include <batch_serving/serving.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <latch>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <thread>
#include <vector>

namespace bs = batch_serving;
using namespace std::chrono_literals;

namespace {
// Prints how the call was answered; true if it was cancelled.
bool cancelled(const char* how, const bs::result<int>& answer) {
  std::printf("%-17s -> %s\n", how, answer.ok() ? "ok" : answer.error().to_string().c_str());
  return !answer.ok() && answer.error().code() == bs::errc::cancelled;
}
}  // namespace

int main() try {
  std::latch holder_may_finish(1);
  std::mutex ran_mutex;
  std::vector<int> items_that_ran;
  bs::serving<int, int> recording_echo([&](std::span<const int> xs) {
    holder_may_finish.wait();
    std::lock_guard lock(ran_mutex);
    items_that_ran.insert(items_that_ran.end(), xs.begin(), xs.end());
    return std::vector<int>(xs.begin(), xs.end());
  });
  bs::server srv(recording_echo, {.batch_size = 1, .batch_timeout = 0ms});
  bs::future<int> holder = srv.dispatch_async(0);  // runs first, holds the partition

  bs::future<int> by_future = srv.dispatch_async(1);
  const bool cancel_returned = by_future.cancel();

  std::stop_source stop;
  bs::future<int> by_token = srv.dispatch_async(2, {.stop_token = stop.get_token()});
  stop.request_stop();

  // A blocking dispatch in another thread, stopped through its std::jthread
  // once the call is queued (the fourth call the server accepted).
  std::optional<bs::result<int>> blocking_answer;
  std::jthread caller([&](std::stop_token st) {
    blocking_answer = srv.dispatch(3, {.stop_token = st});
  });
  while (srv.stats().calls_accepted < 4) std::this_thread::yield();
  caller.request_stop();
  caller.join();

  holder_may_finish.count_down();
  const bs::result<int> held = holder.get();
  bs::future<int> finished = srv.dispatch_async(4);
  finished.wait();
  const bool late_cancel_returned = finished.cancel();
  const bs::result<int> finished_answer = finished.get();
  srv.stop();  // nothing runs after this: items_that_ran is final

  bool ok = cancelled("future::cancel()", by_future.get()) && cancel_returned;
  ok &= cancelled("stop_token", by_token.get());
  ok &= cancelled("jthread stop", *blocking_answer);
  std::printf("%-17s -> returned %s; the answer stays %d\n", "cancel() too late",
              late_cancel_returned ? "true" : "false", finished_answer.value_or(-1));
  std::printf("items that ran:");
  for (int x : items_that_ran) std::printf(" %d", x);
  std::printf(" (1, 2 and 3 never did)\n");
  ok &= !late_cancel_returned && finished_answer.value_or(-1) == 4 && held.value_or(-1) == 0 &&
        items_that_ran == std::vector<int>{0, 4};
  std::puts(ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
} catch (const std::exception& e) {  // e.g. serving_error from result::value()
  std::printf("FAILED: %s\n", e.what());
  return 1;
}
