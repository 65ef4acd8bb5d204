// `lowbit inspect`: a model file's metadata and tensor table (lowbit::ModelFile).
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "lowbit/io/model_file.hpp"

namespace lowbit::cli {

using Json = nlohmann::ordered_json;

namespace {

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

void print_inspect_help() {
  std::printf(
      "usage: lowbit inspect FILE [--json]\n"
      "\n"
      "Prints a model file's metadata and its tensor table (name, shape, type, bytes).\n"
      "FILE is a GGUF file, a safetensors file or a sharded model's\n"
      "model.safetensors.index.json, told apart by content. GGUF shapes are in GGUF\n"
      "order (ne0 first: a [out x in] weight shows as [in, out]); safetensors shapes in\n"
      "the file's own order. Long metadata arrays are shortened in the text view.\n"
      "\n"
      "  --json   print one JSON object instead:\n"
      "           {\"file\": path, \"container\": \"gguf\"|\"safetensors\",\n"
      "            \"metadata\": {key: value, ...},\n"
      "            \"tensors\": [{\"name\", \"shape\", \"type\", \"bytes\"}, ...]}\n"
      "           (metadata arrays in full)\n");
}

}  // namespace

int run_inspect(Args args) {
  std::string file;
  bool json = false;
  while (!args.done()) {
    const std::string a = args.next();
    if (a == "-h" || a == "--help") {
      print_inspect_help();
      return 0;
    }
    if (a == "--json") json = true;
    else if (a.starts_with("-") && a.size() > 1) throw UsageError("inspect: unknown option '" + a + "'");
    else if (file.empty()) file = a;
    else throw UsageError("inspect: one FILE expected, got '" + file + "' and '" + a + "'");
  }
  if (file.empty()) throw UsageError("inspect: missing FILE");

  const ModelFile m = ModelFile::open(file);
  if (json) {
    Json out = Json::object();
    out["file"] = file;
    out["container"] = m.container();
    out["metadata"] = Json::parse(m.metadata_json());
    Json tensors = Json::array();
    for (const ModelTensor& t : m.tensors())
      tensors.push_back({{"name", t.name}, {"shape", t.shape}, {"type", t.type}, {"bytes", t.bytes}});
    out["tensors"] = std::move(tensors);
    std::printf("%s\n", dump(out).c_str());
    return 0;
  }

  uint64_t total = 0;
  int64_t elements = 0;
  for (const ModelTensor& t : m.tensors()) total += t.bytes, elements += t.elements();
  std::printf("%s: %s, %zu metadata keys, %zu tensors, %s of tensor data (%.3f bits/weight)\n\n", file.c_str(),
              m.container().c_str(), m.metadata_text(8).size(), m.tensors().size(), human_bytes(double(total)).c_str(),
              elements ? 8.0 * double(total) / double(elements) : 0.0);
  for (const auto& [k, v] : m.metadata_text(8)) std::printf("  %-40s = %s\n", k.c_str(), v.c_str());
  std::printf("\n  %-48s %-22s %-6s %14s\n", "tensor", "shape", "type", "bytes");
  for (const ModelTensor& t : m.tensors())
    std::printf("  %-48s %-22s %-6s %14llu\n", t.name.c_str(), shape_string(t.shape).c_str(), t.type.c_str(),
                static_cast<unsigned long long>(t.bytes));
  return 0;
}

}  // namespace lowbit::cli
