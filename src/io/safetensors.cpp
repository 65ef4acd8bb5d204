#include "lowbit/io/safetensors.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <tuple>
#include <utility>

#include "io/file_io.hpp"

#include "lowbit/core/error.hpp"
#include "lowbit/core/half.hpp"

namespace lowbit {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; lowbit reads it in place");

namespace {

using nlohmann::json;

struct DtypeInfo {
  SafetensorsDtype dtype;
  std::string_view name;
  size_t size;
};

constexpr DtypeInfo kDtypes[] = {
    {SafetensorsDtype::BOOL, "BOOL", 1},       {SafetensorsDtype::U8, "U8", 1},
    {SafetensorsDtype::I8, "I8", 1},           {SafetensorsDtype::F8_E5M2, "F8_E5M2", 1},
    {SafetensorsDtype::F8_E4M3, "F8_E4M3", 1}, {SafetensorsDtype::F8_E8M0, "F8_E8M0", 1},
    {SafetensorsDtype::I16, "I16", 2},
    {SafetensorsDtype::U16, "U16", 2},         {SafetensorsDtype::F16, "F16", 2},
    {SafetensorsDtype::BF16, "BF16", 2},       {SafetensorsDtype::I32, "I32", 4},
    {SafetensorsDtype::U32, "U32", 4},         {SafetensorsDtype::F32, "F32", 4},
    {SafetensorsDtype::F64, "F64", 8},         {SafetensorsDtype::I64, "I64", 8},
    {SafetensorsDtype::U64, "U64", 8},         {SafetensorsDtype::C64, "C64", 8},
};

const DtypeInfo& info(SafetensorsDtype dtype) {
  for (const auto& d : kDtypes)
    if (d.dtype == dtype) return d;
  throw Error("safetensors: invalid dtype value " + std::to_string(static_cast<int>(dtype)));
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one
// (overlong forms, surrogates and code points past U+10FFFF are invalid).
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k)
    if (b(i + k) < 0x80 || b(i + k) > 0xbf) return 0;
  return len;
}

// Offset of the first byte that is not valid UTF-8, or npos.
size_t first_invalid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence_length(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

std::string quote(std::string_view s) {
  std::string r;
  r.reserve(s.size() + 2);
  r.push_back('\'');
  // Control bytes (a NUL from "\u0000" above all) as \xNN, so a message stays one
  // printable C string.
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      r += "\\x";
      r.push_back(kHex[c >> 4]);
      r.push_back(kHex[c & 15]);
    } else {
      r.push_back(static_cast<char>(c));
    }
  }
  r.push_back('\'');
  return r;
}

// Parses JSON, refusing duplicate keys and absurd nesting. Duplicates: nlohmann and the
// reference both keep the last value silently, but another reader may keep the first,
// so such a file means different tensors to different tools. Nesting: a header needs
// three levels (root > tensor > shape); the limit leaves room for unknown extra fields.
json parse_json_strict(std::string_view text, const std::string& where, size_t base_offset) {
  constexpr int kMaxDepth = 16;
  std::vector<std::set<std::string>> keys;
  const json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxDepth) throw Error(where + ": JSON nested deeper than " + std::to_string(kMaxDepth) + " levels");
    switch (event) {
      case json::parse_event_t::object_start:
        keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys.empty() && !keys.back().insert(parsed.get<std::string>()).second)
          throw Error(where + ": duplicate key " + quote(parsed.get<std::string>()) + " in the JSON");
        break;
      default:
        break;
    }
    return true;
  };
  // nlohmann skips a UTF-8 byte-order mark silently; the reference (serde_json) refuses
  // one, and so does Python's json module: a file that only some tools read is refused.
  if (text.starts_with("\xEF\xBB\xBF"))
    throw Error(where + ": UTF-8 byte-order mark (EF BB BF) at file offset " + std::to_string(base_offset) +
                " before the JSON; the format does not allow one");
  // nlohmann stops at a NUL as if the input ended there, which would accept
  // `{...}\0garbage`; NUL is never valid JSON text (not even inside a string), so refuse it.
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos)
    throw Error(where + ": invalid JSON: NUL byte at file offset " + std::to_string(base_offset + nul));
  try {
    return json::parse(text.begin(), text.end(), cb);
  } catch (const json::parse_error& e) {
    // e.byte counts from 1 at the first character of `text`.
    const size_t at = base_offset + (e.byte > 0 ? e.byte - 1 : 0);
    throw Error(where + ": invalid JSON near file offset " + std::to_string(at) + ": " + e.what());
  } catch (const json::exception& e) {
    throw Error(where + ": invalid JSON: " + e.what());
  }
}

uint64_t checked_mul(uint64_t a, uint64_t b, const std::string& what) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw Error(what);
  return r;
}

// A JSON array of unsigned integers (nlohmann types negatives as number_integer and
// values past 2^64 or with a fraction as number_float: both rejected).
std::vector<uint64_t> unsigned_array(const json& v, const std::string& where) {
  if (!v.is_array()) throw Error(where + " must be an array of non-negative integers, got " + v.dump());
  std::vector<uint64_t> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number_unsigned())
      throw Error(where + "[" + std::to_string(i) + "] must be a non-negative integer, got " + v[i].dump());
    out.push_back(v[i].get<uint64_t>());
  }
  return out;
}

std::string shape_text(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

std::string_view to_string(SafetensorsDtype dtype) { return info(dtype).name; }

std::optional<SafetensorsDtype> safetensors_dtype_from_name(std::string_view name) {
  for (const auto& d : kDtypes)
    if (d.name == name) return d.dtype;
  return std::nullopt;
}

size_t element_size(SafetensorsDtype dtype) { return info(dtype).size; }

uint64_t SafetensorsTensor::numel() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;  // overflow-checked when the tensor was validated
  return n;
}

std::vector<float> to_float32(const SafetensorsTensor& t) {
  const uint64_t n = t.numel();
  std::vector<float> out(static_cast<size_t>(n));
  const std::byte* p = t.data.data();
  // memcpy per element: the data of a file with an odd header length is unaligned.
  switch (t.dtype) {
    case SafetensorsDtype::F32:
      if (n) std::memcpy(out.data(), p, n * sizeof(float));
      break;
    case SafetensorsDtype::F16:
    case SafetensorsDtype::BF16: {
      const bool half = t.dtype == SafetensorsDtype::F16;
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = half ? fp16_to_fp32(h) : bf16_to_fp32(h);
      }
      break;
    }
    default:
      throw Error("safetensors: tensor " + quote(t.name) + " has dtype " + std::string(to_string(t.dtype)) +
                  "; only F32, F16 and BF16 convert to float32");
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reader

struct SafetensorsFile::Mapping : io_detail::MappedFile {
  explicit Mapping(io_detail::MappedFile&& m) : MappedFile(std::move(m)) {}
};

SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  const std::string file = "safetensors file '" + path.string() + "'";
  SafetensorsFile f;
  f.path_ = path;

  f.mapping_ = std::make_unique<Mapping>(io_detail::MappedFile::open(path, file));
  const uint64_t file_size = f.mapping_->size();
  if (file_size < 8)
    throw Error(file + ": " + std::to_string(file_size) + " bytes, too short for the 8-byte header length");
  const std::byte* bytes = f.mapping_->bytes().data();

  uint64_t header_len;
  std::memcpy(&header_len, bytes, 8);
  if (header_len > kMaxHeaderBytes)
    throw Error(file + ": header length " + std::to_string(header_len) + " (bytes 0..7) exceeds the limit of " +
                std::to_string(kMaxHeaderBytes));
  if (header_len > file_size - 8)
    throw Error(file + ": header length " + std::to_string(header_len) + " (bytes 0..7) runs past the end of the " +
                std::to_string(file_size) + "-byte file");
  const std::string_view header(reinterpret_cast<const char*>(bytes + 8), header_len);
  if (const size_t bad = first_invalid_utf8(header); bad != std::string_view::npos)
    throw Error(file + ": header is not valid UTF-8 at file offset " + std::to_string(8 + bad));
  const json root = parse_json_strict(header, file, 8);
  if (!root.is_object()) throw Error(file + ": header is not a JSON object");

  const uint64_t data_begin = 8 + header_len;
  const uint64_t data_size = file_size - data_begin;
  struct Extent {
    uint64_t begin, end;
    size_t tensor;
  };
  std::vector<Extent> extents;

  for (const auto& [name, value] : root.items()) {
    if (name == "__metadata__") {
      if (value.is_null()) continue;  // the reference reads null as "no metadata"
      if (!value.is_object()) throw Error(file + ": __metadata__ must be an object of strings, got " + value.dump());
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string())
          throw Error(file + ": __metadata__ value of " + quote(k) + " must be a string, got " + v.dump());
        f.metadata_.emplace(k, v.get<std::string>());
      }
      continue;
    }
    const std::string where = file + ": tensor " + quote(name);
    if (!value.is_object()) throw Error(where + " must be an object, got " + value.dump());
    // Unknown extra fields are ignored, as the reference does.
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!value.contains(field)) throw Error(where + " has no \"" + field + "\"");

    const json& dtype_v = value["dtype"];
    if (!dtype_v.is_string()) throw Error(where + ": dtype must be a string, got " + dtype_v.dump());
    const auto dtype = safetensors_dtype_from_name(dtype_v.get<std::string>());
    if (!dtype) throw Error(where + ": unknown dtype " + dtype_v.dump());

    SafetensorsTensor t;
    // "\u0000" is valid JSON, but a NUL would end the name early for C consumers.
    if (name.find('\0') != std::string::npos) throw Error(where + ": tensor name contains a NUL character");
    t.name = name;
    t.dtype = *dtype;
    t.shape = unsigned_array(value["shape"], where + ": shape");
    const auto offsets = unsigned_array(value["data_offsets"], where + ": data_offsets");
    if (offsets.size() != 2)
      throw Error(where + ": data_offsets must hold [begin, end], got " + value["data_offsets"].dump());
    const uint64_t begin = offsets[0], end = offsets[1];

    // Every consumer indexes with int64 (and prints shapes signed): a dimension above
    // INT64_MAX, possible next to a zero dimension, would turn negative.
    for (uint64_t d : t.shape)
      if (d > static_cast<uint64_t>(INT64_MAX))
        throw Error(where + ": shape " + shape_text(t.shape) + " has a dimension above INT64_MAX");
    uint64_t numel = 1;
    for (uint64_t d : t.shape)
      numel = checked_mul(numel, d, where + ": element count of shape " + shape_text(t.shape) + " overflows 64 bits");
    const uint64_t nbytes = checked_mul(numel, info(t.dtype).size,
                                       where + ": byte size of shape " + shape_text(t.shape) + " overflows 64 bits");
    const std::string range = "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "]";
    if (end < begin) throw Error(where + ": " + range + " end before begin");
    if (end > data_size)
      throw Error(where + ": " + range + " run past the " + std::to_string(data_size) +
                  "-byte data buffer (file offset " + std::to_string(data_begin) + " + " + std::to_string(end) +
                  " > file size " + std::to_string(file_size) + ")");
    if (end - begin != nbytes)
      throw Error(where + ": " + range + " span " + std::to_string(end - begin) + " bytes, but dtype " +
                  std::string(to_string(t.dtype)) + " with shape " + shape_text(t.shape) + " needs " +
                  std::to_string(nbytes));
    t.data = std::span<const std::byte>(bytes + data_begin + begin, static_cast<size_t>(nbytes));
    extents.push_back({begin, end, f.tensors_.size()});
    f.tensors_.push_back(std::move(t));
  }

  // The tensors must tile the buffer: no overlap, no gap, nothing after the last one.
  std::sort(extents.begin(), extents.end(),
            [](const Extent& a, const Extent& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
  uint64_t expected = 0;
  const SafetensorsTensor* previous = nullptr;
  for (const Extent& e : extents) {
    const SafetensorsTensor& t = f.tensors_[e.tensor];
    if (e.begin < expected)
      throw Error(file + ": tensor " + quote(t.name) + " data_offsets begin " + std::to_string(e.begin) +
                  " overlaps tensor " + quote(previous->name) + ", which ends at " + std::to_string(expected));
    if (e.begin > expected)
      throw Error(file + ": data buffer bytes [" + std::to_string(expected) + ", " + std::to_string(e.begin) +
                  ") before tensor " + quote(t.name) + " belong to no tensor");
    expected = e.end;
    previous = &t;
  }
  if (expected != data_size)
    throw Error(file + ": data buffer bytes [" + std::to_string(expected) + ", " + std::to_string(data_size) +
                ") after the last tensor belong to no tensor");

  // Present the tensors in file order.
  std::vector<SafetensorsTensor> ordered;
  ordered.reserve(extents.size());
  for (const Extent& e : extents) ordered.push_back(std::move(f.tensors_[e.tensor]));
  f.tensors_ = std::move(ordered);
  for (size_t i = 0; i < f.tensors_.size(); ++i) f.index_.emplace(f.tensors_[i].name, i);
  return f;
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const SafetensorsTensor& SafetensorsFile::tensor(std::string_view name) const {
  if (const auto* t = find(name)) return *t;
  throw Error("safetensors file '" + path_.string() + "': no tensor " + quote(name));
}

// ---------------------------------------------------------------------------------------------
// Sharded models

SafetensorsModel SafetensorsModel::open_index(const std::filesystem::path& index_path) {
  const std::string where = "safetensors index '" + index_path.string() + "'";
  // Mapped: a directory, device or FIFO is refused by name before anything is read.
  const io_detail::MappedFile mapped = io_detail::MappedFile::open(index_path, where);
  const uint64_t size = mapped.size();
  if (size > SafetensorsFile::kMaxHeaderBytes)
    throw Error(where + ": " + std::to_string(size) + " bytes exceeds the limit of " +
                std::to_string(SafetensorsFile::kMaxHeaderBytes));
  const auto* chars = reinterpret_cast<const char*>(mapped.bytes().data());
  const std::string_view text(chars == nullptr ? "" : chars, static_cast<size_t>(size));
  if (const size_t bad = first_invalid_utf8(text); bad != std::string_view::npos)
    throw Error(where + ": not valid UTF-8 at byte " + std::to_string(bad));

  const json root = parse_json_strict(text, where, 0);
  if (!root.is_object()) throw Error(where + ": not a JSON object");

  SafetensorsModel m;
  m.index_path_ = index_path;
  if (root.contains("metadata")) {
    const json& meta = root["metadata"];
    if (!meta.is_object() && !meta.is_null())
      throw Error(where + ": \"metadata\" must be an object, got " + meta.dump());
    if (meta.is_object())
      for (const auto& [k, v] : meta.items()) m.metadata_.emplace(k, v.is_string() ? v.get<std::string>() : v.dump());
  }
  if (!root.contains("weight_map")) throw Error(where + ": no \"weight_map\"");
  const json& wm = root["weight_map"];
  if (!wm.is_object()) throw Error(where + ": \"weight_map\" must be an object, got " + wm.dump());

  std::set<std::string> shard_names;
  for (const auto& [tensor, shard] : wm.items()) {
    if (!shard.is_string())
      throw Error(where + ": weight_map entry of tensor " + quote(tensor) + " must be a file name, got " +
                  shard.dump());
    const std::string name = shard.get<std::string>();
    // A shard must be a file beside (or below) the index: an index must not reach
    // arbitrary files through absolute paths or "..".
    const std::filesystem::path p(name);
    bool escapes = name.empty() || p.is_absolute() || p.has_root_name();
    for (const auto& part : p) escapes = escapes || part == "..";
    if (escapes)
      throw Error(where + ": weight_map entry of tensor " + quote(tensor) + " names shard " + quote(name) +
                  ", which is not a relative path inside the index's folder");
    m.weight_map_.emplace(tensor, name);
    shard_names.insert(name);
  }

  // Each shard file is opened once, however the index spells it: names are compared
  // after lexical normalisation ("x" and "./x" are one file), then by device and
  // inode (a hard link or a symlink to the same file).
  const std::filesystem::path dir = index_path.parent_path();
  std::map<std::string, size_t> shard_index;                // name as written -> shard
  std::map<std::string, size_t> by_normal;                  // lexically normal name -> shard
  std::map<std::pair<dev_t, ino_t>, size_t> by_inode;       // the file itself -> shard
  for (const auto& name : shard_names) {
    const std::string normal = std::filesystem::path(name).lexically_normal().string();
    size_t index = m.shards_.size();
    if (const auto it = by_normal.find(normal); it != by_normal.end()) {
      index = it->second;
    } else {
      const std::filesystem::path file = dir / normal;
      struct stat st {};
      const bool known = ::stat(file.c_str(), &st) == 0;
      if (const auto jt = known ? by_inode.find({st.st_dev, st.st_ino}) : by_inode.end(); jt != by_inode.end()) {
        index = jt->second;
      } else {
        m.shards_.push_back(SafetensorsFile::open(file));
        if (known) by_inode.emplace(std::make_pair(st.st_dev, st.st_ino), index);
      }
      by_normal.emplace(normal, index);
    }
    shard_index.emplace(name, index);
  }
  // shards_ is complete: pointers into its files' tensor lists stay valid from here on.
  for (const auto& [tensor, shard] : m.weight_map_) {
    const SafetensorsFile& file = m.shards_[shard_index.at(shard)];
    const SafetensorsTensor* t = file.find(tensor);
    if (!t)
      throw Error(where + ": weight_map puts tensor " + quote(tensor) + " in shard " + quote(shard) +
                  ", which has no such tensor");
    m.tensors_.emplace(tensor, t);
  }
  return m;
}

const SafetensorsTensor* SafetensorsModel::find(std::string_view name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : it->second;
}

const SafetensorsTensor& SafetensorsModel::tensor(std::string_view name) const {
  if (const auto* t = find(name)) return *t;
  throw Error("safetensors index '" + index_path_.string() + "': no tensor " + quote(name));
}

// ---------------------------------------------------------------------------------------------
// Writer

namespace {

// Both writers' metadata: keys and values valid UTF-8.
void set_checked_metadata(std::map<std::string, std::string>& metadata, std::string key, std::string value) {
  if (first_invalid_utf8(key) != std::string_view::npos)
    throw Error("safetensors writer: metadata key is not valid UTF-8");
  if (first_invalid_utf8(value) != std::string_view::npos)
    throw Error("safetensors writer: metadata value of " + quote(key) + " is not valid UTF-8");
  metadata[std::move(key)] = std::move(value);
}

}  // namespace

void SafetensorsWriter::set_metadata(std::string key, std::string value) {
  set_checked_metadata(metadata_, std::move(key), std::move(value));
}

namespace {

// A new tensor's checks (valid UTF-8, not the metadata key, unique, a byte size that
// fits 64 bits); returns that byte size.
uint64_t checked_tensor_bytes(const std::string& name, SafetensorsDtype dtype, const std::vector<uint64_t>& shape,
                              const std::set<std::string, std::less<>>& names) {
  if (first_invalid_utf8(name) != std::string_view::npos)
    throw Error("safetensors writer: tensor name is not valid UTF-8");
  const std::string where = "safetensors writer: tensor " + quote(name);
  if (name == "__metadata__") throw Error(where + ": the name is reserved for the metadata");
  if (names.count(name)) throw Error(where + " was already added");
  uint64_t numel = 1;
  for (uint64_t d : shape)
    numel = checked_mul(numel, d, where + ": element count of shape " + shape_text(shape) + " overflows 64 bits");
  return checked_mul(numel, element_size(dtype), where + ": byte size of shape " + shape_text(shape) + " overflows 64 bits");
}

}  // namespace

void SafetensorsWriter::add(std::string name, SafetensorsDtype dtype, std::vector<uint64_t> shape,
                            std::span<const std::byte> bytes) {
  const uint64_t nbytes = checked_tensor_bytes(name, dtype, shape, names_);
  if (bytes.size() != nbytes)
    throw Error("safetensors writer: tensor " + quote(name) + ": got " + std::to_string(bytes.size()) +
                " bytes, but dtype " + std::string(to_string(dtype)) + " with shape " + shape_text(shape) + " needs " +
                std::to_string(nbytes));
  names_.insert(name);
  entries_.push_back({std::move(name), dtype, std::move(shape), std::vector<std::byte>(bytes.begin(), bytes.end())});
}

void SafetensorsWriter::add_float32(std::string name, std::vector<uint64_t> shape, std::span<const float> values) {
  add(std::move(name), SafetensorsDtype::F32, std::move(shape), std::as_bytes(values));
}

namespace {

// The header JSON, padded with spaces to a multiple of 8, as the reference writes it:
// "__metadata__" first (when there is any), then the tensors in order, each as
// {"dtype", "shape", "data_offsets"}.
template <class Entries, class Size>
std::string header_text(const std::map<std::string, std::string>& metadata, const Entries& entries, Size size_of) {
  nlohmann::ordered_json root = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    root["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const auto& e : entries) {
    nlohmann::ordered_json t = nlohmann::ordered_json::object();
    t["dtype"] = std::string(to_string(e.dtype));
    t["shape"] = e.shape;
    t["data_offsets"] = {offset, offset + size_of(e)};
    offset += size_of(e);
    root[e.name] = std::move(t);
  }
  std::string text = root.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  // Readers (ours and the reference) refuse larger headers; do not write one.
  if (text.size() > SafetensorsFile::kMaxHeaderBytes)
    throw Error("safetensors writer: the header would be " + std::to_string(text.size()) +
                " bytes, over the readers' limit of " + std::to_string(SafetensorsFile::kMaxHeaderBytes));
  return text;
}

}  // namespace

std::vector<std::byte> SafetensorsWriter::serialize() const {
  const std::string header = header_text(metadata_, entries_, [](const Entry& e) { return uint64_t(e.bytes.size()); });
  const uint64_t len = header.size();
  size_t total = 8 + header.size();
  for (const auto& e : entries_) total += e.bytes.size();
  std::vector<std::byte> out(total);
  std::memcpy(out.data(), &len, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  size_t at = 8 + header.size();
  for (const auto& e : entries_) {
    if (!e.bytes.empty()) std::memcpy(out.data() + at, e.bytes.data(), e.bytes.size());
    at += e.bytes.size();
  }
  return out;
}

void SafetensorsWriter::write(const std::filesystem::path& path) const {
  const std::string header = header_text(metadata_, entries_, [](const Entry& e) { return uint64_t(e.bytes.size()); });
  const uint64_t len = header.size();
  io_detail::write_atomically(path, "safetensors writer: '" + path.string() + "'", [&](io_detail::FileSink& sink) {
    sink.put(&len, 8);
    sink.put(header.data(), header.size());
    for (const auto& e : entries_) sink.put(e.bytes.data(), e.bytes.size());
  });
}

void SafetensorsStreamWriter::set_metadata(std::string key, std::string value) {
  set_checked_metadata(metadata_, std::move(key), std::move(value));
}

void SafetensorsStreamWriter::declare(std::string name, SafetensorsDtype dtype, std::vector<uint64_t> shape) {
  const uint64_t nbytes = checked_tensor_bytes(name, dtype, shape, names_);
  names_.insert(name);
  entries_.push_back({std::move(name), dtype, std::move(shape), nbytes});
}

void SafetensorsStreamWriter::write(const std::filesystem::path& path,
                                    const std::function<std::vector<std::byte>(size_t)>& produce) const {
  const std::string header = header_text(metadata_, entries_, [](const Entry& e) { return e.nbytes; });
  const uint64_t len = header.size();
  io_detail::write_atomically(path, "safetensors writer: '" + path.string() + "'", [&](io_detail::FileSink& sink) {
    sink.put(&len, 8);
    sink.put(header.data(), header.size());
    for (size_t i = 0; i < entries_.size(); ++i) {
      const std::vector<std::byte> bytes = produce(i);
      if (bytes.size() != entries_[i].nbytes)
        throw Error("safetensors writer: tensor " + quote(entries_[i].name) + " came with " +
                    std::to_string(bytes.size()) + " bytes, declared " + std::to_string(entries_[i].nbytes));
      sink.put(bytes.data(), bytes.size());
    }
  });
}

}  // namespace lowbit
