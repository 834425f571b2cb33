// distributed: the Redis Streams transport, every node a process of its own
// (a private redis-server on loopback, worker processes, one client process;
// the nodes are this executable run with --node, distributed_node.hpp).
// Worker servers: batch_size 64, batch_timeout 1 ms unless the mode says
// otherwise. The progress lines add calls per round trip (the client's
// pipelining) and CPU time per call of client, workers and Redis. Modes:
// - slow:    execution sleeps 20 ms per batch (a remote GPU call); 1 and 4
//            workers; 512 callers, enough to keep 4 workers' batches full
//            (each worker holds up to 2 x 64 items: one batch running, one
//            filling).
// - single:  64 threads of one client, single-item dispatch; 1 worker; a
//            row at batch_timeout 1 ms and one at 0 (eager), because 64
//            remote callers cannot fill a 64-item batch within 1 ms.
// - many:    8 threads, dispatch_many of 64 items; 1 worker.
// - latency: 1 thread, sequential calls, batch_timeout 0 (a lone call must
//            not wait out a batch window); next to the median of sequential
//            Redis PINGs measured by the client process in the same run.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "distributed_node.hpp"
#include "distributed_processes.hpp"
#include "measurement.hpp"
#include "scenarios.hpp"
#include "workload.hpp"

namespace bench {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

struct mode_spec {
  std::string_view mode;
  std::size_t workers;
  std::size_t callers;
  std::size_t items_per_call;
  std::size_t batch_size;
  long long batch_timeout_us;
  long long delay_ms;  // per batch, in the worker's batch function
};

constexpr std::size_t slow_callers = 512;

constexpr mode_spec all_modes[] = {
    {"slow", 1, slow_callers, 1, 64, 1000, 20},
    {"slow", 4, slow_callers, 1, 64, 1000, 20},
    {"single", 1, 64, 1, 64, 1000, 0},
    {"single", 1, 64, 1, 64, 0, 0},
    {"many", 1, 8, 64, 64, 1000, 0},
    {"latency", 1, 1, 1, 64, 0, 0},
};

struct client_figures {
  measurement figures;
  std::uint64_t failed = 0;
  std::uint64_t calls_sent = 0;
  std::uint64_t round_trips = 0;
  std::optional<double> ping_us;
  // CPU time per call sent, in microseconds, of each kind of process.
  double client_cpu_us = 0;
  double workers_cpu_us = 0;
  double redis_cpu_us = 0;
};

std::optional<double> present(double v) { return v < 0 ? std::nullopt : std::optional<double>(v); }

std::vector<std::string> command(const node_settings& s) {
  std::vector<std::string> argv = {self_executable()};
  for (std::string& a : s.to_args()) argv.push_back(std::move(a));
  return argv;
}

// One measurement: starts the workers, waits until each is attached, runs
// the client, stops the workers. Every process is killed if anything fails.
client_figures measure(const config& cfg, const mode_spec& m, int port,
                       const std::string& serving) {
  node_settings base;
  base.port = port;
  base.serving = serving;
  base.batch_size = m.batch_size;
  base.batch_timeout_us = m.batch_timeout_us;
  base.delay_ms = m.delay_ms;

  std::vector<std::unique_ptr<child_process>> workers;
  node_settings worker = base;
  worker.role = "worker";
  for (std::size_t i = 0; i < m.workers; ++i) {
    workers.push_back(std::make_unique<child_process>(command(worker)));
  }
  for (auto& w : workers) {
    if (w->read_line(clock_type::now() + 30s) != "ready") {
      throw std::runtime_error("distributed: a worker did not start (its error is above)");
    }
  }

  node_settings client = base;
  client.role = "client";
  client.callers = m.callers;
  client.items = m.items_per_call;
  // A slow batch takes 20 ms: warm up over several of them.
  const auto warmup =
      std::max<std::chrono::milliseconds>(cfg.warmup(), 5 * std::chrono::milliseconds(m.delay_ms));
  client.warmup_ms = warmup.count();
  client.duration_ms = cfg.duration.count();
  client.pings =
      m.mode == "latency"
          ? std::clamp<std::size_t>(static_cast<std::size_t>(cfg.duration.count()) * 4, 100, 2000)
          : 0;
  const double redis_cpu_before = redis_cpu_seconds(port);
  child_process caller(command(client));
  const std::optional<std::string> line =
      caller.read_line(clock_type::now() + warmup + cfg.duration + 120s);
  if (caller.wait(10s) != 0 || !line) {
    throw std::runtime_error("distributed: the client failed (its error is above)");
  }
  const double redis_cpu = redis_cpu_seconds(port) - redis_cpu_before;
  double items_per_s = 0, p50 = 0, p99 = 0, ping = 0, client_cpu = 0;
  unsigned long long failed = 0, sent = 0, trips = 0;
  if (std::sscanf(line->c_str(), "result %lf %lf %lf %llu %llu %llu %lf %lf", &items_per_s, &p50,
                  &p99, &failed, &sent, &trips, &ping, &client_cpu) != 8) {
    throw std::runtime_error("distributed: the client printed '" + *line + "'");
  }

  std::uint64_t executions = 0;
  std::uint64_t executed = 0;
  double workers_cpu = 0;
  for (auto& w : workers) w->close_stdin();
  for (auto& w : workers) {
    unsigned long long e = 0, items = 0;
    double cpu = 0;
    const std::optional<std::string> stats = w->read_line(clock_type::now() + 30s);
    if (!stats || std::sscanf(stats->c_str(), "stats %llu %llu %lf", &e, &items, &cpu) != 3 ||
        w->wait(10s) != 0) {
      throw std::runtime_error("distributed: a worker did not stop cleanly (its error is above)");
    }
    executions += e;
    executed += items;
    workers_cpu += cpu;
  }

  client_figures out;
  out.figures.items_per_s = present(items_per_s);
  out.figures.p50_us = present(p50);
  out.figures.p99_us = present(p99);
  // Over the workers' whole lives (the warm-up included).
  out.figures.mean_batch = mean_batch({0, 0}, {executions, executed});
  out.failed = failed;
  out.calls_sent = sent;
  out.round_trips = trips;
  out.ping_us = present(ping);
  const double calls = sent == 0 ? 1.0 : static_cast<double>(sent);
  out.client_cpu_us = client_cpu * 1e6 / calls;
  out.workers_cpu_us = workers_cpu * 1e6 / calls;
  out.redis_cpu_us = redis_cpu * 1e6 / calls;
  return out;
}

std::string describe(const mode_spec& m) {
  return "distributed: " + std::string(m.mode) + ", " + std::to_string(m.workers) + " worker(s), " +
         std::to_string(m.callers) + " callers x " + std::to_string(m.items_per_call) +
         " items, batch_timeout " + std::to_string(m.batch_timeout_us) + " us" +
         (m.delay_ms > 0 ? ", " + std::to_string(m.delay_ms) + " ms per batch" : "");
}

bool wanted(const config& cfg, std::string_view mode) {
  for (const std::string& m : cfg.distributed_modes) {
    if (m == mode) return true;
  }
  return false;
}

}  // namespace

void run_distributed(const config& cfg, reporter& out) {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): getenv, nobody sets the environment
  const bool under_ci = std::getenv("CI") != nullptr;
  if (!find_redis_server() && !cfg.distributed_required && !under_ci) {
    std::fprintf(stderr,
                 "batch_serving_bench: skipping the distributed scenario: redis-server not found "
                 "(Debian: apt-get install redis-server, or set BATCH_SERVING_REDIS_SERVER)\n");
    return;
  }
  const redis_process redis;
  int measurement_number = 0;
  for (const mode_spec& m : all_modes) {
    if (!wanted(cfg, m.mode)) continue;
    progress(cfg, describe(m));
    std::vector<measurement> runs;
    std::vector<std::optional<double>> pings;
    std::uint64_t failed = 0;
    for (int run = 0; run < cfg.runs; ++run) {
      const std::string serving = "bench-" + std::to_string(measurement_number++);
      const client_figures f = measure(cfg, m, redis.port(), serving);
      runs.push_back(f.figures);
      pings.push_back(f.ping_us);
      failed += f.failed;
      if (cfg.progress) {
        const double per_trip = f.round_trips == 0 ? 0.0
                                                   : static_cast<double>(f.calls_sent) /
                                                         static_cast<double>(f.round_trips);
        const std::string ping =
            f.ping_us ? ", PING " + std::to_string(*f.ping_us).substr(0, 5) + " us" : "";
        std::fprintf(stderr,
                     "    run %d: %.0f items/s, p50 %.1f us, %.1f calls per round trip, CPU per "
                     "call: client %.1f us, workers %.1f us, redis %.1f us%s\n",
                     run + 1, f.figures.items_per_s.value_or(0), f.figures.p50_us.value_or(0),
                     per_trip, f.client_cpu_us, f.workers_cpu_us, f.redis_cpu_us, ping.c_str());
      }
    }
    require_no_failures(failed, "distributed " + std::string(m.mode));
    row r = make_row("distributed", "batch_serving", static_cast<std::int64_t>(m.callers),
                     static_cast<std::int64_t>(m.batch_size), m.batch_timeout_us, median_of(runs),
                     cfg.runs);
    r.labels.emplace_back("mode", std::string(m.mode));
    r.extra.emplace_back("workers", static_cast<double>(m.workers));
    if (m.mode == "latency") r.extra.emplace_back("redis_ping_rtt_us", median(pings));
    out.add(std::move(r));
  }
}

}  // namespace bench
