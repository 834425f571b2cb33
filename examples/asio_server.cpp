// A TCP service whose connections share one server: each connection's
// handler is a coroutine that co_awaits the server through async_dispatch
// (batch_serving/asio.hpp), so thousands of waiting requests cost no thread
// each, and requests from different connections share executions.
//
// Protocol, one line each way: the client sends an integer, the service
// answers its square, or "error <reason>".
//
//   ./asio_server                      # service + built-in load, then a summary
//   ./asio_server --listen 7000        # the service only, until SIGINT/SIGTERM
//   ./asio_server --connect 127.0.0.1:7000 --connections 64 --requests 500
//
// With no arguments it listens on an ephemeral loopback port, runs 64
// connections x 300 requests against itself on a 2-thread io_context,
// checks every answer and prints one line: requests, items/s, mean batch.
#include <batch_serving/asio.hpp>
#include <batch_serving/server.hpp>
#include <batch_serving/serving.hpp>

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace bs = batch_serving;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

using square_server = bs::server<std::int64_t, std::int64_t>;
// Socket operations answer with an error_code value, never throw.
constexpr auto as_tuple = asio::experimental::as_tuple(asio::use_awaitable);

bs::serving<std::int64_t, std::int64_t> squares() {
  return bs::serving<std::int64_t, std::int64_t>([](std::span<const std::int64_t> xs) {
    std::vector<std::int64_t> out;
    out.reserve(xs.size());
    for (std::int64_t x : xs) out.push_back(x * x);
    return out;
  });
}

bool parse_int64(std::string_view text, std::int64_t& value) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  return ec == std::errc() && ptr == end;
}

// Reads one line (without its '\n') into `line`; false at the end of input.
asio::awaitable<bool> read_line(tcp::socket& socket, std::string& buffer, std::string& line) {
  auto [ec, n] =
      co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), '\n', as_tuple);
  if (ec) co_return false;
  line.assign(buffer, 0, n - 1);
  buffer.erase(0, n);
  co_return true;
}

// One connection: a line in, a dispatch awaited, a line out.
asio::awaitable<void> session(tcp::socket socket, square_server& model) {
  std::string buffer;
  std::string line;
  while (co_await read_line(socket, buffer, line)) {
    std::string reply;
    std::int64_t x = 0;
    if (!parse_int64(line, x) || x > 3'000'000'000 || x < -3'000'000'000) {
      reply = "error not an integer of at most 3e9 in magnitude\n";
    } else {
      bs::result<std::int64_t> squared = co_await bs::async_dispatch(model, x, asio::use_awaitable);
      reply = squared.ok() ? std::to_string(*squared) + "\n"
                           : std::string{} + "error " + squared.error().to_string() + "\n";
    }
    auto [ec, n] = co_await asio::async_write(socket, asio::buffer(reply), as_tuple);
    if (ec) break;
  }
}

asio::awaitable<void> accept_connections(tcp::acceptor& acceptor, square_server& model) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(as_tuple);
    if (ec) co_return;  // closed
    auto ex = socket.get_executor();
    asio::co_spawn(ex, session(std::move(socket), model), asio::detached);
  }
}

struct load_totals {
  std::atomic<std::uint64_t> right{0};
  std::atomic<std::uint64_t> wrong{0};
  std::atomic<int> connections_done{0};
};

// One load connection: `requests` requests, one at a time, each answer checked.
asio::awaitable<void> load_connection(tcp::endpoint server, int id, int requests,
                                      load_totals& totals) {
  tcp::socket socket(co_await asio::this_coro::executor);
  auto [connect_error] = co_await socket.async_connect(server, as_tuple);
  std::string buffer;
  std::string line;
  for (int i = 0; i < requests && !connect_error; ++i) {
    const std::int64_t x = static_cast<std::int64_t>(id) * 100'000 + i;
    const std::string request = std::to_string(x) + "\n";
    auto [ec, n] = co_await asio::async_write(socket, asio::buffer(request), as_tuple);
    if (ec || !co_await read_line(socket, buffer, line)) {
      totals.wrong += static_cast<std::uint64_t>(requests - i);
      break;
    }
    std::int64_t answer = 0;
    if (parse_int64(line, answer) && answer == x * x) {
      ++totals.right;
    } else {
      ++totals.wrong;
    }
  }
  if (connect_error) totals.wrong += static_cast<std::uint64_t>(requests);
}

struct options {
  int listen_port = -1;        // --listen PORT: the service only
  std::string connect_to;      // --connect HOST:PORT: the load only
  int connections = 64;        // --connections N
  int requests = 300;          // --requests M (per connection)
  int io_threads = 2;          // --threads N (the io_context's)
  std::chrono::seconds limit{30};  // --limit-s S: the load gives up after that
};

void usage(const char* self) {
  std::fprintf(stderr,
               "usage: %s [--listen PORT | --connect HOST:PORT] [--connections N] "
               "[--requests M] [--threads N] [--limit-s S]\n",
               self);
}

bool parse_options(int argc, char** argv, options& opts) {
  for (int i = 1; i < argc; i += 2) {  // flag, value
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(argv[0]);
      return false;
    }
    std::int64_t v = 0;
    const bool has_value = i + 1 < argc;
    const std::string_view value = has_value ? argv[i + 1] : "";
    const bool number = has_value && parse_int64(value, v);
    if (arg == "--listen" && number && v >= 0 && v <= 65535) {
      opts.listen_port = static_cast<int>(v);
    } else if (arg == "--connect" && has_value && value.find(':') != std::string_view::npos) {
      opts.connect_to = value;
    } else if (arg == "--connections" && number && v > 0 && v <= 100'000) {
      opts.connections = static_cast<int>(v);
    } else if (arg == "--requests" && number && v > 0 && v <= 10'000'000) {
      opts.requests = static_cast<int>(v);
    } else if (arg == "--threads" && number && v > 0 && v <= 256) {
      opts.io_threads = static_cast<int>(v);
    } else if (arg == "--limit-s" && number && v > 0) {
      opts.limit = std::chrono::seconds(v);
    } else {
      std::fprintf(stderr, "bad argument: %s\n", argv[i]);
      usage(argv[0]);
      return false;
    }
  }
  if (opts.listen_port >= 0 && !opts.connect_to.empty()) {
    std::fprintf(stderr, "--listen and --connect exclude each other\n");
    return false;
  }
  return true;
}

// Runs `io` on `threads` threads (this one included) until it runs out of work.
void run_on_threads(asio::io_context& io, int threads) {
  std::vector<std::jthread> others;
  for (int i = 1; i < threads; ++i) others.emplace_back([&io] { io.run(); });
  io.run();
}

// Starts the load against `server` on `io`. On `control` (a strand): once
// every connection is done, `finish` runs; past the limit, `io` stops.
template <class Finish>
void start_load(asio::io_context& io, asio::strand<asio::io_context::executor_type> control,
                tcp::endpoint server, const options& opts, load_totals& totals, Finish finish) {
  for (int c = 0; c < opts.connections; ++c) {
    asio::co_spawn(io, load_connection(server, c, opts.requests, totals),
                   [&totals](const std::exception_ptr& failure) {
                     if (failure) ++totals.wrong;
                     ++totals.connections_done;
                   });
  }
  asio::co_spawn(
      control,
      [&io, &opts, &totals, finish]() -> asio::awaitable<void> {
        const auto give_up = std::chrono::steady_clock::now() + opts.limit;
        asio::steady_timer poll(co_await asio::this_coro::executor);
        while (totals.connections_done.load() < opts.connections) {
          if (std::chrono::steady_clock::now() > give_up) {
            io.stop();  // the summary reports what is missing
            co_return;
          }
          poll.expires_after(2ms);
          co_await poll.async_wait(asio::use_awaitable);
        }
        finish();
      },
      asio::detached);
}

int report_load(const load_totals& totals, const options& opts, std::chrono::duration<double> took,
                const square_server* model) {
  const std::uint64_t expected =
      static_cast<std::uint64_t>(opts.connections) * static_cast<std::uint64_t>(opts.requests);
  const std::uint64_t right = totals.right.load();
  const bool ok = right == expected && totals.wrong.load() == 0;
  std::printf("asio_server: %d connections x %d requests: %llu of %llu answers right, %.0f items/s",
              opts.connections, opts.requests, static_cast<unsigned long long>(right),
              static_cast<unsigned long long>(expected), static_cast<double>(right) / took.count());
  if (model != nullptr) {
    const bs::server_stats s = model->stats();
    std::printf(", mean batch %.1f (%llu executions)",
                s.executions == 0
                    ? 0.0
                    : static_cast<double>(s.items_executed) / static_cast<double>(s.executions),
                static_cast<unsigned long long>(s.executions));
  }
  std::printf(" in %.2f s%s\n", took.count(), ok ? "" : " -- FAILED");
  return ok ? 0 : 1;
}

int run(const options& opts) {
  const auto model_serving = squares();
  asio::io_context io;

  if (!opts.connect_to.empty()) {  // the load only
    const auto colon = opts.connect_to.rfind(':');
    tcp::resolver resolver(io);
    const auto endpoints =
        resolver.resolve(opts.connect_to.substr(0, colon), opts.connect_to.substr(colon + 1));
    load_totals totals;
    const auto start = std::chrono::steady_clock::now();
    start_load(io, asio::make_strand(io), *endpoints.begin(), opts, totals, [] {});
    run_on_threads(io, opts.io_threads);
    return report_load(totals, opts, std::chrono::steady_clock::now() - start, nullptr);
  }

  square_server model(model_serving, {.batch_size = 64, .batch_timeout = 1ms});
  const auto port = static_cast<asio::ip::port_type>(opts.listen_port < 0 ? 0 : opts.listen_port);
  tcp::acceptor acceptor(io, {opts.listen_port < 0 ? asio::ip::address_v4::loopback()
                                                   : asio::ip::address_v4::any(),
                              port});
  // The listener and what closes it share a strand.
  auto control = asio::make_strand(io);
  asio::co_spawn(control, accept_connections(acceptor, model), asio::detached);

  if (opts.listen_port >= 0) {  // the service only, until a signal
    std::printf("asio_server: listening on port %u\n", acceptor.local_endpoint().port());
    std::fflush(stdout);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code, int) { io.stop(); });
    run_on_threads(io, opts.io_threads);
    const bs::server_stats s = model.stats();
    std::printf("asio_server: %llu items in %llu executions\n",
                static_cast<unsigned long long>(s.items_executed),
                static_cast<unsigned long long>(s.executions));
    return 0;
  }

  // Both: the built-in load against this service. Once it is done, the
  // listener closes, the sessions end with their connections, run() returns.
  load_totals totals;
  const auto start = std::chrono::steady_clock::now();
  start_load(io, control, acceptor.local_endpoint(), opts, totals,
             [&acceptor] { acceptor.close(); });
  run_on_threads(io, opts.io_threads);
  return report_load(totals, opts, std::chrono::steady_clock::now() - start, &model);
}

}  // namespace

int main(int argc, char** argv) try {
  options opts;
  if (!parse_options(argc, argv, opts)) return 2;
  return run(opts);
} catch (const std::exception& e) {
  std::fprintf(stderr, "asio_server: %s\n", e.what());
  return 1;
}
