#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "batch_serving/redis_endpoint.hpp"

namespace batch_serving {
namespace {

// sun_path holds 108 bytes with the terminating NUL; hiredis 0.14 truncates a
// longer path silently, so it is refused here.
constexpr std::size_t most_unix_socket_bytes = 107;

error bad_field(const std::string& what) {
  return error(errc::invalid_argument, "redis_endpoint." + what);
}

error bad_url(const std::string& what) {
  return error(errc::invalid_argument, "redis URL: " + what);
}

std::optional<int> parse_decimal(std::string_view digits) {
  if (digits.empty() || digits.size() > 9) return std::nullopt;
  int value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int high = hex_digit(text[i + 1]);
    const int low = hex_digit(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

// Quotes a part of the URL that is not a credential, cut short so an error
// stays one line.
std::string quoted(std::string_view part) {
  constexpr std::size_t most_shown = 64;
  std::string text = "'";
  text += part.substr(0, most_shown);
  if (part.size() > most_shown) text += "...";
  text += "'";
  return text;
}

bool looks_like_scheme(std::string_view scheme) {
  if (scheme.empty() || scheme.size() > 16) return false;
  for (char c : scheme) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// Splits "user:password@rest" at the last '@' into the endpoint's
// credentials; returns the rest, or an error that quotes none of it.
result<std::string_view> take_credentials(std::string_view text, redis_endpoint& endpoint) {
  const std::size_t at = text.rfind('@');
  if (at == std::string_view::npos) return text;
  const std::string_view userinfo = text.substr(0, at);
  const std::size_t colon = userinfo.find(':');
  const std::optional<std::string> user = percent_decode(userinfo.substr(0, colon));
  if (!user) return bad_url("the user name has a malformed percent-escape");
  endpoint.user = *user;
  if (colon != std::string_view::npos) {
    const std::optional<std::string> password = percent_decode(userinfo.substr(colon + 1));
    if (!password) return bad_url("the password has a malformed percent-escape");
    endpoint.password = *password;
  }
  return text.substr(at + 1);
}

result<redis_endpoint> parse_tcp(std::string_view rest, redis_endpoint endpoint) {
  // host[:port][/db]
  std::string_view host;
  std::string_view after_host;
  if (!rest.empty() && rest.front() == '[') {
    const std::size_t close = rest.find(']');
    if (close == std::string_view::npos) return bad_url("IPv6 host " + quoted(rest) + " lacks ']'");
    host = rest.substr(1, close - 1);
    after_host = rest.substr(close + 1);
  } else {
    const std::size_t end = rest.find_first_of(":/?");
    host = rest.substr(0, end);
    after_host = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  }
  if (host.empty()) return bad_url("no host (redis://host[:port][/db])");
  endpoint.host = std::string(host);
  if (!after_host.empty() && after_host.front() == ':') {
    const std::size_t end = after_host.find_first_of("/?");
    const std::string_view port_text =
        after_host.substr(1, end == std::string_view::npos ? end : end - 1);
    const std::optional<int> port = parse_decimal(port_text);
    if (!port) return bad_url("port " + quoted(port_text) + " is not a number");
    endpoint.port = *port;
    after_host = end == std::string_view::npos ? std::string_view{} : after_host.substr(end);
  }
  if (!after_host.empty() && after_host.front() == '/') {
    const std::size_t end = after_host.find('?');
    const std::string_view db_text =
        after_host.substr(1, end == std::string_view::npos ? end : end - 1);
    if (!db_text.empty()) {
      const std::optional<int> db = parse_decimal(db_text);
      if (!db) return bad_url("database " + quoted(db_text) + " is not a number");
      endpoint.database = *db;
    }
    after_host = end == std::string_view::npos ? std::string_view{} : after_host.substr(end);
  }
  if (!after_host.empty()) {
    return bad_url("unexpected " + quoted(after_host) +
                   " after the host (redis:// takes no query)");
  }
  return endpoint;
}

result<redis_endpoint> parse_unix(std::string_view rest, redis_endpoint endpoint) {
  // /path[?db=N]
  const std::size_t query_at = rest.find('?');
  const std::string_view path_text = rest.substr(0, query_at);
  if (path_text.empty() || path_text.front() != '/') {
    return bad_url("a unix socket URL needs an absolute path (unix:///path/to/redis.sock)");
  }
  const std::optional<std::string> path = percent_decode(path_text);
  if (!path)
    return bad_url("the socket path " + quoted(path_text) + " has a malformed percent-escape");
  endpoint.unix_socket = *path;
  if (query_at == std::string_view::npos) return endpoint;
  std::string_view query = rest.substr(query_at + 1);
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view parameter = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const std::size_t eq = parameter.find('=');
    const std::string_view key = parameter.substr(0, eq);
    if (key != "db") {
      return bad_url("unknown query parameter " + quoted(key) + " (unix:// takes only db=N)");
    }
    const std::string_view value =
        eq == std::string_view::npos ? std::string_view{} : parameter.substr(eq + 1);
    const std::optional<int> db = parse_decimal(value);
    if (!db) return bad_url("database " + quoted(value) + " is not a number");
    endpoint.database = *db;
  }
  return endpoint;
}

}  // namespace

result<redis_endpoint> redis_endpoint::from_url(std::string_view url) {
  const std::size_t separator = url.find("://");
  if (separator == std::string_view::npos) {
    return bad_url("expected redis://host[:port][/db] or unix:///path[?db=N]");
  }
  const std::string_view scheme = url.substr(0, separator);
  redis_endpoint endpoint;
  if (scheme != "redis" && scheme != "unix") {
    if (scheme == "rediss") return bad_url("rediss:// (TLS) is not supported by this build");
    if (!looks_like_scheme(scheme)) return bad_url("expected redis:// or unix://");
    return bad_url("unknown scheme " + quoted(scheme) + " (expected redis:// or unix://)");
  }
  result<std::string_view> rest = take_credentials(url.substr(separator + 3), endpoint);
  if (!rest) return rest.error();
  result<redis_endpoint> parsed = scheme == "redis" ? parse_tcp(*rest, std::move(endpoint))
                                                    : parse_unix(*rest, std::move(endpoint));
  if (!parsed) return parsed;
  if (std::optional<error> invalid = parsed->validate()) return *std::move(invalid);
  return parsed;
}

std::optional<error> redis_endpoint::validate() const {
  if (uses_unix_socket()) {
    if (unix_socket.size() > most_unix_socket_bytes) {
      return bad_field("unix_socket must be at most " + std::to_string(most_unix_socket_bytes) +
                       " bytes (got " + std::to_string(unix_socket.size()) + ")");
    }
    if (unix_socket.find('\0') != std::string::npos) {
      return bad_field("unix_socket must not contain a NUL byte");
    }
  } else {
    if (host.empty()) return bad_field("host must not be empty (or set unix_socket)");
    if (host.find('\0') != std::string::npos) return bad_field("host must not contain a NUL byte");
    if (port < 1 || port > std::numeric_limits<std::uint16_t>::max()) {
      return bad_field("port must be in 1..65535 (got " + std::to_string(port) + ")");
    }
  }
  if (database < 0) {
    return bad_field("database must not be negative (got " + std::to_string(database) + ")");
  }
  if (!user.empty() && password.empty()) {
    return bad_field("user '" + user +
                     "' needs a password (AUTH user password; any password for a nopass user)");
  }
  if (connect_timeout.count() <= 0) {
    return bad_field("connect_timeout must be positive (got " +
                     std::to_string(connect_timeout.count()) + " ms)");
  }
  if (command_timeout.count() <= 0) {
    return bad_field("command_timeout must be positive (got " +
                     std::to_string(command_timeout.count()) + " ms)");
  }
  return std::nullopt;
}

std::string redis_endpoint::to_string() const {
  std::string text;
  if (uses_unix_socket()) {
    text = "unix://";
    if (!user.empty()) text += user + "@";
    text += unix_socket + "?db=" + std::to_string(database);
  } else {
    text = "redis://";
    if (!user.empty()) text += user + "@";
    // Appends only: gcc 12 warns (-Wrestrict, a false positive) on "[" + host.
    const bool ipv6 = host.find(':') != std::string::npos;
    if (ipv6) text += '[';
    text += host;
    if (ipv6) text += ']';
    text += ':';
    text += std::to_string(port);
    text += '/';
    text += std::to_string(database);
  }
  text += password.empty() ? " (no password)" : " (password set)";
  return text;
}

std::ostream& operator<<(std::ostream& out, const redis_endpoint& endpoint) {
  return out << endpoint.to_string();
}

}  // namespace batch_serving
