// metrics_registry and the series behind it (metrics.hpp,
// detail/serving_metrics.hpp), and their Prometheus text rendering.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "batch_serving/detail/mutex.hpp"
#include "batch_serving/detail/serving_metrics.hpp"
#include "batch_serving/detail/thread_annotations.hpp"
#include "batch_serving/metrics.hpp"
#include "batch_serving/telemetry.hpp"

namespace batch_serving {

namespace detail {
namespace {

constexpr batch_trigger all_triggers[] = {batch_trigger::full, batch_trigger::timeout,
                                          batch_trigger::eager, batch_trigger::drain};

constexpr errc all_codes[] = {errc::no_serving,    errc::execution_failed, errc::invalid_argument,
                              errc::shutting_down, errc::overloaded,       errc::timeout,
                              errc::cancelled,     errc::unavailable};

std::size_t slot(errc code) noexcept {
  const auto n = static_cast<std::size_t>(code);
  return n < errc_slots ? n : 0;
}

// 1 us to 10 s in 1-2.5-5 steps: queue waits of eager servers and
// executions of models both land in the middle somewhere. Written out, so
// that the labels are exactly these numbers.
std::vector<double> seconds_buckets() {
  return {1e-6, 2.5e-6, 5e-6,   1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3,
          5e-3, 1e-2,   2.5e-2, 5e-2, 0.1,    0.25, 0.5,  1,      2.5,  5,    10};
}
constexpr double ns_per_second = 1e9;

// Powers of two up to the first at or above batch_size, and batch_size
// itself: a full batch is its own bucket.
std::vector<double> batch_size_buckets(std::size_t batch_size) {
  std::vector<double> bounds;
  for (std::size_t b = 1; b < batch_size && bounds.size() < 40; b *= 2) {
    bounds.push_back(static_cast<double>(b));
  }
  bounds.push_back(static_cast<double>(batch_size));
  return bounds;
}

std::vector<double> fill_ratio_buckets() { return {0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0}; }

// Prometheus label values escape backslash, double quote and newline.
std::string label_value(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (char ch : raw) {
    switch (ch) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += ch;
    }
  }
  return out;
}

// Shortest text that reads back as the same double; Prometheus' own forms
// for the infinities.
std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[32];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string number(std::uint64_t v) { return std::to_string(v); }

struct sample_writer {
  std::string& out;
  const std::string& serving;  // already escaped

  void line(std::string_view name, std::string_view extra_labels, const std::string& value) {
    out.append(name).append("{serving=\"").append(serving).append("\"");
    if (!extra_labels.empty()) out.append(",").append(extra_labels);
    out.append("} ").append(value).append("\n");
  }

  void histogram_lines(std::string_view family, const histogram::snapshot& h) {
    const std::string bucket = std::string(family) + "_bucket";
    for (std::size_t i = 0; i < h.upper_bounds.size(); ++i) {
      line(bucket, "le=\"" + number(h.upper_bounds[i]) + "\"", number(h.cumulative[i]));
    }
    line(bucket, "le=\"+Inf\"", number(h.cumulative.back()));
    line(std::string(family) + "_sum", "", number(h.sum));
    line(std::string(family) + "_count", "", number(h.cumulative.back()));
  }
};

std::uint64_t read(const std::atomic<std::uint64_t>& c) noexcept {
  return c.load(std::memory_order_relaxed);
}
void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
  c.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace

// ---- histogram ---------------------------------------------------------------

histogram::histogram(std::vector<double> rendered_bounds, double scale)
    : rendered_bounds_(std::move(rendered_bounds)),
      scale_(scale),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(rendered_bounds_.size() + 1)) {
  for (double bound : rendered_bounds_) upper_bounds_.push_back(bound * scale_);
}

void histogram::observe(std::uint64_t value) noexcept {
  // The first bound at or above the value (le is inclusive); past the last: +Inf.
  const auto at =
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), static_cast<double>(value));
  bump(buckets_[static_cast<std::size_t>(at - upper_bounds_.begin())]);
  bump(sum_, value);
}

histogram::snapshot histogram::read() const {
  snapshot s;
  s.upper_bounds = rendered_bounds_;
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= upper_bounds_.size(); ++i) {
    running += detail::read(buckets_[i]);
    s.cumulative.push_back(running);
  }
  s.sum = static_cast<double>(detail::read(sum_)) / scale_;
  return s;
}

// ---- serving_metrics -----------------------------------------------------------

serving_metrics::serving_metrics(std::string name, std::size_t batch_size)
    : name_(std::move(name)),
      batch_size_(batch_size),
      batch_size_histogram_(batch_size_buckets(batch_size), 1),
      fill_ratio_(fill_ratio_buckets(), static_cast<double>(batch_size)),
      queue_wait_(seconds_buckets(), ns_per_second),
      execution_seconds_(seconds_buckets(), ns_per_second),
      call_latency_(seconds_buckets(), ns_per_second) {}

void serving_metrics::call_queued(std::size_t items) noexcept {
  bump(calls_);
  bump(items_, items);
}

void serving_metrics::call_refused(errc code) noexcept { bump(refused_[slot(code)]); }

void serving_metrics::call_failed(errc code, std::uint64_t latency_ns) noexcept {
  bump(failed_[slot(code)]);
  call_latency_.observe(latency_ns);
}

void serving_metrics::call_answered(std::uint64_t latency_ns) noexcept {
  call_latency_.observe(latency_ns);
}

void serving_metrics::execution_started(std::size_t items, batch_trigger trigger,
                                        std::uint64_t queue_wait_ns) noexcept {
  bump(executions_[static_cast<std::size_t>(trigger) % executions_.size()]);
  batch_size_histogram_.observe(items);
  fill_ratio_.observe(items);
  queue_wait_.observe(queue_wait_ns);
}

void serving_metrics::execution_finished(bool failed, std::uint64_t duration_ns) noexcept {
  if (failed) bump(failed_executions_);
  execution_seconds_.observe(duration_ns);
}

void serving_metrics::add_gauges(std::weak_ptr<const gauge_source> source) {
  lock_guard lock(gauges_mu_);
  std::erase_if(gauges_, [](const auto& g) { return g.expired(); });
  gauges_.push_back(std::move(source));
}

const std::vector<metric_family>& metric_families() {
  static const std::vector<metric_family> families = {
      {"batch_serving_calls_total", "counter", "Calls queued (an explicit batch counts once)."},
      {"batch_serving_items_total", "counter", "Items in the calls queued."},
      {"batch_serving_refused_calls_total", "counter",
       "Calls answered at the door and never queued, by error code."},
      {"batch_serving_failed_calls_total", "counter",
       "Queued calls answered with an error, by error code."},
      {"batch_serving_executions_total", "counter",
       "Runs of the batch function, by what closed the batch."},
      {"batch_serving_failed_executions_total", "counter",
       "Runs of the batch function that threw or returned a wrong number of outputs."},
      {"batch_serving_queued_items", "gauge", "Items waiting in the queue, not yet executing."},
      {"batch_serving_executions_in_flight", "gauge", "Runs of the batch function in progress."},
      {"batch_serving_batch_size", "histogram", "Items per run of the batch function."},
      {"batch_serving_batch_fill_ratio", "histogram",
       "Items per run of the batch function over the server's batch_size."},
      {"batch_serving_queue_wait_seconds", "histogram",
       "Time the oldest item of each run waited in the queue."},
      {"batch_serving_execution_seconds", "histogram", "Time each run of the batch function took."},
      {"batch_serving_call_latency_seconds", "histogram",
       "Time from a call being queued to its answer."},
  };
  return families;
}

void serving_metrics::render_samples(std::vector<std::string>& out) const {
  const std::string serving = label_value(name_);
  auto family = [&](auto&& write) {
    std::string text;
    sample_writer w{text, serving};
    write(w);
    out.push_back(std::move(text));
  };
  family([&](sample_writer& w) { w.line("batch_serving_calls_total", "", number(read(calls_))); });
  family([&](sample_writer& w) { w.line("batch_serving_items_total", "", number(read(items_))); });
  auto by_code = [&](const char* name, const std::array<counter, errc_slots>& counts) {
    family([&](sample_writer& w) {
      for (errc code : all_codes) {
        w.line(name, "code=\"" + std::string(to_string(code)) + "\"",
               number(read(counts[slot(code)])));
      }
    });
  };
  by_code("batch_serving_refused_calls_total", refused_);
  by_code("batch_serving_failed_calls_total", failed_);
  family([&](sample_writer& w) {
    for (batch_trigger t : all_triggers) {
      w.line("batch_serving_executions_total", "trigger=\"" + std::string(to_string(t)) + "\"",
             number(read(executions_[static_cast<std::size_t>(t)])));
    }
  });
  family([&](sample_writer& w) {
    w.line("batch_serving_failed_executions_total", "", number(read(failed_executions_)));
  });
  gauge_reading total;
  {
    lock_guard lock(gauges_mu_);
    for (const auto& g : gauges_) {
      if (auto source = g.lock()) {
        const gauge_reading r = source->read_gauges();
        total.queued_items += r.queued_items;
        total.executions_in_flight += r.executions_in_flight;
      }
    }
  }
  family([&](sample_writer& w) {
    w.line("batch_serving_queued_items", "", number(std::uint64_t{total.queued_items}));
  });
  family([&](sample_writer& w) {
    w.line("batch_serving_executions_in_flight", "",
           number(std::uint64_t{total.executions_in_flight}));
  });
  family([&](sample_writer& w) {
    w.histogram_lines("batch_serving_batch_size", batch_size_histogram_.read());
  });
  family([&](sample_writer& w) {
    w.histogram_lines("batch_serving_batch_fill_ratio", fill_ratio_.read());
  });
  family([&](sample_writer& w) {
    w.histogram_lines("batch_serving_queue_wait_seconds", queue_wait_.read());
  });
  family([&](sample_writer& w) {
    w.histogram_lines("batch_serving_execution_seconds", execution_seconds_.read());
  });
  family([&](sample_writer& w) {
    w.histogram_lines("batch_serving_call_latency_seconds", call_latency_.read());
  });
}

// ---- the registry --------------------------------------------------------------

class metrics_store {
 public:
  std::shared_ptr<serving_metrics> serving(std::string_view name, std::size_t batch_size) {
    lock_guard lock(mu_);
    auto found = servings_.find(name);
    if (found != servings_.end()) return found->second;
    auto made = std::make_shared<serving_metrics>(std::string(name), batch_size);
    servings_.emplace(std::string(name), made);
    return made;
  }

  std::vector<std::shared_ptr<const serving_metrics>> all() const {
    lock_guard lock(mu_);
    std::vector<std::shared_ptr<const serving_metrics>> list;
    for (const auto& [name, s] : servings_) list.push_back(s);
    return list;
  }

 private:
  mutable mutex mu_;
  std::map<std::string, std::shared_ptr<serving_metrics>, std::less<>> servings_
      BATCH_SERVING_GUARDED_BY(mu_);
};

}  // namespace detail

metrics_registry::metrics_registry() : store_(std::make_unique<detail::metrics_store>()) {}
metrics_registry::~metrics_registry() = default;

metrics_registry& metrics_registry::global() {
  static auto* registry = new metrics_registry();  // never destroyed: see the header
  return *registry;
}

std::shared_ptr<detail::serving_metrics> metrics_registry::serving(std::string_view name,
                                                                   std::size_t batch_size) {
  return store_->serving(name, batch_size);
}

std::string metrics_registry::render() const {
  const auto servings = store_->all();
  const auto& families = detail::metric_families();
  std::vector<std::vector<std::string>> samples;  // per serving, per family
  samples.reserve(servings.size());
  for (const auto& s : servings) {
    samples.emplace_back();
    s->render_samples(samples.back());
  }
  std::string out;
  for (std::size_t f = 0; f < families.size(); ++f) {
    out.append("# HELP ").append(families[f].name).append(" ").append(families[f].help);
    out.append("\n# TYPE ").append(families[f].name).append(" ").append(families[f].type);
    out.append("\n");
    for (const auto& per_serving : samples) out.append(per_serving[f]);
  }
  return out;
}

}  // namespace batch_serving
