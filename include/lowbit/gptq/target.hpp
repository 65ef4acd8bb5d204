#pragma once
// What GPTQ quantizes into. The solver walks columns in processing order; at the
// first column of each parameter group it asks the target to fit that group's
// parameters from the current weights, then asks it to quantize one column at a time.
#include <cstdint>
#include <span>

#include "lowbit/gsq/quantizer.hpp"

namespace lowbit {

class GptqTarget {
 public:
  virtual ~GptqTarget() = default;

  // Called once before solving: the layer's shape and the processing order.
  virtual void begin(int64_t rows, int64_t cols, std::span<const int32_t> perm, bool static_groups) = 0;
  // Columns per parameter group, counted in processing order (static groups: in
  // original order). The solver aligns its blocks to it.
  virtual int64_t group_columns() const = 0;
  // Fit group `group` for rows [r0, r1). columns[k] is the original index of the
  // group's k-th column; values[k * ld + (r - r0)] its current weight in row r.
  virtual void fit_group(int64_t group, std::span<const int32_t> columns, int64_t r0, int64_t r1,
                         const float* values, int64_t ld) = 0;
  // Quantize original column `column` (a member of `group`) for rows [r0, r1):
  // w[r - r0] are the current weights; write the decoded values to q[r - r0].
  virtual void quantize_column(int64_t column, int64_t group, int64_t r0, int64_t r1, const float* w, float* q) = 0;
};

// GPTQ into a GSQ configuration (GPTQ checkpoints' own math). After solving,
// result() holds the codes and parameters; with act-order (and no static groups)
// its g_idx maps each input column to its group.
class GsqTarget final : public GptqTarget {
 public:
  // `importance` (one weight per input column; pass the Hessian's diagonal, e.g.
  // HessianAccumulator::importance()) is required by, and only used with,
  // ScaleSearch::importance: group parameters are then fitted to minimise the
  // importance-weighted error.
  explicit GsqTarget(const GsqConfig& cfg, std::span<const float> importance = {});
  void begin(int64_t rows, int64_t cols, std::span<const int32_t> perm, bool static_groups) override;
  int64_t group_columns() const override;
  void fit_group(int64_t group, std::span<const int32_t> columns, int64_t r0, int64_t r1, const float* values,
                 int64_t ld) override;
  void quantize_column(int64_t column, int64_t group, int64_t r0, int64_t r1, const float* w, float* q) override;
  // Packs the codes; call once after gptq_solve.
  GsqResult result();

 private:
  GsqConfig cfg_;
  std::vector<float> importance_;
  int64_t rows_ = 0, cols_ = 0, group_ = 0;
  std::vector<uint8_t> codes_;  // rows x cols
  // groups x rows copies of out_'s scales, zeros and minimums, so that coding one
  // column reads contiguous parameters.
  std::vector<float> col_scale_, col_min_;
  std::vector<int32_t> col_zero_;
  GsqResult out_;
};

}  // namespace lowbit
