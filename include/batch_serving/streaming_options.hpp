// What makes a serving streaming: the hooks its batch function may emit
// (see streaming.hpp).
//
//   auto indexer = serving.streaming({.hooks = {"progress"}});
#pragma once

#include <string>
#include <vector>

namespace batch_serving {

struct streaming_options {
  // The hook names the batch function may emit (ctx.emit(name, payload)).
  std::vector<std::string> hooks{};
};

}  // namespace batch_serving
