// libFuzzer target for lowbit::GgufFile. Every input is offered as a file; the
// reader must either refuse it with lowbit::Error or return a file whose every
// metadata value, tensor info and tensor view is usable: views inside the file,
// byte counts that match shape and format, data that dequantizes, and a
// GgufWriter copy that reads back identical. Anything else (another exception, a
// sanitizer report, a broken invariant) aborts and libFuzzer saves the input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "fuzz_common.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/formats/format.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/formats/quantize.hpp"

namespace {

using lowbit_fuzz::require;

// Dequantizing is bounded so a tiny file with a legal but huge shape cannot
// make the harness, rather than the reader, slow.
constexpr int64_t kMaxDequantizeElements = int64_t{1} << 20;

uint64_t visit_value(const lowbit::GgufValue& v, int depth) {
  require(depth < 64, "metadata nested implausibly deep");
  return std::visit(
      [&](const auto& x) -> uint64_t {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return lowbit_fuzz::touch(reinterpret_cast<const std::byte*>(x.data()), x.size());
        } else if constexpr (std::is_same_v<T, lowbit::GgufArray>) {
          uint64_t h = static_cast<uint64_t>(x.element_type) + x.items.size();
          for (const auto& item : x.items) {
            require(item.type() == x.element_type, "array item type differs from the element type");
            h += visit_value(item, depth + 1);
          }
          return h;
        } else if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
          return x == x ? 1 : 2;  // NaN is a legal value
        } else {
          return static_cast<uint64_t>(x);
        }
      },
      v.storage());
}

void check_tensor(const lowbit::GgufFile& f, const lowbit::GgufTensorInfo& t) {
  const std::span<const std::byte> d = f.data(t);
  require(d.size() == t.nbytes, "tensor " + t.name + ": view size differs from nbytes");
  require(t.file_offset >= f.data_offset() && t.file_offset - f.data_offset() == t.offset,
          "tensor " + t.name + ": file_offset does not match offset");
  // (With no tensor bytes the data section may start past the end of the file.)
  require(t.nbytes == 0 || (t.file_offset <= f.file_size() && t.nbytes <= f.file_size() - t.file_offset),
          "tensor " + t.name + ": data past the end of the file");
  require(t.file_offset % f.alignment() == 0, "tensor " + t.name + ": misaligned data");
  require(f.find_tensor(t.name) != nullptr, "tensor " + t.name + ": not found by name");
  lowbit_fuzz::sink(lowbit_fuzz::touch(d.data(), d.size()));

  const int64_t elements = t.elements();
  require(elements >= 0, "tensor " + t.name + ": negative element count");
  require(t.row_length() * t.rows() == elements, "tensor " + t.name + ": rows * row length != elements");
  require(lowbit::quantized_size(t.format, t.rows(), t.row_length()) == t.nbytes,
          "tensor " + t.name + ": nbytes differs from the format's size");
  // rows() alone bounds the work too: a shape like {0, 2^40} has no elements but
  // 2^40 empty rows.
  if (elements <= kMaxDequantizeElements && t.rows() <= kMaxDequantizeElements) {
    std::vector<float> out(static_cast<size_t>(elements));
    lowbit::dequantize(t.format, d, lowbit::MatrixView<float>(out.data(), t.rows(), t.row_length()));
  }
}

// What GgufWriter produces from an accepted file must read back the same.
void check_round_trip(const lowbit::GgufFile& f) {
  lowbit::GgufWriter w;
  try {
    w.copy_metadata(f);
    for (const auto& t : f.tensors()) w.add_tensor(t.name, t.shape, t.format, f.data(t));
  } catch (const lowbit::Error&) {
    return;  // the writer may be stricter than the reader (e.g. more than 4 dims)
  }
  const std::vector<std::byte> bytes = w.serialize();
  static lowbit_fuzz::MemFile copy("lowbit-fuzz-gguf-copy");
  const lowbit::GgufFile g = lowbit::GgufFile::open(copy.write(bytes.data(), bytes.size()));
  require(g.metadata().size() == f.metadata().size(), "round trip changed the metadata count");
  for (size_t i = 0; i < f.metadata().size(); ++i) {
    require(g.metadata()[i].key == f.metadata()[i].key, "round trip changed key " + f.metadata()[i].key);
    require(g.metadata()[i].value == f.metadata()[i].value, "round trip changed the value of " + f.metadata()[i].key);
  }
  require(g.tensors().size() == f.tensors().size(), "round trip changed the tensor count");
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const auto& a = f.tensors()[i];
    const auto& b = g.tensors()[i];
    require(a.name == b.name && a.shape == b.shape && a.format == b.format, "round trip changed tensor " + a.name);
    const auto da = f.data(a);
    const auto db = g.data(b);
    require(std::equal(da.begin(), da.end(), db.begin(), db.end()), "round trip changed the data of " + a.name);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static lowbit_fuzz::MemFile input("lowbit-fuzz-gguf");
  return lowbit_fuzz::run_one(
      input, data, size, [](const std::string& path) { return lowbit::GgufFile::open(path); },
      [](const lowbit::GgufFile& f) {
        require(f.alignment() > 0 && (f.alignment() & (f.alignment() - 1)) == 0, "alignment not a power of two");
        require(f.alignment() <= (size_t{1} << 20), "alignment above the 1 MiB limit accepted");
        uint64_t h = f.version();
        for (const auto& kv : f.metadata()) {
          require(f.find(kv.key) != nullptr, "key " + kv.key + " not found by name");
          h += lowbit_fuzz::touch(reinterpret_cast<const std::byte*>(kv.key.data()), kv.key.size());
          h += visit_value(kv.value, 0);
        }
        lowbit_fuzz::sink(h);
        for (const auto& t : f.tensors()) check_tensor(f, t);
        check_round_trip(f);
      });
}
