// A live progress page for several users: the counterpart of Nx.Serving's
// LiveView demo, over HTTP and Server-Sent Events (cpp-httplib).
//
// One streaming server is shared by every browser tab. A tab's Start opens
// GET /jobs?n=N, which is one job: N items, item i computing f(i) =
// (i*i + 1) mod 1000003 after a simulated model call. The batch function
// emits a `progress` hook entry per item (its work units, and how many jobs
// that execution served) and records which jobs each execution held. The
// job's SSE response forwards its own hook and batch events only, so each tab
// sees just its progress and its results while the tabs share executions.
// A tab that is closed drops its connection: the next write fails, the job's
// calls are cancelled (queued items never run), and the others go on.
//
// Why a job is several dispatch_many calls, `--window` of them in flight:
// with hooks declared, the server cuts an explicit batch into batch_size
// chunks that each fill an execution alone (each hook event belongs to one
// execution, README "Streaming and hooks"), so one dispatch_many per job
// would run the jobs one after another. Calls of `--slice` items, fewer in
// flight than a batch holds, let concurrent jobs queue side by side.
// `--slice 0` sends each job as one dispatch_many, to compare.
//
//   ./live_progress [--port N (0: a free one)] [--host ADDR] [--compute-ms N]
//                   [--slice N] [--window N]
//
//   GET /           the page (page.hpp)
//   GET /jobs?n=N   the job's events: job, then progress and results, then done or failed
//   GET /stats      JSON: executions, items, mixed_executions, jobs, the server's counters
//   GET /metrics    Prometheus metrics (metrics.hpp)
//
// Prints "listening on http://HOST:PORT" once it accepts connections, and
// stops cleanly on SIGINT or SIGTERM.
#include <batch_serving/batch_serving.hpp>

#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "page.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t batch_size = 16;
constexpr std::size_t max_items_per_job = 100'000;
// Each open job holds one of cpp-httplib's threads for its SSE response; the
// pool keeps a few more for the page and /stats.
constexpr std::size_t max_open_jobs = 48;
constexpr std::size_t http_threads = max_open_jobs + 8;
// How long a job's response waits for events before writing a comment: a
// closed tab is noticed by a failing write, even while its job is queued.
constexpr auto heartbeat = 1s;

struct work_item {
  std::uint64_t job = 0;
  std::uint32_t index = 0;
};

struct work_result {
  std::uint64_t job = 0;  // lets the page prove it got none of another job's results
  std::uint32_t index = 0;
  std::uint64_t value = 0;
};

// One entry per input of an execution (ctx.emit requires exactly that).
struct progress_entry {
  std::uint32_t index = 0;
  std::uint32_t work_units = 0;         // the page sums these
  std::uint32_t jobs_in_execution = 0;  // > 1: the execution served other tabs too
  std::uint64_t execution = 0;
};

// The page and the browser test compute the same two functions.
std::uint64_t result_of(std::uint32_t i) { return (std::uint64_t{i} * i + 1) % 1'000'003; }
std::uint32_t work_units_of(std::uint32_t i) { return 1 + i % 7; }

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
      out += escaped;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

// --- what the executions held ------------------------------------------------

struct execution_record {
  std::uint64_t execution = 0;
  std::uint32_t jobs = 0;
};

// Written by the batch function, read by /stats.
class execution_log {
 public:
  execution_record record(std::span<const work_item> batch) {
    std::vector<std::uint64_t> jobs;
    for (const work_item& w : batch) {
      if (std::find(jobs.begin(), jobs.end(), w.job) == jobs.end()) jobs.push_back(w.job);
    }
    std::lock_guard lock(mutex_);
    ++executions_;
    items_ += batch.size();
    if (jobs.size() > 1) ++mixed_executions_;
    max_jobs_ = std::max(max_jobs_, jobs.size());
    for (const work_item& w : batch) ++items_by_job_[w.job];
    // Bounded: only the latest jobs' counts are shown.
    while (items_by_job_.size() > kept_jobs) items_by_job_.erase(items_by_job_.begin());
    const auto jobs_held = static_cast<std::uint32_t>(jobs.size());
    recent_.push_back(std::move(jobs));
    if (recent_.size() > kept_executions) recent_.pop_front();
    return {executions_, jobs_held};
  }

  std::uint64_t items_of(std::uint64_t job) const {
    std::lock_guard lock(mutex_);
    const auto it = items_by_job_.find(job);
    return it == items_by_job_.end() ? 0 : it->second;
  }

  std::uint64_t mixed_executions() const {
    std::lock_guard lock(mutex_);
    return mixed_executions_;
  }

  std::uint64_t executions() const {
    std::lock_guard lock(mutex_);
    return executions_;
  }

  // "executions": ..., without the enclosing braces.
  std::string json_fields() const {
    std::lock_guard lock(mutex_);
    std::string out;
    out += "\"executions\":" + std::to_string(executions_);
    out += ",\"items\":" + std::to_string(items_);
    out += ",\"mixed_executions\":" + std::to_string(mixed_executions_);
    out += ",\"max_jobs_in_execution\":" + std::to_string(max_jobs_);
    out += ",\"recent_executions\":[";
    for (std::size_t e = 0; e < recent_.size(); ++e) {
      out += e == 0 ? "[" : ",[";
      for (std::size_t j = 0; j < recent_[e].size(); ++j) {
        if (j != 0) out += ',';
        out += std::to_string(recent_[e][j]);
      }
      out += ']';
    }
    out += ']';
    return out;
  }

 private:
  static constexpr std::size_t kept_jobs = 64;
  static constexpr std::size_t kept_executions = 16;

  mutable std::mutex mutex_;
  std::uint64_t executions_ = 0;
  std::uint64_t items_ = 0;
  std::uint64_t mixed_executions_ = 0;
  std::size_t max_jobs_ = 0;
  std::map<std::uint64_t, std::uint64_t> items_by_job_;
  std::deque<std::vector<std::uint64_t>> recent_;  // the job ids of the latest executions
};

bs::serving<work_item, work_result> make_serving(execution_log& log,
                                                 std::chrono::milliseconds compute) {
  return bs::serving<work_item, work_result>([&log, compute](std::span<const work_item> batch,
                                                             bs::execution_context& ctx) {
        // Stands in for a model call: without it a job is over before a bar is visible.
    std::this_thread::sleep_for(compute);
    const execution_record held = log.record(batch);
    std::vector<work_result> results;
    std::vector<progress_entry> progress;
    results.reserve(batch.size());
    progress.reserve(batch.size());
    for (const work_item& w : batch) {
      results.push_back({w.job, w.index, result_of(w.index)});
      progress.push_back({w.index, work_units_of(w.index), held.jobs, held.execution});
    }
    ctx.emit("progress", std::move(progress));
    return results;
  });
}

using progress_server = bs::streaming_server<work_item, work_result>;

// --- one tab's job -------------------------------------------------------------

enum class job_state { running, finished, failed, abandoned };

const char* to_string(job_state s) {
  switch (s) {
    case job_state::running: return "running";
    case job_state::finished: return "finished";
    case job_state::failed: return "failed";
    case job_state::abandoned: return "abandoned";
  }
  return "?";
}

struct slicing {
  std::size_t slice = 4;   // items per dispatch_many; 0: the whole job in one
  std::size_t window = 3;  // dispatch_many calls in flight per job
};

// step() runs on the job's SSE connection thread only (cpp-httplib calls the
// content provider there, one call at a time); deliver() on server threads;
// abandon(), state() and results_sent() from anywhere.
class job : public std::enable_shared_from_this<job> {
 public:
  job(std::uint64_t id, std::size_t n, slicing how, progress_server& srv)
      : id_(id), how_(how), srv_(srv) {
    items_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) items_.push_back({id, static_cast<std::uint32_t>(i)});
  }

  std::uint64_t id() const { return id_; }
  std::size_t size() const { return items_.size(); }
  job_state state() const { return state_.load(); }
  std::uint64_t results_sent() const { return results_sent_.load(); }

  // One turn of the SSE response: starts the job on the first, keeps its
  // calls in flight, writes what arrived. False once the tab is gone.
  bool step(httplib::DataSink& sink) {
    std::string out;
    if (!started_) {
      started_ = true;
      // `retry`: should the connection drop, the page closes it; a browser
      // that reconnected anyway would start a second job.
      out += "retry: 600000\n";
      out += frame("job", "{\"id\":" + std::to_string(id_) +
                              ",\"n\":" + std::to_string(items_.size()) + "}");
      submit();
      return sink.write(out.data(), out.size());  // at once: the page shows its job id
    }
    for (bs::event<work_result>& ev : wait_for_events()) {
      if (ended_) break;
      forward(ev, out);
    }
    if (!ended_) submit();
    if (!ended_ && next_item_ == items_.size() && calls_in_flight_ == 0) {
      ended_ = true;
      job_state running = job_state::running;
      state_.compare_exchange_strong(running, job_state::finished);
      out += frame("done", "{\"results\":" + std::to_string(results_sent_.load()) + "}");
    }
    if (out.empty()) out = ": waiting for an execution\n\n";
    if (!sink.write(out.data(), out.size())) return false;
    if (ended_) sink.done();
    return true;
  }

  // The tab went away (or the service stops): the job's queued items leave
  // the queue, and its running ones' results are dropped.
  void abandon() {
    job_state running = job_state::running;
    state_.compare_exchange_strong(running, job_state::abandoned);
    stop_.request_stop();
  }

 private:
  static std::string frame(std::string_view event, const std::string& data) {
    std::string out;
    out.append("event: ").append(event).append("\ndata: ").append(data).append("\n\n");
    return out;
  }

  void deliver(bs::event<work_result> ev) {
    {
      std::lock_guard lock(mutex_);
      arrived_.push_back(std::move(ev));
    }
    arrived_cv_.notify_one();
  }

  std::deque<bs::event<work_result>> wait_for_events() {
    std::unique_lock lock(mutex_);
    arrived_cv_.wait_for(lock, heartbeat, [&] { return !arrived_.empty(); });
    return std::exchange(arrived_, {});
  }

  // Not under mutex_: a call refused at once delivers its error event in
  // this thread.
  void submit() {
    while (calls_in_flight_ < how_.window && next_item_ < items_.size()) {
      const std::size_t left = items_.size() - next_item_;
      const std::size_t length = how_.slice == 0 ? left : std::min(how_.slice, left);
      const std::span<const work_item> part(items_.data() + next_item_, length);
      next_item_ += length;
      ++calls_in_flight_;
      srv_.dispatch_many_async(part, {.stop_token = stop_.get_token()},
                               [self = shared_from_this()](bs::event<work_result> ev) {
                                 self->deliver(std::move(ev));
                               });
    }
  }

  void forward(bs::event<work_result>& ev, std::string& out) {
    switch (ev.kind()) {
      case bs::event_kind::hook: {
        if (ev.hook() != "progress") break;
        std::string data = "{\"entries\":[";
        bool first = true;
        for (const progress_entry& p : ev.payload<progress_entry>()) {
          data += first ? "[" : ",[";
          first = false;
          data += std::to_string(p.index) + ',' + std::to_string(p.work_units) + ',' +
                  std::to_string(p.jobs_in_execution) + ',' + std::to_string(p.execution) + ']';
        }
        out += frame("progress", data + "]}");
        break;
      }
      case bs::event_kind::batch: {
        std::string data = "{\"results\":[";
        bool first = true;
        for (const work_result& r : ev.batch()) {
          data += first ? "[" : ",[";
          first = false;
          data += std::to_string(r.job) + ',' + std::to_string(r.index) + ',' +
                  std::to_string(r.value) + ']';
        }
        results_sent_ += ev.batch().size();
        out += frame("results", data + "]}");
        break;
      }
      case bs::event_kind::end: --calls_in_flight_; break;
      case bs::event_kind::error: {
        ended_ = true;
        job_state running = job_state::running;
        state_.compare_exchange_strong(running, job_state::failed);
        stop_.request_stop();  // the job's other calls are of no use now
        out += frame("failed", "{\"error\":" + json_string(ev.error().to_string()) + "}");
        break;
      }
      default: break;
    }
  }

  const std::uint64_t id_;
  const slicing how_;
  progress_server& srv_;
  std::vector<work_item> items_;
  std::stop_source stop_;
  std::atomic<job_state> state_{job_state::running};
  std::atomic<std::uint64_t> results_sent_{0};

  std::mutex mutex_;
  std::condition_variable arrived_cv_;
  std::deque<bs::event<work_result>> arrived_;  // guarded by mutex_

  // The SSE connection thread's own.
  bool started_ = false;
  bool ended_ = false;
  std::size_t next_item_ = 0;
  std::size_t calls_in_flight_ = 0;
};

// --- every tab's jobs ------------------------------------------------------------

class job_board {
 public:
  // nullptr when max_open_jobs are open.
  std::shared_ptr<job> open(std::size_t n, slicing how, progress_server& srv) {
    std::lock_guard lock(mutex_);
    if (open_.size() >= max_open_jobs) return nullptr;
    auto j = std::make_shared<job>(next_id_++, n, how, srv);
    open_.emplace(j->id(), j);
    ++started_;
    return j;
  }

  // The job's response is over: `complete` when its last frame was written.
  void close(const std::shared_ptr<job>& j, bool complete) {
    if (!complete || j->state() == job_state::running) j->abandon();
    std::lock_guard lock(mutex_);
    if (open_.erase(j->id()) == 0) return;  // closed already
    const job_state outcome = j->state();
    if (outcome == job_state::finished) ++finished_;
    if (outcome == job_state::failed) ++failed_;
    if (outcome == job_state::abandoned) ++abandoned_;
    closed_.push_back({j->id(), j->size(), outcome, j->results_sent()});
    if (closed_.size() > kept_jobs) closed_.pop_front();
  }

  // On shutdown: every open job's calls end now, so its response ends within
  // a heartbeat.
  void abandon_all() {
    std::vector<std::shared_ptr<job>> open;
    {
      std::lock_guard lock(mutex_);
      for (auto& [id, j] : open_) open.push_back(j);
    }
    for (auto& j : open) j->abandon();  // outside the lock: a stop request runs callbacks
  }

  std::string stats_json(const execution_log& log, const bs::server_stats& server) const {
    std::string out = "{" + log.json_fields();
    std::lock_guard lock(mutex_);
    out += ",\"jobs\":{\"started\":" + std::to_string(started_) +
           ",\"open\":" + std::to_string(open_.size()) +
           ",\"finished\":" + std::to_string(finished_) + ",\"failed\":" + std::to_string(failed_) +
           ",\"abandoned\":" + std::to_string(abandoned_) + "}";
    out += ",\"recent_jobs\":[";
    bool first = true;
    const auto add = [&](std::uint64_t id, std::size_t n, job_state s, std::uint64_t sent) {
      out += first ? "{" : ",{";
      first = false;
      out += "\"id\":" + std::to_string(id) + ",\"n\":" + std::to_string(n) + ",\"state\":\"" +
             to_string(s) + "\",\"results_sent\":" + std::to_string(sent) +
             ",\"items_executed\":" + std::to_string(log.items_of(id)) + "}";
    };
    for (const closed_job& c : closed_) add(c.id, c.n, c.state, c.results_sent);
    for (const auto& [id, j] : open_) add(id, j->size(), j->state(), j->results_sent());
    out += "]";
    char mean[32];
    std::snprintf(mean, sizeof mean, "%.2f", server.mean_batch());
    out += ",\"server\":{\"calls_accepted\":" + std::to_string(server.calls_accepted) +
           ",\"items_accepted\":" + std::to_string(server.items_accepted) +
           ",\"executions\":" + std::to_string(server.executions) +
           ",\"items_executed\":" + std::to_string(server.items_executed) +
           ",\"calls_cancelled\":" + std::to_string(server.calls_cancelled) +
           ",\"calls_failed\":" + std::to_string(server.calls_failed) +
           ",\"calls_shut_down\":" + std::to_string(server.calls_shut_down) +
           ",\"hook_events_dropped\":" + std::to_string(server.hook_events_dropped) +
           ",\"mean_batch\":" + mean + "}}";
    return out;
  }

  std::uint64_t started() const {
    std::lock_guard lock(mutex_);
    return started_;
  }

 private:
  static constexpr std::size_t kept_jobs = 32;

  struct closed_job {
    std::uint64_t id;
    std::size_t n;
    job_state state;
    std::uint64_t results_sent;
  };

  mutable std::mutex mutex_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, std::shared_ptr<job>> open_;
  std::deque<closed_job> closed_;
  std::uint64_t started_ = 0;
  std::uint64_t finished_ = 0;
  std::uint64_t failed_ = 0;
  std::uint64_t abandoned_ = 0;
};

// --- the service ---------------------------------------------------------------

struct options {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::chrono::milliseconds compute = 30ms;
  slicing how;
};

bool parse_count(std::string_view text, long long max, long long& out) {
  long long v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || ptr != end || v < 0 || v > max) return false;
  out = v;
  return true;
}

void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--port N (0: a free one; default 8080)] [--host ADDR (default "
               "127.0.0.1)]\n"
               "          [--compute-ms N (0..1000, default 30)] [--slice N (items per call, "
               "0: one call per job; default 4)]\n"
               "          [--window N (calls in flight per job, 1..64, default 3)]\n",
               argv0);
}

// Returns false (after printing usage) on anything it does not understand.
bool parse_options(int argc, char** argv, options& opts) {
  for (int i = 1; i < argc; i += 2) {  // every option takes a value
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(argv[0]);
      std::exit(0);  // NOLINT(concurrency-mt-unsafe): option parsing, before any thread starts
    }
    const bool has_value = i + 1 < argc;
    const std::string_view value = has_value ? argv[i + 1] : "";
    long long v = 0;
    if (arg == "--port" && has_value && parse_count(value, 65535, v)) {
      opts.port = static_cast<int>(v);
    } else if (arg == "--host" && has_value && !value.empty()) {
      opts.host = value;
    } else if (arg == "--compute-ms" && has_value && parse_count(value, 1000, v)) {
      opts.compute = std::chrono::milliseconds(v);
    } else if (arg == "--slice" && has_value && parse_count(value, max_items_per_job, v)) {
      opts.how.slice = static_cast<std::size_t>(v);
    } else if (arg == "--window" && has_value && parse_count(value, 64, v) && v > 0) {
      opts.how.window = static_cast<std::size_t>(v);
    } else {
      std::fprintf(stderr, "bad argument: %s\n", argv[i]);
      usage(argv[0]);
      return false;
    }
  }
  return true;
}

void add_routes(httplib::Server& http, progress_server& srv, job_board& board,
                const execution_log& log, slicing how) {
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(page_html.data(), page_html.size(), "text/html; charset=utf-8");
  });
  http.Get("/favicon.ico",
           [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  // Prometheus scrapes this (metrics.hpp): the server reports to the global registry.
  http.Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(bs::metrics_registry::global().render(),
                    std::string(bs::metrics_registry::content_type));
  });
  http.Get("/stats", [&](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_content(board.stats_json(log, srv.stats()), "application/json");
  });
  http.Get("/jobs", [&, how](const httplib::Request& req, httplib::Response& res) {
    long long n = 0;
    if (!parse_count(req.get_param_value("n"), max_items_per_job, n) || n == 0) {
      res.status = 400;
      res.set_content("n must be 1.." + std::to_string(max_items_per_job) + "\n", "text/plain");
      return;
    }
    std::shared_ptr<job> j = board.open(static_cast<std::size_t>(n), how, srv);
    if (j == nullptr) {
      res.status = 503;
      res.set_content("too many open jobs; try again later\n", "text/plain");
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [j](std::size_t, httplib::DataSink& sink) { return j->step(sink); },
        [&board, j](bool complete) { board.close(j, complete); });
  });
}

int run(const options& opts) {
  // SIGINT and SIGTERM are taken by sigwait below, so no thread (the server's,
  // cpp-httplib's) may take them: block them before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A write to a tab that went away must fail, not kill the process.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, nullptr);

  execution_log log;
  job_board board;
  bs::server srv(make_serving(log, opts.compute).streaming({.hooks = {"progress"}}),
                 {.name = "live_progress",
                  .batch_size = batch_size,
                  .batch_timeout = 5ms,
                  .metrics = &bs::metrics_registry::global()});

  httplib::Server http;
  http.new_task_queue = [] { return new httplib::ThreadPool(http_threads); };
  // An idle keep-alive connection holds a thread until this passes; short,
  // so that shutdown does not wait for it.
  http.set_keep_alive_timeout(1);
  add_routes(http, srv, board, log, opts.how);

  int port = opts.port;
  if (port == 0) {
    port = http.bind_to_any_port(opts.host);
  } else if (!http.bind_to_port(opts.host, port)) {
    port = -1;
  }
  if (port <= 0) {
    std::fprintf(stderr, "error: cannot listen on %s:%d\n", opts.host.c_str(), opts.port);
    return 1;
  }

  std::atomic<bool> stopping{false};
  std::atomic<bool> listen_failed{false};
  std::atomic<bool> listener_done{false};
  std::thread listener([&] {
    if (!http.listen_after_bind()) listen_failed = true;
    listener_done = true;
    // Ended without being asked: wake the sigwait below.
    if (!stopping) ::kill(::getpid(), SIGTERM);
  });
  // cpp-httplib's stop() does nothing before listen_after_bind() has begun,
  // and a signal may come as soon as the line below is out: wait for it.
  while (!http.is_running() && !listener_done) std::this_thread::sleep_for(1ms);
  std::printf("listening on http://%s:%d\n", opts.host.c_str(), port);
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  stopping = true;
  http.stop();          // no new connections; open responses end after their current turn
  board.abandon_all();  // which is at once: their jobs' calls are cancelled
  listener.join();
  srv.stop();

  const bs::server_stats stats = srv.stats();
  std::printf("stopped (signal %d): %llu jobs, %llu executions (%llu mixed), mean batch %.1f\n",
              signal_number, static_cast<unsigned long long>(board.started()),
              static_cast<unsigned long long>(log.executions()),
              static_cast<unsigned long long>(log.mixed_executions()), stats.mean_batch());
  std::fflush(stdout);
  if (listen_failed) {
    std::fprintf(stderr, "error: the HTTP server stopped on its own\n");
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options opts;
  if (!parse_options(argc, argv, opts)) return 2;
  try {
    return run(opts);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
