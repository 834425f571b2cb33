// batch_serving_redis_floor: the least a call through Redis Streams can take
// on this host, next to a PING round trip: the distributed scenario's
// latency mode without the library. A single-threaded worker process blocks
// in XREADGROUP, answers each entry with one XADD to the reply stream and an
// XACK (pipelined); a single-threaded client writes each request with XADD
// and reads its answer with a blocking XREAD (pipelined, one write). No
// threads hand anything over, nothing is encoded, and the connection is
// plain hiredis.
//
//   batch_serving_redis_floor            # 2000 calls, then 2000 PINGs
//   batch_serving_redis_floor --calls 10000
//   batch_serving_redis_floor --pipeline 64 --payload 200   # throughput
//
// With --pipeline K the client keeps K calls in flight: it writes K requests
// in one pipeline and reads answers until it has K (XREAD COUNT K), and the
// worker reads up to K entries at once and answers them in one pipeline with
// one XACK; it prints calls per second (the best any client of this design
// can do with K calls per round trip). --payload B: B bytes per request and
// answer (default 8).
//
// It starts its own redis-server as the bench does (distributed_processes.hpp).
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "distributed_processes.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using context_ptr = std::unique_ptr<redisContext, decltype(&redisFree)>;
using reply_ptr = std::unique_ptr<redisReply, decltype(&freeReplyObject)>;

context_ptr connect(int port) {
  context_ptr c(redisConnect("127.0.0.1", port), &redisFree);
  if (!c || c->err != 0) throw std::runtime_error("cannot connect to Redis");
  return c;
}

reply_ptr command(redisContext* c, const char* text) {
  reply_ptr r(static_cast<redisReply*>(redisCommand(c, text)), &freeReplyObject);
  if (!r) throw std::runtime_error(std::string("Redis: ") + text + " failed");
  return r;
}

reply_ptr next_reply(redisContext* c) {
  void* raw = nullptr;
  if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) {
    throw std::runtime_error("Redis: a pipelined reply is missing");
  }
  return {static_cast<redisReply*>(raw), &freeReplyObject};
}

// The id of the first entry of an XREAD / XREADGROUP reply.
std::string first_entry_id(const redisReply* r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
    throw std::runtime_error("Redis: an empty read");
  }
  const redisReply* entry = r->element[0]->element[1]->element[0];
  return std::string(entry->element[0]->str, entry->element[0]->len);
}

// The entries of an XREAD / XREADGROUP reply of one stream.
const redisReply* entries_of(const redisReply* r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
    throw std::runtime_error("Redis: an empty read");
  }
  return r->element[0]->element[1];
}

[[noreturn]] void run_worker(int port, std::size_t count, const std::string& payload) {
  try {
    const context_ptr c = connect(port);
    const std::string read_command =
        "XREADGROUP GROUP g c COUNT " + std::to_string(count) + " BLOCK 0 STREAMS s >";
    while (true) {
      const reply_ptr read = command(c.get(), read_command.c_str());
      const redisReply* entries = entries_of(read.get());
      std::vector<const char*> ack = {"XACK", "s", "g"};
      std::vector<std::size_t> lengths = {4, 1, 1};
      for (std::size_t i = 0; i < entries->elements; ++i) {
        redisAppendCommand(c.get(), "XADD r * v %b", payload.data(), payload.size());
        const redisReply* id = entries->element[i]->element[0];
        ack.push_back(id->str);
        lengths.push_back(id->len);
      }
      redisAppendCommandArgv(c.get(), static_cast<int>(ack.size()), ack.data(), lengths.data());
      for (std::size_t i = 0; i <= entries->elements; ++i) next_reply(c.get());
    }
  } catch (const std::exception&) {
    std::_Exit(0);  // the client is done and killed us, or Redis went away
  }
}

double percentile(std::vector<double> v, double p) {
  const auto at = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(at), v.end());
  return v[at];
}

double micros_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
}

// Calls per second with `pipeline` calls in flight (see the top).
double throughput(redisContext* c, std::size_t calls, std::size_t pipeline,
                  const std::string& payload) {
  std::string last = "0-0";
  const std::string count = std::to_string(pipeline);
  std::size_t done = 0;
  const auto t0 = clock_type::now();
  while (done < calls) {
    for (std::size_t i = 0; i < pipeline; ++i) {
      redisAppendCommand(c, "XADD s * v %b", payload.data(), payload.size());
    }
    for (std::size_t i = 0; i < pipeline; ++i) next_reply(c);
    std::size_t answered = 0;
    while (answered < pipeline) {
      const reply_ptr read(
          static_cast<redisReply*>(redisCommand(c, "XREAD COUNT %s BLOCK 0 STREAMS r %s",
                                                count.c_str(), last.c_str())),
          &freeReplyObject);
      if (!read) throw std::runtime_error("Redis: XREAD failed");
      const redisReply* entries = entries_of(read.get());
      answered += entries->elements;
      const redisReply* id = entries->element[entries->elements - 1]->element[0];
      last.assign(id->str, id->len);
    }
    done += pipeline;
  }
  return static_cast<double>(done) / std::chrono::duration<double>(clock_type::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t calls = 2000;
  std::size_t pipeline = 0;
  std::size_t payload_bytes = 8;
  for (int i = 1; i < argc; i += 2) {
    const std::string_view key = argv[i];
    const long value = i + 1 < argc ? std::strtol(argv[i + 1], nullptr, 10) : 0;
    if (value < 1 || (key != "--calls" && key != "--pipeline" && key != "--payload")) {
      std::fprintf(stderr,
                   "usage: batch_serving_redis_floor [--calls N] [--pipeline K] [--payload B]\n");
      return 2;
    }
    const auto n = static_cast<std::size_t>(value);
    if (key == "--calls") calls = n;
    if (key == "--pipeline") pipeline = n;
    if (key == "--payload") payload_bytes = n;
  }
  const std::string payload(payload_bytes, 'x');
  try {
    const bench::redis_process redis;
    const context_ptr c = connect(redis.port());
    command(c.get(), "XGROUP CREATE s g $ MKSTREAM");
    const pid_t worker = ::fork();
    if (worker < 0) throw std::runtime_error("fork failed");
    if (worker == 0) run_worker(redis.port(), std::max<std::size_t>(pipeline, 1), payload);
    if (pipeline > 0) {
      throughput(c.get(), std::min<std::size_t>(calls, 10 * pipeline), pipeline, payload);  // warm
      const double cpu_before = bench::redis_cpu_seconds(redis.port());
      const double per_s = throughput(c.get(), calls, pipeline, payload);
      const double redis_cpu_us =
          (bench::redis_cpu_seconds(redis.port()) - cpu_before) * 1e6 / static_cast<double>(calls);
      ::kill(worker, SIGKILL);
      ::waitpid(worker, nullptr, 0);
      std::printf(
          "floor throughput: %.0f calls/s with %zu calls per round trip, %zu-byte payloads; "
          "Redis CPU %.1f us per call\n",
          per_s, pipeline, payload_bytes, redis_cpu_us);
      return 0;
    }

    std::vector<double> call_us;
    std::vector<double> ping_us;
    std::string last = "0-0";
    const std::size_t warmup = 100;
    for (std::size_t i = 0; i < calls + warmup; ++i) {
      const auto t0 = clock_type::now();
      redisAppendCommand(c.get(), "XADD s * v %b", payload.data(), payload.size());
      redisAppendCommand(c.get(), "XREAD COUNT 1 BLOCK 0 STREAMS r %s", last.c_str());
      next_reply(c.get());
      last = first_entry_id(next_reply(c.get()).get());
      if (i >= warmup) call_us.push_back(micros_since(t0));
    }
    for (std::size_t i = 0; i < calls; ++i) {
      const auto t0 = clock_type::now();
      command(c.get(), "PING");
      ping_us.push_back(micros_since(t0));
    }
    ::kill(worker, SIGKILL);
    ::waitpid(worker, nullptr, 0);
    const double call_p50 = percentile(call_us, 0.5);
    const double ping_p50 = percentile(ping_us, 0.5);
    std::printf("floor call: p50 %.1f us, p99 %.1f us; PING p50 %.1f us; p50 / PING %.2fx\n",
                call_p50, percentile(call_us, 0.99), ping_p50, call_p50 / ping_p50);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "batch_serving_redis_floor: %s\n", e.what());
    return 1;
  }
}
