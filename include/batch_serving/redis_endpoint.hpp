// Where a Redis is and how to log in to it: a TCP host and port or a unix
// socket, the database number, the credentials (AUTH with a password, or an
// ACL user and password), and the connect and command timeouts.
//
// The password is never printed: to_string(), operator<< and every error the
// Redis transport reports say "password set" instead.
//
//   batch_serving::redis_endpoint local{.host = "127.0.0.1", .port = 6379, .database = 2};
//   batch_serving::redis_endpoint sock{.unix_socket = "/run/redis/redis.sock"};
//   batch_serving::result<batch_serving::redis_endpoint> remote =
//       batch_serving::redis_endpoint::from_url("redis://alice:s3cret@redis.internal:6380/1");
//   if (!remote) log(remote.error().to_string());      // names the problem, never the password
//   log(remote->to_string());  // "redis://alice@redis.internal:6380/1 (password set)"
#pragma once

#include <chrono>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

#include "batch_serving/error.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving {

// A plain value type: fill it with designated initializers. Const members are
// thread-safe; none blocks; to_string(), validate() and from_url() allocate.
struct redis_endpoint {
  // TCP: a host name or an IP address (IPv6 without brackets), and a port
  // (1..65535). Ignored when unix_socket is set. A host name is resolved at
  // connect (getaddrinfo, which the connect timeout does not bound).
  std::string host = "127.0.0.1";
  int port = 6379;
  // A unix socket path; when set, the endpoint is this socket, not host:port.
  // At most 107 bytes (the kernel's sun_path).
  std::string unix_socket{};
  // SELECTed after login; 0 is Redis' default. Must not be negative (the
  // server's `databases` setting is the upper bound, checked at connect).
  int database = 0;
  // An ACL user (Redis 6+): AUTH user password. Empty: the default user,
  // AUTH password (requirepass). A user needs a password (any password for a
  // `nopass` user).
  std::string user{};
  // Empty: no AUTH at all.
  std::string password{};
  // The longest connect() waits for the TCP (or unix) connect, and then for
  // the login round trip (AUTH, SELECT, PING), each. Must be positive.
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(1);
  // The longest a command waits for the socket to make progress (no byte
  // written or read for this long: the command fails `unavailable`). A
  // blocking command (XREADGROUP BLOCK) waits its block time on top of it.
  // Must be positive.
  std::chrono::milliseconds command_timeout = std::chrono::seconds(2);

  // Parses `redis://[user[:password]@]host[:port][/db]` (port 6379 and db 0
  // by default; an IPv6 host in brackets: `redis://[::1]:6379`) or
  // `unix://[user[:password]@]/path/to/socket[?db=N]`. Everything before the
  // last '@' is the credentials, percent-decoded (write '@' in a password as
  // %40 or not: both work; a '@' in a socket path must be %40). `:password@`
  // with an empty user is the default user. Timeouts keep their defaults.
  // Errors are invalid_argument, name the part that is wrong and never quote
  // the credentials; the result is validate()d.
  [[nodiscard]] static result<redis_endpoint> from_url(std::string_view url);

  // nullopt when the endpoint is usable, else an invalid_argument error
  // naming the field and its value ("redis_endpoint.port must be in
  // 1..65535 (got 0)"); the password is never part of it.
  [[nodiscard]] std::optional<error> validate() const;

  // For logs and errors: "redis://alice@10.0.0.5:6380/2 (password set)",
  // "unix:///run/redis.sock?db=0 (no password)". Never contains the password.
  [[nodiscard]] std::string to_string() const;

  bool uses_unix_socket() const noexcept { return !unix_socket.empty(); }

  friend bool operator==(const redis_endpoint&, const redis_endpoint&) = default;
};

// Writes to_string(): streaming an endpoint (logging, GoogleTest's failure
// messages) never shows the password.
std::ostream& operator<<(std::ostream& out, const redis_endpoint& endpoint);

}  // namespace batch_serving
