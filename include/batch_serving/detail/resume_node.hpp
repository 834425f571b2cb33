// One coroutine waiting to be resumed, linked into a resume_queue. Lives in
// the awaiter, so in the waiting coroutine's frame: queueing allocates nothing.
#pragma once

#include <coroutine>

namespace batch_serving::detail {

struct resume_node {
  resume_node* next = nullptr;
  std::coroutine_handle<> handle{};
};

// Resumes `h`; an exception that escapes the coroutine (its promise's
// unhandled_exception rethrew) has nowhere to go on a library thread and is
// dropped (documented in resume_target.hpp).
inline void resume_dropping_exceptions(std::coroutine_handle<> h) noexcept {
  try {
    h.resume();
  } catch (...) {  // NOLINT(bugprone-empty-catch): documented, nobody to tell
  }
}

// Resumes a list linked newest first (ending in nullptr) in arrival order.
// Each node's next is read before its coroutine runs (the node lives there).
inline void resume_newest_first(resume_node* list) noexcept {
  resume_node* in_order = nullptr;
  while (list != nullptr) {
    resume_node* next = list->next;
    list->next = in_order;
    in_order = list;
    list = next;
  }
  while (in_order != nullptr) {
    resume_node* next = in_order->next;
    resume_dropping_exceptions(in_order->handle);
    in_order = next;
  }
}

// What an executor passed by reference is given for one execution's callers
// (resume_batch.hpp): resumes them all, in the order they were answered.
struct resume_chain {
  resume_node* newest;
  void operator()() const noexcept { resume_newest_first(newest); }
};

}  // namespace batch_serving::detail
