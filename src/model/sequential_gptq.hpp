#pragma once
// True-sequential GPTQ's driver (lowbit/model/gptq_calibration.hpp): runs the
// calibration windows through lowbit's llama runtime block by block and produces each
// block weight's quantized bytes, which quantize_model.cpp's run_plan streams out in
// file order.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "lowbit/gptq/hessian.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/model/gptq_calibration.hpp"
#include "lowbit/model/llama.hpp"
#include "lowbit/model/quantize_model.hpp"

namespace lowbit::detail {

// Quantizes planned tensor `t` (its f32 values w, rows x cols) with Hessian h into
// t.to()'s bytes, which the runtime then multiplies with.
using QuantizeWithHessian = std::function<std::vector<std::byte>(
    const PlannedTensor& t, const std::vector<float>& w, const std::shared_ptr<const HessianAccumulator>& h)>;

// What plan_model_quantization checks before any work: a non-empty text with at least
// one window, a model the runtime can run (an unsupported architecture is named).
void check_calibration(const GgufFile& model, const GptqCalibration& cal);

class SequentialGptq {
 public:
  // Covers the block weights the plan converts, or with `every_block_weight` all of
  // them (an export into another container, where even a weight stored in its final
  // type is rewritten).
  SequentialGptq(const GgufFile& model, const QuantizePlan& plan, const GptqCalibration& cal,
                 QuantizeWithHessian quantize, bool every_block_weight = false);
  ~SequentialGptq();

  // A block weight the plan converts: its bytes come from take().
  bool covers(const std::string& name) const;
  // The bytes of covered tensor `name`, running blocks up to its own. Each tensor is
  // taken once; the bytes of tensors of blocks run on the way are held until taken.
  std::vector<std::byte> take(const std::string& name);
  // A covered tensor already written (--resume): still quantized (the blocks after it
  // need its output), its bytes not kept.
  void skip(const std::string& name);
  // Importance for a tensor outside the blocks, quantized with rtn: the output matrix
  // gets the mean of output_norm(x)^2 after the last block (the remaining blocks run
  // first: run_plan asks for it after every block weight); others none. `why` says
  // which, for the log.
  std::vector<float> outside_importance(const std::string& name, std::string& why);

 private:
  void run_block(int64_t layer);
  void quantize_group(int64_t layer, std::initializer_list<const char*> names,
                      const std::shared_ptr<const HessianAccumulator>& h);

  const GgufFile& file_;
  const QuantizePlan& plan_;
  const GptqCalibration& cal_;
  QuantizeWithHessian quantize_;
  LlamaModel llama_;
  int64_t windows_ = 0, ctx_ = 0, next_ = 0;
  std::vector<float> x_, att_;  // every window's hidden states / attention output
  std::map<std::string, size_t> covered_;  // block weight -> plan index
  std::map<std::string, std::vector<std::byte>> ready_;
  std::set<std::string> skipped_, taken_;
  std::string output_name_;
};

}  // namespace lowbit::detail
