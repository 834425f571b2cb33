// The command line and environment of examples/distributed/worker.cpp and
// client.cpp: where Redis is, and the serving's name.
//
//   --host H / REDIS_HOST        TCP host (default 127.0.0.1)
//   --port P / REDIS_PORT        TCP port (default 6379)
//   --socket PATH / REDIS_SOCKET a unix socket instead of host:port
//   --db N / REDIS_DB            database number (default 0)
//   --user U / REDIS_USER        an ACL user (default: Redis' default user)
//   REDIS_PASSWORD               AUTH password: only from the environment, so
//                                it is never on a command line (ps, shell
//                                history); never printed either
//   --serving NAME               the serving's name (default "embed")
// A flag wins over its variable. Read in main, before any thread starts.
#pragma once

#include <batch_serving/redis_endpoint.hpp>

#include <charconv>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace distributed_example {

struct redis_args {
  batch_serving::redis_endpoint endpoint;
  std::string serving = "embed";
};

inline int parse_int(std::string_view what, std::string_view text) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    throw std::invalid_argument(std::string(what) + ": not a number: '" + std::string(text) + "'");
  }
  return value;
}

inline std::optional<std::string> env(const char* name) {
  // Only main's thread exists while the arguments are read.
  const char* value = std::getenv(name);  // NOLINT(concurrency-mt-unsafe)
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

// Parses the flags above; on_other(flag, value) handles a program's own
// flags (returns false for an unknown one). Every flag takes a value.
// Throws std::invalid_argument naming what is wrong.
template <class OtherFlag>
redis_args parse_redis_args(int argc, char** argv, OtherFlag&& on_other) {
  redis_args args;
  batch_serving::redis_endpoint& e = args.endpoint;
  if (auto v = env("REDIS_HOST")) e.host = *v;
  if (auto v = env("REDIS_PORT")) e.port = parse_int("REDIS_PORT", *v);
  if (auto v = env("REDIS_SOCKET")) e.unix_socket = *v;
  if (auto v = env("REDIS_DB")) e.database = parse_int("REDIS_DB", *v);
  if (auto v = env("REDIS_USER")) e.user = *v;
  if (auto v = env("REDIS_PASSWORD")) e.password = *v;

  for (int i = 1; i < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(std::string(flag) + " needs a value");
    const std::string_view value = argv[i + 1];
    if (flag == "--host") {
      e.host = value;
    } else if (flag == "--port") {
      e.port = parse_int(flag, value);
    } else if (flag == "--socket") {
      e.unix_socket = value;
    } else if (flag == "--db") {
      e.database = parse_int(flag, value);
    } else if (flag == "--user") {
      e.user = value;
    } else if (flag == "--serving") {
      args.serving = value;
    } else if (!on_other(flag, value)) {
      throw std::invalid_argument("unknown flag " + std::string(flag) +
                                  " (the password is read from REDIS_PASSWORD only)");
    }
  }
  // Names the bad field, never the password.
  if (auto bad = e.validate()) throw std::invalid_argument(bad->to_string());
  return args;
}

}  // namespace distributed_example
