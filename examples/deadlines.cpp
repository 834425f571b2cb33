// Deadlines: call_options::timeout (relative) or ::deadline (absolute), else
// the server's default_timeout. A call not answered in time gets errc::timeout
// at its deadline: items still queued then leave the queue and never run;
// results of items already running are discarded. A streaming server's dispatch
// takes call_options too: a stream that times out ends with an error event.
// Here the backend stalls until main lets it recover, so every call made
// during the stall misses its deadline and the calls after it are in time.
#include <batch_serving/call_options.hpp>
#include <batch_serving/error.hpp>
#include <batch_serving/event.hpp>
#include <batch_serving/event_stream.hpp>
#include <batch_serving/future.hpp>
#include <batch_serving/server.hpp>
#include <batch_serving/serving.hpp>
#include <batch_serving/streaming.hpp>
#include <batch_serving/streaming_server.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <latch>
#include <span>
#include <vector>

namespace bs = batch_serving;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {
// The stream's answer: its item event, or the error event that ended it.
bs::result<int> answer_of(bs::event_stream<int> events) {
  for (auto& ev : events) {
    if (ev.kind() == bs::event_kind::item) return ev.item();
    if (ev.kind() == bs::event_kind::error) return ev.error();
  }
  return bs::error(bs::errc::execution_failed, "the stream ended without an answer");
}

// Prints how the call was answered, and when; true if it timed out.
bool timed_out(const char* what, const bs::result<int>& answer, steady::time_point start) {
  std::printf("%-29s -> after %3lld ms: %s\n", what,
              static_cast<long long>((steady::now() - start) / 1ms),
              answer.ok() ? "ok" : answer.error().to_string().c_str());
  return !answer.ok() && answer.error().code() == bs::errc::timeout;
}
}  // namespace

int main() try {
  std::latch recovered(1);
  bs::serving<int, int> stalling_echo([&](std::span<const int> xs) {
    recovered.wait();
    return std::vector<int>(xs.begin(), xs.end());
  });
  bs::server srv(stalling_echo, {.batch_timeout = 0ms, .default_timeout = 50ms});
  bs::server streaming_srv(stalling_echo.streaming({}), {.batch_timeout = 0ms});

  // During the stall: item 1 runs (and hangs), items 2 and 3 wait in the queue.
  const auto start = steady::now();
  auto by_timeout = srv.dispatch_async(1, {.timeout = 20ms});
  auto by_deadline = srv.dispatch_async(2, {.deadline = steady::now() + 20ms});
  auto by_default = srv.dispatch_async(3);  // neither set: the server's default_timeout
  auto stream = streaming_srv.dispatch(4, {.timeout = 20ms});
  bool ok = timed_out("timeout 20ms", by_timeout.get(), start);
  ok &= timed_out("deadline now + 20ms", by_deadline.get(), start);
  ok &= timed_out("stream, timeout 20ms", answer_of(std::move(stream)), start);
  ok &= timed_out("neither: default_timeout 50ms", by_default.get(), start);

  recovered.count_down();
  const bs::result<int> in_time = srv.dispatch(5, {.timeout = 10s});
  const bs::result<int> stream_in_time = answer_of(streaming_srv.dispatch(6, {.timeout = 10s}));
  std::printf("%-29s -> %d; stream -> %d\n", "after recovery, timeout 10s", in_time.value_or(-1),
              stream_in_time.value_or(-1));
  ok &= in_time.value_or(-1) == 5 && stream_in_time.value_or(-1) == 6;

  srv.stop();  // stopped first, so that the counters are final
  streaming_srv.stop();
  const unsigned long long timed_out_calls =
      srv.stats().calls_timed_out + streaming_srv.stats().calls_timed_out;
  std::printf("stats: %llu calls timed out\n", timed_out_calls);
  std::puts(ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
} catch (const std::exception& e) {  // e.g. serving_error from result::value()
  std::printf("FAILED: %s\n", e.what());
  return 1;
}
