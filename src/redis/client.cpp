// redis_client_core: the sender, receiver and timer threads of a redis_client.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "batch_serving/detail/redis_client_core.hpp"
#include "batch_serving/redis_client.hpp"

namespace batch_serving::detail {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int sender_slot = 0;
constexpr int receiver_slot = 1;
constexpr std::size_t reply_read_count = 1024;

// The core whose thread this is (on_own_thread()).
thread_local const redis_client_core* current_core = nullptr;

// Counts the live workers with Redis's own clock: members whose heartbeat
// expiry (ms) is at or after Redis's TIME.
constexpr std::string_view live_workers_script =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "return redis.call('ZCOUNT', KEYS[1], now, '+inf')";

std::int64_t steady_ns(clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::string generated_client_id() {
  static std::atomic<std::uint64_t> instances{0};
  std::array<char, 256> host{};
  std::string id;
  if (::gethostname(host.data(), host.size() - 1) == 0) {
    for (const char c : std::string_view(host.data())) {
      if (id.size() >= 24) break;
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-';
      id.push_back(ok ? c : '_');
    }
  }
  if (id.empty()) id = "host";
  std::random_device entropy;
  const std::uint64_t random = (std::uint64_t{entropy()} << 32U) ^ entropy();
  std::array<char, 17> hex{};
  for (std::size_t i = 0; i < 16; ++i) {
    hex[i] = "0123456789abcdef"[(random >> (4 * (15 - i))) & 0xfU];
  }
  id += "-" + std::to_string(::getpid()) + "-" + std::string(hex.data(), 16) + "-" +
        std::to_string(instances.fetch_add(1, std::memory_order_relaxed));
  return id;
}

void check_range(std::string_view field, milliseconds value, milliseconds low, milliseconds high) {
  if (value < low || value > high) {
    throw serving_error(errc::invalid_argument,
                        "redis_client_options." + std::string(field) + " must be in " +
                            std::to_string(low.count()) + ".." + std::to_string(high.count()) +
                            " ms (got " + std::to_string(value.count()) + " ms)");
  }
}

wire::serving_keys keys_or_throw(std::string_view serving) {
  result<wire::serving_keys> keys = wire::serving_keys::make(serving);
  if (!keys.ok()) {
    throw serving_error(errc::invalid_argument,
                        "redis_client_options.serving: " + keys.error().message());
  }
  return std::move(*keys);
}

// The id just after `id` ("MS-SEQ" -> "MS-(SEQ+1)"): XTRIM MINID of it
// removes `id` and everything before.
std::optional<std::string> next_entry_id(std::string_view id) {
  const std::size_t dash = id.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::uint64_t seq = 0;
  for (const char c : id.substr(dash + 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    seq = seq * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return std::string(id.substr(0, dash + 1)) + std::to_string(seq + 1);
}

}  // namespace

redis_client_core::redis_client_core(const redis_client_options& options)
    : endpoint_(options.endpoint),
      keys_(keys_or_throw(options.serving)),
      client_id_(options.client_id.empty() ? generated_client_id() : options.client_id),
      limits_(options.limits),
      max_outstanding_(options.max_outstanding),
      max_pipeline_(options.max_pipeline),
      reply_block_(options.reply_block),
      worker_check_interval_(options.worker_check_interval),
      reply_stream_ttl_(options.reply_stream_ttl),
      default_timeout_(options.default_timeout),
      backoff_options_(options.reconnect) {
  if (std::optional<error> bad = endpoint_.validate()) {
    throw serving_error(errc::invalid_argument, "redis_client_options.endpoint: " + bad->message());
  }
  if (std::optional<error> bad = wire::check_client_id(client_id_)) {
    throw serving_error(errc::invalid_argument,
                        "redis_client_options.client_id: " + bad->message());
  }
  if (std::optional<error> bad = wire::check_limits(limits_)) {
    throw serving_error(errc::invalid_argument, "redis_client_options.limits: " + bad->message());
  }
  if (max_outstanding_ == 0) {
    throw serving_error(errc::invalid_argument,
                        "redis_client_options.max_outstanding must be at least 1 (got 0)");
  }
  if (max_pipeline_ == 0) {
    throw serving_error(errc::invalid_argument,
                        "redis_client_options.max_pipeline must be at least 1 (got 0)");
  }
  if (default_timeout_ && default_timeout_->count() < 0) {
    throw serving_error(errc::invalid_argument,
                        "redis_client_options.default_timeout must not be negative (got " +
                            std::to_string(default_timeout_->count()) + " us)");
  }
  check_range("reply_block", reply_block_, milliseconds(1), milliseconds(10'000));
  check_range("worker_check_interval", worker_check_interval_, milliseconds(1),
              milliseconds(60'000));
  check_range("reply_stream_ttl", reply_stream_ttl_, milliseconds(3'000),
              std::chrono::hours(24 * 365));
  reconnect_backoff check_backoff(backoff_options_);  // throws naming the bad field
  reply_stream_ = keys_.reply_stream(client_id_).value();

  for (int slot : {sender_slot, receiver_slot}) {
    result<redis_connection> conn = redis_connection::connect(endpoint_);
    if (!conn.ok()) {
      if (conn.error().code() != errc::unavailable) {
        throw serving_error(conn.error().code(), "redis_client: " + conn.error().message());
      }
      first_failure_ = conn.error();
      break;
    }
    (slot == sender_slot ? first_sender_conn_ : first_receiver_conn_) =
        std::make_unique<redis_connection>(std::move(*conn));
  }
  if (first_failure_) {
    first_sender_conn_.reset();
    first_receiver_conn_.reset();
    lock_guard<mutex> lock(mu_);
    down_reason_ = first_failure_->message();
  } else {
    sender_up_.store(true, std::memory_order_relaxed);
    receiver_up_.store(true, std::memory_order_relaxed);
  }
  timer_ = std::jthread([this](const std::stop_token& stop) { timer_loop(stop); });
  receiver_ = std::jthread([this](const std::stop_token& stop) { receiver_loop(stop); });
  sender_ = std::jthread([this](const std::stop_token& stop) { sender_loop(stop); });
}

redis_client_core::~redis_client_core() { stop(); }

bool redis_client_core::on_own_thread() const noexcept { return current_core == this; }

redis_client_stats redis_client_core::stats() const noexcept {
  constexpr auto relaxed = std::memory_order_relaxed;
  return {.calls_sent = calls_sent_.load(relaxed),
          .round_trips = round_trips_.load(relaxed),
          .answers_delivered = answers_delivered_.load(relaxed),
          .duplicates_dropped = duplicates_.load(relaxed),
          .foreign_dropped = foreign_.load(relaxed),
          .malformed_dropped = malformed_.load(relaxed),
          .timeouts = timeouts_.load(relaxed),
          .reconnects = reconnects_.load(relaxed),
          .refused = refused_.load(relaxed)};
}

bool redis_client_core::live_workers_known_absent() const noexcept {
  const std::int64_t checked = live_checked_ns_.load(std::memory_order_acquire);
  if (checked == 0) return false;
  const auto age = std::chrono::nanoseconds(steady_ns(clock::now()) - checked);
  return age < worker_check_interval_ && live_workers_.load(std::memory_order_relaxed) == 0;
}

std::uint64_t redis_client_core::submit(std::shared_ptr<remote_call> call, wire::call_form form,
                                        std::string items, std::size_t item_count,
                                        clock::time_point deadline) {
  auto refuse = [&](errc code, std::string message) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    call->complete(error(code, std::move(message)));
    return std::uint64_t{0};
  };
  if (live_workers_known_absent()) {
    return refuse(errc::no_serving, "no live worker serves '" + keys_.serving() +
                                        "' (no heartbeat in " + keys_.workers_set() + ")");
  }
  if (!sender_up_.load(std::memory_order_relaxed) ||
      !receiver_up_.load(std::memory_order_relaxed)) {
    std::string why;
    {
      lock_guard<mutex> lock(mu_);
      why = down_reason_;
    }
    return refuse(errc::unavailable,
                  "redis_client: Redis is unreachable, the call was not sent (" + why + ")");
  }
  std::uint64_t sequence = 0;
  std::size_t outstanding = 0;
  bool stopping = false;
  {
    lock_guard<mutex> lock(mu_);
    stopping = stopping_;
    outstanding = outstanding_.size();
    if (!stopping && outstanding < max_outstanding_) sequence = next_sequence_++;
  }
  // Answered outside the lock: complete() may run a user callback.
  if (stopping) return refuse(errc::shutting_down, "redis_client: stopped");
  if (sequence == 0) {
    return refuse(errc::overloaded, "redis_client: " + std::to_string(outstanding) +
                                        " calls outstanding, max_outstanding is " +
                                        std::to_string(max_outstanding_));
  }
  // Encode outside the lock, with the longest budget so the size check holds
  // whatever budget the sender writes.
  wire::request_entry request;
  request.call_id = wire::make_call_id(client_id_, sequence);
  request.reply_stream = reply_stream_;
  request.form = form;
  if (deadline != clock::time_point::max()) request.budget_us = wire::max_budget_us;
  request.items = std::move(items);
  request.item_count = item_count;
  request.pack_bytes = limits_.max_entry_bytes;  // answers may come packed
  result<std::vector<wire::field>> fields =
      wire::encode_request(keys_, std::move(request), limits_);
  if (!fields.ok()) return refuse(errc::invalid_argument, fields.error().message());
  queued_send send{.sequence = sequence,
                   .fields = std::move(*fields),
                   .budget_field = 0,
                   .deadline = deadline};
  send.budget_field = send.fields.size();
  for (std::size_t i = 0; i < send.fields.size(); ++i) {
    if (send.fields[i].first == "budget_us") send.budget_field = i;
  }
  bool wake_sender = false;
  bool wake_timer = false;
  {
    unique_lock lock(mu_);
    if (stopping_) {
      lock.unlock();
      return refuse(errc::shutting_down, "redis_client: stopped");
    }
    // Under mu_: a thread that goes down sets its flag under mu_ and then
    // sweeps the queue, so a call queued here is either swept or refused.
    if (!sender_up_.load(std::memory_order_relaxed) ||
        !receiver_up_.load(std::memory_order_relaxed)) {
      std::string why = down_reason_;
      lock.unlock();
      return refuse(errc::unavailable,
                    "redis_client: Redis is unreachable, the call was not sent (" + why + ")");
    }
    const bool stream = form == wire::call_form::stream_one || form == wire::call_form::stream_many;
    outstanding_.emplace(sequence,
                         outstanding_call{.call = std::move(call),
                                          .sent = false,
                                          .item_count = item_count,
                                          .stream = stream ? std::make_unique<stream_progress>()
                                                           : nullptr});
    wake_sender = queue_.empty();
    queue_.push_back(std::move(send));
    if (deadline != clock::time_point::max()) {
      wake_timer = timers_.empty() || deadline < timers_.front().deadline;
      timers_.push_back({deadline, sequence});
      std::push_heap(timers_.begin(), timers_.end(), std::greater<>());
    }
  }
  if (wake_sender) send_wake_.notify_one();
  if (wake_timer) timer_wake_.notify_one();
  return sequence;
}

bool redis_client_core::finish(std::uint64_t sequence, result<wire::answer_entry> answer) {
  std::shared_ptr<remote_call> call;
  {
    lock_guard<mutex> lock(mu_);
    auto it = outstanding_.find(sequence);
    if (it == outstanding_.end()) return false;
    call = std::move(it->second.call);
    outstanding_.erase(it);
  }
  call->complete(std::move(answer));
  return true;
}

redis_client_core::delivery redis_client_core::deliver(std::uint64_t sequence,
                                                       wire::answer_entry answer) {
  std::shared_ptr<remote_call> call;
  std::vector<wire::answer_entry> ready;
  bool ends = true;
  std::optional<error> lost;
  {
    lock_guard<mutex> lock(mu_);
    auto it = outstanding_.find(sequence);
    if (it == outstanding_.end()) return delivery::not_outstanding;
    if (it->second.stream) {
      ends = false;
      const delivery ordered = order_stream_event(it->second, std::move(answer), ready, ends, lost);
      if (ordered != delivery::delivered) return ordered;
      if (ends) {
        call = std::move(it->second.call);
        outstanding_.erase(it);
      } else {
        call = it->second.call;
      }
    } else {
      // A plain call takes a results or error answer, never a stream event.
      if (answer.seq.has_value() ||
          (answer.kind != wire::answer_kind::results && answer.kind != wire::answer_kind::error)) {
        return delivery::malformed;
      }
      if (answer.kind == wire::answer_kind::results &&
          answer.result_count != it->second.item_count) {
        return delivery::wrong_count;
      }
      call = std::move(it->second.call);
      outstanding_.erase(it);
      ready.push_back(std::move(answer));
    }
  }
  if (lost) {
    call->complete(std::move(*lost));
    return delivery::delivered;
  }
  for (std::size_t i = 0; i < ready.size(); ++i) {
    if (ends && i + 1 == ready.size()) {
      call->complete(std::move(ready[i]));
    } else {
      call->stream_event(std::move(ready[i]));
    }
  }
  answers_delivered_.fetch_add(ready.size() - 1, std::memory_order_relaxed);
  return delivery::delivered;
}

namespace {

// Events buffered ahead of their turn, per stream; more are dropped (a
// stream's writer writes them in order, so only a misbehaving one gets here).
constexpr std::size_t max_early_events = 1024;

bool final_event(const wire::answer_entry& e) noexcept {
  return e.kind == wire::answer_kind::end || e.kind == wire::answer_kind::error;
}

}  // namespace

redis_client_core::delivery redis_client_core::order_stream_event(
    outstanding_call& entry, wire::answer_entry answer, std::vector<wire::answer_entry>& ready,
    bool& ends, std::optional<error>& lost) {
  stream_progress& p = *entry.stream;
  if (!answer.seq) {
    // An error without seq: the worker could not read the request (or the
    // call was refused before it started); it ends the stream.
    if (answer.kind != wire::answer_kind::error) return delivery::malformed;
    ready.push_back(std::move(answer));
    ends = true;
    return delivery::delivered;
  }
  if (answer.kind == wire::answer_kind::results) return delivery::malformed;
  if (!p.attempt) {
    p.attempt = answer.attempt;
  } else if (answer.attempt != *p.attempt) {
    if (std::find(p.replaced.begin(), p.replaced.end(), answer.attempt) != p.replaced.end()) {
      return delivery::duplicate;  // an attempt given up already
    }
    if (p.next_seq > 0) {
      lost = error(errc::unavailable,
                   "redis_client: the worker running the stream was lost after " +
                       std::to_string(p.next_seq) +
                       " events and another worker ran the call again (the call may have run "
                       "twice; its events would not continue the ones delivered)");
      ends = true;
      return delivery::delivered;
    }
    // Nothing delivered yet: follow the new attempt from its start.
    if (p.replaced.size() < 16) p.replaced.push_back(std::move(*p.attempt));
    p.attempt = answer.attempt;
    p.early.clear();
  }
  const std::uint64_t seq = *answer.seq;
  if (seq < p.next_seq) return delivery::duplicate;
  if (seq > p.next_seq) {
    if (p.early.contains(seq)) return delivery::duplicate;
    if (p.early.size() >= max_early_events) return delivery::malformed;
    p.early.emplace(seq, std::move(answer));
    return delivery::buffered;
  }
  ready.push_back(std::move(answer));
  ++p.next_seq;
  while (!final_event(ready.back())) {
    auto next = p.early.find(p.next_seq);
    if (next == p.early.end()) break;
    ready.push_back(std::move(next->second));
    p.early.erase(next);
    ++p.next_seq;
  }
  ends = final_event(ready.back());
  return delivery::delivered;
}

bool redis_client_core::cancel(std::uint64_t sequence) {
  return finish(sequence,
                error(errc::cancelled,
                      "the call was cancelled (a worker may still run it; its answer is dropped)"));
}

void redis_client_core::fail_all(const error& e, bool only_sent) {
  std::vector<std::shared_ptr<remote_call>> failed;
  {
    lock_guard<mutex> lock(mu_);
    for (auto it = outstanding_.begin(); it != outstanding_.end();) {
      if (!only_sent || it->second.sent) {
        failed.push_back(std::move(it->second.call));
        it = outstanding_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& call : failed) call->complete(e);
}

void redis_client_core::stop() {
  {
    lock_guard<mutex> lock(mu_);
    stopping_ = true;
  }
  send_wake_.notify_all();
  timer_wake_.notify_all();
  const error stopped(errc::shutting_down,
                      "redis_client: stopped before the call was answered (a worker may still run "
                      "it)");
  fail_all(stopped, false);
  if (on_own_thread()) {  // a callback: the destructor joins
    timer_.request_stop();
    receiver_.request_stop();
    sender_.request_stop();
    return;
  }
  if (joined_.exchange(true)) return;
  timer_.request_stop();
  receiver_.request_stop();
  sender_.request_stop();
  {
    lock_guard<mutex> lock(conn_mu_);
    conn_stopping_ = true;
    for (redis_connection* conn : live_conn_) {
      if (conn != nullptr) conn->interrupt();
    }
  }
  send_wake_.notify_all();
  timer_wake_.notify_all();
  if (timer_.joinable()) timer_.join();
  if (receiver_.joinable()) receiver_.join();
  if (sender_.joinable()) sender_.join();
  fail_all(stopped, false);
}

void redis_client_core::install(int slot, redis_connection* conn) {
  lock_guard<mutex> lock(conn_mu_);
  live_conn_[slot] = conn;
  if (conn != nullptr && conn_stopping_) conn->interrupt();
}

std::unique_ptr<redis_connection> redis_client_core::reconnect(const std::stop_token& stop,
                                                               reconnect_backoff& backoff, int slot,
                                                               bool first_attempt_now) {
  bool wait_first = !first_attempt_now;
  while (!stop.stop_requested()) {
    if (wait_first && !backoff.wait(stop)) return nullptr;
    wait_first = true;
    result<redis_connection> conn = redis_connection::connect(endpoint_);
    if (conn.ok()) {
      backoff.reset();
      reconnects_.fetch_add(1, std::memory_order_relaxed);
      auto owned = std::make_unique<redis_connection>(std::move(*conn));
      install(slot, owned.get());
      return owned;
    }
    lock_guard<mutex> lock(mu_);
    down_reason_ = conn.error().message();
  }
  return nullptr;
}

// ------------------------------------------------------------------ timer

void redis_client_core::timer_loop(const std::stop_token& stop) {
  current_core = this;
  unique_lock lock(mu_);
  while (!stop.stop_requested() && !stopping_) {
    if (timers_.empty()) {
      timer_wake_.wait(lock.native());
      continue;
    }
    const clock::time_point now = clock::now();
    if (timers_.front().deadline > now) {
      // A copy: wait_until reads it after waking, when a submit may have
      // grown the heap (and moved its elements) meanwhile.
      const clock::time_point next = timers_.front().deadline;
      timer_wake_.wait_until(lock.native(), next);
      continue;
    }
    std::vector<std::shared_ptr<remote_call>> expired;
    while (!timers_.empty() && timers_.front().deadline <= now) {
      std::pop_heap(timers_.begin(), timers_.end(), std::greater<>());
      const std::uint64_t sequence = timers_.back().sequence;
      timers_.pop_back();
      auto it = outstanding_.find(sequence);
      if (it == outstanding_.end()) continue;
      expired.push_back(std::move(it->second.call));
      outstanding_.erase(it);
    }
    // Entries of calls answered early stay until their deadline; drop them
    // once they are most of the heap, so memory follows the calls in flight.
    if (timers_.size() > 1024 && timers_.size() > 4 * outstanding_.size()) {
      std::vector<timer_entry> live;
      for (const timer_entry& e : timers_) {
        if (outstanding_.contains(e.sequence)) live.push_back(e);
      }
      timers_.swap(live);
      std::make_heap(timers_.begin(), timers_.end(), std::greater<>());
    }
    lock.unlock();
    timeouts_.fetch_add(expired.size(), std::memory_order_relaxed);
    for (auto& call : expired) {
      call->complete(error(errc::timeout,
                           "redis_client: no answer by the call's deadline (a worker may still run "
                           "it; a late answer is dropped)"));
    }
    expired.clear();
    lock.lock();
  }
}

// ------------------------------------------------------------------ sender

bool redis_client_core::refresh_live_workers(redis_connection& conn) {
  result<redis_reply> count = conn.command({"EVAL", live_workers_script, "1", keys_.workers_set()});
  if (!count.ok()) return false;
  // An error reply (scripting refused): unknown, calls are sent.
  live_workers_.store(count->kind() == redis_reply_kind::integer ? count->integer() : -1,
                      std::memory_order_relaxed);
  live_checked_ns_.store(steady_ns(clock::now()), std::memory_order_release);
  return true;
}

void redis_client_core::answer_sent_calls_no_worker() {
  // Two counts of 0 at least worker_check_interval apart: an answer a worker
  // wrote just before it left has been read by then.
  if (live_workers_.load(std::memory_order_relaxed) != 0) {
    first_seen_no_worker_ns_ = 0;
    return;
  }
  const std::int64_t now = steady_ns(clock::now());
  if (first_seen_no_worker_ns_ == 0) {
    first_seen_no_worker_ns_ = now;
    return;
  }
  if (std::chrono::nanoseconds(now - first_seen_no_worker_ns_) < worker_check_interval_) return;
  first_seen_no_worker_ns_ = 0;
  fail_all(error(errc::no_serving,
                 "no live worker serves '" + keys_.serving() + "' any more (no heartbeat in " +
                     keys_.workers_set() +
                     " while the call waited); a worker that comes back may still run it"),
           true);
}

void redis_client_core::send_batch(redis_connection& conn, std::vector<queued_send>& batch) {
  const std::int64_t checked = live_checked_ns_.load(std::memory_order_acquire);
  if (checked == 0 ||
      std::chrono::nanoseconds(steady_ns(clock::now()) - checked) >= worker_check_interval_) {
    if (!refresh_live_workers(conn)) return;  // broken: the caller fails the batch
  }
  answer_sent_calls_no_worker();
  if (live_workers_.load(std::memory_order_relaxed) == 0) {
    for (queued_send& send : batch) {
      if (finish(send.sequence,
                 error(errc::no_serving, "no live worker serves '" + keys_.serving() +
                                             "' (no heartbeat in " + keys_.workers_set() + ")"))) {
        refused_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    batch.clear();
    return;
  }
  std::vector<std::string_view> argv;
  std::vector<std::uint64_t> written;
  written.reserve(batch.size());
  const clock::time_point now = clock::now();
  std::vector<std::shared_ptr<remote_call>> unreadable;
  {
    // Skip calls answered while queued (timed out, cancelled); mark the rest
    // sent, unless the reply connection is down (see receiver_loop): then
    // they are answered unavailable, not sent.
    lock_guard<mutex> lock(mu_);
    const bool replies_readable = receiver_up_.load(std::memory_order_relaxed);
    for (queued_send& send : batch) {
      auto it = outstanding_.find(send.sequence);
      if (it == outstanding_.end() || !replies_readable) {
        if (it != outstanding_.end()) {
          unreadable.push_back(std::move(it->second.call));
          outstanding_.erase(it);
        }
        send.sequence = 0;
        continue;
      }
      it->second.sent = true;
    }
  }
  for (auto& call : unreadable) {
    call->complete(error(errc::unavailable,
                         "redis_client: the reply stream cannot be read (Redis is unreachable), "
                         "the call was not sent"));
  }
  for (queued_send& send : batch) {
    if (send.sequence == 0) continue;
    if (send.budget_field < send.fields.size()) {
      const std::uint64_t budget = wire::budget_until(send.deadline, now);
      if (budget == 0) continue;  // expired: the timer answers it
      send.fields[send.budget_field].second = std::to_string(budget);
    }
    argv.clear();
    argv.reserve(3 + 2 * send.fields.size());
    argv.emplace_back("XADD");
    argv.emplace_back(keys_.request_stream());
    argv.emplace_back("*");
    for (const wire::field& f : send.fields) {
      argv.emplace_back(f.first);
      argv.emplace_back(f.second);
    }
    conn.append(argv);
    written.push_back(send.sequence);
  }
  if (written.empty()) return;
  result<std::vector<redis_reply>> replies = conn.read_replies();
  round_trips_.fetch_add(1, std::memory_order_relaxed);
  if (!replies.ok()) {
    for (std::uint64_t sequence : written) {
      finish(sequence, error(errc::unavailable,
                             "redis_client: the connection to Redis broke while the call was "
                             "being sent; it may or may not have run (" +
                                 replies.error().message() + ")"));
    }
    return;
  }
  for (std::size_t i = 0; i < written.size(); ++i) {
    const redis_reply& reply = (*replies)[i];
    if (reply.is_error()) {
      finish(written[i],
             error(errc::unavailable, "redis_client: Redis refused the request entry (" +
                                          std::string(reply.text()) + ")"));
    } else {
      calls_sent_.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void redis_client_core::sender_loop(const std::stop_token& stop) {
  current_core = this;
  reconnect_backoff backoff(backoff_options_);
  std::unique_ptr<redis_connection> conn = std::move(first_sender_conn_);
  install(sender_slot, conn.get());
  std::vector<queued_send> batch;
  while (!stop.stop_requested()) {
    if (!conn || conn->broken()) {
      install(sender_slot, nullptr);
      // Down, and fail what is queued: nothing can be sent now. One lock:
      // submit() queues nothing once the flag is down (see there).
      {
        lock_guard<mutex> lock(mu_);
        sender_up_.store(false, std::memory_order_relaxed);
        if (conn) down_reason_ = conn->failure() ? conn->failure()->message() : "connection lost";
        batch.swap(queue_);
      }
      conn.reset();
      for (queued_send& send : batch) {
        std::string why;
        {
          lock_guard<mutex> lock(mu_);
          why = down_reason_;
        }
        finish(send.sequence,
               error(errc::unavailable,
                     "redis_client: Redis is unreachable, the call was not sent (" + why + ")"));
      }
      batch.clear();
      conn = reconnect(stop, backoff, sender_slot, false);
      if (!conn) break;
      {
        lock_guard<mutex> lock(mu_);
        sender_up_.store(true, std::memory_order_relaxed);
      }
      continue;
    }
    bool check_workers = false;
    {
      unique_lock lock(mu_);
      while (queue_.empty() && !stopping_ && !stop.stop_requested()) {
        // Calls sent and waiting: wake every worker_check_interval to see
        // that their serving still has a live worker (see
        // answer_sent_calls_no_worker); otherwise sleep until a call comes.
        const bool waiting = std::any_of(outstanding_.begin(), outstanding_.end(),
                                         [](const auto& entry) { return entry.second.sent; });
        if (!waiting) {
          send_wake_.wait(lock.native());
        } else if (send_wake_.wait_for(lock.native(), worker_check_interval_) ==
                       std::cv_status::timeout &&
                   queue_.empty()) {
          check_workers = true;
          break;
        }
      }
      if (stopping_ || stop.stop_requested()) break;
    }
    if (check_workers) {
      if (refresh_live_workers(*conn)) answer_sent_calls_no_worker();
      continue;  // a broken connection is handled at the top
    }
    {
      unique_lock lock(mu_);
      if (queue_.size() <= max_pipeline_) {
        batch.swap(queue_);
      } else {
        batch.assign(std::make_move_iterator(queue_.begin()),
                     std::make_move_iterator(queue_.begin() +
                                             static_cast<std::ptrdiff_t>(max_pipeline_)));
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(max_pipeline_));
      }
    }
    if (!receiver_up_.load(std::memory_order_relaxed)) {
      for (queued_send& send : batch) {
        finish(send.sequence, error(errc::unavailable,
                                    "redis_client: the reply stream cannot be read (Redis is "
                                    "unreachable), the call was not sent"));
      }
      batch.clear();
      continue;
    }
    send_batch(*conn, batch);
    if (conn->broken()) {
      for (queued_send& send : batch) {
        finish(send.sequence, error(errc::unavailable,
                                    "redis_client: the connection to Redis broke before the call "
                                    "was sent; it may or may not have run"));
      }
    }
    batch.clear();
  }
  install(sender_slot, nullptr);
}

// ------------------------------------------------------------------ receiver

void redis_client_core::process_entries(const redis_reply_view& streams) {
  // [[key, [[id, [f, v, ...]], ...]], ...]
  std::vector<wire::field_view> fields;
  for (const redis_reply_view stream : streams) {
    if (!stream.is_array() || stream.size() < 2) continue;
    for (const redis_reply_view entry : stream[1]) {
      if (!entry.is_array() || entry.size() < 2) continue;
      const redis_reply_view pairs = entry[1];
      fields.clear();
      bool shaped = pairs.is_array() && pairs.size() % 2 == 0;
      for (std::size_t i = 0; shaped && i + 1 < pairs.size(); i += 2) {
        fields.emplace_back(pairs[i].text(), pairs[i + 1].text());
      }
      if (!shaped) {
        malformed_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      for (result<wire::answer_entry>& answer : wire::parse_answers(fields, limits_)) {
        take_answer(std::move(answer));
      }
    }
  }
}

void redis_client_core::take_answer(result<wire::answer_entry> answer) {
  if (!answer.ok()) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::optional<wire::call_id_parts> id = wire::parse_call_id(answer->call_id);
  if (!id || id->client_id != client_id_) {  // another client's
    foreign_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::uint64_t sequence = id->sequence;
  bool issued = false;
  {
    lock_guard<mutex> lock(mu_);
    issued = sequence != 0 && sequence < next_sequence_;
  }
  if (!issued) {
    foreign_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  switch (deliver(sequence, std::move(*answer))) {
    case delivery::delivered: answers_delivered_.fetch_add(1, std::memory_order_relaxed); break;
    case delivery::not_outstanding: duplicates_.fetch_add(1, std::memory_order_relaxed); break;
    // Not an answer to that call: a correct one may still come (another
    // worker after a takeover), else its deadline answers it.
    case delivery::wrong_count:
    case delivery::malformed: malformed_.fetch_add(1, std::memory_order_relaxed); break;
    case delivery::duplicate: duplicates_.fetch_add(1, std::memory_order_relaxed); break;
    case delivery::buffered: break;  // counted when delivered
  }
}

void redis_client_core::receiver_loop(const std::stop_token& stop) {
  current_core = this;
  reconnect_backoff backoff(backoff_options_);
  std::unique_ptr<redis_connection> conn = std::move(first_receiver_conn_);
  install(receiver_slot, conn.get());
  std::string last_id = "0-0";
  std::optional<std::string> trim_below;  // XTRIM MINID this: what was read
  clock::time_point expire_due{};         // when to refresh the PEXPIRE
  const std::string block_ms = std::to_string(reply_block_.count());
  const std::string ttl_ms = std::to_string(reply_stream_ttl_.count());
  const std::string count = std::to_string(reply_read_count);
  while (!stop.stop_requested()) {
    if (!conn || conn->broken()) {
      std::string why = conn && conn->failure() ? conn->failure()->message() : "not connected";
      {
        // Under mu_, before the sweep below: the sender marks a call sent
        // only while this flag is up (send_batch), so every call sent before
        // the reply connection broke is swept, and none is sent after.
        lock_guard<mutex> lock(mu_);
        receiver_up_.store(false, std::memory_order_relaxed);
        if (conn) down_reason_ = why;
      }
      install(receiver_slot, nullptr);
      const bool was_connected = conn != nullptr;
      conn.reset();
      if (was_connected) {
        fail_all(error(errc::unavailable,
                       "redis_client: the connection to Redis broke while the call was in "
                       "flight; it may or may not have run (" +
                           why + ")"),
                 true);
      }
      conn = reconnect(stop, backoff, receiver_slot, false);
      if (!conn) break;
      expire_due = {};
      {
        lock_guard<mutex> lock(mu_);
        receiver_up_.store(true, std::memory_order_relaxed);
      }
      continue;
    }
    // One round trip: trim what was read, refresh the expiry when due, read on.
    std::size_t replies_before_read = 0;
    if (trim_below) {
      conn->append({"XTRIM", reply_stream_, "MINID", *trim_below});
      ++replies_before_read;
    }
    const clock::time_point now = clock::now();
    std::optional<std::size_t> expire_reply;
    if (now >= expire_due) {
      conn->append({"PEXPIRE", reply_stream_, ttl_ms});
      expire_reply = replies_before_read++;
      expire_due = now + reply_stream_ttl_ / 3;
    }
    conn->append({"XREAD", "COUNT", count, "BLOCK", block_ms, "STREAMS", reply_stream_, last_id});
    result<std::vector<redis_reply>> replies = conn->read_replies(reply_block_);
    if (!replies.ok()) continue;  // broken: handled at the top
    trim_below.reset();
    // 0: no stream yet (no worker answered so far): try again next round.
    if (expire_reply && (*replies)[*expire_reply].integer() == 0) expire_due = {};
    const redis_reply& read = replies->back();
    if (read.is_error() || !read.is_array()) continue;  // nil: nothing new
    // The last entry id read, for the next XREAD and the trim.
    for (const redis_reply_view stream : read) {
      if (!stream.is_array() || stream.size() < 2 || !stream[1].is_array()) continue;
      const redis_reply_view entries = stream[1];
      if (entries.size() == 0) continue;
      const redis_reply_view last = entries[entries.size() - 1];
      if (last.is_array() && last.size() >= 1) last_id = std::string(last[0].text());
    }
    trim_below = next_entry_id(last_id);
    process_entries(read);
  }
  install(receiver_slot, nullptr);
}

}  // namespace batch_serving::detail
