// libFuzzer target for the importance-matrix readers (lowbit/io/imatrix.hpp): every
// input goes to load_imatrix as a file (GGUF when it starts with the magic, else the
// legacy .dat format) and to parse_legacy_imatrix from memory. Each must refuse with
// lowbit::Error or return entries that keep the header's promises: at least one entry,
// `matrices` vectors of equal length, every value finite and non-negative.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "fuzz_common.hpp"
#include "lowbit/io/imatrix.hpp"

namespace {

using lowbit_fuzz::require;

void check(const lowbit::Imatrix& m, bool legacy) {
  require(!m.entries.empty(), "an accepted imatrix has no entries");
  require(m.legacy == legacy, "legacy flag does not match the format read");
  for (const auto& [name, e] : m.entries) {
    require(!name.empty(), "an entry with an empty name");
    require(m.find(name) == &e, "entry '" + name + "' not found by name");
    require(e.matrices >= 1, "entry '" + name + "' has no matrices");
    require(!e.importance.empty() && e.importance.size() % static_cast<size_t>(e.matrices) == 0,
            "entry '" + name + "': values do not split into its matrices");
    for (int64_t k = 0; k < e.matrices; ++k)
      require(e.matrix(k).size() == static_cast<size_t>(e.columns()), "entry '" + name + "': ragged matrix");
    for (float v : e.importance) require(std::isfinite(v) && v >= 0, "entry '" + name + "': bad importance value");
  }
  for (const std::string& d : m.datasets)
    lowbit_fuzz::sink(lowbit_fuzz::touch(reinterpret_cast<const std::byte*>(d.data()), d.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static lowbit_fuzz::MemFile input("lowbit-fuzz-imatrix");
  const bool gguf = size >= 4 && data[0] == 'G' && data[1] == 'G' && data[2] == 'U' && data[3] == 'F';
  lowbit_fuzz::run_one(
      input, data, size, [](const std::string& path) { return lowbit::load_imatrix(path); },
      [&](const lowbit::Imatrix& m) { check(m, !gguf); });
  // The legacy parser straight from memory, whatever the first bytes are.
  try {
    const auto bytes = std::as_bytes(std::span<const uint8_t>(data, size));
    check(lowbit::parse_legacy_imatrix(bytes, "fuzz input"), true);
  } catch (const lowbit::Error&) {
  } catch (const std::exception& e) {
    require(false, std::string("parse_legacy_imatrix threw something other than lowbit::Error: ") + e.what());
  }
  return 0;
}
