// `lowbit calibrate MODEL --text FILE -o IMATRIX.gguf`: an importance matrix (and GPTQ
// Hessians) from running lowbit's llama runtime over a text (lowbit::calibrate).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli.hpp"
#include "lowbit/core/log.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/model/calibrate.hpp"
#include "lowbit/model/llama.hpp"

namespace lowbit::cli {
namespace {

void print_calibrate_help() {
  std::printf(
      "usage: lowbit calibrate MODEL.gguf --text FILE -o IMATRIX.gguf [--ctx N] [--chunks K]\n"
      "                       [--hessians DIR] [--threads N] [--quiet]\n"
      "\n"
      "Runs a llama-architecture GGUF with lowbit's runtime over a text, in llama-imatrix's\n"
      "chunks (windows of --ctx tokens, each from an empty cache, every position\n"
      "collected), and writes the importance matrix of every linear weight (sum of x^2\n"
      "per input column and the token count) in llama.cpp's GGUF imatrix format, which\n"
      "`lowbit quantize --imatrix` and llama-quantize --imatrix read.\n"
      "\n"
      "  --text FILE     UTF-8 calibration text (at least one window)\n"
      "  -o FILE         the imatrix to write (atomically)\n"
      "  --ctx N         window length (default 512)\n"
      "  --chunks K      use the first K windows only (default: all)\n"
      "  --hessians DIR  also write each linear weight's GPTQ Hessian H = 2/N sum x x^T as\n"
      "                  DIR/<tensor>.hess (the files `lowbit quantize --method gptq\n"
      "                  --hessians DIR` reads); q/k/v and gate/up share their input's\n"
      "  --threads N     worker threads (0 = all cores, the default)\n"
      "  --quiet         only warnings in the log\n");
}

}  // namespace

int run_calibrate(Args args) {
  std::string model_path, text_path, out_path, hessian_dir;
  bool quiet = false;
  int threads = 0;
  CalibrationOptions opt;
  while (!args.done()) {
    const std::string a = args.next();
    const auto value = [&]() -> std::string {
      if (args.done()) throw UsageError(a + " needs a value");
      return args.next();
    };
    if (a == "-h" || a == "--help") {
      print_calibrate_help();
      return 0;
    }
    if (a == "--quiet") quiet = true;
    else if (a == "--text") text_path = value();
    else if (a == "-o" || a == "--output") out_path = value();
    else if (a == "--hessians") hessian_dir = value();
    else if (a == "--ctx") opt.ctx = parse_int(a, value(), 1, 1 << 20);
    else if (a == "--chunks") opt.chunks = parse_int(a, value(), 1, 1 << 30);
    else if (a == "--threads") threads = static_cast<int>(parse_int(a, value(), 0, 4096));
    else if (a.starts_with("-") && a.size() > 1) throw UsageError("calibrate: unknown option '" + a + "'");
    else if (model_path.empty()) model_path = a;
    else throw UsageError("calibrate: unexpected argument '" + a + "'");
  }
  if (model_path.empty()) throw UsageError("calibrate: expected MODEL.gguf");
  if (text_path.empty()) throw UsageError("calibrate: --text FILE is required");
  if (out_path.empty()) throw UsageError("calibrate: -o IMATRIX.gguf is required");
  setup_logging(quiet);
  set_num_threads(threads);

  std::ifstream in(text_path, std::ios::binary);
  if (!in) throw Error("cannot open text file " + text_path);
  std::ostringstream ss;
  ss << in.rdbuf();
  const LlamaModel model = LlamaModel::load(model_path);
  opt.hessians = !hessian_dir.empty();
  opt.dataset = std::filesystem::path(text_path).filename().string();
  opt.progress = [&](int64_t done, int64_t total) {
    log_message(LogLevel::info, "chunk " + std::to_string(done) + "/" + std::to_string(total));
  };
  const Calibration c = calibrate(model, ss.str(), opt);
  write_imatrix(c, out_path);
  log_message(LogLevel::info, out_path + ": " + std::to_string(c.weights.size()) + " weights, " +
                                  std::to_string(c.chunks) + " chunks of " + std::to_string(c.chunk_size) + " tokens");
  if (!hessian_dir.empty()) {
    save_hessians(c, hessian_dir);
    log_message(LogLevel::info, hessian_dir + ": " + std::to_string(c.weights.size()) + " Hessians");
  }
  return 0;
}

}  // namespace lowbit::cli
