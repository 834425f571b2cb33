// redis_client<In, Out>: calls a serving that workers run in other processes,
// by its name, over Redis Streams (issue 12; the protocol is the comment at
// the top of detail/wire.hpp). The API is a local server's (server.hpp):
//
//   batch_serving::redis_client<int, int> squares({
//       .endpoint = {.host = "127.0.0.1", .port = 6379},
//       .serving = "squares",
//   });                                                   // throws on a wrong password
//   int four = squares.dispatch(2).value();               // one round trip (or a share of one)
//   auto both = squares.dispatch_many({2, 3});            // result: {4, 9}
//   auto later = squares.dispatch_async(5);               // future<int>
//   squares.dispatch_async(6, {}, [](batch_serving::result<int> r) { /* receiver thread */ });
//   auto soon = squares.dispatch(7, {.timeout = std::chrono::milliseconds(20)});
//
// Every call gets exactly one answer: the first answer a worker writes for it
// (later duplicates, answers to calls this client does not have outstanding,
// and malformed entries are counted and dropped, never delivered), or an error:
// - invalid_argument: bad call_options, an entry over limits.max_entry_bytes
//   (nothing is sent), or results that do not decode as Out (or not as many
//   as items).
// - overloaded: max_outstanding calls are already outstanding; at once.
// - no_serving: no worker of the serving has a live heartbeat (the
//   workers_set scores compared with Redis's TIME, cached for
//   worker_check_interval); at once or after one round trip, nothing sent.
//   A call already sent whose workers all vanish (no live heartbeat left,
//   counted twice worker_check_interval apart) is answered no_serving then,
//   deadline or not; a worker that comes back may still run it.
// - timeout: by the call's deadline (plus the timer thread's wake-up), also
//   when no worker answers; the request carries the time left (budget_us), so
//   a worker does not run an expired call.
// - cancelled: the call's stop_token was triggered or future::cancel(); the
//   worker may still run it (its answer is dropped).
// - unavailable: Redis could not be reached, or a connection broke while the
//   call was in flight. The call may or may not have run. The client
//   reconnects with backoff and keeps reading its reply stream where it left
//   off; later calls succeed once Redis is back. While either connection is
//   down, calls are answered unavailable at once (nothing is queued for
//   later), and every call sent before the reply connection broke is
//   answered unavailable when it breaks (its late answer is dropped).
// - shutting_down: stop() or the destructor answered it.
//
// Pipelining: a sender thread writes every call queued since its last write
// in one pipeline (one round trip for up to max_pipeline calls); a lone call
// is written at once. Under load many calls share a round trip
// (stats().calls_sent / stats().round_trips).
//
// Threads and lifecycle: three threads per client (sender, receiver, deadline
// timer), each of the first two with its own Redis connection. running ->
// stopped: stop() (and the destructor) answers every outstanding call
// shutting_down and joins the threads; it interrupts a Redis command in
// progress, and may wait for one connect attempt (endpoint.connect_timeout
// for the connect and again for the login) when Redis is being reconnected. Callbacks run on the
// thread that answered the call (usually the receiver): keep them short; a blocking dispatch there
// is refused (invalid_argument) since it would wait for its own thread. Destroying the client
// there answers its calls at once and leaves the joins to a detached thread. Every member function
// is thread-safe. Not movable. A future or callback may outlive the client: it holds the shared
// core.
//
// The reply stream: the receiver reads it with XREAD BLOCK reply_block,
// deletes what it read (XTRIM MINID, pipelined with the next read) and
// keeps a PEXPIRE of reply_stream_ttl on it, refreshed every third of that,
// so a dead client's stream disappears by itself.
//
// Streaming calls (dispatch_stream, dispatch_many_stream and their callback
// forms) are below, with their rules for order and re-runs. By-name dispatch
// that tries a local server first, then Redis: distributed.hpp.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "batch_serving/call_options.hpp"
#include "batch_serving/codec.hpp"
#include "batch_serving/detail/admission.hpp"
#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/collected_stream.hpp"
#include "batch_serving/detail/completion_flag.hpp"
#include "batch_serving/detail/future_state.hpp"
#include "batch_serving/detail/hook_payload.hpp"
#include "batch_serving/detail/mutex.hpp"
#include "batch_serving/detail/reconnect_backoff.hpp"
#include "batch_serving/detail/redis_client_core.hpp"
#include "batch_serving/detail/stream_state.hpp"
#include "batch_serving/detail/thread_annotations.hpp"
#include "batch_serving/detail/type_name.hpp"
#include "batch_serving/detail/wire.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/event.hpp"
#include "batch_serving/event_stream.hpp"
#include "batch_serving/future.hpp"
#include "batch_serving/hook_payload_type.hpp"
#include "batch_serving/redis_endpoint.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving {

// Fill with designated initializers; validated once by the constructor,
// which names a bad field in its serving_error(invalid_argument).
struct redis_client_options {
  redis_endpoint endpoint{};
  // The serving's name (wire::check_serving_name).
  std::string serving{};
  // This client's id ([A-Za-z0-9._-], 1..64 bytes), never reused by another
  // process. Empty: "HOST-PID-RANDOM-N", unique per process and instance.
  std::string client_id{};
  // Bounds on entries both ways (request size, result count, nesting).
  detail::wire::limits limits{};
  // Calls admitted and not answered yet; one more is answered overloaded.
  std::size_t max_outstanding = 65'536;
  // The most calls one pipeline (round trip) carries. At least 1.
  std::size_t max_pipeline = 1'024;
  // How long one XREAD of the reply stream blocks in Redis. In 1 ms .. 10 s.
  std::chrono::milliseconds reply_block = std::chrono::milliseconds(100);
  // How long a count of the live workers is trusted. In 1 ms .. 60 s.
  std::chrono::milliseconds worker_check_interval = std::chrono::milliseconds(100);
  // The reply stream's expiry, refreshed every third of it. At least 3 s.
  std::chrono::milliseconds reply_stream_ttl = std::chrono::seconds(60);
  // The timeout of calls whose call_options have neither timeout nor
  // deadline; unset: such calls wait for their answer.
  std::optional<std::chrono::microseconds> default_timeout{};
  detail::reconnect_backoff_options reconnect{};
};

// Counters since construction; a snapshot, each counter read on its own
// (relaxed), so sums across them may be off by calls in progress.
struct redis_client_stats {
  std::uint64_t calls_sent = 0;  // request entries written (XADD replied)
  std::uint64_t round_trips = 0;  // pipelines of XADDs written
  // Answers (and stream events) from the reply stream given to a call.
  std::uint64_t answers_delivered = 0;
  // Answers to calls of ours no longer outstanding; stream events seen
  // already, or of an attempt given up (see dispatch_stream).
  std::uint64_t duplicates_dropped = 0;
  std::uint64_t foreign_dropped = 0;  // answers naming another client, or a call never made
  // Entries failing wire::parse_answer, results of the wrong count, and
  // entries of the wrong kind for their call (a stream event for a plain
  // call, a results answer for a stream).
  std::uint64_t malformed_dropped = 0;
  std::uint64_t timeouts = 0;  // calls answered timeout by this client
  std::uint64_t reconnects = 0;  // connections re-established after a failure
  std::uint64_t refused = 0;  // answered at once: overloaded, no_serving, unavailable, ...
};

namespace detail {

// The state of one remote call: the answer entry the core delivers, decoded
// for the caller by take() (in the caller's thread), or handed to the
// callback (in the thread that answered). Callback = std::nullptr_t: none.
// Shared by the core (until it answers), the caller, and a future (through
// self_, given up in drop()).
template <class Out, bool Many, class Callback = std::nullptr_t>
class remote_call_state final
    : public remote_call,
      public future_state<std::conditional_t<Many, std::vector<Out>, Out>> {
 public:
  using value_type = std::conditional_t<Many, std::vector<Out>, Out>;
  static constexpr bool has_callback = !std::is_same_v<Callback, std::nullptr_t>;

  remote_call_state(std::shared_ptr<redis_client_core> core, std::size_t count, Callback callback)
      : core_(std::move(core)), count_(count), callback_(std::move(callback)) {}

  // Submits the call (once); `self` is this state.
  void start(std::shared_ptr<remote_call_state> self, wire::call_form form, std::string items,
             std::chrono::steady_clock::time_point deadline, const std::stop_token& stop) {
    sequence_.store(core_->submit(std::move(self), form, std::move(items), count_, deadline),
                    std::memory_order_release);
    if (stop.stop_possible() && !done_.is_set()) stop_callback_.emplace(stop, canceller{this});
  }
  // Answers the call `e` without submitting it (refused before it started).
  void refuse(batch_serving::error e) { complete(std::move(e)); }

  // The future's reference: kept until drop().
  void keep_for_future(std::shared_ptr<remote_call_state> self) { self_ = std::move(self); }

  void complete(result<wire::answer_entry> answer) noexcept override {
    answer_.emplace(std::move(answer));
    if constexpr (has_callback) call_dropping_exceptions(callback_, decode_noexcept());
    done_.set();
  }

  void wait() noexcept override { done_.wait(); }
  bool wait_until(std::chrono::steady_clock::time_point deadline) noexcept override {
    return done_.wait_until(deadline);
  }
  bool ready() const noexcept override { return done_.is_set(); }
  result<value_type> take() override { return decode_noexcept(); }
  bool cancel() noexcept override {
    const std::uint64_t sequence = sequence_.load(std::memory_order_acquire);
    return sequence != 0 && core_->cancel(sequence);
  }
  void drop() noexcept override {
    std::shared_ptr<remote_call_state> last = std::move(self_);
    last.reset();
  }

 private:
  struct canceller {
    remote_call_state* state;
    void operator()() const noexcept { state->cancel(); }
  };

  // The answer as the caller's value: decode_results with the expected
  // count; a failure to decode (or to move the value) is invalid_argument.
  result<value_type> decode_noexcept() noexcept {
    try {
      if (!answer_) return batch_serving::error(errc::invalid_argument, "no answer yet");
      if (!answer_->ok()) return answer_->error();
      result<std::vector<Out>> values =
          wire::decode_results<Out>(**answer_, core_->limits(), count_);
      if (!values.ok()) return values.error();
      if constexpr (Many) {
        return std::move(*values);
      } else {
        return std::move(values->front());
      }
    } catch (...) {
      return batch_serving::error(errc::invalid_argument,
                                  "decoding the results threw: " + describe_current_exception());
    }
  }

  std::shared_ptr<redis_client_core> core_;
  std::size_t count_;
  [[no_unique_address]] Callback callback_;
  std::atomic<std::uint64_t> sequence_{0};
  // Written once by complete() before done_ is set; read after it is set.
  std::optional<result<wire::answer_entry>> answer_;
  completion_flag done_;
  std::shared_ptr<remote_call_state> self_;  // only the future's owner touches it
  std::optional<std::stop_callback<canceller>> stop_callback_;
};

// A remote streaming call: the core hands it events in seq order
// (stream_event, then complete with the final one); they become event<Out>
// here, in the thread that hands them over, and are read by an event_stream
// (pull) or passed to a callback (push), as a local stream_call does. Shared
// by the core (until the final answer), the reader (through self_, given up
// by abandon()) and the stop_token's callback.
template <class Out, bool Many, class HookPayload>
class remote_stream_state final : public remote_call, public stream_state<Out> {
 public:
  using callback = std::function<void(event<Out>)>;

  remote_stream_state(std::shared_ptr<redis_client_core> core, std::size_t count, callback on_event)
      : core_(std::move(core)), count_(count), on_event_(std::move(on_event)) {}

  bool has_callback() const noexcept { return static_cast<bool>(on_event_); }

  void start(std::shared_ptr<remote_stream_state> self, std::string items,
             std::chrono::steady_clock::time_point deadline, const std::stop_token& stop) {
    if (!has_callback()) {
      lock_guard<mutex> lock(mu_);
      self_ = self;
    }
    const wire::call_form form = Many ? wire::call_form::stream_many : wire::call_form::stream_one;
    sequence_.store(core_->submit(std::move(self), form, std::move(items), count_, deadline),
                    std::memory_order_release);
    if (stop.stop_possible() && !ended()) stop_callback_.emplace(stop, canceller{this});
  }
  // Ends the stream with `e` without submitting it (refused before it started).
  void refuse(std::shared_ptr<remote_stream_state> self, batch_serving::error e) {
    if (!has_callback()) {
      lock_guard<mutex> lock(mu_);
      self_ = std::move(self);
    }
    complete(std::move(e));
  }

  void stream_event(wire::answer_entry answer) noexcept override { push(to_event(answer)); }
  void complete(result<wire::answer_entry> answer) noexcept override {
    if (!answer.ok()) {
      push(event<Out>::make_error(answer.error()));
    } else {
      push(to_event(*answer));
    }
  }

  std::optional<event<Out>> next() override {
    unique_lock lock(mu_);
    if (reader_done_) return std::nullopt;
    while (events_.empty()) ready_.wait(lock.native());
    event<Out> ev = std::move(events_.front());
    events_.pop_front();
    if (ev.kind() == event_kind::end || ev.kind() == event_kind::error) reader_done_ = true;
    if (ev.kind() == event_kind::end) return std::nullopt;
    return ev;
  }

  bool ready_or_notify(stream_waiter& waiter) override {
    lock_guard<mutex> lock(mu_);
    if (reader_done_ || !events_.empty()) return true;
    waiter_ = &waiter;
    return false;
  }

  void abandon() noexcept override {
    {
      lock_guard<mutex> lock(mu_);
      abandoned_ = true;
      events_.clear();
      waiter_ = nullptr;
    }
    // Stop following the call (a worker may still run it; its events are dropped).
    const std::uint64_t sequence = sequence_.load(std::memory_order_acquire);
    if (sequence != 0) core_->cancel(sequence);
    std::shared_ptr<remote_stream_state> last;
    {
      lock_guard<mutex> lock(mu_);
      last = std::move(self_);
    }
    last.reset();
  }

 private:
  struct canceller {
    remote_stream_state* state;
    void operator()() const noexcept {
      const std::uint64_t sequence = state->sequence_.load(std::memory_order_acquire);
      if (sequence != 0) state->core_->cancel(sequence);
    }
  };

  // What a hook's entries are owned by: the name and the decoded entries.
  struct decoded_hook {
    std::string name;
    std::vector<HookPayload> entries;
  };

  bool ended() {
    lock_guard<mutex> lock(mu_);
    return ended_;
  }

  // `answer` (an event the core ordered) as the caller's event; what does
  // not decode ends the stream with invalid_argument.
  event<Out> to_event(const wire::answer_entry& answer) noexcept {
    try {
      switch (answer.kind) {
        case wire::answer_kind::error:
          return event<Out>::make_error(batch_serving::error(answer.error_code,
                                                             answer.error_message));
        case wire::answer_kind::end: return event<Out>::make_end();
        case wire::answer_kind::hook: return event<Out>::make_hook(hook_of(answer));
        case wire::answer_kind::results:
        case wire::answer_kind::batch: break;
      }
      result<std::vector<Out>> values = wire::decode_items<Out>(answer.results, core_->limits(),
                                                                std::nullopt, "results", "result");
      if (!values.ok()) return event<Out>::make_error(values.error());
      if constexpr (Many) {
        results_seen_ += values->size();
        if (results_seen_ > count_) {
          return event<Out>::make_error(batch_serving::error(
              errc::invalid_argument, "the stream's batch events carry " +
                                          std::to_string(results_seen_) + " results for " +
                                          std::to_string(count_) + " items"));
        }
        return event<Out>::make_batch(std::move(*values));
      } else {
        if (values->size() != 1) {
          return event<Out>::make_error(batch_serving::error(
              errc::invalid_argument, "a dispatch_stream result event carries " +
                                          std::to_string(values->size()) + " results, not 1"));
        }
        return event<Out>::make_item(std::move(values->front()));
      }
    } catch (...) {
      return event<Out>::make_error(batch_serving::error(errc::invalid_argument,
                                                         "decoding a stream event threw: " +
                                                             describe_current_exception()));
    }
  }

  // The hook's entries decoded as HookPayload, or kept undecoded saying why.
  hook_slice hook_of(const wire::answer_entry& answer) {
    const std::string sent =
        answer.payload_type.empty() ? std::string("entries") : answer.payload_type + " entries";
    std::string why;
    if constexpr (std::is_void_v<HookPayload>) {
      why = "it came over Redis as " + sent +
            ", and the stream was started without a hook payload type "
            "(dispatch_stream<P> / dispatch_many_stream<P>)";
    } else {
      result<std::vector<HookPayload>> entries =
          wire::decode_items<HookPayload>(answer.hook_payload, core_->limits(), std::nullopt,
                                          "hook payload", "entry");
      if (entries.ok()) {
        auto owner = std::make_shared<decoded_hook>(decoded_hook{.name = answer.hook_name,
                                                                 .entries = std::move(*entries)});
        return hook_slice{&owner->name, owner, &typeid(HookPayload), owner->entries.data(),
                          owner->entries.size()};
      }
      why = "it came over Redis as " + sent + " that do not decode as " +
            type_name(typeid(HookPayload)) +
            " (the stream's hook payload type): " + entries.error().message();
    }
    auto owner =
        std::make_shared<undecoded_hook_payload>(undecoded_hook_payload{.name = answer.hook_name,
                                                                        .why = std::move(why)});
    return hook_slice{&owner->name, owner, &typeid(undecoded_hook_payload), owner.get(), 0};
  }

  // Queues `ev` unless the stream ended already; the first end or error is the last.
  void push(event<Out>&& ev) noexcept {
    const bool final = ev.kind() == event_kind::end || ev.kind() == event_kind::error;
    stream_waiter* waiter = nullptr;
    {
      lock_guard<mutex> lock(mu_);
      if (ended_) return;
      ended_ = final;
      if (!abandoned_) {
        events_.push_back(std::move(ev));
        waiter = std::exchange(waiter_, nullptr);
      }
    }
    if (final) {
      // The core may still hold the call (a decode failure ends it here).
      const std::uint64_t sequence = sequence_.load(std::memory_order_acquire);
      if (sequence != 0) core_->cancel(sequence);
    }
    if (on_event_) {
      pump();
    } else {
      ready_.notify_all();
    }
    // Last: the reader may resume right here and abandon the stream.
    if (waiter != nullptr) waiter->event_ready();
  }

  // Runs the callback for queued events, in order, one thread at a time.
  void pump() noexcept {
    unique_lock lock(mu_);
    if (pumping_) return;
    pumping_ = true;
    while (!events_.empty()) {
      event<Out> ev = std::move(events_.front());
      events_.pop_front();
      lock.unlock();
      call_dropping_exceptions(on_event_, std::move(ev));  // documented: dropped
      lock.lock();
    }
    pumping_ = false;
  }

  std::shared_ptr<redis_client_core> core_;
  std::size_t count_;
  std::size_t results_seen_ = 0;  // only the thread handing events over touches it
  callback on_event_;
  std::atomic<std::uint64_t> sequence_{0};

  mutex mu_;
  std::condition_variable ready_;  // pull: events_ became non-empty
  std::deque<event<Out>> events_ BATCH_SERVING_GUARDED_BY(mu_);
  bool ended_ BATCH_SERVING_GUARDED_BY(mu_) = false;
  bool abandoned_ BATCH_SERVING_GUARDED_BY(mu_) = false;
  bool reader_done_ BATCH_SERVING_GUARDED_BY(mu_) = false;
  bool pumping_ BATCH_SERVING_GUARDED_BY(mu_) = false;
  std::shared_ptr<remote_stream_state> self_ BATCH_SERVING_GUARDED_BY(mu_);
  stream_waiter* waiter_ BATCH_SERVING_GUARDED_BY(mu_) = nullptr;  // a non-blocking reader
  std::optional<std::stop_callback<canceller>> stop_callback_;
};

}  // namespace detail

template <encodable In, encodable Out>
class redis_client {
 public:
  using input_type = In;    // what co_dispatch (coroutine.hpp) takes
  using output_type = Out;  // and answers
  // Validates the options and connects (see redis_client_options). Throws
  // serving_error(invalid_argument) naming a bad field, or when Redis refuses
  // the credentials. An unreachable Redis is not an error here: calls answer
  // unavailable until it is back. Blocks for the connects (each bounded by
  // endpoint.connect_timeout); allocates the threads.
  explicit redis_client(const redis_client_options& options)
      : core_(std::make_shared<detail::redis_client_core>(options)) {}
  // From a callback (the client's own thread) it cannot join that thread: it
  // answers the outstanding calls and a detached thread joins the rest.
  ~redis_client() {
    if (!core_->on_own_thread()) {
      core_->stop();
      return;
    }
    core_->stop();  // answers the calls, asks the threads to end
    try {
      std::thread([core = core_] { core->stop(); }).detach();
    } catch (...) {
      // No thread to join them: keep the core alive for good rather than
      // destroy it on a thread of its own (a join of itself).
      new std::shared_ptr<detail::redis_client_core>(core_);  // NOLINT: a deliberate leak
    }
  }
  redis_client(const redis_client&) = delete;
  redis_client& operator=(const redis_client&) = delete;

  // Blocks until the answer is there. The item is encoded in this thread.
  // Allocates the call state and the entry.
  result<Out> dispatch(const In& item, const call_options& options = {}) {
    if (core_->on_own_thread()) return refused_on_own_thread();
    return wait_and_take(start_one(item, options, nullptr));
  }

  // Blocks until the answers of all items are there, in the items' order.
  // An empty batch is invalid_argument.
  result<std::vector<Out>> dispatch_many(std::span<const In> items,
                                         const call_options& options = {}) {
    if (core_->on_own_thread()) return refused_on_own_thread();
    return wait_and_take(start_many(items, options, nullptr));
  }
  result<std::vector<Out>> dispatch_many(std::initializer_list<In> items,
                                         const call_options& options = {}) {
    return dispatch_many(std::span<const In>(items.begin(), items.size()), options);
  }
  result<std::vector<Out>> dispatch_many(const std::vector<In>& items,
                                         const call_options& options = {}) {
    return dispatch_many(std::span<const In>(items), options);
  }

  // Never blocks on the work (the item is encoded in this thread).
  future<Out> dispatch_async(const In& item, const call_options& options = {}) {
    return future<Out>(to_future(start_one(item, options, nullptr)));
  }
  future<std::vector<Out>> dispatch_many_async(std::span<const In> items,
                                               const call_options& options = {}) {
    return future<std::vector<Out>>(to_future(start_many(items, options, nullptr)));
  }
  future<std::vector<Out>> dispatch_many_async(std::initializer_list<In> items,
                                               const call_options& options = {}) {
    return dispatch_many_async(std::span<const In>(items.begin(), items.size()), options);
  }
  future<std::vector<Out>> dispatch_many_async(const std::vector<In>& items,
                                               const call_options& options = {}) {
    return dispatch_many_async(std::span<const In>(items), options);
  }

  // Never blocks on the work: `done(result)` runs once, on the thread that
  // answered the call (the receiver, the timer, the sender, or this thread
  // when it is refused at once). Exceptions it throws are dropped.
  template <class Callback>
    requires std::invocable<Callback&, result<Out>>
  void dispatch_async(const In& item, Callback&& done) {
    dispatch_async(item, call_options{}, std::forward<Callback>(done));
  }
  template <class Callback>
    requires std::invocable<Callback&, result<std::vector<Out>>>
  void dispatch_many_async(std::span<const In> items, Callback&& done) {
    dispatch_many_async(items, call_options{}, std::forward<Callback>(done));
  }
  template <class Callback>
    requires std::invocable<Callback&, result<std::vector<Out>>>
  void dispatch_many_async(std::initializer_list<In> items, const call_options& options,
                           Callback&& done) {
    dispatch_many_async(std::span<const In>(items.begin(), items.size()), options,
                        std::forward<Callback>(done));
  }
  template <class Callback>
    requires std::invocable<Callback&, result<Out>>
  void dispatch_async(const In& item, const call_options& options, Callback&& done) {
    (void)start_one(item, options, std::forward<Callback>(done));
  }
  template <class Callback>
    requires std::invocable<Callback&, result<std::vector<Out>>>
  void dispatch_many_async(std::span<const In> items, const call_options& options,
                           Callback&& done) {
    (void)start_many(items, options, std::forward<Callback>(done));
  }

  // ---- streaming (a streaming_server attached by a redis_worker) ----------
  // The events of one call, as a local streaming server gives them
  // (streaming_server.hpp): dispatch_stream gives the item's hook events then
  // an item event, dispatch_many_stream per slice its hook events then a
  // batch event; an end or an error event is the last. HookPayload: the type
  // the worker encodes hook entries as (hook_payload_type.hpp);
  // event::payload<HookPayload>() reads them, and without it (void) every
  // hook event's payload<P>() throws invalid_argument saying so. Never
  // blocks on the work (the items are encoded in this thread); reading the
  // stream blocks for each event. call_options as for plain calls: the
  // deadline ends the stream with a timeout error event, a stop request
  // with a cancelled one, stop() with a shutting_down one, and the errors of
  // plain calls above end a stream the same way; abandoning the stream
  // (destroying it before its end) stops following the call. In each case
  // the worker may still run the call; its later events are dropped.
  //
  // Order and re-runs: events reach the caller in the worker's seq order
  // (events that come early wait for their turn, duplicates are dropped and
  // counted in stats().duplicates_dropped, malformed ones in
  // malformed_dropped). A worker that dies mid-stream leaves the call to
  // another worker, which runs it again from the start, possibly cut into
  // other batches. The client follows the first attempt it sees (each event
  // names its attempt, see detail/wire.hpp): if another attempt's events
  // come before any event was delivered it follows that one instead; once
  // events were delivered, they end the stream with an unavailable error
  // ("the worker running the stream was lost after N events ...; the call
  // may have run twice").
  template <class HookPayload = void>
  event_stream<Out> dispatch_stream(const In& item, const call_options& options = {}) {
    return start_stream<false, HookPayload>(std::span<const In>(&item, 1), options, {});
  }
  template <class HookPayload = void>
  event_stream<Out> dispatch_many_stream(std::span<const In> items,
                                         const call_options& options = {}) {
    return start_stream<true, HookPayload>(items, options, {});
  }
  template <class HookPayload = void>
  event_stream<Out> dispatch_many_stream(std::initializer_list<In> items,
                                         const call_options& options = {}) {
    return dispatch_many_stream<HookPayload>(std::span<const In>(items.begin(), items.size()),
                                             options);
  }
  template <class HookPayload = void>
  event_stream<Out> dispatch_many_stream(const std::vector<In>& items,
                                         const call_options& options = {}) {
    return dispatch_many_stream<HookPayload>(std::span<const In>(items), options);
  }

  // Callback forms: `on_event(event)` runs for each event in order, one at a
  // time, on the thread that handed it over (usually the receiver; keep it
  // short), or in this thread when refused at once; the last event is `end`
  // or `error`. Exceptions it throws are dropped.
  template <class HookPayload = void, class Callback>
    requires std::invocable<Callback&, event<Out>>
  void dispatch_stream_async(const In& item, const call_options& options, Callback&& on_event) {
    (void)start_stream<false, HookPayload>(
        std::span<const In>(&item, 1), options,
        std::function<void(event<Out>)>(std::forward<Callback>(on_event)));
  }
  template <class HookPayload = void, class Callback>
    requires std::invocable<Callback&, event<Out>>
  void dispatch_many_stream_async(std::span<const In> items, const call_options& options,
                                  Callback&& on_event) {
    (void)start_stream<true, HookPayload>(
        items, options, std::function<void(event<Out>)>(std::forward<Callback>(on_event)));
  }

  // Answers every outstanding call shutting_down and joins the threads;
  // later calls are answered shutting_down. Idempotent; blocks at most for
  // one Redis command in progress (interrupted). From a callback it answers
  // the calls and lets the destructor join.
  void stop() { core_->stop(); }

  // Never blocks, never allocates.
  redis_client_stats stats() const noexcept { return core_->stats(); }
  // This client's id, and its reply stream's key.
  const std::string& client_id() const noexcept { return core_->client_id(); }
  const std::string& reply_stream() const noexcept { return core_->reply_stream(); }

 private:
  template <bool Many, class Callback = std::nullptr_t>
  using state = detail::remote_call_state<Out, Many, std::decay_t<Callback>>;

  static batch_serving::error refused_on_own_thread() {
    return {errc::invalid_argument,
            "redis_client: a blocking dispatch from the client's own thread (a completion "
            "callback) would wait for itself; use dispatch_async"};
  }

  template <class State>
  static result<typename State::value_type> wait_and_take(const std::shared_ptr<State>& s) {
    s->wait();
    return s->take();
  }
  template <class State>
  static detail::future_state<typename State::value_type>* to_future(std::shared_ptr<State> s) {
    State* raw = s.get();
    raw->keep_for_future(std::move(s));
    return raw;
  }

  // The call's deadline (time_point::max(): none), or an error for bad options.
  result<std::chrono::steady_clock::time_point> deadline_of(const call_options& options) const {
    using clock = std::chrono::steady_clock;
    clock::time_point deadline = clock::time_point::max();
    std::optional<std::chrono::microseconds> timeout = options.timeout;
    if (!timeout && !options.deadline) timeout = core_->default_timeout();
    if (timeout) {
      if (timeout->count() < 0) {
        return batch_serving::error(errc::invalid_argument,
                                    "call_options.timeout must not be negative (got " +
                                        std::to_string(timeout->count()) + " us)");
      }
      deadline = detail::saturating_add(clock::now(), detail::saturated(*timeout));
    }
    if (options.deadline && *options.deadline < deadline) deadline = *options.deadline;
    return deadline;
  }

  template <class State>
  void launch(const std::shared_ptr<State>& s, result<std::string> items,
              detail::wire::call_form form, const call_options& options) {
    if (!items.ok()) return s->refuse(items.error());
    result<std::chrono::steady_clock::time_point> deadline = deadline_of(options);
    if (!deadline.ok()) return s->refuse(deadline.error());
    if (options.stop_token.stop_requested()) {
      return s->refuse(batch_serving::error(errc::cancelled,
                                            "the call's stop_token was triggered already"));
    }
    s->start(s, form, std::move(*items), *deadline, options.stop_token);
  }

  template <class Callback>
  std::shared_ptr<state<false, Callback>> start_one(const In& item, const call_options& options,
                                                    Callback&& done) {
    auto s = std::make_shared<state<false, Callback>>(core_, 1, std::forward<Callback>(done));
    launch(s, detail::wire::encode_items<In>(std::span<const In>(&item, 1), core_->limits()),
           detail::wire::call_form::one, options);
    return s;
  }

  template <class Callback>
  std::shared_ptr<state<true, Callback>> start_many(std::span<const In> items,
                                                    const call_options& options, Callback&& done) {
    auto s =
        std::make_shared<state<true, Callback>>(core_, items.size(), std::forward<Callback>(done));
    if (items.empty()) {
      s->refuse(batch_serving::error(errc::invalid_argument, "dispatch_many: an empty batch"));
    } else {
      launch(s, detail::wire::encode_items<In>(items, core_->limits()),
             detail::wire::call_form::many, options);
    }
    return s;
  }

  template <bool Many, class HookPayload>
  event_stream<Out> start_stream(std::span<const In> items, const call_options& options,
                                 std::function<void(event<Out>)> on_event) {
    static_assert(std::is_void_v<HookPayload> || encodable<HookPayload>,
                  "dispatch_stream<P>: P needs a codec (codec.hpp)");
    using stream = detail::remote_stream_state<Out, Many, HookPayload>;
    auto s = std::make_shared<stream>(core_, items.size(), std::move(on_event));
    const bool pushed = s->has_callback();
    auto handle = [&] { return pushed ? event_stream<Out>(nullptr) : event_stream<Out>(s.get()); };
    auto refuse = [&](batch_serving::error e) {
      event_stream<Out> events = handle();
      s->refuse(s, std::move(e));
      return events;
    };
    if (items.empty()) {
      return refuse(batch_serving::error(errc::invalid_argument,
                                         "dispatch_many_stream: an empty batch"));
    }
    result<std::string> encoded = detail::wire::encode_items<In>(items, core_->limits());
    if (!encoded.ok()) return refuse(encoded.error());
    result<std::chrono::steady_clock::time_point> deadline = deadline_of(options);
    if (!deadline.ok()) return refuse(deadline.error());
    if (options.stop_token.stop_requested()) {
      return refuse(batch_serving::error(errc::cancelled,
                                         "the call's stop_token was triggered already"));
    }
    event_stream<Out> events = handle();
    s->start(s, std::move(*encoded), *deadline, options.stop_token);
    return events;
  }

  std::shared_ptr<detail::redis_client_core> core_;
};

}  // namespace batch_serving
