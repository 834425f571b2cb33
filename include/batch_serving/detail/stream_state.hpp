// What an event_stream<T> reads from: implemented by the streaming call kind
// (stream_call.hpp), by already-complete streams (collected_stream.hpp) and by
// remote streams (redis_client.hpp).
#pragma once

#include <optional>

#include "batch_serving/event.hpp"

namespace batch_serving::detail {

// Told once that a stream has its next event (or its end): how a reader that
// must not block (a coroutine, coroutine.hpp) waits.
class stream_waiter {
 public:
  // Called at most once per registration, outside the stream's locks, from
  // the thread that added the event. The stream may be read (and destroyed)
  // from here on, so the caller touches nothing of it afterwards.
  virtual void event_ready() noexcept = 0;

 protected:
  ~stream_waiter() = default;
};

template <class T>
class stream_state {
 public:
  // Blocks for the next event; nullopt after the end (or after an error event).
  virtual std::optional<event<T>> next() = 0;
  // Never blocks: true if next() would return at once. Otherwise remembers
  // `waiter` (replacing any earlier one) and calls its event_ready() when the
  // next event or the end arrives; then returns false. One reader at a time,
  // as for next().
  virtual bool ready_or_notify(stream_waiter& waiter) = 0;
  // The reader is gone: drop what is left, give up the reader's reference.
  virtual void abandon() noexcept = 0;

 protected:
  ~stream_state() = default;
};

}  // namespace batch_serving::detail
