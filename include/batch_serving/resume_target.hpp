// Where a coroutine that co_awaits a call (coroutine.hpp) resumes: the last
// argument of every co_ form.
//
//   co_await co_dispatch(srv, 3);                          // resume_pool::shared()
//   co_await co_dispatch(srv, 3, batch_serving::resume_inline);  // the partition thread
//   batch_serving::resume_pool pool(2);
//   co_await co_dispatch(srv, 3, pool);                    // one of pool's threads
//   co_await co_dispatch(srv, 3, my_executor);             // my_executor.execute(f) or .post(f)
//
// - resume_inline: on the thread that completes the call (a partition thread,
//   or this thread if the call is refused at once): the lowest latency, but
//   the coroutine then runs on the server's thread and holds back the other
//   callers of its execution until it suspends again; never block there (a
//   blocking dispatch there is refused, see server.hpp).
// - a resume_pool: one hand-off per execution, not per call (resume_pool.hpp).
// - any executor: an object with `execute(f)` or `post(f)` taking a nullary
//   callable. Passed as an lvalue it is used by reference (keep it alive until
//   the coroutine resumed); passed as an rvalue it is moved into the awaiter
//   (for handle-like executors). By reference, the callers one execution
//   answers share one execute/post, which resumes them one after another in
//   the order they were answered; by value, one per call. Its cost, and
//   whether it allocates, is the executor's. If execute/post throws, the
//   coroutines resume on the completing thread rather than never.
// - nothing: the process-wide resume_pool::shared(), so that by default no
//   user code runs on a partition thread.
//
// A call answered before the coroutine finished suspending (refused at the
// door: overloaded, shutting down, bad input; or simply answered that fast)
// does not suspend: the coroutine goes on at once in its own thread, with no
// hand-off. So code after a co_await runs on the target or on the thread
// the co_await started on, never anywhere else.
#pragma once

#include <coroutine>
#include <type_traits>

namespace batch_serving {

struct resume_inline_t {
  explicit resume_inline_t() = default;
};
inline constexpr resume_inline_t resume_inline{};

namespace detail {
// What an executor is given: resumes one coroutine. Copyable, trivially small.
struct resume_function {
  std::coroutine_handle<> handle;
  void operator()() const { handle.resume(); }
};

}  // namespace detail

// An executor a coroutine can resume on: `e.execute(f)` or `e.post(f)`.
template <class E>
concept resume_executor = requires(E& e, detail::resume_function f) { e.execute(f); } ||
                          requires(E& e, detail::resume_function f) { e.post(f); };

class resume_pool;

// Anything the co_ forms accept as where to resume.
template <class T>
concept resume_target =
    std::is_same_v<std::remove_cvref_t<T>, resume_inline_t> ||
    std::is_same_v<std::remove_cvref_t<T>, resume_pool> || resume_executor<std::remove_cvref_t<T>>;

}  // namespace batch_serving
