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
// queued or the oldest queued item's batch_timeout expires, whichever first.
// There is no timer thread and no timer per call.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/call.hpp"
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
        partitions_(options_.partitions) {}

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
    state_ = lifecycle::running;
  }

  std::optional<error> submit(call<In, Out>& c) override {
    const auto now = clock::now();
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      if (state_ != lifecycle::running) {
        ++calls_rejected_;
        return refusal();
      }
      c.add_ref();  // the queue's reference
      c.mark_enqueued(now);
      c.next_in_queue = nullptr;
      c.taken = 0;
      if (tail_ != nullptr) {
        tail_->next_in_queue = &c;
      } else {
        head_ = &c;
      }
      tail_ = &c;
      const bool was_empty = queued_items_ == 0;
      queued_items_ += c.size();
      ++calls_accepted_;
      items_accepted_ += c.size();
      // A sleeping partition must wake to start the clock of a new first item,
      // or because a batch is now full.
      wake = sleeping_ > 0 && (was_empty || queued_items_ >= options_.batch_size);
    }
    if (wake) work_cv_.notify_one();
    return std::nullopt;
  }

  // Shuts down as documented above; blocks for at most shutdown_timeout (plus
  // the time to answer the leftovers). Idempotent; concurrent calls wait for
  // the first to finish.
  void stop() noexcept {
    std::unique_lock lock(mu_);
    if (state_ == lifecycle::draining || state_ == lifecycle::stopped) {
      state_cv_.wait(lock, [&] { return stop_finished_; });
      return;
    }
    state_ = lifecycle::draining;
    drain_deadline_ = clock::now() + options_.shutdown_timeout;
    work_cv_.notify_all();
    state_cv_.wait_until(lock, drain_deadline_, [&] { return all_exited(); });

    // Whatever is left was queued but never started, or is still executing
    // past the deadline: answer it now.
    std::vector<call<In, Out>*> leftovers;
    for (call<In, Out>* c = head_; c != nullptr;) {
      call<In, Out>* next = c->next_in_queue;
      c->next_in_queue = nullptr;
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
    }
    s.executions = executions_.load(std::memory_order_relaxed);
    s.items_executed = items_executed_.load(std::memory_order_relaxed);
    s.failed_executions = failed_executions_.load(std::memory_order_relaxed);
    s.calls_shut_down = calls_shut_down_.load(std::memory_order_relaxed);
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
    bool exited = false;  // guarded by mu_
  };

  std::string display_name() const {
    return options_.name.empty() ? std::string("(unnamed)") : "'" + options_.name + "'";
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
      {
        std::unique_lock lock(mu_);
        if (!wait_for_work(lock)) return;
        take_batch(part);
      }
      execute(part, handler, where, inputs, outputs);
      {
        std::lock_guard lock(mu_);
        retired.swap(part.in_flight);
      }
      for (const auto& s : retired) s.target->release();
      retired.clear();
    }
  }

  // Sleeps until there is a batch to run. False: the partition should exit.
  bool wait_for_work(std::unique_lock<std::mutex>& lock) {
    while (true) {
      if (state_ == lifecycle::stopped) return false;
      if (state_ == lifecycle::draining) {
        // No new calls can arrive: run what is left at once, until the deadline.
        return queued_items_ > 0 && clock::now() < drain_deadline_;
      }
      if (queued_items_ >= options_.batch_size) return true;
      ++sleeping_;
      if (queued_items_ > 0) {
        const auto due = head_->enqueued_at() + options_.batch_timeout;
        if (clock::now() >= due) {
          --sleeping_;
          return true;
        }
        work_cv_.wait_until(lock, due);
      } else {
        work_cv_.wait(lock);
      }
      --sleeping_;
    }
  }

  // Moves up to batch_size items from the head of the queue into this
  // partition's in-flight slices. Requires mu_.
  void take_batch(partition& part) {
    std::size_t room = options_.batch_size;
    while (room > 0 && head_ != nullptr) {
      call<In, Out>* c = head_;
      const std::size_t left = c->size() - c->taken;
      std::size_t length = std::min(left, room);
      if (c->indivisible_chunk != 0 && length < left) {
        length -= length % c->indivisible_chunk;  // whole chunks only
        if (length == 0) break;                   // the next chunk waits for the next execution
      }
      part.in_flight.push_back({c, c->taken, length});
      c->taken += length;
      room -= length;
      queued_items_ -= length;
      if (c->taken == c->size()) {
        head_ = c->next_in_queue;  // the queue's reference becomes this slice's
        if (head_ == nullptr) tail_ = nullptr;
        c->next_in_queue = nullptr;
      } else {
        c->add_ref();  // a split call: one reference per slice
      }
    }
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
    execution_context ctx(where, inputs.size(), hooks_.empty() ? nullptr : &hooks);
    outputs.clear();
    const std::optional<error> failure =
        run_batch(handler, std::span<const In>(inputs), ctx, outputs);
    executions_.fetch_add(1, std::memory_order_relaxed);
    items_executed_.fetch_add(inputs.size(), std::memory_order_relaxed);
    if (failure) failed_executions_.fetch_add(1, std::memory_order_relaxed);

    std::size_t at = 0;
    for (const auto& s : part.in_flight) {
      const bool finished =
          failure ? s.target->fail_slice(s.offset, *failure)
                  : s.target->deliver(s.offset, std::span<Out>(outputs).subspan(at, s.length));
      at += s.length;
      s.target->after_delivery();
      if (finished) s.target->complete();
    }
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
  clock::time_point drain_deadline_{};     // guarded by mu_
  std::size_t inits_done_ = 0;             // guarded by mu_
  std::exception_ptr init_error_;          // guarded by mu_
  bool stop_finished_ = false;             // guarded by mu_
  std::vector<partition> partitions_;      // fixed size; fields as documented

  std::uint64_t calls_accepted_ = 0;  // guarded by mu_
  std::uint64_t items_accepted_ = 0;  // guarded by mu_
  std::uint64_t calls_rejected_ = 0;  // guarded by mu_
  std::atomic<std::uint64_t> executions_{0};
  std::atomic<std::uint64_t> items_executed_{0};
  std::atomic<std::uint64_t> failed_executions_{0};
  std::atomic<std::uint64_t> calls_shut_down_{0};
};

}  // namespace batch_serving::detail
