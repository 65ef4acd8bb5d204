#pragma once
// Calibration statistics from running a model on a text: llama.cpp's importance
// matrix (sum of x^2 per input column of every linear weight, and the token count)
// and, optionally, each linear layer's GPTQ Hessian. Chunks are llama-imatrix's:
// windows of ctx tokens of the tokenized text, each from an empty cache, BOS first
// where the model adds one, every position collected.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/gptq/hessian.hpp"
#include "lowbit/model/llama.hpp"

namespace lowbit {

struct CalibrationOptions {
  int64_t ctx = 512;
  int64_t chunks = 0;      // 0 = every whole window of the text
  bool hessians = false;   // also accumulate x x^T per linear weight
  std::string dataset;     // recorded as imatrix.datasets
  std::function<void(int64_t, int64_t)> progress;  // (windows done, windows in all)
};

struct Calibration {
  std::vector<std::string> weights;              // linear weights seen, in evaluation order
  std::map<std::string, std::vector<double>> in_sum2;  // per weight: sum over tokens of x^2, per column
  std::map<std::string, int64_t> counts;               // per weight: tokens seen
  // Per weight (present with options.hessians): q/k/v share one accumulator, gate/up
  // another, since each group multiplies the same input.
  std::map<std::string, std::shared_ptr<HessianAccumulator>> hessians;
  int64_t chunks = 0, chunk_size = 0;
  std::string dataset;
};

// Runs `model` over the windows of `text`. The output matrix is not collected (as
// llama-imatrix without --process-output). Throws Error for a text shorter than one
// window.
Calibration calibrate(const LlamaModel& model, std::string_view text, const CalibrationOptions& options);

// Writes llama.cpp's GGUF imatrix format (general.type "imatrix", imatrix.datasets,
// imatrix.chunk_count, imatrix.chunk_size; per weight "<name>.in_sum2" f32 [cols, 1]
// and "<name>.counts" f32 [1, 1]), atomically; lowbit::load_imatrix and llama-quantize
// read it.
void write_imatrix(const Calibration& c, const std::filesystem::path& path);

// Writes <dir>/tensor_file_name(weight, ".hess") for every weight with a Hessian (the
// files `lowbit quantize --method gptq --hessians DIR` reads); creates dir.
void save_hessians(const Calibration& c, const std::filesystem::path& dir);

}  // namespace lowbit
