#include "batch_serving/detail/call_pool.hpp"

#include <array>
#include <new>
#include <utility>
#include <vector>

#include "batch_serving/call_memory.hpp"
#include "batch_serving/detail/fork_guard.hpp"
#include "batch_serving/detail/mutex.hpp"
#include "batch_serving/detail/thread_annotations.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define BATCH_SERVING_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BATCH_SERVING_ASAN 1
#endif
#endif
#if defined(BATCH_SERVING_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace batch_serving::detail {
namespace {

// A pooled block stays poisoned while free, so AddressSanitizer still
// reports a use of a finished call. All but its link to the next free block:
// LeakSanitizer ignores pointers in poisoned memory and would report the
// rest of the list as leaked.
void poison(void* block, std::size_t bytes) noexcept {
#if defined(BATCH_SERVING_ASAN)
  ASAN_POISON_MEMORY_REGION(static_cast<char*>(block) + sizeof(void*), bytes - sizeof(void*));
#else
  static_cast<void>(block);
  static_cast<void>(bytes);
#endif
}
void unpoison(void* block, std::size_t bytes) noexcept {
#if defined(BATCH_SERVING_ASAN)
  ASAN_UNPOISON_MEMORY_REGION(block, bytes);
#else
  static_cast<void>(block);
  static_cast<void>(bytes);
#endif
}

constexpr std::size_t granule = 8;  // call sizes are multiples of their alignment, at least 8
constexpr std::size_t size_classes = largest_pooled_call / granule;
// Blocks a thread trades with the depot at a time. A thread keeps at most
// two magazines per size (64 blocks, about 8 KB for an int call), so a
// thousand request threads hoard little; the depot's mutex is still taken
// only once per 32 calls.
constexpr std::size_t magazine_capacity = 32;

std::size_t class_of(std::size_t size) noexcept { return (size + granule - 1) / granule - 1; }
std::size_t class_bytes(std::size_t size_class) noexcept { return (size_class + 1) * granule; }

struct free_block {
  free_block* next;
};

// A stack of free blocks of one size class.
struct magazine {
  free_block* top = nullptr;
  std::size_t count = 0;

  bool empty() const noexcept { return count == 0; }
  bool full() const noexcept { return count >= magazine_capacity; }

  void push(void* block, std::size_t bytes) noexcept {
    auto* b = static_cast<free_block*>(block);
    b->next = top;
    poison(b, bytes);
    top = b;
    ++count;
  }
  void* pop(std::size_t bytes) noexcept {
    free_block* b = top;
    unpoison(b, bytes);
    top = b->next;
    --count;
    return b;
  }
  // Gives every block back to the allocator; returns the bytes released.
  std::size_t release(std::size_t bytes) noexcept {
    std::size_t released = 0;
    while (!empty()) {
      ::operator delete(pop(bytes));
      released += bytes;
    }
    return released;
  }
};

// Full magazines shared by all threads.
class depot {
 public:
  // Takes `m`; if the shelf cannot grow, gives its blocks back to the allocator.
  void put(std::size_t size_class, magazine m) noexcept {
    try {
      lock_guard lock(mu_);
      magazines_[size_class].push_back(m);
    } catch (...) {
      m.release(class_bytes(size_class));
    }
  }
  bool take(std::size_t size_class, magazine& out) noexcept {
    lock_guard lock(mu_);
    auto& shelf = magazines_[size_class];
    if (shelf.empty()) return false;
    out = shelf.back();
    shelf.pop_back();
    return true;
  }
  void add_to(call_memory_stats& stats) noexcept {
    lock_guard lock(mu_);
    for (std::size_t c = 0; c < size_classes; ++c) {
      for (const magazine& m : magazines_[c]) {
        stats.pooled_blocks += m.count;
        stats.pooled_bytes += m.count * class_bytes(c);
      }
    }
  }
  std::size_t release() noexcept {
    std::array<std::vector<magazine>, size_classes> taken;
    {
      lock_guard lock(mu_);
      taken.swap(magazines_);
    }
    std::size_t released = 0;
    for (std::size_t c = 0; c < size_classes; ++c) {
      for (magazine& m : taken[c]) released += m.release(class_bytes(c));
    }
    return released;
  }

 // Held across fork() so that the child finds it free (fork_guard.hpp).
  void lock_for_fork() BATCH_SERVING_NO_THREAD_SAFETY_ANALYSIS { mu_.lock(); }
  void unlock_after_fork() BATCH_SERVING_NO_THREAD_SAFETY_ANALYSIS { mu_.unlock(); }

 private:
  mutex mu_;
  std::array<std::vector<magazine>, size_classes> magazines_ BATCH_SERVING_GUARDED_BY(mu_);
};

depot& shared_depot();
void lock_depot_for_fork() { shared_depot().lock_for_fork(); }
void unlock_depot_after_fork() { shared_depot().unlock_after_fork(); }

// Never destroyed: threads may still finish calls during static destruction.
depot& shared_depot() {
  static depot* const instance = [] {
    on_fork(&lock_depot_for_fork, &unlock_depot_after_fork, &unlock_depot_after_fork);
    return new depot;
  }();
  return *instance;
}

// One thread's blocks: per class a loaded magazine and a spare, so a thread
// alternating between allocating and freeing around a boundary does not trade
// with the depot on every call.
struct thread_cache {
  struct slot {
    magazine loaded;
    magazine spare;
  };
  std::array<slot, size_classes> slots;

  void* allocate(std::size_t size_class) {
    slot& s = slots[size_class];
    if (s.loaded.empty()) {
      if (!s.spare.empty()) {
        std::swap(s.loaded, s.spare);
      } else if (!shared_depot().take(size_class, s.loaded)) {
        return ::operator new(class_bytes(size_class));
      }
    }
    return s.loaded.pop(class_bytes(size_class));
  }

  void free(void* block, std::size_t size_class) noexcept {
    slot& s = slots[size_class];
    if (s.loaded.full()) {
      if (s.spare.empty()) {
        std::swap(s.loaded, s.spare);
      } else {
        shared_depot().put(size_class, std::exchange(s.spare, std::exchange(s.loaded, {})));
      }
    }
    s.loaded.push(block, class_bytes(size_class));
  }

  // Hands every magazine to the depot (thread exit).
  void flush() noexcept {
    for (std::size_t c = 0; c < size_classes; ++c) {
      for (magazine* m : {&slots[c].loaded, &slots[c].spare}) {
        if (!m->empty()) shared_depot().put(c, std::exchange(*m, {}));
      }
    }
  }

  // Gives every block back to the allocator; returns the bytes released.
  std::size_t release() noexcept {
    std::size_t released = 0;
    for (std::size_t c = 0; c < size_classes; ++c) {
      released += slots[c].loaded.release(class_bytes(c));
      released += slots[c].spare.release(class_bytes(c));
    }
    return released;
  }

  void add_to(call_memory_stats& stats) const noexcept {
    for (std::size_t c = 0; c < size_classes; ++c) {
      const std::size_t blocks = slots[c].loaded.count + slots[c].spare.count;
      stats.pooled_blocks += blocks;
      stats.pooled_bytes += blocks * class_bytes(c);
    }
  }
};

// The cache is plain data (no guard on each access); a separate object's
// destructor flushes it when the thread exits. After that the thread uses
// the allocator directly.
enum class cache_state : unsigned char { unused, live, gone };
constinit thread_local thread_cache cache{};
constinit thread_local cache_state state = cache_state::unused;

struct flush_at_thread_exit {
  flush_at_thread_exit() noexcept { state = cache_state::live; }
  ~flush_at_thread_exit() {
    state = cache_state::gone;
    cache.flush();
  }
};

// The calling thread's cache, or nullptr once the thread is exiting.
thread_cache* my_cache() {
  if (state == cache_state::live) [[likely]] {
    return &cache;
  }
  if (state == cache_state::gone) return nullptr;
  thread_local flush_at_thread_exit flusher;  // constructed here, once per thread
  static_cast<void>(flusher);
  return &cache;
}

}  // namespace

void* allocate_call_block(std::size_t size) {
  if (size > largest_pooled_call) return ::operator new(size);
  thread_cache* c = my_cache();
  const std::size_t size_class = class_of(size);
  return c != nullptr ? c->allocate(size_class) : ::operator new(class_bytes(size_class));
}

void free_call_block(void* block, std::size_t size) noexcept {
  if (block == nullptr) return;
  thread_cache* c = size <= largest_pooled_call ? my_cache() : nullptr;
  if (c == nullptr) {
    ::operator delete(block);
    return;
  }
  c->free(block, class_of(size));
}

}  // namespace batch_serving::detail

namespace batch_serving {

call_memory_stats pooled_call_memory() noexcept {
  call_memory_stats stats;
  detail::cache.add_to(stats);
  detail::shared_depot().add_to(stats);
  return stats;
}

std::size_t release_call_memory() noexcept {
  return detail::cache.release() + detail::shared_depot().release();
}

}  // namespace batch_serving
