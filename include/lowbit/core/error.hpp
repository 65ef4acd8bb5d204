#pragma once
#include <stdexcept>
#include <string>

namespace lowbit {

// The one exception type at the API surface. Messages name the offending value
// (tensor, shape, offset) so a user can act on them without a debugger.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace lowbit
