#pragma once
// The Hugging Face GPTQ checkpoint layout (AutoGPTQ / GPTQModel), for one linear layer:
//   qweight int32 [in * bits / 32, out]   codes packed along the input dimension, LSB first
//   qzeros  int32 [groups, out * bits / 32] zero points packed along the output dimension
//   scales  fp16  [groups, out]
//   g_idx   int32 [in]                      group of each input column
// Format v1 stores zero - 1 in qzeros (AutoGPTQ's historical convention), v2 the zero.
#include <cstdint>
#include <vector>

#include "lowbit/gsq/quantizer.hpp"

namespace lowbit {

struct HfGptqTensors {
  int bits = 4;
  int group_size = 128;       // -1 in quantize_config.json for per-channel; here the real length
  int64_t in_features = 0, out_features = 0;
  int format_version = 2;     // 1 or 2 (qzeros convention)
  bool sym = false;           // quantize_config.json "sym"
  std::vector<int32_t> qweight;   // row-major [in * bits / 32, out]
  std::vector<int32_t> qzeros;    // row-major [groups, out * bits / 32]
  std::vector<uint16_t> scales;   // row-major [groups, out], fp16 bits
  std::vector<int32_t> g_idx;     // [in]

  int64_t groups() const { return group_size > 0 ? in_features / group_size : 0; }
};

// Exports a GSQ result. Needs integer zero points (symmetric or asymmetric scheme),
// fp16 scale storage without double quantization, and in*bits and out*bits
// multiples of 32. v1 cannot store a zero point of 0 (zero - 1 = -1 does not fit
// in `bits` bits; AutoGPTQ silently wraps it to 2^bits - 1, corrupting the group):
// we throw an Error naming the row and group instead — use v2 or a symmetric scheme.
HfGptqTensors to_hf_gptq(const GsqResult& q, int format_version = 2);

// Imports HF tensors (validated: sizes, bits, group size, g_idx range, zero range)
// into a GSQ result that dequantizes identically. An act-order checkpoint (g_idx
// other than column / group_size) keeps its g_idx in the result.
GsqResult from_hf_gptq(const HfGptqTensors& t);

}  // namespace lowbit
