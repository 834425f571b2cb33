#include "batch_serving/detail/redis_reply_arena.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

namespace batch_serving::detail {
namespace {

// One block of an arena; its bytes follow the header.
struct chunk {
  chunk* next;  // the block allocated before this one
  std::size_t capacity;
  std::size_t used;
};

constexpr std::size_t align_up(std::size_t n, std::size_t to) noexcept {
  return (n + to - 1) / to * to;
}
constexpr std::size_t chunk_header_bytes = align_up(sizeof(chunk), alignof(std::max_align_t));
// Every block holds this much, but one made for a single larger string or
// element array. Blocks are kept for the next reply of the same thread (up
// to a few per thread), so a reply costs no malloc or free at all once warm:
// freeing a reply's blocks to glibc made it trim the heap and grow it again
// for the next reply (two brk system calls per reply of 64 entries).
constexpr std::size_t chunk_bytes = std::size_t{16} * 1024;
constexpr std::size_t kept_chunks_per_thread = 16;
constexpr std::size_t object_alignment = alignof(redisReply);

// The top-level reply and its arena, in the arena's first block. The reply
// comes first, so the redisReply* hiredis hands out is also the root_node*.
struct root_node {
  redisReply reply;
  chunk* chunks;  // newest first
};
static_assert(std::is_standard_layout_v<root_node>);

char* bytes_of(chunk* c) noexcept { return reinterpret_cast<char*>(c) + chunk_header_bytes; }

// This thread's kept blocks. Trivially destructible, so that a reply freed
// after the thread's cleanup ran (a static's destructor) still finds it.
struct kept_chunks {
  chunk* head = nullptr;
  std::size_t count = 0;
  bool closed = false;  // the thread is exiting: free, do not keep
};
constinit thread_local kept_chunks kept{};

// Frees the kept blocks when the thread exits.
struct kept_chunks_cleanup {
  kept_chunks_cleanup() = default;
  kept_chunks_cleanup(const kept_chunks_cleanup&) = delete;
  kept_chunks_cleanup& operator=(const kept_chunks_cleanup&) = delete;
  ~kept_chunks_cleanup() {
    kept.closed = true;
    while (kept.head != nullptr) {
      chunk* next = kept.head->next;
      std::free(kept.head);  // NOLINT(*-no-malloc, *-owning-memory)
      kept.head = next;
    }
    kept.count = 0;
  }
};

chunk* new_chunk(std::size_t capacity, chunk* next) noexcept {
  if (capacity == chunk_bytes && kept.head != nullptr) {
    chunk* reused = kept.head;
    kept.head = reused->next;
    --kept.count;
    return new (reused) chunk{next, capacity, 0};
  }
  if (capacity > SIZE_MAX - chunk_header_bytes) return nullptr;
  void* raw = std::malloc(chunk_header_bytes + capacity);  // NOLINT(*-no-malloc, *-owning-memory)
  if (raw == nullptr) return nullptr;
  return new (raw) chunk{next, capacity, 0};
}

void release_chunk(chunk* c) noexcept {
  if (c->capacity == chunk_bytes && !kept.closed && kept.count < kept_chunks_per_thread) {
    thread_local const kept_chunks_cleanup cleanup;  // registered on first use
    c->next = kept.head;
    kept.head = c;
    ++kept.count;
    return;
  }
  std::free(c);  // NOLINT(*-no-malloc, *-owning-memory)
}

void* allocate(root_node* root, std::size_t bytes) noexcept {
  if (bytes > SIZE_MAX - object_alignment) return nullptr;
  bytes = align_up(bytes, object_alignment);
  chunk* c = root->chunks;
  if (c->capacity - c->used < bytes) {
    c = new_chunk(std::max(chunk_bytes, bytes), c);
    if (c == nullptr) return nullptr;
    root->chunks = c;
  }
  void* at = bytes_of(c) + c->used;
  c->used += bytes;
  return at;
}

// The root of the reply `task` belongs to: hiredis sets a parent task's obj
// before it reads the children, and nests at most a few levels.
root_node* root_of(const redisReadTask* task) noexcept {
  while (task->parent != nullptr) task = task->parent;
  return static_cast<root_node*>(task->obj);
}

// A new object of `type`, linked into its parent array; nullptr when out of
// memory (hiredis then fails the read and frees the root).
redisReply* new_object(const redisReadTask* task, int type, root_node*& root) noexcept {
  redisReply* object = nullptr;
  if (task->parent == nullptr) {
    chunk* first = new_chunk(chunk_bytes, nullptr);
    if (first == nullptr) return nullptr;
    first->used = align_up(sizeof(root_node), object_alignment);
    root = new (bytes_of(first)) root_node{redisReply{}, first};
    object = &root->reply;
  } else {
    root = root_of(task);
    void* at = allocate(root, sizeof(redisReply));
    if (at == nullptr) return nullptr;
    object = new (at) redisReply{};
    static_cast<redisReply*>(task->parent->obj)->element[task->idx] = object;
  }
  object->type = type;
  return object;
}

// Out of memory after `object` was made: a child is freed with its root
// (hiredis frees the root when the read fails); a root hiredis does not
// know yet is freed here.
std::nullptr_t give_up(const redisReadTask* task, redisReply* object) noexcept {
  if (task->parent == nullptr) free_arena_reply(object);
  return nullptr;
}

void* create_string(const redisReadTask* task, char* text, std::size_t size) {
  root_node* root = nullptr;
  redisReply* object = new_object(task, task->type, root);
  if (object == nullptr) return nullptr;
  auto* copy = static_cast<char*>(allocate(root, size + 1));
  if (copy == nullptr) return give_up(task, object);
  if (size > 0) std::memcpy(copy, text, size);
  copy[size] = '\0';
  object->str = copy;
  object->len = size;
  return object;
}

void* create_array(const redisReadTask* task, int elements) {
  root_node* root = nullptr;
  redisReply* object = new_object(task, REDIS_REPLY_ARRAY, root);
  if (object == nullptr) return nullptr;
  if (elements > 0) {
    const auto count = static_cast<std::size_t>(elements);
    void* at = allocate(root, count * sizeof(redisReply*));
    if (at == nullptr) return give_up(task, object);
    object->element = static_cast<redisReply**>(at);
    std::fill_n(object->element, count, nullptr);
    object->elements = count;
  }
  return object;
}

void* create_integer(const redisReadTask* task, long long value) {
  root_node* root = nullptr;
  redisReply* object = new_object(task, REDIS_REPLY_INTEGER, root);
  if (object != nullptr) object->integer = value;
  return object;
}

void* create_nil(const redisReadTask* task) {
  root_node* root = nullptr;
  return new_object(task, REDIS_REPLY_NIL, root);
}

void free_root(void* reply) { free_arena_reply(static_cast<redisReply*>(reply)); }

// hiredis keeps a pointer to these for the reader's whole life.
redisReplyObjectFunctions arena_functions{create_string, create_array, create_integer, create_nil,
                                          free_root};

}  // namespace

void use_reply_arenas(redisReader* reader) noexcept { reader->fn = &arena_functions; }

void free_arena_reply(redisReply* reply) noexcept {
  if (reply == nullptr) return;
  chunk* c = reinterpret_cast<root_node*>(reply)->chunks;
  while (c != nullptr) {
    chunk* next = c->next;
    release_chunk(c);
    c = next;
  }
}

}  // namespace batch_serving::detail
