// The batching engine behind a server: one queue of calls, N partition
// threads that form executions from it and run the batch function.
//
// Lifecycle: starting -> running -> draining -> stopped.
//   starting: partition threads create their state (init); no calls yet.
//   running:  submit() queues calls; partitions execute batches.
//   draining: submit() refuses (shutting_down); queued work runs at once,
//             without waiting for company, until the queue is empty or the
//             shutdown deadline passes.
//   stopped:  whatever was not finished was answered shutting_down.
//
// Locking: mu_ guards the queue, the lifecycle and each partition's list of
// in-flight slices. User code (batch functions, callbacks, user types' copy
// and move) never runs under mu_: a partition records which slices of which
// calls it takes under mu_, then moves their inputs out after unlocking (the
// slice references keep the calls alive).
//
// The executors own the clock: an idle partition sleeps until a full batch is
// queued or the batch window's batch_timeout expires, whichever first. A
// window opens when an item arrives at an empty queue, or when a full batch
// leaves items waiting behind it; only the head of the queue keeps it.
// Calls with a deadline are also watched by one deadline_timer thread (started
// by the first such call), which answers them timeout at their deadline
// wherever they are.
//
// Calls that finish early (timed out, cancelled) leave the queue at once
// (it is doubly linked); their items never run. A partition that reaches a
// call whose deadline passed before the timer fired answers it timeout
// itself, and skips calls that finished otherwise (a failed slice of a
// split call).
//
// Backpressure: with max_queue, a call that would take the queue past it is
// refused with overloaded at once.
//
// Failure isolation (isolate_failures): a failed execution with slices of
// several calls is run again in halves, recursively; only slices that fail
// on their own get execution_failed.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "batch_serving/detail/adaptive_lock.hpp"
#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/call.hpp"
#include "batch_serving/detail/cpu_relax.hpp"
#include "batch_serving/detail/deadline_timer.hpp"
#include "batch_serving/detail/spin_estimate.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/execution_context.hpp"
#include "batch_serving/server_stats.hpp"

namespace batch_serving::detail {

// Server options after defaults were applied and values validated.
struct core_options {
  std::string name;
  std::size_t batch_size = 1;
  clock::duration batch_timeout{};
  std::size_t partitions = 1;
  std::size_t max_queue = SIZE_MAX;  // SIZE_MAX: unbounded
  std::optional<clock::duration> default_timeout;
  bool isolate_failures = false;
  clock::duration shutdown_timeout{};
};

template <class In, class Out>
class server_core final : public intake<In, Out>,
                          public std::enable_shared_from_this<server_core<In, Out>> {
 public:
  // `hooks`: the hook names a streaming serving declared (may be empty).
  server_core(handler_factory<In, Out> factory, core_options options,
              std::vector<std::string> hooks = {})
      : factory_(std::move(factory)),
        options_(std::move(options)),
        hooks_(std::move(hooks)),
        partitions_(options_.partitions),
        timer_([this](call_base& c) { time_out(c); }) {
    if (options_.isolate_failures && !hooks_.empty()) {
      throw serving_error(errc::invalid_argument,
                          "server_options.isolate_failures cannot be used with a streaming "
                          "serving that declares hooks: hook events of a failed execution "
                          "were already delivered and cannot be taken back");
    }
  }

  ~server_core() override = default;

  const core_options& options() const noexcept { return options_; }

  // Starts the partition threads and waits until each created its state.
  // Rethrows the first exception a partition's init threw (after stopping
  // the others).
  void start() {
    std::size_t started = 0;
    try {
      for (; started < partitions_.size(); ++started) {
        partitions_[started].thread = std::thread([self = this->shared_from_this(), started] {
          self->run_partition(started);
        });
      }
    } catch (...) {
      abort_start(started);
      throw;
    }
    std::unique_lock lock(mu_);
    state_cv_.wait(lock, [&] { return inits_done_ == partitions_.size(); });
    if (init_error_) {
      auto failure = init_error_;
      lock.unlock();
      abort_start(partitions_.size());
      std::rethrow_exception(failure);
    }
    for (const auto& part : partitions_) own_threads_.push_back(part.thread.get_id());
    state_ = lifecycle::running;
  }

  std::optional<error> submit(call<In, Out>& c) override {
    // The clock is read only when needed (a deadline to set or check, a batch
    // window to open): at ~30 ns it would be a third of a queued call's cost.
    std::optional<clock::time_point> now;
    if (!c.has_deadline() && options_.default_timeout) {
      now = clock::now();
      c.set_deadline(*now + *options_.default_timeout);
    }
    if (c.has_deadline() && !now) now = clock::now();
    if (c.has_deadline() && c.deadline() <= *now) {
      calls_timed_out_.fetch_add(1, std::memory_order_relaxed);
      return error(errc::timeout, "server " + display_name() +
                                      ": the call's deadline passed before it was queued");
    }
    if (c.size() > options_.max_queue) {
      return error(errc::invalid_argument, "an explicit batch of " + std::to_string(c.size()) +
                                               " items can never fit the queue of server " +
                                               display_name() + " (max_queue " +
                                               std::to_string(options_.max_queue) + ")");
    }
    bool wake = false;
    std::optional<std::size_t> overloaded_at;  // items queued when the call was refused
    {
      const auto lock = lock_adaptively(mu_);
      if (state_ != lifecycle::running) {
        ++calls_rejected_;
        return refusal();
      }
      if (queued_items_ + c.size() > options_.max_queue) {
        ++calls_overloaded_;
        overloaded_at = queued_items_;
      } else if (auto no_timer = timer_for(c)) {
        ++calls_overloaded_;
        return no_timer;
      } else {
        wake = enqueue(c, now);
      }
    }
    if (overloaded_at) {
      return error(errc::overloaded, "server " + display_name() +
                                         " is overloaded: " + std::to_string(*overloaded_at) +
                                         " items queued (max_queue " +
                                         std::to_string(options_.max_queue) + ")");
    }
    if (wake) work_cv_.notify_one();
    if (c.has_deadline()) timer_.watch(c);
    return std::nullopt;
  }

  // Answers `c` cancelled unless it already finished; its queued items are
  // then skipped and the results of its running ones discarded. Returns true
  // if this cancelled it. Thread-safe; never blocks on executions.
  bool cancel(call<In, Out>& c) noexcept {
    if (!c.fail(error(errc::cancelled, "the call was cancelled by its caller"))) return false;
    calls_cancelled_.fetch_add(1, std::memory_order_relaxed);
    settle_early(c);
    return true;
  }

  // Answers a call cancelled before it was submitted (its stop was already
  // requested), counting it like any other cancellation.
  error cancelled_before_start() noexcept {
    calls_cancelled_.fetch_add(1, std::memory_order_relaxed);
    return error(errc::cancelled, "the call was cancelled by its caller before it was dispatched");
  }

  // Shuts down as documented above; blocks for at most shutdown_timeout (plus
  // the time to answer the leftovers). Idempotent; concurrent calls wait for
  // the first to finish, except from the server's own threads, from inside
  // the stop in progress, or from any completion callback (one that stops its
  // server): that stop may wait for them, so they return at once and it
  // finishes after them.
  void stop() noexcept {
    std::unique_lock lock(mu_);
    if (state_ == lifecycle::draining || state_ == lifecycle::stopped) {
      if (runs_on_own_thread() || call_base::completions_running > 0) return;
      state_cv_.wait(lock, [&] { return stop_finished_; });
      return;
    }
    stopping_thread_ = std::this_thread::get_id();
    state_ = lifecycle::draining;
    drain_deadline_ = clock::now() + options_.shutdown_timeout;
    work_cv_.notify_all();
    state_cv_.wait_until(lock, drain_deadline_, [&] { return all_exited(); });

    // Whatever is left was queued but never started, or is still executing
    // past the deadline: answer it now.
    std::vector<call<In, Out>*> leftovers;
    for (call<In, Out>* c = head_; c != nullptr;) {
      call<In, Out>* next = c->next_in_queue;
      c->next_in_queue = c->prev_in_queue = nullptr;
      c->in_queue = false;
      leftovers.push_back(c);  // takes over the queue's reference
      c = next;
    }
    head_ = tail_ = nullptr;
    queued_items_ = 0;
    std::vector<std::thread> finished_threads;
    std::vector<std::thread> stuck_threads;
    for (auto& part : partitions_) {
      if (!part.exited) {
        for (const auto& s : part.in_flight) {
          s.target->add_ref();
          leftovers.push_back(s.target);
        }
        stuck_threads.push_back(std::move(part.thread));
      } else {
        finished_threads.push_back(std::move(part.thread));
      }
    }
    state_ = lifecycle::stopped;
    work_cv_.notify_all();
    lock.unlock();
    timer_.request_stop();  // every call it watched is answered below

    const error shut_down(errc::shutting_down,
                          "server " + display_name() +
                              " shut down before this call finished (shutdown_timeout passed)");
    for (call<In, Out>* c : leftovers) {
      if (c->fail(shut_down)) {
        calls_shut_down_.fetch_add(1, std::memory_order_relaxed);
        c->complete();
      }
      c->release();
    }
    for (auto& t : finished_threads) join_or_detach(t);
    join_or_detach(timer_thread_);
    // A partition still inside the batch function keeps the core alive
    // through its own reference; its late results are discarded.
    for (auto& t : stuck_threads) {
      if (t.joinable()) t.detach();
    }
    lock.lock();
    stop_finished_ = true;
    state_cv_.notify_all();
  }

  server_stats stats() const {
    server_stats s;
    {
      std::lock_guard lock(mu_);
      s.calls_accepted = calls_accepted_;
      s.items_accepted = items_accepted_;
      s.calls_rejected = calls_rejected_;
      s.calls_overloaded = calls_overloaded_;
    }
    s.executions = executions_.load(std::memory_order_relaxed);
    s.items_executed = items_executed_.load(std::memory_order_relaxed);
    s.failed_executions = failed_executions_.load(std::memory_order_relaxed);
    s.calls_shut_down = calls_shut_down_.load(std::memory_order_relaxed);
    s.calls_failed = calls_failed_.load(std::memory_order_relaxed);
    s.calls_timed_out = calls_timed_out_.load(std::memory_order_relaxed);
    s.calls_cancelled = calls_cancelled_.load(std::memory_order_relaxed);
    s.isolation_executions = isolation_executions_.load(std::memory_order_relaxed);
    s.calls_isolated = calls_isolated_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  enum class lifecycle { starting, running, draining, stopped };

  // Items [offset, offset + length) of `target`, placed in one execution.
  struct slice {
    call<In, Out>* target;
    std::size_t offset;
    std::size_t length;
  };

  struct partition {
    std::thread thread;
    // The current execution's slices, each holding a reference. Written by
    // the partition's own thread under mu_; read by it without the lock, and
    // by stop() under mu_.
    std::vector<slice> in_flight;
    // Calls taken off the queue without executing, each with the queue's
    // reference: already finished, or expired here (to answer timeout).
    // Filled under mu_, settled by the partition's thread after unlocking.
    std::vector<call<In, Out>*> skipped;
    std::vector<call<In, Out>*> expired;
    bool exited = false;  // guarded by mu_
    // arrivals_ when this partition last took a batch; written under mu_ by
    // its own thread, which alone reads it.
    std::uint64_t arrivals_at_take = 0;
  };

  std::string display_name() const {
    return options_.name.empty() ? std::string("(unnamed)") : "'" + options_.name + "'";
  }

  // Starts the deadline timer's thread for the first call with a deadline:
  // a server whose calls never have one runs no timer thread. Returns why it
  // could not start, if it could not. Requires mu_ and a running server
  // (stop() reads timer_thread_ after leaving that state).
  std::optional<error> timer_for(const call<In, Out>& c) {
    if (!c.has_deadline() || timer_thread_.joinable()) return std::nullopt;
    try {
      timer_thread_ = std::thread([self = this->shared_from_this()] { self->timer_.run(); });
    } catch (const std::exception& e) {
      return error(errc::overloaded, "server " + display_name() +
                                         " could not start its deadline timer thread: " + e.what());
    }
    own_threads_.push_back(timer_thread_.get_id());
    return std::nullopt;
  }

  // Appends `c` to the queue with the queue's reference; into an empty queue
  // it opens a batch window (`now`, if the caller read the clock). Returns
  // true if a sleeping partition must wake: to start the clock of a new
  // first item, or because a batch is now full. Requires mu_.
  bool enqueue(call<In, Out>& c, std::optional<clock::time_point> now) {
    c.add_ref();
    if (head_ == nullptr) c.open_window(now ? *now : clock::now());
    c.taken = 0;
    c.in_queue = true;
    c.next_in_queue = nullptr;
    c.prev_in_queue = tail_;
    if (tail_ != nullptr) {
      tail_->next_in_queue = &c;
    } else {
      head_ = &c;
    }
    tail_ = &c;
    const bool was_empty = queued_items_ == 0;
    queued_items_ += c.size();
    arrivals_.fetch_add(1, std::memory_order_relaxed);
    ++calls_accepted_;
    items_accepted_ += c.size();
    return sleeping_ > 0 && (was_empty || queued_items_ >= options_.batch_size);
  }

  // Takes `c` out of the queue; the queue's reference goes to the caller. A
  // new head inherits the open batch window (take_batch opens a new one
  // after a full batch). Requires mu_.
  void unlink(call<In, Out>& c) noexcept {
    if (&c == head_ && c.next_in_queue != nullptr) {
      c.next_in_queue->open_window(c.window_opened_at());
    }
    (c.prev_in_queue != nullptr ? c.prev_in_queue->next_in_queue : head_) = c.next_in_queue;
    (c.next_in_queue != nullptr ? c.next_in_queue->prev_in_queue : tail_) = c.prev_in_queue;
    c.next_in_queue = c.prev_in_queue = nullptr;
    c.in_queue = false;
  }

  error refusal() const {  // requires mu_
    if (state_ == lifecycle::starting) {
      // Reachable by name only: the name is taken before the partitions start.
      return error(errc::no_serving, "server " + display_name() + " is still starting");
    }
    if (state_ == lifecycle::stopped) {
      return error(errc::no_serving, "server " + display_name() + " is stopped");
    }
    return error(errc::shutting_down, "server " + display_name() + " is shutting down");
  }

  bool runs_on_own_thread() const {  // requires mu_
    const auto me = std::this_thread::get_id();
    return me == stopping_thread_ ||
           std::find(own_threads_.begin(), own_threads_.end(), me) != own_threads_.end();
  }

  bool all_exited() const {  // requires mu_
    return std::all_of(partitions_.begin(), partitions_.end(),
                       [](const partition& p) { return p.exited; });
  }

  static void join_or_detach(std::thread& t) {
    if (!t.joinable()) return;
    // A completion callback may stop the server from one of its own threads.
    if (t.get_id() == std::this_thread::get_id()) {
      t.detach();
    } else {
      t.join();
    }
  }

  void abort_start(std::size_t started) noexcept {
    {
      std::lock_guard lock(mu_);
      state_ = lifecycle::stopped;
      stop_finished_ = true;
    }
    work_cv_.notify_all();
    for (std::size_t i = 0; i < started; ++i) join_or_detach(partitions_[i].thread);
  }

  void run_partition(std::size_t index) {
    partition& part = partitions_[index];
    const partition_info where{execution_mode::server, index, options_.batch_size};
    std::unique_ptr<batch_handler<In, Out>> handler;
    try {
      handler = factory_(where);
    } catch (...) {
      std::lock_guard lock(mu_);
      if (!init_error_) init_error_ = std::current_exception();
    }
    {
      std::lock_guard lock(mu_);
      ++inits_done_;
      state_cv_.notify_all();
    }
    if (handler) serve(part, *handler, where);
    handler.reset();  // the partition's state dies in its own thread
    std::lock_guard lock(mu_);
    part.exited = true;
    state_cv_.notify_all();
  }

  void serve(partition& part, batch_handler<In, Out>& handler, const partition_info& where) {
    std::vector<In> inputs;
    std::vector<Out> outputs;
    std::vector<slice> retired;
    while (true) {
      next_step step;
      {
        auto lock = lock_adaptively(mu_);
        step = wait_for_work(lock, part);
        if (step == next_step::run_batch) take_batch(part);
      }
      settle_skipped(part);
      if (step == next_step::exit) return;
      if (part.in_flight.empty()) continue;  // settling only, or all it reached had finished
      execute(part, handler, where, inputs, outputs);
      {
        const auto lock = lock_adaptively(mu_);
        retired.swap(part.in_flight);
      }
      for (const auto& s : retired) s.target->release();
      retired.clear();
    }
  }

  enum class next_step { run_batch, settle, exit };

  // Sleeps until there is a batch to run, or calls it skipped to settle.
  next_step wait_for_work(std::unique_lock<std::mutex>& lock, partition& part) {
    bool spun = false;
    bool lingered = false;
    while (true) {
      if (state_ == lifecycle::stopped) return next_step::exit;
      skip_finished_at_head(part, clock::now());
      // Answer what it expired (its callers are waiting) before sleeping.
      if (!part.expired.empty() || !part.skipped.empty()) return next_step::settle;
      if (state_ == lifecycle::draining) {
        // No new calls can arrive: run what is left at once, until the deadline.
        return queued_items_ > 0 && clock::now() < drain_deadline_ ? next_step::run_batch
                                                                   : next_step::exit;
      }
      if (queued_items_ >= options_.batch_size) return next_step::run_batch;
      if (queued_items_ == 0 && !spun && spins_for_work_) {
        spun = true;
        spin_for_arrival(lock);
        continue;  // re-check everything under the lock: a stop may have come meanwhile
      }
      if (queued_items_ > 0 && !lingered && spins_for_work_ && in_a_stream_of_calls(part)) {
        lingered = true;
        linger_for_company(lock, part);
        continue;
      }
      ++sleeping_;
      if (queued_items_ > 0) {
        const auto due = head_->window_opened_at() + options_.batch_timeout;
        if (clock::now() >= due) {
          --sleeping_;
          return next_step::run_batch;
        }
        work_cv_.wait_until(lock, std::min(due, head_->deadline()));
      } else {
        work_cv_.wait(lock);
      }
      --sleeping_;
    }
  }

  // In eager mode an idle partition first spins briefly for the next call:
  // a lone caller's next call often comes within microseconds, and catching
  // it saves the submitter a wake-up system call and the partition a
  // sleep/wake round trip. A spinning partition is not counted in sleeping_,
  // so submit() does not wake it (nor does stop(): the caller re-checks
  // everything after). Learns when spinning does not pay. Requires mu_ (held
  // again on return).
  void spin_for_arrival(std::unique_lock<std::mutex>& lock) {
    if (!work_within_spin_.worth_spinning()) return;
    const std::uint64_t seen = arrivals_.load(std::memory_order_relaxed);
    lock.unlock();
    constexpr int spin_iterations = 256;  // a few µs
    bool arrived = false;
    for (int i = 0; i < spin_iterations && !arrived; ++i) {
      cpu_relax();
      arrived = arrivals_.load(std::memory_order_relaxed) != seen;
    }
    lock.lock();
    work_within_spin_.learn(arrived);
  }

  // Eager mode takes whatever is queued, which suits a lone caller but turns
  // a stream of calls (one thread submitting futures as fast as it can) into
  // executions of one or two items, each fighting the submitter for the
  // queue. So when more than one call arrived since this partition last took
  // a batch, it first lets the stream fill the batch: it waits while calls
  // keep arriving less than about a microsecond apart, up to a full batch or
  // a few microseconds in all. A lone blocking caller never triggers this
  // (its next call cannot come before its answer). Requires mu_ (held again
  // on return).
  bool in_a_stream_of_calls(const partition& part) const noexcept {  // requires mu_
    return arrivals_.load(std::memory_order_relaxed) - part.arrivals_at_take > 1;
  }
  void linger_for_company(std::unique_lock<std::mutex>& lock, const partition& part) {
    constexpr int quiet_limit = 32;   // pauses without an arrival: about 1 µs
    constexpr int total_limit = 256;  // about 8 µs
    std::uint64_t last = arrivals_.load(std::memory_order_relaxed);
    lock.unlock();
    for (int quiet = 0, total = 0; quiet < quiet_limit && total < total_limit &&
                                   last - part.arrivals_at_take < options_.batch_size;
         ++total) {
      cpu_relax();
      const std::uint64_t now_seen = arrivals_.load(std::memory_order_relaxed);
      quiet = now_seen == last ? quiet + 1 : 0;
      last = now_seen;
    }
    lock.lock();
  }

  // Takes calls that need no execution off the head of the queue: finished
  // ones (cancelled, timed out) and ones whose deadline passed, which are
  // answered timeout (after unlocking, by settle_skipped). Requires mu_.
  void skip_finished_at_head(partition& part, clock::time_point now) {
    while (head_ != nullptr) {
      call<In, Out>* c = head_;
      bool expired = false;
      if (!c->finished()) {
        if (c->deadline() > now) return;
        expired = c->fail(deadline_passed());
      }
      queued_items_ -= c->size() - c->taken;
      unlink(*c);  // the queue's reference goes to the skipped list
      (expired ? part.expired : part.skipped).push_back(c);
    }
  }

  // Answers and releases what skip_finished_at_head took. Without mu_.
  void settle_skipped(partition& part) {
    for (call<In, Out>* c : part.expired) {
      calls_timed_out_.fetch_add(1, std::memory_order_relaxed);
      c->complete();
      c->release();
    }
    part.expired.clear();
    for (call<In, Out>* c : part.skipped) c->release();
    part.skipped.clear();
  }

  // Moves up to batch_size items from the head of the queue into this
  // partition's in-flight slices. Requires mu_.
  void take_batch(partition& part) {
    const auto now = clock::now();
    part.arrivals_at_take = arrivals_.load(std::memory_order_relaxed);
    std::size_t room = options_.batch_size;
    while (room > 0) {
      skip_finished_at_head(part, now);
      if (head_ == nullptr) break;
      call<In, Out>* c = head_;
      const std::size_t left = c->size() - c->taken;
      std::size_t length = std::min(left, room);
      if (c->indivisible_chunk != 0 && length < left) {
        length -= length % c->indivisible_chunk;  // whole chunks only
        if (length == 0) break;                   // the next chunk waits for the next execution
      }
      part.in_flight.push_back({c, c->taken, length});
      c->taken += static_cast<std::uint32_t>(length);
      room -= length;
      queued_items_ -= length;
      if (c->taken == c->size()) {
        unlink(*c);  // the queue's reference becomes this slice's
      } else {
        c->add_ref();  // a split call: one reference per slice
      }
    }
    // Calls left behind a full batch start a window of their own now. The
    // rest of a split call keeps its window: its caller has waited already.
    if (head_ != nullptr && head_->taken == 0) head_->open_window(now);
    // More is waiting: let another idle partition look at it.
    if (queued_items_ > 0 && sleeping_ > 0) work_cv_.notify_one();
  }

  void execute(partition& part, batch_handler<In, Out>& handler, const partition_info& where,
               std::vector<In>& inputs, std::vector<Out>& outputs) {
    inputs.clear();
    for (const auto& s : part.in_flight) {
      auto items = s.target->inputs().subspan(s.offset, s.length);
      for (auto& item : items) inputs.push_back(std::move(item));
    }
    execution_hooks hooks(*this, part);
    const std::span<const slice> slices(part.in_flight);
    const std::optional<error> failure =
        run(handler, where, inputs, outputs, hooks_.empty() ? nullptr : &hooks);
    if (!failure) {
      deliver(slices, outputs);
    } else if (options_.isolate_failures && slices.size() > 1) {
      isolate(handler, where, inputs, outputs, slices, *failure);
    } else {
      fail(slices, *failure);
    }
  }

  // One run of the batch function on `inputs`, counted.
  std::optional<error> run(batch_handler<In, Out>& handler, const partition_info& where,
                           std::span<const In> inputs, std::vector<Out>& outputs,
                           hook_sink* hooks) {
    execution_context ctx(where, inputs.size(), hooks);
    outputs.clear();
    std::optional<error> failure = run_batch(handler, inputs, ctx, outputs);
    executions_.fetch_add(1, std::memory_order_relaxed);
    items_executed_.fetch_add(inputs.size(), std::memory_order_relaxed);
    if (failure) failed_executions_.fetch_add(1, std::memory_order_relaxed);
    return failure;
  }

  // `slices`, whose items are `inputs`, failed together with `failure`: runs
  // each half again, recursively, until every slice either got its results
  // or failed on its own.
  void isolate(batch_handler<In, Out>& handler, const partition_info& where,
               std::span<const In> inputs, std::vector<Out>& outputs, std::span<const slice> slices,
               const error& failure) {
    if (slices.size() == 1) {
      fail(slices, failure);
      return;
    }
    // Cut at the slice boundary nearest half the items, one slice at least on each side.
    std::size_t cut = 1;
    std::size_t left_items = slices[0].length;
    while (cut + 1 < slices.size() && 2 * (left_items + slices[cut].length) <= inputs.size()) {
      left_items += slices[cut].length;
      ++cut;
    }
    const std::span<const In> halves_inputs[] = {inputs.first(left_items),
                                                 inputs.subspan(left_items)};
    const std::span<const slice> halves[] = {slices.first(cut), slices.subspan(cut)};
    for (int h = 0; h < 2; ++h) {
      const std::optional<error> half_failure =
          run(handler, where, halves_inputs[h], outputs, nullptr);
      isolation_executions_.fetch_add(1, std::memory_order_relaxed);
      if (half_failure) {
        isolate(handler, where, halves_inputs[h], outputs, halves[h], *half_failure);
      } else {
        calls_isolated_.fetch_add(halves[h].size(), std::memory_order_relaxed);
        deliver(halves[h], outputs);
      }
    }
  }

  // Hands each slice its outputs, in order; completes the calls this finished.
  void deliver(std::span<const slice> slices, std::vector<Out>& outputs) {
    std::size_t at = 0;
    for (const auto& s : slices) {
      const bool finished =
          s.target->deliver(s.offset, std::span<Out>(outputs).subspan(at, s.length));
      at += s.length;
      s.target->after_delivery();
      if (finished) {
        // A stream's ordered failure may finish it here.
        if (s.target->failed()) calls_failed_.fetch_add(1, std::memory_order_relaxed);
        s.target->complete();
      }
    }
  }

  void fail(std::span<const slice> slices, const error& failure) {
    for (const auto& s : slices) {
      const bool finished = s.target->fail_slice(s.offset, failure);
      s.target->after_delivery();
      if (finished) {
        calls_failed_.fetch_add(1, std::memory_order_relaxed);
        s.target->complete();
      }
    }
  }

  // The timer's verdict on a watched call whose deadline passed.
  void time_out(call_base& watched) {
    auto& c = static_cast<call<In, Out>&>(watched);  // only submit() watches calls
    if (!c.fail(deadline_passed())) return;
    calls_timed_out_.fetch_add(1, std::memory_order_relaxed);
    settle_early(c);
  }

  // `c` was just failed early (cancelled, timed out): takes it out of the
  // queue first, so its items never run and leave room under max_queue
  // before its caller hears the answer, then completes it. The call must stay
  // alive meanwhile: the caller of this holds a reference (the canceller's
  // future, the timer's entry) or is a stop callback, whose destruction waits.
  void settle_early(call<In, Out>& c) noexcept {
    bool queued;
    {
      std::lock_guard lock(mu_);
      queued = c.in_queue;
      if (queued) {
        queued_items_ -= c.size() - c.taken;
        unlink(c);
      }
    }
    c.complete();
    // Released last, outside mu_: the queue's reference may be the last one.
    if (queued) c.release();
  }

  error deadline_passed() const {
    return error(errc::timeout,
                 "server " + display_name() + ": the call's deadline passed before it finished");
  }

  // Routes an execution's emitted hooks to its callers, each its own entries.
  class execution_hooks final : public hook_sink {
   public:
    execution_hooks(const server_core& core, const partition& part) : core_(core), part_(part) {}
    void emit(std::string_view hook, const hook_payload& payload) override {
      const std::string& name = find_declared_hook(core_.hooks_, hook);
      std::size_t at = 0;
      for (const auto& s : part_.in_flight) {
        s.target->deliver_hook(s.offset, hook_slice::of(name, payload, at, s.length));
        s.target->after_delivery();
        at += s.length;
      }
    }

   private:
    const server_core& core_;
    const partition& part_;
  };

  handler_factory<In, Out> factory_;
  const core_options options_;
  const std::vector<std::string> hooks_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;   // partitions wait here for work
  std::condition_variable state_cv_;  // start() and stop() wait here for partitions
  lifecycle state_ = lifecycle::starting;  // guarded by mu_
  call<In, Out>* head_ = nullptr;          // guarded by mu_
  call<In, Out>* tail_ = nullptr;          // guarded by mu_
  std::size_t queued_items_ = 0;           // items not yet in an execution; guarded by mu_
  std::size_t sleeping_ = 0;               // partitions waiting on work_cv_; guarded by mu_
  // Calls ever queued; written under mu_, polled without it by a spinning
  // partition (only as a hint: it re-checks under mu_).
  std::atomic<std::uint64_t> arrivals_{0};
  const bool spins_for_work_ =
      options_.batch_timeout == clock::duration::zero() && std::thread::hardware_concurrency() > 1;
  spin_estimate work_within_spin_;
  clock::time_point drain_deadline_{};     // guarded by mu_
  std::size_t inits_done_ = 0;             // guarded by mu_
  std::exception_ptr init_error_;          // guarded by mu_
  bool stop_finished_ = false;             // guarded by mu_
  std::thread::id stopping_thread_;        // the thread running stop(); guarded by mu_
  std::vector<std::thread::id> own_threads_;  // partitions and timer; guarded by mu_
  std::vector<partition> partitions_;      // fixed size; fields as documented

  std::uint64_t calls_accepted_ = 0;  // guarded by mu_
  std::uint64_t items_accepted_ = 0;  // guarded by mu_
  std::uint64_t calls_rejected_ = 0;  // guarded by mu_
  std::uint64_t calls_overloaded_ = 0;  // guarded by mu_
  std::atomic<std::uint64_t> executions_{0};
  std::atomic<std::uint64_t> items_executed_{0};
  std::atomic<std::uint64_t> failed_executions_{0};
  std::atomic<std::uint64_t> calls_shut_down_{0};
  std::atomic<std::uint64_t> calls_failed_{0};
  std::atomic<std::uint64_t> calls_timed_out_{0};
  std::atomic<std::uint64_t> calls_cancelled_{0};
  std::atomic<std::uint64_t> isolation_executions_{0};
  std::atomic<std::uint64_t> calls_isolated_{0};

  // Declared last: its thread may use the members above until stop() joins it.
  deadline_timer timer_;
  // Started by the first call with a deadline; guarded by mu_ until stop().
  std::thread timer_thread_;
};

}  // namespace batch_serving::detail
