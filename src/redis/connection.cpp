#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "batch_serving/detail/redis_connection.hpp"
#include "batch_serving/detail/redis_reply_arena.hpp"

namespace batch_serving::detail {
namespace {

// Far longer than any command may wait, short enough that timeval cannot
// overflow when a block time is added.
constexpr std::chrono::milliseconds longest_socket_timeout = std::chrono::hours(24 * 365);

timeval to_timeval(std::chrono::milliseconds timeout) {
  timeout = std::clamp(timeout, std::chrono::milliseconds(1), longest_socket_timeout);
  timeval tv{};
  tv.tv_sec = static_cast<decltype(tv.tv_sec)>(timeout.count() / 1000);
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>((timeout.count() % 1000) * 1000);
  return tv;
}

std::chrono::milliseconds plus_block(std::chrono::milliseconds command_timeout,
                                     std::chrono::milliseconds server_block) {
  server_block = std::clamp(server_block, std::chrono::milliseconds(0), longest_socket_timeout);
  return std::min(command_timeout + server_block, longest_socket_timeout);
}

std::string ms_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

// hiredis 0.14 writes with write(2), which raises SIGPIPE on a socket whose
// peer has gone (always on unix sockets, on TCP after a reset): the default
// action kills the process. While hiredis does I/O this thread blocks
// SIGPIPE, and a SIGPIPE that the failed write left pending is consumed
// before the old mask comes back. Per-thread and process-wide signal
// dispositions stay untouched; it costs two pthread_sigmask calls per round
// trip (a pipeline shares them).
class sigpipe_guard {
 public:
  sigpipe_guard() noexcept {
    sigemptyset(&sigpipe_);
    sigaddset(&sigpipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigpipe_, &old_mask_);
    // Already blocked by the caller: a pending SIGPIPE may be theirs, leave it.
    we_blocked_ = sigismember(&old_mask_, SIGPIPE) == 0;
  }
  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;
  ~sigpipe_guard() { pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr); }

  // After a failed write: drops the SIGPIPE it raised, if any.
  void consume_pending() noexcept {
    if (!we_blocked_) return;
    sigset_t pending;
    sigemptyset(&pending);
    if (sigpending(&pending) != 0 || sigismember(&pending, SIGPIPE) == 0) return;
    const timespec no_wait{};
    while (sigtimedwait(&sigpipe_, nullptr, &no_wait) == -1 && errno == EINTR) {
    }
  }

 private:
  sigset_t sigpipe_{};
  sigset_t old_mask_{};
  bool we_blocked_ = false;
};

// Why hiredis failed, in words; `saved_errno` is errno right after the call.
std::string io_failure_text(const redisContext& context, int saved_errno,
                            std::chrono::milliseconds socket_timeout) {
  if (context.err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) {
    return "timed out: no progress on the socket within " + ms_text(socket_timeout);
  }
  std::string text = context.errstr;
  if (text.empty()) text = "hiredis error " + std::to_string(context.err);
  return text;
}

// Removes every occurrence of `secret` from `text`: server and library
// messages are not ours to trust with it.
std::string scrubbed(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (std::size_t at = text.find(secret); at != std::string::npos;
       at = text.find(secret, at + 10)) {
    text.replace(at, secret.size(), "<password>");
  }
  return text;
}

// Redis answers these while it cannot serve yet, or for now: retry later.
bool is_transient(std::string_view code) {
  return code == "LOADING" || code == "BUSY" || code == "MASTERDOWN" || code == "TRYAGAIN" ||
         code == "CLUSTERDOWN";
}

}  // namespace

// ------------------------------------------------------------------ replies

redis_reply_kind redis_reply_view::kind() const noexcept {
  if (reply_ == nullptr) return redis_reply_kind::nil;
  switch (reply_->type) {
    case REDIS_REPLY_STRING: return redis_reply_kind::string;
    case REDIS_REPLY_ARRAY: return redis_reply_kind::array;
    case REDIS_REPLY_INTEGER: return redis_reply_kind::integer;
    case REDIS_REPLY_STATUS: return redis_reply_kind::status;
    case REDIS_REPLY_ERROR: return redis_reply_kind::error;
    default: return redis_reply_kind::nil;
  }
}

std::string_view redis_reply_view::text() const noexcept {
  switch (kind()) {
    case redis_reply_kind::string:
    case redis_reply_kind::status:
    case redis_reply_kind::error: return {reply_->str, reply_->len};
    default: return {};
  }
}

long long redis_reply_view::integer() const noexcept {
  return kind() == redis_reply_kind::integer ? reply_->integer : 0;
}

std::size_t redis_reply_view::size() const noexcept {
  return kind() == redis_reply_kind::array ? reply_->elements : 0;
}

redis_reply_view redis_reply_view::operator[](std::size_t i) const noexcept {
  return redis_reply_view(reply_->element[i]);
}

redis_reply_view::iterator redis_reply_view::begin() const noexcept { return {reply_, 0}; }

redis_reply_view::iterator redis_reply_view::end() const noexcept { return {reply_, size()}; }

redis_reply_view redis_reply_view::iterator::operator*() const noexcept {
  return redis_reply_view(array_->element[index_]);
}

std::string_view redis_reply_view::error_code() const noexcept {
  if (!is_error()) return {};
  const std::string_view message = text();
  return message.substr(0, message.find(' '));
}

std::string redis_reply_view::describe() const {
  constexpr std::size_t most_shown = 120;
  switch (kind()) {
    case redis_reply_kind::string: return "string(" + std::to_string(text().size()) + " bytes)";
    case redis_reply_kind::array: return "array(" + std::to_string(size()) + ")";
    case redis_reply_kind::integer: return "integer " + std::to_string(integer());
    case redis_reply_kind::nil: return "nil";
    case redis_reply_kind::status: return "status " + std::string(text().substr(0, most_shown));
    case redis_reply_kind::error: return "error: " + std::string(text().substr(0, most_shown));
  }
  return "?";
}

redis_reply::redis_reply(redis_reply&& other) noexcept : redis_reply_view(other.reply_) {
  other.reply_ = nullptr;
}

redis_reply& redis_reply::operator=(redis_reply&& other) noexcept {
  if (this != &other) {
    if (reply_ != nullptr) free_arena_reply(const_cast<redisReply*>(reply_));
    reply_ = std::exchange(other.reply_, nullptr);
  }
  return *this;
}

redis_reply::~redis_reply() {
  if (reply_ != nullptr) free_arena_reply(const_cast<redisReply*>(reply_));
}

// --------------------------------------------------------------- connection

void redis_connection::context_deleter::operator()(redisContext* context) const noexcept {
  redisFree(context);
}

redis_connection::redis_connection(redisContext* context, const redis_endpoint& endpoint)
    : context_(context),
      description_(endpoint.to_string()),
      command_timeout_(endpoint.command_timeout),
      socket_timeout_(0) {}

redis_connection::redis_connection(redis_connection&& other) noexcept
    : context_(std::move(other.context_)),
      description_(std::move(other.description_)),
      command_timeout_(other.command_timeout_),
      socket_timeout_(other.socket_timeout_),
      pending_(std::exchange(other.pending_, 0)),
      failure_(std::move(other.failure_)) {
  other.failure_.emplace(errc::unavailable, "use of a moved-from redis connection");
}

redis_connection& redis_connection::operator=(redis_connection&& other) noexcept {
  if (this != &other) {
    context_ = std::move(other.context_);
    description_ = std::move(other.description_);
    command_timeout_ = other.command_timeout_;
    socket_timeout_ = other.socket_timeout_;
    pending_ = std::exchange(other.pending_, 0);
    failure_ = std::move(other.failure_);
    other.failure_.emplace(errc::unavailable, "use of a moved-from redis connection");
  }
  return *this;
}

redis_connection::~redis_connection() = default;

result<redis_connection> redis_connection::connect(const redis_endpoint& endpoint) {
  if (std::optional<error> invalid = endpoint.validate()) return *std::move(invalid);
  const std::string description = endpoint.to_string();
  const timeval connect_tv = to_timeval(endpoint.connect_timeout);
  redisContext* raw =
      endpoint.uses_unix_socket()
          ? redisConnectUnixWithTimeout(endpoint.unix_socket.c_str(), connect_tv)
          : redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, connect_tv);
  if (raw == nullptr) {
    return error(errc::unavailable, "cannot connect to " + description + ": out of memory");
  }
  // Before anything is read: every reply of this connection is an arena's.
  if (raw->reader != nullptr) use_reply_arenas(raw->reader);
  redis_connection connection(raw, endpoint);
  if (raw->err != 0) {
    return error(errc::unavailable,
                 scrubbed("cannot connect to " + description + ": " + raw->errstr +
                              " (connect timeout " + ms_text(endpoint.connect_timeout) + ")",
                          endpoint.password));
  }
  // Lets the kernel notice a peer that vanished without a FIN while idle.
  if (!endpoint.uses_unix_socket()) (void)redisEnableKeepAlive(raw);

  if (!endpoint.password.empty()) {
    if (endpoint.user.empty()) {
      connection.append({"AUTH", endpoint.password});
    } else {
      connection.append({"AUTH", endpoint.user, endpoint.password});
    }
  }
  const std::string database = std::to_string(endpoint.database);
  if (endpoint.database != 0) connection.append({"SELECT", database});
  connection.append({"PING"});
  // The login round trip is part of connecting: bounded by connect_timeout.
  result<std::vector<redis_reply>> replies = connection.read_replies_impl(endpoint.connect_timeout);
  if (!replies) {
    return error(errc::unavailable,
                 scrubbed("cannot log in: " + replies.error().message(), endpoint.password));
  }
  std::size_t next = 0;
  auto refused = [&](const redis_reply& reply, const std::string& step) {
    const errc code = is_transient(reply.error_code()) ? errc::unavailable : errc::invalid_argument;
    return error(code, scrubbed(description + ": " + step + ": " + std::string(reply.text()),
                                endpoint.password));
  };
  if (!endpoint.password.empty()) {
    const redis_reply& auth = (*replies)[next++];
    if (auth.is_error()) {
      return refused(auth, endpoint.user.empty() ? "login (AUTH password) refused"
                                                 : "login (AUTH user password) refused");
    }
  }
  if (endpoint.database != 0) {
    const redis_reply& select = (*replies)[next++];
    if (select.is_error()) {
      if (select.error_code() == "NOAUTH") {
        return refused(select, "requires a password and redis_endpoint.password is empty");
      }
      return refused(select, "SELECT " + database + " refused");
    }
  }
  const redis_reply& ping = (*replies)[next];
  if (ping.is_error()) {
    if (ping.error_code() == "NOAUTH") {
      return refused(ping, "requires a password and redis_endpoint.password is empty");
    }
    return refused(ping, "PING refused");
  }
  if (!connection.set_socket_timeout(endpoint.command_timeout)) {
    return error(errc::unavailable, "cannot connect: " + connection.failure()->message());
  }
  return connection;
}

void redis_connection::append(std::span<const std::string_view> argv) {
  ++pending_;
  if (broken()) return;
  if (argv.empty() || argv.size() > static_cast<std::size_t>(INT_MAX)) {
    break_with("a command needs 1.." + std::to_string(INT_MAX) + " arguments (got " +
               std::to_string(argv.size()) + ")");
    return;
  }
  // Most commands have a handful of arguments: no allocation for those.
  constexpr std::size_t on_stack = 16;
  std::array<const char*, on_stack> pointers_small{};
  std::array<std::size_t, on_stack> lengths_small{};
  std::vector<const char*> pointers_large;
  std::vector<std::size_t> lengths_large;
  const char** pointers = pointers_small.data();
  std::size_t* lengths = lengths_small.data();
  if (argv.size() > on_stack) {
    pointers_large.resize(argv.size());
    lengths_large.resize(argv.size());
    pointers = pointers_large.data();
    lengths = lengths_large.data();
  }
  for (std::size_t i = 0; i < argv.size(); ++i) {
    pointers[i] = argv[i].data();
    lengths[i] = argv[i].size();
  }
  if (redisAppendCommandArgv(context_.get(), static_cast<int>(argv.size()), pointers, lengths) !=
      REDIS_OK) {
    break_with("cannot format a command: " + std::string(context_->errstr));
  }
}

void redis_connection::append(std::initializer_list<std::string_view> argv) {
  append(std::span<const std::string_view>(argv.begin(), argv.size()));
}

result<redis_reply> redis_connection::command(std::span<const std::string_view> argv,
                                              std::chrono::milliseconds server_block) {
  if (pending_ != 0) {
    return error(errc::invalid_argument, "redis command() with " + std::to_string(pending_) +
                                             " pipelined commands pending: read_replies() first");
  }
  append(argv);
  if (broken()) {
    pending_ = 0;
    return *failure_;
  }
  if (!set_socket_timeout(plus_block(command_timeout_, server_block))) {
    pending_ = 0;
    return *failure_;
  }
  sigpipe_guard guard;
  void* raw = nullptr;
  const int status = redisGetReply(context_.get(), &raw);
  const int saved_errno = errno;
  pending_ = 0;
  if (status != REDIS_OK || raw == nullptr) {
    guard.consume_pending();
    return break_with(io_failure_text(*context_, saved_errno, socket_timeout_));
  }
  return redis_reply(static_cast<redisReply*>(raw));
}

result<redis_reply> redis_connection::command(std::initializer_list<std::string_view> argv,
                                              std::chrono::milliseconds server_block) {
  return command(std::span<const std::string_view>(argv.begin(), argv.size()), server_block);
}

result<std::vector<redis_reply>> redis_connection::read_replies(
    std::chrono::milliseconds server_block) {
  return read_replies_impl(plus_block(command_timeout_, server_block));
}

result<std::vector<redis_reply>> redis_connection::read_replies_impl(
    std::chrono::milliseconds socket_timeout) {
  const std::size_t count = std::exchange(pending_, 0);
  if (broken()) return *failure_;
  std::vector<redis_reply> replies;
  if (count == 0) return replies;
  if (!set_socket_timeout(socket_timeout)) return *failure_;
  replies.reserve(count);
  sigpipe_guard guard;
  // The first redisGetReply writes the whole output buffer, then every call
  // parses what is already read before it reads again.
  while (replies.size() < count) {
    void* raw = nullptr;
    const int status = redisGetReply(context_.get(), &raw);
    const int saved_errno = errno;
    if (status != REDIS_OK || raw == nullptr) {
      guard.consume_pending();
      return break_with(io_failure_text(*context_, saved_errno, socket_timeout_) + " (after " +
                        std::to_string(replies.size()) + " of " + std::to_string(count) +
                        " pipelined replies)");
    }
    replies.emplace_back(static_cast<redisReply*>(raw));
  }
  return replies;
}

void redis_connection::interrupt() const noexcept {
  // shutdown(2), not close(2): the descriptor stays valid (and unreused)
  // until the owner frees the context; the blocked read returns EOF.
  if (context_ && context_->fd >= 0) ::shutdown(context_->fd, SHUT_RDWR);
}

bool redis_connection::set_socket_timeout(std::chrono::milliseconds timeout) {
  if (broken()) return false;
  if (timeout == socket_timeout_) return true;
  if (redisSetTimeout(context_.get(), to_timeval(timeout)) != REDIS_OK) {
    break_with("cannot set the socket timeout: " + std::string(context_->errstr));
    return false;
  }
  socket_timeout_ = timeout;
  return true;
}

error redis_connection::break_with(const std::string& what) {
  if (!failure_) failure_.emplace(errc::unavailable, "connection to " + description_ + ": " + what);
  return *failure_;
}

}  // namespace batch_serving::detail
