#include "batch_serving/redis_endpoint.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <string>

namespace {

using namespace std::chrono_literals;
using batch_serving::errc;
using batch_serving::redis_endpoint;

constexpr const char* secret = "Pa55-w0rd-XYZ";

bool mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string validation_message(const redis_endpoint& endpoint) {
  const auto invalid = endpoint.validate();
  EXPECT_TRUE(invalid.has_value()) << endpoint;
  if (!invalid) return "";
  EXPECT_EQ(invalid->code(), errc::invalid_argument);
  EXPECT_FALSE(mentions(invalid->message(), secret)) << invalid->message();
  return invalid->message();
}

TEST(RedisEndpointTest, DefaultsToLocalhostPort6379DatabaseZero) {
  redis_endpoint endpoint;
  EXPECT_EQ(endpoint.host, "127.0.0.1");
  EXPECT_EQ(endpoint.port, 6379);
  EXPECT_EQ(endpoint.database, 0);
  EXPECT_FALSE(endpoint.uses_unix_socket());
  EXPECT_FALSE(endpoint.validate().has_value());
  EXPECT_EQ(endpoint.to_string(), "redis://127.0.0.1:6379/0 (no password)");
}

TEST(RedisEndpointTest, ValidateNamesTheBadFieldAndItsValue) {
  EXPECT_TRUE(mentions(validation_message({.port = 0}),
                       "redis_endpoint.port must be in 1..65535 (got 0)"));
  EXPECT_TRUE(mentions(validation_message({.port = 65536}), "got 65536"));
  EXPECT_TRUE(mentions(validation_message({.port = -1}), "port"));
  EXPECT_TRUE(mentions(validation_message({.host = ""}), "redis_endpoint.host"));
  EXPECT_TRUE(mentions(validation_message({.host = std::string("a\0b", 3)}), "NUL"));
  EXPECT_TRUE(mentions(validation_message({.database = -1}),
                       "redis_endpoint.database must not be negative (got -1)"));
  EXPECT_TRUE(mentions(validation_message({.connect_timeout = 0ms}),
                       "redis_endpoint.connect_timeout"));
  EXPECT_TRUE(mentions(validation_message({.command_timeout = -5ms}),
                       "redis_endpoint.command_timeout must be positive (got -5 ms)"));
  EXPECT_TRUE(mentions(validation_message({.user = "alice"}), "user 'alice' needs a password"));
  EXPECT_TRUE(mentions(validation_message({.unix_socket = "/" + std::string(107, 's')}),
                       "at most 107 bytes (got 108)"));
  // The port does not matter for a unix socket.
  EXPECT_FALSE(redis_endpoint({.port = 0, .unix_socket = "/tmp/r.sock"}).validate().has_value());
  EXPECT_FALSE(redis_endpoint({.user = "alice", .password = secret}).validate().has_value());
  EXPECT_FALSE(redis_endpoint({.port = 65535, .database = 15}).validate().has_value());
}

TEST(RedisEndpointTest, DescriptionsSayPasswordSetAndNeverShowIt) {
  redis_endpoint tcp{.host = "redis.internal", .port = 6380, .database = 2, .password = secret};
  EXPECT_EQ(tcp.to_string(), "redis://redis.internal:6380/2 (password set)");
  redis_endpoint acl{.host = "::1", .user = "alice", .password = secret};
  EXPECT_EQ(acl.to_string(), "redis://alice@[::1]:6379/0 (password set)");
  redis_endpoint sock{.unix_socket = "/run/redis.sock", .database = 1};
  EXPECT_EQ(sock.to_string(), "unix:///run/redis.sock?db=1 (no password)");
  redis_endpoint sock_acl{.unix_socket = "/run/redis.sock", .user = "bob", .password = secret};
  EXPECT_EQ(sock_acl.to_string(), "unix://bob@/run/redis.sock?db=0 (password set)");
  std::ostringstream streamed;
  streamed << acl;
  EXPECT_EQ(streamed.str(), acl.to_string());
  for (const redis_endpoint& e : {tcp, acl, sock_acl})
    EXPECT_FALSE(mentions(e.to_string(), secret));
}

redis_endpoint parsed(const std::string& url) {
  auto endpoint = redis_endpoint::from_url(url);
  EXPECT_TRUE(endpoint.ok()) << (endpoint.ok() ? "" : endpoint.error().to_string());
  return endpoint.ok() ? *endpoint : redis_endpoint{};
}

TEST(RedisEndpointTest, ParsesRedisUrls) {
  redis_endpoint plain = parsed("redis://cache.local");
  EXPECT_EQ(plain.host, "cache.local");
  EXPECT_EQ(plain.port, 6379);
  EXPECT_EQ(plain.database, 0);
  EXPECT_TRUE(plain.password.empty());

  redis_endpoint full = parsed("redis://alice:s3cr3t@10.0.0.5:6380/7");
  EXPECT_EQ(full.user, "alice");
  EXPECT_EQ(full.password, "s3cr3t");
  EXPECT_EQ(full.host, "10.0.0.5");
  EXPECT_EQ(full.port, 6380);
  EXPECT_EQ(full.database, 7);

  redis_endpoint default_user = parsed("redis://:s3cr3t@host/");
  EXPECT_EQ(default_user.user, "");
  EXPECT_EQ(default_user.password, "s3cr3t");
  EXPECT_EQ(default_user.database, 0);

  redis_endpoint ipv6 = parsed("redis://[::1]:7000/1");
  EXPECT_EQ(ipv6.host, "::1");
  EXPECT_EQ(ipv6.port, 7000);
  EXPECT_EQ(ipv6.to_string(), "redis://[::1]:7000/1 (no password)");

  // Credentials are percent-decoded; everything before the last '@' is them.
  EXPECT_EQ(parsed("redis://:p%40ss%3Aw%2Fd@h").password, "p@ss:w/d");
  EXPECT_EQ(parsed("redis://:p@ss/w@h:1").password, "p@ss/w");
  EXPECT_EQ(parsed("redis://:p@ss/w@h:1").host, "h");
  EXPECT_EQ(parsed("redis://u%3Ax:pw@h").user, "u:x");
}

TEST(RedisEndpointTest, ParsesUnixSocketUrls) {
  redis_endpoint sock = parsed("unix:///var/run/redis/redis.sock");
  EXPECT_EQ(sock.unix_socket, "/var/run/redis/redis.sock");
  EXPECT_TRUE(sock.uses_unix_socket());
  EXPECT_EQ(sock.database, 0);
  EXPECT_EQ(parsed("unix:///tmp/r.sock?db=5").database, 5);
  redis_endpoint acl = parsed("unix://alice:pw@/tmp/r%40x.sock?db=2");
  EXPECT_EQ(acl.user, "alice");
  EXPECT_EQ(acl.password, "pw");
  EXPECT_EQ(acl.unix_socket, "/tmp/r@x.sock");
  EXPECT_EQ(acl.database, 2);
}

std::string url_error(const std::string& url) {
  auto endpoint = redis_endpoint::from_url(url);
  EXPECT_FALSE(endpoint.ok()) << url;
  if (endpoint.ok()) return "";
  EXPECT_EQ(endpoint.error().code(), errc::invalid_argument);
  EXPECT_FALSE(mentions(endpoint.error().message(), secret)) << endpoint.error().message();
  return endpoint.error().message();
}

TEST(RedisEndpointTest, UrlErrorsNameTheProblemAndNeverTheCredentials) {
  const std::string creds = std::string("user:") + secret + "@";
  EXPECT_TRUE(mentions(url_error(creds + "host:6379"), "expected redis://"));
  EXPECT_TRUE(mentions(url_error("http://" + creds + "host"), "unknown scheme 'http'"));
  EXPECT_TRUE(mentions(url_error("rediss://" + creds + "host"), "TLS"));
  EXPECT_TRUE(mentions(url_error("redis://" + creds), "no host"));
  EXPECT_TRUE(mentions(url_error("redis://" + creds + "host:abc"), "port 'abc' is not a number"));
  EXPECT_TRUE(mentions(url_error("redis://" + creds + "host:70000"), "port must be in 1..65535"));
  EXPECT_TRUE(mentions(url_error("redis://" + creds + "host:1/x"), "database 'x'"));
  EXPECT_TRUE(mentions(url_error("redis://" + creds + "host/0?timeout=1"), "takes no query"));
  EXPECT_TRUE(mentions(url_error("redis://" + creds + "[::1:1"), "lacks ']'"));
  EXPECT_TRUE(mentions(url_error("redis://alice@host"), "needs a password"));
  EXPECT_TRUE(mentions(url_error("unix://" + creds + "relative.sock"), "absolute path"));
  EXPECT_TRUE(mentions(url_error("unix://" + creds + "/r.sock?password=x"),
                       "unknown query parameter 'password'"));
  EXPECT_TRUE(mentions(url_error("unix://" + creds + "/r.sock?db=-1"),
                       "database must not be negative"));
  EXPECT_TRUE(mentions(url_error(std::string("redis://u:%zz") + secret + "@h"),
                       "password has a malformed"));
  EXPECT_TRUE(mentions(url_error(std::string("redis://u:") + secret + "%4@h"),
                       "password has a malformed"));
  // A password in a garbled scheme is not echoed either.
  EXPECT_TRUE(mentions(url_error(std::string(secret) + "/x://host"), "expected redis://"));
}

}  // namespace
