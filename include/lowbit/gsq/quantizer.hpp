#pragma once
// The GSQ quantizer and its packed result.
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/core/matrix_view.hpp"
#include "lowbit/gsq/config.hpp"
#include "lowbit/gsq/group_fit.hpp"

namespace lowbit {

// A quantized [rows x cols] matrix. Codes are unsigned b-bit values packed per
// row along the input dimension (gsq/packing.hpp). Group g of row r decodes as
//   symmetric / asymmetric:  w = scales[r,g] * (q - zeros[r,g])
//   asymmetric_float:        w = scales[r,g] * q + mins[r,g]
// scales and mins hold the values as stored (fp16 / bf16 / fp32, or after the
// second-level quantization), so decoding needs nothing else.
struct GsqResult {
  GsqConfig config;
  int64_t rows = 0, cols = 0;
  std::vector<uint32_t> qweight;  // rows x words_per_row()
  std::vector<float> scales;      // rows x groups()
  std::vector<int32_t> zeros;     // rows x groups(); 2^(b-1) when symmetric, 0 for asymmetric_float
  std::vector<float> mins;        // rows x groups() for asymmetric_float, else empty
  // Double quantization: scales[i] == scale_codes[i] * scale_blocks[i / 256].
  std::vector<int8_t> scale_codes;
  std::vector<float> scale_blocks;
  // Group of each input column; empty means column / group() (contiguous groups).
  // GPTQ with act-order fills it: groups are then contiguous in processing order.
  std::vector<int32_t> g_idx;

  int64_t group() const { return config.resolved_group(cols); }
  int64_t groups() const { return group() == 0 ? 0 : cols / group(); }
  int64_t words_per_row() const;
  int64_t group_of(int64_t c) const { return g_idx.empty() ? c / group() : g_idx[static_cast<size_t>(c)]; }
  uint32_t code(int64_t r, int64_t c) const;
  GroupParams params(int64_t r, int64_t g) const;
  // Storage bits per weight: codes, scales, zeros or minimums, second-level scales.
  double bits_per_weight() const;
};

// Quantizes w ([out x in], row-major). `importance` (one weight per column) is
// required by ScaleSearch::importance and ignored by the other searches. Throws
// Error for an invalid config, a group size that does not divide cols, NaN/Inf,
// or a bad importance vector. Deterministic at any thread count.
GsqResult gsq_quantize(const GsqConfig& cfg, ConstMatrixView<float> w, std::span<const float> importance = {});

// Decodes into out (rows x cols).
void gsq_dequantize(const GsqResult& q, MatrixView<float> out);

// y = W x on the packed form (x: cols entries, y: rows entries), through the
// dispatch table's best gsq_gemv kernel.
void gsq_gemv(const GsqResult& q, std::span<const float> x, std::span<float> y);

// y = W x with x first quantized to ggml's Q8_0 blocks (quantize_activations), through
// the best gsq_gemv_q8 kernel: integer dot products, the fastest form on CPUs with
// int8 dot instructions, at the cost of the activations' 8-bit rounding. Needs
// cols % 32 == 0; throws Error otherwise and for the cases gsq_gemv rejects.
void gsq_gemv_q8(const GsqResult& q, std::span<const float> x, std::span<float> y);

}  // namespace lowbit
