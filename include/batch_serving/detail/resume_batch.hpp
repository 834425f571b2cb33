// The coroutines one execution's answers resume, handed to where they resume
// in one go. While a partition delivers an execution's answers (a
// resume_batch_scope is open on its thread), a resumer adds its coroutine to
// the thread's batch instead of handing it over alone; the batch goes out
// when delivery ends: one push onto a resume_pool's list, one post to an
// executor. So a pool thread takes all 64 callers of a full execution at
// once, instead of taking the first few while the rest arrive and wake a
// second thread that then fights it for the queue lock. Hook events are not
// batched: they are progress, delivered while the execution runs.
#pragma once

#include <memory>
#include <utility>

#include "batch_serving/detail/resume_node.hpp"

namespace batch_serving::detail {

class resume_batch {
 public:
  // Sends the chain (oldest..newest, linked newest first) to `target`.
  using send_fn = void (*)(void* target, resume_node* oldest, resume_node* newest) noexcept;

  resume_batch() = default;
  resume_batch(const resume_batch&) = delete;
  resume_batch& operator=(const resume_batch&) = delete;
  ~resume_batch() { send(); }

  // Adds `node`, bound for `target` (sent by `send_to`, kept alive by
  // `keep`). A batch goes to one target: one bound elsewhere (or sent
  // another way) sends the batch so far first (an execution's callers
  // rarely resume in two places).
  void add(void* target, send_fn send_to, std::shared_ptr<void> keep, resume_node* node) noexcept {
    if (target != target_ || send_to != send_to_) {
      send();
      target_ = target;
      send_to_ = send_to;
      keep_ = std::move(keep);
    }
    node->next = newest_;
    newest_ = node;
    if (oldest_ == nullptr) oldest_ = node;
  }

  // Hands the batch over (the coroutines may run, here or elsewhere).
  void send() noexcept {
    if (newest_ == nullptr) return;
    resume_node* const oldest = std::exchange(oldest_, nullptr);
    resume_node* const newest = std::exchange(newest_, nullptr);
    void* const target = std::exchange(target_, nullptr);
    const std::shared_ptr<void> keep = std::move(keep_);  // alive until sent
    send_to_(target, oldest, newest);
  }

 private:
  void* target_ = nullptr;
  send_fn send_to_ = nullptr;
  std::shared_ptr<void> keep_;
  resume_node* oldest_ = nullptr;
  resume_node* newest_ = nullptr;
};

// Opens a batch on this thread for its lifetime; nested scopes each have
// their own. On close the batch is sent after the outer one is current
// again, so coroutines resumed by the send that answer more calls do not
// add to a batch nobody sends.
class resume_batch_scope {
 public:
  resume_batch_scope() noexcept : outer_(current_) { current_ = &batch_; }
  resume_batch_scope(const resume_batch_scope&) = delete;
  resume_batch_scope& operator=(const resume_batch_scope&) = delete;
  ~resume_batch_scope() {
    current_ = outer_;
    batch_.send();
  }

  // This thread's open batch, or nullptr.
  static resume_batch* current() noexcept { return current_; }

 private:
  static constinit inline thread_local resume_batch* current_ = nullptr;

  resume_batch batch_;
  resume_batch* outer_;
};

}  // namespace batch_serving::detail
