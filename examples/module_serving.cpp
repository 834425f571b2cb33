// A module serving: each partition gets its own state, created once in its
// own thread (the seed's init/3), and handle_batch runs one execution at a
// time per partition (the seed's handle_batch/3). Here the state is a
// per-partition "connection" that counts the batches it handled.
#include <batch_serving/batch_serving.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace bs = batch_serving;

class shouting_connection {
 public:
  // Called once per partition: told where it runs and which partition it is.
  shouting_connection(const bs::partition_info& where, std::string suffix)
      : suffix_(std::move(suffix)) {
    std::printf("init: partition %zu (%s)\n", where.index,
                where.mode == bs::execution_mode::server ? "server" : "inline");
  }

  std::vector<std::string> handle_batch(std::span<const std::string> batch,
                                        bs::execution_context& ctx) {
    ++batches_;
    std::vector<std::string> out;
    for (const auto& text : batch) {
      out.push_back(text + suffix_ + " (partition " + std::to_string(ctx.partition()) + ", batch " +
                    std::to_string(batches_) + " of this partition)");
    }
    return out;
  }

 private:
  std::string suffix_;
  int batches_ = 0;  // no lock needed: one execution at a time per partition
};

int main() try {
  auto serving = bs::serving<std::string, std::string>::from_module<shouting_connection>("!");

  // Inline, in this thread: a fresh module instance for the run, partition 0.
  std::printf("%s\n", serving.run("hello").value().c_str());

  // In a server with two partitions, each with its own instance.
  bs::server srv(serving,
                 {.batch_size = 4, .batch_timeout = std::chrono::milliseconds(2), .partitions = 2});
  std::vector<std::thread> callers;
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([&srv, i] {
      auto r = srv.dispatch("caller " + std::to_string(i));
      std::printf("%s\n", r.ok() ? r->c_str() : r.error().to_string().c_str());
    });
  }
  for (auto& t : callers) t.join();
} catch (const std::exception& e) {  // e.g. serving_error from result::value()
  std::printf("FAILED: %s\n", e.what());
  return 1;
}
