// `lowbit`: the command-line front door to the library.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <string>
#include <string_view>

#include "cli.hpp"
#include "lowbit/lowbit.hpp"

namespace lowbit::cli {

int64_t parse_int(const std::string& option, const std::string& value, int64_t min, int64_t max) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || value.empty() || v < min || v > max)
    throw UsageError(option + " expects an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
                     "], got '" + value + "'");
  return v;
}

namespace {

// Whether the level names get colours: stderr is a terminal that speaks ANSI colours
// (spdlog's test, which the tool's log used before it had its own sink).
bool stderr_has_colors() {
  if (isatty(STDERR_FILENO) != 1) return false;
  if (std::getenv("COLORTERM") != nullptr) return true;
  const char* term = std::getenv("TERM");
  if (term == nullptr) return false;
  for (const char* t : {"ansi", "color", "console", "cygwin", "gnome", "konsole", "kterm", "linux", "msys", "putty",
                        "rxvt", "screen", "vt100", "xterm", "alacritty", "vt102"})
    if (std::string_view(term).find(t) != std::string_view::npos) return true;
  return false;
}

const char* level_color(LogLevel level) {
  switch (level) {
    case LogLevel::trace: return "\033[37m";
    case LogLevel::debug: return "\033[36m";
    case LogLevel::info: return "\033[32m";
    case LogLevel::warn: return "\033[33m\033[1m";
    case LogLevel::error: return "\033[31m\033[1m";
    case LogLevel::off: break;
  }
  return "";
}

}  // namespace

void setup_logging(bool quiet) {
  set_log_level(quiet ? LogLevel::warn : LogLevel::info);
  const bool colors = stderr_has_colors();
  // "[12:34:56] [info] message" (the library serialises calls to the sink).
  set_log_sink([colors](LogLevel level, std::string_view message) {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char stamp[16];
    std::strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
    const std::string_view name = to_string(level);
    std::fprintf(stderr, "[%s] [%s%.*s%s] %.*s\n", stamp, colors ? level_color(level) : "",
                 static_cast<int>(name.size()), name.data(), colors ? "\033[m" : "", static_cast<int>(message.size()),
                 message.data());
    std::fflush(stderr);
  });
}

Progress::Progress(std::string label, double total, bool quiet)
    : label_(std::move(label)), total_(total), enabled_(!quiet && total > 0 && isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() { finish(); }

void Progress::advance(double amount) {
  done_ = std::min(total_, done_ + amount);
  draw(false);
}

void Progress::clear() {
  if (!enabled_ || !drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

void Progress::finish() {
  if (finished_) return;
  clear();
  finished_ = true;
}

void Progress::draw(bool force) {
  if (!enabled_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  // Redrawing is cheap but a terminal flooded with updates is not: at most 10 per second.
  if (!force && drawn_ && now - last_draw_ < std::chrono::milliseconds(100) && done_ < total_) return;
  last_draw_ = now;
  const double frac = total_ > 0 ? done_ / total_ : 1.0;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(frac * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kWidth - filled), '.');
  std::string eta = "--:--";
  if (frac > 0.005 && elapsed > 0.5) {
    const long s = std::lround(elapsed * (1 - frac) / frac);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    eta = buf;
  }
  std::fprintf(stderr, "\r\033[K%s [%s] %5.1f%%  ETA %s", label_.c_str(), bar.c_str(), 100 * frac, eta.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) bytes /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

namespace {

void print_help() {
  std::printf(
      "lowbit %s: low-bit quantization of LLM weights (GGML block formats, GSQ, GPTQ)\n"
      "\n"
      "usage: lowbit <command> [options]\n"
      "\n"
      "commands:\n"
      "  quantize  quantize a GGUF model: IN.gguf OUT.gguf TYPE, TYPE a format (Q8_0, ...)\n"
      "            or a llama-quantize mixture (Q4_K_M, ...), with --imatrix, --method\n"
      "            rtn|gsq|gptq (gptq true-sequential with --calib TEXT), per-tensor\n"
      "            overrides, --target-bpw, split output, --resume; TYPE GPTQ_INT4\n"
      "            (2, 3, 8) writes a Hugging Face GPTQ checkpoint folder (see\n"
      "            `lowbit quantize --help`)\n"
      "  inspect   print a GGUF or safetensors file's metadata and tensor table (--json)\n"
      "  compare   per-tensor relative RMSE and cosine similarity of two model files\n"
      "  bench     time the CPU kernels (gemv, gemm, dequantize, activations, quantize)\n"
      "            next to the memory / SGEMM ceiling and ggml, in one run (--json)\n"
      "  eval      perplexity, KL divergence against a base model and tokens/s of a\n"
      "            llama-architecture GGUF with lowbit's runtime (--text FILE, --base)\n"
      "  calibrate an importance matrix (llama.cpp's GGUF imatrix format) and, with\n"
      "            --hessians DIR, GPTQ Hessians from running a model over a text\n"
      "  demo      quantize a synthetic weight matrix with every format and print size,\n"
      "            quality and speed (the built-in default job; see `lowbit demo --help`)\n"
      "  formats   list the block formats with their GGML ids and bits per weight\n"
      "\n"
      "options:\n"
      "  -h, --help     this text (every command also takes --help)\n"
      "  --version      print the version\n"
      "\n"
      "environment:\n"
      "  LOWBIT_ISA     limit the SIMD kernels to a CPU feature set (scalar, avx2, avx512,\n"
      "                 avx512vnni, ... or features joined by '+'), e.g. for a bug report;\n"
      "                 the output bytes are the same either way\n"
      "\n"
      "Exit status: 0 success, 1 error (message on stderr), 2 bad command line.\n",
      kVersionString);
}

int run_formats() {
  std::printf("%-7s %8s %10s %12s %10s  %s\n", "format", "ggml id", "elems/blk", "bytes/blk", "bits/wt", "use");
  for (const auto& t : all_formats())
    std::printf("%-7s %8u %10d %12d %10.4f  %s\n", t.name.data(), t.ggml_type, t.block_elems, t.block_bytes,
                t.bits_per_weight(),
                !t.quantized ? "plain float" : t.activation_only ? "activations (dot-product partner)" : "weights");
  return 0;
}

}  // namespace
}  // namespace lowbit::cli

int main(int argc, char** argv) {
  using namespace lowbit::cli;
  Args args;
  for (int i = 1; i < argc; ++i) args.items.emplace_back(argv[i]);
  try {
    if (args.done()) {
      print_help();
      return 2;
    }
    const std::string cmd = args.next();
    if (cmd == "-h" || cmd == "--help" || cmd == "help") {
      print_help();
      return 0;
    }
    if (cmd == "--version") {
      std::printf("lowbit %s\n", lowbit::kVersionString);
      return 0;
    }
    if (cmd == "demo") return run_demo(args);
    if (cmd == "formats") return run_formats();
    if (cmd == "quantize") return run_quantize(args);
    if (cmd == "inspect") return run_inspect(args);
    if (cmd == "compare") return run_compare(args);
    if (cmd == "bench") return run_bench(args);
    if (cmd == "eval") return run_eval(args);
    if (cmd == "calibrate") return run_calibrate(args);
    std::fprintf(stderr, "lowbit: unknown command '%s' (try lowbit --help)\n", cmd.c_str());
    return 2;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "lowbit: error: %s (try --help)\n", e.what());
    return 2;
  } catch (const lowbit::Error& e) {
    std::fprintf(stderr, "lowbit: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    // Out of memory, a filesystem error outside the library: still a message, never a crash.
    std::fprintf(stderr, "lowbit: error: %s\n", e.what());
    return 1;
  }
}
