// dense: a compute-bound batch function, y = relu(W x + b) with a 1024x1024
// float W (Eigen, single-threaded), 64 callers, batch_size 64, reported as:
//   direct         one thread applying the layer to pre-formed 64-column
//                  batches: the limit (no batcher, no copies, no waiting)
//   unbatched      each of the 64 callers computes its own matrix-vector
//                  product in its own thread (what you do without a batcher)
//   batch_serving  the 64 callers dispatch through a server (one partition)
//   naive          the same through the naive batcher (one worker)
// efficiency = items_per_s / direct's; vs_unbatched = items_per_s / unbatched's.
// Note that unbatched runs on every core, the others compute in one thread.
#include <batch_serving/batch_serving.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "closed_loop.hpp"
#include "dense_layer.hpp"
#include "naive_batcher.hpp"
#include "scenarios.hpp"
#include "workload.hpp"

namespace bench {
namespace {

using clock = std::chrono::steady_clock;
using vector_f = std::vector<float>;

constexpr std::size_t callers = 64;
constexpr std::size_t batch_size = 64;
constexpr auto batch_timeout = std::chrono::microseconds(1000);

// The layer, each caller's input and the answer it must get.
struct dense_setup {
  std::shared_ptr<const dense_layer> layer = std::make_shared<const dense_layer>();
  std::vector<vector_f> inputs;
  std::vector<vector_f> expected;

  dense_setup() {
    for (std::size_t i = 0; i < callers; ++i) {
      inputs.push_back(dense_layer::sample_input(static_cast<unsigned>(i)));
      expected.push_back(layer->apply(inputs.back()));
    }
  }
};

std::chrono::milliseconds warmup_for(std::chrono::milliseconds duration) {
  return std::min(duration / 5, std::chrono::milliseconds(100));
}

loop_result measure_direct(const dense_setup& s, std::chrono::milliseconds duration) {
  Eigen::MatrixXf x(dense_layer::dim, static_cast<Eigen::Index>(batch_size));
  for (std::size_t i = 0; i < batch_size; ++i) {
    x.col(static_cast<Eigen::Index>(i)) =
        Eigen::Map<const Eigen::VectorXf>(s.inputs[i % callers].data(), dense_layer::dim);
  }
  Eigen::MatrixXf y;
  const auto warm_until = clock::now() + warmup_for(duration);
  while (clock::now() < warm_until) s.layer->apply_to_columns(x, y);
  std::uint64_t batches = 0;
  const auto start = clock::now();
  auto now = start;
  while (now < start + duration) {
    s.layer->apply_to_columns(x, y);
    ++batches;
    now = clock::now();
  }
  loop_result out;
  const double seconds = std::chrono::duration<double>(now - start).count();
  out.figures.items_per_s = static_cast<double>(batches * batch_size) / seconds;
  out.figures.mean_batch = static_cast<double>(batch_size);
  const vector_f first(y.col(0).data(), y.col(0).data() + dense_layer::dim);
  if (!close_enough(first, s.expected[0])) out.failed_calls = 1;
  return out;
}

loop_result measure_unbatched(const dense_setup& s, std::chrono::milliseconds duration) {
  loop_result out = run_closed_loop(
      callers, warmup_for(duration), duration,
      [&s](std::size_t who) {
        return [&s, who]() -> std::size_t {
          return close_enough(s.layer->apply(s.inputs[who]), s.expected[who]) ? 1 : 0;
        };
      },
      [] { return batch_counters{}; });
  out.figures.mean_batch = 1.0;
  return out;
}

loop_result measure_batch_serving(const dense_setup& s, std::chrono::milliseconds duration) {
  const auto serving =
      batch_serving::serving<vector_f, vector_f>::from_module<batched_dense_layer>(s.layer);
  batch_serving::server srv(serving, {.batch_size = batch_size, .batch_timeout = batch_timeout});
  return run_closed_loop(
      callers, warmup_for(duration), duration,
      [&s, &srv](std::size_t who) {
        return [&s, &srv, who]() -> std::size_t {
          const auto r = srv.dispatch(s.inputs[who]);
          return r.ok() && close_enough(*r, s.expected[who]) ? 1 : 0;
        };
      },
      [&srv] { return counters_of(srv); });
}

loop_result measure_naive(const dense_setup& s, std::chrono::milliseconds duration) {
  auto worker_state = std::make_shared<batched_dense_layer>(s.layer);
  naive_batcher<vector_f, vector_f> batcher(
      [worker_state](std::span<const vector_f> batch) { return worker_state->handle_batch(batch); },
      batch_size, batch_timeout);
  return run_closed_loop(
      callers, warmup_for(duration), duration,
      [&s, &batcher](std::size_t who) {
        return [&s, &batcher, who]() -> std::size_t {
          try {
            return close_enough(batcher.dispatch(s.inputs[who]), s.expected[who]) ? 1 : 0;
          } catch (const std::exception&) {
            return 0;
          }
        };
      },
      [&batcher] { return counters_of(batcher); });
}

std::optional<double> ratio(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b == 0.0) return std::nullopt;
  return *a / *b;
}

}  // namespace

void run_dense(const config& cfg, reporter& out) {
  progress(cfg, "dense: relu(W x + b), W 1024x1024 float, " + std::to_string(callers) +
                    " callers, batch_size " + std::to_string(batch_size));
  const dense_setup setup;
  const auto d = cfg.dense_duration;
  using measure_fn = loop_result (*)(const dense_setup&, std::chrono::milliseconds);
  const measure_fn measures[] = {measure_direct, measure_unbatched, measure_batch_serving,
                                 measure_naive};
  constexpr std::size_t kinds = std::size(measures);
  std::vector<measurement> figures[kinds];
  std::uint64_t failed = 0;
  for (int run = 0; run < cfg.runs; ++run) {
    // Rotate the order from run to run; no kind always goes first.
    for (std::size_t k = 0; k < kinds; ++k) {
      const std::size_t kind = (k + static_cast<std::size_t>(run)) % kinds;
      const loop_result r = measures[kind](setup, d);
      figures[kind].push_back(r.figures);
      failed += r.failed_calls;
    }
  }
  require_no_failures(failed, "dense");

  const measurement direct = median_of(figures[0]);
  const measurement unbatched = median_of(figures[1]);
  const measurement ours = median_of(figures[2]);
  const measurement naive = median_of(figures[3]);
  const auto b = static_cast<std::int64_t>(batch_size);
  const auto t = static_cast<std::int64_t>(batch_timeout.count());
  const auto c = static_cast<std::int64_t>(callers);
  out.add(make_row("dense", "direct", 1, b, std::nullopt, direct, cfg.runs));
  out.add(make_row("dense", "unbatched", c, 1, std::nullopt, unbatched, cfg.runs));
  for (const auto& [impl, m] : {std::pair{"batch_serving", ours}, std::pair{"naive", naive}}) {
    row r = make_row("dense", impl, c, b, t, m, cfg.runs);
    r.extra.emplace_back("efficiency", ratio(m.items_per_s, direct.items_per_s));
    r.extra.emplace_back("vs_unbatched", ratio(m.items_per_s, unbatched.items_per_s));
    out.add(std::move(r));
  }
}

}  // namespace bench
