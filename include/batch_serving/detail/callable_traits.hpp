// Type traits for the public templates.
//
// sole_parameter: the parameter type of a one-argument callable, so
// map_inputs can learn the caller-facing type from a plain lambda. Generic
// lambdas have none: name the type explicitly, map_inputs<T>(f).
#pragma once

#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace batch_serving::detail {

template <class F, class = void>
struct sole_parameter {};

template <class R, class A>
struct sole_parameter<R (*)(A)> {
  using type = A;
};
template <class R, class A>
struct sole_parameter<R (*)(A) noexcept> {
  using type = A;
};
template <class C, class R, class A>
struct sole_parameter<R (C::*)(A)> {
  using type = A;
};
template <class C, class R, class A>
struct sole_parameter<R (C::*)(A) const> {
  using type = A;
};
template <class C, class R, class A>
struct sole_parameter<R (C::*)(A) noexcept> {
  using type = A;
};
template <class C, class R, class A>
struct sole_parameter<R (C::*)(A) const noexcept> {
  using type = A;
};
template <class F>
struct sole_parameter<F, std::void_t<decltype(&F::operator())>>
    : sole_parameter<decltype(&F::operator())> {};

template <class F>
using sole_parameter_t = std::remove_cvref_t<typename sole_parameter<std::decay_t<F>>::type>;

template <class F>
concept has_sole_parameter = requires { typename sole_parameter<std::decay_t<F>>::type; };

// A copyable std::function around `f`, which may be move-only: copies share
// one `f` (calls reach it as a non-const lvalue, as std::function's do).
template <class Signature, class F>
std::function<Signature> shared_function(F f) {
  return [shared = std::make_shared<F>(std::move(f))](auto&&... args) -> decltype(auto) {
    return (*shared)(std::forward<decltype(args)>(args)...);
  };
}

// Whether T is a complete type here (false for a class template that is
// declared but not defined in this translation unit: a header is missing).
template <class T>
concept complete_type = requires { sizeof(T); };

}  // namespace batch_serving::detail
