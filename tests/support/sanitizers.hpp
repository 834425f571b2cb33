// Test support: BATCH_SERVING_TEST_SANITIZED is defined when the test is
// built with ThreadSanitizer or AddressSanitizer, by g++ (__SANITIZE_*__)
// or clang (__has_feature; clang 14 defines no __SANITIZE_*__ macro).
// Sanitizers slow every thread several times, and not all alike: tests that
// check how much work shares a round trip or an execution relax there.
#pragma once

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define BATCH_SERVING_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define BATCH_SERVING_TEST_SANITIZED 1
#endif
#endif
