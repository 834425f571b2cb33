// How an awaiter resumes its coroutine on the target the caller chose
// (resume_target.hpp). Each resumer is held by the awaiter, in the coroutine
// frame; resume() is its last touch of the awaiter (the coroutine may run,
// and free the frame, before resume() returns).
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

#include "batch_serving/detail/resume_batch.hpp"
#include "batch_serving/detail/resume_node.hpp"
#include "batch_serving/detail/resume_queue.hpp"
#include "batch_serving/resume_pool.hpp"
#include "batch_serving/resume_target.hpp"

namespace batch_serving::detail {

struct inline_resumer {
  void resume(resume_node& node) noexcept { resume_dropping_exceptions(node.handle); }
};

class pool_resumer {
 public:
  explicit pool_resumer(const resume_pool& pool) : queue_(pool.queue()) {}
  void resume(resume_node& node) noexcept {
    // Moved out first: the awaiter (and its copy) may be gone once pushed.
    std::shared_ptr<resume_queue> queue = std::move(queue_);
    if (resume_batch* batch = resume_batch_scope::current()) {
      resume_queue* const target = queue.get();
      batch->add(target, &resume_queue::send_chain, std::move(queue), &node);
      return;
    }
    queue->push(&node);
  }

 private:
  std::shared_ptr<resume_queue> queue_;
};

// Holds E* for an lvalue executor, E for an rvalue one.
template <class Held>
class executor_resumer {
 public:
  explicit executor_resumer(Held executor) : executor_(std::move(executor)) {}
  void resume(resume_node& node) noexcept {
    Held local = std::move(executor_);  // the awaiter may be gone once handed over
    if constexpr (std::is_pointer_v<Held>) {
      // By reference: the callers of one execution share one post.
      if (resume_batch* batch = resume_batch_scope::current()) {
        batch->add(const_cast<void*>(static_cast<const void*>(local)), &send_chain, nullptr, &node);
        return;
      }
    }
    try {
      if constexpr (std::is_pointer_v<Held>) {
        hand_over(*local, node.handle);
      } else {
        hand_over(local, node.handle);
      }
    } catch (...) {
      resume_dropping_exceptions(node.handle);  // documented: better here than never
    }
  }

 private:
  template <class E, class F>
  static void hand_over(E& e, F f) {
    if constexpr (requires { e.execute(f); }) {
      e.execute(std::move(f));
    } else {
      e.post(std::move(f));
    }
  }
  template <class E>
  static void hand_over(E& e, std::coroutine_handle<> h) {
    hand_over(e, resume_function{h});
  }

  // resume_batch's send_fn: one execute/post resumes the whole chain.
  static void send_chain(void* executor, resume_node* oldest, resume_node* newest) noexcept {
    oldest->next = nullptr;
    using E = std::remove_pointer_t<Held>;
    try {
      hand_over(*static_cast<E*>(executor), resume_chain{newest});
    } catch (...) {
      resume_newest_first(newest);  // documented: better here than never
    }
  }

  Held executor_;
};

// The resumer for what the caller passed.
inline inline_resumer make_resumer(resume_inline_t) noexcept { return {}; }
inline pool_resumer make_resumer(const resume_pool& pool) { return pool_resumer(pool); }
template <class E>
  requires resume_executor<std::remove_cvref_t<E>>
auto make_resumer(E&& executor) {
  if constexpr (std::is_lvalue_reference_v<E>) {
    return executor_resumer<std::remove_reference_t<E>*>(&executor);
  } else {
    return executor_resumer<std::remove_cvref_t<E>>(std::forward<E>(executor));
  }
}

template <class Target>
using resumer_for = decltype(make_resumer(std::declval<Target>()));

}  // namespace batch_serving::detail
