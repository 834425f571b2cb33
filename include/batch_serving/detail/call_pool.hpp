// Where call blocks come from: a pool that keeps the memory of finished calls
// for the next ones, so a server in steady state makes no heap allocation per
// call (and touches no fresh pages).
//
// Blocks are kept by size, in per-thread caches that trade whole magazines
// with a process-wide depot, as slab allocators do: a thread that frees calls
// others made (an executor finishing callback calls) hands them back in bulk.
// The pool keeps as many blocks as were ever in flight at once, until
// release_call_memory() (call_memory.hpp) returns them.
#pragma once

#include <cstddef>

namespace batch_serving::detail {

// Sizes above this come from operator new directly.
inline constexpr std::size_t largest_pooled_call = 512;

void* allocate_call_block(std::size_t size);
void free_call_block(void* block, std::size_t size) noexcept;

}  // namespace batch_serving::detail
