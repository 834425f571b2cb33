// The harness itself: lifecycle, and no redis-server outliving its test.
#include "redis/support/redis_server.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "batch_serving/detail/redis_connection.hpp"

namespace {

using namespace std::chrono_literals;
using batch_serving::errc;
using batch_serving::detail::redis_connection;
using batch_serving::test::redis_server;

constexpr const char* pid_file_variable = "BATCH_SERVING_TEST_REDIS_PID_FILE";

class RedisServerTest : public ::testing::Test {
 protected:
  void SetUp() override { (void)batch_serving::test::require_redis_server(); }
};

bool answers(const batch_serving::redis_endpoint& endpoint) {
  auto conn = redis_connection::connect(endpoint);
  return conn.ok() && conn->command({"PING"}).ok();
}

// Gone, or a zombie waiting for init to reap it: either way not running.
bool process_gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string pid_text;
  std::string name;
  char state = '?';
  stat >> pid_text >> name >> state;
  return state == 'Z' || state == 'X';
}

TEST_F(RedisServerTest, StopsKillsPausesAndRestartsOnTheSamePortAndSocket) {
  redis_server redis;
  const int port = redis.port();
  EXPECT_GT(port, 0);
  EXPECT_TRUE(answers(redis.tcp_endpoint()));
  EXPECT_TRUE(answers(redis.unix_endpoint()));

  redis.pause();
  EXPECT_TRUE(redis.paused());
  batch_serving::redis_endpoint impatient = redis.unix_endpoint();
  impatient.connect_timeout = 100ms;
  EXPECT_FALSE(answers(impatient));
  redis.resume();
  EXPECT_TRUE(answers(redis.unix_endpoint()));

  const pid_t first = redis.pid();
  redis.kill();
  EXPECT_FALSE(redis.running());
  EXPECT_TRUE(process_gone(first));
  EXPECT_FALSE(answers(redis.tcp_endpoint()));
  redis.restart();
  EXPECT_NE(redis.pid(), first);
  EXPECT_EQ(redis.port(), port);
  EXPECT_TRUE(answers(redis.tcp_endpoint()));

  redis.pause();
  redis.stop();  // a paused server stops too
  EXPECT_FALSE(redis.running());
  redis.restart();
  EXPECT_TRUE(answers(redis.unix_endpoint()));
}

TEST_F(RedisServerTest, TwoServersGetTheirOwnPortsAndSockets) {
  redis_server a;
  redis_server b;
  EXPECT_NE(a.port(), b.port());
  EXPECT_NE(a.unix_socket(), b.unix_socket());
  EXPECT_NE(a.pid(), b.pid());
}

TEST_F(RedisServerTest, TheDestructorKillsTheServerAndRemovesItsDirectory) {
  pid_t pid = 0;
  std::filesystem::path dir;
  {
    redis_server redis;
    pid = redis.pid();
    dir = std::filesystem::path(redis.unix_socket()).parent_path();
    EXPECT_TRUE(std::filesystem::exists(dir));
  }
  EXPECT_TRUE(process_gone(pid));
  EXPECT_FALSE(std::filesystem::exists(dir));
}

// Runs this very test again in a child process that starts a server, writes
// its pid down and dies by SIGKILL (no destructor runs): the server must die
// with it (PR_SET_PDEATHSIG), as after a crashed test.
TEST_F(RedisServerTest, NoRedisServerOutlivesAKilledTestProcess) {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): getenv, nobody sets the environment
  if (const char* pid_file = std::getenv(pid_file_variable)) {
    redis_server redis;
    std::ofstream(pid_file) << redis.pid() << " "
                            << std::filesystem::path(redis.unix_socket()).parent_path().string()
                            << "\n";
    ::raise(SIGKILL);
  }
  const std::string pid_file = (std::filesystem::temp_directory_path() /
                                ("batch_serving-orphan-" + std::to_string(::getpid()) + ".pid"))
                                   .string();
  std::filesystem::remove(pid_file);

  const std::string filter =
      "--gtest_filter=RedisServerTest.NoRedisServerOutlivesAKilledTestProcess";
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::vector<char*> argv = {const_cast<char*>(self.c_str()), const_cast<char*>(filter.c_str()),
                             nullptr};
  std::vector<std::string> environment_text;
  for (char** variable = environ; *variable != nullptr; ++variable) {
    environment_text.emplace_back(*variable);
  }
  environment_text.push_back(std::string(pid_file_variable) + "=" + pid_file);
  std::vector<char*> environment;
  for (std::string& variable : environment_text) environment.push_back(variable.data());
  environment.push_back(nullptr);

  pid_t child = 0;
  ASSERT_EQ(::posix_spawn(&child, self.c_str(), nullptr, nullptr, argv.data(), environment.data()),
            0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the child test did not die by SIGKILL (status " << status << ")";

  pid_t server = 0;
  std::string server_dir;
  std::ifstream(pid_file) >> server >> server_dir;
  std::filesystem::remove(pid_file);
  ASSERT_GT(server, 0) << "the child wrote no redis-server pid";
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!process_gone(server) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(process_gone(server)) << "redis-server " << server << " outlived its test process";
  if (!process_gone(server)) ::kill(server, SIGKILL);  // leave nothing behind
  if (server_dir.find("batch_serving-redis-") != std::string::npos) {
    std::filesystem::remove_all(server_dir);  // no destructor ran in the child
  }
}

}  // namespace
