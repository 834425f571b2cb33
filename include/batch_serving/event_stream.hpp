// event_stream<T>: the events of one streaming call, read in order by
// blocking iteration. Move-only. Not thread-safe: one thread reads it at a
// time (it may be moved to another thread).
//
//   batch_serving::event_stream<int> events = srv.dispatch_many({1, 2, 3, 4});
//   for (auto& ev : events) {           // blocks until each event arrives
//     if (ev.kind() == batch_serving::event_kind::batch) use(ev.batch());
//   }
//
// Destroying a stream before its end abandons it: the call still runs, its
// remaining events are dropped, and nobody waits for the reader.
#pragma once

#include <iterator>
#include <optional>
#include <utility>
#include <vector>

#include "batch_serving/detail/stream_state.hpp"
#include "batch_serving/event.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving {

namespace detail {
struct stream_access;  // the non-blocking reader (next_event_awaiter.hpp)
}  // namespace detail

template <class T>
class [[nodiscard]] event_stream {
 public:
  explicit event_stream(detail::stream_state<T>* state) noexcept : state_(state) {}
  event_stream(event_stream&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  event_stream& operator=(event_stream&& other) noexcept {
    if (this != &other) {
      reset();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  event_stream(const event_stream&) = delete;
  event_stream& operator=(const event_stream&) = delete;
  ~event_stream() { reset(); }

  // Blocks until the next event; nullopt once the stream ended (or for a
  // moved-from stream). An error event is the last one. Runs the serving's
  // map_results for the event in this thread.
  std::optional<event<T>> next() { return state_ != nullptr ? state_->next() : std::nullopt; }

  // Blocks reading the stream to its end and returns every result in order
  // (batch and item events), or the error that ended it. Hook events are
  // skipped. Allocates the result vector. A stream without a call (moved
  // from) answers invalid_argument.
  result<std::vector<T>> collect() {
    if (state_ == nullptr) {
      return batch_serving::error(errc::invalid_argument,
                                  "event_stream::collect() on a stream without a call (moved from, "
                                  "or the callback form's empty handle)");
    }
    std::vector<T> all;
    while (auto ev = next()) {
      switch (ev->kind()) {
        case event_kind::batch:
          for (auto& v : ev->batch()) all.push_back(std::move(v));
          break;
        case event_kind::item: all.push_back(std::move(ev->item())); break;
        case event_kind::error: return ev->error();
        default: break;
      }
    }
    return all;
  }

  // Input iteration: `for (auto& ev : stream)`.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = event<T>;
    using difference_type = std::ptrdiff_t;
    using pointer = event<T>*;
    using reference = event<T>&;

    iterator() = default;
    explicit iterator(event_stream* stream) : stream_(stream) { ++*this; }

    reference operator*() const { return *current_; }
    pointer operator->() const { return &*current_; }
    iterator& operator++() {
      current_ = stream_->next();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) {
      return !it.current_.has_value();
    }

   private:
    event_stream* stream_ = nullptr;
    mutable std::optional<event<T>> current_;
  };

  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  friend struct detail::stream_access;

  void reset() noexcept {
    if (state_ != nullptr) std::exchange(state_, nullptr)->abandon();
  }

  detail::stream_state<T>* state_ = nullptr;
};

}  // namespace batch_serving
