// Prometheus metrics, kept by the library and rendered in the text
// exposition format.
//
//   batch_serving::server srv(squares, {.name = "squares",
//                                       .metrics = &batch_serving::metrics_registry::global()});
//   ...
//   std::string body = batch_serving::metrics_registry::global().render();  // GET /metrics
//
// A server reports to the registry named in server_options::metrics, by its
// name (label serving; "" for a server without one). Series outlive their
// servers, so counters never go back; servers with the same name add up.
//
// What is kept, per serving (all names start with batch_serving_):
//   calls_total, items_total            calls (and their items) queued
//   refused_calls_total{code}           calls answered at the door, never queued
//   failed_calls_total{code}            queued calls answered with an error
//   executions_total{trigger}           batch function runs, by what closed the batch
//   failed_executions_total             runs that threw or returned a wrong count
//   queued_items, executions_in_flight  gauges, read when rendering
//   batch_size, batch_fill_ratio        histograms: items per run, items / batch_size
//   queue_wait_seconds                  histogram: oldest item's wait, per run
//   execution_seconds                   histogram: batch function time, per run
//   call_latency_seconds                histogram: queued to answered, per call
// Labels are the serving, code (an errc name) and trigger only: bounded.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace batch_serving {

namespace detail {
class serving_metrics;
class metrics_store;
}  // namespace detail

class metrics_registry {
 public:
  metrics_registry();
  ~metrics_registry();
  metrics_registry(const metrics_registry&) = delete;
  metrics_registry& operator=(const metrics_registry&) = delete;

  // The process-wide registry. Never destroyed (servers may report to it
  // while static objects are torn down).
  static metrics_registry& global();

  // Every series, in the Prometheus text format (version 0.0.4), servings in
  // name order. Thread-safe; reads each server's gauges under its lock for a
  // moment.
  std::string render() const;

  // The Content-Type an HTTP endpoint serving render() should send.
  static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

  // The series of one serving, made on first use (servers call this).
  std::shared_ptr<detail::serving_metrics> serving(std::string_view name, std::size_t batch_size);

 private:
  std::unique_ptr<detail::metrics_store> store_;
};

}  // namespace batch_serving
