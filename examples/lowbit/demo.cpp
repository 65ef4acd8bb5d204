// `lowbit demo`: every format on one synthetic weight matrix, side by side.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "lowbit/lowbit.hpp"

namespace lowbit::cli {
namespace {

struct DemoOptions {
  int64_t rows = 4096, cols = 4096;
  uint64_t seed = 1;
  int threads = 0;
  bool json = false;
  std::vector<Format> formats;
};

struct Row {
  const FormatTraits* t;
  double rmse, weighted_rmse, quantize_mbs, dequantize_gbs;
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
    if (!f) throw Error("--formats: unknown format '" + name + "' (see `lowbit formats`)");
    out.push_back(*f);
  }
  return out;
}

DemoOptions parse(Args& args) {
  DemoOptions o;
  while (!args.done()) {
    const std::string opt = args.next();
    auto value = [&]() -> std::string {
      if (args.done()) throw Error(opt + " needs a value");
      return args.next();
    };
    if (opt == "--rows") o.rows = parse_int(opt, value(), 1, 1 << 20);
    else if (opt == "--cols") o.cols = parse_int(opt, value(), 256, 1 << 20);
    else if (opt == "--seed") o.seed = static_cast<uint64_t>(parse_int(opt, value(), 0, INT64_MAX));
    else if (opt == "--threads") o.threads = static_cast<int>(parse_int(opt, value(), 0, 1024));
    else if (opt == "--formats") o.formats = parse_formats(value());
    else if (opt == "--json") o.json = true;
    else throw Error("demo: unknown option '" + opt + "' (try lowbit demo --help)");
  }
  if (o.cols % 256 != 0)
    throw Error("--cols " + std::to_string(o.cols) + " must be a multiple of 256 so every format applies");
  if (o.formats.empty())
    for (const auto& t : all_formats())
      if (t.format != Format::F32) o.formats.push_back(t.format);
  return o;
}

Row measure(const FormatTraits& t, const std::vector<float>& w, const std::vector<float>& imp, const DemoOptions& o) {
  const ConstMatrixView<float> src(w.data(), o.rows, o.cols);
  std::vector<std::byte> q(quantized_size(t.format, o.rows, o.cols));
  std::vector<float> back(w.size());
  Row row{&t, 0, 0, 0, 0};

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

  quantize(t.format, src, q, imp);
  dequantize(t.format, q, {back.data(), o.rows, o.cols});
  row.weighted_rmse = relative_rmse(src, {back.data(), o.rows, o.cols}, imp);
  return row;
}

}  // namespace

void print_demo_help() {
  std::printf(
      "usage: lowbit demo [--rows N] [--cols N] [--seed S] [--threads N] [--formats A,B,...] [--json]\n"
      "\n"
      "Quantizes a deterministic synthetic weight matrix (default 4096 x 4096, Student-t\n"
      "values, log-normal column scales, 1 in 256 columns 8x larger) with every format and\n"
      "prints, per format:\n"
      "  bits/wt      storage bits per weight, block metadata included\n"
      "  rel.RMSE     ||W - deq(q(W))||_F / ||W||_F, quantized without importance\n"
      "  wRMSE        the same weighted by the matching importance vector (llama.cpp\n"
      "               imatrix semantics), quantized with that vector\n"
      "  quant MB/s   megabytes of f32 input quantized per second (all threads)\n"
      "  deq GB/s     gigabytes of f32 output decoded per second (all threads)\n"
      "\n"
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

  if (o.json) {
    std::printf("[\n");
  } else {
    std::printf("%-7s %8s %10s %10s %11s %9s\n", "format", "bits/wt", "rel.RMSE", "wRMSE", "quant MB/s", "deq GB/s");
    std::printf("%-7s %8s %10s %10s %11s %9s\n", "-------", "-------", "--------", "--------", "----------", "--------");
  }
  for (size_t i = 0; i < o.formats.size(); ++i) {
    const Row r = measure(traits(o.formats[i]), w, imp, o);
    if (o.json) {
      std::printf("  {\"format\": \"%s\", \"bits_per_weight\": %.4f, \"rel_rmse\": %.6g, \"weighted_rmse\": %.6g, "
                  "\"quantize_mb_s\": %.1f, \"dequantize_gb_s\": %.2f}%s\n",
                  r.t->name.data(), r.t->bits_per_weight(), r.rmse, r.weighted_rmse, r.quantize_mbs,
                  r.dequantize_gbs, i + 1 < o.formats.size() ? "," : "");
    } else {
      std::printf("%-7s %8.4f %10.5f %10.5f %11.1f %9.2f\n", r.t->name.data(), r.t->bits_per_weight(), r.rmse,
                  r.weighted_rmse, r.quantize_mbs, r.dequantize_gbs);
    }
    std::fflush(stdout);
  }
  if (o.json) std::printf("]\n");
  return 0;
}

}  // namespace lowbit::cli
