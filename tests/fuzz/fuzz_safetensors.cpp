// libFuzzer target for lowbit::SafetensorsFile. Every input is offered as a file;
// the reader must either refuse it with lowbit::Error or return a file whose
// metadata and tensors are usable: each view inside the file with exactly
// numel * element size bytes, found by name, F32/F16/BF16 convertible, and a
// SafetensorsWriter copy that reads back identical. Anything else (another
// exception, a sanitizer report, a broken invariant) aborts and libFuzzer saves
// the input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/io/safetensors.hpp"

namespace {

using lowbit_fuzz::require;
using lowbit::SafetensorsDtype;

uint64_t touch_string(const std::string& s) {
  return lowbit_fuzz::touch(reinterpret_cast<const std::byte*>(s.data()), s.size());
}

void check_tensor(const lowbit::SafetensorsFile& f, const lowbit::SafetensorsTensor& t) {
  require(f.find(t.name) == &t, "tensor " + t.name + ": not found by name");
  const uint64_t numel = t.numel();
  const size_t esize = lowbit::element_size(t.dtype);
  require(esize > 0 && t.data.size() % esize == 0 && t.data.size() / esize == numel,
          "tensor " + t.name + ": byte count != numel * element size");
  lowbit_fuzz::sink(touch_string(t.name) + lowbit_fuzz::touch(t.data.data(), t.data.size()));
  if (t.dtype == SafetensorsDtype::F32 || t.dtype == SafetensorsDtype::F16 || t.dtype == SafetensorsDtype::BF16) {
    const std::vector<float> v = lowbit::to_float32(t);
    require(v.size() == numel, "tensor " + t.name + ": to_float32 returned the wrong count");
  }
}

// What SafetensorsWriter produces from an accepted file must read back the same.
void check_round_trip(const lowbit::SafetensorsFile& f) {
  lowbit::SafetensorsWriter w;
  try {
    for (const auto& [k, v] : f.metadata()) w.set_metadata(k, v);
    for (const auto& t : f.tensors()) w.add(t.name, t.dtype, t.shape, t.data);
  } catch (const lowbit::Error&) {
    return;  // the writer may be stricter than the reader
  }
  const std::vector<std::byte> bytes = w.serialize();
  static lowbit_fuzz::MemFile copy("lowbit-fuzz-safetensors-copy");
  const auto g = lowbit::SafetensorsFile::open(copy.write(bytes.data(), bytes.size()));
  require(g.metadata() == f.metadata(), "round trip changed the metadata");
  require(g.tensors().size() == f.tensors().size(), "round trip changed the tensor count");
  for (const auto& a : f.tensors()) {
    const lowbit::SafetensorsTensor* b = g.find(a.name);
    require(b != nullptr, "round trip lost tensor " + a.name);
    require(b->dtype == a.dtype && b->shape == a.shape, "round trip changed tensor " + a.name);
    require(std::equal(a.data.begin(), a.data.end(), b->data.begin(), b->data.end()),
            "round trip changed the data of " + a.name);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static lowbit_fuzz::MemFile input("lowbit-fuzz-safetensors");
  return lowbit_fuzz::run_one(
      input, data, size, [](const std::string& path) { return lowbit::SafetensorsFile::open(path); },
      [](const lowbit::SafetensorsFile& f) {
        uint64_t h = 0;
        for (const auto& [k, v] : f.metadata()) h += touch_string(k) + touch_string(v);
        lowbit_fuzz::sink(h);
        for (const auto& t : f.tensors()) check_tensor(f, t);
        check_round_trip(f);
      });
}
