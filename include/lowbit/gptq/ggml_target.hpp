#pragma once
// GPTQ into a GGML block format (what llama.cpp's own quantizers lack): the bytes
// load in any GGML engine unchanged.
//
// Each block's parameters (scales, mins, super-block scales) come from the format's
// reference quantizer, run when the solver reaches the block's first column on the
// weights as GPTQ has updated them so far. Every element's code is then chosen
// column by column as the code whose decoded value is nearest to the element's
// current weight under the block's fixed parameters, and the rounding error flows
// on to the columns not yet quantized.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/formats/effort.hpp"
#include "lowbit/formats/format.hpp"
#include "lowbit/gptq/target.hpp"

namespace lowbit {

namespace kernels {
struct BlockCodec;
}  // namespace kernels

class GgmlTarget final : public GptqTarget {
 public:
  // `importance`: empty or one finite non-negative weight per input column (the
  // Hessian diagonal / 2, i.e. llama.cpp's imatrix), forwarded to the format's
  // quantizer when it fits a block. Every block format is supported; F32, F16 and
  // BF16 round each element to the nearest value of the type. `effort` picks the
  // quantizer that fits each block (lowbit::quantize's, formats/effort.hpp): at
  // `fast`, ggml's own search, about ten times cheaper for the K-quants. (With
  // importance, `fast` Q4_0/Q4_1/Q5_0/Q5_1 weight a block by its row's mean square;
  // fitted one block at a time, as here, they use the block's own.)
  explicit GgmlTarget(Format f, std::span<const float> importance = {},
                      QuantizeEffort effort = QuantizeEffort::standard);

  // Errors: columns not a multiple of the format's block size; an importance vector
  // of the wrong length; act-order without static groups (blocks are stored in
  // original column order, so a block's columns must be fitted together).
  void begin(int64_t rows, int64_t cols, std::span<const int32_t> perm, bool static_groups) override;
  // The format's block size (32 or 256); 1 for the plain float formats.
  int64_t group_columns() const override;
  void fit_group(int64_t group, std::span<const int32_t> columns, int64_t r0, int64_t r1, const float* values,
                 int64_t ld) override;
  void quantize_column(int64_t column, int64_t group, int64_t r0, int64_t r1, const float* w, float* q) override;

  // rows x row_bytes(format, cols): the format's ordinary bytes, with derived fields
  // (Q8_1's s, Q8_K's bsums) recomputed from the final codes. Call after gptq_solve.
  std::vector<std::byte> result();

 private:
  std::byte* block_ptr(int64_t row, int64_t block) { return bytes_.data() + row * row_bytes_ + block * block_bytes_; }

  Format format_;
  QuantizeEffort effort_;
  const kernels::BlockCodec* codec_;  // null for F32 / F16 / BF16
  std::vector<float> importance_;
  int64_t rows_ = 0, cols_ = 0;
  int64_t block_ = 1, block_bytes_ = 0, row_bytes_ = 0, subs_per_row_ = 0;
  std::vector<std::byte> bytes_;  // rows x row_bytes_
  // Each sub-block's fixed decode map (scale, offset), stored sub-block by sub-block
  // (subs_per_row_ x rows), so coding a column reads every row's map contiguously.
  std::vector<float> map_scale_, map_offset_;
};

}  // namespace lowbit
