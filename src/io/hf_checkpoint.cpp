#include "lowbit/io/hf_checkpoint.hpp"

#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

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
  std::memcpy(v.data(), t.data.data(), v.size() * sizeof(T));
  return v;
}

}  // namespace

void save_hf_gptq_checkpoint(const std::filesystem::path& dir, std::span<const HfGptqLayer> layers,
                             const GsqConfig& gsq, const GptqConfig& gptq, int format_version) {
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
  w.write(dir / "model.safetensors");
  io_detail::write_atomically(dir / "quantize_config.json", "HF GPTQ checkpoint: quantize_config.json",
                              [&](io_detail::FileSink& s) { s.put(config.data(), config.size()); });
}

std::vector<HfGptqLayer> load_hf_gptq_checkpoint(const std::filesystem::path& dir) {
  const std::filesystem::path config_path = dir / "quantize_config.json";
  std::ifstream in(config_path);
  if (!in) throw Error("HF GPTQ checkpoint: cannot open '" + config_path.string() + "'");
  nlohmann::json cfg;
  try {
    cfg = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw Error("HF GPTQ checkpoint: '" + config_path.string() + "' is not valid JSON: " + e.what());
  }
  auto field = [&](const char* key) -> const nlohmann::json& {
    if (!cfg.contains(key)) throw Error("HF GPTQ checkpoint: '" + config_path.string() + "' has no \"" + key + "\"");
    return cfg[key];
  };
  int bits = 0, group = 0;
  bool sym = false;
  try {
    bits = field("bits").get<int>();
    group = field("group_size").get<int>();
    sym = cfg.value("sym", true);
  } catch (const nlohmann::json::exception& e) {
    throw Error("HF GPTQ checkpoint: '" + config_path.string() + "': " + e.what());
  }
  const std::string format = cfg.value("checkpoint_format", std::string("gptq"));
  if (format != "gptq" && format != "gptq_v2")
    throw Error("HF GPTQ checkpoint: checkpoint_format \"" + format + "\" is not gptq or gptq_v2");

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
    if (bits <= 0 || bits > 32) throw Error("HF GPTQ checkpoint: bits = " + std::to_string(bits));
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
