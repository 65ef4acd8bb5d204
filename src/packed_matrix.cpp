#include "lowbit/kernels/packed_matrix.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "common/checks.hpp"
#include "common/kquant_scales.hpp"
#include "cpu/reference/block_codec.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/formats/blocks.hpp"
#include "lowbit/formats/quantize.hpp"

namespace lowbit {
namespace {

constexpr int kPanelRows = 16, kBlock = 32;

// The codec of a format whose sub-blocks are 32 elements with levels (or code-book
// values) that fit int8, or Q3_K (below), else null.
const kernels::BlockCodec* packable_codec(Format f) {
  const kernels::BlockCodec* c = kernels::block_codec(f);
  if (c == nullptr || traits(f).activation_only) return nullptr;
  if (f == Format::Q3_K) return c;
  if (c->sub_elems != kBlock) return nullptr;
  if (c->table == nullptr && (c->level_min < -127 || c->level_max > 127)) return nullptr;
  return c;
}

// Row r of one packed block: its 32 int8 values value(j), its scale and offset, and
// 128 times the values' sum.
template <class Value>
void pack_row(PackedPanelBlock& out, int r, float scale, float offset, Value value) {
  out.scale[r] = scale;
  out.offset[r] = offset;
  int32_t sum = 0;
  for (int j = 0; j < kBlock; ++j) {
    const int v = value(j);
    out.codes[j / 4][r][j % 4] = static_cast<int8_t>(v);
    sum += v;
  }
  out.bias[r] = 128 * sum;
}

// Row r of one packed block from 32 elements of a 32-element-sub-block format.
void pack_sub_block(const kernels::BlockCodec& codec, const std::byte* block, int sub, PackedPanelBlock& out, int r) {
  const kernels::SubBlockMap m = codec.sub_map(block, sub);
  pack_row(out, r, m.scale, codec.has_offset ? m.offset : 0.0f, [&](int j) {
    const int level = codec.get_level(block, sub * kBlock + j);
    return codec.table != nullptr ? codec.table[level] : level;
  });
}

// Q3_K's 16-element sub-blocks decode as d * sc_j * l (sc_j in -32..31, l in -4..3) with
// one d per 256 elements, so two sub-blocks fit one packed block exactly: levels
// -sc_j * l (-128..124, int8) under the scale -d. (Without the sign flip -32 * -4 = 128
// would not fit.) The values are d * sc_j * l exactly, as real numbers; the decoder
// rounds d * sc_j to float first, a difference of at most half an ulp.
void pack_q3_K(const kernels::BlockCodec& codec, const std::byte* block, int half, PackedPanelBlock& out, int r) {
  const auto& b = *reinterpret_cast<const block_q3_K*>(block);
  int8_t sc[16];
  kernels::unpack_scales_q3_K(b.scales, sc);
  pack_row(out, r, -fp16_to_fp32(b.d), 0.0f, [&](int j) {
    const int e = half * kBlock + j;
    return -sc[e / 16] * codec.get_level(block, e);
  });
}

}  // namespace

bool PackedMatrix::supports(Format f) { return packable_codec(f) != nullptr; }

PackedMatrix::PackedMatrix(Format f, std::span<const std::byte> weights, int64_t rows, int64_t cols)
    : format_(f), rows_(rows), cols_(cols), blocks_(0) {
  const std::string what = std::string(traits(f).name) + " PackedMatrix: ";
  const kernels::BlockCodec* codec = packable_codec(f);
  if (codec == nullptr)
    throw Error(what + "this format does not repack (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, Q3_K, Q4_K, Q5_K, IQ4_XS do)");
  if (rows < 0 || cols < 0) throw Error(what + "negative shape " + detail::dims(rows, cols));
  const size_t need = quantized_size(f, rows, cols);
  if (weights.size() < need)
    throw Error(what + "weight buffer holds " + std::to_string(weights.size()) + " bytes, a " +
                detail::dims(rows, cols) + " matrix needs " + std::to_string(need));
  blocks_ = cols / kBlock;
  const int64_t panels = (rows + kPanelRows - 1) / kPanelRows;
  panels_.assign(static_cast<size_t>(panels * blocks_), PackedPanelBlock{});
  const size_t wrow = row_bytes(f, cols);
  parallel_for(panels, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p)
      for (int r = 0; r < kPanelRows && p * kPanelRows + r < rows; ++r) {
        const std::byte* row = weights.data() + (p * kPanelRows + r) * wrow;
        for (int64_t k = 0; k < blocks_; ++k) {
          PackedPanelBlock& out = panels_[p * blocks_ + k];
          const int64_t e0 = k * kBlock;
          const std::byte* block = row + (e0 / codec->block_elems) * codec->block_bytes;
          const int sub = static_cast<int>((e0 % codec->block_elems) / kBlock);
          if (f == Format::Q3_K)
            pack_q3_K(*codec, block, sub, out, r);
          else
            pack_sub_block(*codec, block, sub, out, r);
        }
      }
  });
}

std::vector<PackedActivationBlock> pack_activations(ConstMatrixView<float> x) {
  if (x.cols % kBlock != 0)
    throw Error("pack_activations: row length " + std::to_string(x.cols) + " is not a multiple of 32");
  detail::check_finite(x, "pack_activations: element ", "NaN and Inf have no product");
  const int64_t blocks = x.cols / kBlock;
  std::vector<PackedActivationBlock> out(static_cast<size_t>(x.rows * blocks));
  parallel_for(x.rows, detail::row_grain(x.cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t k = 0; k < blocks; ++k) {
        const float* v = x.row(r) + k * kBlock;
        float amax = 0;
        for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(v[j]));
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        PackedActivationBlock& b = out[r * blocks + k];
        int32_t sum = 0;
        for (int j = 0; j < kBlock; ++j) {
          const int q = static_cast<int>(std::round(v[j] * id));  // |q| <= 127
          b.q[j] = static_cast<uint8_t>(q + 128);
          sum += q;
        }
        b.d = d;
        b.dsum = d * static_cast<float>(sum);
      }
  });
  return out;
}

void PackedMatrix::multiply(ConstMatrixView<float> x, MatrixView<float> y) const {
  const std::string what = std::string(traits(format_).name) + " PackedMatrix::multiply: ";
  if (x.cols != cols_)
    throw Error(what + "activations have " + std::to_string(x.cols) + " columns, the weights " + std::to_string(cols_));
  if (y.rows != x.rows || y.cols != rows_)
    throw Error(what + "output is " + detail::dims(y.rows, y.cols) + ", expected " + detail::dims(x.rows, rows_) +
                " (batch x weight rows)");
  if (x.stride < x.cols || y.stride < y.cols) throw Error(what + "a row stride is smaller than its row length");
  if (x.rows == 0 || rows_ == 0) return;
  if (cols_ == 0) {
    for (int64_t b = 0; b < y.rows; ++b) std::fill(y.row(b), y.row(b) + y.cols, 0.0f);
    return;
  }
  if (x.data == nullptr || y.data == nullptr) throw Error(what + "a buffer is null");
  const std::vector<PackedActivationBlock> acts = pack_activations(x);
  const PackedGemmFn gemm = packed_gemm_kernels().select(PackedGemmKey{}).fn;
  // Groups of eight panels x chunks of 64 activation rows, each task one fixed piece
  // of y. A call covers a group, so that a kernel can prepare each activation tile
  // once for eight panels. A call cycles each panel (704 bytes a block) through the
  // chunk's activations (40 bytes a block, 320 KB at 4096 columns) and, on AVX2, their
  // signed codes (32 bytes a block): more than a 512 KB L2 holds at 4096 columns.
  // Chunks of 32 rows, whose activations and codes fit there, measured the same within
  // the noise on Zen 3 (docs/benchmarks.md, "Packed GEMM: one activation conversion").
  constexpr int64_t kBatchChunk = 64, kGroupRows = 8 * kPanelRows;
  const int64_t groups = (rows_ + kGroupRows - 1) / kGroupRows;
  const int64_t chunks = (x.rows + kBatchChunk - 1) / kBatchChunk;
  parallel_for(groups * chunks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t g = t % groups, c = t / groups;
      const int64_t b0 = c * kBatchChunk, nb = std::min(kBatchChunk, x.rows - b0);
      const int rows = static_cast<int>(std::min(kGroupRows, rows_ - g * kGroupRows));
      gemm(panels_.data() + g * (kGroupRows / kPanelRows) * blocks_, acts.data() + b0 * blocks_, blocks_, nb,
           y.row(b0) + g * kGroupRows, y.stride, rows);
    }
  });
}

}  // namespace lowbit
