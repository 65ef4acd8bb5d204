#include "lowbit/io/gguf.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <string>
#include <unordered_set>

#include <sys/mman.h>
#include <unistd.h>

#include "io/file_io.hpp"

#include "lowbit/core/error.hpp"

namespace lowbit {

static_assert(std::endian::native == std::endian::little,
              "GGUF is read and written with plain loads and stores; a big-endian host needs byte swaps");

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kVersion = 3;
constexpr size_t kDefaultAlignment = 32;
constexpr int kMaxDims = 4;
// Arrays of arrays are legal GGUF but nobody needs many levels; the limit keeps a
// hostile file from recursing the parser off its stack.
constexpr int kMaxArrayNesting = 8;
constexpr int kNumValueTypes = 13;
constexpr std::string_view kAlignmentKey = "general.alignment";

// Bytes a value of type t occupies at least (used to bound counts before looping).
size_t min_value_bytes(GgufType t) {
  switch (t) {
    case GgufType::uint8: case GgufType::int8: case GgufType::bool_: return 1;
    case GgufType::uint16: case GgufType::int16: return 2;
    case GgufType::uint32: case GgufType::int32: case GgufType::float32: return 4;
    case GgufType::uint64: case GgufType::int64: case GgufType::float64: return 8;
    case GgufType::string: return 8;   // u64 length
    case GgufType::array: return 12;   // u32 element type + u64 count
  }
  return 1;
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = p[i];
    if (c < 0x80) { ++i; continue; }
    int len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07;
    else return false;
    if (n - i < static_cast<size_t>(len)) return false;
    for (int k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    // Overlong encodings, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
    static constexpr uint32_t kMinForLen[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLen[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += static_cast<size_t>(len);
  }
  return true;
}

// Printable form of an untrusted name for an error message.
std::string printable(std::string_view s) {
  std::string out = "'";
  for (unsigned char c : s.substr(0, 200)) {
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > 200) out += "...";
  return out + "'";
}

std::string shape_string(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

bool is_power_of_two(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// Bytes of a tensor of `shape` in `format`, or an error message in `why`.
bool tensor_bytes(std::span<const int64_t> shape, Format format, uint64_t& out, std::string& why) {
  const FormatTraits& t = traits(format);
  const int64_t ne0 = shape.empty() ? 1 : shape[0];
  if (ne0 % t.block_elems != 0) {
    why = "row length ne0 = " + std::to_string(ne0) + " is not a multiple of the " + std::string(t.name) +
          " block size " + std::to_string(t.block_elems);
    return false;
  }
  uint64_t bytes = static_cast<uint64_t>(ne0 / t.block_elems);
  bool overflow = __builtin_mul_overflow(bytes, static_cast<uint64_t>(t.block_bytes), &bytes);
  for (size_t i = 1; i < shape.size(); ++i)
    overflow = overflow || __builtin_mul_overflow(bytes, static_cast<uint64_t>(shape[i]), &bytes);
  if (overflow || bytes > SIZE_MAX) {
    why = "byte size of shape " + shape_string(shape) + " in " + std::string(t.name) + " overflows";
    return false;
  }
  out = bytes;
  return true;
}

// Bounds-checked little-endian reader over the mapped bytes. Every failure names
// the file, what is being parsed (a key or tensor), the field and its byte offset.
class Reader {
 public:
  Reader(std::span<const std::byte> bytes, std::string file) : bytes_(bytes), file_(std::move(file)) {}

  size_t pos() const { return pos_; }
  size_t size() const { return bytes_.size(); }
  size_t remaining() const { return bytes_.size() - pos_; }
  void set_context(std::string c) { context_ = std::move(c); }

  [[noreturn]] void fail(size_t at, std::string_view field, const std::string& msg) const {
    std::string s = "GGUF '" + file_ + "': ";
    if (!context_.empty()) s += context_ + ": ";
    s += std::string(field) + " at byte offset " + std::to_string(at) + ": " + msg;
    throw Error(s);
  }

  void need(size_t n, std::string_view field) const {
    if (remaining() < n)
      fail(pos_, field, "needs " + std::to_string(n) + " bytes but the file ends after " +
                            std::to_string(remaining()) + " (file size " + std::to_string(size()) + ")");
  }

  template <class T>
  T read(std::string_view field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string_view read_string(std::string_view field) {
    const size_t at = pos_;
    const auto len = read<uint64_t>(field);
    if (len > remaining())
      fail(at, field, "string length " + std::to_string(len) + " exceeds the " + std::to_string(remaining()) +
                          " bytes left in the file");
    std::string_view s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }

  // A count of entries that each take at least `min_bytes`: a larger count than
  // the rest of the file can hold is a lie, rejected before anything is allocated.
  uint64_t read_count(std::string_view field, size_t min_bytes) {
    const size_t at = pos_;
    const auto n = read<uint64_t>(field);
    if (n > remaining() / min_bytes)
      fail(at, field, std::to_string(n) + " entries of at least " + std::to_string(min_bytes) +
                          " bytes each cannot fit in the " + std::to_string(remaining()) + " bytes left");
    return n;
  }

  GgufType read_type(std::string_view field) {
    const size_t at = pos_;
    const auto t = read<uint32_t>(field);
    if (t >= kNumValueTypes) fail(at, field, "unknown GGUF value type id " + std::to_string(t));
    return static_cast<GgufType>(t);
  }

  GgufValue read_value(GgufType t, int nesting) {
    switch (t) {
      case GgufType::uint8: return read<uint8_t>("uint8 value");
      case GgufType::int8: return read<int8_t>("int8 value");
      case GgufType::uint16: return read<uint16_t>("uint16 value");
      case GgufType::int16: return read<int16_t>("int16 value");
      case GgufType::uint32: return read<uint32_t>("uint32 value");
      case GgufType::int32: return read<int32_t>("int32 value");
      case GgufType::float32: return read<float>("float32 value");
      case GgufType::uint64: return read<uint64_t>("uint64 value");
      case GgufType::int64: return read<int64_t>("int64 value");
      case GgufType::float64: return read<double>("float64 value");
      case GgufType::bool_: {
        const size_t at = pos_;
        const auto b = read<uint8_t>("bool value");
        if (b > 1) fail(at, "bool value", "byte " + std::to_string(b) + " is neither 0 nor 1");
        return b == 1;
      }
      case GgufType::string: return read_string("string value");
      case GgufType::array: {
        const size_t at = pos_;
        if (nesting >= kMaxArrayNesting)
          fail(at, "array", "arrays nested deeper than " + std::to_string(kMaxArrayNesting) + " levels");
        GgufArray a;
        a.element_type = read_type("array element type");
        const uint64_t n = read_count("array length", min_value_bytes(a.element_type));
        a.items.reserve(static_cast<size_t>(n));
        for (uint64_t i = 0; i < n; ++i) a.items.push_back(read_value(a.element_type, nesting + 1));
        return GgufValue(std::move(a));
      }
    }
    fail(pos_, "value", "unknown type");
  }

 private:
  std::span<const std::byte> bytes_;
  std::string file_;
  std::string context_;
  size_t pos_ = 0;
};

int depth_of(const GgufValue& v) {
  if (!v.is<GgufArray>()) return 0;
  int d = 0;
  for (const auto& x : v.as_array().items) d = std::max(d, depth_of(x));
  return d + 1;
}

void check_alignment_value(const GgufValue& v, const std::string& where) {
  if (!v.is<uint32_t>())
    throw Error(where + ": general.alignment must be a uint32, got " + gguf_type_name(v.type()));
  if (!is_power_of_two(v.get<uint32_t>()))
    throw Error(where + ": general.alignment " + std::to_string(v.get<uint32_t>()) + " is not a power of two");
  // The reader refuses more than 1 MiB (docs/reliability.md): never write such a file.
  if (v.get<uint32_t>() > (uint32_t{1} << 20))
    throw Error(where + ": general.alignment " + std::to_string(v.get<uint32_t>()) + " exceeds 1048576 (1 MiB)");
}

}  // namespace

// ------------------------------------------------------------------ values

std::string gguf_type_name(GgufType t) {
  static constexpr std::string_view kNames[kNumValueTypes] = {
      "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
      "bool", "string", "array", "uint64", "int64", "float64"};
  const auto i = static_cast<uint32_t>(t);
  return i < kNumValueTypes ? std::string(kNames[i]) : "type id " + std::to_string(i);
}

GgufValue::GgufValue(GgufArray a) {
  if (static_cast<uint32_t>(a.element_type) >= kNumValueTypes)
    throw Error("GGUF array: unknown element type id " + std::to_string(static_cast<uint32_t>(a.element_type)));
  for (size_t i = 0; i < a.items.size(); ++i)
    if (a.items[i].type() != a.element_type)
      throw Error("GGUF array of " + gguf_type_name(a.element_type) + ": item " + std::to_string(i) + " is a " +
                  gguf_type_name(a.items[i].type()));
  v_ = std::move(a);
}

GgufValue GgufValue::array_of_strings(std::span<const std::string> items) { return array<std::string>(items); }

void GgufValue::throw_type_mismatch(GgufType wanted) const {
  throw Error("GGUF value is a " + gguf_type_name(type()) + ", not a " + gguf_type_name(wanted));
}

int64_t GgufValue::as_int() const {
  return std::visit(
      [&](const auto& x) -> int64_t {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          if constexpr (std::is_same_v<T, uint64_t>)
            if (x > static_cast<uint64_t>(INT64_MAX))
              throw Error("GGUF uint64 value " + std::to_string(x) + " does not fit int64");
          return static_cast<int64_t>(x);
        } else {
          throw_type_mismatch(GgufType::int64);
        }
      },
      v_);
}

bool operator==(const GgufArray& a, const GgufArray& b) {
  return a.element_type == b.element_type && a.items == b.items;
}

bool operator==(const GgufValue& a, const GgufValue& b) {
  if (a.type() != b.type()) return false;
  if (a.is<float>()) return std::bit_cast<uint32_t>(a.get<float>()) == std::bit_cast<uint32_t>(b.get<float>());
  if (a.is<double>()) return std::bit_cast<uint64_t>(a.get<double>()) == std::bit_cast<uint64_t>(b.get<double>());
  return a.v_ == b.v_;
}

int64_t GgufTensorInfo::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated not to overflow when the tensor was read or added
  return n;
}

int64_t GgufTensorInfo::rows() const {
  int64_t n = 1;
  for (size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return n;
}

// ------------------------------------------------------------------ reading

struct GgufFile::Mapping : io_detail::MappedFile {
  explicit Mapping(io_detail::MappedFile&& m) : MappedFile(std::move(m)) {}
};

GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

size_t GgufFile::file_size() const { return map_->size(); }

GgufFile GgufFile::open(const std::filesystem::path& path) {
  GgufFile f;
  f.path_ = path;
  f.map_ = std::make_unique<Mapping>(io_detail::MappedFile::open(path, "GGUF '" + path.string() + "'"));
  f.parse();
  f.open_split_parts();
  return f;
}

std::filesystem::path gguf_split_path(const std::filesystem::path& prefix, int no, int count) {
  char tail[64];
  std::snprintf(tail, sizeof tail, "-%05d-of-%05d.gguf", no + 1, count);
  return std::filesystem::path(prefix.string() + tail);
}

std::optional<std::filesystem::path> gguf_split_prefix(const std::filesystem::path& path) {
  const std::string s = path.string();
  constexpr size_t kTail = 20;  // "-NNNNN-of-NNNNN.gguf"
  if (s.size() <= kTail) return std::nullopt;
  const std::string_view t = std::string_view(s).substr(s.size() - kTail);
  auto digits = [&](size_t at) {
    for (size_t i = at; i < at + 5; ++i)
      if (t[i] < '0' || t[i] > '9') return false;
    return true;
  };
  if (t[0] != '-' || !digits(1) || t.substr(6, 4) != "-of-" || !digits(10) || t.substr(15) != ".gguf")
    return std::nullopt;
  return std::filesystem::path(s.substr(0, s.size() - kTail));
}

namespace {

// A split key as an integer; -1 when absent. Throws for a non-integer value.
int64_t split_key(const GgufFile& f, std::string_view key) {
  const GgufValue* v = f.find(key);
  if (!v) return -1;
  try {
    return v->as_int();
  } catch (const Error& e) {
    throw Error("GGUF '" + f.path().string() + "': metadata key " + std::string(key) + ": " + e.what());
  }
}

}  // namespace

void GgufFile::open_split_parts() {
  const int64_t count = split_key(*this, "split.count");
  if (count <= 1) return;
  const std::string where = "GGUF '" + path_.string() + "': ";
  const int64_t no = split_key(*this, "split.no");
  if (no != 0) return;  // a later part opened alone: read as the single file it is
  if (count > 99999) throw Error(where + "split.count = " + std::to_string(count) + " is above gguf-split's 99999");
  const std::optional<std::filesystem::path> prefix = gguf_split_prefix(path_);
  if (!prefix || gguf_split_path(*prefix, 0, static_cast<int>(count)) != path_)
    throw Error(where + "split.count is " + std::to_string(count) + " but the name does not end in -00001-of-" +
                gguf_split_path("", 0, static_cast<int>(count)).string().substr(10) +
                " (the other parts are found by gguf-split's naming)");
  std::unordered_set<std::string> names;
  for (const auto& t : tensors_) names.insert(t.name);
  for (int64_t i = 1; i < count; ++i) {
    const std::filesystem::path p = gguf_split_path(*prefix, static_cast<int>(i), static_cast<int>(count));
    GgufFile part;
    part.path_ = p;
    part.map_ = std::make_unique<Mapping>(io_detail::MappedFile::open(p, "GGUF '" + p.string() + "' (split part " +
                                                                           std::to_string(i + 1) + " of " +
                                                                           std::to_string(count) + ")"));
    part.parse();
    const std::string pw = "GGUF '" + p.string() + "': ";
    if (split_key(part, "split.no") != i || split_key(part, "split.count") != count)
      throw Error(pw + "split.no / split.count are " + std::to_string(split_key(part, "split.no")) + " / " +
                  std::to_string(split_key(part, "split.count")) + ", expected " + std::to_string(i) + " / " +
                  std::to_string(count));
    for (GgufTensorInfo t : part.tensors_) {
      if (!names.insert(t.name).second) throw Error(pw + "tensor " + printable(t.name) + " is also in an earlier part");
      t.shard = static_cast<uint32_t>(i);
      tensors_.push_back(std::move(t));
    }
    parts_.push_back(std::move(part));
  }
  const int64_t declared = split_key(*this, "split.tensors.count");
  if (declared >= 0 && static_cast<uint64_t>(declared) != tensors_.size())
    throw Error(where + "split.tensors.count is " + std::to_string(declared) + " but the " + std::to_string(count) +
                " parts hold " + std::to_string(tensors_.size()) + " tensors");
}

std::vector<std::filesystem::path> GgufFile::paths() const {
  std::vector<std::filesystem::path> out{path_};
  for (const auto& p : parts_) out.push_back(p.path_);
  return out;
}

const GgufFile::Mapping& GgufFile::mapping_of(const GgufTensorInfo& t) const {
  if (t.shard == 0) return *map_;
  if (t.shard > parts_.size())
    throw Error("GGUF '" + path_.string() + "': tensor " + printable(t.name) + " names part " +
                std::to_string(t.shard + 1) + " of a model with " + std::to_string(parts_.size() + 1));
  return *parts_[t.shard - 1].map_;
}

void GgufFile::release(const GgufTensorInfo& t) const {
  const auto span = data(t);
  if (span.empty()) return;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto lo = reinterpret_cast<uintptr_t>(span.data());
  const uintptr_t first = (lo + page - 1) / page * page, last = (lo + span.size()) / page * page;
  if (last > first) (void)::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

void GgufFile::parse() {
  const auto bytes = map_->bytes();
  Reader r(bytes, path_.string());

  const auto magic = r.read<uint32_t>("magic");
  if (magic != kMagic) {
    std::string got;
    for (int i = 0; i < 4; ++i) got += static_cast<char>((magic >> (8 * i)) & 0xFF);
    r.fail(0, "magic", "expected 'GGUF', found " + printable(got));
  }
  version_ = r.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3) {
    std::string why = "unsupported version " + std::to_string(version_) + " (lowbit reads 2 and 3)";
    if (__builtin_bswap32(version_) == 2 || __builtin_bswap32(version_) == 3) why += "; this looks like a big-endian GGUF";
    r.fail(4, "version", why);
  }
  // Minimum sizes: a tensor info is a name length, n_dims, type and offset; a KV
  // pair a key length, a type and at least one value byte.
  const uint64_t n_tensors = r.read_count("tensor count", 8 + 4 + 4 + 8);
  const uint64_t n_kv = r.read_count("metadata count", 8 + 4 + 1);

  std::unordered_set<std::string> seen;
  for (uint64_t i = 0; i < n_kv; ++i) {
    r.set_context("metadata entry #" + std::to_string(i));
    const size_t key_at = r.pos();
    const auto key = r.read_string("key");
    if (key.empty()) r.fail(key_at, "key", "empty key");
    if (!valid_utf8(key)) r.fail(key_at, "key", printable(key) + " is not valid UTF-8");
    if (key.find('\0') != std::string_view::npos) r.fail(key_at, "key", printable(key) + " contains a NUL byte");
    r.set_context("metadata key " + printable(key));
    if (!seen.insert(std::string(key)).second) r.fail(key_at, "key", "duplicate key");
    const GgufType t = r.read_type("value type");
    const size_t value_at = r.pos();
    GgufValue v = r.read_value(t, 0);
    if (key == kAlignmentKey) {
      if (!v.is<uint32_t>()) r.fail(value_at, "value", "must be a uint32, got " + gguf_type_name(v.type()));
      if (!is_power_of_two(v.get<uint32_t>()))
        r.fail(value_at, "value", std::to_string(v.get<uint32_t>()) + " is not a power of two");
      // Bounded so that a few bytes of input cannot demand gigabytes of padding in
      // every copy of the file (2^31 would); docs/reliability.md gives the rationale.
      constexpr uint32_t kMaxAlignment = uint32_t{1} << 20;
      if (v.get<uint32_t>() > kMaxAlignment)
        r.fail(value_at, "value", std::to_string(v.get<uint32_t>()) + " is larger than lowbit's limit of " +
                                      std::to_string(kMaxAlignment) + " (1 MiB)");
      alignment_ = v.get<uint32_t>();
    }
    metadata_.push_back({std::string(key), std::move(v)});
  }

  seen.clear();
  std::vector<size_t> offset_field_at;  // where each tensor's offset was stored, for later errors
  for (uint64_t i = 0; i < n_tensors; ++i) {
    r.set_context("tensor #" + std::to_string(i));
    GgufTensorInfo t;
    const size_t name_at = r.pos();
    const auto name = r.read_string("name");
    if (name.empty()) r.fail(name_at, "name", "empty tensor name");
    if (!valid_utf8(name)) r.fail(name_at, "name", printable(name) + " is not valid UTF-8");
    // A NUL would end the name early for every C consumer (llama.cpp, file names).
    if (name.find('\0') != std::string_view::npos) r.fail(name_at, "name", printable(name) + " contains a NUL byte");
    r.set_context("tensor " + printable(name));
    if (!seen.insert(std::string(name)).second) r.fail(name_at, "name", "duplicate tensor name");
    t.name = std::string(name);

    const size_t dims_at = r.pos();
    const auto n_dims = r.read<uint32_t>("n_dims");
    if (n_dims > kMaxDims)
      r.fail(dims_at, "n_dims", std::to_string(n_dims) + " exceeds the maximum of " + std::to_string(kMaxDims));
    // The product of the non-zero dims must fit int64: then neither the element count
    // nor the row count (a zero ne0 does not make ne1 * ne2 * ne3 small) can overflow.
    int64_t nonzero = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const size_t at = r.pos();
      const std::string field = "ne" + std::to_string(d);
      const auto ne = r.read<uint64_t>(field);
      if (ne > static_cast<uint64_t>(INT64_MAX)) r.fail(at, field, std::to_string(ne) + " exceeds INT64_MAX");
      t.shape.push_back(static_cast<int64_t>(ne));
      if (ne != 0 && __builtin_mul_overflow(nonzero, static_cast<int64_t>(ne), &nonzero))
        r.fail(at, field, "element count of shape " + shape_string(t.shape) + "... overflows int64");
    }

    const size_t type_at = r.pos();
    const auto type_id = r.read<uint32_t>("type");
    try {
      t.format = format_from_ggml_type(type_id);
    } catch (const Error&) {
      r.fail(type_at, "type", "unknown or unsupported GGML type id " + std::to_string(type_id));
    }
    uint64_t nbytes = 0;
    std::string why;
    if (!tensor_bytes(t.shape, t.format, nbytes, why)) r.fail(dims_at, "shape", why);
    t.nbytes = static_cast<size_t>(nbytes);

    const size_t offset_at = r.pos();
    t.offset = r.read<uint64_t>("offset");
    if (t.offset % alignment_ != 0)
      r.fail(offset_at, "offset", std::to_string(t.offset) + " is not a multiple of the alignment " +
                                      std::to_string(alignment_));
    offset_field_at.push_back(offset_at);
    tensors_.push_back(std::move(t));
  }
  r.set_context("");

  // The data section starts at the next multiple of the alignment; a file without
  // tensors may end before that padding.
  data_offset_ = align_up(r.pos(), alignment_);
  if (!tensors_.empty() && data_offset_ > r.size())
    r.fail(r.pos(), "data section", "aligned start " + std::to_string(data_offset_) + " is past the end of the file (" +
                                        std::to_string(r.size()) + " bytes)");
  const uint64_t data_bytes = tensors_.empty() ? 0 : r.size() - data_offset_;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    auto& t = tensors_[i];
    r.set_context("tensor " + printable(t.name));
    if (t.offset > data_bytes || t.nbytes > data_bytes - t.offset)
      r.fail(offset_field_at[i], "offset",
             "data [" + std::to_string(data_offset_ + t.offset) + ", +" + std::to_string(t.nbytes) +
                 " bytes) runs past the end of the file (" + std::to_string(r.size()) + " bytes)");
    t.file_offset = data_offset_ + t.offset;
  }

  // Tensors may leave gaps but never share bytes: a writer never produces that, and
  // overlapping views would let one tensor's edit show up in another.
  std::vector<size_t> order(tensors_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  const GgufTensorInfo* prev = nullptr;
  for (size_t i : order) {
    const auto& t = tensors_[i];
    if (t.nbytes == 0) continue;
    if (prev && prev->offset + prev->nbytes > t.offset) {
      r.set_context("tensor " + printable(t.name));
      r.fail(offset_field_at[i], "offset",
             "data at " + std::to_string(t.offset) + " overlaps tensor " + printable(prev->name) + " [" +
                 std::to_string(prev->offset) + ", " + std::to_string(prev->offset + prev->nbytes) + ")");
    }
    prev = &t;
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const auto& kv : metadata_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

const GgufValue& GgufFile::at(std::string_view key) const {
  if (const GgufValue* v = find(key)) return *v;
  throw Error("GGUF '" + path_.string() + "': no metadata key " + printable(key));
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const GgufTensorInfo& GgufFile::tensor(std::string_view name) const {
  if (const GgufTensorInfo* t = find_tensor(name)) return *t;
  throw Error("GGUF '" + path_.string() + "': no tensor " + printable(name));
}

std::span<const std::byte> GgufFile::data(const GgufTensorInfo& t) const {
  const auto bytes = mapping_of(t).bytes();
  // Guards against an info from another file: the offsets were validated for this one only.
  if (t.file_offset > bytes.size() || t.nbytes > bytes.size() - t.file_offset)
    throw Error("GGUF '" + path_.string() + "': tensor " + printable(t.name) + " does not lie inside this file");
  return bytes.subspan(static_cast<size_t>(t.file_offset), t.nbytes);
}

// ------------------------------------------------------------------ writing

namespace {

// Collects bytes in memory (serialize()).
struct VectorSink {
  std::vector<std::byte>& out;
  void put(const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out.insert(out.end(), b, b + n);
  }
};

template <class Sink, class T>
void put(Sink& s, T v) {
  s.put(&v, sizeof(T));
}

template <class Sink>
void put_string(Sink& s, std::string_view str) {
  put<Sink, uint64_t>(s, str.size());
  s.put(str.data(), str.size());
}

template <class Sink>
void put_zeros(Sink& s, size_t n) {
  static constexpr std::byte kZeros[256] = {};
  while (n > 0) {
    const size_t k = std::min(n, sizeof(kZeros));
    s.put(kZeros, k);
    n -= k;
  }
}

// The value's payload, without its type id (arrays carry their element type).
template <class Sink>
void put_value(Sink& s, const GgufValue& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          put_string(s, x);
        } else if constexpr (std::is_same_v<T, GgufArray>) {
          put<Sink, uint32_t>(s, static_cast<uint32_t>(x.element_type));
          put<Sink, uint64_t>(s, x.items.size());
          for (const auto& item : x.items) put_value(s, item);
        } else if constexpr (std::is_same_v<T, bool>) {
          put<Sink, uint8_t>(s, x ? 1 : 0);
        } else {
          put<Sink, T>(s, x);
        }
      },
      v.storage());
}

void check_name(std::string_view name, std::string_view what) {
  if (name.empty()) throw Error("GgufWriter: empty " + std::string(what));
  if (!valid_utf8(name)) throw Error("GgufWriter: " + std::string(what) + " " + printable(name) + " is not valid UTF-8");
}

}  // namespace

void GgufWriter::set(std::string_view key, GgufValue value) {
  check_name(key, "metadata key");
  const std::string where = "GgufWriter: key " + printable(key);
  if (key == kAlignmentKey) check_alignment_value(value, where);
  if (depth_of(value) > kMaxArrayNesting)
    throw Error(where + ": arrays nested deeper than " + std::to_string(kMaxArrayNesting) + " levels");
  for (auto& kv : metadata_)
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  metadata_.push_back({std::string(key), std::move(value)});
}

bool GgufWriter::remove(std::string_view key) {
  const auto it = std::find_if(metadata_.begin(), metadata_.end(), [&](const auto& kv) { return kv.key == key; });
  if (it == metadata_.end()) return false;
  metadata_.erase(it);
  return true;
}

const GgufValue* GgufWriter::find(std::string_view key) const {
  for (const auto& kv : metadata_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

void GgufWriter::copy_metadata(const GgufFile& file) {
  for (const auto& kv : file.metadata()) set(kv.key, kv.value);
}

size_t GgufWriter::alignment() const {
  const GgufValue* v = find(kAlignmentKey);
  return v ? v->get<uint32_t>() : kDefaultAlignment;
}

void GgufWriter::add_tensor(std::string_view name, std::vector<int64_t> shape, Format format,
                            std::span<const std::byte> data) {
  add_checked(name, std::move(shape), format, data, {}, false, false);
}

void GgufWriter::declare_tensor(std::string_view name, std::vector<int64_t> shape, Format format) {
  add_checked(name, std::move(shape), format, {}, {}, false, true);
}

void GgufWriter::add_tensor(std::string_view name, std::vector<int64_t> shape, Format format,
                            std::vector<std::byte> data) {
  add_checked(name, std::move(shape), format, {}, std::move(data), true, false);
}

void GgufWriter::add_checked(std::string_view name, std::vector<int64_t> shape, Format format,
                             std::span<const std::byte> data, std::vector<std::byte> owned, bool owns,
                             bool declared) {
  check_name(name, "tensor name");
  const std::string where = "GgufWriter: tensor " + printable(name);
  for (const auto& t : tensors_)
    if (t.name == name) throw Error(where + ": duplicate tensor name");
  if (shape.size() > static_cast<size_t>(kMaxDims))
    throw Error(where + ": shape " + shape_string(shape) + " has more than " + std::to_string(kMaxDims) + " dims");
  int64_t nonzero = 1;  // as in the reader: the product of the non-zero dims fits int64
  for (int64_t d : shape)
    if (d < 0 || (d != 0 && __builtin_mul_overflow(nonzero, d, &nonzero)))
      throw Error(where + ": invalid shape " + shape_string(shape));
  (void)traits(format);  // throws for an id outside lowbit's formats
  uint64_t nbytes = 0;
  std::string why;
  if (!tensor_bytes(shape, format, nbytes, why)) throw Error(where + ": " + why);
  const size_t given = owns ? owned.size() : data.size();
  if (!declared && given != nbytes)
    throw Error(where + ": " + std::to_string(given) + " bytes given, shape " + shape_string(shape) + " in " +
                std::string(traits(format).name) + " needs " + std::to_string(nbytes));
  tensors_.push_back({std::string(name), std::move(shape), format, data, std::move(owned), owns, declared, nbytes});
}

std::vector<std::byte> GgufWriter::header() const {
  const size_t align = alignment();
  std::vector<std::byte> head;
  VectorSink hs{head};
  put<VectorSink, uint32_t>(hs, kMagic);
  put<VectorSink, uint32_t>(hs, kVersion);
  put<VectorSink, uint64_t>(hs, tensors_.size());
  put<VectorSink, uint64_t>(hs, metadata_.size());
  for (const auto& kv : metadata_) {
    put_string(hs, kv.key);
    put<VectorSink, uint32_t>(hs, static_cast<uint32_t>(kv.value.type()));
    put_value(hs, kv.value);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_string(hs, t.name);
    put<VectorSink, uint32_t>(hs, static_cast<uint32_t>(t.shape.size()));
    for (int64_t d : t.shape) put<VectorSink, uint64_t>(hs, static_cast<uint64_t>(d));
    put<VectorSink, uint32_t>(hs, traits(t.format).ggml_type);
    put<VectorSink, uint64_t>(hs, offset);
    offset += align_up(t.nbytes, align);
  }
  put_zeros(hs, static_cast<size_t>(align_up(head.size(), align) - head.size()));
  return head;
}

template <class Sink>
void GgufWriter::emit(Sink& s) const {
  for (const auto& t : tensors_)
    if (t.declared)
      throw Error("GgufWriter: tensor " + printable(t.name) +
                  " was declared without its bytes (declare_tensor): write it with GgufStreamWriter");
  const size_t align = alignment();
  const std::vector<std::byte> head = header();
  s.put(head.data(), head.size());
  for (const auto& t : tensors_) {
    const auto b = t.bytes();
    s.put(b.data(), b.size());
    put_zeros(s, static_cast<size_t>(align_up(b.size(), align) - b.size()));
  }
}

std::vector<std::byte> GgufWriter::serialize() const {
  std::vector<std::byte> out;
  VectorSink s{out};
  emit(s);
  return out;
}

void GgufWriter::write(const std::filesystem::path& path) const {
  io_detail::write_atomically(path, "GGUF write of '" + path.string() + "'",
                              [&](io_detail::FileSink& sink) { emit(sink); });
}

}  // namespace lowbit
