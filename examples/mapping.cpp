// map_inputs / map_results: callers pass and receive their own types while the
// batch function works on the batch types. Here callers send temperatures as
// text and get text back; the batch function converts doubles. Both mappings
// run per item in the caller's thread. A map_inputs that throws (text that is
// not a number) fails only that call, with invalid_argument, and its item never
// reaches the batch function.
#include <batch_serving/error.hpp>
#include <batch_serving/server.hpp>
#include <batch_serving/serving.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace bs = batch_serving;

namespace {
int failures = 0;
void expect(bool holds, const char* what) {
  if (!holds) std::printf("FAILED: %s\n", what);
  failures += holds ? 0 : 1;
}

double parse_celsius(const std::string& text) {
  char* end = nullptr;
  const double celsius = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0') throw std::invalid_argument("not a number: '" + text + "'");
  return celsius;
}

std::string format_fahrenheit(double fahrenheit) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f F", fahrenheit);
  return text;
}
}  // namespace

int main() try {
  std::atomic<int> items_converted{0};
  bs::serving<double, double> to_fahrenheit([&](std::span<const double> celsius) {
    items_converted += static_cast<int>(celsius.size());
    std::vector<double> out;
    for (double c : celsius) out.push_back(c * 9 / 5 + 32);
    return out;
  });
  // Batch types double -> double; caller-facing types std::string -> std::string.
  bs::serving<double, double, std::string, std::string> by_text =
      to_fahrenheit.map_inputs(parse_celsius).map_results(format_fahrenheit);
  bs::server srv(by_text, {.batch_size = 8, .batch_timeout = std::chrono::milliseconds(1)});

  const std::string body_temperature = srv.dispatch("37").value();
  std::printf("dispatch(\"37\") -> \"%s\"\n", body_temperature.c_str());
  expect(body_temperature == "98.6 F", "37 C is 98.6 F");

  const std::vector<std::string> many = srv.dispatch_many({"-40", "0", "100"}).value();
  std::printf("dispatch_many({\"-40\", \"0\", \"100\"}) -> \"%s\", \"%s\", \"%s\"\n",
              many[0].c_str(), many[1].c_str(), many[2].c_str());
  expect(many == std::vector<std::string>{"-40.0 F", "32.0 F", "212.0 F"}, "three conversions");

  // Three concurrent callers; the middle one's input does not parse.
  auto first = srv.dispatch_async("20");
  auto unparsable = srv.dispatch_async("warm");
  auto last = srv.dispatch_async("30");
  const bs::result<std::string> bad = unparsable.get();
  const std::string a = first.get().value_or("error"), b = last.get().value_or("error");
  std::printf("\"20\" -> \"%s\"; \"30\" -> \"%s\"; \"warm\" -> %s\n", a.c_str(), b.c_str(),
              bad.ok() ? "ok" : bad.error().to_string().c_str());
  expect(a == "68.0 F" && b == "86.0 F", "the other callers got their results");
  expect(!bad.ok() && bad.error().code() == bs::errc::invalid_argument, "invalid_argument");
  std::printf("the batch function converted %d items (1 + 3 + 2: never \"warm\")\n",
              items_converted.load());
  expect(items_converted == 6, "the unparsable item never reached the batch function");

  std::puts(failures == 0 ? "OK" : "FAILED");
  return failures == 0 ? 0 : 1;
} catch (const std::exception& e) {  // e.g. serving_error from result::value()
  std::printf("FAILED: %s\n", e.what());
  return 1;
}
