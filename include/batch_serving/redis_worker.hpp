// redis_worker: attaches a running local server to Redis under a serving
// name, so that calls from many client processes, on any machine that
// reaches the Redis, run on it; the local server keeps doing the batching,
// so those calls share executions.
//
//   batch_serving::serving<int, int> squares(square_all);
//   batch_serving::server local(squares, {.batch_size = 64});
//   batch_serving::redis_worker worker(local, "squares",
//                                      {.endpoint = {.host = "127.0.0.1", .port = 6379}});
//   // ... clients dispatch "squares" through Redis ...
//   worker.stop();   // finish and answer what it took, leave the rest to others
//   std::printf("%llu calls\n", (unsigned long long)worker.stats().calls_dispatched);
//
// WHAT IT DOES (the formats: detail/wire.hpp). The worker joins the
// consumer group "workers" of bs:{NAME}:requests (creating it at id 0, so
// entries written before any worker existed are served), reads request
// entries with XREADGROUP, decodes their items with codec<CallIn>, hands
// them to the local server with dispatch_many_async, and writes each call's
// answer (results by codec<CallOut>, or an error) to the caller's reply
// stream. An entry is acknowledged (XACK) only after its answer is written,
// so an entry a worker took and did not answer stays pending in Redis; once
// acknowledged it is deleted (XDEL), so the request stream holds only calls
// not answered yet.
// - A malformed entry that names its caller's reply stream is answered
//   invalid_argument; one that does not is acknowledged, skipped and counted
//   (stats().skipped_malformed). Items that do not decode as CallIn:
//   invalid_argument. The worker keeps serving.
// - Deadlines: an entry's budget_us is charged the time it waited in the
//   stream, measured on Redis's clock alone (the entry id's time against
//   TIME read with each XREADGROUP), then becomes a local steady_clock
//   deadline. An entry whose budget is spent is answered timeout and never
//   runs.
// - Form "one" is answered with a results array of one element, as "many".
// - STREAMING. A streaming_server attaches the same way; it takes the forms
//   stream_one (dispatch_stream) and stream_many (dispatch_many_stream), and
//   a plain server takes one and many: the other forms are answered
//   invalid_argument. The worker dispatches a streaming entry on the local
//   server and writes each of its events, in order, as an answer entry with
//   seq 0, 1, 2, ... and the attempt id it chose when it started the call:
//   batch and item events as batch events (results by codec<CallOut>), hook
//   events with the hook's name and its entries encoded by codec<P>, where P
//   is the hook_payload_type<P> given to the constructor (without one, or
//   when a hook carries another type, the stream ends with an
//   execution_failed error event naming the types), then the end or error
//   event. Only that last event acknowledges the entry (at-least-once, as for
//   plain calls): a worker that dies mid-stream leaves the entry pending, and
//   the worker that claims it runs the call again from the start under
//   another attempt id (the client's rules: redis_client.hpp).
//
// DEAD, NOT SLOW. Every worker keeps its member in the sorted set
// bs:{NAME}:workers, scored with the time (ms on Redis's clock) its
// heartbeat expires, refreshed every heartbeat_interval. Every
// claim_interval a worker looks for members whose heartbeat has expired
// and, in one Lua script (so two workers never claim the same entry), moves
// their pending entries to itself (XCLAIM) and runs them like new ones (their
// budgets keep counting from the entry's time, so expired ones are answered
// timeout); a dead worker with nothing pending is removed from the set and
// the group. Consumers of the group that are not in the set at all (a
// worker lost between a restart and its first heartbeat) count as dead once
// they have not touched the group (read, claimed) for heartbeat_expiry. A live worker is never
// robbed, however long its batch runs. So a dead worker's calls wait at most
// heartbeat_expiry + claim_interval (3 s + 1 s by default) before another
// worker starts them.
//
// REDIS LOST. Every thread reconnects on its own with backoff (interrupted
// by stop()). Answers that could not be written stay in memory and are
// written when Redis is back; the reader first reads the worker's own
// pending entries again (those whose delivery was lost with the connection)
// and runs the ones it does not hold. A read whose reply is lost later (a
// hung Redis that resumes and runs an XREADGROUP whose sender gave up on
// it) is found by the keeper: every claim_interval it takes the entries
// pending for this worker that it does not hold and that have been idle
// longer than command_timeout + block_time + claim_interval, and runs them
// (stats().entries_recovered). A Redis restarted without its data comes
// back empty: the group is created again and the heartbeat re-added.
//
// THREADS. Three, each with its own connection (a hiredis connection is
// single-threaded, and a blocked XREADGROUP must not delay answers or
// heartbeats):
// - the reader: XREADGROUP (BLOCK block_time, pipelined with TIME) and the
//   handling of each entry; it dispatches and never waits for the work;
// - the writer: batches queued answers into one pipeline per round trip,
//   each answer's XADD followed by one XACK and one XDEL of the entries they
//   answer;
// - the keeper: the heartbeat (a Lua script with TIME: Redis's clock), the
//   claiming of dead workers' entries, and the goodbye on stop. It is apart
//   from the reader so that a long XREADGROUP or a slow Redis reply to it
//   never delays a heartbeat past its expiry.
// Completion callbacks run on the local server's threads; they only encode
// the answer and queue it for the writer.
//
// LIFECYCLE: running -> draining -> stopped. stop() (and the destructor)
// stops reading, waits for the local server to answer what the worker took
// and for those answers and acknowledgements to be written, then removes the
// worker from the live-workers set (when something is still pending it
// marks the heartbeat expired instead, so others claim it at once) and joins
// the threads; all within shutdown_timeout plus, for that last step, the
// endpoint's command timeout (twice) and connect timeout (twice: a
// reconnect) at worst, whatever state Redis is in; with Redis down (connects
// refused) or up, a few milliseconds. Entries not read stay for the other
// workers.
//
// The local server must outlive the worker (stop or destroy the worker
// first): the worker holds a reference to it. Stopping the server first is
// allowed but answers the calls that reach the worker meanwhile
// shutting_down. Answers of calls still running when stop() gives up are
// dropped (their entries stay pending; see above).
//
// Every member function is thread-safe. Move-only; a moved-from worker does
// nothing (stop() returns, stats() are zeros).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "batch_serving/call_options.hpp"
#include "batch_serving/codec.hpp"
#include "batch_serving/detail/redis_worker_core.hpp"
#include "batch_serving/detail/type_name.hpp"
#include "batch_serving/detail/wire.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/event.hpp"
#include "batch_serving/hook_payload_type.hpp"
#include "batch_serving/redis_worker_options.hpp"
#include "batch_serving/redis_worker_stats.hpp"
#include "batch_serving/result.hpp"
#include "batch_serving/server.hpp"
#include "batch_serving/streaming_server.hpp"

namespace batch_serving {

namespace detail {

template <class In, class Out, class CallIn, class CallOut>
class server_dispatcher final : public worker_dispatcher {
 public:
  server_dispatcher(server<In, Out, CallIn, CallOut>& local, const wire::limits& bounds)
      : local_(local), limits_(bounds) {}

  void dispatch(const wire::request_entry& request, std::chrono::steady_clock::time_point deadline,
                worker_reply reply) noexcept override {
    try {
      result<std::vector<CallIn>> items =
          wire::decode_items<CallIn>(request.items, limits_, request.item_count);
      if (!items.ok()) {
        reply.fail(items.error());
        return;
      }
      call_options options;
      if (deadline != std::chrono::steady_clock::time_point::max()) options.deadline = deadline;
      local_.dispatch_many_async(std::move(*items), options,
                                 [reply = std::move(reply),
                                  bounds = limits_](result<std::vector<CallOut>> out) mutable {
                                   if (!out.ok()) {
                                     reply.fail(out.error());
                                     return;
                                   }
                                   reply.results(wire::results_answer<CallOut>(
                                       reply.call_id(),
                                       std::span<const CallOut>(out->data(), out->size()), bounds));
                                 });
    } catch (const std::exception& e) {
      // Decoding or dispatching ran out of memory or the like; a reply moved
      // into a callback that was destroyed answers by itself.
      reply.fail(error(errc::execution_failed,
                       std::string("the worker could not dispatch: ") + e.what()));
    }
  }

  std::size_t capacity() const noexcept override {
    return local_.batch_size() * local_.partitions();
  }

 private:
  server<In, Out, CallIn, CallOut>& local_;
  wire::limits limits_;
};

// The dispatcher of a streaming server: forwards each event of the call as
// a stream event (worker_reply::event), hooks' entries by codec<HookPayload>
// (void: none can travel).
template <class In, class Out, class CallIn, class CallOut, class HookPayload>
class stream_dispatcher final : public worker_dispatcher {
 public:
  using local_server = server<In, Out, CallIn, CallOut, true>;

  stream_dispatcher(local_server& local, const wire::limits& bounds)
      : local_(local), limits_(bounds) {}

  void dispatch(const wire::request_entry& request, std::chrono::steady_clock::time_point deadline,
                worker_reply reply) noexcept override {
    try {
      result<std::vector<CallIn>> items =
          wire::decode_items<CallIn>(request.items, limits_, request.item_count);
      if (!items.ok()) {
        reply.fail(items.error());
        return;
      }
      call_options options;
      if (deadline != std::chrono::steady_clock::time_point::max()) options.deadline = deadline;
      // Shared: the local server's callback is a std::function (copyable).
      auto shared = std::make_shared<worker_reply>(std::move(reply));
      auto on_event = [shared, bounds = limits_](event<CallOut> ev) {
        forward(*shared, std::move(ev), bounds);
      };
      if (request.form == wire::call_form::stream_one) {
        local_.dispatch_async(std::move(items->front()), options, std::move(on_event));
      } else {
        local_.dispatch_many_async(std::span<const CallIn>(items->data(), items->size()), options,
                                   std::move(on_event));
      }
    } catch (const std::exception& e) {
      reply.fail(error(errc::execution_failed,
                       std::string("the worker could not dispatch: ") + e.what()));
    }
  }

  std::size_t capacity() const noexcept override {
    return local_.batch_size() * local_.partitions();
  }
  bool streaming() const noexcept override { return true; }

 private:
  static void forward(worker_reply& reply, event<CallOut>&& ev,
                      const wire::limits& bounds) noexcept {
    try {
      switch (ev.kind()) {
        case event_kind::batch:
          reply.event(wire::results_answer<CallOut>(reply.call_id(),
                                                    std::span<const CallOut>(ev.batch().data(),
                                                                             ev.batch().size()),
                                                    bounds, 0));
          return;
        case event_kind::item:
          reply.event(wire::results_answer<CallOut>(reply.call_id(),
                                                    std::span<const CallOut>(&ev.item(), 1), bounds,
                                                    0));
          return;
        case event_kind::hook: reply.event(hook_answer(reply.call_id(), ev, bounds)); return;
        case event_kind::error: reply.fail(ev.error()); return;
        case event_kind::end: reply.end(); return;
      }
    } catch (const std::exception& e) {
      reply.fail(error(errc::execution_failed,
                       std::string("the worker could not send an event: ") + e.what()));
    }
  }

  // The hook event of `ev`, its entries encoded by codec<HookPayload>.
  static result<wire::answer_entry> hook_answer(const std::string& call_id,
                                                const event<CallOut>& ev,
                                                const wire::limits& bounds) {
    if constexpr (std::is_void_v<HookPayload>) {
      return error(errc::execution_failed,
                   "hook '" + ev.hook() +
                       "' cannot travel over Redis: the worker was attached without a hook "
                       "payload type (pass batch_serving::hook_payload_type<P>{} to redis_worker)");
    } else {
      std::span<const HookPayload> entries;
      try {
        entries = ev.template payload<HookPayload>();
      } catch (const serving_error& e) {
        return error(errc::execution_failed,
                     std::string(e.what()) + " (the worker was attached with hook_payload_type<" +
                         type_name(typeid(HookPayload)) + ">)");
      }
      result<std::string> bytes = wire::encode_items(entries, bounds, "hook payload", "entry");
      if (!bytes.ok()) return bytes.error();
      wire::answer_entry answer = wire::hook_event(call_id, 0, ev.hook(), std::move(*bytes));
      answer.payload_type = type_name(typeid(HookPayload));
      if (answer.payload_type.size() > wire::max_type_name_bytes) answer.payload_type.clear();
      return answer;
    }
  }

  local_server& local_;
  wire::limits limits_;
};

}  // namespace detail

template <class In, class Out, class CallIn, class CallOut>
  requires encodable<CallIn> && encodable<CallOut>
class redis_worker {
 public:
  // Attaches `local` to Redis as a worker of serving `serving_name` (see
  // the top of this file). Blocks while it connects (up to the endpoint's
  // connect timeout per connection), creates the group and writes the first
  // heartbeat. Throws serving_error: invalid_argument for a bad name, a bad
  // option (naming the field) or credentials Redis refuses; unavailable when
  // Redis cannot be reached (the message names the endpoint, never the
  // password). Allocates (connections, threads).
  redis_worker(server<In, Out, CallIn, CallOut>& local, std::string_view serving_name,
               redis_worker_options options = {})
      : core_(make_core(local, serving_name, std::move(options))) {}
  // The same under the local server's own name (invalid_argument if it has
  // none).
  explicit redis_worker(server<In, Out, CallIn, CallOut>& local, redis_worker_options options = {})
      : redis_worker(local, local.name(), std::move(options)) {}

  // A streaming server, the same way; its hooks' entries travel as
  // codec<HookPayload> (see STREAMING above; without it no hook can travel).
  template <class HookPayload = void>
  redis_worker(server<In, Out, CallIn, CallOut, true>& local, std::string_view serving_name,
               redis_worker_options options = {}, hook_payload_type<HookPayload> /*hooks*/ = {})
      : core_(make_stream_core<HookPayload>(local, serving_name, std::move(options))) {}
  template <class HookPayload = void>
  explicit redis_worker(server<In, Out, CallIn, CallOut, true>& local,
                        redis_worker_options options = {},
                        hook_payload_type<HookPayload> hooks = {})
      : redis_worker(local, local.name(), std::move(options), hooks) {}

  redis_worker(redis_worker&&) noexcept = default;
  redis_worker& operator=(redis_worker&& other) noexcept {
    if (this != &other) {
      stop();
      core_ = std::move(other.core_);
    }
    return *this;
  }
  redis_worker(const redis_worker&) = delete;
  redis_worker& operator=(const redis_worker&) = delete;
  // Performs stop().
  ~redis_worker() = default;

  // Shuts down as the top of this file describes. Blocks up to
  // shutdown_timeout plus the goodbye's bound (above). Idempotent and thread-safe
  // (a second caller waits for the first to finish). Never throws. Call it
  // from a thread of your own, not from a completion callback or batch
  // function of the local server (it waits for their calls to finish).
  void stop() noexcept {
    if (core_) core_->stop();
  }

  // A snapshot of the counters (redis_worker_stats.hpp). Thread-safe,
  // lock-free, never allocates.
  redis_worker_stats stats() const noexcept {
    return core_ ? core_->stats() : redis_worker_stats{};
  }

  // The consumer id and the serving name it runs under (empty once moved
  // from). Thread-safe, never block or allocate.
  const std::string& consumer_id() const noexcept {
    static const std::string none;
    return core_ ? core_->consumer_id() : none;
  }
  const std::string& serving_name() const noexcept {
    static const std::string none;
    return core_ ? core_->serving() : none;
  }

 private:
  static std::unique_ptr<detail::redis_worker_core> make_core(
      server<In, Out, CallIn, CallOut>& local, std::string_view serving_name,
      redis_worker_options options) {
    auto dispatcher =
        std::make_unique<detail::server_dispatcher<In, Out, CallIn, CallOut>>(local,
                                                                              options.limits);
    return std::make_unique<detail::redis_worker_core>(serving_name, std::move(options),
                                                       std::move(dispatcher));
  }

  template <class HookPayload>
  static std::unique_ptr<detail::redis_worker_core> make_stream_core(
      server<In, Out, CallIn, CallOut, true>& local, std::string_view serving_name,
      redis_worker_options options) {
    static_assert(std::is_void_v<HookPayload> || encodable<HookPayload>,
                  "hook_payload_type<P>: P needs a codec (codec.hpp)");
    auto dispatcher =
        std::make_unique<detail::stream_dispatcher<In, Out, CallIn, CallOut, HookPayload>>(
            local, options.limits);
    return std::make_unique<detail::redis_worker_core>(serving_name, std::move(options),
                                                       std::move(dispatcher));
  }

  std::unique_ptr<detail::redis_worker_core> core_;
};

}  // namespace batch_serving
