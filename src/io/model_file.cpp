#include "lowbit/io/model_file.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <variant>

#include <nlohmann/json.hpp>

#include "common/checks.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/formats/format.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/formats/quantize.hpp"

namespace lowbit {
namespace {
using Json = nlohmann::ordered_json;
}  // namespace

int64_t ModelTensor::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

struct ModelFile::Impl {
  std::optional<GgufFile> gguf;
  std::optional<SafetensorsFile> st;
  std::optional<SafetensorsModel> st_index;
  const SafetensorsTensor& st_tensor(const std::string& name) const {
    return st ? st->tensor(name) : st_index->tensor(name);
  }
};

namespace {

Json gguf_json(const GgufValue& v) {
  return std::visit(
      [](const auto& x) -> Json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, GgufArray>) {
          Json a = Json::array();
          for (const GgufValue& item : x.items) a.push_back(gguf_json(item));
          return a;
        } else if constexpr (std::is_same_v<T, uint8_t> || std::is_same_v<T, uint16_t> ||
                             std::is_same_v<T, uint32_t> || std::is_same_v<T, uint64_t>) {
          return Json(static_cast<uint64_t>(x));
        } else if constexpr (std::is_same_v<T, int8_t> || std::is_same_v<T, int16_t> ||
                             std::is_same_v<T, int32_t> || std::is_same_v<T, int64_t>) {
          return Json(static_cast<int64_t>(x));
        } else if constexpr (std::is_same_v<T, float>) {
          // The shortest decimal that reads back as this float (1e-05, not
          // 9.999999747378752e-06), widened to the double nearest to it.
          char buf[32];
          auto res = std::to_chars(buf, buf + sizeof buf, x);
          return std::isfinite(x) ? Json(std::strtod(std::string(buf, res.ptr).c_str(), nullptr)) : Json(nullptr);
        } else {
          return Json(x);  // double, bool, string
        }
      },
      v.storage());
}

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// One value for the text view; arrays show their first `max_items` items.
std::string gguf_text(const GgufValue& v, size_t max_items) {
  if (v.is<std::string>()) return dump(Json(v.as_string()));
  if (!v.is<GgufArray>()) return dump(gguf_json(v));
  const GgufArray& a = v.as_array();
  std::string s = "[";
  for (size_t i = 0; i < a.items.size() && i < max_items; ++i) s += (i ? ", " : "") + gguf_text(a.items[i], max_items);
  if (a.items.size() > max_items) s += ", ... (" + std::to_string(a.items.size()) + " " + gguf_type_name(a.element_type) + " items)";
  return s + "]";
}

bool starts_with_bytes(const std::filesystem::path& path, const char* magic, size_t n) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open file");
  std::string head(n, '\0');
  in.read(head.data(), static_cast<std::streamsize>(n));
  return static_cast<size_t>(in.gcount()) == n && std::memcmp(head.data(), magic, n) == 0;
}

void add_st_tensors(const SafetensorsTensor& t, std::vector<ModelTensor>& out) {
  ModelTensor m;
  m.name = t.name;
  for (uint64_t d : t.shape) m.shape.push_back(static_cast<int64_t>(d));
  m.type = std::string(to_string(t.dtype));
  m.bytes = t.data.size();
  out.push_back(std::move(m));
}

}  // namespace

ModelFile::ModelFile(ModelFile&&) noexcept = default;
ModelFile& ModelFile::operator=(ModelFile&&) noexcept = default;
ModelFile::~ModelFile() = default;

ModelFile ModelFile::open(const std::filesystem::path& path) {
  ModelFile f;
  f.path_ = path;
  f.impl_ = std::make_unique<Impl>();
  if (std::filesystem::is_directory(path)) throw Error(path.string() + ": is a directory, expected a model file");
  if (starts_with_bytes(path, "GGUF", 4)) {
    f.container_ = "gguf";
    f.impl_->gguf.emplace(GgufFile::open(path));
    for (const GgufTensorInfo& t : f.impl_->gguf->tensors())
      f.tensors_.push_back({t.name, t.shape, std::string(traits(t.format).name), t.nbytes});
  } else if (starts_with_bytes(path, "{", 1)) {
    // A JSON file: the index of a sharded safetensors model.
    f.container_ = "safetensors";
    f.impl_->st_index.emplace(SafetensorsModel::open_index(path));
    for (const SafetensorsFile& shard : f.impl_->st_index->shards())
      for (const SafetensorsTensor& t : shard.tensors()) add_st_tensors(t, f.tensors_);
  } else {
    f.container_ = "safetensors";
    try {
      f.impl_->st.emplace(SafetensorsFile::open(path));
    } catch (const Error& e) {
      throw Error(std::string(e.what()) + " (not GGUF either: no 'GGUF' magic)");
    }
    for (const SafetensorsTensor& t : f.impl_->st->tensors()) add_st_tensors(t, f.tensors_);
  }
  return f;
}

const ModelTensor* ModelFile::find(const std::string& name) const {
  for (const ModelTensor& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

bool ModelFile::is_float(const ModelTensor& t) const {
  if (impl_->gguf) return true;
  return t.type == "F32" || t.type == "F16" || t.type == "BF16";
}

std::vector<float> ModelFile::read_f32(const ModelTensor& t) const {
  if (!impl_->gguf) return to_float32(impl_->st_tensor(t.name));
  const GgufTensorInfo& info = impl_->gguf->tensor(t.name);
  std::vector<float> out(static_cast<size_t>(info.elements()));
  dequantize(info.format, impl_->gguf->data(info), {out.data(), info.rows(), info.row_length()});
  return out;
}

std::string ModelFile::metadata_json() const {
  Json m = Json::object();
  if (impl_->gguf) {
    for (const GgufKeyValue& kv : impl_->gguf->metadata()) m[kv.key] = gguf_json(kv.value);
  } else {
    const auto& md = impl_->st ? impl_->st->metadata() : impl_->st_index->metadata();
    for (const auto& [k, v] : md) m[k] = v;
  }
  return dump(m);
}

std::vector<std::pair<std::string, std::string>> ModelFile::metadata_text(size_t max_items) const {
  std::vector<std::pair<std::string, std::string>> out;
  if (impl_->gguf) {
    for (const GgufKeyValue& kv : impl_->gguf->metadata())
      out.emplace_back(kv.key, gguf_text(kv.value, max_items));
  } else {
    const auto& md = impl_->st ? impl_->st->metadata() : impl_->st_index->metadata();
    for (const auto& [k, v] : md) out.emplace_back(k, dump(Json(v)));
  }
  return out;
}

std::string shape_string(std::span<const int64_t> shape) { return detail::shape_list(shape); }

}  // namespace lowbit
