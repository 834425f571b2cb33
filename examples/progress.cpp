// A live progress bar fed by a streaming serving's `progress` hook.
//
// A few thousand text chunks are "indexed" (a cheap hashed bag-of-words
// embedding) by a module serving with two partitions. The whole set is sent
// with one dispatch_many; the stream then yields, per execution, a `progress`
// hook event (one entry per chunk: its token estimate) followed by the batch
// of embeddings. The bar advances on hook events, the embeddings are stored
// from batch events, and the summary checks that every chunk got exactly one.
//
//   ./progress [--chunks N] [--delay-ms N]
#include <batch_serving/batch_serving.hpp>

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace bs = batch_serving;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::size_t dimensions = 32;

struct chunk {
  std::size_t id = 0;
  std::string text;
};

struct embedding {
  std::size_t chunk_id = 0;  // lets the summary prove each chunk came back once, in place
  std::array<float, dimensions> values{};
};

// One entry per input of an execution (ctx.emit requires exactly that).
struct progress_entry {
  std::size_t chunk_id = 0;
  std::uint32_t tokens = 0;           // words * 4/3, the usual rule of thumb
  std::size_t partition = 0;          // which partition indexed it
  std::uint64_t partition_batch = 0;  // that partition's own execution count so far
};

// --- deterministic input ---------------------------------------------------

// splitmix64: the same sequence on every platform, unlike std:: distributions.
class rng {
 public:
  explicit rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }

 private:
  std::uint64_t state_;
};

std::vector<chunk> make_chunks(std::size_t count) {
  static constexpr std::array<std::string_view, 48> vocabulary = {
      "the",     "a",        "batch",     "server",  "queue",    "latency", "model",   "token",
      "vector",  "index",    "search",    "query",   "document", "shard",   "replica", "cache",
      "request", "response", "partition", "thread",  "timeout",  "stream",  "event",   "hook",
      "fast",    "slow",     "dynamic",   "static",  "small",    "large",   "every",   "some",
      "runs",    "waits",    "returns",   "emits",   "stores",   "reads",   "writes",  "joins",
      "under",   "over",     "with",      "without", "before",   "after",   "and",     "or"};
  rng gen(20240611);
  std::vector<chunk> chunks;
  chunks.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    // 4..64 words: varied lengths make the token total differ from a multiple of the count.
    const std::size_t words = 4 + gen.below(61);
    std::string text;
    for (std::size_t w = 0; w < words; ++w) {
      if (w != 0) text += ' ';
      text += vocabulary[gen.below(vocabulary.size())];
    }
    text += '.';
    chunks.push_back({i, std::move(text)});
  }
  return chunks;
}

// --- the "indexing" ----------------------------------------------------------

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// Calls `fn(word)` for each space-separated word, ignoring the final '.'.
template <class Fn>
void for_each_word(std::string_view text, Fn&& fn) {
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find_first_of(" .", at);
    if (end == std::string_view::npos) end = text.size();
    if (end > at) fn(text.substr(at, end - at));
    at = end + 1;
  }
}

// Signed feature hashing (the sign bit halves collision bias), then L2-normalized.
embedding embed(const chunk& c) {
  embedding e{c.id, {}};
  for_each_word(c.text, [&](std::string_view word) {
    const std::uint64_t h = fnv1a(word);
    e.values[h % dimensions] += ((h >> 32) & 1u) != 0 ? 1.0f : -1.0f;
  });
  float norm = 0.0f;
  for (float v : e.values) norm += v * v;
  norm = std::sqrt(norm);
  if (norm > 0.0f) {
    for (float& v : e.values) v /= norm;
  }
  return e;
}

std::uint32_t token_estimate(const chunk& c) {
  std::uint32_t words = 0;
  for_each_word(c.text, [&](std::string_view) { ++words; });
  return (words * 4 + 2) / 3;  // rounded to nearest: truncation would undercount every chunk
}

// Per-partition state: each partition gets its own indexer, so the batch
// counter needs no lock (one execution at a time per partition).
class indexer {
 public:
  indexer(const bs::partition_info& where, std::chrono::milliseconds delay)
      : partition_(where.index), delay_(delay) {}

  std::vector<embedding> handle_batch(std::span<const chunk> batch, bs::execution_context& ctx) {
    ++batches_;
    // Stands in for a model call: without it the whole run is over before a bar is visible.
    std::this_thread::sleep_for(delay_);
    std::vector<embedding> out;
    std::vector<progress_entry> progress;
    out.reserve(batch.size());
    progress.reserve(batch.size());
    for (const chunk& c : batch) {
      out.push_back(embed(c));
      progress.push_back({c.id, token_estimate(c), partition_, batches_});
    }
    ctx.emit("progress", std::move(progress));
    return out;
  }

 private:
  std::size_t partition_;
  std::chrono::milliseconds delay_;
  std::uint64_t batches_ = 0;
};

// --- output ------------------------------------------------------------------

// 1234567 -> "1,234,567": the bar is read by people.
std::string with_commas(std::uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

class progress_bar {
 public:
  progress_bar(std::size_t total, bool redraw) : total_(total), redraw_(redraw) {}

  void update(std::size_t done, std::uint64_t tokens, double seconds) {
    const std::size_t percent = total_ == 0 ? 100 : done * 100 / total_;
    if (!redraw_) {
      // Logs and pipes get a line per 10% instead of a wall of '\r's.
      if (percent < next_mark_ && done != total_) return;
      while (next_mark_ <= percent) next_mark_ += 10;
    }
    const std::string line = render(done, percent, tokens, seconds, redraw_ ? columns() : 0);
    if (redraw_) {
      // Pad over the previous line: the rate field can get shorter.
      const std::size_t pad = last_length_ > line.size() ? last_length_ - line.size() : 0;
      std::printf("\r%s%*s", line.c_str(), static_cast<int>(pad), "");
      last_length_ = line.size();
    } else {
      std::printf("%s\n", line.c_str());
    }
    std::fflush(stdout);
  }

  // Leaves the cursor below the bar so later output doesn't overwrite it.
  void finish() {
    if (redraw_ && last_length_ != 0) std::printf("\n");
    std::fflush(stdout);
  }

 private:
  // The terminal's width, re-read per draw so a resize is picked up; 0 if unknown.
  static std::size_t columns() {
    winsize ws{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0) return 0;
    return ws.ws_col;
  }

  // `columns` > 0 keeps the line shorter than the terminal: a wrapped line
  // would make '\r' return to its second row and leave the first behind.
  std::string render(std::size_t done, std::size_t percent, std::uint64_t tokens, double seconds,
                     std::size_t columns) const {
    const double rate = seconds > 0.0 ? static_cast<double>(done) / seconds : 0.0;
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3zu%%", percent);
    // Appends rather than `"[" + std::string(...)`: GCC 12 flags that with a
    // false -Wrestrict at -O3, and warnings are errors here.
    std::string counts;
    counts.append("] ").append(with_commas(done)).append(1, '/').append(with_commas(total_));
    counts.append(" chunks ").append(pct).append(" | ");
    counts.append(with_commas(static_cast<std::uint64_t>(std::llround(rate))))
        .append(" chunks/s | ");
    counts.append(with_commas(tokens)).append(" tokens");

    constexpr std::size_t max_width = 30;
    constexpr std::size_t min_width = 10;
    std::size_t width = max_width;
    if (columns != 0) {
      const std::size_t room = columns - 1;  // the last column would wrap on some terminals
      const std::size_t fixed = 1 + counts.size();
      width = room > fixed ? std::clamp(room - fixed, min_width, max_width) : min_width;
    }
    const std::size_t filled = total_ == 0 ? width : done * width / total_;
    std::string line;
    line.append(1, '[').append(filled, '#').append(width - filled, '-').append(counts);
    if (columns > 1 && line.size() > columns - 1) line.resize(columns - 1);
    return line;
  }

  std::size_t total_;
  bool redraw_;
  std::size_t next_mark_ = 10;
  std::size_t last_length_ = 0;
};

struct options {
  std::size_t chunks = 3000;
  std::chrono::milliseconds delay = 4ms;
};

bool parse_count(const char* text, long long max, long long& out) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < 0 || v > max) return false;
  out = v;
  return true;
}

void usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--chunks N (1..10000000)] [--delay-ms N (0..10000)]\n", argv0);
}

// Returns false (after printing usage) on anything it does not understand.
bool parse_options(int argc, char** argv, options& opts) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(argv[0]);
      std::exit(0);  // NOLINT(concurrency-mt-unsafe): option parsing, before any thread starts
    }
    long long v = 0;
    if (arg == "--chunks" && i + 1 < argc && parse_count(argv[i + 1], 10'000'000, v) && v > 0) {
      opts.chunks = static_cast<std::size_t>(v);
      ++i;
    } else if (arg == "--delay-ms" && i + 1 < argc && parse_count(argv[i + 1], 10'000, v)) {
      opts.delay = std::chrono::milliseconds(v);
      ++i;
    } else {
      std::fprintf(stderr, "bad argument: %s\n", argv[i]);
      usage(argv[0]);
      return false;
    }
  }
  return true;
}

int run(const options& opts) {
  const std::vector<chunk> chunks = make_chunks(opts.chunks);

  auto serving = bs::serving<chunk, embedding>::from_module<indexer>(opts.delay);
  bs::server srv(serving.streaming({.hooks = {"progress"}}),
                 {.batch_size = 32, .batch_timeout = 2ms, .partitions = 2});

  progress_bar bar(chunks.size(), ::isatty(STDOUT_FILENO) == 1);
  std::vector<embedding> embeddings;
  embeddings.reserve(chunks.size());
  std::size_t done = 0;
  std::uint64_t tokens = 0;
  std::size_t hook_events = 0;
  std::size_t batch_events = 0;
  std::array<std::uint64_t, 2> partition_batches{};  // per partition: highest count it reported
  std::array<std::size_t, 2> partition_chunks{};
  // The chunk ids of the last hook event: its batch must follow with the same ids.
  std::vector<std::size_t> pending;
  bool pending_hook = false;

  const auto start = clock_type::now();
  // One call for the whole set: with hooks declared it is cut into batch_size
  // slices that are never split, so each hook event maps to one execution.
  for (auto& ev : srv.dispatch_many(chunks)) {
    switch (ev.kind()) {
      case bs::event_kind::hook: {
        if (ev.hook() != "progress") break;
        if (pending_hook) {
          bar.finish();
          std::fprintf(stderr, "error: two hook events without a batch between them\n");
          return 1;
        }
        const auto entries = ev.payload<progress_entry>();
        pending.clear();
        for (const progress_entry& p : entries) {
          tokens += p.tokens;
          pending.push_back(p.chunk_id);
          const std::size_t part = std::min<std::size_t>(p.partition, partition_batches.size() - 1);
          partition_batches[part] = std::max(partition_batches[part], p.partition_batch);
          ++partition_chunks[part];
        }
        pending_hook = true;
        ++hook_events;
        done += entries.size();
        bar.update(done, tokens, std::chrono::duration<double>(clock_type::now() - start).count());
        break;
      }
      case bs::event_kind::batch: {
        auto& batch = ev.batch();
        // Streaming promises "that slice's hook events then its batch": check it.
        bool matches = pending_hook && batch.size() == pending.size();
        for (std::size_t i = 0; matches && i < batch.size(); ++i) {
          matches = batch[i].chunk_id == pending[i];
        }
        if (!matches) {
          bar.finish();
          std::fprintf(stderr,
                       "error: batch event %zu (%zu items, first chunk %zu) does not match "
                       "the preceding hook event (%zu entries)\n",
                       batch_events, batch.size(), batch.empty() ? 0 : batch.front().chunk_id,
                       pending_hook ? pending.size() : 0);
          return 1;
        }
        pending_hook = false;
        ++batch_events;
        for (auto& e : batch) embeddings.push_back(std::move(e));
        break;
      }
      case bs::event_kind::error:
        bar.finish();
        std::fprintf(stderr, "error event after %s/%s chunks: %s\n",
                     with_commas(embeddings.size()).c_str(), with_commas(chunks.size()).c_str(),
                     ev.error().to_string().c_str());
        return 1;
      default: break;
    }
  }
  const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
  bar.finish();

  // Stop first so the counters are final, not a snapshot racing the last execution.
  srv.stop();
  const bs::server_stats stats = srv.stats();

  // Every chunk exactly once, in dispatch order, with the embedding it should have.
  std::size_t out_of_place = 0;
  std::size_t wrong_values = 0;
  for (std::size_t i = 0; i < embeddings.size(); ++i) {
    if (embeddings[i].chunk_id != i) ++out_of_place;
    if (i < chunks.size() && embeddings[i].values != embed(chunks[i]).values) ++wrong_values;
  }
  const bool first_ok =
      !embeddings.empty() && embeddings.front().values == embed(chunks.front()).values;
  const bool ok = embeddings.size() == chunks.size() && done == chunks.size() &&
                  out_of_place == 0 && wrong_values == 0 && first_ok && !pending_hook;

  std::printf("indexed %s chunks, %s tokens in %.3f s (%s chunks/s)\n",
              with_commas(embeddings.size()).c_str(), with_commas(tokens).c_str(), elapsed,
              with_commas(static_cast<std::uint64_t>(
                              std::llround(elapsed > 0 ? static_cast<double>(done) / elapsed : 0)))
                  .c_str());
  std::printf(
      "server: %llu executions, mean batch %.1f, %llu failed; stream: %zu hook + %zu "
      "batch events\n",
      static_cast<unsigned long long>(stats.executions), stats.mean_batch(),
      static_cast<unsigned long long>(stats.failed_executions), hook_events, batch_events);
  for (std::size_t p = 0; p < partition_batches.size(); ++p) {
    std::printf("partition %zu: %llu executions, %s chunks\n", p,
                static_cast<unsigned long long>(partition_batches[p]),
                with_commas(partition_chunks[p]).c_str());
  }
  std::printf(
      "check: %s embeddings for %s chunks, %zu out of place, %zu differ from a "
      "recomputation, first chunk %s -> %s\n",
      with_commas(embeddings.size()).c_str(), with_commas(chunks.size()).c_str(), out_of_place,
      wrong_values, first_ok ? "matches" : "DIFFERS", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  options opts;
  if (!parse_options(argc, argv, opts)) return 2;
  try {
    return run(opts);
  } catch (const std::exception& e) {
    // e.g. serving_error from payload<T>() with the wrong type, or server start-up.
    std::fprintf(stderr, "\nerror: %s\n", e.what());
    return 1;
  }
}
