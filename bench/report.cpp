#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace bench {

std::string json_string(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  for (const char ch : text) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(ch));
          out += buf;
        } else {
          out.push_back(ch);  // UTF-8 passes through unchanged
        }
    }
  }
  out.push_back('"');
  return out;
}

namespace {

// Fixed-point with at most `decimals` decimals, trailing zeros and a
// trailing point removed ("12.500" -> "12.5", "3.000" -> "3").
std::string trimmed_fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s(buf);
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

std::string json_integer(std::optional<std::int64_t> v) {
  return v ? std::to_string(*v) : std::string("null");
}

}  // namespace

std::string json_number(std::optional<double> v, int decimals) {
  if (!v || !std::isfinite(*v)) return "null";
  return trimmed_fixed(*v, decimals);
}

std::string to_json(const row& r) {
  std::string out = "{";
  const auto field = [&out](std::string_view key, const std::string& value) {
    if (out.size() > 1) out += ", ";
    out += json_string(key);
    out += ": ";
    out += value;
  };
  field("scenario", json_string(r.scenario));
  field("impl", json_string(r.impl));
  for (const auto& [key, value] : r.labels) field(key, json_string(value));
  field("callers", json_integer(r.callers));
  field("batch_size", json_integer(r.batch_size));
  field("batch_timeout_us", json_integer(r.batch_timeout_us));
  field("items_per_s", json_number(r.items_per_s, 1));
  field("p50_us", json_number(r.p50_us));
  field("p99_us", json_number(r.p99_us));
  field("mean_batch", json_number(r.mean_batch));
  field("runs", std::to_string(r.runs));
  for (const auto& [key, value] : r.extra) field(key, json_number(value, 4));
  out += "}";
  return out;
}

void reporter::add(row r) {
  if (format_ == format::json) {
    std::fprintf(out_, "%s\n", to_json(r).c_str());
    std::fflush(out_);
  } else {
    rows_.push_back(std::move(r));
  }
}

namespace {

std::string cell_integer(std::optional<std::int64_t> v) {
  return v ? std::to_string(*v) : std::string("-");
}

std::string cell_number(std::optional<double> v, int decimals) {
  if (!v || !std::isfinite(*v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, *v);
  return buf;
}

// Labels and extra figures as "name=value" pairs, figures to 4 significant
// digits.
std::string cell_extra(const row& r) {
  std::string out;
  for (const auto& [key, value] : r.labels) {
    if (!out.empty()) out += "  ";
    out += key + "=" + value;
  }
  for (const auto& [key, value] : r.extra) {
    if (!value || !std::isfinite(*value)) continue;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4g", *value);
    if (!out.empty()) out += "  ";
    out += key + "=" + buf;
  }
  return out;
}

}  // namespace

void reporter::finish() {
  if (format_ != format::table) return;
  const std::vector<std::string> header = {"scenario",   "impl",    "callers", "batch",
                                           "timeout_us", "items/s", "p50_us",  "p99_us",
                                           "mean_batch", "extra"};
  // Text columns are left-aligned, numbers right-aligned; the last is free.
  const std::vector<bool> left = {true,  true,  false, false, false,
                                  false, false, false, false, true};
  std::vector<std::vector<std::string>> cells;
  cells.push_back(header);
  for (const auto& r : rows_) {
    cells.push_back({r.scenario, r.impl, cell_integer(r.callers), cell_integer(r.batch_size),
                     cell_integer(r.batch_timeout_us), cell_number(r.items_per_s, 0),
                     cell_number(r.p50_us, 1), cell_number(r.p99_us, 1),
                     cell_number(r.mean_batch, 1), cell_extra(r)});
  }
  std::vector<std::size_t> width(header.size(), 0);
  for (const auto& line : cells) {
    for (std::size_t i = 0; i < line.size(); ++i) width[i] = std::max(width[i], line[i].size());
  }
  for (std::size_t n = 0; n < cells.size(); ++n) {
    std::string text;
    for (std::size_t i = 0; i < header.size(); ++i) {
      const std::string& c = cells[n][i];
      const std::size_t pad = width[i] - c.size();
      if (i > 0) text += "  ";
      if (i + 1 == header.size()) {
        text += c;  // no trailing blanks
      } else if (left[i]) {
        text += c + std::string(pad, ' ');
      } else {
        text += std::string(pad, ' ') + c;
      }
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    std::fprintf(out_, "%s\n", text.c_str());
    // A blank line between scenarios keeps the table readable.
    if (n > 0 && n + 1 < cells.size() && cells[n + 1][0] != cells[n][0]) std::fprintf(out_, "\n");
  }
  std::fflush(out_);
}

}  // namespace bench
