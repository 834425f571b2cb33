#include "memory_usage.hpp"

#include <batch_serving/call_memory.hpp>

#include <cstdio>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__unix__)
#include <unistd.h>
#endif

namespace bench {

memory_usage read_memory_usage() {
  memory_usage out;
#if defined(__GLIBC__)
  const struct mallinfo2 info = mallinfo2();
  out.heap_bytes = static_cast<std::int64_t>(info.uordblks + info.hblkhd);
#endif
#if defined(__unix__)
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    long long size_pages = 0;
    long long resident_pages = 0;
    if (std::fscanf(f, "%lld %lld", &size_pages, &resident_pages) == 2) {
      out.resident_bytes = resident_pages * static_cast<long long>(sysconf(_SC_PAGESIZE));
    }
    std::fclose(f);
  }
#endif
  return out;
}

void release_free_memory() {
  batch_serving::release_call_memory();  // else queued calls reuse pooled blocks unseen
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace bench
