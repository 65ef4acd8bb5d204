#pragma once
// Small helpers shared by the lowbit tool's commands.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/core/error.hpp"

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

// Logging for the commands: the library's spdlog logger at info level (warn with
// --quiet), on stderr.
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

// A model file of either container, as inspect and compare see it.
struct ModelTensor {
  std::string name;
  std::vector<int64_t> shape;  // GGUF order for GGUF, the file's own order for safetensors
  std::string type;            // "Q4_K", "F32", "BF16", "I64", ...
  uint64_t bytes = 0;
  int64_t elements() const;
};

class ModelFile {
 public:
  // GGUF (starts with "GGUF"), a safetensors file, or a sharded safetensors index
  // (model.safetensors.index.json): told apart by content, not by name.
  static ModelFile open(const std::filesystem::path& path);
  ModelFile(ModelFile&&) noexcept;
  ModelFile& operator=(ModelFile&&) noexcept;
  ~ModelFile();

  const std::filesystem::path& path() const { return path_; }
  const std::string& container() const { return container_; }  // "gguf" or "safetensors"
  const std::vector<ModelTensor>& tensors() const { return tensors_; }
  const ModelTensor* find(const std::string& name) const;
  // Whether read_f32 can decode the tensor (integer safetensors dtypes cannot).
  bool is_float(const ModelTensor& t) const;
  // The tensor's values as float32 (GGUF block formats dequantized).
  std::vector<float> read_f32(const ModelTensor& t) const;
  // Metadata as JSON text of one object (GGUF values mapped naturally).
  std::string metadata_json() const;
  // Metadata as printable "key = value" lines; long arrays shortened to `max_items`.
  std::vector<std::pair<std::string, std::string>> metadata_text(size_t max_items) const;

 private:
  struct Impl;
  ModelFile() = default;
  std::filesystem::path path_;
  std::string container_;
  std::vector<ModelTensor> tensors_;
  std::unique_ptr<Impl> impl_;
};

// "[4096, 11008]"
std::string shape_string(const std::vector<int64_t>& shape);
// "1.23 MiB"
std::string human_bytes(double bytes);

int run_demo(Args args);
void print_demo_help();
int run_quantize(Args args);
int run_inspect(Args args);
int run_compare(Args args);

}  // namespace lowbit::cli
