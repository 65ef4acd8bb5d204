#include <algorithm>
#include <string>

#include "common/checks.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/gptq/target.hpp"
#include "lowbit/gsq/packing.hpp"

namespace lowbit {

GsqTarget::GsqTarget(const GsqConfig& cfg, std::span<const float> importance)
    : cfg_(cfg), importance_(importance.begin(), importance.end()) {
  cfg_.validate();
  if (cfg_.search == ScaleSearch::importance && importance_.empty())
    throw Error("GPTQ into GSQ: the importance search needs an importance vector (e.g. the Hessian's diagonal)");
  detail::check_importance_values("GPTQ into GSQ: ", importance_);
  if (cfg_.double_quant)
    throw Error("GPTQ into GSQ: double quantization would change the scales after GPTQ chose the codes");
}

void GsqTarget::begin(int64_t rows, int64_t cols, std::span<const int32_t> perm, bool static_groups) {
  detail::check_importance_size("GPTQ into GSQ: ", importance_, cols);
  rows_ = rows;
  cols_ = cols;
  group_ = cfg_.resolved_group(cols);
  if (cols % group_ != 0)
    throw Error("GPTQ into GSQ " + cfg_.describe() + ": group size does not divide the " + std::to_string(cols) + " columns");
  const int64_t groups = cols / group_;
  codes_.assign(static_cast<size_t>(rows * cols), 0);
  col_scale_.assign(static_cast<size_t>(rows * groups), 0.0f);
  col_min_.assign(static_cast<size_t>(rows * groups), 0.0f);
  col_zero_.assign(static_cast<size_t>(rows * groups), 0);
  out_ = GsqResult{};
  out_.config = cfg_;
  out_.rows = rows;
  out_.cols = cols;
  out_.scales.assign(static_cast<size_t>(rows * groups), 0.0f);
  out_.zeros.assign(static_cast<size_t>(rows * groups), 0);
  if (cfg_.scheme == GsqScheme::asymmetric_float) out_.mins.assign(static_cast<size_t>(rows * groups), 0.0f);
  bool identity = true;
  for (size_t p = 0; p < perm.size(); ++p) identity = identity && perm[p] == static_cast<int32_t>(p);
  if (!identity && !static_groups) {
    // Groups are contiguous in processing order: column perm[p] belongs to group p / G.
    out_.g_idx.assign(static_cast<size_t>(cols), 0);
    for (size_t p = 0; p < perm.size(); ++p) out_.g_idx[perm[p]] = static_cast<int32_t>(p / group_);
  }
}

int64_t GsqTarget::group_columns() const { return group_; }

void GsqTarget::fit_group(int64_t group, std::span<const int32_t> columns, int64_t r0, int64_t r1,
                          const float* values, int64_t ld) {
  const int64_t groups = cols_ / group_;
  std::vector<float> weights;
  if (cfg_.search == ScaleSearch::importance)
    for (int32_t c : columns) weights.push_back(importance_[static_cast<size_t>(c)]);
  for (int64_t r = r0; r < r1; ++r) {
    const GroupParams p = lowbit::fit_group(cfg_, values + (r - r0), static_cast<int64_t>(columns.size()), ld,
                                            weights.empty() ? nullptr : weights.data());
    const size_t i = static_cast<size_t>(r * groups + group);
    out_.scales[i] = p.scale;
    out_.zeros[i] = p.zero;
    if (!out_.mins.empty()) out_.mins[i] = p.min;
    const size_t t = static_cast<size_t>(group * rows_ + r);
    col_scale_[t] = p.scale;
    col_zero_[t] = p.zero;
    col_min_[t] = p.min;
  }
}

// encode_value / decode_value for a whole column, in the same float operations (so the
// same codes and values), as branch-free loops the compiler vectorises: the
// zero-scale case is a select after the arithmetic instead of a branch before it.
void GsqTarget::quantize_column(int64_t column, int64_t group, int64_t r0, int64_t r1, const float* w, float* q) {
  const size_t off = static_cast<size_t>(group * rows_ + r0);
  const float* s = &col_scale_[off];
  uint8_t* code = &codes_[static_cast<size_t>(r0 * cols_ + column)];
  const float maxq = static_cast<float>((1 << cfg_.bits) - 1);
  const int64_t nr = r1 - r0;
  if (cfg_.scheme == GsqScheme::asymmetric_float) {
    const float* m = &col_min_[off];
    for (int64_t r = 0; r < nr; ++r) {
      float t = std::min(std::max(detail::round_even((w[r] - m[r]) / s[r]), 0.0f), maxq);
      t = s[r] == 0.0f ? 0.0f : t;
      code[r * cols_] = static_cast<uint8_t>(t);
      q[r] = s[r] * t + m[r];
    }
  } else {
    const int32_t* z = &col_zero_[off];
    for (int64_t r = 0; r < nr; ++r) {
      const float zf = static_cast<float>(z[r]);
      float t = std::min(std::max(detail::round_even(w[r] / s[r]) + zf, 0.0f), maxq);
      t = s[r] == 0.0f ? zf : t;
      code[r * cols_] = static_cast<uint8_t>(t);
      q[r] = s[r] * (t - zf);
    }
  }
}

GsqResult GsqTarget::result() {
  const int64_t words = out_.words_per_row();
  out_.qweight.assign(static_cast<size_t>(rows_ * words), 0u);
  std::vector<uint32_t> row(static_cast<size_t>(cols_));
  for (int64_t r = 0; r < rows_; ++r) {
    for (int64_t c = 0; c < cols_; ++c) row[c] = codes_[static_cast<size_t>(r * cols_ + c)];
    pack_codes(row, cfg_.bits, std::span<uint32_t>(out_.qweight.data() + r * words, static_cast<size_t>(words)));
  }
  return out_;
}

}  // namespace lowbit
