// The process's memory use, as the memory scenario reads it before and after
// queueing requests: heap bytes in use (glibc mallinfo2: arenas + mmapped
// chunks, all threads) and the resident set size (/proc/self/statm).
#pragma once

#include <cstdint>
#include <optional>

namespace bench {

struct memory_usage {
  std::optional<std::int64_t> heap_bytes;      // empty without glibc
  std::optional<std::int64_t> resident_bytes;  // empty without /proc
};

memory_usage read_memory_usage();

// Returns batch_serving's pooled call blocks to the heap and the heap's free
// memory to the system (glibc malloc_trim), so that heap and resident-set
// growth afterwards reflect new allocations instead of reused blocks and
// pages. malloc_trim is a no-op elsewhere.
void release_free_memory();

}  // namespace bench
