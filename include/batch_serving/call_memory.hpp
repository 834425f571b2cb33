// The memory the library keeps for reuse.
//
// Every call needs a small block (about 120 bytes for a single int). Blocks
// of finished calls are kept for the next calls instead of going back to the
// allocator, so a loaded server allocates nothing per call. The pool grows to
// the largest number of calls ever in flight at once; after a one-off burst
// (a million queued futures, say) release_call_memory() gives that back.
#pragma once

#include <cstddef>

namespace batch_serving {

struct call_memory_stats {
  std::size_t pooled_blocks = 0;  // free blocks kept for reuse
  std::size_t pooled_bytes = 0;   // their size in all
};

// Free blocks in the shared depot and in the calling thread's cache (other
// threads' caches hold at most 64 blocks per size each).
call_memory_stats pooled_call_memory() noexcept;

// Returns the free blocks of the shared depot and of the calling thread's
// cache to the allocator. Returns the bytes released. Thread-safe.
std::size_t release_call_memory() noexcept;

}  // namespace batch_serving
