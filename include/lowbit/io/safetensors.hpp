#pragma once
// safetensors files: a memory-mapped, strictly validated reader, the sharded
// `model.safetensors.index.json` layout, and an atomic writer.
//
// Layout (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of UTF-8 JSON
//   {"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...}
// (possibly padded with whitespace), then the data buffer. Offsets are relative
// to the buffer start, and the tensors tile the buffer exactly: sorted by offset,
// each starts where the previous one ended and the last one ends at the end of the file.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/io/files.hpp"

namespace lowbit {

// The whole-byte dtypes of the format. The sub-byte ones (F4, F6_E2M3, F6_E3M2) are
// refused as unknown.
enum class SafetensorsDtype {
  BOOL, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64,
  C64,  // complex64: two F32
};

// The spelling used in the header ("F32", "BF16", ...).
std::string_view to_string(SafetensorsDtype dtype);
std::optional<SafetensorsDtype> safetensors_dtype_from_name(std::string_view name);
// Bytes per element.
size_t element_size(SafetensorsDtype dtype);

// One tensor of an open file. `data` points into the file's mapping: it stays valid as
// long as the SafetensorsFile (or SafetensorsModel) that produced it, and may be unaligned.
struct SafetensorsTensor {
  std::string name;
  SafetensorsDtype dtype{};
  std::vector<uint64_t> shape;
  std::span<const std::byte> data;

  uint64_t numel() const;
};

// The tensor's values as float32: F32 is copied, F16 and BF16 are widened exactly.
// Any other dtype is a lowbit::Error naming the tensor.
std::vector<float> to_float32(const SafetensorsTensor& tensor);

// A read-only, memory-mapped safetensors file. open() validates the whole header and
// every tensor's extent; any defect is a lowbit::Error naming the file, the tensor and
// the field or byte offset. It accepts what the reference implementation accepts, except
// duplicate JSON keys (refused: readers disagree on which one wins). The tensor bytes
// themselves are only read when used; the file must not be truncated while it is open.
class SafetensorsFile {
 public:
  // Header lengths above this are refused before anything is allocated (the
  // reference implementation's limit).
  static constexpr uint64_t kMaxHeaderBytes = 100'000'000;

  static SafetensorsFile open(const std::filesystem::path& path);

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  ~SafetensorsFile();

  const std::filesystem::path& path() const { return path_; }
  // "__metadata__", empty when the file has none.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // In file order (ascending data offset).
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  // Null when there is no such tensor.
  const SafetensorsTensor* find(std::string_view name) const;
  // Throws lowbit::Error naming the file when there is no such tensor.
  const SafetensorsTensor& tensor(std::string_view name) const;
  std::vector<float> read_float32(std::string_view name) const { return to_float32(tensor(name)); }

 private:
  struct Mapping;
  SafetensorsFile() = default;

  std::filesystem::path path_;
  std::unique_ptr<Mapping> mapping_;
  std::map<std::string, std::string> metadata_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
};

// A model sharded across several files by a Hugging Face index,
// {"metadata": {...}, "weight_map": {tensor: shard file}}. Shard names are resolved
// relative to the index's folder and must stay inside it. open() maps every shard and
// checks that each mapped tensor exists in the shard the index names.
class SafetensorsModel {
 public:
  static SafetensorsModel open_index(const std::filesystem::path& index_path);

  const std::filesystem::path& index_path() const { return index_path_; }
  // The index's "metadata": strings as they are, other JSON values (e.g. total_size)
  // as their compact JSON text.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Tensor name -> shard file name, as written in the index.
  const std::map<std::string, std::string>& weight_map() const { return weight_map_; }
  // The shards in order of their file names, each file once however the index spells
  // it ("x" and "./x", or a link to the same file, are one shard).
  const std::vector<SafetensorsFile>& shards() const { return shards_; }

  const SafetensorsTensor* find(std::string_view name) const;
  const SafetensorsTensor& tensor(std::string_view name) const;
  std::vector<float> read_float32(std::string_view name) const { return to_float32(tensor(name)); }

 private:
  std::filesystem::path index_path_;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, std::string> weight_map_;
  std::vector<SafetensorsFile> shards_;
  std::map<std::string, const SafetensorsTensor*, std::less<>> tensors_;
};

// Collects tensors and metadata, then writes one safetensors file. Tensors are laid
// out in the order they were added; the header is padded with spaces to a multiple of
// 8 bytes, as the reference writer does, so the data buffer starts 8-byte aligned.
class SafetensorsWriter {
 public:
  // Keys and values must be valid UTF-8.
  void set_metadata(std::string key, std::string value);
  // Copies `bytes`, which must hold exactly numel(shape) * element_size(dtype) bytes.
  // Names must be valid UTF-8, unique and not "__metadata__".
  void add(std::string name, SafetensorsDtype dtype, std::vector<uint64_t> shape,
           std::span<const std::byte> bytes);
  void add_float32(std::string name, std::vector<uint64_t> shape, std::span<const float> values);

  // The complete file image.
  std::vector<std::byte> serialize() const;
  // Writes atomically: a temporary file in the same folder, fsync, rename over `path`.
  // On any error the temporary file is removed and `path` is untouched.
  void write(const std::filesystem::path& path) const;

 private:
  struct Entry {
    std::string name;
    SafetensorsDtype dtype;
    std::vector<uint64_t> shape;
    std::vector<std::byte> bytes;
  };
  std::map<std::string, std::string> metadata_;
  std::vector<Entry> entries_;
  std::set<std::string, std::less<>> names_;
};

// The same file without holding its tensors: the layout is declared first (names,
// dtypes and shapes, in file order, checked as SafetensorsWriter::add checks them),
// then write() streams the header and each tensor's bytes as produce(i) returns them,
// in order. For outputs larger than memory (lowbit::export_hf_gptq).
class SafetensorsStreamWriter {
 public:
  void set_metadata(std::string key, std::string value);
  void declare(std::string name, SafetensorsDtype dtype, std::vector<uint64_t> shape);
  // Atomic as SafetensorsWriter::write. produce(i) must return exactly tensor i's
  // declared byte size (an Error naming it otherwise); an exception from it removes
  // the temporary file and propagates.
  void write(const std::filesystem::path& path, const std::function<std::vector<std::byte>(size_t)>& produce) const;

 private:
  struct Entry {
    std::string name;
    SafetensorsDtype dtype;
    std::vector<uint64_t> shape;
    uint64_t nbytes = 0;
  };
  std::map<std::string, std::string> metadata_;
  std::vector<Entry> entries_;
  std::set<std::string, std::less<>> names_;
};

}  // namespace lowbit
