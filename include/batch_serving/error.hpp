// Error codes and the error value every failed call carries.
//
// Expected failures are values: a call that cannot be answered with its results
// is answered with an `error` holding a canonical code and a message naming
// what went wrong. `serving_error` is the exception thrown only when a caller
// asks for a value that is not there (`result::value()`), or for set-up
// mistakes (bad options, a taken server name).
//
//   batch_serving::result<int> r = server.dispatch(2);
//   if (!r.ok() && r.error().code() == batch_serving::errc::shutting_down) {
//     retry_elsewhere();
//   }
//   int v = r.value();  // throws batch_serving::serving_error if !r.ok()
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace batch_serving {

// Why a call was not answered with its results.
enum class errc {
  // No server runs under the name the call used (never started, or stopped).
  no_serving = 1,
  // The batch function threw, or returned a different number of outputs than
  // it was given inputs. Every caller with items in that execution gets this
  // (with server_options::isolate_failures, only callers whose own items fail).
  execution_failed,
  // The call itself was malformed (an empty explicit batch, a name registered
  // with other element types, a caller-side mapping that threw, bad options).
  invalid_argument,
  // The server is shutting down: it no longer accepts calls, or it could not
  // finish this one within its shutdown timeout.
  shutting_down,
  // The server's queue is full (server_options::max_queue); answered at once.
  overloaded,
  // The call's deadline passed before it was answered (call_options::timeout
  // or deadline, server_options::default_timeout).
  timeout,
  // The caller cancelled the call (future::cancel, call_options::stop_token).
  cancelled,
  // The transport to a remote server (Redis) cannot be reached, or lost the
  // connection while the call was in flight. The call may or may not have
  // run: retry it when running it twice is harmless (an idempotent call), or
  // within its deadline after the transport reconnects.
  unavailable,
};

// The code's name as written above, e.g. "execution_failed". Never blocks
// or allocates.
std::string_view to_string(errc code) noexcept;

// A failed call's answer: a code and a message for humans. A value type;
// const members are thread-safe; to_string() allocates.
class error {
 public:
  error(errc code, std::string message) : code_(code), message_(std::move(message)) {}

  errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  // "code: message", e.g. "execution_failed: batch function threw: boom".
  std::string to_string() const;

  friend bool operator==(const error&, const error&) = default;

 private:
  errc code_;
  std::string message_;
};

// Thrown by `result::value()` on a failed result, and on set-up errors.
class serving_error : public std::runtime_error {
 public:
  explicit serving_error(batch_serving::error e)
      : std::runtime_error(e.to_string()), error_(std::move(e)) {}
  serving_error(errc code, std::string message)
      : serving_error(batch_serving::error(code, std::move(message))) {}

  errc code() const noexcept { return error_.code(); }
  const batch_serving::error& error() const noexcept { return error_; }

 private:
  batch_serving::error error_;
};

}  // namespace batch_serving
