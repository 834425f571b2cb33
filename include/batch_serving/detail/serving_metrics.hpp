// The series metrics_registry keeps for one serving: counters, histograms,
// and the gauges of the servers reporting under its name. Written by the
// servers' threads with relaxed atomics (no lock on the hot path); read by
// render(), which takes a consistent-enough snapshot (each value exact, the
// set not one atomic cut).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "batch_serving/detail/mutex.hpp"
#include "batch_serving/detail/thread_annotations.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/telemetry.hpp"

namespace batch_serving::detail {

// A Prometheus histogram over integer observations (nanoseconds, items):
// fixed upper bounds in the same units, a count per bucket (not cumulative
// here; read() sums them), a count and a sum, all plain integer atomics (no
// compare-exchange loop on the hot path). `scale` turns the units into the
// rendered ones: 1e9 for nanoseconds as seconds, batch_size for items as a
// fill ratio.
class histogram {
 public:
  // `rendered_bounds`: the upper bounds as rendered (seconds, a ratio).
  histogram(std::vector<double> rendered_bounds, double scale);

  void observe(std::uint64_t value) noexcept;

  struct snapshot {
    std::vector<double> upper_bounds;       // rendered units
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (the count)
    double sum = 0;                         // rendered units
  };
  snapshot read() const;

 private:
  const std::vector<double> rendered_bounds_;
  const double scale_;
  std::vector<double> upper_bounds_;  // observed units: rendered_bounds_ * scale_
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // upper_bounds_.size() + 1 (+Inf)
  std::atomic<std::uint64_t> sum_{0};
};

// What a server shows as gauges, read when the metrics are rendered.
struct gauge_reading {
  std::size_t queued_items = 0;
  std::size_t executions_in_flight = 0;
};

class gauge_source {
 public:
  virtual gauge_reading read_gauges() const noexcept = 0;

 protected:
  ~gauge_source() = default;
};

// Every errc that a call can be refused or fail with, by its label.
inline constexpr std::size_t errc_slots = 16;

class serving_metrics {
 public:
  serving_metrics(std::string name, std::size_t batch_size);

  const std::string& name() const noexcept { return name_; }
  std::size_t batch_size() const noexcept { return batch_size_; }

  // Durations in nanoseconds.
  void call_queued(std::size_t items) noexcept;
  void call_refused(errc code) noexcept;
  void call_failed(errc code, std::uint64_t latency_ns) noexcept;
  void call_answered(std::uint64_t latency_ns) noexcept;
  void execution_started(std::size_t items, batch_trigger trigger,
                         std::uint64_t queue_wait_ns) noexcept;
  void execution_finished(bool failed, std::uint64_t duration_ns) noexcept;

  // A server reporting here; it is read while it lives.
  void add_gauges(std::weak_ptr<const gauge_source> source);

  // Appends this serving's samples of every family to `out`, one string per
  // family in the order of family_names() (render() interleaves servings).
  void render_samples(std::vector<std::string>& out) const;

 private:
  using counter = std::atomic<std::uint64_t>;

  const std::string name_;
  const std::size_t batch_size_;
  counter calls_{0};
  counter items_{0};
  std::array<counter, errc_slots> refused_{};
  std::array<counter, errc_slots> failed_{};
  std::array<counter, 4> executions_{};  // by batch_trigger
  counter failed_executions_{0};
  histogram batch_size_histogram_;
  histogram fill_ratio_;
  histogram queue_wait_;
  histogram execution_seconds_;
  histogram call_latency_;

  mutable mutex gauges_mu_;
  mutable std::vector<std::weak_ptr<const gauge_source>> gauges_
      BATCH_SERVING_GUARDED_BY(gauges_mu_);
};

// The families render() writes, in order: name, type and help.
struct metric_family {
  const char* name;
  const char* type;
  const char* help;
};
const std::vector<metric_family>& metric_families();

}  // namespace batch_serving::detail
