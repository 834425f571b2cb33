// The process-wide Redis configuration of distributed.hpp and the clients
// made for it, one per serving name and pair of types.
#include "batch_serving/distributed.hpp"

#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <typeindex>
#include <utility>
#include <vector>

#include "batch_serving/detail/wire.hpp"

namespace batch_serving::distributed {
namespace {

using client_key = std::tuple<std::string, std::type_index, std::type_index>;

struct configuration {
  std::mutex mu;
  std::optional<redis_client_options> options;  // guarded by mu
  std::uint64_t generation = 0;  // guarded by mu; bumped by configure and reset
  std::map<client_key, std::shared_ptr<void>, std::less<>> clients;  // guarded by mu
};

configuration& config() {
  static configuration* const instance = new configuration;  // never destroyed: no exit order issue
  return *instance;
}

// Takes the clients out under the lock; they are destroyed by the caller,
// outside it (a client's destructor joins its threads).
std::map<client_key, std::shared_ptr<void>, std::less<>> replace(
    std::optional<redis_client_options> options) {
  configuration& c = config();
  std::lock_guard<std::mutex> lock(c.mu);
  c.options = std::move(options);
  ++c.generation;
  return std::exchange(c.clients, {});
}

}  // namespace

void configure(const redis_client_options& client) {
  if (!client.serving.empty()) {
    throw serving_error(errc::invalid_argument,
                        "distributed::configure: redis_client_options.serving must be empty (each "
                        "serving's client gets its name; got '" +
                            client.serving + "')");
  }
  if (!client.client_id.empty()) {
    throw serving_error(errc::invalid_argument,
                        "distributed::configure: redis_client_options.client_id must be empty "
                        "(each client generates an id of its own; got '" +
                            client.client_id + "')");
  }
  if (std::optional<error> bad = client.endpoint.validate()) {
    throw serving_error(errc::invalid_argument,
                        "distributed::configure: redis_client_options.endpoint: " + bad->message());
  }
  if (std::optional<error> bad = batch_serving::detail::wire::check_limits(client.limits)) {
    throw serving_error(errc::invalid_argument,
                        "distributed::configure: redis_client_options.limits: " + bad->message());
  }
  auto old = replace(client);
  old.clear();  // stops them, outside the lock
}

void reset() {
  auto old = replace(std::nullopt);
  old.clear();
}

bool configured() {
  configuration& c = config();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.options.has_value();
}

namespace detail {

result<std::shared_ptr<void>> remote_client(std::string_view serving, std::type_index in,
                                            std::type_index out, client_factory make) {
  configuration& c = config();
  client_key key(std::string(serving), in, out);
  redis_client_options options;
  std::uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (!c.options) {
      return error(errc::no_serving, "no server named '" + std::string(serving) +
                                         "' is running here, and no Redis is configured");
    }
    if (auto found = c.clients.find(key); found != c.clients.end()) return found->second;
    options = *c.options;
    generation = c.generation;
  }
  options.serving = std::string(serving);
  // Made outside the lock: it connects (bounded by the connect timeouts), and
  // other servings' calls must not wait for that.
  std::shared_ptr<void> made;
  try {
    made = make(options);
  } catch (const serving_error& e) {
    return e.error();
  } catch (const std::exception& e) {
    return error(errc::unavailable, std::string("redis_client for '") + std::string(serving) +
                                        "' could not be made: " + e.what());
  }
  std::shared_ptr<void> superseded;  // destroyed after the lock is released
  std::lock_guard<std::mutex> lock(c.mu);
  if (c.generation != generation) {
    // configure() or reset() ran meanwhile: this client belongs to neither.
    superseded = std::move(made);
    return error(errc::unavailable, "the Redis configuration changed while the call to '" +
                                        std::string(serving) + "' was being routed; try again");
  }
  auto [slot, inserted] = c.clients.try_emplace(std::move(key), made);
  if (!inserted) superseded = std::move(made);  // another call made one first
  return slot->second;
}

}  // namespace detail
}  // namespace batch_serving::distributed
