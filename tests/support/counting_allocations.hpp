// Counts the allocations each thread makes through the global operator new.
// A test program that links counting_allocations.cpp replaces the global
// operator new and delete with counting ones (plain malloc/free underneath).
#pragma once

#include <cstddef>

namespace batch_serving::testing {

std::size_t allocations_by_this_thread() noexcept;

}  // namespace batch_serving::testing
