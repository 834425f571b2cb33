// The hiredis reply functions of detail/redis_reply_arena.hpp, fed RESP bytes
// directly (no Redis): every reply kind, nesting, replies larger than one
// block, replies that arrive a byte at a time, and a protocol error in the
// middle of a reply (ASan/LSan in CI check that nothing leaks or overruns).
#include "batch_serving/detail/redis_reply_arena.hpp"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "batch_serving/detail/redis_connection.hpp"

namespace {

using batch_serving::detail::redis_reply;
using batch_serving::detail::redis_reply_kind;

struct reader_deleter {
  void operator()(redisReader* r) const noexcept { redisReaderFree(r); }
};
using reader_ptr = std::unique_ptr<redisReader, reader_deleter>;

reader_ptr arena_reader() {
  reader_ptr reader(redisReaderCreate());
  batch_serving::detail::use_reply_arenas(reader.get());
  return reader;
}

// The next complete reply, or nullopt when none is complete yet.
std::optional<redis_reply> next_reply(redisReader* reader) {
  void* raw = nullptr;
  EXPECT_EQ(redisReaderGetReply(reader, &raw), REDIS_OK) << reader->errstr;
  if (raw == nullptr) return std::nullopt;
  return redis_reply(static_cast<redisReply*>(raw));
}

void feed(redisReader* reader, std::string_view bytes) {
  ASSERT_EQ(redisReaderFeed(reader, bytes.data(), bytes.size()), REDIS_OK);
}

TEST(ReplyArenaTest, BuildsEveryKindAndNesting) {
  reader_ptr reader = arena_reader();
  feed(reader.get(),
       "*5\r\n$3\r\nabc\r\n*3\r\n:42\r\n$-1\r\n*0\r\n+OK\r\n-NOGROUP no such key\r\n"
       "$0\r\n\r\n:-7\r\n");
  std::optional<redis_reply> r = next_reply(reader.get());
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(r->is_array());
  ASSERT_EQ(r->size(), 5U);
  EXPECT_EQ((*r)[0].text(), "abc");
  ASSERT_EQ((*r)[1].size(), 3U);
  EXPECT_EQ((*r)[1][0].integer(), 42);
  EXPECT_TRUE((*r)[1][1].is_nil());
  EXPECT_TRUE((*r)[1][2].is_array());
  EXPECT_EQ((*r)[1][2].size(), 0U);
  EXPECT_EQ((*r)[2].kind(), redis_reply_kind::status);
  EXPECT_EQ((*r)[2].text(), "OK");
  EXPECT_EQ((*r)[3].error_code(), "NOGROUP");
  EXPECT_EQ((*r)[4].kind(), redis_reply_kind::string);
  EXPECT_EQ((*r)[4].text(), "");
  std::optional<redis_reply> second = next_reply(reader.get());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->integer(), -7);
  EXPECT_FALSE(next_reply(reader.get()).has_value());
}

// Element i of the large reply: i % 50 bytes 'a', a NUL, 'z', then i.
std::string element_of(int i) {
  std::string element(static_cast<std::size_t>(i % 50), 'a');
  element.push_back('\0');
  element.push_back('z');
  element.append(std::to_string(i));
  return element;
}

TEST(ReplyArenaTest, RepliesLargerThanOneBlockKeepEveryByte) {
  // A 200 KB string (more than a 64 KiB block) and 10,000 elements of
  // growing sizes (many blocks), binary bytes included.
  reader_ptr reader = arena_reader();
  std::string big(200'000, 'x');
  for (std::size_t i = 0; i < big.size(); i += 997) big[i] = static_cast<char>(i % 256);
  std::string wire = "*10001\r\n$" + std::to_string(big.size()) + "\r\n";
  wire.append(big).append("\r\n");
  for (int i = 0; i < 10'000; ++i) {
    const std::string element = element_of(i);
    wire.append("$").append(std::to_string(element.size())).append("\r\n");
    wire.append(element).append("\r\n");
  }
  feed(reader.get(), wire);
  std::optional<redis_reply> r = next_reply(reader.get());
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->size(), 10'001U);
  EXPECT_EQ((*r)[0].text(), big);
  for (int i = 0; i < 10'000; ++i) {
    const std::string element = element_of(i);
    ASSERT_EQ((*r)[static_cast<std::size_t>(i) + 1].text(), element) << i;
  }
}

TEST(ReplyArenaTest, AReplyThatArrivesAByteAtATimeIsTheSame) {
  reader_ptr reader = arena_reader();
  const std::string wire = "*2\r\n*2\r\n$5\r\nhello\r\n:1\r\n*1\r\n*1\r\n$2\r\nhi\r\n";
  std::optional<redis_reply> r;
  for (std::size_t i = 0; i < wire.size(); ++i) {
    ASSERT_FALSE(r.has_value()) << "complete before its last byte";
    feed(reader.get(), wire.substr(i, 1));
    r = next_reply(reader.get());
  }
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ((*r)[0][0].text(), "hello");
  EXPECT_EQ((*r)[0][1].integer(), 1);
  EXPECT_EQ((*r)[1][0][0].text(), "hi");
}

TEST(ReplyArenaTest, AProtocolErrorInTheMiddleFreesWhatWasBuilt) {
  reader_ptr reader = arena_reader();
  feed(reader.get(), "*3\r\n$3\r\nabc\r\n*2\r\n:1\r\n?garbage\r\n");
  void* raw = nullptr;
  EXPECT_EQ(redisReaderGetReply(reader.get(), &raw), REDIS_ERR);
  EXPECT_EQ(raw, nullptr);
  EXPECT_EQ(reader->err, REDIS_ERR_PROTOCOL);
  // The partial reply was freed by the reader (LSan would report it).
}

TEST(ReplyArenaTest, AReaderFreedMidReplyFreesIt) {
  reader_ptr reader = arena_reader();
  feed(reader.get(), "*2\r\n$3\r\nabc\r\n");
  EXPECT_FALSE(next_reply(reader.get()).has_value());
  reader.reset();  // with the first element built
}

TEST(ReplyArenaTest, ARepliesBlocksMayBeFreedOnAnotherThreadAfterItsOwnExited) {
  // Blocks are kept per thread for the next reply; a reply that outlives
  // its thread, or is freed on another, must neither leak nor be lost (LSan
  // and ASan in CI check both).
  std::vector<redis_reply> replies;
  std::string many = "*300\r\n";
  for (int i = 0; i < 300; ++i) many += "$100\r\n" + std::string(100, 'y') + "\r\n";
  std::thread maker([&] {
    reader_ptr reader = arena_reader();
    for (int i = 0; i < 4; ++i) {
      feed(reader.get(), many);
      std::optional<redis_reply> r = next_reply(reader.get());
      ASSERT_TRUE(r.has_value());
      replies.push_back(std::move(*r));
    }
    replies.pop_back();  // freed here: its blocks are kept by this thread
  });
  maker.join();  // and freed when it exits
  ASSERT_EQ(replies.size(), 3U);
  for (const redis_reply& r : replies) {
    ASSERT_EQ(r.size(), 300U);
    EXPECT_EQ(r[299].text(), std::string(100, 'y'));
  }
  replies.clear();  // freed on this thread
}

}  // namespace
