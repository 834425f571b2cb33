// One test_node process (tests/redis/nodes/test_node.cpp) started by a test:
// its stdout and stderr go to files the test reads while it runs.
//
//   test::node_process worker(test::node_process::executable(), "w1",
//                             {"worker", "--port", "6379", ...}, dir);
//   worker.wait_for_line("ready", 20s);
//   worker.signal(SIGKILL);           // or pause() / resume() / terminate()
//
// The child gets PR_SET_PDEATHSIG = SIGKILL, so it dies with the thread that
// started it (start it from the test's main thread); the destructor kills
// and reaps it when it still runs. Not thread-safe: one thread drives it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace batch_serving::test {

class node_process {
 public:
  // The test_node binary the build put next to the test (a compile definition).
  static std::string executable();

  // Starts `program args...` with stdout in DIR/NAME.out and stderr in
  // DIR/NAME.err. Throws std::runtime_error when it cannot fork.
  node_process(const std::string& program, std::string name, const std::vector<std::string>& args,
               const std::string& dir);
  node_process(const node_process&) = delete;
  node_process& operator=(const node_process&) = delete;
  ~node_process();

  const std::string& name() const noexcept { return name_; }
  pid_t pid() const noexcept { return pid_; }
  bool running() const noexcept { return !status_.has_value(); }

  // Sends `signal_number` (SIGKILL: a crash). No-op once it exited.
  void signal(int signal_number) const;
  // SIGSTOP, returning once the kernel reports it stopped; SIGCONT.
  void pause();
  void resume();
  // SIGTERM (and SIGCONT when paused), then waits up to `within` for it to
  // exit; SIGKILL after that. Returns the exit status (see wait_exit).
  std::optional<int> terminate(std::chrono::milliseconds within);
  // Waits up to `within` for it to exit; its exit code, 128 + the signal
  // when a signal ended it, nullopt while it still runs.
  std::optional<int> wait_exit(std::chrono::milliseconds within);

  // The first line of its stdout starting with `prefix`, waiting up to
  // `within` for it (nullopt: none, or it exited without one).
  std::optional<std::string> wait_for_line(const std::string& prefix,
                                           std::chrono::milliseconds within);
  std::string output() const;  // everything on its stdout so far
  std::string errors() const;  // everything on its stderr so far

 private:
  bool reap(bool block);  // true once it has exited (status_ set)

  std::string name_;
  std::string out_path_;
  std::string err_path_;
  pid_t pid_ = 0;
  bool paused_ = false;
  std::optional<int> status_;
};

}  // namespace batch_serving::test
