#pragma once
// llama.cpp importance-matrix files (llama-imatrix output), read into the
// per-column importance lowbit::quantize takes: the mean of x^2 over the
// calibration tokens for each input column of each weight.
//
// Two formats exist:
//   * GGUF (current): for each weight W, tensors "W.in_sum2" (f32 [ne0, n_mat],
//     sums of x^2) and "W.counts" (f32 [1, n_mat], tokens seen per matrix; n_mat > 1
//     for MoE experts); metadata imatrix.datasets / chunk_count / chunk_size.
//     importance = in_sum2 / count, or 1 where a matrix saw no tokens (as llama.cpp).
//   * legacy .dat: i32 n_entries, then per entry i32 name length, the name, i32
//     ncall, i32 nval, nval f32 values holding mean(x^2) * ncall; optionally i32
//     chunk count, i32 dataset-name length and the name. importance = value / ncall
//     (the values as stored when ncall is 0).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

struct ImatrixEntry {
  // matrices x columns values, row-major: one importance vector per matrix
  // (per expert for a 3-D MoE weight), each finite and non-negative.
  std::vector<float> importance;
  int64_t matrices = 1;
  int64_t columns() const { return matrices == 0 ? 0 : static_cast<int64_t>(importance.size()) / matrices; }
  // Matrix m's vector.
  std::span<const float> matrix(int64_t m) const {
    return std::span<const float>(importance).subspan(static_cast<size_t>(m * columns()),
                                                      static_cast<size_t>(columns()));
  }
};

struct Imatrix {
  std::map<std::string, ImatrixEntry, std::less<>> entries;  // weight name -> importance
  std::vector<std::string> datasets;
  int64_t chunk_count = 0;
  int64_t chunk_size = 0;  // 0 in the legacy format
  bool legacy = false;

  const ImatrixEntry* find(std::string_view weight_name) const {
    auto it = entries.find(weight_name);
    return it == entries.end() ? nullptr : &it->second;
  }
};

// Reads either format (a file starting with "GGUF" is the GGUF one). Throws
// lowbit::Error naming the file and the entry, field or byte offset for any defect:
// a path that is not a regular file (a directory, /dev/zero, a FIFO: refused before
// reading), truncation, lying lengths, a .in_sum2 without its .counts (or the
// reverse), a non-F32 or zero-size tensor, sizes that do not divide, NaN/Inf or
// negative values, no entries.
Imatrix load_imatrix(const std::filesystem::path& path);

// The legacy format from memory; `source` names the data in error messages.
Imatrix parse_legacy_imatrix(std::span<const std::byte> bytes, const std::string& source);

}  // namespace lowbit
