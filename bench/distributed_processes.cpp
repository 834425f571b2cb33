#include "distributed_processes.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace bench {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

std::runtime_error failure(const std::string& what) {
  return std::runtime_error("distributed: " + what);
}

std::string errno_text(int number) { return std::generic_category().message(number); }

bool is_executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

// argv as the NUL-terminated arrays execv wants, built before fork (between
// fork and exec only async-signal-safe calls: the bench may have threads).
struct exec_args {
  explicit exec_args(const std::vector<std::string>& argv) : storage(argv) {
    for (std::string& a : storage) pointers.push_back(a.data());
    pointers.push_back(nullptr);
  }
  std::vector<std::string> storage;
  std::vector<char*> pointers;
};

// Forks and execs; the child's stdin, stdout and stderr become the given
// descriptors (-1: keep the bench's). The child dies with this thread.
pid_t spawn(const exec_args& args, int child_stdin, int child_stdout, int child_stderr) {
  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  if (child < 0) throw failure(std::string("fork: ") + errno_text(errno));
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    if (child_stdin >= 0) ::dup2(child_stdin, STDIN_FILENO);
    if (child_stdout >= 0) ::dup2(child_stdout, STDOUT_FILENO);
    if (child_stderr >= 0) ::dup2(child_stderr, STDERR_FILENO);
    ::close_range(3, ~0U, 0);
    ::execv(args.pointers[0], args.pointers.data());
    ::_exit(127);
  }
  return child;
}

// Waits for `pid` up to `grace`, then SIGKILLs it; the exit status, or 128 +
// the signal.
int reap(pid_t pid, std::chrono::milliseconds grace) {
  const auto deadline = clock_type::now() + grace;
  int status = 0;
  while (true) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0) return 128;  // not our child any more
    if (clock_type::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(2ms);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A loopback port nobody listens on now; redis_process retries when another
// process takes it first.
int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw failure(std::string("socket: ") + errno_text(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok) throw failure(std::string("bind 127.0.0.1:0: ") + errno_text(saved));
  return ntohs(address.sin_port);
}

using context_ptr = std::unique_ptr<redisContext, decltype(&redisFree)>;

context_ptr connect_loopback(int port) {
  const timeval timeout{.tv_sec = 1, .tv_usec = 0};
  context_ptr context(redisConnectWithTimeout("127.0.0.1", port, timeout), &redisFree);
  if (!context || context->err != 0) return context_ptr(nullptr, &redisFree);
  if (redisSetTimeout(context.get(), timeout) != REDIS_OK) return context_ptr(nullptr, &redisFree);
  return context;
}

bool ping(redisContext* context) {
  auto* reply = static_cast<redisReply*>(redisCommand(context, "PING"));
  if (reply == nullptr) return false;
  const bool pong =
      reply->type == REDIS_REPLY_STATUS && std::string_view(reply->str, reply->len) == "PONG";
  freeReplyObject(reply);
  return pong;
}

}  // namespace

std::optional<std::string> find_redis_server() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): getenv, nobody sets the environment
  if (const char* configured = std::getenv("BATCH_SERVING_REDIS_SERVER")) {
    if (is_executable(configured)) return std::string(configured);
    return std::nullopt;
  }
  // NOLINTNEXTLINE(concurrency-mt-unsafe): getenv, nobody sets the environment
  if (const char* path = std::getenv("PATH")) {
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      if (dir.empty()) continue;
      const std::string candidate = dir + "/redis-server";
      if (is_executable(candidate)) return candidate;
    }
  }
  for (const char* candidate : {"/usr/bin/redis-server", "/usr/sbin/redis-server"}) {
    if (is_executable(candidate)) return std::string(candidate);
  }
  return std::nullopt;
}

std::string self_executable() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw failure("cannot read /proc/self/exe: " + ec.message());
  return self.string();
}

child_process::child_process(const std::vector<std::string>& argv) {
  const exec_args args(argv);
  int in[2] = {-1, -1};
  int out[2] = {-1, -1};
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
    const int saved = errno;
    for (const int fd : {in[0], in[1], out[0], out[1]}) {
      if (fd >= 0) ::close(fd);
    }
    throw failure(std::string("pipe: ") + errno_text(saved));
  }
  try {
    pid_ = spawn(args, in[0], out[1], -1);
  } catch (...) {
    for (const int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
    throw;
  }
  ::close(in[0]);
  ::close(out[1]);
  stdin_fd_ = in[1];
  stdout_fd_ = out[0];
}

child_process::~child_process() {
  close_stdin();
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
  if (pid_ != 0) {
    ::kill(pid_, SIGKILL);
    reap(pid_, 0ms);
  }
}

std::optional<std::string> child_process::read_line(clock_type::time_point deadline) {
  while (true) {
    const std::size_t newline = buffered_.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffered_.substr(0, newline);
      buffered_.erase(0, newline + 1);
      return line;
    }
    if (stdout_fd_ < 0) return std::nullopt;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{.fd = stdout_fd_, .events = POLLIN, .revents = 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) return std::nullopt;
    if (ready <= 0) continue;
    char chunk[512];
    const ssize_t n = ::read(stdout_fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(stdout_fd_);
      stdout_fd_ = -1;
      continue;  // a last line without a newline is dropped: nodes end theirs
    }
    buffered_.append(chunk, static_cast<std::size_t>(n));
  }
}

void child_process::close_stdin() {
  if (stdin_fd_ < 0) return;
  ::close(stdin_fd_);
  stdin_fd_ = -1;
}

int child_process::wait(std::chrono::milliseconds grace) {
  if (pid_ == 0) return 128;
  const int status = reap(pid_, grace);
  pid_ = 0;
  return status;
}

redis_process::redis_process() {
  const std::optional<std::string> executable = find_redis_server();
  if (!executable) {
    throw failure(
        "redis-server not found ($BATCH_SERVING_REDIS_SERVER, PATH, /usr/bin, /usr/sbin); "
        "install it (Debian: apt-get install redis-server), or leave out the distributed "
        "scenario");
  }
  std::string pattern = "/tmp/batch_serving_bench-redis-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw failure("mkdtemp " + pattern + ": " + errno_text(errno));
  }
  dir_ = pattern;
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (try_start(*executable)) return;
  }
  const std::string tail = log_tail();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
  throw failure("cannot start " + *executable + "; its log:\n" + tail);
}

redis_process::~redis_process() {
  if (pid_ != 0) {
    ::kill(pid_, SIGTERM);
    reap(pid_, 5000ms);
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

bool redis_process::try_start(const std::string& executable) {
  port_ = free_loopback_port();
  const exec_args args({executable, "--port", std::to_string(port_), "--bind", "127.0.0.1",
                        "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir_,
                        "--logfile", dir_ + "/redis.log"});
  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) throw failure(std::string("open /dev/null: ") + errno_text(errno));
  try {
    pid_ = spawn(args, null_fd, null_fd, null_fd);
  } catch (...) {
    ::close(null_fd);
    throw;
  }
  ::close(null_fd);
  const auto deadline = clock_type::now() + 10s;
  while (clock_type::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: the port was taken?
      pid_ = 0;
      return false;
    }
    if (const context_ptr context = connect_loopback(port_); context && ping(context.get())) {
      return true;
    }
    std::this_thread::sleep_for(5ms);
  }
  ::kill(pid_, SIGKILL);
  reap(pid_, 0ms);
  pid_ = 0;
  throw failure("redis-server did not answer PING within 10 s; its log:\n" + log_tail());
}

std::string redis_process::log_tail() const {
  std::ifstream log(dir_ + "/redis.log");
  std::deque<std::string> lines;
  std::string line;
  while (std::getline(log, line)) {
    lines.push_back(line);
    if (lines.size() > 20) lines.pop_front();
  }
  std::string tail;
  for (const std::string& kept : lines) tail += "  | " + kept + "\n";
  return tail;
}

double ping_round_trip_us(int port, std::size_t count) {
  const context_ptr context = connect_loopback(port);
  if (!context) throw failure("cannot connect to 127.0.0.1:" + std::to_string(port));
  std::vector<double> samples;
  samples.reserve(count);
  for (std::size_t i = 0; i < std::max<std::size_t>(count, 1); ++i) {
    const auto t0 = clock_type::now();
    if (!ping(context.get())) throw failure("PING failed");
    samples.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
  }
  const auto middle = samples.begin() + static_cast<std::ptrdiff_t>(samples.size() / 2);
  std::nth_element(samples.begin(), middle, samples.end());
  return *middle;
}

double redis_cpu_seconds(int port) {
  const context_ptr context = connect_loopback(port);
  if (!context) throw failure("cannot connect to 127.0.0.1:" + std::to_string(port));
  auto* reply = static_cast<redisReply*>(redisCommand(context.get(), "INFO cpu"));
  if (reply == nullptr) throw failure("INFO cpu failed");
  const std::string text =
      reply->type == REDIS_REPLY_STRING ? std::string(reply->str, reply->len) : std::string();
  freeReplyObject(reply);
  const auto field = [&text](const std::string& name) {
    const std::size_t at = text.find(name + ":");
    if (at == std::string::npos) throw failure("INFO cpu has no " + name);
    return std::strtod(text.c_str() + at + name.size() + 1, nullptr);
  };
  return field("used_cpu_user") + field("used_cpu_sys");
}

}  // namespace bench
