// `lowbit`: the command-line front door to the library.
#include <cstdio>
#include <exception>
#include <string>

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
    throw Error(option + " expects an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
                "], got '" + value + "'");
  return v;
}

namespace {

void print_help() {
  std::printf(
      "lowbit %s: low-bit quantization of LLM weights (GGML block formats, GSQ, GPTQ)\n"
      "\n"
      "usage: lowbit <command> [options]\n"
      "\n"
      "commands:\n"
      "  demo      quantize a synthetic weight matrix with every format and print size,\n"
      "            quality and speed (the built-in default job; see `lowbit demo --help`)\n"
      "  formats   list the block formats with their GGML ids and bits per weight\n"
      "\n"
      "options:\n"
      "  -h, --help     this text\n"
      "  --version      print the version\n",
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
    std::fprintf(stderr, "lowbit: unknown command '%s' (try lowbit --help)\n", cmd.c_str());
    return 2;
  } catch (const lowbit::Error& e) {
    std::fprintf(stderr, "lowbit: error: %s\n", e.what());
    return 1;
  }
}
