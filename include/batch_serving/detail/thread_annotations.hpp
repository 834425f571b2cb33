// Clang's thread-safety attributes, spelled BATCH_SERVING_*: the lock rules
// (which mutex guards a member, which lock a function needs) are written on
// the code and checked by `clang++ -Wthread-safety` (a CI stage). Other
// compilers see nothing.
//
//   class counter {
//     detail::mutex mu_;
//     int n_ BATCH_SERVING_GUARDED_BY(mu_) = 0;
//     void bump_locked() BATCH_SERVING_REQUIRES(mu_) { ++n_; }
//   };
#pragma once

#if defined(__clang__)
#define BATCH_SERVING_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define BATCH_SERVING_THREAD_ANNOTATION(x)
#endif

// A type that is a lock (a mutex, a spin lock).
#define BATCH_SERVING_CAPABILITY(name) BATCH_SERVING_THREAD_ANNOTATION(capability(name))
// An RAII type that holds a lock for its lifetime (and may drop and retake it).
#define BATCH_SERVING_SCOPED_CAPABILITY BATCH_SERVING_THREAD_ANNOTATION(scoped_lockable)
// A member read or written only with the lock held.
#define BATCH_SERVING_GUARDED_BY(x) BATCH_SERVING_THREAD_ANNOTATION(guarded_by(x))
// A pointer whose target is read or written only with the lock held.
#define BATCH_SERVING_PT_GUARDED_BY(x) BATCH_SERVING_THREAD_ANNOTATION(pt_guarded_by(x))
// A function its caller must call with the lock held / not held.
#define BATCH_SERVING_REQUIRES(...) \
  BATCH_SERVING_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define BATCH_SERVING_EXCLUDES(...) BATCH_SERVING_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// A function that takes / gives up / tries to take the lock.
#define BATCH_SERVING_ACQUIRE(...) BATCH_SERVING_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define BATCH_SERVING_RELEASE(...) BATCH_SERVING_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define BATCH_SERVING_TRY_ACQUIRE(...) \
  BATCH_SERVING_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
// A function whose locking the analysis cannot follow; say why beside it.
#define BATCH_SERVING_NO_THREAD_SAFETY_ANALYSIS \
  BATCH_SERVING_THREAD_ANNOTATION(no_thread_safety_analysis)
