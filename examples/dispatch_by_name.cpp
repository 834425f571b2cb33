// Dispatch by name: a server started with server_options::name is reachable
// from anywhere in the process with batch_serving::dispatch<In, Out>("name", x)
// (and dispatch_many, dispatch_async), without a reference to the server. An
// unknown name gets errc::no_serving; the right name with the wrong types (or a
// plain dispatch to a streaming server) gets errc::invalid_argument. A
// streaming server is reached by name with dispatch_stream<In, Out>.
#include <batch_serving/error.hpp>
#include <batch_serving/event.hpp>
#include <batch_serving/execution_context.hpp>
#include <batch_serving/future.hpp>
#include <batch_serving/registry.hpp>
#include <batch_serving/server.hpp>
#include <batch_serving/serving.hpp>
#include <batch_serving/streaming.hpp>
#include <batch_serving/streaming_server.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <span>
#include <vector>

namespace bs = batch_serving;
using namespace std::chrono_literals;

namespace {
int failures = 0;
void expect(bool holds, const char* what) {
  if (!holds) std::printf("FAILED: %s\n", what);
  failures += holds ? 0 : 1;
}

// Prints the call's answer; it should be an error with `code`.
void expect_error(const char* call, const bs::result<int>& answer, bs::errc code) {
  std::printf("%s -> %s\n", call, answer.ok() ? "ok" : answer.error().to_string().c_str());
  expect(!answer.ok() && answer.error().code() == code, call);
}

std::vector<int> square_all(std::span<const int> xs) {
  std::vector<int> out;
  for (int x : xs) out.push_back(x * x);
  return out;
}

// Elsewhere in the program: no server object in sight, only its name.
void use_squares_by_name() {
  const int nine = bs::dispatch<int, int>("squares", 3).value();
  const std::vector<int> both = bs::dispatch_many<int, int>("squares", {2, 4}).value();
  bs::future<int> later = bs::dispatch_async<int, int>("squares", 5);
  const int twenty_five = later.get().value();
  std::printf("\"squares\": 3 -> %d, {2, 4} -> {%d, %d}, async 5 -> %d\n", nine, both[0], both[1],
              twenty_five);
  expect(nine == 9 && both == std::vector<int>{4, 16} && twenty_five == 25, "squares by name");

  expect_error("dispatch<int, int>(\"cubes\", 3)", bs::dispatch<int, int>("cubes", 3),
               bs::errc::no_serving);
  expect_error("dispatch<long, int>(\"squares\", 3L)", bs::dispatch<long, int>("squares", 3L),
               bs::errc::invalid_argument);
}
}  // namespace

int main() try {
  // Registered under "squares" from start-up until it stops (here: end of main).
  bs::server squares_srv(bs::serving<int, int>(square_all),
                         {.name = "squares", .batch_size = 16, .batch_timeout = 1ms});
  use_squares_by_name();

  // A streaming server under its own name; its batch function reports progress.
  auto with_progress =
      bs::serving<int, int>([](std::span<const int> xs, bs::execution_context& ctx) {
        ctx.emit("progress", std::vector<int>(xs.size(), 100));  // percent done
        return square_all(xs);
      }).streaming({.hooks = {"progress"}});
  bs::server streaming_srv(with_progress, {.name = "squares_with_progress", .batch_timeout = 1ms});

  int percent = 0, item = 0;
  for (auto& ev : bs::dispatch_stream<int, int>("squares_with_progress", 6)) {
    if (ev.kind() == bs::event_kind::hook) percent = ev.payload<int>()[0];
    if (ev.kind() == bs::event_kind::item) item = ev.item();
  }
  std::printf("\"squares_with_progress\": 6 -> a progress event (%d%%), then item %d\n", percent,
              item);
  expect(percent == 100 && item == 36, "stream by name: a progress hook, then the item");
  expect_error("dispatch<int, int>(\"squares_with_progress\", 6)",
               bs::dispatch<int, int>("squares_with_progress", 6), bs::errc::invalid_argument);

  std::puts(failures == 0 ? "OK" : "FAILED");
  return failures == 0 ? 0 : 1;
} catch (const std::exception& e) {  // e.g. serving_error from result::value()
  std::printf("FAILED: %s\n", e.what());
  return 1;
}
