// What every kind of server shares: the name, start-up, shutdown, stats.
// Owns the engine (its lifecycle) and the client callers go through (which
// knows the engine only as an intake).
//
// Move-only. A moved-from server owns nothing: stop() does nothing, stats()
// are zeros, name() is empty, and every dispatch form answers
// invalid_argument ("moved from") without touching any server.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "batch_serving/detail/registry.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/server_stats.hpp"

namespace batch_serving::detail {

template <class Engine, class Client>
class server_handle {
 public:
  server_handle(server_handle&&) noexcept = default;
  // Stops the server this one held (as stop() does), then takes `other`'s.
  server_handle& operator=(server_handle&& other) noexcept {
    if (this != &other) {
      stop();
      abandon_if_forked_away();
      engine_ = std::move(other.engine_);
      client_ = std::move(other.client_);
    }
    return *this;
  }
  server_handle(const server_handle&) = delete;
  server_handle& operator=(const server_handle&) = delete;

  // Performs stop().
  ~server_handle() {
    stop();
    abandon_if_forked_away();
  }

  // Shuts down as server.hpp describes: refuses new calls, drains, answers
  // the rest shutting_down. Blocks up to shutdown_timeout (returns at once
  // from the server's own threads and from completion callbacks).
  // Idempotent and thread-safe; allocates only the shutdown error message.
  void stop() noexcept {
    if (!engine_) return;
    const std::string& name = engine_->options().name;
    if (!name.empty()) unregister_endpoint(name, client_.get());
    engine_->stop();
  }

  // A snapshot of the counters (server_stats.hpp). Thread-safe, lock-free,
  // never allocates.
  server_stats stats() const noexcept { return engine_ ? engine_->stats() : server_stats{}; }
  // The options the server runs with (empty / 0 once moved from).
  // Thread-safe, never block or allocate.
  const std::string& name() const noexcept {
    static const std::string none;
    return engine_ ? engine_->options().name : none;
  }
  std::size_t batch_size() const noexcept { return engine_ ? engine_->options().batch_size : 0; }
  std::size_t partitions() const noexcept { return engine_ ? engine_->options().partitions : 0; }

 protected:
  // Takes the engine's name (if any) for `client`, then starts the engine.
  // Throws serving_error(invalid_argument) if the name is taken; rethrows
  // what a partition's init threw, releasing the name first.
  server_handle(std::shared_ptr<Engine> engine, std::shared_ptr<Client> client)
      : engine_(std::move(engine)), client_(std::move(client)) {
    const std::string& name = engine_->options().name;
    if (!name.empty() && !register_endpoint(name, client_)) {
      throw serving_error(errc::invalid_argument,
                          "a server named '" + name + "' is already running");
    }
    try {
      engine_->start();
    } catch (...) {
      if (!name.empty()) unregister_endpoint(name, client_.get());
      throw;
    }
  }

  // The client, or null once moved from (then answer with moved_from()).
  Client* client() const noexcept { return client_.get(); }
  static error moved_from() {
    return error(errc::invalid_argument, "this server was moved from: it serves nothing");
  }

 private:
  // In a fork()ed child the engine's threads are gone but their handles are
  // not: destroying it would terminate (fork_guard.hpp).
  void abandon_if_forked_away() noexcept {
    Engine* engine = engine_.get();
    if (engine && engine->forked_away()) engine->abandon_in_forked_child(std::move(engine_));
  }

  std::shared_ptr<Engine> engine_;
  std::shared_ptr<Client> client_;
};

}  // namespace batch_serving::detail
