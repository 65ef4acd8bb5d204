// Example 2: read a GGUF model the way an inference engine does.
//
//   02_read_gguf [MODEL.gguf]
//
// Without an argument it first writes a tiny two-tensor GGUF with lowbit's writer
// into the temporary folder (removed at the end), so it runs anywhere. Then it opens the file (memory-mapped
// and validated: a broken file is a lowbit::Error naming the field and byte offset),
// prints the architecture and the tensor table, decodes one tensor to float32 with
// lowbit::dequantize and prints a checksum of the values.
#include <lowbit/io/model_file.hpp>  // shape_string
#include <lowbit/lowbit.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace {

// A tiny model: one Q4_K weight [out 4 x in 256] and one F32 norm [256].
std::filesystem::path write_tiny_model() {
  const int64_t rows = 4, cols = 256;  // GGUF shape order is {ne0 = cols, ne1 = rows}
  std::vector<float> w = lowbit::synthetic_weights(rows, cols, /*seed=*/7);
  std::vector<std::byte> q4k(lowbit::quantized_size(lowbit::Format::Q4_K, rows, cols));
  lowbit::quantize(lowbit::Format::Q4_K, {w.data(), rows, cols}, q4k);

  std::vector<float> norm(cols, 1.0f);
  std::vector<std::byte> norm_bytes(norm.size() * sizeof(float));
  std::memcpy(norm_bytes.data(), norm.data(), norm_bytes.size());

  lowbit::GgufWriter writer;
  writer.set("general.architecture", "llama");
  writer.set("general.name", "lowbit example 02");
  writer.add_tensor("blk.0.attn_q.weight", {cols, rows}, lowbit::Format::Q4_K, std::move(q4k));
  writer.add_tensor("blk.0.attn_norm.weight", {cols}, lowbit::Format::F32, std::move(norm_bytes));
  const auto path =
      std::filesystem::temp_directory_path() / ("lowbit_example_02." + std::to_string(::getpid()) + ".gguf");
  writer.write(path);  // atomic: temporary file, fsync, rename
  return path;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const bool own_file = argc < 2;
    const std::filesystem::path path = own_file ? write_tiny_model() : std::filesystem::path(argv[1]);
    const lowbit::GgufFile file = lowbit::GgufFile::open(path);
    if (own_file) std::filesystem::remove(path);  // the mapping stays valid until `file` goes

    const lowbit::GgufValue* arch = file.find("general.architecture");
    std::printf("%s: GGUF v%u, architecture %s, %zu tensors\n", path.string().c_str(), file.version(),
                arch && arch->is<std::string>() ? arch->as_string().c_str() : "?", file.tensors().size());
    for (const lowbit::GgufTensorInfo& t : file.tensors())
      std::printf("  %-32s %-16s %-6s %10zu bytes\n", t.name.c_str(), lowbit::shape_string(t.shape).c_str(),
                  lowbit::traits(t.format).name.data(), t.nbytes);

    if (file.tensors().empty()) return 0;

    // Decode the first tensor: rows() rows of row_length() (= ne0) values each. The
    // bytes are a view into the mapping, valid while `file` lives.
    const lowbit::GgufTensorInfo& t = file.tensors().front();
    std::vector<float> values(static_cast<size_t>(t.elements()));
    lowbit::dequantize(t.format, file.data(t), {values.data(), t.rows(), t.row_length()});
    double sum = 0, sum_abs = 0;
    for (float v : values) sum += v, sum_abs += v < 0 ? -v : v;
    std::printf("%s decoded from %s: %zu values, sum %.6f, sum |x| %.6f\n", t.name.c_str(),
                lowbit::traits(t.format).name.data(), values.size(), sum, sum_abs);
    return 0;
  } catch (const lowbit::Error& e) {
    std::fprintf(stderr, "02_read_gguf: %s\n", e.what());
    return 1;
  }
}
