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

}  // namespace batch_serving::detail
