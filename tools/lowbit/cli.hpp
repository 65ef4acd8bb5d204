#pragma once
// Small helpers shared by the lowbit tool's commands.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/io/model_file.hpp"

namespace lowbit::cli {

struct Args {
  std::vector<std::string> items;
  size_t pos = 0;
  bool done() const { return pos >= items.size(); }
  const std::string& next() { return items[pos++]; }
};

// A command line the tool cannot make sense of (exit status 2, not 1).
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& what) : Error(what) {}
};

// Parses an integer option value; throws UsageError naming the option.
int64_t parse_int(const std::string& option, const std::string& value, int64_t min, int64_t max);

// Logging for the commands: the library's log at info level (warn with --quiet),
// on stderr as "[12:34:56] [info] message" lines (the level coloured on a terminal).
// The commands' own messages go through the same log (lowbit::log_message).
void setup_logging(bool quiet);

// A one-line progress bar with ETA on stderr. It draws only when stderr is a
// terminal and --quiet was not given, so pipes and logs stay clean.
class Progress {
 public:
  Progress(std::string label, double total, bool quiet);
  ~Progress();
  void advance(double amount);  // thread-compatible (call from one thread)
  void clear();                 // erases the bar until the next advance() (before printing)
  void finish();                // clears the line for good

 private:
  void draw(bool force);
  std::string label_;
  double total_ = 0, done_ = 0;
  bool enabled_ = false, finished_ = false, drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "1.23 MiB"
std::string human_bytes(double bytes);

int run_demo(Args args);
void print_demo_help();
int run_quantize(Args args);
int run_inspect(Args args);
int run_compare(Args args);
int run_bench(Args args);
int run_eval(Args args);
int run_calibrate(Args args);

}  // namespace lowbit::cli
