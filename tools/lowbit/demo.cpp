// `lowbit demo`: every format on one synthetic weight matrix, side by side.
#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "lowbit/kernels/dot.hpp"
#include "lowbit/kernels/dot_rows.hpp"
#include "lowbit/kernels/matmul.hpp"
#include "timing.hpp"
#include "lowbit/gptq/ggml_target.hpp"
#include "lowbit/gptq/hessian.hpp"
#include "lowbit/gptq/solver.hpp"
#include "lowbit/gptq/target.hpp"
#include "lowbit/gsq/quantizer.hpp"
#include "lowbit/lowbit.hpp"

namespace lowbit::cli {
namespace {

struct DemoOptions {
  int64_t rows = 4096, cols = 4096;
  uint64_t seed = 1;
  int threads = 0;
  bool json = false;
  bool show_formats = true, show_gsq = true, show_gptq = true;
  std::vector<Format> formats;
};

// One table row. The formats and GSQ tables show rmse, weighted_rmse and both speeds;
// the GPTQ table shows rmse, output_error and the quantization time.
struct Row {
  std::string method;
  double bits_per_weight = 0, rmse = 0, weighted_rmse = 0, quantize_mbs = 0, dequantize_gbs = 0;
  double output_error = 0, quantize_s = 0;
  // GEMV (y = W x through the dot family): GB/s of weights, and that over a streaming
  // read of the same bytes measured just before (1 = memory speed).
  double gemv_gbs = 0, gemv_of_read = 0;
  std::string gemv_variant;
};

struct Section {
  const char* family;  // "ggml", "gsq", "gptq" (JSON)
  std::string title;
  bool gptq_columns;
  std::vector<std::function<Row()>> jobs;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<Format> parse_formats(const std::string& list) {
  std::vector<Format> out;
  std::stringstream ss(list);
  std::string name;
  while (std::getline(ss, name, ',')) {
    auto f = format_from_name(name);
    if (!f) throw UsageError("--formats: unknown format '" + name + "' (see `lowbit formats`)");
    out.push_back(*f);
  }
  return out;
}

DemoOptions parse(Args& args) {
  DemoOptions o;
  while (!args.done()) {
    const std::string opt = args.next();
    auto value = [&]() -> std::string {
      if (args.done()) throw UsageError(opt + " needs a value");
      return args.next();
    };
    if (opt == "--rows") o.rows = parse_int(opt, value(), 1, 1 << 20);
    else if (opt == "--cols") o.cols = parse_int(opt, value(), 256, 1 << 20);
    else if (opt == "--seed") o.seed = static_cast<uint64_t>(parse_int(opt, value(), 0, INT64_MAX));
    else if (opt == "--threads") o.threads = static_cast<int>(parse_int(opt, value(), 0, 1024));
    else if (opt == "--formats") o.formats = parse_formats(value());
    else if (opt == "--json") o.json = true;
    else if (opt == "--only") {
      const std::string v = value();
      if (v != "formats" && v != "gsq" && v != "gptq")
        throw UsageError("--only expects 'formats', 'gsq' or 'gptq', got '" + v + "'");
      o.show_formats = v == "formats";
      o.show_gsq = v == "gsq";
      o.show_gptq = v == "gptq";
    }
    else throw UsageError("demo: unknown option '" + opt + "' (try lowbit demo --help)");
  }
  if (o.cols % 256 != 0)
    throw UsageError("--cols " + std::to_string(o.cols) + " must be a multiple of 256 so every format applies");
  if (o.formats.empty())
    for (const auto& t : all_formats())
      if (t.format != Format::F32) o.formats.push_back(t.format);
  return o;
}

Row measure_format(const FormatTraits& t, const std::vector<float>& w, const std::vector<float>& imp,
                   const DemoOptions& o) {
  const ConstMatrixView<float> src(w.data(), o.rows, o.cols);
  std::vector<std::byte> q(quantized_size(t.format, o.rows, o.cols));
  std::vector<float> back(w.size());
  Row row;
  row.method = std::string(t.name);
  row.bits_per_weight = t.bits_per_weight();

  auto t0 = std::chrono::steady_clock::now();
  quantize(t.format, src, q);
  const double quantize_s = seconds_since(t0);
  row.quantize_mbs = w.size() * sizeof(float) / quantize_s / 1e6;

  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    t0 = std::chrono::steady_clock::now();
    dequantize(t.format, q, {back.data(), o.rows, o.cols});
    best = std::min(best, seconds_since(t0));
  }
  row.dequantize_gbs = back.size() * sizeof(float) / best / 1e9;
  row.rmse = relative_rmse(src, {back.data(), o.rows, o.cols});

  if (!t.activation_only) {
    const std::vector<float> x(w.begin(), w.begin() + o.cols);  // any activation row will do
    std::vector<float> y(static_cast<size_t>(o.rows));
    const double gemv_s = time_per_call(0.2, [&] { gemv(t.format, q, o.rows, o.cols, x, y); });
    const double read_s = stream_read_seconds({q}, 0.2);
    row.gemv_gbs = q.size() / gemv_s / 1e9;
    row.gemv_of_read = read_s / gemv_s;
    row.gemv_variant = select_gemv_kernel(t.format).name;
  }

  quantize(t.format, src, q, imp);
  dequantize(t.format, q, {back.data(), o.rows, o.cols});
  row.weighted_rmse = relative_rmse(src, {back.data(), o.rows, o.cols}, imp);
  return row;
}

// The GSQ grid of the demo: bits x group x scheme x search.
std::vector<GsqConfig> gsq_configs() {
  std::vector<GsqConfig> out;
  for (int bits : {2, 3, 4, 8})
    for (int group : {32, 128})
      for (GsqScheme scheme : {GsqScheme::symmetric, GsqScheme::asymmetric})
        for (ScaleSearch search : {ScaleSearch::rtn, ScaleSearch::mse, ScaleSearch::importance}) {
          GsqConfig c;
          c.bits = bits, c.group_size = group, c.scheme = scheme, c.search = search;
          out.push_back(c);
        }
  return out;
}

std::string gsq_label(const GsqConfig& c) {
  const char* search = c.search == ScaleSearch::rtn
                           ? (c.scheme == GsqScheme::symmetric ? "absmax" : "minmax")
                           : to_string(c.search);
  return "GSQ " + std::to_string(c.bits) + "b g" + std::to_string(c.group_size) + " " + to_string(c.scheme) + " " + search;
}

// rtn and mse ignore the importance vector; the importance search is the one that uses it.
Row measure_gsq(const GsqConfig& c, const std::vector<float>& w, const std::vector<float>& imp, const DemoOptions& o) {
  const ConstMatrixView<float> src(w.data(), o.rows, o.cols);
  auto t0 = std::chrono::steady_clock::now();
  const GsqResult q = gsq_quantize(c, src, c.search == ScaleSearch::importance ? std::span<const float>(imp)
                                                                                : std::span<const float>());
  const double quantize_s = seconds_since(t0);
  std::vector<float> back(w.size());
  t0 = std::chrono::steady_clock::now();
  gsq_dequantize(q, {back.data(), o.rows, o.cols});
  const double dequantize_s = seconds_since(t0);
  Row row;
  row.method = gsq_label(c);
  row.bits_per_weight = q.bits_per_weight();
  row.rmse = relative_rmse(src, {back.data(), o.rows, o.cols});
  row.weighted_rmse = relative_rmse(src, {back.data(), o.rows, o.cols}, imp);
  row.quantize_mbs = w.size() * 4 / quantize_s / 1e6;
  row.dequantize_gbs = back.size() * 4 / dequantize_s / 1e9;
  return row;
}

// The GPTQ section's layer: the demo matrix's first rows, and calibration
// activations shaped like an LLM's (synthetic_activations) for its Hessian.
struct GptqLayer {
  int64_t rows, cols;
  const float* w;
  HessianAccumulator h;
  std::vector<float> imatrix;
  GptqLayer(const std::vector<float>& weights, const DemoOptions& o)
      : rows(std::min<int64_t>(o.rows, 1024)), cols(o.cols), w(weights.data()), h(o.cols) {
    const std::vector<float> x = synthetic_activations(4096, cols, o.seed + 1);
    h.add({x.data(), 4096, cols});
    imatrix = h.importance();
  }
  Row row(std::string method, double bpw, const std::vector<float>& back, double seconds) const {
    Row r;
    r.method = std::move(method);
    r.bits_per_weight = bpw;
    r.rmse = relative_rmse({w, rows, cols}, {back.data(), rows, cols});
    r.output_error = layer_output_error({w, rows, cols}, {back.data(), rows, cols}, h.upper());
    r.quantize_s = seconds;
    return r;
  }
};

Row gptq_gsq_row(const GptqLayer& l, const GsqConfig& c, bool gptq, bool act_order) {
  const auto t0 = std::chrono::steady_clock::now();
  GsqResult q;
  if (gptq) {
    GptqConfig cfg;
    cfg.act_order = act_order;
    GsqTarget target(c, l.imatrix);
    gptq_solve(cfg, {l.w, l.rows, l.cols}, l.h, target);
    q = target.result();
  } else {
    q = gsq_quantize(c, {l.w, l.rows, l.cols}, c.search == ScaleSearch::importance ? std::span<const float>(l.imatrix)
                                                                                    : std::span<const float>());
  }
  const double seconds = seconds_since(t0);
  std::vector<float> back(static_cast<size_t>(l.rows * l.cols));
  gsq_dequantize(q, {back.data(), l.rows, l.cols});
  std::string name = gptq ? std::string("GPTQ ") + (act_order ? "act " : "") : std::string("GSQ ");
  name += std::to_string(c.bits) + "b g" + std::to_string(c.group_size) + " " + to_string(c.scheme);
  name += c.search == ScaleSearch::importance ? (gptq ? " imp-fit" : " importance") : " minmax";
  return l.row(name, q.bits_per_weight(), back, seconds);
}

// A GGML format on the GPTQ layer: its own quantizer with diag(H)/2 as imatrix (what
// llama.cpp does), or GPTQ with the format as target (fitted with the same imatrix).
Row gptq_ggml_row(const GptqLayer& l, Format f, bool gptq) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::byte> bytes;
  if (gptq) {
    GgmlTarget target(f, l.imatrix);
    gptq_solve(GptqConfig{}, {l.w, l.rows, l.cols}, l.h, target);
    bytes = target.result();
  } else {
    bytes.resize(quantized_size(f, l.rows, l.cols));
    quantize(f, {l.w, l.rows, l.cols}, bytes, l.imatrix);
  }
  const double seconds = seconds_since(t0);
  std::vector<float> back(static_cast<size_t>(l.rows * l.cols));
  dequantize(f, bytes, {back.data(), l.rows, l.cols});
  const std::string name = (gptq ? "GPTQ " : "") + std::string(traits(f).name) + (gptq ? "" : " imatrix");
  return l.row(name, traits(f).bits_per_weight(), back, seconds);
}

std::vector<std::function<Row()>> gptq_jobs(const std::shared_ptr<GptqLayer>& l) {
  std::vector<std::function<Row()>> jobs;
  for (Format f : {Format::Q4_K, Format::Q3_K, Format::Q2_K}) {
    jobs.push_back([l, f] { return gptq_ggml_row(*l, f, false); });
    jobs.push_back([l, f] { return gptq_ggml_row(*l, f, true); });
  }
  for (int bits : {2, 3, 4})
    for (int group : {128, 32}) {
      if (bits != 4 && group == 32) continue;
      GsqConfig c;
      c.bits = bits, c.group_size = group, c.scheme = GsqScheme::asymmetric, c.search = ScaleSearch::rtn;
      GsqConfig imp = c;
      imp.search = ScaleSearch::importance;
      jobs.push_back([l, c] { return gptq_gsq_row(*l, c, false, false); });
      jobs.push_back([l, imp] { return gptq_gsq_row(*l, imp, false, false); });
      jobs.push_back([l, c] { return gptq_gsq_row(*l, c, true, false); });
      jobs.push_back([l, c] { return gptq_gsq_row(*l, c, true, true); });
      jobs.push_back([l, imp] { return gptq_gsq_row(*l, imp, true, false); });
    }
  return jobs;
}

}  // namespace

void print_demo_help() {
  std::printf(
      "usage: lowbit demo [--rows N] [--cols N] [--seed S] [--threads N] [--formats A,B,...]\n"
      "                   [--only formats|gsq|gptq] [--json]\n"
      "\n"
      "Quantizes a deterministic synthetic weight matrix (default 4096 x 4096, Student-t\n"
      "values, log-normal column scales, 1 in 256 columns 8x larger) with every GGML block\n"
      "format, then with GSQ at bits {2,3,4,8} x group {32,128} x {sym,asym} x\n"
      "{absmax/minmax, mse, importance}, and prints, per method:\n"
      "  bits/wt      storage bits per weight, block metadata included\n"
      "  rel.RMSE     ||W - deq(q(W))||_F / ||W||_F, quantized without importance\n"
      "  wRMSE        the same weighted by the matching importance vector (llama.cpp\n"
      "               imatrix semantics), quantized with that vector\n"
      "  quant MB/s   megabytes of f32 input quantized per second (all threads)\n"
      "  deq GB/s     gigabytes of f32 output decoded per second (all threads)\n"
      "  gemv GB/s    y = W x (lowbit::gemv, the dot-product kernel named in the last\n"
      "               column): gigabytes of quantized weights read per second\n"
      "  x read       that over a streaming read of the same bytes in the same run\n"
      "               (1.00 = the speed of reading the weights; the default matrix\n"
      "               stays in a large L3, `lowbit bench` measures from memory)\n"
      "\n"
      "A third table runs GPTQ on the first 1024 rows with a Hessian from 4096 tokens of\n"
      "synthetic LLM-like activations, next to GSQ min/max and GSQ importance (diag(H)/2);\n"
      "GPTQ rows fit group parameters by min/max, or (imp-fit) by the importance search,\n"
      "and GPTQ into Q4_K/Q3_K/Q2_K is shown next to those formats' own imatrix quantizer:\n"
      "  out.err      the layer's relative output error ||X (W - Q)^T||^2 / ||X W^T||^2\n"
      "  quant s      seconds to quantize the layer (GPTQ: the whole solve)\n"
      "\n"
      "  --formats picks the GGML formats (default: all but F32); --only shows one section.\n"
      "  --cols must be a multiple of 256 (the K-quant super-block).\n"
      "  --threads 0 (default) uses every core; results do not depend on it.\n");
}

int run_demo(Args args) {
  for (const auto& a : args.items)
    if (a == "-h" || a == "--help") {
      print_demo_help();
      return 0;
    }
  const DemoOptions o = parse(args);
  set_num_threads(o.threads);
  if (!o.json)
    std::printf("lowbit %s demo: %lld x %lld synthetic heavy-tailed weights (seed %llu), %d thread(s)\n\n",
                kVersionString, static_cast<long long>(o.rows), static_cast<long long>(o.cols),
                static_cast<unsigned long long>(o.seed), num_threads());
  const std::vector<float> w = synthetic_weights(o.rows, o.cols, o.seed);
  const std::vector<float> imp = synthetic_importance(o.cols, o.seed);

  std::vector<Section> sections;
  if (o.show_formats) {
    Section sec{"ggml", "GGML block formats (reference quantizers; wRMSE quantized with the importance vector)", false, {}};
    for (Format f : o.formats) sec.jobs.push_back([&, f] { return measure_format(traits(f), w, imp, o); });
    sections.push_back(std::move(sec));
  }
  if (o.show_gsq) {
    Section sec{"gsq", "GSQ (group-scaling quantization; only the importance search uses the vector)", false, {}};
    for (const GsqConfig& c : gsq_configs()) sec.jobs.push_back([&, c] { return measure_gsq(c, w, imp, o); });
    sections.push_back(std::move(sec));
  }
  if (o.show_gptq) {
    auto layer = std::make_shared<GptqLayer>(w, o);
    Section sec{"gptq",
                "GPTQ on the first " + std::to_string(layer->rows) + " rows, 4096 tokens of LLM-like activations "
                "(out.err = ||X (W - Q)^T||^2 / ||X W^T||^2; GSQ importance uses diag(H)/2)",
                true, gptq_jobs(layer)};
    sections.push_back(std::move(sec));
  }

  bool first_json = true;
  if (o.json) std::printf("[");
  for (size_t s = 0; s < sections.size(); ++s) {
    const Section& sec = sections[s];
    if (!o.json) {
      std::printf("%s%s\n", s > 0 ? "\n" : "", sec.title.c_str());
      if (sec.gptq_columns) {
        std::printf("%-28s %8s %10s %10s %9s\n", "method", "bits/wt", "rel.RMSE", "out.err", "quant s");
        std::printf("%-28s %8s %10s %10s %9s\n", "----------------------------", "-------", "--------", "--------", "-------");
      } else {
        const bool gemv = sec.family == std::string("ggml");
        std::printf("%-28s %8s %10s %10s %11s %9s%s\n", "method", "bits/wt", "rel.RMSE", "wRMSE", "quant MB/s",
                    "deq GB/s", gemv ? "  gemv GB/s  x read  gemv kernel" : "");
        std::printf("%-28s %8s %10s %10s %11s %9s%s\n", "----------------------------", "-------", "--------",
                    "--------", "----------", "--------", gemv ? "  ---------  ------  -----------" : "");
      }
    }
    for (const auto& job : sec.jobs) {
      const Row r = job();
      if (o.json) {
        std::printf("%s\n  {\"method\": \"%s\", \"family\": \"%s\", \"bits_per_weight\": %.4f, \"rel_rmse\": %.6g, ",
                    first_json ? "" : ",", r.method.c_str(), sec.family, r.bits_per_weight, r.rmse);
        if (sec.gptq_columns)
          std::printf("\"output_error\": %.6g, \"quantize_s\": %.3f}", r.output_error, r.quantize_s);
        else
          std::printf("\"weighted_rmse\": %.6g, \"quantize_mb_s\": %.1f, \"dequantize_gb_s\": %.2f", r.weighted_rmse,
                      r.quantize_mbs, r.dequantize_gbs);
        if (!sec.gptq_columns && !r.gemv_variant.empty())
          std::printf(", \"gemv_gb_s\": %.2f, \"gemv_of_read\": %.3f, \"gemv_kernel\": \"%s\"", r.gemv_gbs,
                      r.gemv_of_read, r.gemv_variant.c_str());
        if (!sec.gptq_columns) std::printf("}");
        first_json = false;
      } else if (sec.gptq_columns) {
        std::printf("%-28s %8.4f %10.5f %10.6f %9.3f\n", r.method.c_str(), r.bits_per_weight, r.rmse, r.output_error,
                    r.quantize_s);
      } else {
        std::printf("%-28s %8.4f %10.5f %10.5f %11.1f %9.2f", r.method.c_str(), r.bits_per_weight, r.rmse,
                    r.weighted_rmse, r.quantize_mbs, r.dequantize_gbs);
        if (!r.gemv_variant.empty())
          std::printf("  %9.2f  %6.2f  %s", r.gemv_gbs, r.gemv_of_read, r.gemv_variant.c_str());
        std::printf("\n");
      }
      std::fflush(stdout);
    }
  }
  if (o.json) std::printf("\n]\n");
  return 0;
}

}  // namespace lowbit::cli
