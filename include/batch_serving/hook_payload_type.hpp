// hook_payload_type<P>: names the type of a streaming serving's hook entries
// (the P of ctx.emit(name, std::vector<P>)) where they must travel between
// processes, since a serving declares its hooks by name only. A redis_worker
// attached with it encodes every hook's entries with codec<P>; a
// redis_client reads them with dispatch_stream<P> and event::payload<P>().
//
//   batch_serving::redis_worker worker(local, "indexer", {.endpoint = redis},
//                                      batch_serving::hook_payload_type<int>{});
//   for (auto& ev : client.dispatch_many_stream<int>(chunks)) { ev.payload<int>(); }
//
// All hooks of one serving carry the same P over Redis.
#pragma once

namespace batch_serving {

template <class P>
struct hook_payload_type {
  using type = P;
};

}  // namespace batch_serving
