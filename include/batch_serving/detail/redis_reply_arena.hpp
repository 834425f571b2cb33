// hiredis replies built in a few blocks per reply instead of a heap object
// (and a string) per field. An XREADGROUP reply of 64 entries of six fields
// is about 900 objects; hiredis' default functions malloc and free each one,
// and that showed as the top user-space symbols of the worker's reader
// thread. The objects keep hiredis' redisReply layout, so redis_reply_view
// reads them unchanged; only allocation and freeing differ.
#pragma once

struct redisReader;  // hiredis
struct redisReply;   // hiredis

namespace batch_serving::detail {

// Makes `reader` build every later reply in arenas. Call before it reads
// anything. Thread-safe (the functions keep no state).
void use_reply_arenas(redisReader* reader) noexcept;

// Frees a reply `reader` built after use_reply_arenas (never
// freeReplyObject). Accepts nullptr.
void free_arena_reply(redisReply* reply) noexcept;

}  // namespace batch_serving::detail
