#pragma once
// GGUF (v3, also v2) reading and writing.
//
// GgufFile maps a file read-only and validates every count, length, shape, type
// and offset before it is trusted, so a truncated or hostile file gives a
// lowbit::Error naming the field and byte offset instead of a crash. Tensor data
// is not copied: GgufFile::data() is a view into the mapping.
//
// GgufWriter collects metadata and tensors and writes them atomically: the bytes
// go to a temporary file beside <path> ("<path>.tmp.<pid>.<n>"), are fsync'ed and
// renamed over <path>, so a failure never leaves a half-written file behind
// (lowbit/io/files.hpp, docs/reliability.md).
//
// Split models (llama.cpp's gguf-split convention: files NAME-00001-of-00003.gguf,
// keys split.no / split.count / split.tensors.count, all metadata in the first file)
// are read whole by GgufFile::open given the first file; GgufStreamWriter
// (io/gguf_stream.hpp) writes them.
//
// Shapes use GGUF's order: shape[0] = ne0 is the contiguous row length (a weight
// matrix [out x in] has shape {in, out}).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "lowbit/formats/format.hpp"
#include "lowbit/io/files.hpp"

namespace lowbit {

// GGUF metadata value types; the numeric values are the on-disk type ids.
enum class GgufType : uint32_t {
  uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6,
  bool_ = 7, string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12,
};

// "uint8", "string", ...; "type id N" for an id outside the 13 known ones.
std::string gguf_type_name(GgufType t);

class GgufValue;

// A GGUF array: its element type is stored even when it is empty, as on disk.
struct GgufArray {
  GgufType element_type = GgufType::uint8;
  std::vector<GgufValue> items;
};

// One metadata value. The variant's alternative index equals the GGUF type id.
class GgufValue {
 public:
  using Storage = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                               std::string, GgufArray, uint64_t, int64_t, double>;

  // Only the exact alternative types convert implicitly, so `GgufValue(uint32_t{4})`
  // is a uint32 and never silently widened or narrowed.
  template <class T>
    requires(std::is_same_v<std::remove_cvref_t<T>, uint8_t> || std::is_same_v<std::remove_cvref_t<T>, int8_t> ||
             std::is_same_v<std::remove_cvref_t<T>, uint16_t> || std::is_same_v<std::remove_cvref_t<T>, int16_t> ||
             std::is_same_v<std::remove_cvref_t<T>, uint32_t> || std::is_same_v<std::remove_cvref_t<T>, int32_t> ||
             std::is_same_v<std::remove_cvref_t<T>, float> || std::is_same_v<std::remove_cvref_t<T>, bool> ||
             std::is_same_v<std::remove_cvref_t<T>, std::string> ||
             std::is_same_v<std::remove_cvref_t<T>, uint64_t> || std::is_same_v<std::remove_cvref_t<T>, int64_t> ||
             std::is_same_v<std::remove_cvref_t<T>, double>)
  GgufValue(T&& v) : v_(std::forward<T>(v)) {}  // NOLINT(google-explicit-constructor)
  GgufValue(const char* s) : v_(std::string(s)) {}        // NOLINT(google-explicit-constructor)
  GgufValue(std::string_view s) : v_(std::string(s)) {}   // NOLINT(google-explicit-constructor)
  // Throws Error when an item's type differs from element_type.
  GgufValue(GgufArray a);  // NOLINT(google-explicit-constructor)
  GgufValue() : v_(uint8_t{0}) {}

  // Arrays of plain values: GgufValue::array<float>({1.f, 2.f}) or array<float>(a_span);
  // array_of_strings(a_vector_of_strings). Nested arrays: build a GgufArray of array values.
  template <class T>
  static GgufValue array(std::span<const T> items) {
    GgufArray a;
    a.element_type = GgufValue(T{}).type();
    a.items.reserve(items.size());
    for (const T& x : items) a.items.emplace_back(x);
    return GgufValue(std::move(a));
  }
  template <class T>
  static GgufValue array(std::initializer_list<T> items) {
    return array<T>(std::span<const T>(items.begin(), items.size()));
  }
  static GgufValue array_of_strings(std::span<const std::string> items);

  GgufType type() const { return static_cast<GgufType>(v_.index()); }
  const Storage& storage() const { return v_; }

  template <class T>
  bool is() const {
    return std::holds_alternative<T>(v_);
  }
  // The value as exactly T; throws Error naming both types otherwise.
  template <class T>
  const T& get() const {
    if (const T* p = std::get_if<T>(&v_)) return *p;
    throw_type_mismatch(GgufValue(T{}).type());
  }
  const std::string& as_string() const { return get<std::string>(); }
  const GgufArray& as_array() const { return get<GgufArray>(); }
  // Any integer type whose value fits int64 (uint64 above INT64_MAX and non-integers throw).
  int64_t as_int() const;

  // Same type and same value; floats compare by bit pattern, so NaN == NaN and 0.0 != -0.0.
  friend bool operator==(const GgufValue& a, const GgufValue& b);

 private:
  [[noreturn]] void throw_type_mismatch(GgufType wanted) const;
  Storage v_;
};

bool operator==(const GgufArray& a, const GgufArray& b);

struct GgufKeyValue {
  std::string key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // [ne0, ne1, ...]; empty for a 0-d tensor
  Format format = Format::F32;
  uint64_t offset = 0;       // relative to the data section, as stored in the file
  uint64_t file_offset = 0;  // absolute position of the first byte in its file
  size_t nbytes = 0;
  uint32_t shard = 0;        // the file of a split model that holds it (0: the first / only file)

  int64_t elements() const;
  int64_t row_length() const { return shape.empty() ? 1 : shape[0]; }  // ne0
  int64_t rows() const;  // product of shape[1..]
};

// gguf-split's file name for part `no` (0-based) of `count`: "<prefix>-%05d-of-%05d.gguf"
// with no + 1, so gguf_split_path("out/m", 0, 3) is "out/m-00001-of-00003.gguf".
std::filesystem::path gguf_split_path(const std::filesystem::path& prefix, int no, int count);
// The prefix of a split file name ("m-00002-of-00003.gguf" -> "m"); nullopt when the
// name does not end in "-NNNNN-of-NNNNN.gguf".
std::optional<std::filesystem::path> gguf_split_prefix(const std::filesystem::path& path);

class GgufFile {
 public:
  // Maps and validates `path`; throws Error naming the file, field and byte offset.
  // When `path` is the first file of a split model (split.count > 1, split.no = 0),
  // the other files are opened too (named as gguf_split_path gives them) and checked
  // (split.no, split.count, no tensor twice, split.tensors.count tensors in all):
  // tensors() then lists the tensors of every file, and metadata() is the first's.
  static GgufFile open(const std::filesystem::path& path);

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  ~GgufFile();

  const std::filesystem::path& path() const { return path_; }
  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute start of the data section
  size_t file_size() const;

  // Metadata in file order.
  std::span<const GgufKeyValue> metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;  // nullptr when absent
  const GgufValue& at(std::string_view key) const;    // throws Error when absent

  // Tensors in file order.
  std::span<const GgufTensorInfo> tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  const GgufTensorInfo& tensor(std::string_view name) const;  // throws Error when absent
  // The tensor's bytes inside the mapping; valid while this GgufFile lives.
  std::span<const std::byte> data(const GgufTensorInfo& t) const;
  // Drops the tensor's pages from this process's resident memory (madvise
  // MADV_DONTNEED on the whole pages inside it; the mapping is read-only, so a later
  // data() reads them from the file again). Lets a pass over a model larger than
  // memory keep only the tensors in use resident.
  void release(const GgufTensorInfo& t) const;
  // The files of the model: the first, then the other parts of a split model.
  std::vector<std::filesystem::path> paths() const;

 private:
  struct Mapping;
  GgufFile() = default;
  void parse();
  void open_split_parts();
  const Mapping& mapping_of(const GgufTensorInfo& t) const;

  std::filesystem::path path_;
  std::unique_ptr<Mapping> map_;
  std::vector<GgufFile> parts_;  // a split model's files after the first
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKeyValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
};

class GgufWriter {
 public:
  // Adds or replaces a key; a new key goes last, a replaced one keeps its place.
  // "general.alignment" must be a uint32 power of two; it sets the data alignment.
  void set(std::string_view key, GgufValue value);
  bool remove(std::string_view key);
  const GgufValue* find(std::string_view key) const;
  // Copies every key of `file` (in file order) as set() would.
  void copy_metadata(const GgufFile& file);

  // Adds a tensor. The span overload BORROWS the bytes (e.g. from a GgufFile's
  // mapping): they must stay valid until write(). The vector overload owns them.
  // Throws Error for a bad name (empty, non-UTF-8, duplicate), more than 4 dims, a
  // row length that is not a multiple of the block size, or a byte count that
  // does not match the shape.
  void add_tensor(std::string_view name, std::vector<int64_t> shape, Format format,
                  std::span<const std::byte> data);
  void add_tensor(std::string_view name, std::vector<int64_t> shape, Format format,
                  std::vector<std::byte> data);
  // Adds a tensor's name, shape and type without its bytes, for a layout that
  // GgufStreamWriter (io/gguf_stream.hpp) fills tensor by tensor. write() and
  // serialize() refuse a writer holding such a tensor.
  void declare_tensor(std::string_view name, std::vector<int64_t> shape, Format format);

  size_t alignment() const;
  // Writes the file atomically (temporary + fsync + rename); throws Error and
  // removes the temporary on any failure.
  void write(const std::filesystem::path& path) const;
  // The exact bytes write() would produce (for tests and small files).
  std::vector<std::byte> serialize() const;

 private:
  friend class GgufStreamWriter;
  struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
    Format format;
    std::span<const std::byte> borrowed;  // used when !owns
    std::vector<std::byte> owned;
    bool owns = false;
    bool declared = false;  // declare_tensor: no bytes
    uint64_t nbytes = 0;
    std::span<const std::byte> bytes() const { return owns ? std::span<const std::byte>(owned) : borrowed; }
  };
  void add_checked(std::string_view name, std::vector<int64_t> shape, Format format,
                   std::span<const std::byte> data, std::vector<std::byte> owned, bool owns, bool declared);
  // Magic, counts, metadata, tensor infos and the padding up to the data section.
  std::vector<std::byte> header() const;
  template <class Sink>
  void emit(Sink& sink) const;

  std::vector<GgufKeyValue> metadata_;
  std::vector<Tensor> tensors_;
};

}  // namespace lowbit
