// result<T>: a call's answer, either its value or an error. Never throws until
// you ask for a value that is not there.
//
//   batch_serving::result<int> r = server.dispatch(3);
//   if (r.ok()) {
//     use(*r);                       // or r.value()
//   } else {
//     log(r.error().to_string());    // e.g. "execution_failed: ..."
//   }
//   int v = server.dispatch(3).value();   // the seed's dispatch!: throws serving_error
#pragma once

#include <type_traits>
#include <utility>
#include <variant>

#include "batch_serving/error.hpp"

namespace batch_serving {

// A value type: as thread-safe as T (const access from several threads is
// fine). No member blocks; value() allocates only the exception it throws.
// Moves throw exactly when T's do.
template <class T>
class [[nodiscard]] result {  // NOLINT(bugprone-exception-escape)
  static_assert(!std::is_same_v<std::remove_cv_t<T>, batch_serving::error>,
                "result<error> is ambiguous");

 public:
  using value_type = T;

  result(T value)
      : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT(google-explicit-constructor)
  result(batch_serving::error e)  // NOLINT(google-explicit-constructor)
      : state_(std::in_place_index<1>, std::move(e)) {}

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  // The error. Requires !ok().
  const batch_serving::error& error() const& { return std::get<1>(state_); }

  // The value, or throws serving_error carrying error() when !ok().
  T& value() & {
    check();
    return std::get<0>(state_);
  }
  const T& value() const& {
    check();
    return std::get<0>(state_);
  }
  T&& value() && {
    check();
    return std::get<0>(std::move(state_));
  }

  // Unchecked access. Requires ok().
  T& operator*() & noexcept { return *std::get_if<0>(&state_); }
  const T& operator*() const& noexcept { return *std::get_if<0>(&state_); }
  T* operator->() noexcept { return std::get_if<0>(&state_); }
  const T* operator->() const noexcept { return std::get_if<0>(&state_); }

  // The value, or `fallback` when !ok().
  template <class U>
  T value_or(U&& fallback) const& {
    return ok() ? std::get<0>(state_) : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  void check() const {
    if (!ok()) throw serving_error(std::get<1>(state_));
  }

  std::variant<T, batch_serving::error> state_;
};

}  // namespace batch_serving
