#pragma once
// The GPTQ solver (Frantar et al., 2022): quantizes a layer column by column and
// pushes each column's rounding error onto the columns not yet quantized, weighted
// by the inverse Hessian of the layer's inputs. The target format is a plug-in
// (gptq/target.hpp); the solver never knows what a code is.
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/core/matrix_view.hpp"
#include "lowbit/gptq/hessian.hpp"

namespace lowbit {

class GptqTarget;

struct GptqConfig {
  double damp_percent = 0.01;  // add damp_percent * mean(diag H) to the diagonal
  // When the Cholesky factorisation fails, raise damp_percent by damp_step and try
  // again, at most max_damp_retries times (each retry logged at warn level).
  int max_damp_retries = 10;
  double damp_step = 0.01;
  int block_size = 128;        // columns per lazy-update block (raised to fit the target's groups)
  bool act_order = false;      // process columns by descending diag(H)
  // Fit every group's parameters up front on the original weights (so act-order
  // needs no g_idx shuffle at inference).
  bool static_groups = false;
  // Where a group starts inside a lazy block, the reference implementation fits its
  // parameters on the weights as they were at the block's start (without that
  // block's earlier error updates). We keep that by default: fitting on the updated
  // weights instead measured worse at 2 and 3 bits (docs/gptq.md). Set this to fit
  // on the updated weights.
  bool fit_groups_on_updated_weights = false;

  void validate() const;  // throws Error naming the bad field
};

struct GptqReport {
  double damp_percent_used = 0;  // after any automatic increases
  int damp_retries = 0;
  int64_t dead_columns = 0;      // columns with zero diagonal: weights set to 0
  std::vector<int32_t> perm;     // processing order (identity without act-order)
};

// Runs GPTQ on W ([rows x cols], row-major, not modified) with the Hessian H
// ([cols x cols], upper triangle read) into `target`. Deterministic at any thread
// count. Throws Error for shape mismatches, NaN/Inf in W or H, memory that cannot
// fit, or a Hessian that stays indefinite after all damping retries.
GptqReport gptq_solve(const GptqConfig& cfg, ConstMatrixView<float> w, std::span<const float> hessian_upper,
                      GptqTarget& target);
inline GptqReport gptq_solve(const GptqConfig& cfg, ConstMatrixView<float> w, const HessianAccumulator& h,
                             GptqTarget& target) {
  return gptq_solve(cfg, w, h.upper(), target);
}

// The layer's relative output error ||X (W - Q)^T||_F^2 / ||X W^T||_F^2, computed
// from H = (2/N) X^T X as tr(E H E^T) / tr(W H W^T), E = W - Q (products by SGEMM,
// sums in double).
double layer_output_error(ConstMatrixView<float> w, ConstMatrixView<float> q, std::span<const float> hessian_upper);

// The upper Cholesky factor U of H^-1 (H^-1 = U^T U), row-major, computed as
// J L^-1 J with L the lower Cholesky factor of J H J (J reverses the order): one
// factorisation and one triangular inverse (about 2/3 n^3 flops) instead of the
// reference's three steps (4/3 n^3), both tiled and parallel on TBB with results
// independent of the thread count. Returns false (and leaves `out` unspecified)
// when H is not positive definite.
bool inverse_cholesky_upper(std::span<const float> h_full, int64_t n, std::vector<float>& out);

}  // namespace lowbit
