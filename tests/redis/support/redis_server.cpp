#include "redis/support/redis_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

namespace batch_serving::test {
namespace {

using namespace std::chrono_literals;

constexpr auto ready_timeout = 10s;
constexpr int start_attempts = 5;

std::runtime_error failure(const std::string& what) {
  return std::runtime_error("redis_server: " + what);
}

// std::strerror is not thread-safe; the error category's message is.
std::string errno_text(int number) { return std::generic_category().message(number); }

bool is_executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

// A loopback port nobody listens on right now. Another process may take it
// before redis-server binds it: start_with_retries() then picks another.
int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw failure(std::string("socket: ") + errno_text(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok) throw failure(std::string("bind 127.0.0.1:0: ") + errno_text(saved));
  return ntohs(address.sin_port);
}

std::string make_temp_dir() {
  // Short: the unix socket path inside must fit sun_path (108 bytes).
  std::string base = "/tmp";
  const char* tmpdir = std::getenv("TMPDIR");  // NOLINT(concurrency-mt-unsafe): read-only
  if (tmpdir != nullptr && *tmpdir != '\0' && std::strlen(tmpdir) < 60) base = tmpdir;
  std::string pattern = base + "/batch_serving-redis-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    throw failure("mkdtemp " + pattern + ": " + errno_text(errno));
  }
  return buffer.data();
}

}  // namespace

std::optional<std::string> redis_server::find_executable() {
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

redis_server::redis_server(redis_server_options options) : options_(std::move(options)) {
  std::optional<std::string> executable = find_executable();
  if (!executable) {
    throw failure(
        "redis-server not found (apt-get install redis-server, or set "
        "BATCH_SERVING_REDIS_SERVER)");
  }
  executable_ = *executable;
  dir_ = make_temp_dir();
  config_path_ = dir_ + "/redis.conf";
  log_path_ = dir_ + "/redis.log";
  unix_socket_ = dir_ + "/redis.sock";
  try {
    start_with_retries(/*keep_port=*/false);
  } catch (...) {
    kill();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
    throw;
  }
}

redis_server::~redis_server() {
  kill();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

redis_endpoint redis_server::tcp_endpoint() const {
  return redis_endpoint{.host = "127.0.0.1", .port = port_};
}

redis_endpoint redis_server::unix_endpoint() const {
  return redis_endpoint{.unix_socket = unix_socket_};
}

void redis_server::write_config() const {
  std::ofstream config(config_path_, std::ios::trunc);
  config << "port " << port_ << "\n"
         << "bind 127.0.0.1\n"
         << "unixsocket " << unix_socket_ << "\n"
         << "unixsocketperm 700\n"
         << "dir " << dir_ << "\n"
         << "logfile " << log_path_ << "\n"
         << "daemonize no\n"
         << "save \"\"\n"
         << "appendonly no\n"
         << "databases 16\n";
  if (!options_.password.empty()) config << "requirepass " << options_.password << "\n";
  for (const redis_acl_user& user : options_.users) {
    config << "user " << user.name << " on >" << user.password << " ~* &* +@all\n";
  }
  for (const std::string& line : options_.extra_config) config << line << "\n";
  if (!config) throw failure("cannot write " + config_path_);
}

void redis_server::start_with_retries(bool keep_port) {
  std::string why;
  for (int attempt = 0; attempt < start_attempts; ++attempt) {
    if (!keep_port || port_ == 0) port_ = free_loopback_port();
    write_config();
    if (try_start(why)) return;
    if (keep_port) break;  // restart(): the port is the point, do not move it
  }
  throw failure("cannot start " + executable_ + ": " + why + "\nlog:\n" + log_tail());
}

bool redis_server::try_start(std::string& why) {
  // Everything the child needs is prepared here: between fork and exec only
  // async-signal-safe calls (the test process has threads).
  const std::string executable = executable_;
  std::vector<char> argv0(executable.begin(), executable.end());
  argv0.push_back('\0');
  std::vector<char> argv1(config_path_.begin(), config_path_.end());
  argv1.push_back('\0');
  std::vector<char*> argv = {argv0.data(), argv1.data(), nullptr};
  const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) throw failure("open " + log_path_ + ": " + errno_text(errno));
  const pid_t parent = ::getpid();

  const pid_t child = ::fork();
  if (child < 0) {
    ::close(log_fd);
    throw failure(std::string("fork: ") + errno_text(errno));
  }
  if (child == 0) {
    // Dies with the thread that forked it; if that died already, go now.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    // Leave the test's sockets behind (a held client socket would keep a
    // connection to another server open after that server's death).
    ::close_range(3, ~0U, 0);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  pid_ = child;
  paused_ = false;

  const auto deadline = std::chrono::steady_clock::now() + ready_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      pid_ = 0;
      why = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                              : "killed by signal " + std::to_string(WTERMSIG(status));
      return false;
    }
    if (answers_ping()) return true;
    std::this_thread::sleep_for(5ms);
  }
  kill();
  throw failure("no PING answer within 10 s\nlog:\n" + log_tail());
}

bool redis_server::answers_ping() const {
  const timeval timeout{.tv_sec = 1, .tv_usec = 0};
  std::unique_ptr<redisContext, decltype(&redisFree)> context(
      redisConnectUnixWithTimeout(unix_socket_.c_str(), timeout), &redisFree);
  if (!context || context->err != 0) return false;
  if (redisSetTimeout(context.get(), timeout) != REDIS_OK) return false;
  if (!options_.password.empty()) {
    const char* auth_argv[] = {"AUTH", options_.password.c_str()};
    const size_t auth_lengths[] = {4, options_.password.size()};
    void* auth = redisCommandArgv(context.get(), 2, auth_argv, auth_lengths);
    if (auth == nullptr) return false;
    freeReplyObject(auth);
  }
  const char* ping_argv[] = {"PING"};
  const size_t ping_lengths[] = {4};
  auto* reply =
      static_cast<redisReply*>(redisCommandArgv(context.get(), 1, ping_argv, ping_lengths));
  if (reply == nullptr) return false;
  const bool pong =
      reply->type == REDIS_REPLY_STATUS && std::string(reply->str, reply->len) == "PONG";
  freeReplyObject(reply);
  return pong;
}

void redis_server::reap(std::chrono::milliseconds grace) {
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (true) {
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_ || (done < 0 && errno == ECHILD)) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(2ms);
  }
  pid_ = 0;
  paused_ = false;
}

void redis_server::stop() {
  if (pid_ == 0) return;
  ::kill(pid_, SIGTERM);
  if (paused_) ::kill(pid_, SIGCONT);  // a stopped process acts on SIGTERM only once continued
  reap(5000ms);
}

void redis_server::kill() {
  if (pid_ == 0) return;
  ::kill(pid_, SIGKILL);
  reap(0ms);
}

void redis_server::pause() {
  if (pid_ == 0 || paused_) return;
  ::kill(pid_, SIGSTOP);
  // SIGSTOP takes effect asynchronously: wait until the kernel reports it.
  int status = 0;
  ::waitpid(pid_, &status, WUNTRACED);
  paused_ = true;
}

void redis_server::resume() {
  if (pid_ == 0 || !paused_) return;
  ::kill(pid_, SIGCONT);
  paused_ = false;
}

void redis_server::restart() {
  kill();
  start_with_retries(/*keep_port=*/true);
}

std::string redis_server::log_tail() const {
  std::ifstream log(log_path_);
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

bool require_redis_server() {
  if (redis_server::find_executable()) return true;
  // GTEST_SKIP and FAIL return from the function they are in: a void lambda.
  // NOLINTNEXTLINE(concurrency-mt-unsafe): getenv, nobody sets the environment
  if (std::getenv("CI") != nullptr) {
    [] {
      FAIL() << "redis-server is not installed, and CI is set: the Redis tests must run. "
                "Install the Debian package: apt-get install redis-server "
                "(scripts/install-deps.sh does)";
    }();
  } else {
    [] {
      GTEST_SKIP() << "redis-server is not installed: apt-get install redis-server "
                      "(or set BATCH_SERVING_REDIS_SERVER) to run the Redis tests";
    }();
  }
  return false;
}

}  // namespace batch_serving::test
