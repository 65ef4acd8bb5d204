#pragma once
// Hugging Face GPTQ checkpoints (AutoGPTQ / GPTQModel layout) on disk: one
// model.safetensors holding, for every quantized linear layer `name`,
//   name.qweight  I32 [in * bits / 32, out]
//   name.qzeros   I32 [groups, out * bits / 32]
//   name.scales   F16 [groups, out]
//   name.g_idx    I32 [in]
// and quantize_config.json beside it (gptq/quantize_config.hpp).
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "lowbit/gptq/solver.hpp"
#include "lowbit/gsq/config.hpp"
#include "lowbit/gsq/hf_layout.hpp"

namespace lowbit {

struct HfGptqLayer {
  std::string name;  // e.g. "model.layers.0.self_attn.q_proj"
  HfGptqTensors tensors;
};

// A tensor a checkpoint keeps unquantized (embeddings, norms, lm_head), in fp16.
struct HfDenseTensor {
  std::string name;               // e.g. "model.embed_tokens.weight"
  std::vector<uint64_t> shape;    // outermost dimension first, as PyTorch lists it
  std::vector<uint16_t> fp16;     // row-major, fp16 bits
};

// Writes dir/model.safetensors and dir/quantize_config.json (both atomically; the
// folder must exist). Every layer must have been exported with the same bits,
// group size, symmetry and format version as `gsq` / `format_version` say; a
// mismatch is an Error naming the layer. `dense` tensors follow the layers in
// model.safetensors (a size that does not match the shape is an Error naming it).
void save_hf_gptq_checkpoint(const std::filesystem::path& dir, std::span<const HfGptqLayer> layers,
                             const GsqConfig& gsq, const GptqConfig& gptq, int format_version = 2,
                             std::span<const HfDenseTensor> dense = {});

// Reads a checkpoint written by lowbit or by AutoGPTQ / GPTQModel (single file):
// quantize_config.json gives bits, group size, symmetry and the zero convention
// ("checkpoint_format": "gptq" = v1, "gptq_v2" = v2; absent = v1, AutoGPTQ's
// default); the layers are every `*.qweight` with its three companions. Every JSON
// value is type- and range-checked before use ("bits" an integer in [1, 32],
// "group_size" an integer in [-1, 2^31 - 1], "sym" a boolean, "checkpoint_format" a
// string); dtypes, dimensions and a .qweight with a zero dimension are checked;
// errors name the file and the key or tensor. from_hf_gptq validates the rest.
std::vector<HfGptqLayer> load_hf_gptq_checkpoint(const std::filesystem::path& dir);

}  // namespace lowbit
