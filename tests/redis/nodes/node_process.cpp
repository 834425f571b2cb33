#include "redis/nodes/node_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace batch_serving::test {
namespace {

using namespace std::chrono_literals;

std::string read_whole(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

int open_output(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw std::runtime_error("node_process: open " + path + ": " +
                             std::generic_category().message(errno));
  }
  return fd;
}

}  // namespace

std::string node_process::executable() { return BATCH_SERVING_TEST_NODE; }

node_process::node_process(const std::string& program, std::string name,
                           const std::vector<std::string>& args, const std::string& dir)
    : name_(std::move(name)),
      out_path_(dir + "/" + name_ + ".out"),
      err_path_(dir + "/" + name_ + ".err") {
  // Everything the child needs is prepared here: between fork and exec only
  // async-signal-safe calls (the test process may have threads).
  std::vector<std::vector<char>> storage;
  storage.emplace_back(program.begin(), program.end());
  for (const std::string& arg : args) storage.emplace_back(arg.begin(), arg.end());
  std::vector<char*> argv;
  for (std::vector<char>& arg : storage) {
    arg.push_back('\0');
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);
  const int out_fd = open_output(out_path_);
  const int err_fd = open_output(err_path_);
  const pid_t parent = ::getpid();

  const pid_t child = ::fork();
  if (child < 0) {
    ::close(out_fd);
    ::close(err_fd);
    throw std::runtime_error("node_process: fork: " + std::generic_category().message(errno));
  }
  if (child == 0) {
    // Dies with the thread that forked it; if that died already, go now.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::close_range(3, ~0U, 0);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out_fd);
  ::close(err_fd);
  pid_ = child;
}

node_process::~node_process() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  reap(/*block=*/true);
}

void node_process::signal(int signal_number) const {
  if (running()) ::kill(pid_, signal_number);
}

void node_process::pause() {
  if (!running() || paused_) return;
  ::kill(pid_, SIGSTOP);
  // SIGSTOP takes effect asynchronously: wait until the kernel reports it.
  int status = 0;
  if (::waitpid(pid_, &status, WUNTRACED) == pid_ && !WIFSTOPPED(status)) {
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return;
  }
  paused_ = true;
}

void node_process::resume() {
  if (!running() || !paused_) return;
  ::kill(pid_, SIGCONT);
  paused_ = false;
}

std::optional<int> node_process::terminate(std::chrono::milliseconds within) {
  if (!running()) return status_;
  ::kill(pid_, SIGTERM);
  resume();  // a stopped process acts on SIGTERM only once continued
  if (auto status = wait_exit(within)) return status;
  ::kill(pid_, SIGKILL);
  reap(/*block=*/true);
  return status_;
}

std::optional<int> node_process::wait_exit(std::chrono::milliseconds within) {
  const auto until = std::chrono::steady_clock::now() + within;
  while (!reap(/*block=*/false)) {
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
  return status_;
}

bool node_process::reap(bool block) {
  if (status_) return true;
  int status = 0;
  const pid_t done = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  if (done == pid_) {
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  } else if (done < 0 && errno == ECHILD) {
    status_ = -1;
  }
  return status_.has_value();
}

std::optional<std::string> node_process::wait_for_line(const std::string& prefix,
                                                       std::chrono::milliseconds within) {
  const auto until = std::chrono::steady_clock::now() + within;
  while (true) {
    const bool exited = reap(/*block=*/false);
    std::istringstream lines(output());
    std::string line;
    while (std::getline(lines, line)) {
      if (line.starts_with(prefix) && !lines.eof()) return line;  // a whole line
    }
    if (exited || std::chrono::steady_clock::now() >= until) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

std::string node_process::output() const { return read_whole(out_path_); }
std::string node_process::errors() const { return read_whole(err_path_); }

}  // namespace batch_serving::test
