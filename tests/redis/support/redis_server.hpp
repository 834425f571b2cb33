// A private redis-server for one test: its own temp directory, a free
// loopback TCP port and a unix socket, persistence off (save "", appendonly
// no), optionally a requirepass and ACL users. The constructor returns once
// it answers PING; the destructor kills it and removes the directory.
//
//   class MyTest : public ::testing::Test {
//     void SetUp() override { require_redis_server(); }   // skip, or fail under CI
//   };
//   TEST_F(MyTest, Works) {
//     test::redis_server redis({.password = "pw"});
//     auto conn = redis_connection::connect(redis.tcp_endpoint());  // add .password
//     redis.pause();  // SIGSTOP: a hung host
//   }
//
// No orphan redis-server outlives the test process: the child is started
// with PR_SET_PDEATHSIG = SIGKILL, so it dies with the thread that started
// it (a crash, a SIGKILL, a failed assertion that aborts). Start servers from
// the test's main thread (GoogleTest's), not from a thread that exits first.
// Not thread-safe: one thread drives one server.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "batch_serving/redis_endpoint.hpp"

namespace batch_serving::test {

struct redis_acl_user {
  std::string name;
  std::string password;
};

struct redis_server_options {
  // requirepass: the default user needs this password. Empty: none.
  std::string password{};
  // ACL users with full access (`user NAME on >PASSWORD ~* &* +@all`).
  std::vector<redis_acl_user> users{};
  // More redis.conf lines, as written.
  std::vector<std::string> extra_config{};
};

class redis_server {
 public:
  // Starts redis-server and waits (up to 10 s) until it answers PING. Throws
  // std::runtime_error with the tail of its log when it cannot start.
  explicit redis_server(redis_server_options options = {});
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;
  ~redis_server();

  // The redis-server binary: $BATCH_SERVING_REDIS_SERVER, else the first
  // redis-server on PATH, else /usr/bin or /usr/sbin; nullopt when none.
  static std::optional<std::string> find_executable();

  int port() const noexcept { return port_; }
  const std::string& unix_socket() const noexcept { return unix_socket_; }
  pid_t pid() const noexcept { return pid_; }  // 0 while not running
  bool running() const noexcept { return pid_ != 0; }
  bool paused() const noexcept { return paused_; }

  // Endpoints without credentials (set .password / .user as the test needs).
  redis_endpoint tcp_endpoint() const;
  redis_endpoint unix_endpoint() const;

  // SIGTERM, wait for it to exit (SIGKILL after 5 s). No-op when not running.
  void stop();
  // SIGKILL and reap: a crash. No-op when not running.
  void kill();
  // SIGSTOP / SIGCONT: the process stays, sockets accept, nothing answers.
  void pause();
  void resume();
  // Stops (kill) if running, then starts again on the same port, socket and
  // configuration, and waits for PING.
  void restart();

  // The last lines of its log file, for failure messages.
  std::string log_tail() const;

 private:
  void write_config() const;
  bool try_start(std::string& why);  // false: the child exited (e.g. the port was taken)
  void start_with_retries(bool keep_port);
  bool answers_ping() const;
  void reap(std::chrono::milliseconds grace);

  redis_server_options options_;
  std::string executable_;
  std::string dir_;
  std::string config_path_;
  std::string log_path_;
  std::string unix_socket_;
  int port_ = 0;
  pid_t pid_ = 0;
  bool paused_ = false;
};

// Call in a fixture's SetUp(): when redis-server is not installed the test is
// skipped with the install hint, or, when the environment variable CI is set,
// fails naming the package. Returns whether the test may go on.
bool require_redis_server();

}  // namespace batch_serving::test
