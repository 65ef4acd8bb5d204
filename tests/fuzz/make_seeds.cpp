// Writes the fuzzers' seed corpora: a few small, valid GGUF and safetensors files
// that between them use every metadata value type, every tensor format and dtype,
// nested and empty arrays, a non-default alignment, 0-d and empty tensors, each
// under 4 KiB (the fuzzers' input size limit). lowbit's own writers produce them
// at build time, so they follow the formats as the library does; the fuzzers
// mutate them into the broken files.
// The newer targets get theirs here too: importance matrices in both formats, HF GPTQ
// checkpoints packed as fuzz_hf_checkpoint reads them, small llama-like models for the
// quantize pipeline and one block-aligned input per format for the kernels.
//   lowbit_fuzz_seeds OUT_DIR   ->  OUT_DIR/<target>/* for gguf, safetensors, imatrix,
//                                   hf_checkpoint, quantize_model, kernels
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <cstring>
#include <iterator>

#include "lowbit/core/synthetic.hpp"
#include "lowbit/formats/format.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/gptq/solver.hpp"
#include "lowbit/gsq/hf_layout.hpp"
#include "lowbit/gsq/quantizer.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/hf_checkpoint.hpp"
#include "lowbit/io/safetensors.hpp"

namespace fs = std::filesystem;
using lowbit::GgufValue;

namespace {

void save(const fs::path& path, const std::vector<std::byte>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

// `rows` rows of one block each, quantized from synthetic weights.
std::vector<std::byte> encoded(lowbit::Format f, int64_t rows, int64_t cols) {
  const std::vector<float> w = lowbit::synthetic_weights(rows, cols, 7, lowbit::Distribution::gaussian);
  std::vector<std::byte> out(lowbit::quantized_size(f, rows, cols));
  lowbit::quantize(f, lowbit::ConstMatrixView<float>(w.data(), rows, cols), out);
  return out;
}

void gguf_seeds(const fs::path& dir) {
  // Every metadata type once, arrays of scalars and strings, a nested and an empty array.
  lowbit::GgufWriter meta;
  meta.set("general.architecture", "llama");
  meta.set("general.alignment", uint32_t{64});
  meta.set("u8", uint8_t{200});
  meta.set("i8", int8_t{-100});
  meta.set("u16", uint16_t{60000});
  meta.set("i16", int16_t{-30000});
  meta.set("u32", uint32_t{4000000000u});
  meta.set("i32", int32_t{-2000000000});
  meta.set("f32", 1.5f);
  meta.set("bool", true);
  meta.set("u64", uint64_t{1} << 63);
  meta.set("i64", int64_t{-1} << 62);
  meta.set("f64", -0.25);
  meta.set("ints", GgufValue::array<int32_t>({1, -2, 3}));
  meta.set("floats", GgufValue::array<float>({0.5f, -1.0f}));
  const std::vector<std::string> words = {"a", "", "ünïcode"};
  meta.set("strings", GgufValue::array_of_strings(words));
  lowbit::GgufArray nested{lowbit::GgufType::array, {GgufValue::array<uint8_t>({1, 2}), GgufValue::array<uint8_t>({})}};
  meta.set("nested", GgufValue(nested));
  meta.set("empty", GgufValue(lowbit::GgufArray{lowbit::GgufType::string, {}}));
  meta.add_tensor("scalar", {}, lowbit::Format::F32, encoded(lowbit::Format::F32, 1, 1));
  save(dir / "metadata.gguf", meta.serialize());

  // One block of every format, and 1-d to 4-d shapes.
  lowbit::GgufWriter all;
  for (const auto& t : lowbit::all_formats()) {
    const int64_t cols = t.block_elems > 1 ? t.block_elems : 8;
    all.add_tensor(std::string("w.") + std::string(t.name), {cols}, t.format, encoded(t.format, 1, cols));
  }
  all.add_tensor("cube", {8, 2, 2}, lowbit::Format::F16, encoded(lowbit::Format::F16, 4, 8));
  all.add_tensor("hyper", {4, 1, 2, 1}, lowbit::Format::BF16, encoded(lowbit::Format::BF16, 2, 4));
  save(dir / "all_formats.gguf", all.serialize());

  save(dir / "empty.gguf", lowbit::GgufWriter().serialize());
}

void safetensors_seeds(const fs::path& dir) {
  // Every dtype once, with metadata.
  lowbit::SafetensorsWriter all;
  all.set_metadata("format", "pt");
  all.set_metadata("note", "ünïcode");
  for (int d = static_cast<int>(lowbit::SafetensorsDtype::BOOL); d <= static_cast<int>(lowbit::SafetensorsDtype::C64);
       ++d) {
    const auto dtype = static_cast<lowbit::SafetensorsDtype>(d);
    std::vector<std::byte> bytes(3 * lowbit::element_size(dtype));
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = std::byte(dtype == lowbit::SafetensorsDtype::BOOL ? i % 2 : 17 * i + 60);
    all.add("t." + std::string(lowbit::to_string(dtype)), dtype, {3}, bytes);
  }
  save(dir / "dtypes.safetensors", all.serialize());

  // A 0-d tensor, an empty one and a 2-d F32 matrix.
  lowbit::SafetensorsWriter shapes;
  const std::vector<float> one = {2.0f};
  shapes.add_float32("scalar", {}, one);
  shapes.add_float32("none", {0, 3}, {});
  const std::vector<float> m = lowbit::synthetic_weights(2, 3, 1, lowbit::Distribution::heavy_tailed);
  shapes.add_float32("model.layers.0.weight", {2, 3}, m);
  save(dir / "shapes.safetensors", shapes.serialize());

  save(dir / "empty.safetensors", lowbit::SafetensorsWriter().serialize());
}

std::vector<std::byte> floats(const std::vector<float>& v) {
  std::vector<std::byte> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::vector<std::byte> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> b(c.size());
  std::memcpy(b.data(), c.data(), c.size());
  return b;
}

void imatrix_seeds(const fs::path& dir) {
  // GGUF: two weights, one a 2-matrix (MoE) entry, with the metadata llama-imatrix writes.
  lowbit::GgufWriter g;
  const std::vector<std::string> datasets = {"wiki.train"};
  g.set("imatrix.datasets", GgufValue::array_of_strings(datasets));
  g.set("imatrix.chunk_count", uint32_t{10});
  g.set("imatrix.chunk_size", uint32_t{512});
  g.add_tensor("blk.0.attn_q.weight.in_sum2", {8, 1}, lowbit::Format::F32, floats({1, 2, 3, 4, 5, 6, 7, 0}));
  g.add_tensor("blk.0.attn_q.weight.counts", {1, 1}, lowbit::Format::F32, floats({4}));
  g.add_tensor("blk.0.ffn_down_exps.weight.in_sum2", {4, 2}, lowbit::Format::F32, floats({1, 2, 3, 4, 8, 8, 8, 8}));
  g.add_tensor("blk.0.ffn_down_exps.weight.counts", {1, 2}, lowbit::Format::F32, floats({2, 0}));
  save(dir / "imatrix.gguf", g.serialize());

  // Legacy .dat: i32 n; per entry i32 len, name, i32 ncall, i32 nval, floats; trailer.
  std::vector<std::byte> d;
  auto put = [&](const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    d.insert(d.end(), b, b + n);
  };
  auto i32 = [&](int32_t v) { put(&v, 4); };
  i32(2);
  for (const std::string name : {"blk.0.attn_q.weight", "output.weight"}) {
    i32(static_cast<int32_t>(name.size()));
    put(name.data(), name.size());
    i32(3);
    i32(4);
    for (float v : {3.0f, 6.0f, 0.0f, 1.5f}) put(&v, 4);
  }
  i32(7);
  i32(4);
  put("wiki", 4);
  save(dir / "imatrix.dat", d);
}

// [u16 config length][quantize_config.json][model.safetensors], fuzz_hf_checkpoint's input.
void hf_checkpoint_seeds(const fs::path& dir, const fs::path& scratch) {
  for (const int version : {1, 2}) {
    lowbit::GsqConfig cfg;
    cfg.bits = 4;
    cfg.group_size = 32;
    cfg.scheme = version == 1 ? lowbit::GsqScheme::symmetric : lowbit::GsqScheme::asymmetric;
    cfg.search = lowbit::ScaleSearch::rtn;
    const std::vector<float> w = lowbit::synthetic_weights(8, 64, 3, lowbit::Distribution::gaussian);
    const lowbit::GsqResult q = lowbit::gsq_quantize(cfg, lowbit::ConstMatrixView<float>(w.data(), 8, 64));
    const std::vector<lowbit::HfGptqLayer> layers = {{"model.layers.0.mlp.up_proj", lowbit::to_hf_gptq(q, version)}};
    fs::create_directories(scratch);
    lowbit::save_hf_gptq_checkpoint(scratch, layers, cfg, lowbit::GptqConfig{}, version);
    const std::vector<std::byte> config = read_file(scratch / "quantize_config.json");
    const std::vector<std::byte> tensors = read_file(scratch / "model.safetensors");
    std::vector<std::byte> input = {std::byte(config.size() & 0xff), std::byte(config.size() >> 8)};
    input.insert(input.end(), config.begin(), config.end());
    input.insert(input.end(), tensors.begin(), tensors.end());
    save(dir / ("gptq_v" + std::to_string(version) + ".bin"), input);
  }
  fs::remove_all(scratch);
}

void quantize_model_seeds(const fs::path& dir) {
  // A llama-like model: GQA 2, two layers, row length 32 (so K-quants fall back), every
  // role the rules single out, stored as F32, F16 and Q8_0.
  lowbit::GgufWriter m;
  m.set("general.architecture", "llama");
  m.set("llama.block_count", uint32_t{2});
  m.set("llama.attention.head_count", uint32_t{4});
  m.set("llama.attention.head_count_kv", uint32_t{2});
  m.add_tensor("token_embd.weight", {32, 4}, lowbit::Format::F16, encoded(lowbit::Format::F16, 4, 32));
  m.add_tensor("output_norm.weight", {32}, lowbit::Format::F32, encoded(lowbit::Format::F32, 1, 32));
  for (int l = 0; l < 2; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    m.add_tensor(b + "attn_v.weight", {32, 2}, lowbit::Format::Q8_0, encoded(lowbit::Format::Q8_0, 2, 32));
    m.add_tensor(b + "ffn_down.weight", {32, 2}, lowbit::Format::F32, encoded(lowbit::Format::F32, 2, 32));
  }
  save(dir / "llama_small.gguf", m.serialize());

  // Row length 256: K-quant targets apply without fallback; a tied output (no output.weight).
  lowbit::GgufWriter k;
  k.set("general.architecture", "llama");
  k.set("llama.block_count", uint32_t{1});
  k.add_tensor("token_embd.weight", {256, 2}, lowbit::Format::Q4_0, encoded(lowbit::Format::Q4_0, 2, 256));
  k.add_tensor("blk.0.attn_q.weight", {256, 2}, lowbit::Format::Q4_K, encoded(lowbit::Format::Q4_K, 2, 256));
  k.add_tensor("blk.0.ffn_gate_exps.weight", {32, 1, 2}, lowbit::Format::F16, encoded(lowbit::Format::F16, 2, 32));
  save(dir / "llama_256.gguf", k.serialize());
}

// fuzz_kernels' layout: format index, flags, rows, blocks per row, 0, then bytes.
void kernel_seeds(const fs::path& dir) {
  const auto formats = lowbit::all_formats();
  for (size_t i = 0; i < formats.size(); ++i) {
    const lowbit::FormatTraits& t = formats[i];
    const int64_t cols = t.block_elems;
    std::vector<std::byte> in = {std::byte(i), std::byte(0x0b), std::byte(2), std::byte(1), std::byte(0)};
    const std::vector<std::byte> blocks = encoded(t.format, 2, cols);
    in.insert(in.end(), blocks.begin(), blocks.end());
    const std::vector<std::byte> w = floats(lowbit::synthetic_weights(1, 64, 11, lowbit::Distribution::heavy_tailed));
    in.insert(in.end(), w.begin(), w.end());
    save(dir / ("kernel_" + std::string(t.name) + ".bin"), in);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  try {
    const fs::path out = argv[1];
    for (const char* target : {"gguf", "safetensors", "imatrix", "hf_checkpoint", "quantize_model", "kernels"})
      fs::create_directories(out / target);
    gguf_seeds(out / "gguf");
    safetensors_seeds(out / "safetensors");
    imatrix_seeds(out / "imatrix");
    hf_checkpoint_seeds(out / "hf_checkpoint", out / ("hf_scratch_" + std::to_string(::getpid())));
    quantize_model_seeds(out / "quantize_model");
    kernel_seeds(out / "kernels");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lowbit_fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
