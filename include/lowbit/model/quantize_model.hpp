#pragma once
// Quantizing a whole GGUF model: every tensor gets llama-quantize's type for the
// chosen scheme (quant_rules.hpp), its importance from an imatrix when one is given,
// and is quantized with one of three methods. `lowbit quantize` is a thin layer over
// this (it parses arguments, loads files and prints); docs/api.md and docs/cli.md
// describe the behaviour.
//
//   auto opts = lowbit::QuantizeModelOptions{*lowbit::quant_scheme_from_name("Q4_K_M")};
//   opts.imatrix = lowbit::importance_map(lowbit::load_imatrix("imatrix.gguf"));  // optional
//   const lowbit::GgufFile in = lowbit::GgufFile::open("model-f16.gguf");
//   const lowbit::QuantizePlan plan = lowbit::plan_model_quantization(in, opts);
//   lowbit::quantize_model(in, plan, opts).write("model-Q4_K_M.gguf");
//
// The output bytes do not depend on the thread count.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/formats/effort.hpp"
#include "lowbit/formats/format.hpp"
#include "lowbit/gptq/hessian.hpp"
#include "lowbit/gptq/solver.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/gguf_stream.hpp"
#include "lowbit/io/imatrix.hpp"
#include "lowbit/model/gptq_calibration.hpp"
#include "lowbit/model/quant_rules.hpp"

namespace lowbit {

enum class QuantMethod {
  rtn,   // each format's own quantizer (lowbit::quantize), importance-weighted with an imatrix
  gsq,   // GSQ's mse search (importance search with an imatrix) in the configuration whose
         // math is the target's (gsq_config_for): targets Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 only
  gptq,  // GPTQ into each tensor's target format (GgmlTarget); needs Hessians
};
std::optional<QuantMethod> quant_method_from_name(std::string_view name);  // "rtn", "gsq", "gptq"
std::string_view to_string(QuantMethod method);

// How an imatrix weighs each element's squared error in rtn's scale searches:
//   pure        importance[col]: the layer's expected output error (lowbit's default)
//   ggml_blend  importance[col] x sqrt(sigma2 + w^2), sigma2 = 2 x mean(w^2) over the
//               element's 256-element super-block (or its row, 32-element formats):
//               ggml's weighting, which also favours large weights
enum class ImportanceObjective { pure, ggml_blend };

// Importance per weight name: the mean of x^2 per input column (llama.cpp's imatrix).
// A tensor's entry holds ne0 values shared by all its matrices, or ne0 x n_mat values
// (one vector per expert matrix of a 3-D tensor), each finite and non-negative.
using ImportanceMap = std::map<std::string, std::vector<float>, std::less<>>;
// The importance of every entry of an imatrix file (io/imatrix.hpp).
ImportanceMap importance_map(const Imatrix& imatrix);

// Where GPTQ finds a tensor's Hessian (cols x cols for rows of cols elements).
struct HessianSource {
  // The Hessian of tensor `name`, or nullptr when there is none: that tensor is then
  // quantized with rtn (logged).
  std::function<std::shared_ptr<const HessianAccumulator>(const std::string& name)> get;
  // Optional: where `name`'s Hessian is looked for, used in messages (a file path).
  std::function<std::string(const std::string& name)> describe;
};
// Files <dir>/tensor_file_name(name, ".hess") written by HessianAccumulator::save
// (lowbit/io/files.hpp escapes path separators, a leading dot and control bytes as
// %XX, so no tensor name reaches outside <dir>).
HessianSource hessians_from_directory(const std::filesystem::path& dir);
// Hessians held in memory, by tensor name.
HessianSource hessians_from_map(std::map<std::string, HessianAccumulator, std::less<>> hessians);

// One tensor of a plan, in file order.
struct PlannedTensor {
  std::string name;
  std::vector<int64_t> shape;       // GGUF order: shape[0] = ne0, the row length
  Format from = Format::F32;        // the stored type
  TensorPlan plan;                  // plan.format: the type written
  std::vector<float> importance;    // empty, or slices x ne0 values (one vector per matrix)
  int64_t slices = 1;               // matrices in the tensor: the product of shape[2..] (experts)
  uint64_t bytes_in = 0, bytes_out = 0;

  Format to() const { return plan.format; }
  // False: the tensor is copied unchanged (its target type is its stored type).
  bool converts() const { return plan.format != from; }
  int64_t elements() const;
};

struct QuantizePlan {
  ModelInfo model;                     // the facts the rules used (has_imatrix included)
  std::vector<PlannedTensor> tensors;  // every tensor of the file, in file order
  int fallbacks = 0;                   // tensors whose row length forced another type
  int64_t work = 0;                    // elements to convert: the progress total
  int64_t elements = 0;                // elements of all tensors
  uint64_t bytes_in = 0, bytes_out = 0;
};

struct QuantizeModelOptions {
  QuantScheme scheme;  // what to make: quant_scheme_from_name("Q4_K_M"), ...
  // llama-quantize's per-tensor options (--tensor-type, --output-tensor-type, ...);
  // --pure is scheme.pure.
  TensorTypeOverrides overrides;
  // --target-bpw: when set, every quantizable tensor's type is chosen to minimise the
  // model's importance-weighted error with the whole file (every tensor's bytes) at
  // most this many bits per weight (model/bpw_allocation.hpp). Overrides still win.
  std::optional<double> target_bpw;
  // With target_bpw: a text (text, ctx, chunks; on_hessian unused) on which each block
  // weight's error is scaled by its measured effect on the model's output, the mean KL
  // divergence of the next-token distribution when that weight alone is quantized
  // (llama-architecture models, lowbit's runtime). docs/cli.md, `--target-bpw`.
  std::optional<GptqCalibration> target_bpw_calibration;
  // write_quantized_model: split the output (gguf-split's convention) ...
  GgufSplitLimits split;
  // ... and continue the partial output of an interrupted run (io/gguf_stream.hpp).
  bool resume = false;
  QuantMethod method = QuantMethod::rtn;
  // How hard each block quantizer searches (rtn, GPTQ's fallback and --target-bpw's
  // error measurements); lowbit/formats/effort.hpp.
  QuantizeEffort effort = QuantizeEffort::standard;
  // What an imatrix weighs in rtn's searches at effort standard and best (fast is
  // ggml's own quantizer, which always blends). docs/cli.md, `--imatrix-objective`.
  ImportanceObjective importance_objective = ImportanceObjective::pure;
  // Given (even if empty): importance-weighted quantization, and the imatrix-dependent
  // rules switch on. A tensor missing from it is quantized without (logged).
  std::optional<ImportanceMap> imatrix;
  // QuantMethod::gptq needs one of these two: Hessians computed beforehand (e.g. by
  // lowbit::calibrate on the unquantized model) ...
  HessianSource hessians;
  // ... or a calibration text for true-sequential GPTQ on lowbit's llama runtime
  // (lowbit/model/gptq_calibration.hpp): each block's Hessians from the outputs of the
  // blocks already quantized. Only with QuantMethod::gptq, without `hessians` and
  // `imatrix` (the importance comes from the calibration itself); the plan uses the
  // imatrix-dependent rules, as for a model quantized with an imatrix.
  std::optional<GptqCalibration> calibration;
  GptqConfig gptq;         // GPTQ's settings (the defaults are `lowbit quantize`'s)
  int threads = 0;         // worker threads for this call; 0: lowbit's setting (set_num_threads)
  // Called on the calling thread as work proceeds: elements converted so far, out of
  // plan.work (each tensor in chunks of about 4M elements).
  std::function<void(int64_t done, int64_t total)> progress;
  // Called on the calling thread after each tensor (in file order) has been added.
  std::function<void(const PlannedTensor& tensor)> on_tensor;
  // Optional: polled on the calling thread before each tensor and after each progress
  // step (right after `progress` is called). Returning true stops the work: quantize_model
  // throws QuantizeCancelled, and the one-call form writes no output file.
  std::function<bool()> cancelled;
};

// What quantize_model throws when QuantizeModelOptions::cancelled returned true (an
// Error, so code that only catches Error still stops; catch this first to tell it apart).
class QuantizeCancelled : public Error {
 public:
  QuantizeCancelled() : Error("quantize_model: cancelled") {}
};

// Chooses every tensor's type and attaches its importance, before any work, so a
// tensor the method cannot take fails early. Throws lowbit::Error naming the tensor:
// a layer index the rules need but cannot read, a GSQ target GSQ cannot write, an
// importance vector of the wrong length (ignored, with a warning, on token_embd).
// Logs (info) the model facts, each row-length fallback and each tensor without
// importance, and (warn) the number of fallbacks.
QuantizePlan plan_model_quantization(const GgufFile& model, const QuantizeModelOptions& options);

// Quantizes the model as planned into a GGUF writer ready to write(): metadata copied
// in file order with general.file_type (scheme.file_type) and
// general.quantization_version = 2 set and the shard keys (split.*) dropped; tensors in
// file order, quantized inputs decoded to f32 first, tensors kept as stored borrowed
// from `model` (which must outlive the writer). Throws lowbit::Error prefixed with
// "tensor 'NAME' (FROM -> TO): ".
GgufWriter quantize_model(const GgufFile& model, const QuantizePlan& plan, const QuantizeModelOptions& options);

// The name under which GPTQ looks for the Hessian of expert `expert` of a 3-D tensor
// ("blk.0.ffn_down_exps.weight#3"); an expert without one uses the tensor's own name's
// Hessian (shared by all experts), else rtn with its importance (logged).
std::string expert_hessian_name(std::string_view tensor, int64_t expert);

// Quantizes the model as planned straight into `out`, tensor by tensor
// (GgufStreamWriter: temporary "<file>.partial" beside each output, renamed when
// complete), split per options.split, resumed per options.resume. At most one tensor's
// output (plus its f32 copy while it is converted) is held in memory, and the input
// pages of each tensor are released (GgufFile::release) once it is written, so peak
// resident memory is bounded by the largest tensors, not by the model (docs/cli.md).
// Returns the files written. An error removes the partial files, and so does a
// cancellation (QuantizeCancelled) unless options.resume is set, when they stay for
// the next resumed run; an interrupted process (a signal, kill -9) leaves them.
std::vector<std::filesystem::path> write_quantized_model(const GgufFile& model, const QuantizePlan& plan,
                                                         const QuantizeModelOptions& options,
                                                         const std::filesystem::path& out);

// All of it: opens `in`, plans, quantizes and writes `out` (write_quantized_model). Returns the plan.
QuantizePlan quantize_model(const std::filesystem::path& in, const std::filesystem::path& out,
                            const QuantizeModelOptions& options);

}  // namespace lowbit
