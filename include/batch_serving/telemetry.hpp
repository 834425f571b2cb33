// Telemetry: observers a user registers on a server, called as it works.
//
//   struct printer : batch_serving::telemetry_observer {
//     void execution_finished(const batch_serving::execution_span& run) noexcept override {
//       std::printf("%zu items (%s) in %lld us\n", run.items, to_string(run.trigger).data(),
//                   static_cast<long long>(run.duration.count() / 1000));
//     }
//   };
//   batch_serving::server srv(squares, {.observers = {std::make_shared<printer>()}});
//
// A server with no observers (and no metrics registry) reads no clock for
// them and calls nothing: the cost is one branch per execution and per call.
// With one, the server reads the clock when a call is queued and around each
// execution. Observers run on the server's threads (a partition's, for
// everything about executions and the calls they answer; the caller's, for
// map_inputs and map_results spans), between hand-offs: keep them short, and
// thread-safe, since partitions run in parallel. They must not throw (they
// are noexcept), and must not block on the server they observe.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string_view>

#include "batch_serving/error.hpp"

namespace batch_serving {

// What closed a batch and started its execution.
enum class batch_trigger {
  full,     // batch_size items were waiting
  timeout,  // its batch window (batch_timeout) expired
  eager,    // batch_timeout is zero: it ran as soon as a partition was free
  drain,    // the server is shutting down and runs what is left at once
};

// "full", "timeout", "eager", "drain": the label used in metrics.
std::string_view to_string(batch_trigger trigger) noexcept;

// One run of the batch function.
struct execution_span {
  std::string_view serving;  // the server's name, "" if it has none
  std::size_t partition = 0;
  std::size_t batch_size = 0;  // the server's batch_size (the most one run may hold)
  std::size_t items = 0;       // items in this run
  std::size_t calls = 0;       // calls with items in this run
  batch_trigger trigger = batch_trigger::full;
  // From when its oldest item was queued until the run started.
  std::chrono::nanoseconds queue_wait{};
  // How long the batch function ran; zero in execution_started.
  std::chrono::nanoseconds duration{};
  // It threw, or returned the wrong number of outputs (execution_finished only).
  bool failed = false;
  // A failure-isolation run of part of a failed execution
  // (server_options::isolate_failures): its items were counted once already.
  bool rerun = false;
};

// A call that was queued, when it is answered.
struct call_span {
  std::string_view serving;
  std::size_t items = 0;
  // Unset: answered with its results. Otherwise the error's code
  // (execution_failed, timeout, cancelled, shutting_down, invalid_argument).
  std::optional<errc> error;
  // From when it was queued until it was answered.
  std::chrono::nanoseconds latency{};
};

// A call turned away at the door, never queued.
struct refusal_span {
  std::string_view serving;
  errc code = errc::overloaded;  // overloaded, shutting_down, no_serving, timeout, cancelled,
                                 // invalid_argument
};

// The caller-side mappings of a serving (serving::map_inputs, map_results),
// timed where they run. Only for servings that set the mapping.
enum class mapping_phase { map_inputs, map_results };

struct mapping_span {
  std::string_view serving;
  mapping_phase phase = mapping_phase::map_inputs;
  std::size_t items = 0;
  std::chrono::nanoseconds duration{};
};

// Override what you need; the rest do nothing.
class telemetry_observer {
 public:
  virtual ~telemetry_observer() = default;

  virtual void execution_started(const execution_span&) noexcept {}
  virtual void execution_finished(const execution_span&) noexcept {}
  virtual void call_finished(const call_span&) noexcept {}
  virtual void call_refused(const refusal_span&) noexcept {}
  virtual void mapping_finished(const mapping_span&) noexcept {}
};

}  // namespace batch_serving
