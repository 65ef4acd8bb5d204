#pragma once
// Small helpers shared by the GoogleTest suites.
#include <functional>
#include <string>

#include "lowbit/core/error.hpp"

namespace lowbit::test {

// The message of the lowbit::Error that f throws, or "" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace lowbit::test
