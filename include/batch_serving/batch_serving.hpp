// Umbrella header: the whole public API.
#pragma once

#include "batch_serving/call_memory.hpp"
#include "batch_serving/call_options.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/event.hpp"
#include "batch_serving/event_stream.hpp"
#include "batch_serving/execution_context.hpp"
#include "batch_serving/future.hpp"
#include "batch_serving/registry.hpp"
#include "batch_serving/result.hpp"
#include "batch_serving/server.hpp"
#include "batch_serving/server_options.hpp"
#include "batch_serving/server_stats.hpp"
#include "batch_serving/serving.hpp"
#include "batch_serving/streaming.hpp"
#include "batch_serving/streaming_options.hpp"
#include "batch_serving/streaming_server.hpp"
