// The batching engine behind a server: admission of calls into one call
// queue, N partition threads that take batches from it and execute them,
// timeouts, cancellation and the lifecycle. What it delegates:
//   call_queue.hpp  what waits, what forms the next batch, when one is due
//   execution.hpp   running a batch and answering its slices
//   idle_spin.hpp   spinning instead of sleeping, in eager mode
//   observer.hpp    counters (stats_counters.hpp) and other observers
//   admission.hpp   the deadline rules
//   deadline_timer  answering calls at their deadline wherever they are
//
// Lifecycle: starting -> running -> draining -> stopped.
//   starting: partition threads create their state (init); no calls yet.
//   running:  submit() queues calls; partitions execute batches.
//   draining: submit() refuses (shutting_down); queued work runs at once,
//             without waiting for company, until the queue is empty or the
//             shutdown deadline passes.
//   stopped:  whatever was not finished was answered shutting_down.
//
// Locking: mu_ guards the queue, the lifecycle and which batch each
// partition runs (the annotations say which member it guards). User code
// (batch functions, callbacks, user types' copy and move) never runs under
// mu_: a partition takes a batch's slices under mu_ (the slice references
// keep the calls alive), then executes them after unlocking.
//
// The executors own the clock: an idle partition sleeps until the queue has
// a full batch or its batch window expires, whichever first. Calls with a
// deadline are also watched by one deadline_timer thread (started by the
// first such call), which answers them timeout at their deadline wherever
// they are. Calls that finish early (timed out, cancelled) leave the queue
// at once; their items never run. A partition that reaches a call whose
// deadline passed before the timer fired answers it timeout itself.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "batch_serving/call_options.hpp"
#include "batch_serving/detail/admission.hpp"
#include "batch_serving/detail/batch.hpp"
#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/call.hpp"
#include "batch_serving/detail/call_queue.hpp"
#include "batch_serving/detail/catch_up.hpp"
#include "batch_serving/detail/core_options.hpp"
#include "batch_serving/detail/deadline_timer.hpp"
#include "batch_serving/detail/execution.hpp"
#include "batch_serving/detail/fork_guard.hpp"
#include "batch_serving/detail/idle_spin.hpp"
#include "batch_serving/detail/intake.hpp"
#include "batch_serving/detail/mutex.hpp"
#include "batch_serving/detail/observer.hpp"
#include "batch_serving/detail/serving_metrics.hpp"
#include "batch_serving/detail/stats_counters.hpp"
#include "batch_serving/detail/thread_annotations.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/execution_context.hpp"
#include "batch_serving/server_stats.hpp"

namespace batch_serving::detail {

// The engine whose partition this thread is (null on other threads): its
// batch function and the completion callbacks it runs are on this thread.
inline thread_local const void* current_partition_engine = nullptr;

template <class In, class Out, class Queue = fifo_queue<In, Out>>
  requires call_queue<Queue, In, Out>
class engine final : public intake<In, Out>,
                     public gauge_source,
                     public std::enable_shared_from_this<engine<In, Out, Queue>> {
 public:
  // `hooks`: the hook names a streaming serving declared (may be empty).
  // Throws serving_error(invalid_argument) for options that cannot go
  // together.
  engine(handler_factory<In, Out> factory, core_options options,
         std::vector<std::string> hooks = {})
      : factory_(std::move(factory)),
        options_(std::move(options)),
        hooks_(std::move(hooks)),
        observe_(counters_, options_.extra_observer.get()),
        queue_(options_.batch_size, options_.batch_timeout),
        spinner_(options_.batch_timeout == clock::duration::zero()),
        partitions_(options_.partitions),
        timer_([this](call_base& c) { time_out(c); }) {
    if (options_.isolate_failures && !hooks_.empty()) {
      throw serving_error(errc::invalid_argument,
                          "server_options.isolate_failures cannot be used with a streaming "
                          "serving that declares hooks: hook events of a failed execution "
                          "were already delivered and cannot be taken back");
    }
  }

  ~engine() override = default;

  const core_options& options() const noexcept { return options_; }

  // Starts the partition threads and waits until each created its state.
  // Rethrows the first exception a partition's init threw (after stopping
  // the others).
  void start() {
    std::size_t started = 0;
    try {
      for (; started < options_.partitions; ++started) {
        std::thread t([self = this->shared_from_this(), started] { self->run_partition(started); });
        lock_guard lock(mu_);
        partitions_[started].thread = std::move(t);
      }
    } catch (...) {
      abort_start(started);
      throw;
    }
    unique_lock lock(mu_);
    while (inits_done_ != options_.partitions) state_cv_.wait(lock.native());
    if (init_error_) {
      auto failure = init_error_;
      lock.unlock();
      abort_start(options_.partitions);
      std::rethrow_exception(failure);
    }
    for (const auto& part : partitions_) own_threads_.push_back(part.thread.get_id());
    state_ = lifecycle::running;
    lock.unlock();
    if (options_.metrics) options_.metrics->add_gauges(this->weak_from_this());
  }

  // For metrics: what waits and what runs, now.
  gauge_reading read_gauges() const noexcept override {
    lock_guard lock(mu_);
    gauge_reading now;
    now.queued_items = queue_.queued_items();
    for (const auto& part : partitions_) now.executions_in_flight += part.running != nullptr;
    return now;
  }

  void submit(call<In, Out>& c, const call_options& call_opts) override {
    if (forked_away()) {
      refuse(c, error(errc::no_serving, "server " + display_name() +
                                            " was started by the parent of this fork()ed "
                                            "process: its threads did not survive fork()"));
      return;
    }
    admission_clock time;
    if (sets_a_deadline(call_opts, options_.default_timeout)) {
      if (auto bad = apply_deadline(c, call_opts, options_.default_timeout, time)) {
        refuse(c, *bad);
        return;
      }
    }
    if (call_opts.stop_token.stop_requested()) {
      refuse(c, error(errc::cancelled,
                      "the call was cancelled by its caller before it was dispatched"));
      return;
    }
    if (c.has_deadline() && c.deadline() <= time.now()) {
      refuse(c, error(errc::timeout, "server " + display_name() +
                                         ": the call's deadline passed before it was queued"));
      return;
    }
    if (c.size() > options_.max_queue) {
      refuse(c, error(errc::invalid_argument, "an explicit batch of " + std::to_string(c.size()) +
                                                  " items can never fit the queue of server " +
                                                  display_name() + " (max_queue " +
                                                  std::to_string(options_.max_queue) + ")"));
      return;
    }
    // Before the stop callback is armed: a cancellation reads them.
    if (call_opts.timing != nullptr || observe_.wants_timing()) [[unlikely]] {
      if (call_opts.timing != nullptr) c.time_for_caller(call_opts.timing);
      c.queued_at = time.now();
    }
    // Armed before the call is queued, so that a stop requested from now on
    // always finds it; one that fires right here answers it before it is.
    if (call_opts.stop_token.stop_possible()) {
      c.cancel_on(call_opts.stop_token, this->shared_from_this());
    }
    bool wake = false;
    std::optional<error> refused;
    std::optional<std::size_t> overloaded_at;  // items queued when the call was refused
    {
      unique_lock lock(mu_, adaptively);
      if (c.finished()) return;  // cancelled meanwhile: already answered
      if (state_ != lifecycle::running) {
        refused = refusal();
      } else if (queue_.queued_items() + c.size() > options_.max_queue) {
        overloaded_at = queue_.queued_items();
      } else if (auto no_timer = timer_for(c)) {
        refused = std::move(no_timer);
      } else {
        wake = queue_.push(c, time.read()) && sleeping_ > 0;
        if (c.caller_wants_timing) [[unlikely]]
          callers_want_timing_ = true;
        spinner_.count_arrival();
        observe_.call_queued(c.size());
      }
    }
    if (overloaded_at) {
      // The message is built outside the lock: overload is when it is busiest.
      refused =
          error(errc::overloaded,
                "server " + display_name() + " is overloaded: " + std::to_string(*overloaded_at) +
                    " items queued (max_queue " + std::to_string(options_.max_queue) + ")");
    }
    if (refused) {
      refuse(c, *refused);
      return;
    }
    if (wake) work_cv_.notify_one();
    if (c.has_deadline()) timer_.watch(c);
  }

  mapping_observer* mapping_spans() const noexcept override { return options_.mapping_spans; }

  std::optional<error> blocking_wait_refusal() const override {
    if (!on_partition_thread()) return std::nullopt;
    return error(errc::invalid_argument,
                 "a blocking dispatch on a thread of server " + display_name() +
                     " (in its batch function, or a completion callback it runs) would wait for "
                     "that thread itself: use dispatch_async with a callback instead");
  }

  void before_blocking_wait(call<In, Out>& c) noexcept override {
    if (!on_partition_thread() || forked_away()) return;
    {
      lock_guard lock(mu_);
      if (!queue_.remove(c)) return;  // executing elsewhere (or done): waiting is fine
    }
    if (c.fail(error(errc::invalid_argument,
                     "waited for on a thread of server " + display_name() +
                         " while still queued: that thread would wait for itself"))) {
      observe_.call_ended(errc::invalid_argument, c.size(), c.queued_at);
      c.complete();
    }
    c.release();  // the queue's reference
  }

  bool cancel(call_base& base) noexcept override {
    if (forked_away()) return false;  // its lock may be held by a thread the fork left behind
    auto& c = static_cast<call<In, Out>&>(base);  // only submit() arms calls with this engine
    // A stop callback holds no reference, and the completion below may drop
    // every other one (a callback that stops the server): keep the call
    // alive until this is done. No reference left means it is being
    // destroyed, long after it finished.
    if (!c.try_add_ref()) return false;
    const bool cancelled = c.fail(error(errc::cancelled, "the call was cancelled by its caller"));
    if (cancelled) {
      observe_.call_ended(errc::cancelled, c.size(), c.queued_at);
      settle_early(c);
    }
    c.release();  // may be the last: destroying a stop callback from inside it is allowed
    return cancelled;
  }

  // Shuts down as documented above; blocks for at most shutdown_timeout (plus
  // the time to answer the leftovers). Idempotent; concurrent calls wait for
  // the first to finish, except from the server's own threads, from inside
  // the stop in progress, or from any completion callback (one that stops its
  // server): that stop may wait for them, so they return at once and it
  // finishes after them. The first stop() from a partition thread (its batch
  // function or a completion callback) cannot wait for that partition either:
  // it returns at once, the execution it is in completes and its callers get
  // their results, and a thread of the engine's own finishes the shutdown.
  void stop() noexcept {
    if (forked_away()) return;  // nothing of it runs here; its locks may be held
    unique_lock lock(mu_);
    if (state_ == lifecycle::draining || state_ == lifecycle::stopped) {
      if (runs_on_own_thread() || call_base::completions_running > 0) return;
      while (!stop_finished_) state_cv_.wait(lock.native());
      return;
    }
    stopping_thread_ = std::this_thread::get_id();
    state_ = lifecycle::draining;
    drain_deadline_ = saturating_add(clock::now(), options_.shutdown_timeout);
    work_cv_.notify_all();
    if (on_partition_thread() && finish_stop_elsewhere()) return;
    finish_stop();
  }

  // Thread-safe, lock-free.
  server_stats stats() const noexcept { return counters_.snapshot(); }

  // True in a process fork()ed from the one that started this engine: none
  // of its threads run here (fork_guard.hpp).
  bool forked_away() const noexcept { return fork_generation() != born_in_fork_generation_; }

  // In a fork()ed child: keeps this engine alive for good through `self`,
  // since destroying it would terminate on the handles of threads the child
  // does not have. Its memory goes with the child's exit. Never allocates.
  void abandon_in_forked_child(std::shared_ptr<engine> self) noexcept {
    abandoned_self_ = std::move(self);
  }

 private:
  enum class lifecycle { starting, running, draining, stopped };
  enum class next_step { run_batch, settle, exit };

  struct partition {
    std::thread thread;
    // The batch the partition is executing (its slices hold references), or
    // null. The batch itself belongs to the partition's thread; stop() reads
    // its slices under mu_ while this points to it.
    const batch<In, Out>* running = nullptr;
    bool exited = false;
  };

  bool on_partition_thread() const noexcept { return current_partition_engine == this; }

  // Starts a thread that finishes the shutdown (finish_stop) and leaves it
  // to run; false if no thread could start.
  bool finish_stop_elsewhere() BATCH_SERVING_REQUIRES(mu_) {
    try {
      std::thread([self = this->shared_from_this()] {
        lock_guard lock(self->mu_);
        self->finish_stop();
      }).detach();
      return true;
    } catch (...) {
      return false;  // finish here, waiting as long as this thread can
    }
  }

  // The rest of stop(): waits for the partitions to drain the queue and exit
  // (up to the shutdown deadline), answers what is left, joins what it can.
  void finish_stop() noexcept BATCH_SERVING_REQUIRES(mu_) {
    while (!all_exited() && wait_until(state_cv_, mu_, drain_deadline_)) {
    }

    // Whatever is left was queued but never started, or is still executing
    // past the deadline: answer it now.
    std::vector<call<In, Out>*> leftovers;
    queue_.take_all(leftovers);  // with the queue's references
    std::vector<std::thread> finished_threads;
    std::vector<std::thread> stuck_threads;
    for (auto& part : partitions_) {
      if (!part.exited) {
        if (part.running != nullptr) {
          for (const auto& s : part.running->slices) {
            s.target->add_ref();
            leftovers.push_back(s.target);
          }
        }
        stuck_threads.push_back(std::move(part.thread));
      } else {
        finished_threads.push_back(std::move(part.thread));
      }
    }
    state_ = lifecycle::stopped;
    std::thread timer_thread = std::move(timer_thread_);
    work_cv_.notify_all();
    mu_.unlock();
    timer_.request_stop();  // every call it watched is answered below

    const error shut_down(errc::shutting_down,
                          "server " + display_name() +
                              " shut down before this call finished (shutdown_timeout passed)");
    for (call<In, Out>* c : leftovers) {
      if (c->fail(shut_down)) {
        observe_.call_ended(errc::shutting_down, c->size(), c->queued_at);
        c->complete();
      }
      c->release();
    }
    for (auto& t : finished_threads) join_or_detach(t);
    join_or_detach(timer_thread);
    // A partition still inside the batch function keeps the engine alive
    // through its own reference; its late results are discarded.
    for (auto& t : stuck_threads) {
      if (t.joinable()) t.detach();
    }
    mu_.lock();
    stop_finished_ = true;
    state_cv_.notify_all();
  }

  std::string display_name() const {
    return options_.name.empty() ? std::string("(unnamed)") : "'" + options_.name + "'";
  }

  // Answers `c` with `e` at the door (it was never queued).
  void refuse(call<In, Out>& c, const error& e) {
    if (!c.fail(e)) return;  // its stop was requested meanwhile: answered cancelled
    observe_.call_refused(e.code());
    c.complete();
  }

  // Starts the deadline timer's thread for the first call with a deadline:
  // a server whose calls never have one runs no timer thread. Returns why it
  // could not start, if it could not. Requires a running server (stop()
  // takes timer_thread_ when it leaves that state).
  std::optional<error> timer_for(const call<In, Out>& c) BATCH_SERVING_REQUIRES(mu_) {
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

  error refusal() const BATCH_SERVING_REQUIRES(mu_) {
    if (state_ == lifecycle::starting) {
      // Reachable by name only: the name is taken before the partitions start.
      return error(errc::no_serving, "server " + display_name() + " is still starting");
    }
    if (state_ == lifecycle::stopped) {
      return error(errc::no_serving, "server " + display_name() + " is stopped");
    }
    return error(errc::shutting_down, "server " + display_name() + " is shutting down");
  }

  bool runs_on_own_thread() const BATCH_SERVING_REQUIRES(mu_) {
    const auto me = std::this_thread::get_id();
    return me == stopping_thread_ ||
           std::find(own_threads_.begin(), own_threads_.end(), me) != own_threads_.end();
  }

  bool all_exited() const BATCH_SERVING_REQUIRES(mu_) {
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
    std::vector<std::thread> threads;
    {
      lock_guard lock(mu_);
      state_ = lifecycle::stopped;
      stop_finished_ = true;
      for (std::size_t i = 0; i < started; ++i) threads.push_back(std::move(partitions_[i].thread));
    }
    work_cv_.notify_all();
    for (auto& t : threads) join_or_detach(t);
  }

  void run_partition(std::size_t index) {
    current_partition_engine = this;
    const partition_info where{execution_mode::server, index, options_.batch_size};
    std::unique_ptr<batch_handler<In, Out>> handler;
    try {
      handler = factory_(where);
    } catch (...) {
      lock_guard lock(mu_);
      if (!init_error_) init_error_ = std::current_exception();
    }
    {
      lock_guard lock(mu_);
      ++inits_done_;
      state_cv_.notify_all();
    }
    if (handler) serve(index, *handler, where);
    handler.reset();  // the partition's state dies in its own thread
    current_partition_engine = nullptr;
    lock_guard lock(mu_);
    partitions_[index].exited = true;
    state_cv_.notify_all();
  }

  void serve(std::size_t index, batch_handler<In, Out>& handler, const partition_info& where) {
    execution<In, Out> executor(handler, where, hooks_, options_.isolate_failures, observe_);
    batch<In, Out> work;  // this partition's; stop() reads its slices under mu_
    last_take last;
    while (true) {
      next_step step;
      execution_notes notes;
      {
        unique_lock lock(mu_, adaptively);
        step = wait_for_work(work, last);
        if (step == next_step::run_batch) {
          last.arrivals_at_take = spinner_.arrivals();
          last.at = clock::now();
          last.items = queue_.take(work, last.at);
          last.closed_loop = queue_.queued_items() == 0;
          if (observe_.wants_timing() || callers_want_timing_) [[unlikely]] {
            notes = notes_for(last.items);
          }
          if (!work.slices.empty()) partitions_[index].running = &work;
          // More is waiting: let another idle partition look at it.
          if (queue_.queued_items() > 0 && sleeping_ > 0) work_cv_.notify_one();
        }
      }
      settle_skipped(work);
      if (step == next_step::exit) return;
      if (work.slices.empty()) continue;  // settling only, or all it reached had finished
      executor.run(work.slices, notes);
      // A hint: read without the lock, before the callers answered can be back.
      last.closed_loop = last.closed_loop && spinner_.arrivals() == last.arrivals_at_take;
      retire(index);
      for (const auto& s : work.slices) s.target->release();
      work.slices.clear();
    }
  }

  // What closed the batch just taken (`items` of it), for whoever times it.
  execution_notes notes_for(std::size_t items) const BATCH_SERVING_REQUIRES(mu_) {
    execution_notes notes;
    notes.timed_for_callers = callers_want_timing_;
    if (state_ == lifecycle::draining) {
      notes.trigger = batch_trigger::drain;
    } else if (items >= options_.batch_size) {
      notes.trigger = batch_trigger::full;
    } else if (options_.batch_timeout == clock::duration::zero()) {
      notes.trigger = batch_trigger::eager;
    } else {
      notes.trigger = batch_trigger::timeout;
    }
    return notes;
  }

  void retire(std::size_t index) {
    unique_lock lock(mu_, adaptively);
    partitions_[index].running = nullptr;
  }

  // Sleeps until there is a batch to run, or calls the queue skipped to settle.
  next_step wait_for_work(batch<In, Out>& work, const last_take& last) BATCH_SERVING_REQUIRES(mu_) {
    bool spun = false;
    bool lingered = false;
    bool caught_up = false;
    while (true) {
      if (state_ == lifecycle::stopped) return next_step::exit;
      queue_.skip_finished(work, clock::now());
      // Answer what it expired (its callers are waiting) before sleeping.
      if (!work.expired.empty() || !work.skipped.empty()) return next_step::settle;
      if (state_ == lifecycle::draining) {
        // No new calls can arrive: run what is left at once, until the deadline.
        return queue_.queued_items() > 0 && clock::now() < drain_deadline_ ? next_step::run_batch
                                                                           : next_step::exit;
      }
      if (queue_.has_full_batch()) return next_step::run_batch;
      const bool idle = queue_.queued_items() == 0;
      if (idle && !spun && spinner_.enabled()) {
        spun = true;
        spin_for_arrival();
        continue;  // re-check everything under the lock: a stop may have come meanwhile
      }
      if (!idle && !lingered && spinner_.enabled() &&
          spinner_.worth_lingering(last.arrivals_at_take, last.closed_loop)) {
        lingered = true;
        // Timed mode: never past the batch's due time (eager: all is due now).
        const clock::time_point due = options_.batch_timeout > clock::duration::zero()
                                          ? queue_.next_due()
                                          : clock::time_point::max();
        mu_.unlock();
        spinner_.linger_for_company(last.arrivals_at_take, options_.batch_size, due);
        mu_.lock();
        continue;
      }
      // Not in eager mode: there every queued item is due at once.
      if (!idle && !caught_up && options_.batch_timeout > clock::duration::zero() &&
          clock::now() >= queue_.next_due() &&
          waited_behind_execution(last, queue_.window_opened_at(), queue_.queued_items(),
                                  options_.batch_size)) {
        caught_up = true;
        wait_for_returning_callers();
        continue;
      }
      ++sleeping_;
      if (!idle) {
        if (clock::now() >= queue_.next_due()) {
          --sleeping_;
          return next_step::run_batch;
        }
        wait_until(work_cv_, mu_, queue_.next_wake());
      } else {
        wait(work_cv_, mu_);
      }
      --sleeping_;
    }
  }

  // catch_up.hpp: waits while calls keep arriving, each within the quiet gap
  // of the last, until a batch is full, one more batch_timeout passed, or
  // the server stops. Sleeps between looks (submit() wakes it only for a
  // full batch), so the callers it waits for have the cores.
  void wait_for_returning_callers() BATCH_SERVING_REQUIRES(mu_) {
    const clock::duration quiet = catch_up_quiet_gap(options_.batch_timeout);
    const clock::time_point give_up = saturating_add(clock::now(), options_.batch_timeout);
    std::uint64_t seen = spinner_.arrivals();
    while (state_ == lifecycle::running && !queue_.has_full_batch() && queue_.queued_items() > 0) {
      const clock::time_point now = clock::now();
      if (now >= give_up) return;
      ++sleeping_;
      wait_until(work_cv_, mu_, std::min(saturating_add(now, quiet), give_up));
      --sleeping_;
      if (spinner_.arrivals() == seen) return;  // quiet: nobody else is coming
      seen = spinner_.arrivals();
    }
  }

  // A spinning partition is not counted in sleeping_, so submit() does not
  // wake it (nor does stop(): the caller re-checks everything after).
  void spin_for_arrival() BATCH_SERVING_REQUIRES(mu_) {
    if (!spinner_.worth_spinning()) return;
    const std::uint64_t seen = spinner_.arrivals();
    mu_.unlock();
    spinner_.spin_for_arrival(seen);
    mu_.lock();
  }

  // Answers and releases what the queue skipped. Without mu_.
  void settle_skipped(batch<In, Out>& work) {
    for (call<In, Out>* c : work.expired) {
      if (c->fail(deadline_passed())) {
        observe_.call_ended(errc::timeout, c->size(), c->queued_at);
        c->complete();
      }
      c->release();
    }
    work.expired.clear();
    for (call<In, Out>* c : work.skipped) c->release();
    work.skipped.clear();
  }

  // The timer's verdict on a watched call whose deadline passed.
  void time_out(call_base& watched) {
    auto& c = static_cast<call<In, Out>&>(watched);  // only submit() watches calls
    if (!c.fail(deadline_passed())) return;
    observe_.call_ended(errc::timeout, c.size(), c.queued_at);
    settle_early(c);
  }

  // `c` was just failed early (cancelled, timed out): takes it out of the
  // queue first, so its items never run and leave room under max_queue
  // before its caller hears the answer, then completes it. The caller of this
  // holds a reference meanwhile (cancel()'s own, the timer's entry).
  void settle_early(call<In, Out>& c) noexcept {
    bool queued;
    {
      lock_guard lock(mu_);
      queued = queue_.remove(c);
    }
    c.complete();
    // Released last, outside mu_: the queue's reference may be the last one.
    if (queued) c.release();
  }

  error deadline_passed() const {
    return error(errc::timeout,
                 "server " + display_name() + ": the call's deadline passed before it finished");
  }

  // Condition waits on mu_: the condition variable gives it up while it
  // sleeps and holds it again when it returns.
  static void wait(std::condition_variable& cv, mutex& mu) BATCH_SERVING_REQUIRES(mu) {
    std::unique_lock<std::mutex> held(mu.native(), std::adopt_lock);
    cv.wait(held);
    held.release();
  }
  // False once `until` passed.
  static bool wait_until(std::condition_variable& cv, mutex& mu, clock::time_point until)
      BATCH_SERVING_REQUIRES(mu) {
    std::unique_lock<std::mutex> held(mu.native(), std::adopt_lock);
    const bool in_time = cv.wait_until(held, until) == std::cv_status::no_timeout;
    held.release();
    return in_time;
  }

  handler_factory<In, Out> factory_;
  const unsigned born_in_fork_generation_ = fork_generation();
  std::shared_ptr<engine> abandoned_self_;  // set only in a fork()ed child
  const core_options options_;
  const std::vector<std::string> hooks_;
  stats_counters counters_;
  observer_tee observe_;

  mutable mutex mu_;
  std::condition_variable work_cv_;   // partitions wait here for work
  std::condition_variable state_cv_;  // start() and stop() wait here for partitions
  Queue queue_ BATCH_SERVING_GUARDED_BY(mu_);
  lifecycle state_ BATCH_SERVING_GUARDED_BY(mu_) = lifecycle::starting;
  std::size_t sleeping_ BATCH_SERVING_GUARDED_BY(mu_) = 0;  // partitions waiting on work_cv_
  // A caller asked for call_options::timing once: executions look at their
  // calls for it from then on.
  bool callers_want_timing_ BATCH_SERVING_GUARDED_BY(mu_) = false;
  idle_spinner spinner_;  // its arrivals counter is bumped under mu_
  clock::time_point drain_deadline_ BATCH_SERVING_GUARDED_BY(mu_){};
  std::size_t inits_done_ BATCH_SERVING_GUARDED_BY(mu_) = 0;
  std::exception_ptr init_error_ BATCH_SERVING_GUARDED_BY(mu_);
  bool stop_finished_ BATCH_SERVING_GUARDED_BY(mu_) = false;
  std::thread::id stopping_thread_ BATCH_SERVING_GUARDED_BY(mu_);  // the thread running stop()
  // Partitions and timer.
  std::vector<std::thread::id> own_threads_ BATCH_SERVING_GUARDED_BY(mu_);
  std::vector<partition> partitions_ BATCH_SERVING_GUARDED_BY(mu_);  // fixed size

  // Declared last: its thread may use the members above until stop() joins it.
  deadline_timer timer_;
  // Started by the first call with a deadline.
  std::thread timer_thread_ BATCH_SERVING_GUARDED_BY(mu_);
};

}  // namespace batch_serving::detail
