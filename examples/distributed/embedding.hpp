// The examples' batch function: a small text embedding by feature hashing.
// Each word of a text adds +1 or -1 to one of `embedding_dims` buckets (both
// picked by the word's hash), and the vector is scaled to unit length, so
// texts sharing words have a high dot product. A stand-in for a model: the
// worker runs it on batches, and the client runs it on its own to check every
// answer it gets.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace distributed_example {

inline constexpr std::size_t embedding_dims = 16;

// FNV-1a: the same value in every process and on every machine (std::hash
// promises neither).
inline std::uint64_t word_hash(std::string_view word) {
  std::uint64_t h = 14695981039346656037ULL;
  for (const char c : word) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

inline std::vector<float> embed(std::string_view text) {
  std::vector<float> v(embedding_dims, 0.0F);
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t end = std::min(text.find(' ', at), text.size());
    if (end > at) {
      const std::uint64_t h = word_hash(text.substr(at, end - at));
      v[h % embedding_dims] += (h >> 63U) != 0 ? -1.0F : 1.0F;
    }
    at = end + 1;
  }
  float norm = 0.0F;
  for (const float x : v) norm += x * x;
  if (norm > 0.0F) {
    const float scale = 1.0F / std::sqrt(norm);
    for (float& x : v) x *= scale;
  }
  return v;
}

// What the worker serves: one embedding per text, in the texts' order.
inline std::vector<std::vector<float>> embed_all(std::span<const std::string> texts) {
  std::vector<std::vector<float>> out;
  out.reserve(texts.size());
  for (const std::string& text : texts) out.push_back(embed(text));
  return out;
}

}  // namespace distributed_example
