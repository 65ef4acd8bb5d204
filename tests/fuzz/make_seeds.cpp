// Writes the fuzzers' seed corpora: a few small, valid GGUF and safetensors files
// that between them use every metadata value type, every tensor format and dtype,
// nested and empty arrays, a non-default alignment, 0-d and empty tensors, each
// under 4 KiB (the fuzzers' input size limit). lowbit's own writers produce them
// at build time, so they follow the formats as the library does; the fuzzers
// mutate them into the broken files.
//   lowbit_fuzz_seeds OUT_DIR   ->  OUT_DIR/gguf/*.gguf, OUT_DIR/safetensors/*.safetensors
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lowbit/core/synthetic.hpp"
#include "lowbit/formats/format.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/formats/quantize.hpp"

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

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  try {
    const fs::path out = argv[1];
    fs::create_directories(out / "gguf");
    fs::create_directories(out / "safetensors");
    gguf_seeds(out / "gguf");
    safetensors_seeds(out / "safetensors");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lowbit_fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
