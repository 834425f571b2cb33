// One synchronous connection to Redis (hiredis 0.14, RESP2), and the replies
// it reads. Internal to the Redis transport: each of its threads owns one
// connection; nothing here is shared between threads.
//
//   auto conn = redis_connection::connect(endpoint);        // AUTH, SELECT, PING
//   if (!conn) return conn.error();                          // unavailable / invalid_argument
//   result<redis_reply> r = conn->command({"XADD", key, "*", "f", payload});
//   if (r && r->is_error() && r->error_code() == "NOGROUP") create_group();
//   conn->append({"XADD", key, "*", "f", a});                // pipelining: one write,
//   conn->append({"XADD", key, "*", "f", b});
//   result<std::vector<redis_reply>> both = conn->read_replies();   // one round trip
//
// Failures come in two kinds, kept apart:
// - A Redis error reply (-NOGROUP, -BUSYGROUP, -WRONGTYPE, ...) is a reply:
//   the call succeeded, is_error() is true, the connection stays usable.
// - An I/O failure (refused, reset, closed, timed out, protocol error) is an
//   `unavailable` error, and breaks the connection for good: the stream may
//   be out of step with its replies. Every later call answers `unavailable`
//   at once without touching the socket; connect a new one (reconnect_backoff
//   paces the attempts).
#pragma once

#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "batch_serving/error.hpp"
#include "batch_serving/redis_endpoint.hpp"
#include "batch_serving/result.hpp"

struct redisReply;    // hiredis, kept out of this header
struct redisContext;  // hiredis

namespace batch_serving::detail {

// RESP2's reply types.
enum class redis_reply_kind { string, array, integer, nil, status, error };

// A non-owning view of one reply or one element of an array reply. Valid as
// long as the redis_reply it came from. Cheap to copy; no member allocates
// except describe(); as thread-safe as reading a const value.
class redis_reply_view {
 public:
  class iterator;

  redis_reply_kind kind() const noexcept;
  bool is_error() const noexcept { return kind() == redis_reply_kind::error; }
  bool is_nil() const noexcept { return kind() == redis_reply_kind::nil; }
  bool is_array() const noexcept { return kind() == redis_reply_kind::array; }

  // The bytes of a string, status or error reply (binary-safe, may hold NULs);
  // empty for the other kinds.
  std::string_view text() const noexcept;
  // An integer reply's value; 0 for the other kinds.
  long long integer() const noexcept;
  // An array reply's element count; 0 for the other kinds (a nil array, as
  // XREADGROUP answers on timeout, is kind() nil).
  std::size_t size() const noexcept;
  // Element i of an array reply. Requires is_array() and i < size().
  redis_reply_view operator[](std::size_t i) const noexcept;
  iterator begin() const noexcept;
  iterator end() const noexcept;

  // An error reply's code: its first word ("NOGROUP" of "NOGROUP No such
  // key..."); empty for the other kinds.
  std::string_view error_code() const noexcept;

  // For diagnostics: "string(5)", "error: NOGROUP No such key", "array(3)".
  std::string describe() const;

 protected:
  friend class iterator;
  explicit redis_reply_view(const redisReply* reply) noexcept : reply_(reply) {}
  const redisReply* reply_;  // null only in a moved-from redis_reply (kind() nil)
};

class redis_reply_view::iterator {
 public:
  using value_type = redis_reply_view;
  using difference_type = std::ptrdiff_t;
  iterator() = default;
  redis_reply_view operator*() const noexcept;
  iterator& operator++() noexcept {
    ++index_;
    return *this;
  }
  iterator operator++(int) noexcept {
    iterator before = *this;
    ++index_;
    return before;
  }
  friend bool operator==(const iterator& a, const iterator& b) noexcept {
    return a.array_ == b.array_ && a.index_ == b.index_;
  }

 private:
  friend class redis_reply_view;
  iterator(const redisReply* array, std::size_t index) noexcept : array_(array), index_(index) {}
  const redisReply* array_ = nullptr;  // the array reply itself, not a view of it
  std::size_t index_ = 0;
};

// An owned reply: the tree hiredis parsed (in a few blocks per reply, not a
// heap object per field: detail/redis_reply_arena.hpp), freed once on
// destruction (no copy of the data is made). Move-only.
class redis_reply : public redis_reply_view {
 public:
  // Takes ownership of a reply a redis_connection read (built in its arenas).
  explicit redis_reply(redisReply* owned) noexcept : redis_reply_view(owned) {}
  redis_reply(redis_reply&& other) noexcept;
  redis_reply& operator=(redis_reply&& other) noexcept;
  redis_reply(const redis_reply&) = delete;
  redis_reply& operator=(const redis_reply&) = delete;
  ~redis_reply();

  redis_reply_view view() const noexcept { return *this; }
};

// One connection. Not thread-safe: one thread uses it at a time (the
// transport gives each of its threads its own). Every call blocks until its
// replies are read, Redis answers an error, or the socket fails or times out.
// Move-only; a moved-from connection is broken. interrupt() is the
// exception to the one-thread rule.
class redis_connection {
 public:
  // Connects and logs in: AUTH (password, or user and password), SELECT
  // (when database != 0) and a PING, pipelined in one round trip, each of
  // the connect and the round trip bounded by endpoint.connect_timeout.
  // - The endpoint fails validate(): invalid_argument.
  // - Nothing listens, the host is unreachable, the connect or the login
  //   round trip times out, the connection drops, or Redis answers LOADING /
  //   BUSY / MASTERDOWN: unavailable, naming endpoint.to_string() and the
  //   reason. Worth retrying with backoff.
  // - Redis refuses the login (wrong password, unknown or disabled user,
  //   AUTH without a password configured), needs a password none was given
  //   for (NOAUTH), or refuses the database: invalid_argument. Retrying with
  //   the same endpoint cannot help; the operator must fix the credentials.
  // No message contains the password (Redis' own text included).
  [[nodiscard]] static result<redis_connection> connect(const redis_endpoint& endpoint);

  redis_connection(redis_connection&& other) noexcept;
  redis_connection& operator=(redis_connection&& other) noexcept;
  redis_connection(const redis_connection&) = delete;
  redis_connection& operator=(const redis_connection&) = delete;
  ~redis_connection();

  // Sends one command and reads its reply. Arguments are binary-safe (their
  // lengths are sent; NULs are fine). `server_block` is how long Redis may
  // hold the reply on purpose (the BLOCK of XREADGROUP/XREAD, the timeout of
  // BLPOP): the socket then waits that long plus command_timeout. Block
  // for a finite time (BLOCK 0, forever, would wait up to a year here) and
  // loop: a dead Redis is then noticed and a stop request honoured. A Redis
  // error reply is a reply; an I/O failure or timeout is unavailable and
  // breaks the connection. Requires pending() == 0 (invalid_argument
  // otherwise, the connection stays usable). Allocates the reply.
  [[nodiscard]] result<redis_reply> command(std::span<const std::string_view> argv,
                                            std::chrono::milliseconds server_block = {});
  [[nodiscard]] result<redis_reply> command(std::initializer_list<std::string_view> argv,
                                            std::chrono::milliseconds server_block = {});

  // Pipelining: append() formats a command into the output buffer (no I/O,
  // allocates); read_replies() writes every appended command in as few
  // writes as the socket takes, then reads their replies, in order, in one
  // round trip. After an I/O failure in read_replies() all its replies are
  // lost (each command may or may not have run) and the connection is
  // broken. append() on a broken connection is counted and answered by
  // read_replies() with unavailable. With nothing appended, read_replies()
  // returns no replies and does no I/O.
  void append(std::span<const std::string_view> argv);
  void append(std::initializer_list<std::string_view> argv);
  // Commands appended and not yet read back.
  std::size_t pending() const noexcept { return pending_; }
  [[nodiscard]] result<std::vector<redis_reply>> read_replies(
      std::chrono::milliseconds server_block = {});

  // Wakes a command or read_replies() blocked in this connection's socket
  // (an XREADGROUP BLOCK, a hung Redis) by shutting the socket down: that
  // call (or, when none is in progress, the next one) fails unavailable and
  // breaks the connection. The one member another thread may call, while the
  // connection exists and is not being moved; never blocks.
  void interrupt() const noexcept;

  // True after an I/O failure (or a move out): every call answers
  // unavailable at once. Never un-breaks.
  bool broken() const noexcept { return failure_.has_value(); }
  // Why it broke, or nullopt.
  const std::optional<error>& failure() const noexcept { return failure_; }
  // The endpoint's to_string(): which Redis this is, without the password.
  const std::string& description() const noexcept { return description_; }

 private:
  redis_connection(redisContext* context, const redis_endpoint& endpoint);
  result<std::vector<redis_reply>> read_replies_impl(std::chrono::milliseconds socket_timeout);
  bool set_socket_timeout(std::chrono::milliseconds timeout);
  error break_with(const std::string& what);

  struct context_deleter {
    void operator()(redisContext* context) const noexcept;
  };
  std::unique_ptr<redisContext, context_deleter> context_;
  std::string description_;
  std::chrono::milliseconds command_timeout_;
  std::chrono::milliseconds socket_timeout_;  // what the socket is set to now
  std::size_t pending_ = 0;
  std::optional<error> failure_;
};

}  // namespace batch_serving::detail
