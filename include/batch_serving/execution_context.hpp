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
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "batch_serving/detail/hook_payload.hpp"
#include "batch_serving/error.hpp"

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
// during the call it was passed to. The accessors never block or allocate.
class execution_context {
 public:
  execution_context(const partition_info& where, std::size_t size,
                    detail::hook_sink* hooks = nullptr) noexcept
      : where_(where), size_(size), hooks_(hooks) {}

  execution_mode mode() const noexcept { return where_.mode; }
  std::size_t partition() const noexcept { return where_.index; }
  // Items in this execution.
  std::size_t size() const noexcept { return size_; }

  // Whether anyone reads `hook`: true when the serving is streaming and
  // declared it. A batch function may skip building a payload nobody wants.
  // Never blocks or allocates.
  bool wants(std::string_view hook) const noexcept {
    return hooks_ != nullptr && hooks_->wants(hook);
  }

  // Emits the hook `hook` of a streaming serving: `payload[i]` belongs to
  // input i, so it must hold size() entries. Each streaming caller receives,
  // as a hook event, the entries of its own items, in its stream's order;
  // read them with event::payload<T>(). A hook nobody wants (see wants(): a
  // plain serving, or a name the streaming serving did not declare) is
  // dropped and counted (server_stats::hook_events_dropped), so one batch
  // function serves with and without progress. Throws serving_error
  // (invalid_argument) if a wanted payload has the wrong length; uncaught,
  // that fails the execution. Allocates once per wanted emission (the
  // payload is shared by all callers); the events reach the callers'
  // streams before emit returns.
  template <class T>
  void emit(std::string_view hook, std::vector<T> payload) {
    static_assert(!std::is_same_v<T, bool>, "use std::vector<char> or a struct, not vector<bool>");
    if (!wants(hook)) {
      if (hooks_ != nullptr) hooks_->dropped(hook);
      return;
    }
    if (payload.size() != size_) {
      throw serving_error(errc::invalid_argument, "hook '" + std::string(hook) + "' payload has " +
                                                      std::to_string(payload.size()) +
                                                      " entries for " + std::to_string(size_) +
                                                      " items");
    }
    auto owner = std::make_shared<const std::vector<T>>(std::move(payload));
    hooks_->emit(hook, detail::hook_payload{owner, &typeid(T), owner->data(), sizeof(T), size_});
  }

 private:
  const partition_info& where_;
  std::size_t size_;
  detail::hook_sink* hooks_;
};

}  // namespace batch_serving
