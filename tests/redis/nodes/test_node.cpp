// A worker or client process for tests/redis/multi_process_test.cpp: the
// test starts several of these, kills, stops and resumes them, and reads what
// they wrote.
//
//   test_node worker --port P --serving NAME --id ID --log FILE
//                    [--scale A --offset B --delay-ms D --batch-size N
//                     --batch-timeout-ms T --heartbeat-interval-ms I --streaming 0|1
//                     --heartbeat-expiry-ms E --claim-interval-ms C --password PW]
//     Runs x -> A*x+B (sleeping D ms per batch) attached to Redis under NAME as
//     consumer ID. Appends one line "x" per item to FILE when a batch starts
//     (one write(2) per batch, so a kill -9 leaves whole lines). Prints
//     "ready PID ID" once attached; on SIGTERM stops gracefully, prints
//     "stats KEY=VALUE ..." (redis_worker_stats) and exits 0. --streaming 1:
//     a streaming serving whose hook "inputs" carries each batch's items.
//   test_node client --port P --serving NAME --out FILE --first X --count N
//                    [--threads T --window W --timeout-ms MS (0: none) --pause-ms MS
//                     --linger-ms MS --password PW --streaming 0|1 --scale A --offset B]
//     Dispatches the inputs X .. X+N-1 from T threads (input i on thread
//     i % T), each thread with up to W calls outstanding (dispatch_async with
//     a callback), pausing MS between its calls. Prints "done" once every call
//     is answered, waits --linger-ms (late duplicates arrive meanwhile), then
//     writes one line per callback run to FILE, "x ok RESULT LATENCY_MS" or
//     "x error CODE LATENCY_MS", prints "stats KEY=VALUE ..."
//     (redis_client_stats) and exits 0. --streaming 1: input x is a
//     dispatch_many_stream of the items 4x .. 4x+3, checked event by event
//     against x -> A*x+B (stream_check); RESULT is 1 when all were right.
// Either mode exits 2 with "error CODE: MESSAGE" on stderr when it cannot
// attach or connect (a wrong password), 1 on bad arguments. Both die with
// the test process (PR_SET_PDEATHSIG, set by the test between fork and exec).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "batch_serving/batch_serving.hpp"
#include "batch_serving/redis_client.hpp"
#include "batch_serving/redis_worker.hpp"

namespace bs = batch_serving;
using clock_type = std::chrono::steady_clock;

namespace {

// --name value pairs; every option of a mode has a default but the required ones.
class arguments {
 public:
  arguments(int argc, char** argv) {
    if (argc % 2 != 0) throw std::invalid_argument("every --name needs a value");
    for (int i = 2; i + 1 < argc; i += 2) {
      std::string_view name = argv[i];
      if (!name.starts_with("--"))
        throw std::invalid_argument("expected --name, got " + std::string(name));
      values_[std::string(name.substr(2))] = argv[i + 1];
    }
  }
  std::string text(const std::string& name, std::optional<std::string> fallback = {}) const {
    auto found = values_.find(name);
    if (found != values_.end()) return found->second;
    if (fallback) return *fallback;
    throw std::invalid_argument("--" + name + " is required");
  }
  std::int64_t number(const std::string& name, std::optional<std::int64_t> fallback = {}) const {
    auto found = values_.find(name);
    if (found != values_.end()) return std::stoll(found->second);
    if (fallback) return *fallback;
    throw std::invalid_argument("--" + name + " is required");
  }
  std::chrono::milliseconds millis(const std::string& name, std::int64_t fallback) const {
    return std::chrono::milliseconds(number(name, fallback));
  }

 private:
  std::map<std::string, std::string> values_;
};

bs::redis_endpoint endpoint_of(const arguments& args) {
  bs::redis_endpoint endpoint{.host = "127.0.0.1", .port = static_cast<int>(args.number("port"))};
  endpoint.password = args.text("password", "");
  return endpoint;
}

void print_line(const std::string& line) {
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

int fail_to_attach(const bs::serving_error& e) {
  std::fprintf(stderr, "error %s: %s\n", std::string(bs::to_string(e.code())).c_str(), e.what());
  return 2;
}

// Attaches `local` to Redis, serves until SIGTERM (blocked by the caller),
// then stops gracefully and prints the worker's stats.
template <class Local, class... HookPayload>
int serve(Local& local, const arguments& args, int log_fd, HookPayload... hook_payload) {
  const bs::redis_worker_options options{
      .endpoint = endpoint_of(args),
      .consumer_id = args.text("id"),
      .block_time = std::chrono::milliseconds(50),
      .heartbeat_interval = args.millis("heartbeat-interval-ms", 200),
      .heartbeat_expiry = args.millis("heartbeat-expiry-ms", 600),
      .claim_interval = args.millis("claim-interval-ms", 200),
      .shutdown_timeout = std::chrono::seconds(10),
      .reconnect = {.min_delay = std::chrono::milliseconds(20),
                    .max_delay = std::chrono::milliseconds(200)},
  };
  std::optional<bs::redis_worker<std::int64_t, std::int64_t, std::int64_t, std::int64_t>> worker;
  try {
    worker.emplace(local, args.text("serving"), options, hook_payload...);
  } catch (const bs::serving_error& e) {
    return fail_to_attach(e);
  }
  print_line("ready " + std::to_string(::getpid()) + " " + worker->consumer_id());

  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  int signal_number = 0;
  while (sigwait(&term, &signal_number) != 0) {
  }
  worker->stop();
  const bs::redis_worker_stats s = worker->stats();
  std::ostringstream stats;
  stats << "stats read=" << s.entries_read << " claimed=" << s.entries_claimed
        << " recovered=" << s.entries_recovered << " dispatched=" << s.calls_dispatched
        << " results=" << s.answered_results
        << " invalid_argument=" << s.answered_error(bs::errc::invalid_argument)
        << " timeout=" << s.answered_error(bs::errc::timeout) << " skipped=" << s.skipped_malformed
        << " acked=" << s.entries_acked << " reconnects=" << s.reconnects;
  print_line(stats.str());
  worker.reset();
  local.stop();
  ::close(log_fd);
  return 0;
}

int run_worker(const arguments& args) {
  // SIGTERM is taken by sigwait below: blocked before any thread starts, so
  // every thread inherits the mask and none is killed by it.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);

  const std::string log_path = args.text("log");
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) throw std::runtime_error("cannot open " + log_path);
  const std::int64_t scale = args.number("scale", 1);
  const std::int64_t offset = args.number("offset", 0);
  const std::chrono::milliseconds delay = args.millis("delay-ms", 0);

  auto run_batch = [=](std::span<const std::int64_t> xs) {
    std::string lines;
    for (std::int64_t x : xs) lines += std::to_string(x) + "\n";
    // One write per batch: a kill -9 cuts between batches' lines, not inside one.
    if (::write(log_fd, lines.data(), lines.size()) != static_cast<ssize_t>(lines.size())) {
      std::abort();
    }
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    std::vector<std::int64_t> out;
    out.reserve(xs.size());
    for (std::int64_t x : xs) out.push_back(scale * x + offset);
    return out;
  };
  const bs::server_options server_options{.batch_size =
                                              static_cast<std::size_t>(args.number("batch-size",
                                                                                   8)),
                                          .batch_timeout = args.millis("batch-timeout-ms", 2)};
  if (args.number("streaming", 0) != 0) {
    // The hook "inputs" carries each item itself, ahead of its batch event.
    const auto streaming_affine =
        bs::serving<std::int64_t, std::int64_t>([=](std::span<const std::int64_t> xs,
                                                    bs::execution_context& ctx) {
          ctx.emit("inputs", std::vector<std::int64_t>(xs.begin(), xs.end()));
          return run_batch(xs);
        }).streaming({.hooks = {"inputs"}});
    bs::server local(streaming_affine, server_options);
    return serve(local, args, log_fd, bs::hook_payload_type<std::int64_t>{});
  }
  bs::server local(bs::serving<std::int64_t, std::int64_t>(run_batch), server_options);
  return serve(local, args, log_fd);
}

// Every callback run, in completion order, from all threads.
struct answer_log {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> lines;  // guarded by mu
  std::size_t answered = 0;        // guarded by mu: callbacks run so far
};

// One sending thread's calls outstanding, so that it keeps at most a window.
struct call_window {
  std::mutex mu;
  std::condition_variable cv;
  std::size_t outstanding = 0;  // guarded by mu
};

std::string answer_line(std::int64_t x, const bs::result<std::int64_t>& r,
                        clock_type::time_point started) {
  const auto latency =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - started).count();
  std::string line = std::to_string(x);
  if (r.ok()) {
    line += " ok " + std::to_string(*r);
  } else {
    line += " error " + std::string(bs::to_string(r.error().code()));
  }
  return line + " " + std::to_string(latency);
}

// One streaming call of input x: the items 4x .. 4x+3, and what its events
// must be, in order: per slice a hook "inputs" with the slice's items, then a
// batch with their results (scale * item + offset), then the end.
constexpr std::int64_t stream_items = 4;
class stream_check {
 public:
  stream_check(std::int64_t x, std::int64_t scale, std::int64_t offset)
      : scale_(scale), offset_(offset) {
    for (std::int64_t i = 0; i < stream_items; ++i) items.push_back(stream_items * x + i);
  }
  std::vector<std::int64_t> items;

  // The call's answer once `ev` ends the stream: ok (1) when every event was
  // right, else an error saying what was wrong. Events come one at a time.
  std::optional<bs::result<std::int64_t>> take(const bs::event<std::int64_t>& ev) {
    switch (ev.kind()) {
      case bs::event_kind::hook: {
        const auto payload = ev.payload<std::int64_t>();
        if (ev.hook() != "inputs" || hooked_ != results_) return wrong("a hook out of turn");
        for (std::int64_t v : payload) {
          if (hooked_ >= items.size() || v != items[hooked_++]) return wrong("a wrong hook slice");
        }
        return std::nullopt;
      }
      case bs::event_kind::batch:
        for (std::int64_t v : ev.batch()) {
          if (results_ >= hooked_ || v != scale_ * items[results_++] + offset_) {
            return wrong("a wrong or unannounced result");
          }
        }
        return std::nullopt;
      case bs::event_kind::end:
        if (results_ != items.size()) return wrong("an end before every result");
        return ended(bs::result<std::int64_t>(1));
      case bs::event_kind::error: return ended(bs::result<std::int64_t>(ev.error()));
      case bs::event_kind::item: return wrong("an item event in a dispatch_many_stream");
    }
    return wrong("an unknown event");
  }

 private:
  std::optional<bs::result<std::int64_t>> wrong(const std::string& what) {
    return ended(bs::result<std::int64_t>(bs::error(bs::errc::execution_failed, what)));
  }
  // Only the first end counts; nothing may follow it.
  std::optional<bs::result<std::int64_t>> ended(bs::result<std::int64_t> r) {
    if (done_) return std::nullopt;
    done_ = true;
    return r;
  }
  std::int64_t scale_;
  std::int64_t offset_;
  std::size_t hooked_ = 0;
  std::size_t results_ = 0;
  bool done_ = false;
};

int run_client(const arguments& args) {
  const std::int64_t first = args.number("first");
  const std::int64_t count = args.number("count");
  const auto threads = static_cast<std::size_t>(args.number("threads", 4));
  const auto window = static_cast<std::size_t>(args.number("window", 4));
  const std::chrono::milliseconds timeout = args.millis("timeout-ms", 20'000);
  const std::chrono::milliseconds pause = args.millis("pause-ms", 0);
  const std::chrono::milliseconds linger = args.millis("linger-ms", 0);
  const std::string out_path = args.text("out");
  const bool streaming = args.number("streaming", 0) != 0;
  const std::int64_t scale = args.number("scale", 1);
  const std::int64_t offset = args.number("offset", 0);

  answer_log log;
  std::vector<call_window> windows(threads);
  std::optional<bs::redis_client<std::int64_t, std::int64_t>> client;
  try {
    client.emplace(bs::redis_client_options{
        .endpoint = endpoint_of(args),
        .serving = args.text("serving"),
        .reconnect = {.min_delay = std::chrono::milliseconds(20),
                      .max_delay = std::chrono::milliseconds(200)},
    });
  } catch (const bs::serving_error& e) {
    return fail_to_attach(e);
  }

  std::vector<std::thread> senders;
  senders.reserve(threads);
  for (std::size_t t = 0; t < threads; ++t) {
    senders.emplace_back([&, t] {
      call_window& mine = windows[t];
      for (std::int64_t x = first + static_cast<std::int64_t>(t); x < first + count;
           x += static_cast<std::int64_t>(threads)) {
        {
          std::unique_lock lock(mine.mu);
          mine.cv.wait(lock, [&] { return mine.outstanding < window; });
          ++mine.outstanding;
        }
        const bs::call_options options =
            timeout.count() > 0 ? bs::call_options{.timeout = timeout} : bs::call_options{};
        auto record = [&log, &mine](std::string line) {
          {
            std::lock_guard lock(log.mu);
            log.lines.push_back(std::move(line));
            ++log.answered;
          }
          log.cv.notify_all();
          {
            std::lock_guard lock(mine.mu);
            --mine.outstanding;
          }
          mine.cv.notify_all();
        };
        if (streaming) {
          auto check = std::make_shared<stream_check>(x, scale, offset);
          client->dispatch_many_stream_async<std::int64_t>(
              std::span<const std::int64_t>(check->items), options,
              [check, record, started = clock_type::now()](bs::event<std::int64_t> ev) {
                if (std::optional<bs::result<std::int64_t>> end = check->take(ev)) {
                  record(answer_line(check->items[0] / stream_items, *end, started));
                }
              });
        } else {
          client->dispatch_async(x, options,
                                 [record, x,
                                  started = clock_type::now()](const bs::result<std::int64_t>& r) {
                                   record(answer_line(x, r, started));
                                 });
        }
        if (pause.count() > 0) std::this_thread::sleep_for(pause);
      }
    });
  }
  for (std::thread& sender : senders) sender.join();
  {
    // Every call has a deadline (or, with --timeout-ms 0, none: then it must
    // be answered anyway): a call unanswered long after it is a bug the test
    // sees as a missing line, not a client that never exits.
    std::unique_lock lock(log.mu);
    const bool all = log.cv.wait_for(lock, timeout + std::chrono::seconds(30), [&] {
      return log.answered >= static_cast<std::size_t>(count);
    });
    if (!all) std::fputs("stuck: calls unanswered past their deadline\n", stderr);
  }
  print_line("done");
  std::this_thread::sleep_for(linger);
  const bs::redis_client_stats s = client->stats();
  client.reset();  // answers nothing more: every callback has run or never will

  std::ofstream out(out_path, std::ios::trunc);
  {
    std::lock_guard lock(log.mu);
    for (const std::string& line : log.lines) out << line << "\n";
  }
  out.close();
  if (!out) throw std::runtime_error("cannot write " + out_path);
  std::ostringstream stats;
  stats << "stats sent=" << s.calls_sent << " delivered=" << s.answers_delivered
        << " duplicates=" << s.duplicates_dropped << " foreign=" << s.foreign_dropped
        << " malformed=" << s.malformed_dropped << " timeouts=" << s.timeouts
        << " reconnects=" << s.reconnects << " refused=" << s.refused;
  print_line(stats.str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs("usage: test_node worker|client --name value ...\n", stderr);
    return 1;
  }
  try {
    const arguments args(argc, argv);
    const std::string_view mode = argv[1];
    if (mode == "worker") return run_worker(args);
    if (mode == "client") return run_client(args);
    std::fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "test_node: %s\n", e.what());
    return 1;
  }
}
