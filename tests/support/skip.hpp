#pragma once
// Skipping a test that cannot run here (no CUDA device, a data set not installed) so that it is
// reported as skipped, never as passed.
//
// Under ctest every test case runs as its own process with RAR_TEST_SKIP_CODE set (see
// tests/CMakeLists.txt, which also sets SKIP_RETURN_CODE to the same value): RAR_SKIP prints
// the reason and exits with that code, and ctest counts the test as "Not Run (Skipped)".
// Run directly (the whole binary, no variable set), RAR_SKIP warns and returns from the test
// case, so the other cases still run; Catch then counts it as passed without assertions, and
// the warning says why.

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>

namespace rar {
namespace test {

/// Reports `reason`; exits with the skip code under ctest, otherwise returns (warned).
inline void skip_test(const std::string& reason) {
  if (const char* code = std::getenv("RAR_TEST_SKIP_CODE")) {
    std::cout << "SKIPPED: " << reason << std::endl;
    std::fflush(nullptr);
    std::_Exit(std::atoi(code));
  }
  WARN("SKIPPED: " << reason);
}

}  // namespace test
}  // namespace rar

/// Skips the current test case: `RAR_SKIP("no CUDA device");` (a stream expression is fine).
#define RAR_SKIP(reason)                      \
  do {                                        \
    std::ostringstream rar_skip_reason_;      \
    rar_skip_reason_ << reason;               \
    rar::test::skip_test(rar_skip_reason_.str()); \
    return;                                   \
  } while (false)

/// Skips the current test case unless a CUDA device is present.
#define RAR_REQUIRE_CUDA()                                                      \
  do {                                                                          \
    if (!torch::cuda::is_available()) RAR_SKIP("CUDA is not available");        \
  } while (false)
