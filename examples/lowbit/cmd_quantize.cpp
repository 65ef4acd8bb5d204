// `lowbit quantize IN.gguf OUT.gguf TYPE`: a GGUF model quantized with
// llama-quantize's per-tensor rules and any lowbit method.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>

#include <spdlog/spdlog.h>

#include "cli.hpp"
#include "lowbit/io/imatrix.hpp"
#include "lowbit/lowbit.hpp"
#include "lowbit/model/quant_rules.hpp"

namespace lowbit::cli {
namespace {

enum class Method { rtn, gsq, gptq };

struct Options {
  std::string in, out;
  QuantScheme scheme;
  std::string imatrix, hessians;
  Method method = Method::rtn;
  int threads = 0;
  bool quiet = false;
};

void print_quantize_help() {
  std::printf(
      "usage: lowbit quantize IN.gguf OUT.gguf TYPE [--imatrix FILE] [--method rtn|gsq|gptq]\n"
      "                       [--hessians DIR] [--threads N] [--quiet]\n"
      "\n"
      "Quantizes a GGUF model. Each tensor's type follows llama-quantize's rules, so the\n"
      "output has the tensor types llama.cpp's own quantizer would give it\n"
      "(docs/cli.md lists them): 1-D tensors, norms and a few small special tensors\n"
      "keep their stored type; output.weight (and token_embd.weight when the output is\n"
      "tied to it) gets Q6_K; a row length that does not fit a 256-element format falls\n"
      "back to a 32-element one. Quantized inputs are decoded to f32 first. Metadata is\n"
      "copied; general.file_type and general.quantization_version are set; the output\n"
      "is written atomically (never a half-written file).\n"
      "\n"
      "TYPE: a llama-quantize mixture: Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S\n"
      "      Q5_K_M Q6_K, or a single format: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 IQ4_NL IQ4_XS\n"
      "      F16 BF16 F32 (with llama-quantize's rules for that file type), or Q3_K Q4_K\n"
      "      Q5_K (every quantizable tensor in that format, like llama-quantize --pure).\n"
      "\n"
      "  --imatrix FILE   llama.cpp importance matrix (llama-imatrix output, GGUF or the\n"
      "                   legacy .dat format): each tensor is quantized minimising the\n"
      "                   error weighted by its inputs' mean square\n"
      "  --method M       rtn (default): each format's own quantizer (lowbit's scale\n"
      "                   search); gsq: GSQ's mse search (importance search with\n"
      "                   --imatrix), for targets Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 only;\n"
      "                   gptq: GPTQ into each tensor's target format, needs --hessians\n"
      "  --hessians DIR   <tensor name>.hess files saved by HessianAccumulator::save;\n"
      "                   tensors without one are quantized with rtn (logged)\n"
      "  --threads N      worker threads (0 = all cores, the default); the output does\n"
      "                   not depend on it\n"
      "  --quiet          no progress bar and only warnings in the log\n"
      "\n"
      "Prints a per-tensor summary (name, shape, type in -> out, bytes) and the total\n"
      "size before and after on stdout.\n");
}

Options parse(Args& args) {
  Options o;
  std::vector<std::string> pos;
  while (!args.done()) {
    const std::string a = args.next();
    auto value = [&]() -> std::string {
      if (args.done()) throw UsageError(a + " needs a value");
      return args.next();
    };
    if (a == "--imatrix") o.imatrix = value();
    else if (a == "--hessians") o.hessians = value();
    else if (a == "--threads") o.threads = static_cast<int>(parse_int(a, value(), 0, 4096));
    else if (a == "--quiet") o.quiet = true;
    else if (a == "--method") {
      const std::string m = value();
      if (m == "rtn") o.method = Method::rtn;
      else if (m == "gsq") o.method = Method::gsq;
      else if (m == "gptq") o.method = Method::gptq;
      else throw UsageError("--method expects rtn, gsq or gptq, got '" + m + "'");
    } else if (a.starts_with("-") && a.size() > 1) throw UsageError("quantize: unknown option '" + a + "'");
    else pos.push_back(a);
  }
  if (pos.size() != 3)
    throw UsageError("quantize: expected IN.gguf OUT.gguf TYPE, got " + std::to_string(pos.size()) + " argument(s)");
  o.in = pos[0], o.out = pos[1];
  auto scheme = quant_scheme_from_name(pos[2]);
  if (!scheme) {
    std::string names;
    for (std::string_view n : quant_scheme_names()) names += (names.empty() ? "" : " ") + std::string(n);
    throw UsageError("quantize: unknown TYPE '" + pos[2] + "' (one of: " + names + ")");
  }
  o.scheme = *scheme;
  if (o.method == Method::gptq && o.hessians.empty()) throw UsageError("--method gptq needs --hessians DIR");
  if (o.method != Method::gptq && !o.hessians.empty()) throw UsageError("--hessians is only used by --method gptq");
  return o;
}

// The GSQ configuration whose math is format f's (gsq/ggml_mapping.hpp).
std::optional<GsqConfig> gsq_config_for(Format f, bool with_importance) {
  GsqConfig c;
  c.group_size = 32;
  c.scale_storage = ScaleStorage::fp16;
  c.search = with_importance ? ScaleSearch::importance : ScaleSearch::mse;
  switch (f) {
    case Format::Q4_0: c.bits = 4, c.scheme = GsqScheme::symmetric; break;
    case Format::Q4_1: c.bits = 4, c.scheme = GsqScheme::asymmetric_float; break;
    case Format::Q5_0: c.bits = 5, c.scheme = GsqScheme::symmetric; break;
    case Format::Q5_1: c.bits = 5, c.scheme = GsqScheme::asymmetric_float; break;
    case Format::Q8_0: c.bits = 8, c.scheme = GsqScheme::symmetric; break;
    default: return std::nullopt;
  }
  return c;
}

struct Job {
  const GgufTensorInfo* info;
  TensorPlan plan;
  std::vector<float> importance;  // empty, or slices x ne0
  int64_t slices = 1;             // matrices in the tensor (experts): product of shape[2..]
};

// The importance for one tensor from the imatrix: one vector per row length, shared
// by all slices or one per slice (MoE experts), as llama-quantize maps it.
void attach_importance(const Imatrix& im, Job& job) {
  const GgufTensorInfo& t = *job.info;
  const ImatrixEntry* e = im.find(t.name);
  if (!e) {
    logger()->info("{}: no importance data in the imatrix, quantized without", t.name);
    return;
  }
  const int64_t ne0 = t.row_length();
  const size_t n = e->importance.size();
  if (n == static_cast<size_t>(ne0 * job.slices)) {
    job.importance = e->importance;
  } else if (n == static_cast<size_t>(ne0)) {
    job.importance.reserve(static_cast<size_t>(ne0 * job.slices));
    for (int64_t s = 0; s < job.slices; ++s) job.importance.insert(job.importance.end(), e->importance.begin(), e->importance.end());
  } else if (t.name == "token_embd.weight" || t.name == "per_layer_token_embd.weight") {
    // Embedding lookups are not matrix products; llama.cpp ignores a mismatch here too.
    logger()->warn("{}: imatrix has {} values for a row length of {}: ignored", t.name, n, ne0);
  } else {
    throw Error("imatrix entry '" + t.name + "' has " + std::to_string(n) + " values but the tensor needs " +
                std::to_string(ne0) + " (row length) or " + std::to_string(ne0 * job.slices) + " (per matrix)");
  }
}

// Rows are quantized in chunks of about this many elements so the progress bar moves.
constexpr int64_t kChunkElements = int64_t{1} << 22;

std::vector<std::byte> quantize_rtn(Format f, const std::vector<float>& w, int64_t rows, int64_t cols,
                                    const std::vector<float>& imp, int64_t rows_per_slice, Progress& progress) {
  std::vector<std::byte> out(quantized_size(f, rows, cols));
  const size_t rb = row_bytes(f, cols);
  const int64_t chunk = std::max<int64_t>(1, kChunkElements / cols);
  for (int64_t r0 = 0; r0 < rows;) {
    const int64_t slice = r0 / rows_per_slice;
    const int64_t r1 = std::min({rows, r0 + chunk, (slice + 1) * rows_per_slice});  // never cross a slice
    std::span<const float> slice_imp;
    if (!imp.empty()) slice_imp = std::span<const float>(imp).subspan(static_cast<size_t>(slice * cols), static_cast<size_t>(cols));
    quantize(f, {w.data() + r0 * cols, r1 - r0, cols}, std::span<std::byte>(out).subspan(static_cast<size_t>(r0) * rb, static_cast<size_t>(r1 - r0) * rb),
             slice_imp);
    progress.advance(double((r1 - r0) * cols));
    r0 = r1;
  }
  return out;
}

std::vector<std::byte> quantize_gsq(Format f, const std::vector<float>& w, int64_t cols, const Job& job,
                                    Progress& progress) {
  const int64_t rows_per_slice = job.info->rows() / job.slices;
  std::vector<std::byte> out;
  for (int64_t s = 0; s < job.slices; ++s) {
    std::span<const float> imp;
    if (!job.importance.empty())
      imp = std::span<const float>(job.importance).subspan(static_cast<size_t>(s * cols), static_cast<size_t>(cols));
    const GsqConfig cfg = *gsq_config_for(f, !imp.empty());
    const GsqResult q = gsq_quantize(cfg, {w.data() + s * rows_per_slice * cols, rows_per_slice, cols}, imp);
    const std::vector<std::byte> bytes = to_ggml_blocks(q);
    out.insert(out.end(), bytes.begin(), bytes.end());
    progress.advance(double(rows_per_slice * cols));
  }
  return out;
}

// GPTQ when a Hessian for the tensor exists; nullopt to fall back to rtn.
std::optional<std::vector<std::byte>> quantize_gptq(Format f, const std::vector<float>& w, int64_t rows, int64_t cols,
                                                    const Job& job, const std::string& dir) {
  const std::string& name = job.info->name;
  const std::filesystem::path file = std::filesystem::path(dir) / (name + ".hess");
  if (!std::filesystem::exists(file)) {
    logger()->info("{}: no Hessian ({}), quantized with rtn", name, file.string());
    return std::nullopt;
  }
  if (job.slices != 1) {
    logger()->info("{}: GPTQ takes 2-D weights, this one has {} matrices: quantized with rtn", name, job.slices);
    return std::nullopt;
  }
  const HessianAccumulator h = HessianAccumulator::load(file.string());
  if (h.cols() != cols)
    throw Error(file.string() + ": Hessian for " + std::to_string(h.cols()) + " columns, tensor '" + name + "' has " +
                std::to_string(cols));
  const std::vector<float> imp = job.importance.empty() ? h.importance() : job.importance;
  GgmlTarget target(f, imp);
  const GptqReport rep = gptq_solve(GptqConfig{}, {w.data(), rows, cols}, h, target);
  if (rep.damp_retries > 0) logger()->info("{}: GPTQ damping raised to {:.3f}", name, rep.damp_percent_used);
  return target.result();
}

std::string ftype_line(const QuantScheme& s) {
  return s.name + " (general.file_type " + std::to_string(s.file_type) + ")";
}

}  // namespace

int run_quantize(Args args) {
  for (const auto& a : args.items)
    if (a == "-h" || a == "--help") {
      print_quantize_help();
      return 0;
    }
  const Options o = parse(args);
  setup_logging(o.quiet);
  set_num_threads(o.threads);

  const GgufFile in = GgufFile::open(o.in);
  // Fail before the work, not after it, when the output cannot be created.
  const std::filesystem::path out_dir = std::filesystem::absolute(o.out).parent_path();
  if (!std::filesystem::is_directory(out_dir))
    throw Error("output " + o.out + ": folder " + out_dir.string() + " does not exist");
  std::optional<Imatrix> imatrix;
  if (!o.imatrix.empty()) {
    imatrix = load_imatrix(o.imatrix);
    logger()->info("imatrix {}: {} entries{}", o.imatrix, imatrix->entries.size(),
                   imatrix->legacy ? " (legacy .dat format)" : "");
  }
  if (!o.hessians.empty() && !std::filesystem::is_directory(o.hessians))
    throw Error("--hessians " + o.hessians + ": not a directory");

  ModelInfo model = ModelInfo::from_gguf(in);
  model.has_imatrix = imatrix.has_value();
  logger()->info("{}: {} tensors, architecture '{}', {} layers, GQA {}; target {}", o.in, in.tensors().size(),
                 model.architecture, model.n_layer, model.n_gqa(), ftype_line(o.scheme));

  // Plan every tensor first, so a tensor the method cannot take fails before any work.
  std::vector<Job> jobs;
  double work = 0;
  int fallbacks = 0;
  for (const GgufTensorInfo& t : in.tensors()) {
    Job job{&t, plan_tensor(o.scheme, model, t.name, t.shape, t.format), {}, 1};
    for (size_t d = 2; d < t.shape.size(); ++d) job.slices *= t.shape[d];
    if (job.slices == 0) job.slices = 1;  // an empty tensor: nothing to split
    if (job.plan.fallback_from) {
      ++fallbacks;
      logger()->info("{}: row length {} does not fit {}: using {}", t.name, t.row_length(),
                     traits(*job.plan.fallback_from).name, traits(job.plan.format).name);
    }
    const bool convert = job.plan.format != t.format;
    if (convert && o.method == Method::gsq && traits(job.plan.format).quantized && !gsq_config_for(job.plan.format, false))
      throw Error("--method gsq: tensor '" + t.name + "' needs type " + std::string(traits(job.plan.format).name) +
                  " under " + o.scheme.name + ", and GSQ only writes Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0");
    if (convert) {
      if (imatrix && traits(job.plan.format).quantized) attach_importance(*imatrix, job);
      work += double(t.elements());
    }
    jobs.push_back(std::move(job));
  }
  if (fallbacks)
    logger()->warn("{} tensor(s) have a row length their type cannot hold and fall back to another type "
                   "(as llama-quantize does; the summary shows which)", fallbacks);

  GgufWriter writer;
  writer.copy_metadata(in);
  writer.set("general.quantization_version", GgufValue(uint32_t{2}));
  writer.set("general.file_type", GgufValue(o.scheme.file_type));
  // A single output file: drop the input's shard bookkeeping, as llama-quantize does.
  for (const char* key : {"split.no", "split.count", "split.tensors.count"}) writer.remove(key);

  std::printf("%-48s %-22s %-15s %14s %14s\n", "tensor", "shape", "type", "bytes in", "bytes out");
  uint64_t total_in = 0, total_out = 0;
  Progress progress("quantizing", work, o.quiet);
  for (const Job& job : jobs) {
    const GgufTensorInfo& t = *job.info;
    const Format to = job.plan.format;
    size_t out_bytes = t.nbytes;
    if (to == t.format) {
      writer.add_tensor(t.name, t.shape, t.format, in.data(t));  // kept as stored (borrowed bytes)
    } else {
      try {
        const int64_t cols = t.row_length(), rows = t.rows();
        std::vector<float> w(static_cast<size_t>(t.elements()));
        dequantize(t.format, in.data(t), {w.data(), rows, cols});
        std::vector<std::byte> q;
        const bool quantized = traits(to).quantized;
        if (t.elements() == 0) {
          // An empty tensor stays empty in any type (no rows to quantize).
        } else if (quantized && o.method == Method::gsq) {
          q = quantize_gsq(to, w, cols, job, progress);
        } else if (quantized && o.method == Method::gptq) {
          if (auto g = quantize_gptq(to, w, rows, cols, job, o.hessians)) {
            q = std::move(*g);
            progress.advance(double(t.elements()));
          }
        }
        if (q.empty() && t.elements() > 0) q = quantize_rtn(to, w, rows, cols, job.importance, rows / job.slices, progress);
        out_bytes = q.size();
        writer.add_tensor(t.name, t.shape, to, std::move(q));
      } catch (const Error& e) {
        throw Error("tensor '" + t.name + "' (" + std::string(traits(t.format).name) + " -> " +
                    std::string(traits(to).name) + "): " + e.what());
      }
    }
    total_in += t.nbytes;
    total_out += out_bytes;
    const std::string types = std::string(traits(t.format).name) + " -> " + std::string(traits(to).name);
    progress.clear();  // the summary row goes to stdout, the bar to stderr: keep them apart on a terminal
    std::printf("%-48s %-22s %-15s %14zu %14zu\n", t.name.c_str(), shape_string(t.shape).c_str(), types.c_str(),
                t.nbytes, out_bytes);
    std::fflush(stdout);
  }
  progress.finish();
  logger()->info("writing {}", o.out);
  writer.write(o.out);
  int64_t elements = 0;
  for (const GgufTensorInfo& t : in.tensors()) elements += t.elements();
  const double per_weight = elements ? 8.0 / double(elements) : 0.0;
  std::printf("\ntotal: %s -> %s (%.3f -> %.3f bits/weight), %s\n", human_bytes(double(total_in)).c_str(),
              human_bytes(double(total_out)).c_str(), double(total_in) * per_weight, double(total_out) * per_weight,
              ftype_line(o.scheme).c_str());
  if (fallbacks) std::printf("%d tensor(s) fell back to another type for their row length\n", fallbacks);
  std::printf("wrote %s\n", o.out.c_str());
  return 0;
}

}  // namespace lowbit::cli
