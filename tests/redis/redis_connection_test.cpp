// redis_connection against real redis-server processes (tests/redis/support).
#include "batch_serving/detail/redis_connection.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "batch_serving/error.hpp"
#include "batch_serving/redis_endpoint.hpp"
#include "redis/support/redis_server.hpp"

namespace {

using namespace std::chrono_literals;
using batch_serving::errc;
using batch_serving::redis_endpoint;
using batch_serving::detail::redis_connection;
using batch_serving::detail::redis_reply;
using batch_serving::detail::redis_reply_kind;
using batch_serving::test::redis_server;
using clock_type = std::chrono::steady_clock;

constexpr std::string_view secret = "Sup3r-S3cret-pw";

class RedisConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!batch_serving::test::require_redis_server()) return;
    redis_.emplace();
  }

  redis_server& redis() { return *redis_; }

  static redis_connection connected(const redis_endpoint& endpoint) {
    return redis_connection::connect(endpoint).value();
  }

  std::optional<redis_server> redis_;
};

std::chrono::milliseconds since(clock_type::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start);
}

// A loopback socket bound but not listening: connecting to its port is
// refused, and no other process can take the port while it is held.
class refusing_port {
 public:
  refusing_port() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length), 0);
    port_ = ntohs(address.sin_port);
  }
  refusing_port(const refusing_port&) = delete;
  refusing_port& operator=(const refusing_port&) = delete;
  ~refusing_port() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

// A listener whose accept queue is full: the kernel drops further SYNs, so a
// connect neither succeeds nor fails until the client gives up.
class silent_listener {
 public:
  silent_listener() : listener_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(::listen(listener_, 0), 0);
    EXPECT_EQ(::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length), 0);
    port_ = ntohs(address.sin_port);
    for (int& filler : fillers_) {
      filler = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      (void)::connect(filler, reinterpret_cast<sockaddr*>(&address), sizeof address);
    }
  }
  silent_listener(const silent_listener&) = delete;
  silent_listener& operator=(const silent_listener&) = delete;
  ~silent_listener() {
    for (int filler : fillers_) ::close(filler);
    ::close(listener_);
  }
  int port() const { return port_; }

 private:
  int listener_;
  int fillers_[2] = {-1, -1};
  int port_ = 0;
};

TEST_F(RedisConnectionTest, ConnectsOverTcpAndAnswersPing) {
  redis_connection conn = connected(redis().tcp_endpoint());
  redis_reply pong = conn.command({"PING"}).value();
  EXPECT_EQ(pong.kind(), redis_reply_kind::status);
  EXPECT_EQ(pong.text(), "PONG");
  EXPECT_FALSE(conn.broken());
  EXPECT_EQ(conn.description(), redis().tcp_endpoint().to_string());
}

TEST_F(RedisConnectionTest, ConnectsOverTheUnixSocket) {
  redis_connection conn = connected(redis().unix_endpoint());
  EXPECT_EQ(conn.command({"PING"}).value().text(), "PONG");
  EXPECT_NE(conn.description().find(redis().unix_socket()), std::string::npos);
}

TEST_F(RedisConnectionTest, KeysAndValuesAreBinarySafe) {
  redis_connection conn = connected(redis().unix_endpoint());
  const std::string key("k\0ey", 4);
  const std::string value("\0a\0\xff\0", 5);
  EXPECT_EQ(conn.command({"SET", key, value}).value().text(), "OK");
  redis_reply got = conn.command({"GET", key}).value();
  EXPECT_EQ(got.kind(), redis_reply_kind::string);
  EXPECT_EQ(got.text(), value);
  // The key with the NUL is not the key cut at it.
  EXPECT_TRUE(conn.command({"GET", "k"}).value().is_nil());
}

TEST_F(RedisConnectionTest, ErrorReplyIsAValueAndTheConnectionStaysUsable) {
  redis_connection conn = connected(redis().unix_endpoint());
  redis_reply nogroup =
      conn.command({"XREADGROUP", "GROUP", "g", "c", "STREAMS", "missing", ">"}).value();
  EXPECT_TRUE(nogroup.is_error());
  EXPECT_EQ(nogroup.error_code(), "NOGROUP");
  EXPECT_EQ(conn.command({"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"}).value().text(), "OK");
  redis_reply busy = conn.command({"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"}).value();
  EXPECT_EQ(busy.error_code(), "BUSYGROUP");
  EXPECT_NE(busy.describe().find("BUSYGROUP"), std::string::npos);
  EXPECT_FALSE(conn.broken());
  EXPECT_EQ(conn.command({"PING"}).value().text(), "PONG");
}

TEST_F(RedisConnectionTest, ArrayRepliesAreWalkedByIndexAndByIterator) {
  redis_connection conn = connected(redis().unix_endpoint());
  const std::string first(conn.command({"XADD", "s", "*", "f", "1"}).value().text());
  ASSERT_FALSE(conn.command({"XADD", "s", "*", "f", "2"}).value().is_error());
  redis_reply range = conn.command({"XRANGE", "s", "-", "+"}).value();
  ASSERT_EQ(range.kind(), redis_reply_kind::array);
  ASSERT_EQ(range.size(), 2U);
  EXPECT_EQ(range[0][0].text(), first);
  std::vector<std::string> values;
  for (batch_serving::detail::redis_reply_view entry : range) {
    ASSERT_EQ(entry.size(), 2U);        // id, fields
    ASSERT_EQ(entry[1].size(), 2U);     // f, value
    values.emplace_back(entry[1][1].text());
  }
  EXPECT_EQ(values, (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(conn.command({"XLEN", "s"}).value().integer(), 2);
}

TEST_F(RedisConnectionTest, PipelinesAThousandCommandsAndReadsTheirRepliesInOrder) {
  redis_connection conn = connected(redis().unix_endpoint());
  ASSERT_EQ(conn.command({"SET", "text", "not a number"}).value().text(), "OK");
  constexpr int count = 1000;
  std::vector<std::string> payloads;
  payloads.reserve(count);
  for (int i = 0; i < count; ++i) payloads.push_back("item-" + std::to_string(i));
  for (int i = 0; i < count; ++i) {
    if (i == 500) {
      conn.append({"INCR", "text"});  // an error reply in the middle keeps its place
    } else {
      conn.append({"ECHO", payloads[i]});
    }
  }
  EXPECT_EQ(conn.pending(), static_cast<std::size_t>(count));
  std::vector<redis_reply> replies = conn.read_replies().value();
  EXPECT_EQ(conn.pending(), 0U);
  ASSERT_EQ(replies.size(), static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    if (i == 500) {
      EXPECT_TRUE(replies[i].is_error()) << replies[i].describe();
    } else {
      ASSERT_EQ(replies[i].text(), payloads[i]) << "reply " << i;
    }
  }
  EXPECT_FALSE(conn.broken());
  EXPECT_TRUE(conn.read_replies().value().empty());  // nothing appended: no I/O
}

TEST_F(RedisConnectionTest, CommandWhilePipelinedCommandsArePendingIsRefused) {
  redis_connection conn = connected(redis().unix_endpoint());
  conn.append({"PING"});
  batch_serving::result<redis_reply> refused = conn.command({"PING"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), errc::invalid_argument);
  EXPECT_FALSE(conn.broken());
  EXPECT_EQ(conn.read_replies().value().at(0).text(), "PONG");
}

TEST_F(RedisConnectionTest, SelectsTheDatabaseAndRefusesOneOutOfRange) {
  redis_endpoint db3 = redis().unix_endpoint();
  db3.database = 3;
  redis_connection in3 = connected(db3);
  ASSERT_EQ(in3.command({"SET", "where", "3"}).value().text(), "OK");
  redis_connection in0 = connected(redis().unix_endpoint());
  EXPECT_TRUE(in0.command({"GET", "where"}).value().is_nil());
  EXPECT_EQ(in3.command({"GET", "where"}).value().text(), "3");

  redis_endpoint db99 = redis().unix_endpoint();
  db99.database = 99;
  auto refused = redis_connection::connect(db99);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), errc::invalid_argument);
  EXPECT_NE(refused.error().message().find("SELECT 99"), std::string::npos)
      << refused.error().message();
}

TEST_F(RedisConnectionTest, InvalidEndpointIsRefusedBeforeConnecting) {
  redis_endpoint bad = redis().tcp_endpoint();
  bad.port = 0;
  auto refused = redis_connection::connect(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), errc::invalid_argument);
  EXPECT_NE(refused.error().message().find("port"), std::string::npos);
}

TEST_F(RedisConnectionTest, NothingListeningIsUnavailableAtOnce) {
  refusing_port nobody;
  redis_endpoint endpoint{.host = "127.0.0.1", .port = nobody.port()};
  const auto start = clock_type::now();
  auto refused = redis_connection::connect(endpoint);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), errc::unavailable);
  EXPECT_NE(refused.error().message().find(endpoint.to_string()), std::string::npos)
      << refused.error().message();
  EXPECT_NE(refused.error().message().find("refused"), std::string::npos)
      << refused.error().message();
  EXPECT_LT(since(start), 500ms);

  redis_endpoint no_socket{.unix_socket = redis().unix_socket() + ".missing"};
  auto missing = redis_connection::connect(no_socket);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), errc::unavailable);
}

TEST_F(RedisConnectionTest, UnansweredConnectGivesUpWithinTheConnectTimeout) {
  silent_listener silent;
  redis_endpoint endpoint{.host = "127.0.0.1", .port = silent.port(), .connect_timeout = 300ms};
  const auto start = clock_type::now();
  auto timed_out = redis_connection::connect(endpoint);
  const auto took = since(start);
  ASSERT_FALSE(timed_out.ok());
  EXPECT_EQ(timed_out.error().code(), errc::unavailable);
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3s);  // generous: a loaded 2-core machine
}

TEST_F(RedisConnectionTest, ConnectToAPausedRedisGivesUpWithinTheConnectTimeout) {
  redis_endpoint endpoint = redis().tcp_endpoint();
  endpoint.connect_timeout = 300ms;
  redis().pause();  // the kernel still accepts; nobody answers the login
  const auto start = clock_type::now();
  auto timed_out = redis_connection::connect(endpoint);
  const auto took = since(start);
  redis().resume();
  ASSERT_FALSE(timed_out.ok());
  EXPECT_EQ(timed_out.error().code(), errc::unavailable);
  EXPECT_NE(timed_out.error().message().find("timed out"), std::string::npos)
      << timed_out.error().message();
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3s);
}

TEST_F(RedisConnectionTest, PausedRedisTimesOutWithinTheCommandTimeoutAndBreaksTheConnection) {
  redis_endpoint endpoint = redis().tcp_endpoint();
  endpoint.command_timeout = 300ms;
  redis_connection conn = connected(endpoint);
  redis().pause();
  const auto start = clock_type::now();
  auto timed_out = conn.command({"PING"});
  const auto took = since(start);
  redis().resume();
  ASSERT_FALSE(timed_out.ok());
  EXPECT_EQ(timed_out.error().code(), errc::unavailable);
  EXPECT_NE(timed_out.error().message().find("timed out"), std::string::npos)
      << timed_out.error().message();
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3s);
  // The late PONG would answer the next command: the connection stays broken.
  EXPECT_TRUE(conn.broken());
  EXPECT_EQ(conn.command({"PING"}).error().code(), errc::unavailable);
}

class KilledRedisTest : public RedisConnectionTest, public ::testing::WithParamInterface<bool> {};

TEST_P(KilledRedisTest, KilledRedisIsUnavailableNotAHangAndTheConnectionStaysBroken) {
  const bool unix_socket = GetParam();
  redis_endpoint endpoint = unix_socket ? redis().unix_endpoint() : redis().tcp_endpoint();
  endpoint.command_timeout = 5s;  // the failure must come from the closed socket, not a timeout
  redis_connection conn = connected(endpoint);
  ASSERT_EQ(conn.command({"PING"}).value().text(), "PONG");
  redis().kill();

  // Writes to a socket whose peer is gone raise SIGPIPE (on a unix socket,
  // at once): the process must survive it.
  const auto start = clock_type::now();
  auto lost = conn.command({"PING"});
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.error().code(), errc::unavailable);
  EXPECT_NE(lost.error().message().find(endpoint.to_string()), std::string::npos)
      << lost.error().message();
  EXPECT_LT(since(start), 2s);
  EXPECT_TRUE(conn.broken());

  // Later calls answer at once, without touching the socket.
  const auto again = clock_type::now();
  EXPECT_EQ(conn.command({"PING"}).error().code(), errc::unavailable);
  conn.append({"PING"});
  conn.append({"PING"});
  auto pipelined = conn.read_replies();
  ASSERT_FALSE(pipelined.ok());
  EXPECT_EQ(pipelined.error().code(), errc::unavailable);
  EXPECT_EQ(conn.pending(), 0U);
  EXPECT_LT(since(again), 100ms);

  // Nothing there: connecting is unavailable too; restarted: a new one works.
  EXPECT_EQ(redis_connection::connect(endpoint).error().code(), errc::unavailable);
  redis().restart();
  redis_connection fresh = connected(endpoint);
  EXPECT_EQ(fresh.command({"PING"}).value().text(), "PONG");
}

INSTANTIATE_TEST_SUITE_P(OverTcpAndUnixSocket, KilledRedisTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "unix" : "tcp"; });

TEST_F(RedisConnectionTest, APipelineCutShortByADeadRedisIsUnavailable) {
  redis_connection conn = connected(redis().unix_endpoint());
  redis().kill();
  for (int i = 0; i < 100; ++i) conn.append({"ECHO", "x"});
  auto lost = conn.read_replies();
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.error().code(), errc::unavailable);
  EXPECT_TRUE(conn.broken());
}

TEST_F(RedisConnectionTest, BlockingReadLongerThanTheCommandTimeoutWorksWithItsBlockTime) {
  redis_endpoint endpoint = redis().unix_endpoint();
  endpoint.command_timeout = 200ms;
  redis_connection reader = connected(endpoint);
  ASSERT_FALSE(reader.command({"XADD", "s", "0-1", "f", "old"}).value().is_error());

  // Nothing arrives: XREAD answers nil after its 600 ms block, not a timeout.
  const auto start = clock_type::now();
  redis_reply none = reader.command({"XREAD", "BLOCK", "600", "STREAMS", "s", "$"}, 600ms).value();
  EXPECT_TRUE(none.is_nil()) << none.describe();
  EXPECT_GE(since(start), 550ms);

  // Something arrives during the block: it is the answer.
  std::thread writer([&] {
    std::this_thread::sleep_for(300ms);
    redis_connection conn = connected(endpoint);
    (void)conn.command({"XADD", "s", "*", "f", "new"}).value();
  });
  redis_reply got = reader.command({"XREAD", "BLOCK", "5000", "STREAMS", "s", "$"}, 5s).value();
  writer.join();
  ASSERT_EQ(got.kind(), redis_reply_kind::array) << got.describe();
  EXPECT_EQ(got[0][1][0][1][1].text(), "new");

  // The socket timeout is back to the command timeout afterwards.
  redis().pause();
  const auto paused_at = clock_type::now();
  auto timed_out = reader.command({"PING"});
  const auto took = since(paused_at);
  redis().resume();
  EXPECT_EQ(timed_out.error().code(), errc::unavailable);
  EXPECT_LT(took, 2s);
}

TEST_F(RedisConnectionTest, BlockingReadWithoutItsBlockTimeTripsTheCommandTimeout) {
  redis_endpoint endpoint = redis().unix_endpoint();
  endpoint.command_timeout = 200ms;
  redis_connection reader = connected(endpoint);
  auto timed_out = reader.command({"XREAD", "BLOCK", "2000", "STREAMS", "s", "$"});
  ASSERT_FALSE(timed_out.ok());
  EXPECT_EQ(timed_out.error().code(), errc::unavailable);
  EXPECT_NE(timed_out.error().message().find("timed out"), std::string::npos);
}

TEST_F(RedisConnectionTest, InterruptWakesABlockedReadAtOnce) {
  redis_connection reader = connected(redis().unix_endpoint());
  std::thread interrupter([&] {
    std::this_thread::sleep_for(100ms);
    reader.interrupt();
  });
  const auto start = clock_type::now();
  auto woken = reader.command({"XREAD", "BLOCK", "20000", "STREAMS", "s", "$"}, 20s);
  const auto took = since(start);
  interrupter.join();
  ASSERT_FALSE(woken.ok());
  EXPECT_EQ(woken.error().code(), errc::unavailable);
  EXPECT_LT(took, 5s);  // not the 20 s block
  EXPECT_TRUE(reader.broken());
}

TEST_F(RedisConnectionTest, MovedFromConnectionIsBroken) {
  redis_connection conn = connected(redis().unix_endpoint());
  redis_connection moved = std::move(conn);
  EXPECT_EQ(moved.command({"PING"}).value().text(), "PONG");
  EXPECT_TRUE(conn.broken());  // NOLINT(bugprone-use-after-move): the documented state
  EXPECT_EQ(conn.command({"PING"}).error().code(),
            errc::unavailable);  // NOLINT(bugprone-use-after-move)
}

// ------------------------------------------------------------------ logins

class RedisAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!batch_serving::test::require_redis_server()) return;
    redis_.emplace(batch_serving::test::redis_server_options{
        .password = std::string(secret), .users = {{"alice", "alice-" + std::string(secret)}}});
  }
  redis_server& redis() { return *redis_; }
  std::optional<redis_server> redis_;
};

void expect_no_password(const batch_serving::error& e) {
  EXPECT_EQ(e.message().find(secret), std::string::npos) << e.message();
  EXPECT_EQ(e.to_string().find(secret), std::string::npos) << e.to_string();
}

TEST_F(RedisAuthTest, LogsInWithThePassword) {
  redis_endpoint endpoint = redis().tcp_endpoint();
  endpoint.password = std::string(secret);
  redis_connection conn = redis_connection::connect(endpoint).value();
  EXPECT_EQ(conn.command({"PING"}).value().text(), "PONG");
  EXPECT_EQ(conn.description().find(secret), std::string::npos);
  EXPECT_NE(conn.description().find("password set"), std::string::npos);
}

TEST_F(RedisAuthTest, LogsInAsAnAclUser) {
  redis_endpoint endpoint = redis().unix_endpoint();
  endpoint.user = "alice";
  endpoint.password = "alice-" + std::string(secret);
  endpoint.database = 2;
  redis_connection conn = redis_connection::connect(endpoint).value();
  EXPECT_EQ(conn.command({"ACL", "WHOAMI"}).value().text(), "alice");
}

TEST_F(RedisAuthTest, WrongPasswordIsInvalidArgumentAtConnectWithoutThePassword) {
  redis_endpoint endpoint = redis().tcp_endpoint();
  endpoint.password = "wrong-" + std::string(secret);
  auto refused = redis_connection::connect(endpoint);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), errc::invalid_argument);
  EXPECT_NE(refused.error().message().find("WRONGPASS"), std::string::npos)
      << refused.error().message();
  EXPECT_NE(refused.error().message().find("password set"), std::string::npos);
  expect_no_password(refused.error());
}

TEST_F(RedisAuthTest, UnknownUserOrWrongUserPasswordIsInvalidArgument) {
  for (const char* user : {"alice", "mallory"}) {
    redis_endpoint endpoint = redis().unix_endpoint();
    endpoint.user = user;
    endpoint.password = std::string(secret);  // alice's is "alice-" + secret
    auto refused = redis_connection::connect(endpoint);
    ASSERT_FALSE(refused.ok()) << user;
    EXPECT_EQ(refused.error().code(), errc::invalid_argument) << refused.error().to_string();
    EXPECT_NE(refused.error().message().find(user), std::string::npos);  // names the user
    expect_no_password(refused.error());
  }
}

TEST_F(RedisAuthTest, NoPasswordWhenOneIsRequiredIsAClearError) {
  for (int database : {0, 4}) {  // NOAUTH answers the PING, or the SELECT first
    redis_endpoint endpoint = redis().tcp_endpoint();
    endpoint.database = database;
    auto refused = redis_connection::connect(endpoint);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code(), errc::invalid_argument);
    EXPECT_NE(refused.error().message().find("requires a password"), std::string::npos)
        << refused.error().message();
  }
}

TEST_F(RedisConnectionTest, PasswordForARedisWithoutOneIsRefused) {
  redis_endpoint endpoint = redis().unix_endpoint();
  endpoint.password = std::string(secret);
  auto refused = redis_connection::connect(endpoint);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), errc::invalid_argument);
  expect_no_password(refused.error());
}

}  // namespace
