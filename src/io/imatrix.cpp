#include "lowbit/io/imatrix.hpp"

#include <cmath>
#include <cstring>

#include "io/file_io.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/io/gguf.hpp"

namespace lowbit {
namespace {

// Reads little-endian fields from a byte span, refusing to run past its end.
class Reader {
 public:
  Reader(std::span<const std::byte> b, const std::string& source) : b_(b), source_(source) {}
  size_t offset() const { return pos_; }
  size_t left() const { return b_.size() - pos_; }
  int32_t i32(const char* field) {
    need(4, field);
    int32_t v;
    std::memcpy(&v, b_.data() + pos_, 4);
    pos_ += 4;
    return v;
  }
  std::string str(size_t n, const char* field) {
    need(n, field);
    std::string s(n, '\0');
    if (n > 0) std::memcpy(s.data(), b_.data() + pos_, n);
    pos_ += n;
    return s;
  }
  void floats(float* out, size_t n, const char* field) {
    if (n > left() / 4) fail(field, "needs " + std::to_string(n) + " floats, only " + std::to_string(left()) + " bytes left");
    if (n == 0) return;  // memcpy with a null pointer is undefined even for 0 bytes
    std::memcpy(out, b_.data() + pos_, n * 4);
    pos_ += n * 4;
  }
  [[noreturn]] void fail(const char* field, const std::string& why) const {
    throw Error(source_ + ": legacy imatrix: " + field + " at byte offset " + std::to_string(pos_) + ": " + why);
  }

 private:
  void need(size_t n, const char* field) const {
    if (n > left()) fail(field, "file ends after " + std::to_string(left()) + " more bytes, " + std::to_string(n) + " needed");
  }
  std::span<const std::byte> b_;
  const std::string& source_;
  size_t pos_ = 0;
};

void check_values(const std::string& source, const std::string& name, std::span<const float> v) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]) || v[i] < 0)
      throw Error(source + ": imatrix entry '" + name + "' value " + std::to_string(i) + " is " + std::to_string(v[i]) +
                  " (importance must be finite and non-negative)");
}

Imatrix load_gguf_imatrix(const std::filesystem::path& path) {
  const std::string source = path.string();
  const GgufFile file = GgufFile::open(path);
  Imatrix out;
  if (const GgufValue* v = file.find("imatrix.datasets"); v && v->is<GgufArray>())
    for (const GgufValue& item : v->as_array().items)
      if (item.is<std::string>()) out.datasets.push_back(item.as_string());
  if (const GgufValue* v = file.find("imatrix.chunk_count")) out.chunk_count = v->as_int();
  if (const GgufValue* v = file.find("imatrix.chunk_size")) out.chunk_size = v->as_int();

  constexpr std::string_view kSums = ".in_sum2", kCounts = ".counts";
  auto strip = [](std::string_view name, std::string_view suffix) -> std::string_view {
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix)
      return name.substr(0, name.size() - suffix.size());
    return {};
  };
  auto floats_of = [&](const GgufTensorInfo& t) {
    if (t.format != Format::F32)
      throw Error(source + ": imatrix tensor '" + t.name + "' has type " + std::string(traits(t.format).name) +
                  ", expected F32");
    std::vector<float> v(static_cast<size_t>(t.elements()));
    if (!v.empty()) std::memcpy(v.data(), file.data(t).data(), v.size() * sizeof(float));
    return v;
  };

  for (const GgufTensorInfo& t : file.tensors()) {
    const std::string_view weight = strip(t.name, kSums);
    if (weight.empty()) continue;
    const std::string name(weight);
    const GgufTensorInfo* counts_info = file.find_tensor(name + std::string(kCounts));
    if (!counts_info) throw Error(source + ": imatrix tensor '" + t.name + "' has no matching '" + name + ".counts'");
    const std::vector<float> sums = floats_of(t);
    const std::vector<float> counts = floats_of(*counts_info);
    if (sums.empty())
      throw Error(source + ": imatrix tensor '" + t.name + "' has no values (a zero-size tensor)");
    if (counts.empty() || sums.size() % counts.size() != 0)
      throw Error(source + ": imatrix entry '" + name + "': " + std::to_string(sums.size()) + " sums do not split into " +
                  std::to_string(counts.size()) + " matrices");
    check_values(source, name + ".counts", counts);
    ImatrixEntry e;
    e.matrices = static_cast<int64_t>(counts.size());
    const size_t cols = sums.size() / counts.size();
    e.importance.resize(sums.size());
    for (size_t m = 0; m < counts.size(); ++m) {
      // Counts are token counts stored as floats; llama.cpp rounds them.
      const float count = static_cast<float>(std::lround(counts[m]));
      for (size_t c = 0; c < cols; ++c)
        e.importance[m * cols + c] = count > 0 ? sums[m * cols + c] / count : 1.0f;
    }
    check_values(source, name, e.importance);
    out.entries.emplace(name, std::move(e));
  }
  for (const GgufTensorInfo& t : file.tensors()) {
    const std::string_view weight = strip(t.name, kCounts);
    if (!weight.empty() && !out.find(weight))
      throw Error(source + ": imatrix tensor '" + t.name + "' has no matching '" + std::string(weight) + ".in_sum2'");
  }
  if (out.entries.empty())
    throw Error(source + ": no importance-matrix entries (no '<weight>.in_sum2' tensors): not an imatrix file?");
  return out;
}

}  // namespace

Imatrix parse_legacy_imatrix(std::span<const std::byte> bytes, const std::string& source) {
  Reader r(bytes, source);
  Imatrix out;
  out.legacy = true;
  const int32_t n_entries = r.i32("entry count");
  if (n_entries < 1) r.fail("entry count", "is " + std::to_string(n_entries) + ", expected at least 1");
  for (int32_t i = 0; i < n_entries; ++i) {
    const std::string entry = "entry " + std::to_string(i);
    const int32_t len = r.i32("name length");
    if (len < 1 || static_cast<size_t>(len) > r.left())
      r.fail("name length", entry + " claims " + std::to_string(len) + " bytes, " + std::to_string(r.left()) + " left");
    std::string name = r.str(static_cast<size_t>(len), "name");
    const int32_t ncall = r.i32("ncall");
    if (ncall < 0) r.fail("ncall", "'" + name + "' has ncall " + std::to_string(ncall));
    const int32_t nval = r.i32("value count");
    if (nval < 1) r.fail("value count", "'" + name + "' has " + std::to_string(nval) + " values");
    // Check the length before allocating: a lying count must not cost gigabytes.
    if (static_cast<size_t>(nval) > r.left() / 4)
      r.fail("value count", "'" + name + "' claims " + std::to_string(nval) + " values, " + std::to_string(r.left()) +
                                " bytes left");
    ImatrixEntry e;
    e.importance.resize(static_cast<size_t>(nval));
    r.floats(e.importance.data(), e.importance.size(), "values");
    // Stored as mean(x^2) * ncall; divide it back out.
    if (ncall > 0)
      for (float& v : e.importance) v /= static_cast<float>(ncall);
    check_values(source, name, e.importance);
    if (!out.entries.emplace(name, std::move(e)).second) r.fail("name", "duplicate entry '" + name + "'");
  }
  // Optional trailer: the chunk count and the dataset the matrix came from.
  if (r.left() >= 4) {
    out.chunk_count = r.i32("chunk count");
    if (r.left() >= 4) {
      const int32_t len = r.i32("dataset name length");
      if (len < 0 || static_cast<size_t>(len) > r.left())
        r.fail("dataset name length", "claims " + std::to_string(len) + " bytes, " + std::to_string(r.left()) + " left");
      if (len > 0) out.datasets.push_back(r.str(static_cast<size_t>(len), "dataset name"));
    }
  }
  if (r.left() != 0) r.fail("end of file", std::to_string(r.left()) + " unexpected trailing bytes");
  return out;
}

Imatrix load_imatrix(const std::filesystem::path& path) {
  // Mapped, not streamed: a directory, a device such as /dev/zero or a FIFO is refused
  // by name before anything is read (a stream would read /dev/zero until memory ran out).
  const io_detail::MappedFile file =
      io_detail::MappedFile::open(path, "importance-matrix file '" + path.string() + "'");
  const std::span<const std::byte> bytes = file.bytes();
  if (bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0) return load_gguf_imatrix(path);
  return parse_legacy_imatrix(bytes, path.string());
}

}  // namespace lowbit
