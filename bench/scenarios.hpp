// The scenarios: each measures batch_serving and its reference(s) side by side
// and adds its rows to the reporter. They throw std::runtime_error when a call
// returned a wrong answer (the benchmark doubles as a smoke test).
#pragma once

#include "config.hpp"
#include "report.hpp"

namespace bench {

void run_sync(const config& cfg, reporter& out);    // C callers, blocking dispatch
void run_async(const config& cfg, reporter& out);   // one thread, futures
void run_many(const config& cfg, reporter& out);    // 8 callers, dispatch_many of 64
void run_dense(const config& cfg, reporter& out);   // relu(W x + b), Eigen
void run_host(const config& cfg, reporter& out);    // this host's floors, before every run
void run_limit(const config& cfg, reporter& out);   // hand-off floor: condvar, atomic wait
void run_memory(const config& cfg, reporter& out);  // bytes per queued request
void run_coro(const config& cfg, reporter& out);    // C coroutine callers, co_dispatch
#ifdef BATCH_SERVING_BENCH_DISTRIBUTED
void run_distributed(const config& cfg, reporter& out);  // Redis Streams, one process per node
#endif

}  // namespace bench
