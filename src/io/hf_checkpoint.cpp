#include "lowbit/io/hf_checkpoint.hpp"

#include <cstring>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>

#include "io/file_io.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/gptq/quantize_config.hpp"
#include "lowbit/io/safetensors.hpp"

namespace lowbit {
namespace {

template <class T>
std::span<const std::byte> as_bytes(const std::vector<T>& v) {
  return std::as_bytes(std::span<const T>(v));
}

template <class T>
std::vector<T> copy_out(const SafetensorsTensor& t) {
  std::vector<T> v(t.data.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), t.data.data(), v.size() * sizeof(T));  // never memcpy(nullptr, ...)
  return v;
}

// quantize_config.json, read with every value's type and range checked before it is
// converted: a wrong type, a fraction or an out-of-range number is an Error naming
// the file and key, never a nlohmann exception or an overflowing conversion.
class ConfigJson {
 public:
  explicit ConfigJson(const std::filesystem::path& path) : where_("HF GPTQ checkpoint: '" + path.string() + "'") {
    // Mapped: a directory, device or FIFO is refused by name, nothing is read from it.
    const io_detail::MappedFile file = io_detail::MappedFile::open(path, where_);
    const auto* p = reinterpret_cast<const char*>(file.bytes().data());
    const std::string_view text(p == nullptr ? "" : p, file.size());
    if (text.starts_with("\xEF\xBB\xBF"))
      throw Error(where_ + ": a UTF-8 byte-order mark at offset 0; JSON files must not start with one");
    try {
      root_ = nlohmann::json::parse(text.begin(), text.end());
    } catch (const std::exception& e) {
      throw Error(where_ + " is not valid JSON: " + e.what());
    }
    if (!root_.is_object()) throw Error(where_ + ": the top level is not a JSON object");
  }

  const nlohmann::json* find(const char* key) const {
    const auto it = root_.find(key);
    return it == root_.end() ? nullptr : &*it;
  }
  const nlohmann::json& required(const char* key) const {
    if (const nlohmann::json* v = find(key)) return *v;
    throw Error(where_ + " has no \"" + key + "\"");
  }

  // A JSON integer (no fraction, no exponent form that nlohmann reads as a float) in [lo, hi].
  int integer(const char* key, int lo, int hi) const {
    const nlohmann::json& v = required(key);
    if (!v.is_number_integer())
      throw Error(where_ + ": \"" + key + "\" must be an integer, got " + v.dump());
    // nlohmann reads every non-negative integer as unsigned, so both bounds apply there too.
    const bool in_range =
        v.is_number_unsigned()
            ? v.get<uint64_t>() <= static_cast<uint64_t>(hi) && (lo <= 0 || v.get<uint64_t>() >= static_cast<uint64_t>(lo))
            : v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
    if (!in_range)
      throw Error(where_ + ": \"" + key + "\" is " + v.dump() + ", outside [" + std::to_string(lo) + ", " +
                  std::to_string(hi) + "]");
    return static_cast<int>(v.is_number_unsigned() ? static_cast<int64_t>(v.get<uint64_t>()) : v.get<int64_t>());
  }
  bool boolean(const char* key, bool fallback) const {
    const nlohmann::json* v = find(key);
    if (!v) return fallback;
    if (!v->is_boolean()) throw Error(where_ + ": \"" + key + "\" must be true or false, got " + v->dump());
    return v->get<bool>();
  }
  std::string string(const char* key, const std::string& fallback) const {
    const nlohmann::json* v = find(key);
    if (!v) return fallback;
    if (!v->is_string()) throw Error(where_ + ": \"" + key + "\" must be a string, got " + v->dump());
    return v->get<std::string>();
  }
  const std::string& where() const { return where_; }

 private:
  std::string where_;
  nlohmann::json root_;
};

}  // namespace

void save_hf_gptq_checkpoint(const std::filesystem::path& dir, std::span<const HfGptqLayer> layers,
                             const GsqConfig& gsq, const GptqConfig& gptq, int format_version,
                             std::span<const HfDenseTensor> dense) {
  const std::string config = quantize_config_json(gsq, gptq, format_version);  // validates gsq and version
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.set_metadata("quantized_by", "lowbit");
  for (const HfGptqLayer& l : layers) {
    const HfGptqTensors& t = l.tensors;
    const int group = gsq.group_size == 0 ? static_cast<int>(t.in_features) : gsq.group_size;
    if (t.bits != gsq.bits || t.group_size != group || t.sym != (gsq.scheme == GsqScheme::symmetric) ||
        t.format_version != format_version)
      throw Error("HF GPTQ checkpoint: layer '" + l.name + "' was exported with bits " + std::to_string(t.bits) +
                  ", group " + std::to_string(t.group_size) + ", v" + std::to_string(t.format_version) +
                  ", which does not match the checkpoint's configuration");
    const auto in = static_cast<uint64_t>(t.in_features), out = static_cast<uint64_t>(t.out_features);
    const auto groups = static_cast<uint64_t>(t.groups()), bits = static_cast<uint64_t>(t.bits);
    w.add(l.name + ".qweight", SafetensorsDtype::I32, {in * bits / 32, out}, as_bytes(t.qweight));
    w.add(l.name + ".qzeros", SafetensorsDtype::I32, {groups, out * bits / 32}, as_bytes(t.qzeros));
    w.add(l.name + ".scales", SafetensorsDtype::F16, {groups, out}, as_bytes(t.scales));
    w.add(l.name + ".g_idx", SafetensorsDtype::I32, {in}, as_bytes(t.g_idx));
  }
  for (const HfDenseTensor& d : dense) w.add(d.name, SafetensorsDtype::F16, d.shape, as_bytes(d.fp16));
  w.write(dir / "model.safetensors");
  io_detail::write_atomically(dir / "quantize_config.json", "HF GPTQ checkpoint: quantize_config.json",
                              [&](io_detail::FileSink& s) { s.put(config.data(), config.size()); });
}

std::vector<HfGptqLayer> load_hf_gptq_checkpoint(const std::filesystem::path& dir) {
  const ConfigJson cfg(dir / "quantize_config.json");
  // GPTQ packs 2, 3, 4 or 8 bits; any count up to 32 fills whole words for some shapes,
  // which from_hf_gptq validates further.
  const int bits = cfg.integer("bits", 1, 32);
  // -1 (or 0): one group per input row; otherwise the group length.
  const int group = cfg.integer("group_size", -1, std::numeric_limits<int32_t>::max());
  const bool sym = cfg.boolean("sym", true);
  const std::string format = cfg.string("checkpoint_format", "gptq");
  if (format != "gptq" && format != "gptq_v2")
    throw Error(cfg.where() + ": checkpoint_format \"" + format + "\" is not gptq or gptq_v2");

  const SafetensorsFile file = SafetensorsFile::open(dir / "model.safetensors");
  auto get = [&](const std::string& name, SafetensorsDtype dtype, size_t dims) -> const SafetensorsTensor& {
    const SafetensorsTensor& t = file.tensor(name);
    if (t.dtype != dtype || t.shape.size() != dims)
      throw Error("HF GPTQ checkpoint: tensor '" + name + "' is " + std::string(to_string(t.dtype)) + " with " +
                  std::to_string(t.shape.size()) + " dims, expected " + std::string(to_string(dtype)) + " with " +
                  std::to_string(dims));
    return t;
  };
  std::vector<HfGptqLayer> layers;
  const std::string suffix = ".qweight";
  for (const SafetensorsTensor& qw : file.tensors()) {
    if (qw.name.size() <= suffix.size() || qw.name.compare(qw.name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    HfGptqLayer l;
    l.name = qw.name.substr(0, qw.name.size() - suffix.size());
    HfGptqTensors& t = l.tensors;
    const SafetensorsTensor& w = get(qw.name, SafetensorsDtype::I32, 2);
    // Shapes come from the file: bound them before any arithmetic (a zero-size tensor
    // can claim any dimension without holding a byte).
    constexpr uint64_t kMaxFeatures = std::numeric_limits<int32_t>::max();
    if (w.shape[0] == 0 || w.shape[1] == 0 || w.shape[0] > kMaxFeatures / 32 || w.shape[1] > kMaxFeatures)
      throw Error("HF GPTQ checkpoint: tensor '" + qw.name + "' has shape [" + std::to_string(w.shape[0]) + ", " +
                  std::to_string(w.shape[1]) + "]; a layer needs between 1 and " + std::to_string(kMaxFeatures) +
                  " input and output features");
    if (w.shape[0] * 32 % static_cast<uint64_t>(bits) != 0)
      throw Error("HF GPTQ checkpoint: tensor '" + qw.name + "' has " + std::to_string(w.shape[0]) +
                  " packed rows, not a whole number of " + std::to_string(bits) + "-bit input columns");
    t.bits = bits;
    t.out_features = static_cast<int64_t>(w.shape[1]);
    t.in_features = static_cast<int64_t>(w.shape[0] * 32 / static_cast<uint64_t>(bits));
    t.group_size = group <= 0 ? static_cast<int>(t.in_features) : group;
    t.sym = sym;
    t.format_version = format == "gptq_v2" ? 2 : 1;
    t.qweight = copy_out<int32_t>(w);
    t.qzeros = copy_out<int32_t>(get(l.name + ".qzeros", SafetensorsDtype::I32, 2));
    t.scales = copy_out<uint16_t>(get(l.name + ".scales", SafetensorsDtype::F16, 2));
    t.g_idx = copy_out<int32_t>(get(l.name + ".g_idx", SafetensorsDtype::I32, 1));
    layers.push_back(std::move(l));
  }
  return layers;
}

}  // namespace lowbit
