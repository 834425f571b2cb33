// event<T>: one step of a streaming call (see streaming.hpp): a batch of the
// caller's results, a single result, a hook's payload for the caller's items,
// or the error that ended the stream.
//
//   for (auto& ev : srv.dispatch_many(chunks)) {
//     switch (ev.kind()) {
//       case batch_serving::event_kind::hook:  show(ev.hook(), ev.payload<int>()); break;
//       case batch_serving::event_kind::batch: store(ev.batch()); break;
//       case batch_serving::event_kind::error: report(ev.error()); break;
//       default: break;
//     }
//   }
#pragma once

#include <optional>
#include <span>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "batch_serving/detail/hook_payload.hpp"
#include "batch_serving/detail/type_name.hpp"
#include "batch_serving/error.hpp"

namespace batch_serving {

enum class event_kind {
  batch,  // dispatch_many: the caller's outputs from one execution, in order
  item,   // dispatch: the caller's single output (the seed's {:item, v})
  hook,   // a hook the batch function emitted: its entries for the caller's items
  error,  // the stream failed here; nothing follows
  end,    // the stream finished (seen by callbacks; iteration just stops)
};

// A value like any other: not thread-safe to share while one thread moves
// from it; const members never block or allocate (payload<P>() allocates
// only the message of the error it throws). Streams make events; callers
// read them (the make_ functions are for the library).
template <class T>
class event {
 public:
  static event make_batch(std::vector<T> values) {
    return event(event_kind::batch, std::move(values));
  }
  static event make_item(T value) {
    std::vector<T> one;
    one.push_back(std::move(value));
    return event(event_kind::item, std::move(one));
  }
  static event make_hook(detail::hook_slice hook) {
    event e(event_kind::hook, {});
    e.hook_ = std::move(hook);
    return e;
  }
  static event make_error(batch_serving::error e) {
    event ev(event_kind::error, {});
    ev.error_.emplace(std::move(e));
    return ev;
  }
  static event make_end() { return event(event_kind::end, {}); }

  event_kind kind() const noexcept { return kind_; }

  // The caller's outputs of one execution. Requires kind() == batch.
  std::vector<T>& batch() {
    expect(event_kind::batch);
    return values_;
  }
  const std::vector<T>& batch() const {
    expect(event_kind::batch);
    return values_;
  }

  // The single output of a dispatch. Requires kind() == item.
  T& item() {
    expect(event_kind::item);
    return values_.front();
  }
  const T& item() const {
    expect(event_kind::item);
    return values_.front();
  }

  // The hook's name. Requires kind() == hook.
  const std::string& hook() const {
    expect(event_kind::hook);
    return *hook_.name;
  }

  // The hook's entries for this caller's items, one per item, as emitted
  // with ctx.emit(name, std::vector<P>). Throws serving_error
  // (invalid_argument) if P is not the emitted type or kind() != hook. Over
  // Redis (redis_client.hpp) the entries arrive encoded and are decoded as
  // the hook payload type the stream was started with: P must be that type;
  // when there was none, or the entries did not decode as it, this throws
  // invalid_argument saying which types were involved.
  template <class P>
  std::span<const P> payload() const {
    expect(event_kind::hook);
    if (*hook_.type == typeid(detail::undecoded_hook_payload)) {
      throw serving_error(errc::invalid_argument,
                          "hook '" + *hook_.name + "' cannot be read as " +
                              detail::type_name(typeid(P)) + ": " +
                              static_cast<const detail::undecoded_hook_payload*>(hook_.first)->why);
    }
    if (*hook_.type != typeid(P)) {
      throw serving_error(errc::invalid_argument, "hook '" + *hook_.name + "' carries " +
                                                      detail::type_name(*hook_.type) + ", not " +
                                                      detail::type_name(typeid(P)));
    }
    return std::span<const P>(static_cast<const P*>(hook_.first), hook_.length);
  }

  // Why the stream failed. Requires kind() == error.
  const batch_serving::error& error() const {
    expect(event_kind::error);
    return *error_;
  }

 private:
  event(event_kind kind, std::vector<T> values) : kind_(kind), values_(std::move(values)) {}

  void expect(event_kind wanted) const {
    if (kind_ != wanted) {
      throw serving_error(errc::invalid_argument, std::string("this is ") + name(kind_) +
                                                      " event, not " + name(wanted) + " event");
    }
  }
  static const char* name(event_kind k) {
    switch (k) {
      case event_kind::batch: return "a batch";
      case event_kind::item: return "an item";
      case event_kind::hook: return "a hook";
      case event_kind::error: return "an error";
      case event_kind::end: return "an end";
    }
    return "an unknown";
  }

  event_kind kind_;
  std::vector<T> values_;
  detail::hook_slice hook_;
  std::optional<batch_serving::error> error_;
};

}  // namespace batch_serving
