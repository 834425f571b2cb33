// The engine's second observer when a server has telemetry observers or a
// metrics registry (server_options::observers, metrics): turns the engine's
// reports into the public spans and into metric samples. Made only then,
// so a server without either pays nothing for it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "batch_serving/detail/observer.hpp"
#include "batch_serving/detail/serving_metrics.hpp"
#include "batch_serving/telemetry.hpp"

namespace batch_serving::detail {

class telemetry_bridge final : public observer, public mapping_observer {
 public:
  telemetry_bridge(std::string serving, std::size_t batch_size,
                   std::vector<std::shared_ptr<telemetry_observer>> observers,
                   std::shared_ptr<serving_metrics> metrics)
      : serving_(std::move(serving)),
        batch_size_(batch_size),
        observers_(std::move(observers)),
        metrics_(std::move(metrics)) {}

  // The series this server reports to (null: no metrics), for its gauges.
  const std::shared_ptr<serving_metrics>& metrics() const noexcept { return metrics_; }

  bool wants_timing() const noexcept override { return true; }

  // Only telemetry observers see mapping spans: none, no clock read for them.
  mapping_observer* mapping_spans() noexcept { return observers_.empty() ? nullptr : this; }

  void mapping_ran(mapping_phase phase, std::size_t items, clock::duration took) noexcept override {
    const mapping_span span{serving_, phase, items,
                            std::chrono::duration_cast<std::chrono::nanoseconds>(took)};
    for (const auto& o : observers_) o->mapping_finished(span);
  }

  void call_queued(std::size_t items) noexcept override {
    if (metrics_) metrics_->call_queued(items);
  }

  void call_refused(errc why) noexcept override {
    if (metrics_) metrics_->call_refused(why);
    const refusal_span span{serving_, why};
    for (const auto& o : observers_) o->call_refused(span);
  }

  void call_ended(errc why, std::size_t items, clock::time_point queued_at) noexcept override {
    const auto latency = nanoseconds(clock::now() - queued_at);
    if (metrics_) metrics_->call_failed(why, count(latency));
    if (observers_.empty()) return;
    const call_span span{serving_, items, why, latency};
    for (const auto& o : observers_) o->call_finished(span);
  }

  void call_answered(std::size_t items, clock::duration latency) noexcept override {
    if (metrics_) metrics_->call_answered(count(latency));
    if (observers_.empty()) return;
    const call_span span{serving_, items, std::nullopt, nanoseconds(latency)};
    for (const auto& o : observers_) o->call_finished(span);
  }

  void execution_started(const execution_record& run) noexcept override {
    // A failure-isolation re-run's items were counted with the first run.
    if (metrics_ && !run.rerun) {
      metrics_->execution_started(run.items, run.trigger, count(run.queue_wait));
    }
    if (observers_.empty()) return;
    const execution_span span = to_span(run);
    for (const auto& o : observers_) o->execution_started(span);
  }

  void execution_ran(const execution_record& run) noexcept override {
    if (metrics_) metrics_->execution_finished(run.failed, count(run.duration));
    if (observers_.empty()) return;
    const execution_span span = to_span(run);
    for (const auto& o : observers_) o->execution_finished(span);
  }

  void calls_isolated(std::size_t) noexcept override {}
  void hook_dropped() noexcept override {}

 private:
  static std::chrono::nanoseconds nanoseconds(clock::duration d) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(d);
  }
  // For metrics: a duration in nanoseconds, negative ones (a clock read
  // before another thread's) as zero.
  static std::uint64_t count(clock::duration d) noexcept {
    const auto ns = nanoseconds(d).count();
    return ns > 0 ? static_cast<std::uint64_t>(ns) : 0;
  }

  execution_span to_span(const execution_record& run) const noexcept {
    execution_span span;
    span.serving = serving_;
    span.partition = run.partition;
    span.batch_size = batch_size_;
    span.items = run.items;
    span.calls = run.calls;
    span.trigger = run.trigger;
    span.queue_wait = nanoseconds(run.queue_wait);
    span.duration = nanoseconds(run.duration);
    span.failed = run.failed;
    span.rerun = run.rerun;
    return span;
  }

  const std::string serving_;
  const std::size_t batch_size_;
  const std::vector<std::shared_ptr<telemetry_observer>> observers_;
  const std::shared_ptr<serving_metrics> metrics_;
};

}  // namespace batch_serving::detail
