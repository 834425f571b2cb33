// The untyped part of redis_client (redis_client.hpp): calls as bytes, the
// sender, receiver and timer threads, the table of outstanding calls. Internal.
//
// One rule decides every call's answer: a call is answered by whoever removes
// it from `outstanding_` (under mu_): an answer read from the reply stream,
// its deadline, its cancellation, a broken connection, stop(). Removal and
// remote_call::complete() happen once; complete() runs outside every lock.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "batch_serving/detail/mutex.hpp"
#include "batch_serving/detail/reconnect_backoff.hpp"
#include "batch_serving/detail/redis_connection.hpp"
#include "batch_serving/detail/thread_annotations.hpp"
#include "batch_serving/detail/wire.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/redis_endpoint.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving {

struct redis_client_options;
struct redis_client_stats;

namespace detail {

// One call as the core sees it. complete() is called exactly once, by the
// thread that answered it (a caller, the sender, receiver or timer thread, or
// stop()), never under a core lock. It must not throw.
class remote_call {
 public:
  remote_call() = default;
  remote_call(const remote_call&) = delete;
  remote_call& operator=(const remote_call&) = delete;
  virtual ~remote_call() = default;
  virtual void complete(result<wire::answer_entry> answer) noexcept = 0;
  // Streaming calls: a batch or hook event before the final answer, in seq
  // order, called by the receiver thread only, never under a core lock and
  // never after complete() was called by the receiver (complete() from
  // another thread, a deadline say, may overlap: the call keeps the first
  // end). Must not throw.
  virtual void stream_event(wire::answer_entry answer) noexcept { (void)answer; }
};

class redis_client_core {
 public:
  // Validates the options and connects (both connections, so a wrong
  // password or a bad endpoint is reported here). Throws
  // serving_error(invalid_argument) for bad options or refused credentials.
  // A Redis that cannot be reached is no error here: the threads start and
  // reconnect with backoff, calls meanwhile answer unavailable.
  explicit redis_client_core(const redis_client_options& options);
  ~redis_client_core();
  redis_client_core(const redis_client_core&) = delete;
  redis_client_core& operator=(const redis_client_core&) = delete;

  // Admits a call: its items (one MessagePack array of `item_count`
  // elements), its form and deadline (time_point::max(): none). Answers it
  // at once (through complete()) when it is refused: entry too large,
  // stopping, backlog full, no live worker (known from the cache), Redis
  // unreachable. Returns the call's sequence number (for cancel()), 0 when it
  // was answered at once. Thread-safe; never blocks on I/O.
  std::uint64_t submit(std::shared_ptr<remote_call> call, wire::call_form form, std::string items,
                       std::size_t item_count, std::chrono::steady_clock::time_point deadline)
      BATCH_SERVING_EXCLUDES(mu_);

  // Answers call `sequence` cancelled unless it was answered; true if this
  // answered it. Thread-safe; never blocks on I/O.
  bool cancel(std::uint64_t sequence) BATCH_SERVING_EXCLUDES(mu_);

  // Answers every outstanding call shutting_down, stops and joins the
  // threads. Idempotent, thread-safe except from the core's own threads
  // (there it only answers the calls and asks the threads to stop).
  void stop() BATCH_SERVING_EXCLUDES(mu_);

  // True when the calling thread is one of the core's (a completion callback).
  bool on_own_thread() const noexcept;

  const std::string& client_id() const noexcept { return client_id_; }
  const std::string& reply_stream() const noexcept { return reply_stream_; }
  const wire::limits& limits() const noexcept { return limits_; }
  const std::optional<std::chrono::microseconds>& default_timeout() const noexcept {
    return default_timeout_;
  }
  redis_client_stats stats() const noexcept;

 private:
  // A streaming call's events so far (see the top of detail/wire.hpp): the
  // attempt it follows, how many events it delivered, and the events that
  // came ahead of their turn.
  struct stream_progress {
    std::optional<std::string> attempt;  // unset until the first event
    std::vector<std::string> replaced;  // attempts given up while nothing was delivered
    std::uint64_t next_seq = 0;  // events delivered
    std::map<std::uint64_t, wire::answer_entry> early;
  };
  struct outstanding_call {
    std::shared_ptr<remote_call> call;
    bool sent = false;  // written to the request stream (its answer may come)
    std::size_t item_count = 0;  // a results answer must carry as many
    std::unique_ptr<stream_progress> stream;  // set for streaming calls
  };
  struct queued_send {
    std::uint64_t sequence = 0;
    std::vector<wire::field> fields;
    std::size_t budget_field = 0;  // index of budget_us in fields; fields.size(): none
    std::chrono::steady_clock::time_point deadline;
  };
  struct timer_entry {
    std::chrono::steady_clock::time_point deadline;
    std::uint64_t sequence = 0;
    friend bool operator>(const timer_entry& a, const timer_entry& b) noexcept {
      return a.deadline > b.deadline;
    }
  };

  // Removes call `sequence` and answers it `answer`; false when it was not
  // outstanding (answered already, or never ours).
  bool finish(std::uint64_t sequence, result<wire::answer_entry> answer)
      BATCH_SERVING_EXCLUDES(mu_);
  // Answers call `sequence` with a results or error answer read from the
  // reply stream, unless a results answer has the wrong count.
  enum class delivery { delivered, not_outstanding, wrong_count, buffered, duplicate, malformed };
  delivery deliver(std::uint64_t sequence, wire::answer_entry answer) BATCH_SERVING_EXCLUDES(mu_);
  // The part of deliver() for a streaming call's answer: orders events by
  // seq, follows one attempt; fills `ready` with what the call gets now (the
  // last one final when `ends`).
  delivery order_stream_event(outstanding_call& entry, wire::answer_entry answer,
                              std::vector<wire::answer_entry>& ready, bool& ends,
                              std::optional<error>& lost) BATCH_SERVING_REQUIRES(mu_);
  // Answers every outstanding call matching `only_sent` (or all) with `e`.
  void fail_all(const error& e, bool only_sent) BATCH_SERVING_EXCLUDES(mu_);

  void sender_loop(const std::stop_token& stop);
  void receiver_loop(const std::stop_token& stop);
  void timer_loop(const std::stop_token& stop);

  // The sender's part: one pipelined round trip for `batch`.
  void send_batch(redis_connection& conn, std::vector<queued_send>& batch);
  // Refreshes the live-worker cache with one EVAL; false when the connection broke.
  bool refresh_live_workers(redis_connection& conn);
  bool live_workers_known_absent() const noexcept;
  // Answers every sent, unanswered call no_serving once the live-worker
  // count has read 0 twice, worker_check_interval apart: no worker holds
  // them and none will claim them (a call with no deadline would otherwise
  // wait for a worker to come back). Sender thread only.
  void answer_sent_calls_no_worker() BATCH_SERVING_EXCLUDES(mu_);
  void process_entries(const redis_reply_view& streams);
  // One answer read from the reply stream (an entry, or a member of a pack):
  // delivered to its call, or counted as malformed, foreign or a duplicate.
  void take_answer(result<wire::answer_entry> answer) BATCH_SERVING_EXCLUDES(mu_);
  // Connects for one thread (installing the connection for interrupt()),
  // with backoff; nullptr once stop is requested.
  std::unique_ptr<redis_connection> reconnect(const std::stop_token& stop,
                                              reconnect_backoff& backoff, int slot,
                                              bool first_attempt_now);
  void install(int slot, redis_connection* conn) BATCH_SERVING_EXCLUDES(conn_mu_);

  // Set once at construction.
  redis_endpoint endpoint_;
  wire::serving_keys keys_;
  std::string client_id_;
  std::string reply_stream_;
  wire::limits limits_;
  std::size_t max_outstanding_;
  std::size_t max_pipeline_;
  std::chrono::milliseconds reply_block_;
  std::chrono::milliseconds worker_check_interval_;
  std::chrono::milliseconds reply_stream_ttl_;
  std::optional<std::chrono::microseconds> default_timeout_;
  reconnect_backoff_options backoff_options_;

  mutable mutex mu_;
  std::condition_variable send_wake_;  // with mu_: queue_ filled, stopping
  std::condition_variable timer_wake_;  // with mu_: an earlier deadline, stopping
  std::unordered_map<std::uint64_t, outstanding_call> outstanding_ BATCH_SERVING_GUARDED_BY(mu_);
  std::vector<queued_send> queue_ BATCH_SERVING_GUARDED_BY(mu_);
  std::vector<timer_entry> timers_ BATCH_SERVING_GUARDED_BY(mu_);  // min-heap by deadline
  std::uint64_t next_sequence_ BATCH_SERVING_GUARDED_BY(mu_) = 1;
  bool stopping_ BATCH_SERVING_GUARDED_BY(mu_) = false;

  // interrupt() targets: each thread's current connection (0 sender, 1 receiver).
  mutex conn_mu_;
  redis_connection* live_conn_[2] BATCH_SERVING_GUARDED_BY(conn_mu_) = {nullptr, nullptr};
  bool conn_stopping_ BATCH_SERVING_GUARDED_BY(conn_mu_) = false;

  // Handed from the constructor to the threads (then owned by them).
  std::unique_ptr<redis_connection> first_sender_conn_;
  std::unique_ptr<redis_connection> first_receiver_conn_;
  std::optional<error> first_failure_;  // why the first connect failed (unavailable)

  // Whether each connection is up; a call is sent only when both are (the
  // receiver could not see its answer otherwise). Written under mu_, and
  // read under mu_ where a call is queued or marked sent, so those decisions
  // agree with the sweeps a thread going down makes; read without it only as
  // a hint (submit's fast refusal). Atomic for those hint reads.
  std::atomic<bool> sender_up_{false};
  std::atomic<bool> receiver_up_{false};
  // The last reason a connection is down, for messages. Guarded by mu_.
  std::string down_reason_ BATCH_SERVING_GUARDED_BY(mu_);

  // The live-worker cache: count (-1 unknown) and when it was read (steady ns).
  std::atomic<long long> live_workers_{-1};
  std::atomic<std::int64_t> live_checked_ns_{0};
  // When the sender first read a count of 0 (steady ns; 0: not since the
  // last count above 0). Sender thread only.
  std::int64_t first_seen_no_worker_ns_ = 0;

  // Stats (relaxed counters).
  std::atomic<std::uint64_t> calls_sent_{0};
  std::atomic<std::uint64_t> round_trips_{0};
  std::atomic<std::uint64_t> answers_delivered_{0};
  std::atomic<std::uint64_t> duplicates_{0};
  std::atomic<std::uint64_t> foreign_{0};
  std::atomic<std::uint64_t> malformed_{0};
  std::atomic<std::uint64_t> timeouts_{0};
  std::atomic<std::uint64_t> reconnects_{0};
  std::atomic<std::uint64_t> refused_{0};

  std::jthread timer_;
  std::jthread receiver_;
  std::jthread sender_;
  std::atomic<bool> joined_{false};
};

}  // namespace detail
}  // namespace batch_serving
