// `lowbit eval MODEL --text FILE`: perplexity, KL divergence against a base model and
// speed with lowbit's llama runtime (lowbit::evaluate).
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "lowbit/core/log.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/model/eval.hpp"
#include "lowbit/model/llama.hpp"

namespace lowbit::cli {
namespace {

void print_eval_help() {
  std::printf(
      "usage: lowbit eval MODEL.gguf --text FILE [--base BASE.gguf] [--ctx N] [--chunks K]\n"
      "                  [--tg N] [--precision auto|f32|fast] [--json] [--threads N] [--quiet]\n"
      "\n"
      "Runs a llama-architecture GGUF with lowbit's runtime on a text and reports:\n"
      "  ppl        perplexity on llama-perplexity's windows: the text is cut into windows\n"
      "             of --ctx tokens, each evaluated from an empty cache; the second half of\n"
      "             each window is scored (ctx/2 - 1 tokens per window)\n"
      "  kld_mean   with --base: mean KL divergence KL(base || model) over the scored\n"
      "  kld_p99    positions, its 99th percentile, and the fraction of positions where\n"
      "  top1       both models' most likely token agree\n"
      "  pp, tg     tokens/s evaluating whole windows, and decoding one token at a time\n"
      "\n"
      "  --text FILE    UTF-8 text (at least 2*ctx tokens)\n"
      "  --base FILE    the reference model (e.g. the unquantized GGUF), same vocabulary\n"
      "  --ctx N        window length (default 512)\n"
      "  --chunks K     evaluate the first K windows only (default: all)\n"
      "  --tg N         single-token decode steps timed for tg (default 32; 0 skips)\n"
      "  --precision P  both models' linear layers (docs/runtime.md): auto\n"
      "                 (default: 8-bit activations for batches up to 8, float32 above),\n"
      "                 f32 (float32 always) or fast (8-bit always, repacked int8 GEMM\n"
      "                 for prompts where the format allows, as llama.cpp's arithmetic)\n"
      "  --json         one JSON object: {\"model\", \"base\", \"tokens\", \"ctx\", \"chunks\",\n"
      "                 \"scored\", \"ppl\", \"ppl_stderr\", \"base_ppl\", \"kld_mean\", \"kld_p99\",\n"
      "                 \"top1\", \"pp_tokens_per_s\", \"tg_tokens_per_s\"} (base fields null\n"
      "                 without --base)\n"
      "  --threads N    worker threads (0 = all cores, the default)\n"
      "  --quiet        only warnings in the log\n");
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open text file " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error("cannot read text file " + path);
  return ss.str();
}

}  // namespace

int run_eval(Args args) {
  std::string model_path, text_path, base_path;
  bool json = false, quiet = false;
  int threads = 0;
  EvalOptions opt;
  while (!args.done()) {
    const std::string a = args.next();
    const auto value = [&]() -> std::string {
      if (args.done()) throw UsageError(a + " needs a value");
      return args.next();
    };
    if (a == "-h" || a == "--help") {
      print_eval_help();
      return 0;
    }
    if (a == "--json") json = true;
    else if (a == "--quiet") quiet = true;
    else if (a == "--text") text_path = value();
    else if (a == "--base") base_path = value();
    else if (a == "--ctx") opt.ctx = parse_int(a, value(), 2, 1 << 20);
    else if (a == "--chunks") opt.chunks = parse_int(a, value(), 1, 1 << 30);
    else if (a == "--tg") opt.tg_tokens = parse_int(a, value(), 0, 1 << 20);
    else if (a == "--precision") {
      const std::string v = value();
      if (v == "auto") opt.precision = LinearPrecision::automatic;
      else if (v == "f32") opt.precision = LinearPrecision::f32;
      else if (v == "fast") opt.precision = LinearPrecision::fast;
      else throw UsageError("--precision expects auto, f32 or fast, got '" + v + "'");
    }
    else if (a == "--threads") threads = static_cast<int>(parse_int(a, value(), 0, 4096));
    else if (a.starts_with("-") && a.size() > 1) throw UsageError("eval: unknown option '" + a + "'");
    else if (model_path.empty()) model_path = a;
    else throw UsageError("eval: unexpected argument '" + a + "'");
  }
  if (model_path.empty()) throw UsageError("eval: expected MODEL.gguf");
  if (text_path.empty()) throw UsageError("eval: --text FILE is required");
  setup_logging(quiet);
  set_num_threads(threads);

  const std::string text = read_text(text_path);
  const LlamaModel model = LlamaModel::load(model_path);
  std::optional<LlamaModel> base;
  if (!base_path.empty()) base.emplace(LlamaModel::load(base_path));
  const LlamaHparams& hp = model.hparams();
  log_message(LogLevel::info, model_path + ": " + hp.architecture + ", " + std::to_string(hp.n_layer) +
                                  " layers, embedding " + std::to_string(hp.n_embd) + ", vocabulary " +
                                  std::to_string(hp.n_vocab));
  opt.progress = [&](int64_t done, int64_t total) {
    log_message(LogLevel::info, "window " + std::to_string(done) + "/" + std::to_string(total));
  };
  const EvalResult r = evaluate(model, text, base ? &*base : nullptr, opt);

  if (json) {
    nlohmann::ordered_json j;
    const auto opt_num = [&](double v) { return r.has_base ? nlohmann::ordered_json(v) : nlohmann::ordered_json(); };
    j["model"] = model_path;
    j["base"] = base_path.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(base_path);
    j["tokens"] = r.tokens;
    j["ctx"] = r.ctx;
    j["chunks"] = r.chunks;
    j["scored"] = r.scored;
    j["ppl"] = r.ppl;
    j["ppl_stderr"] = r.ppl_stderr;
    j["base_ppl"] = opt_num(r.base_ppl);
    j["kld_mean"] = opt_num(r.kld_mean);
    j["kld_p99"] = opt_num(r.kld_p99);
    j["top1"] = opt_num(r.top1);
    j["pp_tokens_per_s"] = r.pp_tokens_per_s;
    j["tg_tokens_per_s"] = r.tg_tokens_per_s;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("model      %s\n", model_path.c_str());
  std::printf("text       %s: %lld tokens, %lld windows of %lld, %lld scored\n", text_path.c_str(),
              static_cast<long long>(r.tokens), static_cast<long long>(r.chunks), static_cast<long long>(r.ctx),
              static_cast<long long>(r.scored));
  std::printf("ppl        %.4f +/- %.4f\n", r.ppl, r.ppl_stderr);
  if (r.has_base) {
    std::printf("base ppl   %.4f (%s)\n", r.base_ppl, base_path.c_str());
    std::printf("kld        mean %.6f  p99 %.6f\n", r.kld_mean, r.kld_p99);
    std::printf("top-1      %.2f%%\n", 100 * r.top1);
  }
  std::printf("speed      pp %.1f tokens/s, tg %.1f tokens/s\n", r.pp_tokens_per_s, r.tg_tokens_per_s);
  return 0;
}

}  // namespace lowbit::cli
