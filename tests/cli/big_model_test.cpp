// `lowbit quantize` on a synthetic MoE model far larger than the memory it may use
// (docs/cli.md, "Memory"): big_model_test LOWBIT WORK_DIR [LAYERS].
//
// Writes an F16 llama-style MoE model (3-D expert tensors; 88 layers, 2.5 GiB, by
// default) into WORK_DIR with the streaming writer, after checking that WORK_DIR's
// file system has room for it and the outputs (else it fails, naming the bytes
// needed), then runs the lowbit binary (`quantize ... --effort fast`, so the few GB
// take seconds per run) as a child process three ways and
// reads each child's peak resident memory from wait4()'s rusage (ru_maxrss: mapped
// input pages included, as /usr/bin/time -v reports it):
//   1. Q4_K_M to one file: peak RSS below the documented bound, and that bound far
//      below both the output and the input size;
//   2. the same with --split-max-size: the same bound; the parts hold the same
//      tensors and bytes as the single file;
//   3. kill -9 mid-run, then --resume: byte-identical to run 1.
// Everything written is removed at the end (also on failure). With --no-rss (the
// sanitizer build, whose shadow memory inflates RSS) the memory checks are skipped
// and the rest still runs, on a smaller model.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lowbit/core/half.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/gguf_stream.hpp"

namespace fs = std::filesystem;
using namespace lowbit;

namespace {

// The model: n_embd 1024, 8 experts of width 512, GQA 4, vocab 2048; 29 MiB of F16
// per layer, so the input grows with the layers while the largest tensor (and the
// bound) stays one 4M-element expert tensor.
constexpr int64_t kEmbd = 1024, kFf = 512, kExperts = 8, kKv = 256, kVocab = 2048;
constexpr int kDefaultLayers = 88;  // 2,563.5 MiB of F16
// The documented bound (docs/cli.md): 16 MiB plus 8 bytes per element of the largest
// tensor (its f32 copy 4, its F16 input pages 2, its output and the padded copy
// written, each at most 1.07 for types up to Q8_0).
constexpr double kBaseBytes = 16.0 * 1024 * 1024, kPerElement = 8.0;

[[noreturn]] void fail(const std::string& m) { throw std::runtime_error(m); }

struct Spec {
  std::string name;
  std::vector<int64_t> shape;
  Format format;
};

std::vector<Spec> model_specs(int layers) {
  std::vector<Spec> s{{"token_embd.weight", {kEmbd, kVocab}, Format::F16}};
  for (int l = 0; l < layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    s.push_back({b + "attn_norm.weight", {kEmbd}, Format::F32});
    s.push_back({b + "attn_q.weight", {kEmbd, kEmbd}, Format::F16});
    s.push_back({b + "attn_k.weight", {kEmbd, kKv}, Format::F16});
    s.push_back({b + "attn_v.weight", {kEmbd, kKv}, Format::F16});
    s.push_back({b + "attn_output.weight", {kEmbd, kEmbd}, Format::F16});
    s.push_back({b + "ffn_norm.weight", {kEmbd}, Format::F32});
    s.push_back({b + "ffn_gate_inp.weight", {kEmbd, kExperts}, Format::F32});
    s.push_back({b + "ffn_gate_exps.weight", {kEmbd, kFf, kExperts}, Format::F16});
    s.push_back({b + "ffn_up_exps.weight", {kEmbd, kFf, kExperts}, Format::F16});
    s.push_back({b + "ffn_down_exps.weight", {kFf, kEmbd, kExperts}, Format::F16});
  }
  s.push_back({"output_norm.weight", {kEmbd}, Format::F32});
  s.push_back({"output.weight", {kEmbd, kVocab}, Format::F16});
  return s;
}

void write_model(const fs::path& path, int layers) {
  GgufWriter layout;
  layout.set("general.architecture", "llama");
  layout.set("general.name", "lowbit big-model test");
  layout.set("llama.block_count", uint32_t(layers));
  layout.set("llama.embedding_length", uint32_t{kEmbd});
  layout.set("llama.feed_forward_length", uint32_t{kFf});
  layout.set("llama.attention.head_count", uint32_t{16});
  layout.set("llama.attention.head_count_kv", uint32_t{4});
  layout.set("llama.expert_count", uint32_t{kExperts});
  layout.set("llama.expert_used_count", uint32_t{2});
  const auto specs = model_specs(layers);
  for (const Spec& s : specs) layout.declare_tensor(s.name, s.shape, s.format);
  GgufStreamWriter w(layout, path);
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (const Spec& s : specs) {
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    std::vector<std::byte> b(static_cast<size_t>(n) * (s.format == Format::F16 ? 2 : 4));
    for (int64_t i = 0; i < n; ++i) {
      state ^= state << 13, state ^= state >> 7, state ^= state << 17;  // xorshift64
      // Sum of two uniforms in [-1, 1): a triangular, weight-like spread.
      const float v = (float((state >> 40) & 0xFFFF) + float((state >> 16) & 0xFFFF)) / 65536.0f - 1.0f;
      if (s.format == Format::F16) {
        const uint16_t h = fp32_to_fp16(0.05f * v);
        std::memcpy(b.data() + 2 * i, &h, 2);
      } else {
        const float f = 1.0f + 0.1f * v;
        std::memcpy(b.data() + 4 * i, &f, 4);
      }
    }
    w.write(b);
  }
  w.finish();
}

struct Child {
  pid_t pid = -1;
};

Child spawn(const std::vector<std::string>& argv, const fs::path& log) {
  const pid_t pid = ::fork();
  if (pid < 0) fail("fork failed");
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    _exit(127);
  }
  return {pid};
}

// Waits; returns the child's peak RSS in bytes. Fails unless it exited 0 (or was killed when `killed`).
double wait_rss(Child c, const fs::path& log, bool killed = false) {
  int status = 0;
  struct rusage ru {};
  if (::wait4(c.pid, &status, 0, &ru) != c.pid) fail("wait4 failed");
  const bool ok = killed ? WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL : WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok) {
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    fail("lowbit exited with status " + std::to_string(status) + "; its output:\n" + text.substr(text.size() > 4000 ? text.size() - 4000 : 0));
  }
  return double(ru.ru_maxrss) * 1024.0;
}

bool same_file(const fs::path& a, const fs::path& b) {
  std::ifstream x(a, std::ios::binary), y(b, std::ios::binary);
  std::vector<char> p(1 << 20), q(1 << 20);
  while (x && y) {
    x.read(p.data(), p.size());
    y.read(q.data(), q.size());
    if (x.gcount() != y.gcount() || std::memcmp(p.data(), q.data(), size_t(x.gcount())) != 0) return false;
  }
  return x.eof() && y.eof();
}

size_t lines_of(const fs::path& p) {
  std::ifstream in(p);
  size_t n = 0;
  for (std::string l; std::getline(in, l);) ++n;
  return n;
}

double mib(double b) { return b / 1048576.0; }

// Bytes of tensor data in the F16 input.
uint64_t input_bytes(int layers) {
  uint64_t total = 0;
  for (const Spec& s : model_specs(layers)) {
    uint64_t n = 1;
    for (int64_t d : s.shape) n *= uint64_t(d);
    total += n * (s.format == Format::F16 ? 2 : 4);
  }
  return total;
}

// Fails unless `dir`'s file system has room for the input and, at the peak (run 2),
// two outputs (each under half the F16 input for Q4_K_M), plus 64 MiB for metadata,
// padding and logs.
void check_space(const fs::path& dir, int layers) {
  const uint64_t in = input_bytes(layers), need = in + in + (uint64_t(64) << 20);
  const uint64_t avail = fs::space(dir).available;
  if (avail < need)
    fail("not enough disk space in " + dir.string() + ": the test needs " + std::to_string(need) + " bytes (" +
         std::to_string(uint64_t(mib(double(need)))) + " MiB: the " + std::to_string(uint64_t(mib(double(in)))) +
         " MiB input and two outputs), " + std::to_string(avail) + " bytes are free; pass fewer LAYERS or another WORK_DIR");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: big_model_test LOWBIT WORK_DIR [LAYERS] [--no-rss]\n");
    return 2;
  }
  const std::string lowbit = argv[1];
  const fs::path dir = argv[2];
  const int layers = argc > 3 ? std::atoi(argv[3]) : kDefaultLayers;
  const bool check_rss = !(argc > 4 && std::string(argv[4]) == "--no-rss");
  fs::remove_all(dir);
  fs::create_directories(dir);
  int rc = 0;
  try {
    const auto t0 = std::chrono::steady_clock::now();
    check_space(dir, layers);
    const fs::path in = dir / "big-f16.gguf";
    write_model(in, layers);
    int64_t largest = 0, tensors = 0;
    for (const Spec& s : model_specs(layers)) {
      int64_t n = 1;
      for (int64_t d : s.shape) n *= d;
      largest = std::max(largest, n), ++tensors;
    }
    const double bound = kBaseBytes + kPerElement * double(largest);
    std::printf("model: %d layers, %lld tensors, %.1f MiB F16 (written in %.1f s); largest tensor %lld elements; bound %.1f MiB\n",
                layers, static_cast<long long>(tensors), mib(double(fs::file_size(in))),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                static_cast<long long>(largest), mib(bound));
    std::fflush(stdout);
    const auto since = [](auto t) { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count(); };

    // 1. One output file.
    const fs::path a = dir / "a.gguf";
    auto t = std::chrono::steady_clock::now();
    const double rss1 = wait_rss(spawn({lowbit, "quantize", in, a, "Q4_K_M", "--effort", "fast", "--quiet"}, dir / "a.log"), dir / "a.log");
    const double out_size = double(fs::file_size(a));
    std::printf("Q4_K_M: output %.1f MiB, peak RSS %.1f MiB (bound %.1f MiB), %.1f s\n", mib(out_size), mib(rss1), mib(bound),
                since(t));
    std::fflush(stdout);
    if (check_rss && rss1 > bound) fail("peak RSS above the bound");
    if (check_rss && bound > out_size / 2) fail("the model is too small for the bound to mean anything (bound above half the output)");

    // 2. Split output: same bound, same tensors.
    t = std::chrono::steady_clock::now();
    const double rss2 = wait_rss(spawn({lowbit, "quantize", in, dir / "s.gguf", "Q4_K_M", "--effort", "fast", "--quiet", "--split-max-size",
                                        std::to_string(uint64_t(out_size / 3))},
                                       dir / "s.log"),
                                 dir / "s.log");
    fs::path first;
    for (const auto& p : fs::directory_iterator(dir))
      if (p.path().filename().string().starts_with("s-00001-of-")) first = p.path();
    if (first.empty()) fail("the split run wrote no s-00001-of-N.gguf");
    std::printf("split: %s, peak RSS %.1f MiB, %.1f s\n", first.filename().c_str(), mib(rss2), since(t));
    std::fflush(stdout);
    if (check_rss && rss2 > bound) fail("peak RSS of the split run above the bound");
    {
      const GgufFile whole = GgufFile::open(a), split = GgufFile::open(first);
      // A third of the output per part: 3 parts, or 4 where padding tips the last over.
      if (split.paths().size() < 3) fail("expected 3 or more parts, got " + std::to_string(split.paths().size()));
      if (split.tensors().size() != whole.tensors().size()) fail("split: tensor count differs");
      for (size_t i = 0; i < whole.tensors().size(); ++i) {
        const auto x = whole.data(whole.tensors()[i]), y = split.data(split.tensors()[i]);
        if (whole.tensors()[i].name != split.tensors()[i].name || !std::equal(x.begin(), x.end(), y.begin(), y.end()))
          fail("split: tensor " + whole.tensors()[i].name + " differs");
        whole.release(whole.tensors()[i]);
        split.release(split.tensors()[i]);
      }
    }
    for (const auto& p : fs::directory_iterator(dir))
      if (p.path().filename().string().starts_with("s-")) fs::remove(p.path());

    // 3. kill -9 after about half the tensors, then --resume.
    const fs::path b = dir / "b.gguf", journal = dir / "b.gguf.partial-journal";
    t = std::chrono::steady_clock::now();
    const Child c = spawn({lowbit, "quantize", in, b, "Q4_K_M", "--effort", "fast", "--quiet"}, dir / "b.log");
    const size_t half = size_t(tensors) / 2;
    for (int i = 0; i < 60000 && lines_of(journal) < 1 + half; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ::kill(c.pid, SIGKILL);
    wait_rss(c, dir / "b.log", true);
    const size_t done = lines_of(journal) - 1;
    if (fs::exists(b)) fail("a killed run left " + b.string());
    if (!fs::exists(dir / "b.gguf.partial")) fail("a killed run left no partial file");
    const double rss3 = wait_rss(spawn({lowbit, "quantize", in, b, "Q4_K_M", "--effort", "fast", "--resume"}, dir / "r.log"), dir / "r.log");
    std::ifstream log(dir / "r.log");
    const std::string text((std::istreambuf_iterator<char>(log)), {});
    const std::string want = "resuming: " + std::to_string(done) + " of " + std::to_string(tensors);
    if (text.find(want) == std::string::npos) fail("the resumed run does not say '" + want + "'");
    if (!same_file(a, b)) fail("the resumed output differs from the uninterrupted one");
    if (fs::exists(dir / "b.gguf.partial") || fs::exists(journal)) fail("the resumed run left its partial files");
    std::printf("kill -9 after %zu of %lld tensors, --resume: byte-identical; peak RSS %.1f MiB, %.1f s\n", done,
                static_cast<long long>(tensors), mib(rss3), since(t));
    if (check_rss && rss3 > bound) fail("peak RSS of the resumed run above the bound");
    std::printf("ok (%.1f s)\n", since(t0));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAIL: %s\n", e.what());
    rc = 1;
  }
  fs::remove_all(dir);
  return rc;
}
