#include "batch_serving/detail/registry.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <string_view>

#include "batch_serving/detail/fork_guard.hpp"
#include "batch_serving/detail/mutex.hpp"
#include "batch_serving/detail/thread_annotations.hpp"
#include "batch_serving/detail/type_name.hpp"

namespace batch_serving::detail {
namespace {

struct registry {
  mutex mu;
  std::map<std::string, std::weak_ptr<endpoint_base>, std::less<>> servers
      BATCH_SERVING_GUARDED_BY(mu);
};

registry& the_registry();

// Held across fork() so that the child finds it free (fork_guard.hpp).
void lock_for_fork() BATCH_SERVING_NO_THREAD_SAFETY_ANALYSIS { the_registry().mu.lock(); }
void unlock_after_fork() BATCH_SERVING_NO_THREAD_SAFETY_ANALYSIS { the_registry().mu.unlock(); }

registry& the_registry() {
  static registry instance;  // never destroyed before servers using it: function-local static
  static const bool guarded = on_fork(&lock_for_fork, &unlock_after_fork, &unlock_after_fork);
  static_cast<void>(guarded);
  return instance;
}

}  // namespace

bool register_endpoint(const std::string& name, std::weak_ptr<endpoint_base> server) {
  auto& r = the_registry();
  lock_guard lock(r.mu);
  auto [it, inserted] = r.servers.try_emplace(name, server);
  if (inserted) return true;
  if (!it->second.expired()) return false;
  it->second = std::move(server);  // the previous holder is gone
  return true;
}

void unregister_endpoint(const std::string& name, const endpoint_base* server) noexcept {
  auto& r = the_registry();
  lock_guard lock(r.mu);
  auto it = r.servers.find(name);
  if (it == r.servers.end()) return;
  auto holder = it->second.lock();
  if (holder == nullptr || holder.get() == server) r.servers.erase(it);
}

std::shared_ptr<endpoint_base> find_endpoint(std::string_view name) {
  auto& r = the_registry();
  lock_guard lock(r.mu);
  auto it = r.servers.find(name);
  return it == r.servers.end() ? nullptr : it->second.lock();
}

std::string type_name(const std::type_info& type) {
  int status = 0;
  char* readable = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  std::string name = (status == 0 && readable != nullptr) ? readable : type.name();
  std::free(readable);  // NOLINT: __cxa_demangle allocates with malloc
  // Spell the standard string the way people write it.
  static constexpr std::string_view long_string =
      "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >";
  for (auto at = name.find(long_string); at != std::string::npos; at = name.find(long_string)) {
    name.replace(at, long_string.size(), "std::string");
  }
  return name;
}

}  // namespace batch_serving::detail
