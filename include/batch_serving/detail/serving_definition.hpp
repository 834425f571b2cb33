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

  // Maps one caller item into `input`: map_inputs, or a copy of the item
  // when none is set. What throws becomes an invalid_argument error for this
  // caller alone, naming it.
  std::optional<error> to_batch(const CallIn& item, std::optional<In>& input) const {
    try {
      if constexpr (std::is_same_v<In, CallIn>) {
        if (!map_in) {
          if constexpr (std::is_copy_constructible_v<In>) {
            input.emplace(item);
            return std::nullopt;
          } else {
            return error(errc::invalid_argument,
                         "this input type cannot be copied: pass the item as an rvalue "
                         "(std::move) or as a std::vector");
          }
        }
      }
      input.emplace(map_in(item));
    } catch (...) {
      return input_error();
    }
    return std::nullopt;
  }

  // The same for an item the caller gave up: moved when no map_inputs is
  // set (move-only inputs take this path).
  std::optional<error> to_batch(CallIn&& item, std::optional<In>& input) const {
    try {
      if constexpr (std::is_same_v<In, CallIn>) {
        if (!map_in) {
          input.emplace(std::move(item));
          return std::nullopt;
        }
      }
      input.emplace(map_in(item));
    } catch (...) {
      return input_error(/*moved=*/true);
    }
    return std::nullopt;
  }

  // Maps a caller's items into `inputs` (copies them when no map_inputs is
  // set), as above.
  std::optional<error> to_batch(std::span<const CallIn> items, std::vector<In>& inputs) const {
    try {
      inputs.reserve(items.size());
      for (const auto& item : items) {
        std::optional<In> one;
        if (auto bad = to_batch(item, one)) return bad;
        inputs.push_back(std::move(*one));
      }
    } catch (...) {
      return input_error(/*moved=*/true);
    }
    return std::nullopt;
  }

  // The caller's answer: map_results of each output, or the outputs as they
  // are. What throws (map_results, a result type's move) becomes an
  // execution_failed error for this caller alone, naming it.
  result<CallOut> finish(result<Out>&& answer) const {
    if (!answer.ok()) return answer.error();
    try {
      if constexpr (std::is_same_v<Out, CallOut>) {
        if (!map_out) return std::move(answer);
      }
      return map_out(std::move(*answer));
    } catch (...) {
      return output_error();
    }
  }

  result<std::vector<CallOut>> finish(result<std::vector<Out>>&& answer) const {
    if (!answer.ok()) return answer.error();
    try {
      if constexpr (std::is_same_v<Out, CallOut>) {
        if (!map_out) return std::move(answer);
      }
      std::vector<CallOut> mapped;
      mapped.reserve(answer->size());
      for (auto& out : *answer) mapped.push_back(map_out(std::move(out)));
      return mapped;
    } catch (...) {
      return output_error();
    }
  }

 private:
  error input_error(bool moved = false) const {
    const char* what = map_in  ? "map_inputs threw: "
                       : moved ? "moving the input threw: "
                               : "copying the input threw: ";
    return error(errc::invalid_argument, what + describe_current_exception());
  }
  error output_error() const {
    const char* what = map_out ? "map_results threw: " : "moving the result to its caller threw: ";
    return error(errc::execution_failed, what + describe_current_exception());
  }
};

}  // namespace batch_serving::detail
