#include "distributed_node.hpp"

#include <unistd.h>

#include <batch_serving/batch_serving.hpp>
#include <batch_serving/redis_client.hpp>
#include <batch_serving/redis_worker.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "closed_loop.hpp"
#include "distributed_processes.hpp"
#include "measurement.hpp"
#include "workload.hpp"

namespace bench {
namespace {

using namespace std::chrono_literals;

// Long enough never to cut a call short here (a slow run's p99 is ~200 ms),
// short enough that a lost answer fails the run instead of hanging it.
constexpr auto call_timeout = 30s;

batch_serving::redis_endpoint loopback(int port) { return {.host = "127.0.0.1", .port = port}; }

long long parse_number(std::string_view key, std::string_view text) {
  try {
    std::size_t used = 0;
    const long long value = std::stoll(std::string(text), &used);
    if (used == text.size() && value >= 0) return value;
  } catch (const std::exception&) {
  }
  throw std::runtime_error("--node: " + std::string(key) + " needs a number >= 0, got '" +
                           std::string(text) + "'");
}

node_settings parse_node(int argc, char** argv) {
  node_settings s;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view key = argv[i];
    const std::string_view value = argv[i + 1];
    const auto count = [&] { return static_cast<std::size_t>(parse_number(key, value)); };
    if (key == "--node") {
      s.role = value;
    } else if (key == "--port") {
      s.port = static_cast<int>(parse_number(key, value));
    } else if (key == "--serving") {
      s.serving = value;
    } else if (key == "--batch-size") {
      s.batch_size = count();
    } else if (key == "--batch-timeout-us") {
      s.batch_timeout_us = parse_number(key, value);
    } else if (key == "--delay-ms") {
      s.delay_ms = parse_number(key, value);
    } else if (key == "--callers") {
      s.callers = count();
    } else if (key == "--items") {
      s.items = count();
    } else if (key == "--warmup-ms") {
      s.warmup_ms = parse_number(key, value);
    } else if (key == "--duration-ms") {
      s.duration_ms = parse_number(key, value);
    } else if (key == "--pings") {
      s.pings = count();
    } else {
      throw std::runtime_error("--node: unknown option '" + std::string(key) + "'");
    }
  }
  if (argc % 2 == 0) throw std::runtime_error("--node: an option without a value");
  return s;
}

// Blocks until the bench closes our stdin (or it dies: PR_SET_PDEATHSIG).
void wait_for_end_of_stdin() {
  char buffer[64];
  while (true) {
    const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
    if (n == 0 || (n < 0 && errno != EINTR)) return;
  }
}

int run_worker(const node_settings& s) {
  const auto delay = std::chrono::milliseconds(s.delay_ms);
  const batch_serving::serving<int, int> work([delay](std::span<const int> xs) {
    if (delay.count() > 0) std::this_thread::sleep_for(delay);  // a remote GPU call
    return square_all(xs);
  });
  batch_serving::server local(work,
                              {.batch_size = s.batch_size,
                               .batch_timeout = std::chrono::microseconds(s.batch_timeout_us)});
  batch_serving::redis_worker worker(local, s.serving, {.endpoint = loopback(s.port)});
  const double cpu_before = process_cpu_seconds();
  std::printf("ready\n");
  std::fflush(stdout);
  wait_for_end_of_stdin();
  worker.stop();
  const double cpu_seconds = process_cpu_seconds() - cpu_before;
  const batch_serving::server_stats stats = local.stats();
  std::printf("stats %llu %llu %.6f\n", static_cast<unsigned long long>(stats.executions),
              static_cast<unsigned long long>(stats.items_executed), cpu_seconds);
  std::fflush(stdout);
  return 0;
}

bool all_squared(std::span<const int> in, const std::vector<int>& out) {
  if (out.size() != in.size()) return false;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (out[i] != in[i] * in[i]) return false;
  }
  return true;
}

// Waits until a worker answers a call: the workers printed "ready" after
// their first heartbeat, so this is one round trip unless Redis is slow.
void wait_for_a_worker(batch_serving::redis_client<int, int>& client) {
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  while (true) {
    const batch_serving::result<int> r = client.dispatch(3, {.timeout = 5s});
    if (r.ok() && *r == 9) return;
    if (std::chrono::steady_clock::now() >= give_up) {
      throw std::runtime_error("no worker answered within 20 s: " +
                               (r.ok() ? std::string("a wrong answer") : r.error().to_string()));
    }
    std::this_thread::sleep_for(20ms);
  }
}

double or_minus_one(std::optional<double> v) { return v ? *v : -1.0; }

int run_client(const node_settings& s) {
  batch_serving::redis_client<int, int> client({.endpoint = loopback(s.port),
                                                .serving = s.serving});
  wait_for_a_worker(client);
  const double ping_us = s.pings > 0 ? ping_round_trip_us(s.port, s.pings) : -1.0;
  const batch_serving::redis_client_stats before = client.stats();
  const double cpu_before = process_cpu_seconds();
  const loop_result r = run_closed_loop(
      s.callers, std::chrono::milliseconds(s.warmup_ms), std::chrono::milliseconds(s.duration_ms),
      [&client, items = s.items](std::size_t who) {
        // A dispatch_many caller sends the same items every call (as the
        // local many scenario does), so its own cost stays small.
        std::vector<int> xs(items);
        for (std::size_t i = 0; i < items; ++i) xs[i] = input_for(who, i);
        return [&client, who, xs = std::move(xs), n = std::uint64_t{0}]() mutable -> std::size_t {
          if (xs.size() == 1) {
            const int x = input_for(who, n++);
            const batch_serving::result<int> answer = client.dispatch(x, {.timeout = call_timeout});
            return answer.ok() && *answer == x * x ? 1 : 0;
          }
          const auto answer =
              client.dispatch_many(std::span<const int>(xs), {.timeout = call_timeout});
          return answer.ok() && all_squared(xs, *answer) ? xs.size() : 0;
        };
      },
      [] { return batch_counters{}; });
  const double cpu_seconds = process_cpu_seconds() - cpu_before;
  const batch_serving::redis_client_stats after = client.stats();
  std::printf("result %.3f %.3f %.3f %llu %llu %llu %.3f %.6f\n",
              or_minus_one(r.figures.items_per_s), or_minus_one(r.figures.p50_us),
              or_minus_one(r.figures.p99_us), static_cast<unsigned long long>(r.failed_calls),
              static_cast<unsigned long long>(after.calls_sent - before.calls_sent),
              static_cast<unsigned long long>(after.round_trips - before.round_trips), ping_us,
              cpu_seconds);
  std::fflush(stdout);
  return 0;
}

}  // namespace

std::vector<std::string> node_settings::to_args() const {
  return {"--node",
          role,
          "--port",
          std::to_string(port),
          "--serving",
          serving,
          "--batch-size",
          std::to_string(batch_size),
          "--batch-timeout-us",
          std::to_string(batch_timeout_us),
          "--delay-ms",
          std::to_string(delay_ms),
          "--callers",
          std::to_string(callers),
          "--items",
          std::to_string(items),
          "--warmup-ms",
          std::to_string(warmup_ms),
          "--duration-ms",
          std::to_string(duration_ms),
          "--pings",
          std::to_string(pings)};
}

int run_node(int argc, char** argv) {
  try {
    const node_settings s = parse_node(argc, argv);
    if (s.role == "worker") return run_worker(s);
    if (s.role == "client") return run_client(s);
    throw std::runtime_error("--node: expected worker or client, got '" + s.role + "'");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "batch_serving_bench --node: %s\n", e.what());
    return 1;
  }
}

}  // namespace bench
