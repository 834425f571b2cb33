// What survives fork(): only the forking thread. A server's partition and
// timer threads are gone in the child, and any lock they held stays held, so
// a server started before fork() must not be used there: it refuses calls
// with no_serving at once, and its stop and destruction do nothing (its
// memory is left to the child's exit). Servers started in the child work.
//
// fork_generation() counts the fork()s this process came out of; an engine
// compares it with the count when it was made (one relaxed load per call).
// The library's process-wide mutexes (the registry's, the call pool's) are
// held across fork() by the forking thread (pthread_atfork), so the child
// finds them free.
#pragma once

namespace batch_serving::detail {

unsigned fork_generation() noexcept;

// Runs `prepare` before fork() in the forking thread, `parent` after it in
// the parent, `child` after it in the child (pthread_atfork). Returns true.
bool on_fork(void (*prepare)(), void (*parent)(), void (*child)()) noexcept;

}  // namespace batch_serving::detail
