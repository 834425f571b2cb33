// What an event_stream<T> reads from: implemented by the streaming call kind
// (stream_call.hpp) and by already-complete streams (collected_stream.hpp).
#pragma once

#include <optional>

#include "batch_serving/event.hpp"

namespace batch_serving::detail {

template <class T>
class stream_state {
 public:
  // Blocks for the next event; nullopt after the end (or after an error event).
  virtual std::optional<event<T>> next() = 0;
  // The reader is gone: drop what is left, give up the reader's reference.
  virtual void abandon() noexcept = 0;

 protected:
  ~stream_state() = default;
};

}  // namespace batch_serving::detail
