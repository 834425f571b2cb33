// The part of redis_worker that does not depend on the serving's types:
// Redis, threads, entries, answers. Internal; redis_worker.hpp is the API.
// The typed part is a worker_dispatcher: it decodes a request's items, calls
// the local server and answers through a worker_reply.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "batch_serving/detail/wire.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/redis_worker_options.hpp"
#include "batch_serving/redis_worker_stats.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving::detail {

struct worker_state;  // src/redis/worker.cpp

// The answer to one request entry a worker took. Exactly one answer is
// written per worker_reply: the first of results() / fail() / end(), or, when
// the reply is destroyed unanswered (a callback dropped without being called),
// execution_failed. Then the entry is acknowledged. A streaming call's reply
// (`attempt` given) writes stream events first (event()), numbered 0, 1, 2,
// ... with its attempt; its final answer is an end or error event, and only
// that one acknowledges the entry. Move-only; each member may be called from
// any thread (one thread per reply at a time); they allocate and never block
// beyond a short lock.
class worker_reply {
 public:
  worker_reply(std::shared_ptr<worker_state> state, std::string entry_id, std::string call_id,
               std::string reply_stream, std::size_t items,
               std::optional<std::string> attempt = std::nullopt) noexcept;
  worker_reply(worker_reply&& other) noexcept = default;
  worker_reply& operator=(worker_reply&& other) noexcept;
  worker_reply(const worker_reply&) = delete;
  worker_reply& operator=(const worker_reply&) = delete;
  ~worker_reply();

  const std::string& call_id() const noexcept { return call_id_; }
  // The client reads answer packs of up to `bytes` (its request's `pack`):
  // this call's answers may travel in one with others to the same client.
  void allow_packs(std::size_t bytes) noexcept { pack_bytes_ = bytes; }

  // Answers with `answer` (results_answer's result); when that is an error,
  // or the entry does not fit the limits, answers execution_failed saying
  // the results cannot travel back.
  void results(result<wire::answer_entry> answer) noexcept;
  // Answers `failure` (a streaming call: an error event ending the stream).
  void fail(const error& failure) noexcept;

  // Streaming calls only. A batch or hook event (kind, results or hook
  // fields set; seq and attempt are set here), written before the final
  // answer; one that cannot be encoded within the limits ends the stream
  // with an execution_failed error event instead.
  void event(result<wire::answer_entry> ev) noexcept;
  // Ends the stream (an end event) and acknowledges the entry.
  void end() noexcept;

 private:
  void send(wire::answer_entry answer) noexcept;
  // Encodes and queues `answer`; `final` gives up the reply (acknowledges).
  void enqueue(wire::answer_entry answer, bool final) noexcept;

  std::shared_ptr<worker_state> state_;  // null once answered or moved from
  std::string entry_id_;
  std::string call_id_;
  std::string reply_stream_;
  std::size_t items_ = 0;
  std::optional<std::string> attempt_;  // set for streaming calls
  std::uint64_t next_seq_ = 0;
  std::size_t pack_bytes_ = 0;  // 0: the client reads no packs
};

// What the typed part of a worker does with a well-formed, unexpired request.
class worker_dispatcher {
 public:
  worker_dispatcher() = default;
  worker_dispatcher(const worker_dispatcher&) = delete;
  worker_dispatcher& operator=(const worker_dispatcher&) = delete;
  virtual ~worker_dispatcher() = default;

  // Decodes request.items and hands them to the local server with
  // `deadline` (time_point::max(): none); answers through `reply`, on any
  // thread, exactly once. Called from the worker's threads, concurrently;
  // must not block on the work. Never throws.
  virtual void dispatch(const wire::request_entry& request,
                        std::chrono::steady_clock::time_point deadline,
                        worker_reply reply) noexcept = 0;
  // batch_size x partitions of the local server (the default room).
  virtual std::size_t capacity() const noexcept = 0;
  // Whether the local server is a streaming server: it takes the forms
  // stream_one and stream_many (and answers with stream events), a plain
  // one takes one and many. The other forms are answered invalid_argument.
  virtual bool streaming() const noexcept { return false; }
};

// Attaches a dispatcher to Redis under a serving name (see redis_worker.hpp
// for the behaviour). Not movable; redis_worker holds it by unique_ptr.
class redis_worker_core {
 public:
  // Validates, connects, creates the group, writes the first heartbeat and
  // starts the threads. Throws serving_error: invalid_argument for a bad
  // name or option (or credentials Redis refuses), unavailable when Redis
  // cannot be reached.
  redis_worker_core(std::string_view serving, redis_worker_options options,
                    std::unique_ptr<worker_dispatcher> dispatcher);
  redis_worker_core(const redis_worker_core&) = delete;
  redis_worker_core& operator=(const redis_worker_core&) = delete;
  ~redis_worker_core();

  void stop() noexcept;
  redis_worker_stats stats() const noexcept;
  const std::string& consumer_id() const noexcept;
  const std::string& serving() const noexcept;

 private:
  struct threads;
  std::shared_ptr<worker_state> state_;
  std::unique_ptr<worker_dispatcher> dispatcher_;
  std::unique_ptr<threads> threads_;
};

}  // namespace batch_serving::detail
