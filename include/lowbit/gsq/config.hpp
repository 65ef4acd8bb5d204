#pragma once
// Group-scaling quantization (GSQ) settings: each row is cut into groups of
// consecutive input elements; each group gets a scale (and a zero point or a
// minimum); each weight becomes a small unsigned code.
#include <cstdint>
#include <string>

namespace lowbit {

enum class GsqScheme : uint8_t {
  symmetric,         // w = scale * (q - 2^(b-1)): signed codes in [-2^(b-1), 2^(b-1)-1], zero fixed
  asymmetric,        // w = scale * (q - zero): integer zero in [0, 2^b-1], as GPTQ checkpoints store it
  asymmetric_float,  // w = scale * q + min: a float minimum per group, as Q4_1 / Q5_1
};

enum class ScaleSearch : uint8_t {
  rtn,         // absmax (symmetric) or min/max (asymmetric), plain round to nearest
  mse,         // search shrunken ranges for the least reconstruction error, then refit
  importance,  // the mse search with per-column importance weights (needs a vector)
  hqq,         // half-quadratic optimisation of the zero point (asymmetric schemes)
};

enum class ScaleStorage : uint8_t { fp16, bf16, fp32 };

struct GsqConfig {
  int bits = 4;             // 2, 3, 4, 5, 6 or 8
  int group_size = 128;     // 32, 64, 128, 256, or 0 for one group per row (per channel)
  GsqScheme scheme = GsqScheme::asymmetric;
  ScaleSearch search = ScaleSearch::mse;
  ScaleStorage scale_storage = ScaleStorage::fp16;
  // Grid for the mse / importance search: ranges shrunk by 1 - i/grid for
  // i < grid * max_shrink, error measured as sum |err|^norm. GPTQ uses norm 2.4;
  // we default to 2, which measures lower RMSE (docs/gsq.md).
  double mse_norm = 2.0;
  int mse_grid = 100;
  double mse_max_shrink = 0.8;
  // HQQ (Badri & Shaji 2023): lp-norm shrinkage of the error, beta growing by kappa.
  int hqq_iters = 20;
  double hqq_p = 0.7, hqq_beta = 10.0, hqq_kappa = 1.01;
  // Second-level quantization of the scales: int8 codes with one fp32 scale per
  // 256 groups (bitsandbytes' double quantization).
  bool double_quant = false;

  // Throws lowbit::Error naming the first invalid field.
  void validate() const;
  // e.g. "4-bit g128 asym mse fp16".
  std::string describe() const;
  // The group length for a row of `cols` elements (cols when per-channel).
  int64_t resolved_group(int64_t cols) const { return group_size == 0 ? cols : group_size; }
};

const char* to_string(GsqScheme s);
const char* to_string(ScaleSearch s);
const char* to_string(ScaleStorage s);

}  // namespace lowbit
