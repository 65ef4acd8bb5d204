#include "lowbit/gsq/quantizer.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/checks.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/gsq/packing.hpp"
#include "lowbit/kernels/gsq_dequantize.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"
#include "lowbit/kernels/gsq_gemv_q8.hpp"

namespace lowbit {
namespace {

constexpr int64_t kDoubleQuantBlock = 256;  // groups sharing one fp32 second-level scale

using detail::dims;

void check_input(const GsqConfig& cfg, ConstMatrixView<float> w, std::span<const float> importance) {
  cfg.validate();
  const std::string where = "GSQ " + cfg.describe() + ": ";
  if (w.rows < 0 || w.cols < 1) throw Error(where + "bad matrix shape " + dims(w.rows, w.cols));
  if (w.rows > 0 && w.data == nullptr) throw Error(where + "weights of shape " + dims(w.rows, w.cols) + " are null");
  if (w.stride < w.cols) throw Error(where + "row stride " + std::to_string(w.stride) + " < row length " + std::to_string(w.cols));
  if (w.cols % cfg.resolved_group(w.cols) != 0)
    throw Error(where + "group size " + std::to_string(cfg.group_size) + " does not divide the row length " +
                std::to_string(w.cols));
  if (cfg.search == ScaleSearch::importance && importance.empty())
    throw Error(where + "the importance search needs an importance vector (one weight per input column)");
  detail::check_importance(where, importance, w.cols);
  detail::check_finite(w, where + "weight ", "NaN and Inf cannot be quantized");
}

// A group's scale search costs several passes over its elements: smaller tasks than
// a plain format's quantizer.
constexpr int64_t kSearchCost = 4;
int64_t row_grain(int64_t cols) { return detail::row_grain(cols, kSearchCost); }

// Replaces each scale by int8 code * fp32 block scale (one per 256 groups).
void double_quantize(GsqResult& q) {
  const auto n = static_cast<int64_t>(q.scales.size());
  const int64_t blocks = (n + kDoubleQuantBlock - 1) / kDoubleQuantBlock;
  q.scale_codes.assign(static_cast<size_t>(n), 0);
  q.scale_blocks.assign(static_cast<size_t>(blocks), 0.0f);
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t i0 = b * kDoubleQuantBlock, i1 = std::min(n, i0 + kDoubleQuantBlock);
    float amax = 0;
    for (int64_t i = i0; i < i1; ++i) amax = std::max(amax, std::fabs(q.scales[i]));
    const float bs = amax / 127.0f;
    q.scale_blocks[b] = bs;
    for (int64_t i = i0; i < i1; ++i) {
      const float c = bs > 0 ? std::nearbyint(q.scales[i] / bs) : 0.0f;
      q.scale_codes[i] = static_cast<int8_t>(std::clamp(c, -127.0f, 127.0f));
      q.scales[i] = static_cast<float>(q.scale_codes[i]) * bs;
    }
  }
}

// The kernels' view of a result: the packed arrays and nothing of the quantizer's settings.
GsqMatrixRef matrix_ref(const GsqResult& q) {
  return {q.qweight.data(), q.scales.data(), q.zeros.data(), q.mins.empty() ? nullptr : q.mins.data(),
          q.g_idx.empty() ? nullptr : q.g_idx.data(), q.config.bits, q.rows, q.cols, q.group(), q.words_per_row()};
}

}  // namespace

int64_t GsqResult::words_per_row() const { return packed_words(cols, config.bits); }

uint32_t GsqResult::code(int64_t r, int64_t c) const {
  return unpack_code(qweight.data() + r * words_per_row(), config.bits, c);
}

GroupParams GsqResult::params(int64_t r, int64_t g) const {
  const size_t i = static_cast<size_t>(r * groups() + g);
  GroupParams p;
  p.scale = scales[i];
  p.zero = zeros[i];
  if (!mins.empty()) p.min = mins[i];
  return p;
}

double GsqResult::bits_per_weight() const {
  if (rows == 0 || cols == 0) return 0;
  const double elems = static_cast<double>(rows) * cols;
  const double n_groups = static_cast<double>(rows) * groups();
  const double storage_bits = config.scale_storage == ScaleStorage::fp32 ? 32 : 16;
  double bits = static_cast<double>(rows) * words_per_row() * 32;
  bits += n_groups * (config.double_quant ? 8 : storage_bits);
  bits += 32.0 * scale_blocks.size();
  if (config.scheme == GsqScheme::asymmetric) bits += n_groups * config.bits;
  if (config.scheme == GsqScheme::asymmetric_float) bits += n_groups * storage_bits;
  return bits / elems;
}

GsqResult gsq_quantize(const GsqConfig& cfg, ConstMatrixView<float> w, std::span<const float> importance) {
  check_input(cfg, w, importance);
  GsqResult q;
  q.config = cfg;
  q.rows = w.rows;
  q.cols = w.cols;
  const int64_t g = q.group(), groups = q.groups(), words = q.words_per_row();
  q.qweight.assign(static_cast<size_t>(w.rows * words), 0u);
  q.scales.assign(static_cast<size_t>(w.rows * groups), 0.0f);
  q.zeros.assign(static_cast<size_t>(w.rows * groups), 0);
  if (cfg.scheme == GsqScheme::asymmetric_float) q.mins.assign(static_cast<size_t>(w.rows * groups), 0.0f);
  const float* imp = importance.empty() ? nullptr : importance.data();

  parallel_for(w.rows, row_grain(w.cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t j = 0; j < groups; ++j) {
        const GroupParams p = fit_group(cfg, w.row(r) + j * g, g, 1, imp ? imp + j * g : nullptr);
        const size_t i = static_cast<size_t>(r * groups + j);
        q.scales[i] = p.scale;
        q.zeros[i] = p.zero;
        if (!q.mins.empty()) q.mins[i] = p.min;
      }
  });
  if (cfg.double_quant) double_quantize(q);

  // Code every weight against the parameters as finally stored.
  parallel_for(w.rows, row_grain(w.cols), [&](int64_t r0, int64_t r1) {
    std::vector<uint32_t> codes(static_cast<size_t>(w.cols));
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t j = 0; j < groups; ++j) {
        const GroupParams p = q.params(r, j);
        for (int64_t c = j * g; c < (j + 1) * g; ++c) codes[c] = encode_value(cfg, p, w(r, c));
      }
      pack_codes(codes, cfg.bits, std::span<uint32_t>(q.qweight.data() + r * words, static_cast<size_t>(words)));
    }
  });
  return q;
}

void gsq_dequantize(const GsqResult& q, MatrixView<float> out) {
  if (out.rows != q.rows || out.cols != q.cols)
    throw Error("gsq_dequantize: output is " + dims(out.rows, out.cols) + ", the matrix is " + dims(q.rows, q.cols));
  if (q.rows * q.cols > 0 && out.data == nullptr) throw Error("gsq_dequantize: output is null");
  if (q.rows == 0) return;
  const GsqMatrixRef m = matrix_ref(q);
  const GsqDequantizeFn fn = gsq_dequantize_kernels().select(GsqPackedLayout{}).fn;
  parallel_for(q.rows, 16, [&](int64_t r0, int64_t r1) { fn(m, out.data, out.stride, r0, r1); });
}

void gsq_gemv(const GsqResult& q, std::span<const float> x, std::span<float> y) {
  if (static_cast<int64_t>(x.size()) != q.cols || static_cast<int64_t>(y.size()) != q.rows)
    throw Error("gsq_gemv: x has " + std::to_string(x.size()) + " entries and y " + std::to_string(y.size()) +
                " for a " + dims(q.rows, q.cols) + " matrix");
  const GsqMatrixRef m = matrix_ref(q);
  const GsqGemvFn fn = gsq_gemv_kernels().select(GsqPackedLayout{}).fn;
  parallel_for(q.rows, 16, [&](int64_t r0, int64_t r1) { fn(m, x.data(), y.data(), r0, r1); });
}

void gsq_gemv_q8(const GsqResult& q, std::span<const float> x, std::span<float> y) {
  if (static_cast<int64_t>(x.size()) != q.cols || static_cast<int64_t>(y.size()) != q.rows)
    throw Error("gsq_gemv_q8: x has " + std::to_string(x.size()) + " entries and y " + std::to_string(y.size()) +
                " for a " + dims(q.rows, q.cols) + " matrix");
  if (q.cols % 32 != 0)
    throw Error("gsq_gemv_q8: the row length " + std::to_string(q.cols) +
                " is not a multiple of 32 (whole Q8_0 activation blocks); use gsq_gemv");
  std::vector<std::byte> xq(static_cast<size_t>(q.cols / 32) * 34);
  quantize_activations(Format::Q8_0, {x.data(), 1, q.cols}, xq);
  const GsqMatrixRef m = matrix_ref(q);
  const GsqGemvQ8Fn fn = gsq_gemv_q8_kernels().select(GsqPackedLayout{}).fn;
  parallel_for(q.rows, 16, [&](int64_t r0, int64_t r1) { fn(m, xq.data(), y.data(), r0, r1); });
}

}  // namespace lowbit
