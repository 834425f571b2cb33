// One asio operation on a server (asio.hpp): the handler it will complete,
// the outstanding work it keeps on the handler's executor, and the stop
// source its cancellation slot and the caller's stop_token feed. Each
// execution context keeps a registry of the operations it has outstanding,
// so that when the context shuts down (is destroyed) before a server answers
// them, their handlers are destroyed without being called, as asio's own
// operations are, and the late answer never touches the gone context.
#pragma once

#include <asio/associated_allocator.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/dispatch.hpp>
#include <asio/execution.hpp>
#include <asio/execution_context.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <asio/query.hpp>
#include <asio/system_executor.hpp>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <optional>
#include <stop_token>
#include <utility>
#include <vector>

#include "batch_serving/call_options.hpp"
#include "batch_serving/detail/mutex.hpp"
#include "batch_serving/detail/thread_annotations.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving::detail {

class asio_operation_base : public std::enable_shared_from_this<asio_operation_base> {
 public:
  asio_operation_base() = default;
  asio_operation_base(const asio_operation_base&) = delete;
  asio_operation_base& operator=(const asio_operation_base&) = delete;
  virtual ~asio_operation_base() = default;

  // Destroys the handler (and the work it keeps) without calling it: the
  // context is shutting down. Called once, never concurrently with the
  // operation's completion (the registry sees to it).
  virtual void abandon() noexcept = 0;

 private:
  friend class asio_operation_registry;
  // The registry's list, guarded by its mutex.
  asio_operation_base* prev_ = nullptr;
  asio_operation_base* next_ = nullptr;
  bool linked_ = false;
};

// The outstanding operations of one execution context. Thread-safe.
class asio_operation_registry {
 public:
  // Lists `op`; false if the context has already shut down.
  bool add(asio_operation_base& op) {
    unique_lock lock(mu_);
    if (shut_down_) return false;
    op.next_ = head_;
    op.prev_ = nullptr;
    if (head_ != nullptr) head_->prev_ = &op;
    head_ = &op;
    op.linked_ = true;
    return true;
  }

  // The operation is being answered: unlists it and, unless the context
  // shut down (then the handler is gone: false), keeps the context's
  // shutdown waiting until end_completion(), so that the hand-off to its
  // executor never races the context's destruction.
  bool begin_completion(asio_operation_base& op) {
    unique_lock lock(mu_);
    if (shut_down_) return false;
    unlink(op);
    ++completing_;
    return true;
  }

  void end_completion() {
    unique_lock lock(mu_);
    --completing_;
    if (shut_down_) done_.notify_all();
  }

  // An operation is being destroyed: unlists it and, like a completion,
  // keeps the context's shutdown waiting until end_completion(), while it
  // destroys its handler and the work it keeps on the context.
  void begin_teardown(asio_operation_base& op) {
    unique_lock lock(mu_);
    unlink(op);
    ++completing_;
    if (shut_down_) done_.notify_all();
  }

  // The context shuts down: waits for hand-offs and teardowns in flight,
  // then destroys the handlers of the operations still outstanding (outside
  // the lock: a handler's destructor may start another operation, which is
  // refused).
  void shut_down() {
    std::vector<std::shared_ptr<asio_operation_base>> outstanding;
    unique_lock lock(mu_);
    shut_down_ = true;
    while (true) {
      while (completing_ != 0) done_.wait(lock.native());
      // Keep every listed operation alive until abandoned. One whose last
      // reference just went is about to tear itself down (begin_teardown
      // waits for this lock) and still holds work on the context: wait
      // until it has unlisted itself, then for its teardown, and look again.
      const asio_operation_base* dying = nullptr;
      for (auto* op = head_; op != nullptr && dying == nullptr; op = op->next_) {
        if (auto kept = op->weak_from_this().lock()) {
          outstanding.push_back(std::move(kept));
        } else {
          dying = op;
        }
      }
      if (dying == nullptr) break;
      // Our references go outside the lock: dropping the last one tears an
      // operation down, which takes the lock.
      lock.unlock();
      outstanding.clear();
      lock.lock();
      // Compared by address only: `dying` may be freed by now, and no new
      // operation is listed once shut_down_ is set.
      while (listed(dying)) done_.wait(lock.native());
    }
    lock.unlock();
    for (auto& op : outstanding) op->abandon();
  }

 private:
  bool listed(const asio_operation_base* target) const BATCH_SERVING_REQUIRES(mu_) {
    for (const auto* op = head_; op != nullptr; op = op->next_) {
      if (op == target) return true;
    }
    return false;
  }

  void unlink(asio_operation_base& op) BATCH_SERVING_REQUIRES(mu_) {
    if (!op.linked_) return;
    if (op.prev_ != nullptr) {
      op.prev_->next_ = op.next_;
    } else {
      head_ = op.next_;
    }
    if (op.next_ != nullptr) op.next_->prev_ = op.prev_;
    op.linked_ = false;
  }

  mutex mu_;
  std::condition_variable done_;
  asio_operation_base* head_ BATCH_SERVING_GUARDED_BY(mu_) = nullptr;
  int completing_ BATCH_SERVING_GUARDED_BY(mu_) = 0;
  bool shut_down_ BATCH_SERVING_GUARDED_BY(mu_) = false;
};

// The registry as a service of its execution context: created on the first
// operation, shut down with the context.
class asio_operation_service final : public asio::execution_context::service {
 public:
  inline static asio::execution_context::id id;

  explicit asio_operation_service(asio::execution_context& context)
      : asio::execution_context::service(context),
        registry_(std::make_shared<asio_operation_registry>()) {}

  const std::shared_ptr<asio_operation_registry>& registry() const noexcept { return registry_; }

 private:
  void shutdown() override { registry_->shut_down(); }

  std::shared_ptr<asio_operation_registry> registry_;
};

// The context whose shutdown the operation must heed. An executor that names
// none (use_future's runs inline) is heeded as the system executor is.
template <class Executor>
asio::execution_context& asio_context_of(const Executor& ex) {
  if constexpr (asio::can_query<const Executor&, asio::execution::context_t>::value) {
    return asio::query(ex, asio::execution::context);
  } else if constexpr (requires { ex.context(); }) {
    return ex.context();
  } else {
    return asio::query(asio::system_executor(), asio::execution::context);
  }
}

// What keeps the executor's context running while the operation is
// outstanding (io_context::run() does not return early).
template <class Executor>
auto asio_track_work(const Executor& ex) {
  if constexpr (asio::execution::is_executor<Executor>::value) {
    return asio::prefer(ex, asio::execution::outstanding_work.tracked);
  } else {
    return asio::make_work_guard(ex);
  }
}

// The handler with its answer, handed to the handler's executor. Carries the
// handler's executor and allocator, so that asio::post/dispatch run it there
// and allocate with the handler's allocator.
template <class Handler, class Value>
struct asio_completion {
  Handler handler;
  result<Value> answer;

  using executor_type = asio::associated_executor_t<Handler, asio::system_executor>;
  executor_type get_executor() const noexcept {
    return asio::get_associated_executor(handler, asio::system_executor());
  }
  using allocator_type = asio::associated_allocator_t<Handler>;
  allocator_type get_allocator() const noexcept { return asio::get_associated_allocator(handler); }

  void operator()() {
    // The operation is over: its cancellation handler goes (on the handler's
    // executor, where cancellation is emitted).
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected()) slot.clear();
    std::move(handler)(std::move(answer));
  }
};

// Installed in the handler's cancellation slot: terminal and partial
// cancellation request a stop of the call. A request for total cancellation
// alone is ignored: once the items run, their side effects cannot be undone.
// It owns a stop_source (shared state), never the operation, so a slot that
// outlives the operation, or is emitted after it completed, is harmless.
struct asio_stop_on_cancel {
  std::stop_source stop;
  void operator()(asio::cancellation_type_t type) noexcept {
    if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial)) !=
        asio::cancellation_type::none) {
      stop.request_stop();
    }
  }
};

// A caller's own stop_token, forwarded to the operation's stop source.
struct asio_forward_stop {
  std::stop_source stop;
  void operator()() noexcept { stop.request_stop(); }
};

template <class Handler, class Value>
class asio_operation final : public asio_operation_base {
 public:
  using executor_type = asio::associated_executor_t<Handler, asio::system_executor>;
  using work_type = decltype(asio_track_work(std::declval<const executor_type&>()));

  // Lists a new operation with its context and connects its cancellation
  // (then `options.stop_token` becomes the operation's). Null if the
  // context has shut down (the handler is destroyed uncalled).
  static std::shared_ptr<asio_operation> start(Handler&& handler, call_options& options) {
    executor_type ex = asio::get_associated_executor(handler, asio::system_executor());
    auto& service = asio::use_service<asio_operation_service>(asio_context_of(ex));
    auto op = std::make_shared<asio_operation>(service.registry(), std::move(handler), ex);
    if (!op->registry_->add(*op)) return nullptr;
    auto slot = asio::get_associated_cancellation_slot(*op->handler_);
    if (slot.is_connected()) {
      op->stop_.emplace();
      slot.template emplace<asio_stop_on_cancel>(asio_stop_on_cancel{*op->stop_});
      if (options.stop_token.stop_possible()) {
        op->caller_stop_.emplace(options.stop_token, asio_forward_stop{*op->stop_});
      }
      options.stop_token = op->stop_->get_token();
    }
    return op;
  }

  asio_operation(std::shared_ptr<asio_operation_registry> registry, Handler&& handler,
                 const executor_type& ex)
      : registry_(std::move(registry)), handler_(std::move(handler)), work_(asio_track_work(ex)) {}

  asio_operation(const asio_operation&) = delete;
  asio_operation& operator=(const asio_operation&) = delete;
  // The handler and the work go before the context may: a shutdown running
  // now waits for this teardown (see asio_operation_registry::shut_down).
  ~asio_operation() override {
    registry_->begin_teardown(*this);
    handler_.reset();
    work_.reset();
    registry_->end_completion();
  }

  // The initiating call returned: answers from now on may run the handler
  // at once where its executor allows (dispatch); before, they are posted,
  // so a handler never runs inside the initiating function.
  void initiated() noexcept { initiating_.store(false, std::memory_order_release); }

  // The server's answer, from whichever thread finished the call.
  void complete(result<Value> answer) noexcept {
    if (!registry_->begin_completion(*this)) return;  // abandoned with its context
    struct end_completion {
      asio_operation_registry& registry;
      ~end_completion() { registry.end_completion(); }
    } ending{*registry_};
    // begin_completion made this thread the only one to touch them.
    // The work is released once the answer is queued on the executor.
    [[maybe_unused]] std::optional<work_type> work = std::move(work_);
    asio_completion<Handler, Value> completion{std::move(*handler_), std::move(answer)};
    handler_.reset();
    try {
      if (initiating_.load(std::memory_order_acquire)) {
        asio::post(std::move(completion));
      } else {
        asio::dispatch(std::move(completion));
      }
    } catch (...) {
      // Out of memory for the hand-off: the handler is destroyed uncalled.
    }
  }

  void abandon() noexcept override {
    if (stop_) stop_->request_stop();  // nobody waits for it: its items need not run
    handler_.reset();
    work_.reset();
  }

 private:
  std::shared_ptr<asio_operation_registry> registry_;
  std::optional<Handler> handler_;
  std::optional<work_type> work_;
  std::optional<std::stop_source> stop_;
  std::optional<std::stop_callback<asio_forward_stop>> caller_stop_;
  std::atomic<bool> initiating_{true};
};

// The initiation async_initiate runs: starts the operation and the
// server's callback-form dispatch that answers it.
template <class Server, class Value, bool Many>
struct asio_initiate_dispatch {
  Server* srv;

  template <class Handler, class Inputs>
  void operator()(Handler&& handler, Inputs&& inputs, call_options options) const {
    using operation = asio_operation<std::decay_t<Handler>, Value>;
    std::decay_t<Handler> own(std::forward<Handler>(handler));
    auto op = operation::start(std::move(own), options);
    if (!op) return;
    auto done = [op](result<Value> answer) noexcept { op->complete(std::move(answer)); };
    if constexpr (Many) {
      srv->dispatch_many_async(std::forward<Inputs>(inputs), options, std::move(done));
    } else {
      srv->dispatch_async(std::forward<Inputs>(inputs), options, std::move(done));
    }
    op->initiated();
  }
};

}  // namespace batch_serving::detail
