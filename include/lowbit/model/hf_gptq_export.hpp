#pragma once
// A llama-architecture GGUF model quantized with true-sequential GPTQ into a Hugging
// Face GPTQ checkpoint (the AutoGPTQ / GPTQModel layout that transformers, optimum,
// vLLM and other GPU engines load): `lowbit quantize IN.gguf OUT_DIR GPTQ_INT4
// --method gptq --calib TEXT`.
//
//   lowbit::HfGptqExportOptions opts;
//   opts.gsq.bits = 4, opts.gsq.group_size = 128;
//   opts.calibration.text = text;  // lowbit/model/gptq_calibration.hpp
//   lowbit::export_hf_gptq("model-f16.gguf", "model-gptq-int4/", opts);
//
// The block weights (per layer q/k/v/o and gate/up/down) are quantized block by block
// exactly as sequential GPTQ into GGML formats does it (model/gptq_calibration.hpp),
// each with GsqTarget, the GPTQ checkpoints' own math; the runtime goes on with their
// decoded values. Everything else is stored dense in fp16, as AutoGPTQ leaves it.
// Names follow transformers' LlamaForCausalLM (blk.N.attn_q -> model.layers.N.
// self_attn.q_proj, token_embd -> model.embed_tokens, ...), and q_proj / k_proj rows
// are put back in Hugging Face's order (llama.cpp's converter interleaves each head's
// two rotary halves; docs/gptq.md). The folder gets:
//   model.safetensors     every layer's qweight / qzeros / scales / g_idx, the dense
//                         tensors in fp16
//   quantize_config.json  bits, group_size, desc_act, sym, checkpoint_format, ...
//   config.json           LlamaForCausalLM's configuration from the GGUF's
//                         hyperparameters, with quantization_config
// Tokenizer files are not written (copy them from the source model). model.safetensors
// is streamed as the blocks are done (SafetensorsStreamWriter), so memory is sequential
// GPTQ's (one block's Hessians plus the windows' activations) plus one block's
// quantized layers; each file is written atomically, model.safetensors first.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "lowbit/gptq/solver.hpp"
#include "lowbit/gsq/config.hpp"
#include "lowbit/model/gptq_calibration.hpp"

namespace lowbit {

struct HfGptqExportOptions {
  // bits (2, 3, 4 or 8), group_size (0: one group per row, "group_size": -1), scheme
  // (symmetric or asymmetric: integer zeros) and the group fit's search. The defaults
  // are AutoGPTQ's: 4 bits, groups of 128, symmetric, min/max (rtn) group fits.
  GsqConfig gsq = default_gsq();
  GptqConfig gptq;                 // act_order is quantize_config.json's desc_act
  GptqCalibration calibration;     // the text whose windows make the Hessians
  // 1: "checkpoint_format": "gptq" (zero - 1 stored, what transformers and AutoGPTQ
  // read), 2: "gptq_v2" (GPTQModel). 0 picks 1 for symmetric and 2 for asymmetric
  // schemes (v1 cannot store an asymmetric group's zero point of 0).
  int format_version = 0;
  int threads = 0;  // 0: lowbit's setting (set_num_threads)
  // Called on the calling thread after each quantized layer: its input elements
  // done so far, out of the total of all block weights.
  std::function<void(int64_t done, int64_t total)> progress;

  static GsqConfig default_gsq() {
    GsqConfig g;
    g.bits = 4;
    g.group_size = 128;
    g.scheme = GsqScheme::symmetric;
    g.search = ScaleSearch::rtn;
    return g;
  }
};

struct HfGptqExportReport {
  std::vector<std::filesystem::path> files;  // written, in order
  int64_t quantized_layers = 0, dense_tensors = 0;
  int format_version = 0;
  uint64_t bytes = 0;             // model.safetensors' size
  double bits_per_weight = 0;     // of the quantized layers (codes, scales, zeros, g_idx)
};

// Writes the checkpoint into folder `dir` (created if missing; its parent must exist;
// other files in it are left alone). Throws lowbit::Error before any work for: an
// architecture other than llama, a tensor without a Hugging Face name (named), a
// configuration GPTQ checkpoints cannot hold (float minimums, double quantization,
// other bits), a layer whose input features do not hold whole groups or whose
// features times bits are not a multiple of 32 (named, with the group sizes that
// would fit) and the calibration errors of sequential GPTQ; during it for a dense
// tensor whose values overflow fp16 (named). A failure while model.safetensors is made
// leaves no part of it (the streamed temporary is removed) and removes `dir` if this
// call created it. Results do not depend on the thread count.
HfGptqExportReport export_hf_gptq(const std::filesystem::path& in, const std::filesystem::path& dir,
                                  const HfGptqExportOptions& options);

// The Hugging Face (transformers LlamaForCausalLM) name of a llama GGUF tensor, without
// the ".weight" suffix for the quantized linear layers' prefixes: "blk.3.attn_q.weight"
// -> "model.layers.3.self_attn.q_proj.weight"; empty when it has none.
std::string hf_llama_tensor_name(const std::string& gguf_name);

}  // namespace lowbit
