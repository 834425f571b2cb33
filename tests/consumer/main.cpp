// A consumer of the installed (or add_subdirectory'd) batch_serving: starts a
// server over a squaring serving and checks a few results. With
// batch_serving::redis (BATCH_SERVING_CONSUMER_REDIS), it also uses the Redis
// transport's codec, client and worker, against no Redis at all: an endpoint
// that cannot exist, which both must report as unavailable.
#include <batch_serving/batch_serving.hpp>
#if BATCH_SERVING_CONSUMER_REDIS
#include <batch_serving/codec.hpp>
#include <batch_serving/redis_client.hpp>
#include <batch_serving/redis_worker.hpp>

#include <chrono>
#include <string>
#endif
#if BATCH_SERVING_CONSUMER_ASIO
#include <asio/use_future.hpp>
#include <batch_serving/asio.hpp>
#endif

#include <cstdio>
#include <span>
#include <thread>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "consumer FAILED: %s\n", what);
    ++failures;
  }
}

#if BATCH_SERVING_CONSUMER_REDIS
template <class Server>
void check_redis_transport(Server& local) {
  namespace bs = batch_serving;
  using namespace std::chrono_literals;
  const bs::result<std::string> bytes = bs::encode_value(std::vector<int>{1, 2, 3});
  check(bytes.ok() &&
            bs::decode_value<std::vector<int>>(*bytes).value() == std::vector<int>{1, 2, 3},
        "codec round trip of std::vector<int>");

  const bs::redis_endpoint nowhere{.unix_socket = "/nonexistent/batch_serving_consumer.sock",
                                   .connect_timeout = 200ms};
  bs::redis_client<int, int> client({.endpoint = nowhere, .serving = "squares"});
  const bs::result<int> r = client.dispatch(3, {.timeout = 2s});
  check(!r.ok() && r.error().code() == bs::errc::unavailable,
        "redis_client without a Redis answers unavailable");
  try {
    bs::redis_worker worker(local, "squares", {.endpoint = nowhere});
    check(false, "redis_worker without a Redis throws");
  } catch (const bs::serving_error& e) {
    check(e.code() == bs::errc::unavailable, "redis_worker without a Redis throws unavailable");
  }
  std::printf("redis: batch_serving::redis linked; client and worker report %s as unavailable\n",
              nowhere.to_string().c_str());
}
#endif

}  // namespace

int main() {
  batch_serving::serving<int, int> squares([](std::span<const int> xs) {
    std::vector<int> out;
    out.reserve(xs.size());
    for (int x : xs) out.push_back(x * x);
    return out;
  });
  batch_serving::server srv(squares, {.batch_size = 4});

  check(srv.dispatch(3).value() == 9, "dispatch(3) == 9");
  check(srv.dispatch_many({1, 2, 5}).value() == std::vector<int>{1, 4, 25},
        "dispatch_many({1, 2, 5}) == {1, 4, 25}");

  std::vector<int> results(8);
  std::vector<std::thread> callers;
  for (int n = 0; n < 8; ++n) {
    callers.emplace_back([&, n] { results[n] = srv.dispatch(n).value(); });
  }
  for (auto& t : callers) t.join();
  for (int n = 0; n < 8; ++n) check(results[n] == n * n, "concurrent dispatch(n) == n * n");

#if BATCH_SERVING_CONSUMER_REDIS
  check_redis_transport(srv);
#endif
#if BATCH_SERVING_CONSUMER_ASIO
  check(batch_serving::async_dispatch(srv, 4, asio::use_future).get().value() == 16,
        "async_dispatch(4, use_future) == 16");
  std::printf("asio: batch_serving/asio.hpp answers through asio::use_future\n");
#endif

  if (failures != 0) return 1;
  std::printf("consumer OK\n");
  return 0;
}
