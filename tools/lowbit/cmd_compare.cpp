// `lowbit compare A B`: how far B's tensors are from A's, tensor by tensor.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "lowbit/core/log.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/io/model_file.hpp"

namespace lowbit::cli {
namespace {

using Json = nlohmann::ordered_json;

struct Row {
  std::string name, type_a, type_b;
  std::vector<int64_t> shape;
  int64_t elements = 0;
  double rel_rmse = 0, cosine = 0;
};

// ||a - b|| / ||a|| and <a, b> / (||a|| ||b||), in double. Two all-zero tensors are
// identical (0 and 1); a zero reference against a non-zero tensor has no relative
// error, reported as infinity, and cosine 0.
void measure(const std::vector<float>& a, const std::vector<float>& b, Row& row) {
  double aa = 0, bb = 0, ab = 0, dd = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = a[i], y = b[i];
    aa += x * x, bb += y * y, ab += x * y, dd += (x - y) * (x - y);
  }
  row.rel_rmse = aa > 0 ? std::sqrt(dd / aa) : (dd > 0 ? INFINITY : 0.0);
  row.cosine = (aa > 0 && bb > 0) ? ab / std::sqrt(aa * bb) : (aa == 0 && bb == 0 ? 1.0 : 0.0);
}

// Shapes in GGUF order whatever the container (safetensors lists ne0 last).
std::vector<int64_t> gguf_order(const ModelFile& f, std::vector<int64_t> shape) {
  if (f.container() == "safetensors") std::reverse(shape.begin(), shape.end());
  return shape;
}

void print_compare_help() {
  std::printf(
      "usage: lowbit compare A B [--json] [--threads N] [--quiet]\n"
      "\n"
      "Compares two model files (GGUF or safetensors, e.g. a model and its quantized\n"
      "copy) tensor by tensor: both tensors are decoded to f32 and B is measured\n"
      "against A as the reference:\n"
      "  rel.RMSE   ||A - B||_F / ||A||_F\n"
      "  cosine     <A, B> / (||A||_F ||B||_F)\n"
      "Tensors are matched by name; a name in only one file is listed, a shape mismatch\n"
      "is an error, integer safetensors tensors are skipped. The total is the mean of\n"
      "the per-tensor values weighted by element count.\n"
      "\n"
      "  --json        one JSON object: {\"a\", \"b\", \"tensors\": [{\"name\", \"shape\",\n"
      "                \"type_a\", \"type_b\", \"elements\", \"rel_rmse\", \"cosine\"}, ...],\n"
      "                \"only_in_a\": [...], \"only_in_b\": [...], \"skipped\": [...],\n"
      "                \"total\": {\"elements\", \"rel_rmse\", \"cosine\"}}\n"
      "  --threads N   worker threads (0 = all cores, the default)\n"
      "  --quiet       no progress bar and only warnings in the log\n");
}

}  // namespace

int run_compare(Args args) {
  std::vector<std::string> files;
  bool json = false, quiet = false;
  int threads = 0;
  while (!args.done()) {
    const std::string a = args.next();
    if (a == "-h" || a == "--help") {
      print_compare_help();
      return 0;
    }
    if (a == "--json") json = true;
    else if (a == "--quiet") quiet = true;
    else if (a == "--threads") {
      if (args.done()) throw UsageError("--threads needs a value");
      threads = static_cast<int>(parse_int(a, args.next(), 0, 4096));
    } else if (a.starts_with("-") && a.size() > 1) throw UsageError("compare: unknown option '" + a + "'");
    else files.push_back(a);
  }
  if (files.size() != 2) throw UsageError("compare: expected two files A B, got " + std::to_string(files.size()));
  setup_logging(quiet);
  set_num_threads(threads);

  const ModelFile a = ModelFile::open(files[0]);
  const ModelFile b = ModelFile::open(files[1]);

  std::vector<Row> rows;
  std::vector<std::string> only_a, only_b, skipped;
  double work = 0;
  for (const ModelTensor& ta : a.tensors()) {
    const ModelTensor* tb = b.find(ta.name);
    if (!tb) {
      only_a.push_back(ta.name);
      continue;
    }
    if (gguf_order(a, ta.shape) != gguf_order(b, tb->shape))
      throw Error("tensor '" + ta.name + "': shape " + shape_string(ta.shape) + " in " + files[0] + " but " +
                  shape_string(tb->shape) + " in " + files[1]);
    if (!a.is_float(ta) || !b.is_float(*tb)) {
      skipped.push_back(ta.name);
      continue;
    }
    work += double(ta.elements());
  }
  for (const ModelTensor& tb : b.tensors())
    if (!a.find(tb.name)) only_b.push_back(tb.name);
  if (work == 0 && skipped.empty())
    throw Error("no tensor names in common between " + files[0] + " and " + files[1]);
  for (const auto& n : only_a) log_message(LogLevel::warn, "tensor '" + n + "' is only in " + files[0]);
  for (const auto& n : only_b) log_message(LogLevel::warn, "tensor '" + n + "' is only in " + files[1]);
  for (const auto& n : skipped) log_message(LogLevel::info, "tensor '" + n + "' is not a float tensor: skipped");

  Progress progress("comparing", work, quiet);
  for (const ModelTensor& ta : a.tensors()) {
    const ModelTensor* tb = b.find(ta.name);
    if (!tb || !a.is_float(ta) || !b.is_float(*tb)) continue;
    Row row;
    row.name = ta.name, row.type_a = ta.type, row.type_b = tb->type, row.shape = ta.shape;
    row.elements = ta.elements();
    try {
      measure(a.read_f32(ta), b.read_f32(*tb), row);
    } catch (const Error& e) {
      throw Error("tensor '" + ta.name + "': " + e.what());
    }
    rows.push_back(std::move(row));
    progress.advance(double(ta.elements()));
  }
  progress.finish();

  double n = 0, rmse = 0, cosine = 0;
  for (const Row& r : rows) n += double(r.elements), rmse += double(r.elements) * r.rel_rmse,
                            cosine += double(r.elements) * r.cosine;
  if (n > 0) rmse /= n, cosine /= n;

  if (json) {
    Json out = Json::object();
    out["a"] = files[0];
    out["b"] = files[1];
    Json ts = Json::array();
    for (const Row& r : rows)
      ts.push_back({{"name", r.name}, {"shape", r.shape}, {"type_a", r.type_a}, {"type_b", r.type_b},
                    {"elements", r.elements}, {"rel_rmse", r.rel_rmse}, {"cosine", r.cosine}});
    out["tensors"] = std::move(ts);
    out["only_in_a"] = only_a;
    out["only_in_b"] = only_b;
    out["skipped"] = skipped;
    out["total"] = {{"elements", static_cast<int64_t>(n)}, {"rel_rmse", rmse}, {"cosine", cosine}};
    std::printf("%s\n", out.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("A: %s\nB: %s\n\n  %-48s %-22s %-6s %-6s %11s %11s\n", files[0].c_str(), files[1].c_str(), "tensor",
              "shape", "A", "B", "rel.RMSE", "cosine");
  for (const Row& r : rows)
    std::printf("  %-48s %-22s %-6s %-6s %11.6f %11.8f\n", r.name.c_str(), shape_string(r.shape).c_str(),
                r.type_a.c_str(), r.type_b.c_str(), r.rel_rmse, r.cosine);
  std::printf("\n  total (%zu tensors, %.0f elements, element-weighted): rel.RMSE %.6f  cosine %.8f\n", rows.size(), n,
              rmse, cosine);
  if (!only_a.empty() || !only_b.empty())
    std::printf("  %zu tensor(s) only in A, %zu only in B\n", only_a.size(), only_b.size());
  return 0;
}

}  // namespace lowbit::cli
