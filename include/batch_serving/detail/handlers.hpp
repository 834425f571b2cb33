// The batch handlers a serving makes for each partition: one around a shared
// plain function, one owning a module instance.
#pragma once

#include <concepts>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/execution_context.hpp"

namespace batch_serving::detail {

template <class In, class Out, class F>
class function_handler final : public batch_handler<In, Out> {
 public:
  explicit function_handler(std::shared_ptr<F> fn) : fn_(std::move(fn)) {}
  std::vector<Out> handle_batch(std::span<const In> batch, execution_context& ctx) override {
    if constexpr (std::invocable<F&, std::span<const In>, execution_context&>) {
      return (*fn_)(batch, ctx);
    } else {
      return (*fn_)(batch);
    }
  }

 private:
  std::shared_ptr<F> fn_;
};

template <class In, class Out, class Module>
class module_handler final : public batch_handler<In, Out> {
 public:
  template <class... Args>
  explicit module_handler(Args&&... args) : module_(std::forward<Args>(args)...) {}
  std::vector<Out> handle_batch(std::span<const In> batch, execution_context& ctx) override {
    if constexpr (requires { module_.handle_batch(batch, ctx); }) {
      return module_.handle_batch(batch, ctx);
    } else {
      return module_.handle_batch(batch);
    }
  }

 private:
  Module module_;
};

}  // namespace batch_serving::detail
