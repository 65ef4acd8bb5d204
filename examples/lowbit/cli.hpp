#pragma once
// Small argument helpers shared by the lowbit tool's commands.
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::cli {

struct Args {
  std::vector<std::string> items;
  size_t pos = 0;
  bool done() const { return pos >= items.size(); }
  const std::string& next() { return items[pos++]; }
};

// Parses a non-negative integer option value; throws lowbit::Error naming the option.
int64_t parse_int(const std::string& option, const std::string& value, int64_t min, int64_t max);

int run_demo(Args args);
void print_demo_help();

}  // namespace lowbit::cli
