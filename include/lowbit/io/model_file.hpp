#pragma once
// One read-only view of a model file, whichever container it is: a GGUF file, a
// safetensors file or a sharded safetensors model (its model.safetensors.index.json).
// Lists the tensors with a common description, decodes any float tensor to float32
// and renders the metadata as JSON or as text. `lowbit inspect` and `lowbit compare`
// are built on it.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace lowbit {

struct ModelTensor {
  std::string name;
  std::vector<int64_t> shape;  // GGUF order for GGUF (ne0 first), the file's own order for safetensors
  std::string type;            // GGML name ("Q4_K", "F32", ...) or safetensors dtype ("BF16", "I64", ...)
  uint64_t bytes = 0;          // stored bytes
  int64_t elements() const;    // product of shape (1 for a 0-d tensor)
};

class ModelFile {
 public:
  // Opens GGUF (starts with "GGUF"), a sharded safetensors index (a JSON file) or a
  // safetensors file, told apart by content, not by name. Throws lowbit::Error naming
  // the file (and the field or offset) for anything unreadable.
  static ModelFile open(const std::filesystem::path& path);
  ModelFile(ModelFile&&) noexcept;
  ModelFile& operator=(ModelFile&&) noexcept;
  ~ModelFile();

  const std::filesystem::path& path() const { return path_; }
  const std::string& container() const { return container_; }  // "gguf" or "safetensors"
  // Tensors in file order (shard by shard for a sharded model).
  const std::vector<ModelTensor>& tensors() const { return tensors_; }
  const ModelTensor* find(const std::string& name) const;  // nullptr when absent
  // Whether read_f32 can decode the tensor (every GGUF type; safetensors F32, F16, BF16).
  bool is_float(const ModelTensor& t) const;
  // The tensor's values as float32, row-major (GGUF block formats dequantized).
  std::vector<float> read_f32(const ModelTensor& t) const;
  // Metadata as the JSON text of one object: GGUF values mapped naturally (integers,
  // floats by their shortest decimal, bools, strings, nested arrays in full; invalid
  // UTF-8 replaced by U+FFFD); safetensors __metadata__ entries as strings.
  std::string metadata_json() const;
  // Metadata as printable (key, value) pairs in file order; arrays shortened to their
  // first `max_items` items.
  std::vector<std::pair<std::string, std::string>> metadata_text(size_t max_items) const;

 private:
  struct Impl;
  ModelFile() = default;
  std::filesystem::path path_;
  std::string container_;
  std::vector<ModelTensor> tensors_;
  std::unique_ptr<Impl> impl_;
};

// "[4096, 11008]" ("[]" for a 0-d tensor).
std::string shape_string(std::span<const int64_t> shape);

}  // namespace lowbit
