#include "lowbit/gptq/ggml_target.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cpu/reference/block_codec.hpp"
#include "common/checks.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/formats/blocks.hpp"
#include "lowbit/kernels/registry.hpp"

namespace lowbit {
namespace {

using kernels::BlockCodec;
using kernels::SubBlockMap;

using detail::dims;

// The level whose decoded value is nearest to w under m. A first guess inverts the
// map (rounded and clamped, or the code-book entry nearest to w / scale); float
// rounding of scale * level + offset can still make a neighbour decode nearer, so we
// then step to neighbours while they are strictly nearer. Decoding is monotone in
// the level, so the first level with no nearer neighbour is the nearest of all.
// Distances are compared in double, where the difference of two floats is exact.
int nearest_level(const BlockCodec& c, SubBlockMap m, float w) {
  const int lo = c.level_min, hi = c.level_max;
  float t = (c.has_offset ? w - m.offset : w) / m.scale;
  if (std::isnan(t)) t = 0.0f;  // scale 0 and w on the offset: every level decodes alike
  int l;
  if (c.table != nullptr) {
    // Code books are sorted: the nearest entry is the first one >= t or the one before.
    const int8_t* end = c.table + (hi + 1);
    l = static_cast<int>(std::lower_bound(c.table, end, t, [](int8_t v, float x) { return v < x; }) - c.table);
    if (l > hi || (l > lo && t - static_cast<float>(c.table[l - 1]) <= static_cast<float>(c.table[l]) - t)) --l;
  } else {
    l = static_cast<int>(std::nearbyint(std::clamp(t, static_cast<float>(lo), static_cast<float>(hi))));
  }
  auto dist = [&](int level) { return std::fabs(static_cast<double>(w) - c.decode(m, level)); };
  double best = dist(l);
  int step = 0;
  if (l > lo && dist(l - 1) < best)
    step = -1;
  else if (l < hi && dist(l + 1) < best)
    step = 1;
  if (step != 0) {
    do {
      l += step;
      best = dist(l);
    } while (l + step >= lo && l + step <= hi && dist(l + step) < best);
  }
  return l;
}

// nearest_level's first guess and its neighbour test for len rows at once, in a loop
// without calls or early exits (the compiler vectorises it); unsure[i] marks the rare
// row where a neighbour decodes strictly nearer, which then goes through
// nearest_level itself, so every level is exactly the one it picks.
template <bool Offset>
void first_guess(const float* w, const float* scale, const float* offset, int64_t len, float lo, float hi, int* levels,
                 uint8_t* unsure) {
  for (int64_t i = 0; i < len; ++i) {
    const float sc = scale[i], of = Offset ? offset[i] : 0.0f;
    float t = (Offset ? w[i] - of : w[i]) / sc;
    t = t != t ? 0.0f : t;
    t = std::min(std::max(t, lo), hi);
    const float l = (t + 12582912.0f) - 12582912.0f;  // nearbyint: half to even (|t| <= 128)
    const float d0 = Offset ? sc * l + of : sc * l;
    const float dm = Offset ? sc * (l - 1.0f) + of : sc * (l - 1.0f);
    const float dp = Offset ? sc * (l + 1.0f) + of : sc * (l + 1.0f);
    const auto x = static_cast<double>(w[i]);
    const double best = std::fabs(x - static_cast<double>(d0));
    const bool down = (l > lo) & (std::fabs(x - static_cast<double>(dm)) < best);
    const bool up = (l < hi) & (std::fabs(x - static_cast<double>(dp)) < best);
    levels[i] = static_cast<int>(l);
    unsure[i] = static_cast<uint8_t>(down | up);
  }
}

}  // namespace

GgmlTarget::GgmlTarget(Format f, std::span<const float> importance, QuantizeEffort effort)
    : format_(f), effort_(effort), codec_(kernels::block_codec(f)), importance_(importance.begin(), importance.end()) {
  const FormatTraits& t = traits(f);  // throws for a format lowbit does not know
  if (t.quantized && codec_ == nullptr)
    throw Error("GPTQ into " + std::string(t.name) + ": no element codec for this format");
  detail::check_importance_values("GPTQ into " + std::string(t.name) + ": ", importance_);
}

void GgmlTarget::begin(int64_t rows, int64_t cols, std::span<const int32_t> perm, bool static_groups) {
  const FormatTraits& t = traits(format_);
  const std::string name(t.name);
  block_ = t.block_elems;
  if (rows < 1 || cols < 1 || cols % block_ != 0)
    throw Error("GPTQ into " + name + ": a " + dims(rows, cols) + " layer does not fit the format: rows of " +
                std::to_string(cols) + " elements must be a positive multiple of its " + std::to_string(block_) +
                "-element block");
  detail::check_importance_size("GPTQ into " + name + ": ", importance_, cols);
  if (codec_ != nullptr && !static_groups) {
    for (size_t p = 0; p < perm.size(); ++p)
      if (perm[p] != static_cast<int32_t>(p))
        throw Error("GPTQ into " + name + " with act-order needs static_groups: the format stores blocks in "
                    "original column order, so each block's scales must be fitted before its columns are "
                    "visited out of order; enable static_groups (or disable act_order)");
  }
  rows_ = rows;
  cols_ = cols;
  block_bytes_ = t.block_bytes;
  row_bytes_ = static_cast<int64_t>(row_bytes(format_, cols));
  subs_per_row_ = codec_ != nullptr ? cols / codec_->sub_elems : 0;
  bytes_.assign(static_cast<size_t>(rows * row_bytes_), std::byte{0});
  map_scale_.assign(static_cast<size_t>(rows * subs_per_row_), 0.0f);
  map_offset_.assign(static_cast<size_t>(rows * subs_per_row_), 0.0f);
}

int64_t GgmlTarget::group_columns() const { return codec_ != nullptr ? codec_->block_elems : 1; }

void GgmlTarget::fit_group(int64_t group, std::span<const int32_t> columns, int64_t r0, int64_t r1,
                           const float* values, int64_t ld) {
  if (codec_ == nullptr) return;  // plain floats have no parameters
  // A group is one block, its columns in original order (begin() refused anything else).
  const int64_t blk = group;
  if (static_cast<int64_t>(columns.size()) != block_ || columns.front() != blk * block_ ||
      columns.back() != (blk + 1) * block_ - 1)
    throw Error("GPTQ into " + std::string(traits(format_).name) + ": group " + std::to_string(group) +
                " is not block " + std::to_string(blk) + "'s columns in order");
  const QuantizeRowFn quantize = select_quantize_kernel(format_, effort_).fn;
  const float* imp = importance_.empty() ? nullptr : importance_.data() + blk * block_;
  const int subs = codec_->block_elems / codec_->sub_elems;
  // A K-quant row is its super-blocks quantized one by one (tests/formats/
  // test_kquants_effort.cpp, RowIsItsBlocksQuantizedAlone), so several rows' blocks
  // go through one call as one long row: the lane kernels then fill their vectors
  // with different blocks (AVX-512's ggml candidate holds two super-blocks), and the
  // per-call work (dispatch, the candidate's buffers) is shared. The 32-element
  // formats and IQ4 are not batched: ggml's imatrix weights there use the whole
  // row's mean square, and GPTQ fits one block as a row of its own.
  const bool batch = block_ == QK_K && format_ != Format::IQ4_XS;
  const int64_t per_call = batch ? 16 : 1;
  std::vector<float> x(static_cast<size_t>(per_call * block_));
  std::vector<float> imps;
  if (imp != nullptr && per_call > 1) {
    imps.resize(x.size());
    for (int64_t i = 0; i < per_call; ++i) std::copy(imp, imp + block_, imps.begin() + i * block_);
  }
  std::vector<std::byte> out(static_cast<size_t>(per_call * block_bytes_));
  for (int64_t r = r0; r < r1; r += per_call) {
    const int64_t rows = std::min(per_call, r1 - r);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t k = 0; k < block_; ++k) x[i * block_ + k] = values[k * ld + (r + i - r0)];
    quantize(x.data(), out.data(), rows * block_, imps.empty() ? imp : imps.data());
    for (int64_t i = 0; i < rows; ++i) {
      std::byte* b = block_ptr(r + i, blk);
      std::memcpy(b, out.data() + i * block_bytes_, static_cast<size_t>(block_bytes_));
      for (int s = 0; s < subs; ++s) {
        const SubBlockMap sm = codec_->sub_map(b, s);
        const size_t j = static_cast<size_t>((blk * subs + s) * rows_ + r + i);
        map_scale_[j] = sm.scale;
        map_offset_[j] = sm.offset;
      }
    }
  }
}

void GgmlTarget::quantize_column(int64_t column, int64_t, int64_t r0, int64_t r1, const float* w, float* q) {
  if (codec_ == nullptr) {
    // F32 / F16 / BF16: the type's own rounding of the one element, decoded back.
    const QuantizeRowFn quantize = select_quantize_kernel(format_, effort_).fn;
    const DequantizeRowFn dequantize = select_dequantize_kernel(format_).fn;
    for (int64_t r = r0; r < r1; ++r) {
      std::byte* e = block_ptr(r, column);
      quantize(&w[r - r0], e, 1, nullptr);
      dequantize(e, &q[r - r0], 1);
    }
    return;
  }
  const BlockCodec& c = *codec_;
  const int64_t blk = column / block_, sub = column / c.sub_elems;
  const int e = static_cast<int>(column % block_);
  const float* scale = &map_scale_[static_cast<size_t>(sub * rows_)];
  const float* offset = &map_offset_[static_cast<size_t>(sub * rows_)];
  constexpr int64_t kPiece = 256;
  int levels[kPiece];
  uint8_t unsure[kPiece];
  for (int64_t p0 = r0; p0 < r1; p0 += kPiece) {
    const int64_t len = std::min(kPiece, r1 - p0);
    const float* wp = w + (p0 - r0);
    if (c.table == nullptr) {
      const auto lo = static_cast<float>(c.level_min), hi = static_cast<float>(c.level_max);
      if (c.has_offset)
        first_guess<true>(wp, scale + p0, offset + p0, len, lo, hi, levels, unsure);
      else
        first_guess<false>(wp, scale + p0, offset + p0, len, lo, hi, levels, unsure);
    } else {
      for (int64_t i = 0; i < len; ++i) unsure[i] = 1;
    }
    for (int64_t i = 0; i < len; ++i) {
      const int64_t r = p0 + i;
      const SubBlockMap sm{scale[r], offset[r]};
      const int level = unsure[i] ? nearest_level(c, sm, wp[i]) : levels[i];
      c.set_level(block_ptr(r, blk), e, level);
      q[r - r0] = c.decode(sm, level);
    }
  }
}

std::vector<std::byte> GgmlTarget::result() {
  if (codec_ != nullptr && codec_->finish != nullptr)
    for (int64_t r = 0; r < rows_; ++r)
      for (int64_t b = 0; b < cols_ / block_; ++b) codec_->finish(block_ptr(r, b));
  return bytes_;
}

}  // namespace lowbit
