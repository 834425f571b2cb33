// What a serving is: how to create a partition's batch function, its default
// batch size, and the caller-side mappings. Immutable once built and shared
// by servings, servers and in-flight asynchronous calls.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving::detail {

template <class In, class Out, class CallIn, class CallOut>
struct serving_definition {
  handler_factory<In, Out> factory;
  std::optional<std::size_t> batch_size;
  // Empty means identity (only possible while CallIn is In / CallOut is Out).
  std::function<In(const CallIn&)> map_in;
  std::function<CallOut(Out&&)> map_out;

  // Maps one caller item to a batch value. Throws what map_inputs throws.
  In to_batch(const CallIn& item) const {
    if constexpr (std::is_same_v<In, CallIn>) {
      if (!map_in) return item;
    }
    return map_in(item);
  }

  // Maps one caller item into `input`; a throwing map_inputs becomes an
  // invalid_argument error for this caller alone.
  std::optional<error> to_batch(const CallIn& item, std::optional<In>& input) const {
    try {
      input.emplace(to_batch(item));
    } catch (...) {
      return error(errc::invalid_argument, "map_inputs threw: " + describe_current_exception());
    }
    return std::nullopt;
  }

  // Maps a caller's items into `inputs`; a throwing map_inputs becomes an
  // invalid_argument error for this caller alone.
  std::optional<error> to_batch(std::span<const CallIn> items, std::vector<In>& inputs) const {
    try {
      inputs.reserve(items.size());
      for (const auto& item : items) inputs.push_back(to_batch(item));
    } catch (...) {
      return error(errc::invalid_argument, "map_inputs threw: " + describe_current_exception());
    }
    return std::nullopt;
  }

  result<CallOut> finish(result<Out>&& answer) const {
    if (!answer.ok()) return answer.error();
    if constexpr (std::is_same_v<Out, CallOut>) {
      if (!map_out) return std::move(answer);
    }
    try {
      return map_out(std::move(*answer));
    } catch (...) {
      return error(errc::execution_failed, "map_results threw: " + describe_current_exception());
    }
  }

  result<std::vector<CallOut>> finish(result<std::vector<Out>>&& answer) const {
    if (!answer.ok()) return answer.error();
    if constexpr (std::is_same_v<Out, CallOut>) {
      if (!map_out) return std::move(answer);
    }
    try {
      std::vector<CallOut> mapped;
      mapped.reserve(answer->size());
      for (auto& out : *answer) mapped.push_back(map_out(std::move(out)));
      return mapped;
    } catch (...) {
      return error(errc::execution_failed, "map_results threw: " + describe_current_exception());
    }
  }
};

}  // namespace batch_serving::detail
