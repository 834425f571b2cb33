// batch_serving_reply_parse: what reading one Redis reply costs the transport's
// threads, with hiredis' default reply objects (a heap object and a string per
// field) and with the library's arena (detail/redis_reply_arena.hpp, a few
// blocks per reply). The reply is shaped as a worker's XREADGROUP reply:
// ENTRIES request entries of six fields, each field a short name and value,
// the items a PAYLOAD-byte value. Both readers parse the same bytes, in
// alternating rounds; prints the median ns per reply of each and their ratio.
//
//   batch_serving_reply_parse                      # 64 entries, 5 rounds
//   batch_serving_reply_parse --entries 8 --payload 200 --rounds 9
//
// No Redis is needed: the bytes are fed to hiredis' reader directly.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "batch_serving/detail/redis_reply_arena.hpp"

namespace {

void append_bulk(std::string& out, std::string_view text) {
  out.append("$").append(std::to_string(text.size())).append("\r\n");
  out.append(text).append("\r\n");
}

// [[stream, [[id, [v 1 id c1/N reply R form one budget_us 1000 items X]] ...]]]
std::string xreadgroup_reply(std::size_t entries, std::size_t payload) {
  std::string out = "*1\r\n*2\r\n";
  append_bulk(out, "bs:{bench}:requests");
  out.append("*").append(std::to_string(entries)).append("\r\n");
  const std::string items(payload, 'x');
  for (std::size_t i = 0; i < entries; ++i) {
    out.append("*2\r\n");
    append_bulk(out, "1733140000000-" + std::to_string(i));
    out.append("*12\r\n");
    for (const std::string& text :
         {std::string("v"), std::string("1"), std::string("id"), "client-1/" + std::to_string(i),
          std::string("reply"), std::string("bs:{bench}:replies:client-1"), std::string("form"),
          std::string("one"), std::string("budget_us"), std::string("1000"), std::string("items"),
          items}) {
      append_bulk(out, text);
    }
  }
  return out;
}

// ns per reply of `iterations` parses of `bytes`, with or without arenas;
// negative when the bytes do not parse.
double parse_ns(const std::string& bytes, bool arenas, int iterations) {
  redisReader* reader = redisReaderCreate();
  if (arenas) batch_serving::detail::use_reply_arenas(reader);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) {
    void* reply = nullptr;
    if (redisReaderFeed(reader, bytes.data(), bytes.size()) != REDIS_OK ||
        redisReaderGetReply(reader, &reply) != REDIS_OK || reply == nullptr) {
      redisReaderFree(reader);
      return -1;  // the reply did not parse
    }
    if (arenas) {
      batch_serving::detail::free_arena_reply(static_cast<redisReply*>(reply));
    } else {
      freeReplyObject(reply);
    }
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  redisReaderFree(reader);
  return std::chrono::duration<double, std::nano>(elapsed).count() / iterations;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

std::size_t option(int argc, char** argv, std::string_view name, std::size_t fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (name == argv[i]) return static_cast<std::size_t>(std::strtoull(argv[i + 1], nullptr, 10));
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t entries = std::max<std::size_t>(1, option(argc, argv, "--entries", 64));
  const std::size_t payload = option(argc, argv, "--payload", 8);
  const auto rounds = static_cast<int>(std::max<std::size_t>(1, option(argc, argv, "--rounds", 5)));
  const std::string bytes = xreadgroup_reply(entries, payload);
  // About 50 ms per measurement whatever the reply's size.
  const int iterations = std::max(20, static_cast<int>(20'000'000 / (bytes.size() + 1000)));
  // Warm-up, and the check that both readers parse the reply.
  if (parse_ns(bytes, false, iterations) < 0 || parse_ns(bytes, true, iterations) < 0) {
    std::fprintf(stderr, "batch_serving_reply_parse: the reply did not parse\n");
    return 1;
  }
  std::vector<double> plain;
  std::vector<double> arena;
  for (int r = 0; r < rounds; ++r) {
    plain.push_back(parse_ns(bytes, false, iterations));
    arena.push_back(parse_ns(bytes, true, iterations));
  }
  const double p = median(plain);
  const double a = median(arena);
  std::printf(
      "XREADGROUP reply of %zu entries (%zu bytes): hiredis objects %.0f ns, arena %.0f ns "
      "(%.2fx; %.0f vs %.0f ns per entry), medians of %d rounds of %d\n",
      entries, bytes.size(), p, a, p / a, p / static_cast<double>(entries),
      a / static_cast<double>(entries), rounds, iterations);
  return 0;
}
