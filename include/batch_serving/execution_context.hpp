// What a batch function is told about where and what it runs.
//
// A module serving's constructor receives a `partition_info` once per partition
// (the seed's init/3): whether it runs inline in a caller's thread or in a
// server, and which partition it is. Its handle_batch receives an
// `execution_context` for each execution.
//
//   struct embedder {
//     explicit embedder(const batch_serving::partition_info& where)
//         : model_(load_model(/*device=*/where.index)) {}
//     std::vector<vec> handle_batch(std::span<const text> batch,
//                                   batch_serving::execution_context& ctx) {
//       return model_.embed(batch);   // ctx.size() == batch.size()
//     }
//     model model_;
//   };
#pragma once

#include <cstddef>

namespace batch_serving {

// Where a serving's batch function runs.
enum class execution_mode {
  inline_run,  // in the caller's thread: serving::run / run_many
  server,      // in a server's partition thread
};

// Told once to each partition's state when it is created.
struct partition_info {
  execution_mode mode = execution_mode::inline_run;
  std::size_t index = 0;       // partition index, 0 for inline runs
  std::size_t batch_size = 1;  // the most items one execution will hold
};

// Told to the batch function at each execution. Not thread-safe; valid only
// during the call it was passed to.
class execution_context {
 public:
  execution_context(const partition_info& where, std::size_t size) noexcept
      : where_(where), size_(size) {}

  execution_mode mode() const noexcept { return where_.mode; }
  std::size_t partition() const noexcept { return where_.index; }
  // Items in this execution.
  std::size_t size() const noexcept { return size_; }

 private:
  const partition_info& where_;
  std::size_t size_;
};

}  // namespace batch_serving
