// batch_serving_bench: batch_serving's throughput, latency and overhead, side
// by side with a hand-written naive batcher, plus the machine's own limits.
//
//   batch_serving_bench                       # every scenario, aligned table
//   batch_serving_bench --json > bench.jsonl  # one JSON object per line
//   batch_serving_bench --scenarios sync --callers 1,64 --runs 5
//   batch_serving_bench --smoke               # tiny durations and counts (CI)
//   batch_serving_bench --scenarios distributed  # Redis Streams, a process per node
//
// This file parses the options and runs the chosen scenarios; the scenarios
// are in scenarios_*.cpp, the output in report.cpp.
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "config.hpp"
#ifdef BATCH_SERVING_BENCH_DISTRIBUTED
#include "distributed_node.hpp"
#endif
#include "report.hpp"
#include "scenarios.hpp"

namespace {

using scenario_fn = void (*)(const bench::config&, bench::reporter&);

struct scenario {
  std::string_view name;
  scenario_fn run;
};

constexpr scenario all_scenarios[] = {
    {"sync", bench::run_sync},
    {"async", bench::run_async},
    {"many", bench::run_many},
    {"dense", bench::run_dense},
    {"limit", bench::run_limit},
    {"memory", bench::run_memory},
    {"coro", bench::run_coro},
#ifdef BATCH_SERVING_BENCH_DISTRIBUTED
    {"distributed", bench::run_distributed},
#endif
};

#ifdef BATCH_SERVING_BENCH_DISTRIBUTED
constexpr const char* scenario_names = "sync,async,many,dense,limit,memory,coro,distributed";
#else
constexpr const char* scenario_names = "sync,async,many,dense,limit,memory,coro";
#endif

constexpr const char* distributed_modes = "slow,single,many,latency";

constexpr const char* usage = R"(usage: batch_serving_bench [options]

Measures batch_serving against a hand-written naive batcher (bench/naive_batcher.hpp).

  --json                 one JSON object per line instead of a table
  --scenarios LIST       comma-separated, from: sync,async,many,dense,limit,memory,
                         coro, distributed (default: all; distributed only when built with
                         the Redis transport, and skipped without redis-server)
  --duration-ms N        measured time per measurement (default 500; dense 300)
  --runs N               repeat each measurement N times and report medians (default 3)
  --callers LIST         caller threads of the sync scenario (default 1,8,64,512)
  --coro-callers LIST    coroutine callers of the coro scenario (default 64,512,4096)
  --timeouts-us LIST     batch_timeout values of sync, async, many, coro (default 0,1000)
  --async-items N        items the async scenario submits (default 1000000)
  --memory-requests N    requests the memory scenario queues (default 1000000)
  --distributed-modes L  modes of the distributed scenario, from: slow,single,many,latency
                         (default: all)
  --metrics              the sync and async scenarios' servers report metrics
                         (metrics_registry::global()): compare with a run without
  --smoke                every scenario, tiny durations and counts, 1 run (for CI;
                         explicit options still apply)
  --quiet                no progress lines on stderr
  --help                 this text
)";

struct usage_error {
  std::string message;
};

std::size_t parse_count(std::string_view option, std::string_view text, std::size_t least) {
  std::size_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < least) {
    throw usage_error{std::string(option) + ": expected a whole number >= " +
                      std::to_string(least) + ", got '" + std::string(text) + "'"};
  }
  return value;
}

std::vector<std::string_view> split(std::string_view text) {
  std::vector<std::string_view> parts;
  while (true) {
    const std::size_t comma = text.find(',');
    parts.push_back(text.substr(0, comma));
    if (comma == std::string_view::npos) return parts;
    text.remove_prefix(comma + 1);
  }
}

std::vector<std::size_t> parse_counts(std::string_view option, std::string_view text,
                                      std::size_t least) {
  std::vector<std::size_t> values;
  for (const auto part : split(text)) values.push_back(parse_count(option, part, least));
  return values;
}

std::vector<scenario> parse_scenarios(std::string_view text) {
  std::vector<scenario> chosen;
  for (const auto name : split(text)) {
    bool known = false;
    for (const auto& s : all_scenarios) {
      if (s.name != name) continue;
      known = true;
      bool already = false;
      for (const auto& c : chosen) already = already || c.name == name;
      if (!already) chosen.push_back(s);
    }
    if (!known && name == "distributed") {
      throw usage_error{
          "--scenarios: distributed is not built: it needs the Redis transport "
          "(apt-get install libhiredis-dev libmsgpack-cxx-dev, then configure again)"};
    }
    if (!known) {
      throw usage_error{"--scenarios: unknown scenario '" + std::string(name) +
                        "' (known: " + scenario_names + ")"};
    }
  }
  return chosen;
}

struct options {
  bench::config cfg;
  std::vector<scenario> scenarios{std::begin(all_scenarios), std::end(all_scenarios)};
  bool json = false;
  bool help = false;
};

options parse(int argc, char** argv) {
  options o;
  bool smoke = false;
  std::optional<std::size_t> duration_ms, runs, async_items, memory_requests;
  std::optional<std::vector<std::size_t>> coro_callers;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) throw usage_error{std::string(arg) + ": needs a value"};
      return argv[++i];
    };
    if (arg == "--json") {
      o.json = true;
    } else if (arg == "--smoke") {
      smoke = true;
    } else if (arg == "--quiet") {
      o.cfg.progress = false;
    } else if (arg == "--metrics") {
      o.cfg.metrics = true;
    } else if (arg == "--help" || arg == "-h") {
      o.help = true;
    } else if (arg == "--scenarios") {
      o.scenarios = parse_scenarios(value());
      for (const auto& s : o.scenarios) {
        if (s.name == "distributed") o.cfg.distributed_required = true;
      }
    } else if (arg == "--distributed-modes") {
      o.cfg.distributed_modes.clear();
      for (const auto mode : split(value())) {
        bool known = false;
        for (const auto m : split(distributed_modes)) known = known || m == mode;
        if (!known) {
          throw usage_error{"--distributed-modes: unknown mode '" + std::string(mode) +
                            "' (known: " + distributed_modes + ")"};
        }
        o.cfg.distributed_modes.emplace_back(mode);
      }
    } else if (arg == "--duration-ms") {
      duration_ms = parse_count(arg, value(), 1);
    } else if (arg == "--runs") {
      runs = parse_count(arg, value(), 1);
    } else if (arg == "--callers") {
      o.cfg.callers = parse_counts(arg, value(), 1);
    } else if (arg == "--coro-callers") {
      coro_callers = parse_counts(arg, value(), 1);
    } else if (arg == "--timeouts-us") {
      o.cfg.timeouts.clear();
      for (const std::size_t us : parse_counts(arg, value(), 0)) {
        o.cfg.timeouts.emplace_back(static_cast<std::chrono::microseconds::rep>(us));
      }
    } else if (arg == "--async-items") {
      async_items = parse_count(arg, value(), 1);
    } else if (arg == "--memory-requests") {
      memory_requests = parse_count(arg, value(), 1);
    } else {
      throw usage_error{"unknown option '" + std::string(arg) + "'"};
    }
  }
  if (smoke) {
    o.cfg.duration = o.cfg.dense_duration = std::chrono::milliseconds(20);
    o.cfg.runs = 1;
    o.cfg.async_items = 10'000;
    o.cfg.memory_requests = 10'000;
    o.cfg.coro_callers = {64};
  }
  if (coro_callers) o.cfg.coro_callers = *coro_callers;
  if (duration_ms) {
    o.cfg.duration = o.cfg.dense_duration =
        std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(*duration_ms));
  }
  if (runs) o.cfg.runs = static_cast<int>(*runs);
  if (async_items) o.cfg.async_items = *async_items;
  if (memory_requests) o.cfg.memory_requests = *memory_requests;
  return o;
}

// The 1, 5 and 15 minute load averages, to tell a quiet machine from a busy one.
std::string load_average() {
  std::string text = "?";
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
    double one = 0, five = 0, fifteen = 0;
    if (std::fscanf(f, "%lf %lf %lf", &one, &five, &fifteen) == 3) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f", one, five, fifteen);
      text = buf;
    }
    std::fclose(f);
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
#ifdef BATCH_SERVING_BENCH_DISTRIBUTED
  // A worker or client process of the distributed scenario (hidden mode).
  if (argc > 1 && std::string_view(argv[1]) == "--node") return bench::run_node(argc, argv);
#endif
  options opts;
  try {
    opts = parse(argc, argv);
  } catch (const usage_error& e) {
    std::fprintf(stderr, "batch_serving_bench: %s\n\n%s", e.message.c_str(), usage);
    return 2;
  }
  if (opts.help) {
    std::fputs(usage, stdout);
    return 0;
  }

  const auto started = std::chrono::steady_clock::now();
  const auto& cfg = opts.cfg;
  std::fprintf(opts.json ? stderr : stdout,
               "batch_serving_bench: %u hardware threads, load average %s; %lld ms per "
               "measurement (dense %lld ms), medians of %d runs\n",
               std::thread::hardware_concurrency(), load_average().c_str(),
               static_cast<long long>(cfg.duration.count()),
               static_cast<long long>(cfg.dense_duration.count()), cfg.runs);
  std::fflush(opts.json ? stderr : stdout);

  bench::reporter out(opts.json ? bench::reporter::format::json : bench::reporter::format::table,
                      stdout);
  int status = 0;
  try {
    bench::run_host(cfg, out);
    for (const auto& s : opts.scenarios) s.run(cfg, out);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "batch_serving_bench: FAILED: %s\n", e.what());
    status = 1;
  }
  if (!opts.json) std::fputs("\n", stdout);
  out.finish();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (cfg.progress) std::fprintf(stderr, "batch_serving_bench: done in %.1f s\n", seconds);
  return status;
}
