// `lowbit bench`: kernel speed next to the machine's ceiling and ggml, measured in
// one run (llama-bench's role, for lowbit's kernel families).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "ggml_peer.hpp"
#include "timing.hpp"
#include "lowbit/lowbit.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/dot.hpp"
#include "lowbit/kernels/dot_rows.hpp"
#include "lowbit/kernels/matmul.hpp"
#include "lowbit/kernels/packed_matrix.hpp"

extern "C" void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a,
                            int lda, const float* b, int ldb, float beta, float* c, int ldc);
extern "C" void openblas_set_num_threads(int threads);

namespace lowbit::cli {
namespace {

using Json = nlohmann::ordered_json;
using bench::GgmlPeer;

const char* const kFamilies[] = {"gemv", "gemm", "dequantize", "activations", "quantize"};

struct BenchOptions {
  std::vector<std::string> families;
  std::vector<Format> formats;  // empty: every format the family has
  int64_t rows = 14336, cols = 4096;
  std::vector<int64_t> batches;  // empty: 1 for gemv, 512 for gemm
  int threads = 1;
  int64_t footprint = 0;  // 0: twice the last-level cache
  double min_seconds = 0.5;
  MatmulPath path = MatmulPath::automatic;  // gemm only
  std::vector<QuantizeEffort> efforts;      // quantize only; empty: all three
  bool synthetic_importance = false;        // quantize only: with an importance vector
  bool json = false;
};

void print_bench_help() {
  std::printf(
      "usage: lowbit bench [--family F] [--format T] [--rows R] [--cols C] [--batch B]\n"
      "                    [--threads N] [--footprint BYTES] [--min-time S] [--path P]\n"
      "                    [--effort E] [--importance none|synthetic] [--json]\n"
      "\n"
      "Times lowbit's CPU kernels on synthetic weights, next to a ceiling and ggml's\n"
      "own kernel measured in the same run (ratios are what compare across machines).\n"
      "\n"
      "families (--family, repeatable or comma-separated; default all):\n"
      "  gemv         y = W x, batch rows of x (default 1): GB/s of weights read;\n"
      "               ceiling: a streaming read of the same bytes; ggml: its vec_dot per row\n"
      "  gemm         y = x W^T at batch B (default 512): GFLOP/s (2 x rows x cols x B),\n"
      "               lowbit::matmul and, for the formats that repack, PackedMatrix;\n"
      "               ceiling: OpenBLAS SGEMM on the f32 matrix; ggml: ggml_mul_mat\n"
      "  dequantize   decode to f32: GB/s of f32 written; ceiling: a streaming write\n"
      "  activations  f32 -> Q8_0/Q8_1/Q8_K: GB/s of f32 read; ceiling: streaming read;\n"
      "               ggml: quantize_row_q8_*_ref; also x r+w ceil: against reading\n"
      "               the f32 and writing the quantized bytes with ordinary stores\n"
      "  quantize     f32 -> format (lowbit::quantize) at each effort: MB/s of f32\n"
      "               read, with the relative RMSE of both; ggml: ggml_quantize_chunk\n"
      "\n"
      "options:\n"
      "  --format T      a format (repeatable or comma-separated; default every format\n"
      "                  the family has)\n"
      "  --rows R, --cols C  matrix shape (default 14336 x 4096)\n"
      "  --batch B       activation rows for gemv / gemm (repeatable or comma-separated)\n"
      "  --threads N     threads (default 1; 0 = all cores), for lowbit, ggml and ceilings\n"
      "  --footprint B   bytes of weights the gemv cycles through (suffix K/M/G allowed;\n"
      "                  default: twice the last-level cache from sysfs, at least one\n"
      "                  matrix), so the weights come from memory as in token generation\n"
      "  --min-time S    seconds each measurement runs at least (default 0.5)\n"
      "  --path P        gemm only: auto (lowbit::matmul's choice by batch), dot or\n"
      "                  dequant (see docs/kernels.md)\n"
      "  --effort E      quantize only: fast, default or best (repeatable or\n"
      "                  comma-separated; default all three)\n"
      "  --importance I  quantize only: none (default) or synthetic, an imatrix-like\n"
      "                  importance vector given to lowbit and to ggml; rmse and\n"
      "                  ggml_rmse are then weighted by it\n"
      "  --json          print a JSON array, one object per measurement: family, format,\n"
      "                  variant, threads, rows, cols, batch, footprint, value, unit, and\n"
      "                  where measured ceiling, ggml (same unit), rmse, ggml_rmse, effort,\n"
      "                  importance, read_write_ceiling (activations)\n"
      "\n"
      "ggml comes from libggml-base/libggml-cpu in the interop venv (~/.cache/lowbit/venv,\n"
      "made by `make test`) or $LOWBIT_GGML_BASE; without it the ggml column is empty.\n");
}

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

int64_t parse_bytes(const std::string& option, const std::string& value) {
  if (value.empty()) throw UsageError(option + " expects a byte count");
  int64_t unit = 1;
  std::string digits = value;
  switch (value.back()) {
    case 'K': case 'k': unit = int64_t{1} << 10; break;
    case 'M': case 'm': unit = int64_t{1} << 20; break;
    case 'G': case 'g': unit = int64_t{1} << 30; break;
    default: break;
  }
  if (unit != 1) digits.pop_back();
  return parse_int(option, digits, 1, (int64_t{1} << 40) / unit) * unit;
}

BenchOptions parse(Args& args) {
  BenchOptions o;
  while (!args.done()) {
    const std::string a = args.next();
    auto value = [&]() -> std::string {
      if (args.done()) throw UsageError(a + " needs a value");
      return args.next();
    };
    if (a == "--family") {
      for (const std::string& f : split(value())) {
        if (std::find_if(std::begin(kFamilies), std::end(kFamilies), [&](const char* k) { return f == k; }) ==
            std::end(kFamilies))
          throw UsageError("unknown family '" + f + "' (gemv, gemm, dequantize, activations, quantize)");
        o.families.push_back(f);
      }
    } else if (a == "--format") {
      for (const std::string& name : split(value())) {
        const auto f = format_from_name(name);
        if (!f) throw UsageError("unknown format '" + name + "' (see `lowbit formats`)");
        o.formats.push_back(*f);
      }
    } else if (a == "--effort") {
      for (const std::string& name : split(value())) {
        try {
          o.efforts.push_back(quantize_effort_from_name(name));
        } catch (const Error&) {
          throw UsageError("--effort expects fast, default or best, got '" + name + "'");
        }
      }
    } else if (a == "--importance") {
      const std::string v = value();
      if (v != "none" && v != "synthetic") throw UsageError("--importance expects none or synthetic, got '" + v + "'");
      o.synthetic_importance = v == "synthetic";
    } else if (a == "--rows") {
      o.rows = parse_int(a, value(), 1, int64_t{1} << 24);
    } else if (a == "--cols") {
      o.cols = parse_int(a, value(), 1, int64_t{1} << 24);
    } else if (a == "--batch") {
      for (const std::string& b : split(value())) o.batches.push_back(parse_int(a, b, 1, 65536));
    } else if (a == "--threads") {
      o.threads = static_cast<int>(parse_int(a, value(), 0, 4096));
    } else if (a == "--footprint") {
      o.footprint = parse_bytes(a, value());
    } else if (a == "--min-time") {
      const std::string v = value();
      char* end = nullptr;
      o.min_seconds = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !(o.min_seconds > 0) || o.min_seconds > 600)
        throw UsageError("--min-time expects seconds in (0, 600], got '" + v + "'");
    } else if (a == "--path") {
      const std::string v = value();
      if (v == "auto") o.path = MatmulPath::automatic;
      else if (v == "dot") o.path = MatmulPath::dot;
      else if (v == "dequant") o.path = MatmulPath::dequant;
      else throw UsageError("--path expects auto, dot or dequant, got '" + v + "'");
    } else if (a == "--json") {
      o.json = true;
    } else {
      throw UsageError("unknown option '" + a + "'");
    }
  }
  if (o.families.empty()) o.families.assign(std::begin(kFamilies), std::end(kFamilies));
  return o;
}

// The last-level cache's size from sysfs (the highest cache index of cpu0), or 32 MiB.
int64_t last_level_cache_bytes() {
  int64_t best = 0;
  for (int i = 0; i < 8; ++i) {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/size");
    std::string s;
    if (!(f >> s) || s.empty()) continue;
    int64_t unit = 1;
    if (s.back() == 'K') unit = 1024, s.pop_back();
    else if (s.back() == 'M') unit = 1024 * 1024, s.pop_back();
    try {
      best = std::max<int64_t>(best, std::stoll(s) * unit);
    } catch (const std::exception&) {
    }
  }
  return best > 0 ? best : int64_t{32} << 20;
}

// One quantized matrix of `rows` x `cols`: a 64-row band quantized once and copied
// down the matrix (quantizing 14336 rows of every format would dominate the run;
// speed does not depend on which rows repeat).
std::vector<std::byte> quantized_matrix(Format f, int64_t rows, int64_t cols) {
  const int64_t band = std::min<int64_t>(rows, 64);
  const std::vector<float> w = synthetic_weights(band, cols, 7);
  const size_t rb = row_bytes(f, cols);
  std::vector<std::byte> q(rb * static_cast<size_t>(rows));
  quantize(f, ConstMatrixView<float>(w.data(), band, cols), std::span(q).first(rb * band));
  for (int64_t r = band; r < rows; r += band)
    std::memcpy(q.data() + r * rb, q.data(), rb * static_cast<size_t>(std::min(band, rows - r)));
  return q;
}

struct Row {
  std::string family, format, variant, unit;
  int64_t rows = 0, cols = 0, batch = 0, footprint = 0;
  double value = 0;
  std::optional<double> ceiling, ggml, rmse, ggml_rmse;
  std::optional<QuantizeEffort> effort;  // quantize only
  bool synthetic_importance = false;     // quantize only
  std::optional<double> read_write_ceiling;  // activations only
};

class Report {
 public:
  explicit Report(const BenchOptions& o) : o_(o) {}
  void add(Row r) {
    if (!o_.json) print(r);
    rows_.push_back(std::move(r));
  }
  void finish() const {
    if (!o_.json) return;
    Json all = Json::array();
    for (const Row& r : rows_) {
      Json j{{"family", r.family},   {"format", r.format}, {"variant", r.variant}, {"threads", num_threads()},
             {"rows", r.rows},       {"cols", r.cols},     {"batch", r.batch},     {"footprint", r.footprint},
             {"value", r.value},     {"unit", r.unit}};
      if (r.ceiling) j["ceiling"] = *r.ceiling;
      if (r.ggml) j["ggml"] = *r.ggml;
      if (r.rmse) j["rmse"] = *r.rmse;
      if (r.ggml_rmse) j["ggml_rmse"] = *r.ggml_rmse;
      if (r.read_write_ceiling) j["read_write_ceiling"] = *r.read_write_ceiling;
      if (r.effort) j["effort"] = std::string(to_string(*r.effort));
      if (r.effort) j["importance"] = r.synthetic_importance ? "synthetic" : "none";
      all.push_back(std::move(j));
    }
    std::printf("%s\n", all.dump(2).c_str());
  }

 private:
  void print(const Row& r) {
    if (r.family != last_family_) {
      std::printf("\n%-12s %-7s %-30s %6s %10s %9s %10s %9s %9s%s\n", "family", "format", "variant", "batch", "value",
                  "unit", "ceiling", "x ceil", "x ggml", r.read_write_ceiling ? "  x r+w ceil" : "");
      last_family_ = r.family;
    }
    auto opt = [](const std::optional<double>& v, const char* fmt) {
      char buf[32] = "-";
      if (v) std::snprintf(buf, sizeof buf, fmt, *v);
      return std::string(buf);
    };
    std::printf("%-12s %-7s %-30s %6lld %10.2f %9s %10s %9s %9s%s\n", r.family.c_str(), r.format.c_str(),
                r.variant.c_str(), static_cast<long long>(r.batch), r.value, r.unit.c_str(),
                opt(r.ceiling, "%.2f").c_str(),
                opt(r.ceiling ? std::optional<double>(r.value / *r.ceiling) : std::nullopt, "%.2f").c_str(),
                opt(r.ggml ? std::optional<double>(r.value / *r.ggml) : std::nullopt, "%.2f").c_str(),
                r.read_write_ceiling
                    ? ("  " + opt(std::optional<double>(r.value / *r.read_write_ceiling), "%11.2f")).c_str()
                    : "");
    std::fflush(stdout);
  }
  const BenchOptions& o_;
  std::vector<Row> rows_;
  std::string last_family_;
};

double stream_write_seconds(std::vector<float>& out, double min_seconds) {
  return time_per_call(min_seconds, [&] {
    const int64_t n = static_cast<int64_t>(out.size()), chunk = 16384;
    parallel_for((n + chunk - 1) / chunk, 4, [&](int64_t c0, int64_t c1) {
      std::fill(out.data() + c0 * chunk, out.data() + std::min(n, c1 * chunk), 1.0f);
    });
  });
}

std::vector<Format> formats_for(const BenchOptions& o, const std::function<bool(Format)>& has) {
  std::vector<Format> out;
  if (!o.formats.empty()) {
    for (Format f : o.formats)
      if (has(f)) out.push_back(f);
    return out;
  }
  for (const FormatTraits& t : all_formats())
    if (has(t.format)) out.push_back(t.format);
  return out;
}

bool has_dot(Format f) { return !traits(f).activation_only; }

void bench_gemv(const BenchOptions& o, Report& report, const GgmlPeer* ggml) {
  const std::vector<int64_t> batches = o.batches.empty() ? std::vector<int64_t>{1} : o.batches;
  const std::vector<float> x = synthetic_weights(*std::max_element(batches.begin(), batches.end()), o.cols, 3,
                                                 Distribution::gaussian);
  for (Format f : formats_for(o, has_dot)) {
    const size_t matrix_bytes = quantized_size(f, o.rows, o.cols);
    const int64_t footprint = o.footprint > 0 ? o.footprint : 2 * last_level_cache_bytes();
    const int64_t copies = std::max<int64_t>(1, (footprint + static_cast<int64_t>(matrix_bytes) - 1) /
                                                    static_cast<int64_t>(matrix_bytes));
    std::vector<std::vector<std::byte>> mats(static_cast<size_t>(copies));
    mats[0] = quantized_matrix(f, o.rows, o.cols);
    for (int64_t c = 1; c < copies; ++c) mats[c] = mats[0];
    const double bytes = double(matrix_bytes) * double(copies);
    const double ceiling = bytes / stream_read_seconds(mats, o.min_seconds) / 1e9;
    for (int64_t batch : batches) {
      std::vector<float> y(static_cast<size_t>(batch * o.rows));
      const ConstMatrixView<float> xv(x.data(), batch, o.cols);
      const double t = time_per_call(o.min_seconds, [&] {
        for (const auto& m : mats) matmul(f, m, o.rows, o.cols, xv, MatrixView<float>(y.data(), batch, o.rows),
                                          {MatmulPath::dot});
      });
      Row r{"gemv", std::string(traits(f).name), select_gemv_kernel(f).name, "GB/s", o.rows, o.cols, batch,
            static_cast<int64_t>(bytes), bytes / t / 1e9, ceiling, {}, {}, {}};
      if (ggml && ggml->has_cpu()) {
        const GgmlPeer::CpuTraits* wt = ggml->cpu_traits(static_cast<int>(f));
        if (wt && wt->vec_dot) {
          const GgmlPeer::CpuTraits* at = ggml->cpu_traits(wt->vec_dot_type);
          const Format af = static_cast<Format>(wt->vec_dot_type);
          const size_t arow = row_bytes(af, o.cols);
          std::vector<std::byte> a(arow * static_cast<size_t>(batch));
          const size_t wrow = row_bytes(f, o.cols);
          const double tg = time_per_call(o.min_seconds, [&] {
            for (const auto& m : mats) {
              for (int64_t b = 0; b < batch; ++b) {
                if (at && at->from_float) at->from_float(x.data() + b * o.cols, a.data() + b * arow, o.cols);
                else std::memcpy(a.data() + b * arow, x.data() + b * o.cols, arow);
              }
              parallel_for(o.rows, 16, [&](int64_t r0, int64_t r1) {
                for (int64_t rr = r0; rr < r1; ++rr)
                  for (int64_t b = 0; b < batch; ++b)
                    wt->vec_dot(static_cast<int>(o.cols), &y[b * o.rows + rr], 0, m.data() + rr * wrow, 0,
                                a.data() + b * arow, 0, 1);
              });
            }
          });
          r.ggml = bytes / tg / 1e9;
        }
      }
      report.add(r);
    }
  }
}

// ggml_mul_mat of the same weights and activations through ggml's graph API and its
// own threads; seconds per call, or nullopt without libggml-cpu. Its result must
// match `want` (lowbit's y for the same product) within the activations' rounding,
// else the measurement is refused with a warning rather than reported.
std::optional<double> ggml_matmul_seconds(const GgmlPeer* ggml, Format f, const std::vector<std::byte>& w,
                                          int64_t rows, int64_t cols, const std::vector<float>& x, int64_t batch,
                                          const std::vector<float>& want, double min_seconds) {
  if (!ggml || !ggml->has_cpu()) return std::nullopt;
  const GgmlPeer::CpuTraits* wt = ggml->cpu_traits(static_cast<int>(f));
  if (!wt || !wt->vec_dot) return std::nullopt;
  // The context holds the three tensors and the graph (ggml aborts if it runs out);
  // the work buffer is planned once and allocated here.
  const size_t operands = w.size() + static_cast<size_t>(batch) * static_cast<size_t>(cols + rows) * 4;
  const size_t mem = operands + ggml->graph_overhead() + (size_t{16} << 20);
  void* ctx = ggml->init({mem, nullptr, false});
  if (!ctx) return std::nullopt;
  void* a = ggml->new_tensor_2d(ctx, static_cast<int>(f), cols, rows);
  void* b = ggml->new_tensor_2d(ctx, 0 /* F32 */, cols, batch);
  std::memcpy(ggml->get_data(a), w.data(), w.size());
  std::memcpy(ggml->get_data(b), x.data(), static_cast<size_t>(batch * cols) * 4);
  void* c = ggml->mul_mat(ctx, a, b);
  void* graph = ggml->new_graph(ctx);
  ggml->build_forward_expand(graph, c);
  const int threads = num_threads();
  GgmlPeer::ComputePlan plan = ggml->graph_plan(graph, threads, nullptr);
  std::vector<uint8_t> work(plan.work_size + 64);
  plan.work_data = work.data();
  int status = 0;
  const double t = time_per_call(min_seconds, [&] { status |= ggml->graph_compute(graph, &plan); });
  // c is rows x batch with ne0 = rows: the same layout as y (batch rows of `rows`).
  const auto* got = static_cast<const float*>(ggml->get_data(c));
  double err = 0, norm = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    norm += double(want[i]) * want[i];
  }
  ggml->free_context(ctx);
  if (status != 0 || !(err <= 1e-4 * norm)) {
    std::fprintf(stderr, "lowbit bench: ggml_mul_mat for %s gave status %d and relative error %.3g; not reported\n",
                 std::string(traits(f).name).c_str(), status, norm > 0 ? std::sqrt(err / norm) : 0.0);
    return std::nullopt;
  }
  return t;
}

void bench_gemm(const BenchOptions& o, Report& report, const GgmlPeer* ggml) {
  const std::vector<int64_t> batches = o.batches.empty() ? std::vector<int64_t>{512} : o.batches;
  const int64_t max_batch = *std::max_element(batches.begin(), batches.end());
  const std::vector<float> x = synthetic_weights(max_batch, o.cols, 3, Distribution::gaussian);
  for (Format f : formats_for(o, has_dot)) {
    const std::vector<std::byte> w = quantized_matrix(f, o.rows, o.cols);
    std::vector<float> wf(static_cast<size_t>(o.rows * o.cols));
    dequantize(f, w, MatrixView<float>(wf.data(), o.rows, o.cols));
    for (int64_t batch : batches) {
      const double flops = 2.0 * double(o.rows) * double(o.cols) * double(batch);
      std::vector<float> y(static_cast<size_t>(batch * o.rows));
      const ConstMatrixView<float> xv(x.data(), batch, o.cols);
      const MatmulPath path = o.path != MatmulPath::automatic ? o.path
                              : batch <= kMatmulDotMaxBatch ? MatmulPath::dot
                                                            : MatmulPath::dequant;
      const double t = time_per_call(o.min_seconds, [&] {
        matmul(f, w, o.rows, o.cols, xv, MatrixView<float>(y.data(), batch, o.rows), {path});
      });
      openblas_set_num_threads(num_threads());
      const double ts = time_per_call(o.min_seconds, [&] {
        cblas_sgemm(101, 111, 112, static_cast<int>(batch), static_cast<int>(o.rows), static_cast<int>(o.cols), 1.0f,
                    x.data(), static_cast<int>(o.cols), wf.data(), static_cast<int>(o.cols), 0.0f, y.data(),
                    static_cast<int>(o.rows));
      });
      const std::string variant = path == MatmulPath::dot ? select_gemv_kernel(f).name
                                                          : std::string("dequant+sgemm/") +
                                                                dequantize_kernels().select(f).name;
      Row r{"gemm", std::string(traits(f).name), variant, "GFLOP/s", o.rows, o.cols, batch,
            static_cast<int64_t>(w.size()), flops / t / 1e9, flops / ts / 1e9, {}, {}, {}};
      matmul(f, w, o.rows, o.cols, xv, MatrixView<float>(y.data(), batch, o.rows), {path});  // ggml's check
      if (const auto tg = ggml_matmul_seconds(ggml, f, w, o.rows, o.cols, x, batch, y, o.min_seconds))
        r.ggml = flops / *tg / 1e9;
      report.add(r);
      // The repacked layout (made once, outside the timing), where the format has one.
      if (PackedMatrix::supports(f) && o.path == MatmulPath::automatic) {
        const PackedMatrix packed(f, w, o.rows, o.cols);
        const double tp = time_per_call(
            o.min_seconds, [&] { packed.multiply(xv, MatrixView<float>(y.data(), batch, o.rows)); });
        Row rp = r;
        rp.variant = std::string("packed/") + packed_gemm_kernels().select(PackedGemmKey{}).name;
        rp.footprint = static_cast<int64_t>(packed.bytes());
        rp.value = flops / tp / 1e9;
        report.add(rp);
      }
    }
  }
}

void bench_dequantize(const BenchOptions& o, Report& report) {
  for (Format f : formats_for(o, [](Format) { return true; })) {
    const std::vector<std::byte> w = quantized_matrix(f, o.rows, o.cols);
    std::vector<float> out(static_cast<size_t>(o.rows * o.cols));
    const double out_bytes = double(out.size()) * 4;
    const double ceiling = out_bytes / stream_write_seconds(out, o.min_seconds) / 1e9;
    const DequantizeRowFn fn = dequantize_kernels().select(f).fn;
    const size_t rb = row_bytes(f, o.cols);
    const double t = time_per_call(o.min_seconds, [&] {
      parallel_for(o.rows, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) fn(w.data() + r * rb, out.data() + r * o.cols, o.cols);
      });
    });
    report.add({"dequantize", std::string(traits(f).name), dequantize_kernels().select(f).name, "GB/s", o.rows,
                o.cols, 1, static_cast<int64_t>(w.size()), out_bytes / t / 1e9, ceiling, {}, {}, {}});
  }
}

void bench_activations(const BenchOptions& o, Report& report, const GgmlPeer* ggml) {
  const std::vector<float> x = synthetic_weights(o.rows, o.cols, 5, Distribution::gaussian);
  std::vector<std::vector<std::byte>> as_bytes(1, std::vector<std::byte>(x.size() * 4));
  std::memcpy(as_bytes[0].data(), x.data(), as_bytes[0].size());
  const double in_bytes = double(x.size()) * 4;
  const double ceiling = in_bytes / stream_read_seconds(as_bytes, o.min_seconds) / 1e9;
  for (Format f : formats_for(o, [](Format f) { return f == Format::Q8_0 || f == Format::Q8_1 || f == Format::Q8_K; })) {
    const size_t rb = row_bytes(f, o.cols);
    std::vector<std::byte> q(rb * static_cast<size_t>(o.rows));
    auto run = [&](void (*fn)(const float*, void*, int64_t)) {
      return time_per_call(o.min_seconds, [&] {
        parallel_for(o.rows, 16, [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r) fn(x.data() + r * o.cols, q.data() + r * rb, o.cols);
        });
      });
    };
    const ActivationKernel& k = activation_kernels().select(f);
    Row r{"activations", std::string(traits(f).name), k.name, "GB/s", o.rows, o.cols, 1,
          static_cast<int64_t>(in_bytes), in_bytes / run(k.fn) / 1e9, ceiling, {}, {}, {}};
    // The kernel also writes q (about 0.27-0.29 of the bytes it reads), and ordinary
    // stores read each line first: reading x and writing q is the floor it works against.
    r.read_write_ceiling = in_bytes / stream_read_write_seconds(as_bytes[0], q, o.min_seconds) / 1e9;
    if (ggml) {
      auto* fn = f == Format::Q8_0 ? ggml->quantize_row_q8_0_ref
                 : f == Format::Q8_1 ? ggml->quantize_row_q8_1_ref
                                     : ggml->quantize_row_q8_K_ref;
      if (fn) r.ggml = in_bytes / run(fn) / 1e9;
    }
    report.add(r);
  }
}

void bench_quantize(const BenchOptions& o, Report& report, const GgmlPeer* ggml) {
  // Quantizers run at MB/s: a 256-row band keeps the run short and still spans many blocks.
  const int64_t rows = std::min<int64_t>(o.rows, 256);
  const std::vector<float> w = synthetic_weights(rows, o.cols, 9);
  const ConstMatrixView<float> wv(w.data(), rows, o.cols);
  const std::vector<float> importance =
      o.synthetic_importance ? synthetic_importance(o.cols, 9) : std::vector<float>();
  const double in_bytes = double(w.size()) * 4;
  const std::vector<QuantizeEffort> efforts =
      o.efforts.empty() ? std::vector{QuantizeEffort::fast, QuantizeEffort::standard, QuantizeEffort::best} : o.efforts;
  for (Format f : formats_for(o, [](Format f) { return traits(f).quantized && !traits(f).activation_only; })) {
    std::vector<std::byte> q(quantized_size(f, rows, o.cols));
    std::vector<float> back(w.size());
    std::optional<double> ggml_speed, ggml_rmse;
    if (ggml) {
      ggml->quantize_init(static_cast<int>(f));
      const double tg = time_per_call(o.min_seconds, [&] {
        parallel_for(rows, 8, [&](int64_t r0, int64_t r1) {
          ggml->quantize_chunk(static_cast<int>(f), w.data() + r0 * o.cols, q.data() + r0 * row_bytes(f, o.cols), 0,
                               r1 - r0, o.cols, importance.empty() ? nullptr : importance.data());
        });
      });
      ggml_speed = in_bytes / tg / 1e6;
      dequantize(f, q, MatrixView<float>(back.data(), rows, o.cols));
      ggml_rmse = relative_rmse(wv, ConstMatrixView<float>(back.data(), rows, o.cols), importance);
    }
    for (QuantizeEffort e : efforts) {
      const double t = time_per_call(o.min_seconds, [&] { quantize(f, wv, q, importance, e); });
      dequantize(f, q, MatrixView<float>(back.data(), rows, o.cols));
      Row r{"quantize", std::string(traits(f).name), select_quantize_kernel(f, e).name, "MB/s", rows, o.cols, 1,
            static_cast<int64_t>(in_bytes), in_bytes / t / 1e6, {}, ggml_speed,
            relative_rmse(wv, ConstMatrixView<float>(back.data(), rows, o.cols), importance), ggml_rmse, e,
            o.synthetic_importance};
      report.add(r);
    }
  }
}

}  // namespace

int run_bench(Args args) {
  for (const auto& a : args.items)
    if (a == "-h" || a == "--help") {
      print_bench_help();
      return 0;
    }
  const BenchOptions o = parse(args);
  set_num_threads(o.threads);
  openblas_set_num_threads(num_threads());
  if (!o.json)
    std::printf("lowbit %s bench: %lld x %lld, %d thread(s), CPU features %s\n", kVersionString,
                static_cast<long long>(o.rows), static_cast<long long>(o.cols), num_threads(),
                active_cpu_features().to_string().c_str());
  const GgmlPeer* ggml = GgmlPeer::get();
  Report report(o);
  for (const std::string& family : o.families) {
    if (family == "gemv") bench_gemv(o, report, ggml);
    else if (family == "gemm") bench_gemm(o, report, ggml);
    else if (family == "dequantize") bench_dequantize(o, report);
    else if (family == "activations") bench_activations(o, report, ggml);
    else if (family == "quantize") bench_quantize(o, report, ggml);
  }
  report.finish();
  return 0;
}

}  // namespace lowbit::cli
