#pragma once
// Element-level access to the GGML block formats, for code that picks every
// element's code itself under block scales it keeps fixed (GPTQ into a block format).
//
// Every block format decodes an element as  value = scale * level  or
// value = scale * level + offset, where (scale, offset) is shared by a sub-block
// (32, 16 or 256 elements) and `level` is a small integer or, for IQ4_NL / IQ4_XS,
// an entry of the 16-value code book. The codec exposes exactly that view, with
// (scale, offset) multiplied out in the dequantizer's own float order, so
// decode() equals the format's dequantizer bit for bit (this file's users are
// compiled with -ffp-contract=off, like the dequantizers).
#include <cstdint>

#include "lowbit/formats/format.hpp"

namespace lowbit::kernels {

// One sub-block's affine map. For formats with a min (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K)
// `offset` is the added term: +m for Q4_1/Q5_1, -(dmin * m) for the K-quants
// (x - y and x + (-y) round identically, so one form serves both).
struct SubBlockMap {
  float scale = 0.0f;
  float offset = 0.0f;
};

struct BlockCodec {
  Format format;
  int block_elems;
  int block_bytes;
  int sub_elems;             // elements sharing one SubBlockMap
  int level_min, level_max;  // levels the format's quantizer emits (code-book formats: indices 0..15)
  const int8_t* table;       // non-null: level l decodes through table[l] (the IQ4 code book)
  bool has_offset;           // value = scale * level + offset; otherwise scale * level

  SubBlockMap (*sub_map)(const void* block, int sub);
  int (*get_level)(const void* block, int e);
  void (*set_level)(void* block, int e, int level);  // level within [level_min, level_max]
  // Recomputes fields derived from the levels (Q8_1's s, Q8_K's bsums); null when none.
  void (*finish)(void* block);

  // The value `level` decodes to under `m`, in the dequantizer's float order.
  float decode(SubBlockMap m, int level) const {
    const auto l = static_cast<float>(table != nullptr ? table[level] : level);
    return has_offset ? m.scale * l + m.offset : m.scale * l;
  }
};

// The codec of a block format; nullptr for the plain float formats (F32, F16, BF16).
const BlockCodec* block_codec(Format f);

}  // namespace lowbit::kernels
