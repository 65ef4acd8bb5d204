// `lowbit quantize IN.gguf OUT.gguf TYPE`: a GGUF model quantized with
// llama-quantize's per-tensor rules and any lowbit method. The work is the library's
// (lowbit/model/quantize_model.hpp); this file parses, loads, calls and prints.
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <optional>
#include <vector>

#include "cli.hpp"
#include "lowbit/core/log.hpp"
#include "lowbit/io/files.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/gguf_stream.hpp"
#include "lowbit/io/imatrix.hpp"
#include "lowbit/model/hf_gptq_export.hpp"
#include "lowbit/model/quant_rules.hpp"
#include "lowbit/model/quantize_model.hpp"

namespace lowbit::cli {
namespace {

struct Options {
  std::string in, out;
  QuantScheme scheme;
  std::string imatrix, hessians, calib;
  int64_t ctx = 512, chunks = 0;
  bool ctx_given = false, chunks_given = false;
  QuantMethod method = QuantMethod::rtn;
  QuantizeEffort effort = QuantizeEffort::standard;
  int threads = 0;
  bool quiet = false;
  TensorTypeOverrides overrides;
  bool pure = false, dry_run = false, resume = false;
  GgufSplitLimits split;
  std::optional<double> target_bpw;
  bool effort_given = false;
  std::optional<ImportanceObjective> objective;
  // TYPE GPTQ_INT<bits>: a Hugging Face GPTQ checkpoint folder instead of a GGUF.
  int hf_bits = 0;
  int group_size = 128;
  bool asym = false, act_order = false, hf_given = false;
  int checkpoint_format = 0;
};

// "GPTQ_INT4" (any case, as the other TYPE names) -> 4; 0 for any other TYPE.
int hf_gptq_bits(std::string type) {
  for (char& c : type) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (int b : {2, 3, 4, 8})
    if (type == "GPTQ_INT" + std::to_string(b)) return b;
  return 0;
}

Format parse_type(const std::string& option, const std::string& v) {
  const auto f = format_from_name(v);
  if (!f) throw UsageError(option + ": unknown type '" + v + "' (a GGML type name such as Q4_K, Q6_K, Q8_0, F16)");
  return *f;
}

void print_quantize_help() {
  std::printf(
      "usage: lowbit quantize IN.gguf OUT.gguf TYPE [--imatrix FILE] [--method rtn|gsq|gptq]\n"
      "                       [--effort fast|default|best] [--imatrix-objective pure|blend]\n"
      "                       [--hessians DIR | --calib FILE [--ctx N] [--chunks K]]\n"
      "                       [--threads N] [--quiet] [--dry-run]\n"
      "                       [--tensor-type REGEX=TYPE]... [--output-tensor-type TYPE]\n"
      "                       [--token-embedding-type TYPE] [--pure] [--leave-output-tensor]\n"
      "                       [--target-bpw B] [--split-max-size SIZE] [--split-max-tensors N]\n"
      "                       [--resume]\n"
      "       lowbit quantize IN.gguf OUT_DIR GPTQ_INT2|GPTQ_INT3|GPTQ_INT4|GPTQ_INT8\n"
      "                       --method gptq --calib FILE [--ctx N] [--chunks K]\n"
      "                       [--group-size N] [--asym] [--act-order]\n"
      "                       [--checkpoint-format gptq|gptq_v2] [--threads N] [--quiet]\n"
      "\n"
      "Quantizes a GGUF model. Each tensor's type follows llama-quantize's rules, so the\n"
      "output has the tensor types llama.cpp's own quantizer would give it\n"
      "(docs/cli.md lists them): 1-D tensors, norms and a few small special tensors\n"
      "keep their stored type; output.weight (and token_embd.weight when the output is\n"
      "tied to it) gets Q6_K; a row length that does not fit a 256-element format falls\n"
      "back to a 32-element one. Quantized inputs are decoded to f32 first. Metadata is\n"
      "copied; general.file_type and general.quantization_version are set. IN may be the\n"
      "first file of a split model (NAME-00001-of-0000N.gguf). Tensors are written as\n"
      "they are done into OUT.partial, renamed to OUT when complete (never a\n"
      "half-written OUT); peak memory is a few of the largest tensors, not the model\n"
      "(docs/cli.md). An error removes OUT.partial; an interruption (Ctrl-C, kill)\n"
      "leaves it and OUT.partial-journal for --resume. OUT must not be IN or a special\n"
      "file such as /dev/null.\n"
      "\n"
      "TYPE: a llama-quantize mixture: Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S\n"
      "      Q5_K_M Q6_K, or a single format: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 IQ4_NL IQ4_XS\n"
      "      F16 BF16 F32 (with llama-quantize's rules for that file type), or Q3_K Q4_K\n"
      "      Q5_K (every quantizable tensor in that format, like llama-quantize --pure).\n"
      "\n"
      "  --imatrix FILE   llama.cpp importance matrix (llama-imatrix output, GGUF or the\n"
      "                   legacy .dat format): each tensor is quantized minimising the\n"
      "                   error weighted by its inputs' mean square\n"
      "  --imatrix-objective pure|blend   pure (default): that weight alone; blend:\n"
      "                   times sqrt(sigma^2 + w^2), ggml's weighting (rtn at effort\n"
      "                   default and best; docs/cli.md compares them)\n"
      "  --method M       rtn (default): each format's own quantizer (lowbit's scale\n"
      "                   search); gsq: GSQ's mse search (importance search with\n"
      "                   --imatrix), for targets Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 only;\n"
      "                   gptq: GPTQ into each tensor's target format, needs --hessians\n"
      "                   or --calib\n"
      "  --effort E       how hard each block's scale search works (rtn, GPTQ's block\n"
      "                   fits and fallback): fast = ggml's own search, vectorised;\n"
      "                   default = lowbit's more accurate search; best = a wider\n"
      "                   search where one pays (docs/formats.md). The output is the\n"
      "                   same on every CPU and at every thread count\n"
      "  --hessians DIR   <tensor name>.hess files saved by HessianAccumulator::save\n"
      "                   ('/', '%%', '\\', control bytes and a leading '.' of the name\n"
      "                   written as %%XX); tensors without one use rtn (logged)\n"
      "  --calib FILE     true-sequential GPTQ (llama models): the UTF-8 text's windows\n"
      "                   run through lowbit's runtime block by block, each block's\n"
      "                   Hessians (q/k/v one, gate/up one) taken from the outputs of\n"
      "                   the blocks and layers already quantized; token embedding and\n"
      "                   output get rtn (logged). Memory: one block's Hessians plus the\n"
      "                   windows' activations (docs/cli.md). With --target-bpw (any\n"
      "                   method) it also measures each weight's sensitivity (below)\n"
      "  --ctx N          --calib's window length in tokens (default 512)\n"
      "  --chunks K       --calib's first K windows only (default: every whole window\n"
      "                   for GPTQ, 1 for --target-bpw's measurement)\n"
      "  --threads N      worker threads (0 = all cores, the default); the output does\n"
      "                   not depend on it\n"
      "  --quiet          no progress bar and only warnings in the log\n"
      "  --dry-run        print the plan (tensor, shape, type, bytes) and the total; no\n"
      "                   quantization, no output\n"
      "\n"
      "Per-tensor control (llama-quantize's spellings; TYPE a GGML type name such as\n"
      "Q4_K, Q6_K, Q8_0, F16; a row length a type cannot hold still falls back):\n"
      "  --tensor-type REGEX=TYPE  tensors whose name matches REGEX (ECMAScript, found\n"
      "                   anywhere in the name) get TYPE; repeatable, the last match wins;\n"
      "                   ignored with --pure\n"
      "  --output-tensor-type TYPE     output.weight's type\n"
      "  --token-embedding-type TYPE   token_embd.weight's type\n"
      "  --pure           no mixture rules: every quantizable tensor gets TYPE's base type\n"
      "  --leave-output-tensor         output.weight keeps its stored type\n"
      "  --target-bpw B   choose each quantizable tensor's type (Q2_K..Q6_K, Q8_0) to\n"
      "                   minimise the model's importance-weighted error with the whole\n"
      "                   file at most B bits per weight (docs/cli.md); the options above\n"
      "                   still fix the tensors they name. With --calib FILE (llama\n"
      "                   models) each block weight's error is weighed by the KL\n"
      "                   divergence it causes alone, measured on the text's first\n"
      "                   --chunks windows (default 1) of --ctx tokens\n"
      "\n"
      "Output files:\n"
      "  --split-max-size SIZE   split the output (gguf-split's convention: OUT without\n"
      "                   .gguf + -00001-of-0000N.gguf) so no part holds more than SIZE\n"
      "                   of tensor data (bytes, or with M / G: 10^6 / 10^9)\n"
      "  --split-max-tensors N   ... or more than N tensors\n"
      "  --resume         continue an interrupted run from OUT.partial: tensors already\n"
      "                   written are verified by checksum and kept; the result is\n"
      "                   byte-identical to an uninterrupted run. Same IN, TYPE and\n"
      "                   options needed, else the run starts over (logged)\n"
      "\n"
      "Hugging Face GPTQ checkpoints (AutoGPTQ's layout, for transformers, vLLM, ...):\n"
      "  lowbit quantize IN.gguf OUT_DIR GPTQ_INT4 --method gptq --calib FILE [...]\n"
      "                   TYPE GPTQ_INT2, GPTQ_INT3, GPTQ_INT4 or GPTQ_INT8: true-sequential\n"
      "                   GPTQ of every block weight of a llama model into OUT_DIR\n"
      "                   (created if missing): model.safetensors (qweight, qzeros,\n"
      "                   scales, g_idx per layer under transformers' names, q/k rows in\n"
      "                   Hugging Face's order; embeddings, norms and lm_head in fp16),\n"
      "                   quantize_config.json and config.json; not the tokenizer\n"
      "  --group-size N   input features per group (default 128, AutoGPTQ's); 0 or -1:\n"
      "                   one group per row. Every layer's input features must hold\n"
      "                   whole groups (SmolLM2-135M's 576: 64 or 32)\n"
      "  --asym           integer zero points per group (default: symmetric, AutoGPTQ's)\n"
      "  --act-order      columns by descending Hessian diagonal (desc_act, with g_idx)\n"
      "  --checkpoint-format gptq|gptq_v2   zero-point convention (default: gptq for\n"
      "                   symmetric, gptq_v2 for --asym: v1 cannot store a zero of 0)\n"
      "  --ctx, --chunks and --threads as above; the other options do not apply\n"
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
    if (a == "--imatrix") {
      o.imatrix = value();
      if (o.imatrix.empty()) throw UsageError("--imatrix needs a file name, got an empty string");
    }
    else if (a == "--hessians") o.hessians = value();
    else if (a == "--calib") {
      o.calib = value();
      if (o.calib.empty()) throw UsageError("--calib needs a text file name, got an empty string");
    } else if (a == "--ctx") o.ctx = parse_int(a, value(), 1, 1 << 20), o.ctx_given = true;
    else if (a == "--chunks") o.chunks = parse_int(a, value(), 1, 1 << 30), o.chunks_given = true;
    else if (a == "--threads") o.threads = static_cast<int>(parse_int(a, value(), 0, 4096));
    else if (a == "--quiet") o.quiet = true;
    else if (a == "--dry-run") o.dry_run = true;
    else if (a == "--pure") o.pure = true;
    else if (a == "--leave-output-tensor") o.overrides.leave_output_tensor = true;
    else if (a == "--resume") o.resume = true;
    else if (a == "--output-tensor-type") o.overrides.output_tensor_type = parse_type(a, value());
    else if (a == "--token-embedding-type") o.overrides.token_embedding_type = parse_type(a, value());
    else if (a == "--tensor-type") {
      const std::string v = value();
      const size_t eq = v.rfind('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == v.size())
        throw UsageError("--tensor-type expects REGEX=TYPE, got '" + v + "'");
      o.overrides.tensor_types.emplace_back(v.substr(0, eq), parse_type(a, v.substr(eq + 1)));
    } else if (a == "--split-max-size") {
      try {
        o.split.max_bytes = parse_split_size(value());
      } catch (const Error& e) {
        throw UsageError(std::string("--split-max-size: ") + e.what());
      }
    } else if (a == "--split-max-tensors") o.split.max_tensors = parse_int(a, value(), 1, int64_t{1} << 40);
    else if (a == "--target-bpw") {
      const std::string v = value();
      char* end = nullptr;
      const double b = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(b > 0 && b <= 64)) throw UsageError("--target-bpw expects bits per weight in (0, 64], got '" + v + "'");
      o.target_bpw = b;
    }
    else if (a == "--imatrix-objective") {
      const std::string v = value();
      if (v != "pure" && v != "blend") throw UsageError("--imatrix-objective expects pure or blend, got '" + v + "'");
      o.objective = v == "pure" ? ImportanceObjective::pure : ImportanceObjective::ggml_blend;
    } else if (a == "--group-size") {
      o.group_size = static_cast<int>(parse_int(a, value(), -1, 1 << 20)), o.hf_given = true;
      if (o.group_size < 0) o.group_size = 0;
    } else if (a == "--asym") o.asym = true, o.hf_given = true;
    else if (a == "--act-order") o.act_order = true, o.hf_given = true;
    else if (a == "--checkpoint-format") {
      const std::string f = value();
      if (f != "gptq" && f != "gptq_v2") throw UsageError("--checkpoint-format expects gptq or gptq_v2, got '" + f + "'");
      o.checkpoint_format = f == "gptq" ? 1 : 2, o.hf_given = true;
    }
    else if (a == "--effort") {
      o.effort_given = true;
      const std::string e = value();
      try {
        o.effort = quantize_effort_from_name(e);
      } catch (const Error&) {
        throw UsageError("--effort expects fast, default or best, got '" + e + "'");
      }
    }
    else if (a == "--method") {
      const std::string m = value();
      const auto method = quant_method_from_name(m);
      if (!method) throw UsageError("--method expects rtn, gsq or gptq, got '" + m + "'");
      o.method = *method;
    } else if (a.starts_with("-") && a.size() > 1) throw UsageError("quantize: unknown option '" + a + "'");
    else pos.push_back(a);
  }
  if (pos.size() != 3)
    throw UsageError("quantize: expected IN.gguf OUT.gguf TYPE, got " + std::to_string(pos.size()) + " argument(s)");
  o.in = pos[0], o.out = pos[1];
  o.hf_bits = hf_gptq_bits(pos[2]);
  if (o.hf_bits) {
    if (o.method != QuantMethod::gptq || o.calib.empty())
      throw UsageError(pos[2] + " (a Hugging Face GPTQ checkpoint) is made by --method gptq --calib FILE");
    if (!o.imatrix.empty() || !o.hessians.empty() || o.effort_given || o.dry_run || o.pure || o.resume ||
        o.target_bpw || o.split.any() || !o.overrides.tensor_types.empty() || o.overrides.output_tensor_type ||
        o.overrides.token_embedding_type || o.overrides.leave_output_tensor)
      throw UsageError(pos[2] + " takes --calib, --ctx, --chunks, --group-size, --asym, --act-order, "
                       "--checkpoint-format, --threads and --quiet only");
    return o;
  }
  if (o.hf_given)
    throw UsageError("--group-size, --asym, --act-order and --checkpoint-format go with TYPE GPTQ_INT2/3/4/8");
  if (o.objective && o.imatrix.empty()) throw UsageError("--imatrix-objective goes with --imatrix");
  auto scheme = quant_scheme_from_name(pos[2]);
  if (!scheme) {
    std::string names;
    for (std::string_view n : quant_scheme_names()) names += (names.empty() ? "" : " ") + std::string(n);
    throw UsageError("quantize: unknown TYPE '" + pos[2] + "' (one of: " + names + ")");
  }
  o.scheme = *scheme;
  if (o.pure) o.scheme.pure = true;
  if (o.method == QuantMethod::gptq && o.hessians.empty() && o.calib.empty())
    throw UsageError("--method gptq needs --hessians DIR or --calib FILE");
  if (o.method != QuantMethod::gptq && !o.hessians.empty()) throw UsageError("--hessians is only used by --method gptq");
  if (o.method == QuantMethod::gsq && o.effort != QuantizeEffort::standard)
    throw UsageError("--effort is used by --method rtn and gptq; gsq has its own search");
  if (o.method != QuantMethod::gptq && !o.calib.empty() && !o.target_bpw)
    throw UsageError("--calib is used by --method gptq (true-sequential GPTQ) and by --target-bpw");
  if (!o.calib.empty() && !o.hessians.empty()) throw UsageError("--calib and --hessians exclude each other");
  if (!o.calib.empty() && !o.imatrix.empty() && o.method == QuantMethod::gptq)
    throw UsageError("--calib collects its own importance; drop --imatrix");
  if (o.calib.empty() && (o.ctx_given || o.chunks_given)) throw UsageError("--ctx and --chunks go with --calib");
  return o;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("--calib " + path + ": cannot open the text file");
  std::ostringstream text;
  text << f.rdbuf();
  if (f.bad()) throw Error("--calib " + path + ": cannot read the text file");
  return text.str();
}

// TYPE GPTQ_INT<bits>: the library's export_hf_gptq (lowbit/model/hf_gptq_export.hpp).
int run_hf_export(const Options& o) {
  HfGptqExportOptions opts;
  opts.gsq.bits = o.hf_bits;
  opts.gsq.group_size = o.group_size;
  opts.gsq.scheme = o.asym ? GsqScheme::asymmetric : GsqScheme::symmetric;
  opts.gptq.act_order = o.act_order;
  opts.format_version = o.checkpoint_format;
  opts.threads = o.threads;
  opts.calibration.text = read_text(o.calib);
  opts.calibration.ctx = o.ctx;
  opts.calibration.chunks = o.chunks;
  opts.calibration.dataset = o.calib;
  Progress progress("GPTQ", 1.0, o.quiet);
  double reported = 0;
  opts.progress = [&](int64_t done, int64_t total) {
    const double f = double(done) / double(total);
    progress.advance(f - reported);
    reported = f;
  };
  const HfGptqExportReport r = export_hf_gptq(o.in, o.out, opts);
  progress.finish();
  std::printf("%lld quantized layers (%s, %.3f bits per weight with scales and zeros), %lld fp16 tensors; "
              "checkpoint_format %s; model.safetensors %s\n",
              static_cast<long long>(r.quantized_layers), opts.gsq.describe().c_str(), r.bits_per_weight,
              static_cast<long long>(r.dense_tensors), r.format_version == 1 ? "gptq" : "gptq_v2",
              human_bytes(double(r.bytes)).c_str());
  for (const auto& p : r.files) std::printf("wrote %s\n", p.string().c_str());
  return 0;
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
  if (o.hf_bits) return run_hf_export(o);

  // Fail before the work, not after it, when the output cannot be written: a missing or
  // read-only folder, a special file (/dev/null, a FIFO, a directory), an over-long
  // name, or the input itself under another name (docs/reliability.md).
  std::vector<std::filesystem::path> inputs = {o.in};
  if (!o.imatrix.empty()) inputs.emplace_back(o.imatrix);
  if (!o.calib.empty()) inputs.emplace_back(o.calib);
  if (!o.dry_run && !o.split.any()) check_output_path(o.out, inputs);  // a split output: each part is checked
  const GgufFile in = GgufFile::open(o.in);
  QuantizeModelOptions opts{o.scheme};
  opts.overrides = o.overrides;
  opts.target_bpw = o.target_bpw;
  opts.split = o.split;
  opts.resume = o.resume;
  opts.method = o.method;
  opts.effort = o.effort;
  if (o.objective) opts.importance_objective = *o.objective;
  opts.threads = o.threads;
  if (!o.imatrix.empty()) {
    const Imatrix imatrix = load_imatrix(o.imatrix);
    log_message(LogLevel::info, "imatrix " + o.imatrix + ": " + std::to_string(imatrix.entries.size()) + " entries" +
                                    (imatrix.legacy ? " (legacy .dat format)" : ""));
    opts.imatrix = importance_map(imatrix);
  }
  if (!o.calib.empty()) {
    GptqCalibration cal;
    cal.text = read_text(o.calib);
    cal.ctx = o.ctx;
    cal.chunks = o.chunks;
    cal.dataset = o.calib;
    if (o.target_bpw) {
      // The sensitivity measurement runs every block weight once: one window unless
      // --chunks asks for more.
      GptqCalibration probe = cal;
      if (!o.chunks_given) probe.chunks = 1;
      opts.target_bpw_calibration = std::move(probe);
    }
    if (o.method == QuantMethod::gptq) opts.calibration = std::move(cal);
  }
  if (!o.hessians.empty()) {
    if (!std::filesystem::is_directory(o.hessians)) throw Error("--hessians " + o.hessians + ": not a directory");
    opts.hessians = hessians_from_directory(o.hessians);
  }

  // Every tensor is planned first, so a tensor the method cannot take fails before any work.
  const QuantizePlan plan = plan_model_quantization(in, opts);

  const double per_weight = plan.elements ? 8.0 / double(plan.elements) : 0.0;
  if (o.dry_run) {
    std::printf("%-48s %-22s %-8s %-8s %14s  %s\n", "tensor", "shape", "from", "type", "bytes", "why");
    for (const PlannedTensor& t : plan.tensors) {
      const char* why = t.plan.overridden      ? "override"
                        : !t.plan.quantizable  ? "kept"
                        : o.target_bpw         ? "target-bpw"
                        : t.plan.fallback_from ? "fallback"
                                               : "rule";
      std::printf("%-48s %-22s %-8s %-8s %14zu  %s\n", t.name.c_str(), shape_string(t.shape).c_str(),
                  std::string(traits(t.from).name).c_str(), std::string(traits(t.to()).name).c_str(),
                  static_cast<size_t>(t.bytes_out), why);
    }
    std::printf("\ntotal: %s -> %s (%.3f -> %.3f bits/weight), %s (dry run: nothing written)\n",
                human_bytes(double(plan.bytes_in)).c_str(), human_bytes(double(plan.bytes_out)).c_str(),
                double(plan.bytes_in) * per_weight, double(plan.bytes_out) * per_weight, ftype_line(o.scheme).c_str());
    return 0;
  }

  std::printf("%-48s %-22s %-15s %14s %14s\n", "tensor", "shape", "type", "bytes in", "bytes out");
  Progress progress("quantizing", double(plan.work), o.quiet);
  int64_t reported = 0;
  opts.progress = [&](int64_t done, int64_t) {
    progress.advance(double(done - reported));
    reported = done;
  };
  opts.on_tensor = [&](const PlannedTensor& t) {
    const std::string types = std::string(traits(t.from).name) + " -> " + std::string(traits(t.to()).name);
    progress.clear();  // the summary row goes to stdout, the bar to stderr: keep them apart on a terminal
    std::printf("%-48s %-22s %-15s %14zu %14zu\n", t.name.c_str(), shape_string(t.shape).c_str(), types.c_str(),
                static_cast<size_t>(t.bytes_in), static_cast<size_t>(t.bytes_out));
    std::fflush(stdout);
  };
  const std::vector<std::filesystem::path> written = write_quantized_model(in, plan, opts, o.out);
  progress.finish();
  std::printf("\ntotal: %s -> %s (%.3f -> %.3f bits/weight), %s\n", human_bytes(double(plan.bytes_in)).c_str(),
              human_bytes(double(plan.bytes_out)).c_str(), double(plan.bytes_in) * per_weight,
              double(plan.bytes_out) * per_weight, ftype_line(o.scheme).c_str());
  if (plan.fallbacks) std::printf("%d tensor(s) fell back to another type for their row length\n", plan.fallbacks);
  for (const auto& p : written) std::printf("wrote %s\n", p.string().c_str());
  return 0;
}

}  // namespace lowbit::cli
