#pragma once
// Model-level quantization policy: which format each tensor of a model gets, with
// llama-quantize's per-tensor rules (llama.cpp src/llama-quant.cpp), so a file
// quantized by lowbit has the same tensor types as one made by llama-quantize.
//
// A QuantScheme is what the user names on the command line: a llama-quantize
// mixture (Q4_K_M, ...) or a single format (Q8_0, ...). plan_tensor() is a pure
// function of the scheme, a few model facts and one tensor's name, shape and
// current type; docs/cli.md lists every rule.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lowbit/formats/format.hpp"

namespace lowbit {

class GgufFile;

struct QuantScheme {
  std::string name;        // canonical spelling: "Q4_K_M", "Q8_0", ...
  uint32_t file_type = 0;  // llama.cpp's LLAMA_FTYPE id, written as general.file_type
  Format base = Format::F32;  // the format of every tensor no rule singles out
  // No mixture rules: every quantizable tensor (output.weight included) gets `base`,
  // as llama-quantize --pure does. Used for Q3_K, Q4_K and Q5_K named alone, which
  // have no llama.cpp file type of their own.
  bool pure = false;
};

// Looks a scheme up by name, case-insensitively. Mixtures: Q2_K, Q3_K_S, Q3_K_M,
// Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K. Single formats: Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, Q3_K, Q4_K, Q5_K, IQ4_NL, IQ4_XS, F16, BF16, F32.
std::optional<QuantScheme> quant_scheme_from_name(std::string_view name);
// Every accepted name, in display order.
std::span<const std::string_view> quant_scheme_names();

// The model facts the rules depend on.
struct ModelInfo {
  std::string architecture;  // general.architecture ("llama", "falcon", ...)
  int64_t n_layer = 0;       // <arch>.block_count
  int64_t n_head = 0;        // <arch>.attention.head_count (layer 0 when per-layer)
  int64_t n_head_kv = 0;     // <arch>.attention.head_count_kv (0: same as n_head)
  int64_t n_expert = 0;      // <arch>.expert_count
  // The model has an output.weight tensor; without one the output projection is
  // tied to token_embd.weight, which then gets the output tensor's type.
  bool has_output = true;
  bool has_imatrix = false;  // an importance matrix is used (changes a few rules)

  // Query heads per KV head (llama.cpp's n_gqa()); 0 when unknown.
  int64_t n_gqa() const;
  // Reads the facts from a GGUF file's metadata and tensor names. Throws Error
  // naming the key when a present key has the wrong type.
  static ModelInfo from_gguf(const GgufFile& file);
};

// llama-quantize's test for tensors it may change at all: at least 2 dimensions
// (counting like ggml_n_dims, trailing 1s ignored), a name ending in "weight",
// and not a norm, MoE router, positional embedding or one of the small special
// tensors it lists. Anything else keeps its stored type.
bool tensor_is_quantizable(std::string_view name, std::span<const int64_t> shape);

struct TensorPlan {
  Format format = Format::F32;  // the target type
  bool quantizable = false;     // false: kept as stored (format == current)
  // Set when the chosen type did not fit the row length (ne0) and llama.cpp's
  // fallback replaced it: the type the rules wanted.
  std::optional<Format> fallback_from;
  bool overridden = false;  // a TensorTypeOverrides option chose the type
};

// llama-quantize's per-tensor options. Each applies only to tensors
// tensor_is_quantizable() accepts; the row-length fallback follows them.
struct TensorTypeOverrides {
  // --tensor-type REGEX=TYPE: a tensor whose name the ECMAScript regex matches anywhere
  // (std::regex_search) gets TYPE; when several match, the last given wins. Not applied
  // with a pure scheme or a plain float one (F16, BF16, F32), as in llama-quantize.
  std::vector<std::pair<std::string, Format>> tensor_types;
  std::optional<Format> output_tensor_type;    // --output-tensor-type: output.weight
  std::optional<Format> token_embedding_type;  // --token-embedding-type: token_embd.weight
  bool leave_output_tensor = false;            // --leave-output-tensor: output.weight kept as stored
  bool empty() const {
    return tensor_types.empty() && !output_tensor_type && !token_embedding_type && !leave_output_tensor;
  }
};

// The type llama-quantize would give tensor `name` (GGUF shape order: shape[0] is
// the row length ne0) under `scheme`. The layer index is read from a "blk.N."
// prefix. Throws Error for a layer index outside [0, n_layer) on a tensor whose
// rule needs one.
TensorPlan plan_tensor(const QuantScheme& scheme, const ModelInfo& model, std::string_view name,
                       std::span<const int64_t> shape, Format current);
// The same with llama-quantize's per-tensor options applied (an invalid regex is an
// Error naming it).
TensorPlan plan_tensor(const QuantScheme& scheme, const ModelInfo& model, std::string_view name,
                       std::span<const int64_t> shape, Format current, const TensorTypeOverrides& overrides);

}  // namespace lowbit
