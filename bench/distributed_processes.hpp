// The processes of the distributed scenario: a private redis-server on a
// loopback port, and child processes of the bench itself (workers, clients)
// that the scenario talks to through their stdin and stdout.
//
//   bench::redis_process redis;                         // throws when it cannot start
//   bench::child_process worker({self_executable(), "--node", "worker", ...});
//   auto line = worker.read_line(deadline);             // "ready"
//   worker.close_stdin();                               // asks it to stop
//   worker.wait(std::chrono::seconds(10));              // SIGKILL after that
//
// Every child dies with the bench (PR_SET_PDEATHSIG), so a crashed or killed
// bench leaves no redis-server or worker behind. Start them from the main
// thread. Not thread-safe: one thread drives them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace bench {

// The redis-server binary: $BATCH_SERVING_REDIS_SERVER if set (as the
// tests do), else the first on PATH, else /usr/bin or /usr/sbin; nullopt
// when there is none.
std::optional<std::string> find_redis_server();

// The path of the running bench executable (/proc/self/exe).
std::string self_executable();

class child_process {
 public:
  // Starts argv[0] with argv; its stdin and stdout are pipes to this
  // process, its stderr is the bench's. Throws std::runtime_error.
  explicit child_process(const std::vector<std::string>& argv);
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  // SIGKILL and reap if it still runs.
  ~child_process();

  // The next line of its stdout without the newline; nullopt at end of file
  // or when the deadline passes first.
  std::optional<std::string> read_line(std::chrono::steady_clock::time_point deadline);
  // End of file on its stdin: a node's signal to finish.
  void close_stdin();
  // Waits for it to exit, SIGKILL after `grace`; the exit status, or 128 +
  // the signal that ended it.
  int wait(std::chrono::milliseconds grace);

 private:
  pid_t pid_ = 0;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string buffered_;
};

// A redis-server on 127.0.0.1 and a free port, persistence off (--save ""
// --appendonly no), in a temporary directory removed at the end.
class redis_process {
 public:
  // Starts it and waits (up to 10 s) until it answers PING. Throws
  // std::runtime_error (with the install hint when there is no redis-server).
  redis_process();
  redis_process(const redis_process&) = delete;
  redis_process& operator=(const redis_process&) = delete;
  ~redis_process();

  int port() const noexcept { return port_; }

 private:
  bool try_start(const std::string& executable);
  std::string log_tail() const;

  std::string dir_;
  int port_ = 0;
  pid_t pid_ = 0;
};

// The median of `count` sequential PING round trips on one hiredis
// connection to 127.0.0.1:port, in microseconds. Throws std::runtime_error.
double ping_round_trip_us(int port, std::size_t count);

// The CPU time redis-server on 127.0.0.1:port has used so far (INFO cpu:
// used_cpu_user + used_cpu_sys), in seconds. Throws std::runtime_error.
double redis_cpu_seconds(int port);

}  // namespace bench
