#pragma once
// A weight matrix repacked once for batched products (prompt processing): 16-row
// panels whose codes are interleaved four columns at a time, the layout VNNI's
// dpbusd multiplies 64 at a time. Formats whose values are scale * level + offset
// over 32-element sub-blocks with 8-bit levels repack exactly: Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, IQ4_NL, Q4_K, Q5_K, IQ4_XS; so does Q3_K (its 16-element sub-blocks
// share d: levels -sc * l under the scale -d). Activations are quantized per 32 elements
// (d = amax / 127, round half away from zero), so the product is the dot path's kind
// of result (integer sums exact per block), not the f32 dequant path's.
//
// The repacked form holds 704 bytes per 16 x 32 weights (2.4x Q4_K): an engine keeps
// it for the prompt and the original blocks for generation, or only one of them.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/core/matrix_view.hpp"
#include "lowbit/formats/format.hpp"
#include "lowbit/kernels/kernel_table.hpp"

namespace lowbit {

// One 16-row x 32-column piece of a repacked matrix.
struct PackedPanelBlock {
  int8_t codes[8][16][4];  // [column group][row][column in group]: the 32 levels of each row
  float scale[16];         // value = scale * level + offset, per row of the block
  float offset[16];
  int32_t bias[16];        // 128 * sum of the row's levels (activations are stored + 128)
};
static_assert(sizeof(PackedPanelBlock) == 704);

// One 32-element block of a quantized activation row.
struct PackedActivationBlock {
  uint8_t q[32];  // code + 128
  float d;        // scale: x ~ d * code
  float dsum;     // d * sum(code): what an offset is multiplied by
};
static_assert(sizeof(PackedActivationBlock) == 40);

// y[b * ldy + r] = sum over the blocks of weight row r times activation row b, for
// r < rows and b < batch: rows 16 p..16 p + 15 are panel p, whose blocks start at
// panel + p * blocks (a call covers ceil(rows / 16) consecutive panels, the last one
// possibly partial, so that a variant can prepare each activation tile once for all of
// them); acts holds `batch` rows of `blocks` blocks each.
using PackedGemmFn = void (*)(const PackedPanelBlock* panel, const PackedActivationBlock* acts, int64_t blocks,
                              int64_t batch, float* y, int64_t ldy, int rows);
struct PackedGemmKey {
  bool operator==(const PackedGemmKey&) const = default;
};
std::string kernel_key_name(PackedGemmKey);
using PackedGemmKernel = KernelVariant<PackedGemmFn, PackedGemmKey>;
const KernelTable<PackedGemmFn, PackedGemmKey>& packed_gemm_kernels();

class PackedMatrix {
 public:
  // Whether f repacks exactly (the formats listed above).
  static bool supports(Format f);

  // Repacks a rows x cols matrix in format f. Throws Error for an unsupported format,
  // a row that is not whole blocks, or a short buffer.
  PackedMatrix(Format f, std::span<const std::byte> weights, int64_t rows, int64_t cols);

  // y = x W^T for x batch x cols, y batch x rows. Same argument checks as
  // lowbit::matmul; y's bytes do not depend on the thread count or the CPU.
  void multiply(ConstMatrixView<float> x, MatrixView<float> y) const;

  Format format() const { return format_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  size_t bytes() const { return panels_.size() * sizeof(PackedPanelBlock); }

 private:
  Format format_;
  int64_t rows_, cols_, blocks_;
  std::vector<PackedPanelBlock> panels_;  // panel p's blocks at [p * blocks_, (p + 1) * blocks_)
};

// Quantizes activation rows for PackedMatrix (exposed for tests and engines that
// reuse one batch against several matrices): rows x cols -> rows x cols/32 blocks.
std::vector<PackedActivationBlock> pack_activations(ConstMatrixView<float> x);

}  // namespace lowbit
