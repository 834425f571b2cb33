// Kept in its own file: inlined into callers, the replaced operators would
// make GCC see new/free pairs it cannot match (-Wmismatched-new-delete).
#include "counting_allocations.hpp"

#include <cstdlib>
#include <new>

namespace {
thread_local std::size_t allocations_here = 0;
}  // namespace

void* operator new(std::size_t size) {
  ++allocations_here;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace batch_serving::testing {

std::size_t allocations_by_this_thread() noexcept { return allocations_here; }

}  // namespace batch_serving::testing
