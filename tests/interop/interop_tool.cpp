// lowbit_interop_tool: a thin command-line face of the public API, so the Python
// interop tests can hand lowbit's bytes to gguf (numpy) and ggml (ctypes) and
// compare. All files are raw little-endian arrays with no header.
//
//   lowbit_interop_tool formats
//       one line per format: NAME GGML_TYPE BLOCK_ELEMS BLOCK_BYTES QUANTIZED ACTIVATION_ONLY
//   lowbit_interop_tool gen DIST ROWS COLS SEED OUT.f32 OUT_IMP.f32
//       DIST is heavy_tailed | gaussian | outliers; writes ROWS*COLS weights and COLS importances
//   lowbit_interop_tool quantize FORMAT ROWS COLS IN.f32 IMP.f32|- OUT.bin
//       "-" quantizes without an importance vector; an optional last argument picks
//       the effort (fast, default, best; default when absent)
//   lowbit_interop_tool dequantize FORMAT ROWS COLS IN.bin OUT.f32
//   lowbit_interop_tool gsq BITS GROUP SCHEME SEARCH ROWS COLS IN.f32 IMP.f32|- CODES.u8 SCALES.f32 ZEROS.i32 MINS.f32
//       GSQ (SCHEME sym|asym|asym-fmin, SEARCH rtn|mse|importance|hqq, GROUP 0 = per channel);
//       writes the unpacked codes [ROWS, COLS] and per-group scales, zeros and minimums [ROWS, GROUPS]
//   lowbit_interop_tool gptq BITS GROUP SCHEME SEARCH ACT STATIC ROWS COLS W.f32 H.f32 CODES.u8 SCALES.f32 ZEROS.i32 MINS.f32 GIDX.i32
//       GPTQ into GSQ with the full symmetric Hessian H [COLS, COLS]; ACT, STATIC are 0 or 1
//   lowbit_interop_tool st-dump FILE.safetensors|INDEX.json
//       prints "meta KEY VALUE" and "tensor NAME DTYPE RANK DIMS... DATA F32|-" lines; strings and
//       bytes are hex with an "x" prefix (so empty ones stay a token); F32 is the tensor as float32
//       for F32/F16/BF16, "-" otherwise. A .json path is opened as a sharded index.
//   lowbit_interop_tool st-write OUT.safetensors MANIFEST
//       MANIFEST holds "meta KEY VALUE" and "tensor NAME DTYPE RANK DIMS... DATA" lines (hex as above)
//   lowbit_interop_tool gguf-dump FILE
//       JSON of a GGUF read by lowbit::GgufFile: version, alignment, data_offset, metadata in file
//       order as [key, value] with value = [TYPE, PAYLOAD] (ints in decimal, float32/float64 as
//       their bit patterns, bool 0/1, string bytes in hex, array = ["array", [ELEM_TYPE, [values]]]),
//       and tensors (name, shape in GGUF order, ggml type, offsets, nbytes, FNV-1a 64 of the data)
//   lowbit_interop_tool gguf-write SPEC OUT.gguf
//       writes OUT with lowbit::GgufWriter from SPEC, one entry per line:
//         kv KEY_HEX VALUE         VALUE = TYPE PAYLOAD | array ELEM_TYPE COUNT VALUE...
//                                  (payloads as in gguf-dump; hex "-" is the empty string)
//         tensor NAME_HEX FORMAT NDIMS NE0 ... DATA_FILE
//   lowbit_interop_tool gguf-copy IN.gguf OUT.gguf
//       reads IN with lowbit and writes its metadata and tensors (borrowed from the mapping) to OUT
//   lowbit_interop_tool tokenize MODEL.gguf TEXT_FILE ADD_SPECIAL PARSE_SPECIAL OUT.i32
//       the GGUF tokenizer's ids for the file's bytes (ADD_SPECIAL, PARSE_SPECIAL are 0 or 1)
//   lowbit_interop_tool llama-logits MODEL.gguf TOKENS.i32 OUT.f32
//       the llama runtime's logits [tokens x vocab] for TOKENS as one batch from an empty cache
//
// Any error prints a message on stderr and exits with status 1.
#include <bit>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "lowbit/core/matrix_view.hpp"
#include "lowbit/core/synthetic.hpp"
#include "lowbit/formats/format.hpp"
#include "lowbit/gptq/solver.hpp"
#include "lowbit/gptq/target.hpp"
#include "lowbit/gsq/quantizer.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/model/llama.hpp"
#include "lowbit/model/tokenizer.hpp"

namespace {

// Errors of the tool itself (usage, files); lowbit::Error covers the library's.
struct ToolError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr std::string_view kUsage =
    "usage:\n"
    "  lowbit_interop_tool formats\n"
    "  lowbit_interop_tool gen DIST ROWS COLS SEED OUT.f32 OUT_IMP.f32\n"
    "  lowbit_interop_tool quantize FORMAT ROWS COLS IN.f32 IMP.f32|- OUT.bin [fast|default|best]\n"
    "  lowbit_interop_tool dequantize FORMAT ROWS COLS IN.bin OUT.f32\n"
    "  lowbit_interop_tool gsq BITS GROUP SCHEME SEARCH ROWS COLS IN.f32 IMP.f32|- CODES.u8 SCALES.f32 ZEROS.i32 MINS.f32\n"
    "  lowbit_interop_tool gptq BITS GROUP SCHEME SEARCH ACT STATIC ROWS COLS W.f32 H.f32 CODES.u8 SCALES.f32 ZEROS.i32 MINS.f32 GIDX.i32\n"
    "  lowbit_interop_tool st-dump FILE.safetensors|INDEX.json\n"
    "  lowbit_interop_tool st-write OUT.safetensors MANIFEST\n"
    "  lowbit_interop_tool gguf-dump FILE\n"
    "  lowbit_interop_tool gguf-write SPEC OUT.gguf\n"
    "  lowbit_interop_tool gguf-copy IN.gguf OUT.gguf\n"
    "  lowbit_interop_tool tokenize MODEL.gguf TEXT_FILE ADD_SPECIAL PARSE_SPECIAL OUT.i32\n"
    "  lowbit_interop_tool llama-logits MODEL.gguf TOKENS.i32 OUT.f32\n";

template <class T>
T parse_int(std::string_view text, std::string_view what) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size())
    throw ToolError("bad " + std::string(what) + " '" + std::string(text) + "'");
  return value;
}

int64_t parse_dim(std::string_view text, std::string_view what) {
  const auto v = parse_int<int64_t>(text, what);
  if (v <= 0) throw ToolError(std::string(what) + " must be positive, got " + std::string(text));
  return v;
}

lowbit::Format parse_format(std::string_view name) {
  if (const auto f = lowbit::format_from_name(name)) return *f;
  throw ToolError("unknown format '" + std::string(name) + "'");
}

lowbit::Distribution parse_distribution(std::string_view name) {
  if (name == "heavy_tailed") return lowbit::Distribution::heavy_tailed;
  if (name == "gaussian") return lowbit::Distribution::gaussian;
  if (name == "outliers") return lowbit::Distribution::outliers;
  throw ToolError("unknown distribution '" + std::string(name) +
                  "' (expected heavy_tailed, gaussian or outliers)");
}

std::vector<std::byte> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ToolError("cannot open '" + path + "' for reading");
  in.seekg(0, std::ios::end);
  std::vector<std::byte> bytes(static_cast<size_t>(in.tellg()));
  in.seekg(0, std::ios::beg);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!in) throw ToolError("read from '" + path + "' failed");
  return bytes;
}

// Reads exactly `count` floats: a size mismatch means the caller passed the wrong shape.
std::vector<float> read_floats(const std::string& path, int64_t count) {
  const auto bytes = read_file(path);
  const auto expected = static_cast<size_t>(count) * sizeof(float);
  if (bytes.size() != expected)
    throw ToolError("'" + path + "' holds " + std::to_string(bytes.size()) + " bytes, expected " +
                    std::to_string(expected) + " (" + std::to_string(count) + " floats)");
  std::vector<float> out(static_cast<size_t>(count));
  std::memcpy(out.data(), bytes.data(), expected);
  return out;
}

void write_file(const std::string& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw ToolError("cannot open '" + path + "' for writing");
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) throw ToolError("write to '" + path + "' failed");
}

void check_argc(const std::vector<std::string>& args, size_t n) {
  if (args.size() != n)
    throw ToolError("'" + args[0] + "' takes " + std::to_string(n - 1) + " arguments, got " +
                    std::to_string(args.size() - 1) + "\n" + std::string(kUsage));
}

void cmd_formats() {
  for (const auto& t : lowbit::all_formats())
    std::cout << t.name << ' ' << t.ggml_type << ' ' << t.block_elems << ' ' << t.block_bytes << ' '
              << (t.quantized ? 1 : 0) << ' ' << (t.activation_only ? 1 : 0) << '\n';
}

void cmd_gen(const std::vector<std::string>& a) {
  check_argc(a, 7);
  const auto dist = parse_distribution(a[1]);
  const int64_t rows = parse_dim(a[2], "ROWS"), cols = parse_dim(a[3], "COLS");
  const auto seed = parse_int<uint64_t>(a[4], "SEED");
  const auto w = lowbit::synthetic_weights(rows, cols, seed, dist);
  const auto imp = lowbit::synthetic_importance(cols, seed);
  write_file(a[5], w.data(), w.size() * sizeof(float));
  write_file(a[6], imp.data(), imp.size() * sizeof(float));
}

void cmd_quantize(const std::vector<std::string>& a) {
  if (a.size() != 8) check_argc(a, 7);
  const auto effort = a.size() == 8 ? lowbit::quantize_effort_from_name(a[7]) : lowbit::QuantizeEffort::standard;
  const auto f = parse_format(a[1]);
  const int64_t rows = parse_dim(a[2], "ROWS"), cols = parse_dim(a[3], "COLS");
  const size_t out_bytes = lowbit::quantized_size(f, rows, cols);  // rejects a bad COLS first
  const auto src = read_floats(a[4], rows * cols);
  std::vector<float> imp;
  if (a[5] != "-") imp = read_floats(a[5], cols);
  std::vector<std::byte> dst(out_bytes);
  lowbit::quantize(f, lowbit::ConstMatrixView<float>(src.data(), rows, cols), dst, imp, effort);
  write_file(a[6], dst.data(), dst.size());
}

// quantize-activations FORMAT ROWS COLS IN OUT: lowbit::quantize_activations (the
// ggml-compatible Q8_0 / Q8_1 / Q8_K fast path), optionally pinned to one CPU-feature
// set through LOWBIT_ISA by the caller.
void cmd_quantize_activations(const std::vector<std::string>& a) {
  check_argc(a, 6);
  const auto f = parse_format(a[1]);
  const int64_t rows = parse_dim(a[2], "ROWS"), cols = parse_dim(a[3], "COLS");
  const size_t out_bytes = lowbit::quantized_size(f, rows, cols);
  const auto src = read_floats(a[4], rows * cols);
  std::vector<std::byte> dst(out_bytes);
  lowbit::quantize_activations(f, lowbit::ConstMatrixView<float>(src.data(), rows, cols), dst);
  write_file(a[5], dst.data(), dst.size());
}

void cmd_dequantize(const std::vector<std::string>& a) {
  check_argc(a, 6);
  const auto f = parse_format(a[1]);
  const int64_t rows = parse_dim(a[2], "ROWS"), cols = parse_dim(a[3], "COLS");
  const size_t expected = lowbit::quantized_size(f, rows, cols);
  const auto src = read_file(a[4]);
  // dequantize accepts a longer buffer; a file of the wrong size is a caller bug, so refuse it.
  if (src.size() != expected)
    throw ToolError("'" + a[4] + "' holds " + std::to_string(src.size()) + " bytes, " + a[1] + " " +
                    a[2] + "x" + a[3] + " needs " + std::to_string(expected));
  std::vector<float> dst(static_cast<size_t>(rows * cols));
  lowbit::dequantize(f, src, lowbit::MatrixView<float>(dst.data(), rows, cols));
  write_file(a[5], dst.data(), dst.size() * sizeof(float));
}

lowbit::GsqConfig parse_gsq(const std::string& bits, const std::string& group, const std::string& scheme,
                            const std::string& search) {
  lowbit::GsqConfig c;
  c.bits = parse_int<int>(bits, "BITS");
  c.group_size = parse_int<int>(group, "GROUP");
  bool found_scheme = false, found_search = false;
  for (auto s : {lowbit::GsqScheme::symmetric, lowbit::GsqScheme::asymmetric, lowbit::GsqScheme::asymmetric_float})
    if (scheme == lowbit::to_string(s)) c.scheme = s, found_scheme = true;
  for (auto s : {lowbit::ScaleSearch::rtn, lowbit::ScaleSearch::mse, lowbit::ScaleSearch::importance, lowbit::ScaleSearch::hqq})
    if (search == lowbit::to_string(s)) c.search = s, found_search = true;
  if (!found_scheme || !found_search) throw ToolError("unknown GSQ scheme or search '" + scheme + "' / '" + search + "'");
  return c;
}

// Unpacked codes, scales, zeros and minimums (zeros for schemes without them).
void write_gsq(const lowbit::GsqResult& q, const std::vector<std::string>& paths) {
  std::vector<uint8_t> codes(static_cast<size_t>(q.rows * q.cols));
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t k = 0; k < q.cols; ++k) codes[r * q.cols + k] = static_cast<uint8_t>(q.code(r, k));
  const std::vector<float> mins = q.mins.empty() ? std::vector<float>(q.scales.size(), 0.0f) : q.mins;
  write_file(paths[0], codes.data(), codes.size());
  write_file(paths[1], q.scales.data(), q.scales.size() * sizeof(float));
  write_file(paths[2], q.zeros.data(), q.zeros.size() * sizeof(int32_t));
  write_file(paths[3], mins.data(), mins.size() * sizeof(float));
}

void cmd_gsq(const std::vector<std::string>& a) {
  check_argc(a, 13);
  const lowbit::GsqConfig c = parse_gsq(a[1], a[2], a[3], a[4]);
  const int64_t rows = parse_dim(a[5], "ROWS"), cols = parse_dim(a[6], "COLS");
  const auto src = read_floats(a[7], rows * cols);
  std::vector<float> imp;
  if (a[8] != "-") imp = read_floats(a[8], cols);
  write_gsq(lowbit::gsq_quantize(c, lowbit::ConstMatrixView<float>(src.data(), rows, cols), imp),
            {a[9], a[10], a[11], a[12]});
}

void cmd_gptq(const std::vector<std::string>& a) {
  check_argc(a, 16);
  const lowbit::GsqConfig c = parse_gsq(a[1], a[2], a[3], a[4]);
  lowbit::GptqConfig g;
  g.act_order = parse_int<int>(a[5], "ACT") != 0;
  g.static_groups = parse_int<int>(a[6], "STATIC") != 0;
  const int64_t rows = parse_dim(a[7], "ROWS"), cols = parse_dim(a[8], "COLS");
  const auto w = read_floats(a[9], rows * cols);
  const auto h = read_floats(a[10], cols * cols);
  // The importance search fits group parameters weighted by diag(H) / 2.
  std::vector<float> imp(static_cast<size_t>(cols));
  for (int64_t k = 0; k < cols; ++k) imp[k] = 0.5f * h[k * cols + k];
  lowbit::GsqTarget target(c, imp);
  lowbit::gptq_solve(g, lowbit::ConstMatrixView<float>(w.data(), rows, cols), h, target);
  const lowbit::GsqResult q = target.result();
  write_gsq(q, {a[11], a[12], a[13], a[14]});
  std::vector<int32_t> g_idx(static_cast<size_t>(cols));
  for (int64_t k = 0; k < cols; ++k) g_idx[k] = static_cast<int32_t>(q.group_of(k));
  write_file(a[15], g_idx.data(), g_idx.size() * sizeof(int32_t));
}

// "x" + lowercase hex of the bytes.
std::string st_hex(const void* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "x";
  out.reserve(1 + 2 * size);
  for (size_t i = 0; i < size; ++i) {
    const auto b = static_cast<const unsigned char*>(data)[i];
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

std::string st_unhex(std::string_view text) {
  const auto digit = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    throw ToolError("bad hex token '" + std::string(text) + "'");
  };
  if (text.empty() || text[0] != 'x' || text.size() % 2 != 1)
    throw ToolError("bad hex token '" + std::string(text) + "'");
  std::string out;
  for (size_t i = 1; i < text.size(); i += 2) out += static_cast<char>(digit(text[i]) * 16 + digit(text[i + 1]));
  return out;
}

void st_dump_tensor(const lowbit::SafetensorsTensor& t) {
  std::cout << "tensor " << st_hex(t.name.data(), t.name.size()) << ' ' << lowbit::to_string(t.dtype) << ' '
            << t.shape.size();
  for (uint64_t d : t.shape) std::cout << ' ' << d;
  std::cout << ' ' << st_hex(t.data.data(), t.data.size()) << ' ';
  using lowbit::SafetensorsDtype;
  if (t.dtype == SafetensorsDtype::F32 || t.dtype == SafetensorsDtype::F16 || t.dtype == SafetensorsDtype::BF16) {
    const auto f = lowbit::to_float32(t);
    std::cout << st_hex(f.data(), f.size() * sizeof(float));
  } else {
    std::cout << '-';
  }
  std::cout << '\n';
}

void cmd_st_dump(const std::vector<std::string>& a) {
  check_argc(a, 2);
  const auto dump_meta = [](const std::map<std::string, std::string>& meta) {
    for (const auto& [k, v] : meta)
      std::cout << "meta " << st_hex(k.data(), k.size()) << ' ' << st_hex(v.data(), v.size()) << '\n';
  };
  if (a[1].size() >= 5 && a[1].compare(a[1].size() - 5, 5, ".json") == 0) {
    const auto m = lowbit::SafetensorsModel::open_index(a[1]);
    dump_meta(m.metadata());
    for (const auto& [name, shard] : m.weight_map()) st_dump_tensor(m.tensor(name));
  } else {
    const auto f = lowbit::SafetensorsFile::open(a[1]);
    dump_meta(f.metadata());
    for (const auto& t : f.tensors()) st_dump_tensor(t);
  }
}

void cmd_st_write(const std::vector<std::string>& a) {
  check_argc(a, 3);
  std::ifstream in(a[2]);
  if (!in) throw ToolError("cannot open '" + a[2] + "' for reading");
  lowbit::SafetensorsWriter w;
  std::string kind;
  while (in >> kind) {
    if (kind == "meta") {
      std::string k, v;
      in >> k >> v;
      w.set_metadata(st_unhex(k), st_unhex(v));
    } else if (kind == "tensor") {
      std::string name, dtype_name, data;
      size_t rank = 0;
      in >> name >> dtype_name >> rank;
      const auto dtype = lowbit::safetensors_dtype_from_name(dtype_name);
      if (!dtype) throw ToolError("unknown dtype '" + dtype_name + "'");
      std::vector<uint64_t> shape(rank);
      for (auto& d : shape) in >> d;
      in >> data;
      const std::string bytes = st_unhex(data);
      w.add(st_unhex(name), *dtype, shape, std::as_bytes(std::span(bytes.data(), bytes.size())));
    } else {
      throw ToolError("bad manifest line kind '" + kind + "' in '" + a[2] + "'");
    }
    if (!in) throw ToolError("truncated manifest line in '" + a[2] + "'");
  }
  w.write(a[1]);
}

// ---------------------------------------------------------------- GGUF

std::string to_hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) out += kHex[c >> 4], out += kHex[c & 15];
  return out;
}

std::string from_hex(std::string_view hex) {
  if (hex == "-") return "";
  if (hex.size() % 2) throw ToolError("odd-length hex '" + std::string(hex) + "'");
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    uint8_t byte = 0;
    const auto [end, ec] = std::from_chars(hex.data() + i, hex.data() + i + 2, byte, 16);
    if (ec != std::errc{} || end != hex.data() + i + 2) throw ToolError("bad hex '" + std::string(hex) + "'");
    out += static_cast<char>(byte);
  }
  return out;
}

// Names are valid UTF-8 (GgufFile checks), so only quotes, backslashes and controls need escaping.
std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\', out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string json_value(const lowbit::GgufValue& v) {
  const std::string type = "\"" + lowbit::gguf_type_name(v.type()) + "\", ";
  return std::visit(
      [&](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return "[" + type + "\"" + to_hex(x) + "\"]";
        } else if constexpr (std::is_same_v<T, lowbit::GgufArray>) {
          std::string items;
          for (const auto& item : x.items) items += (items.empty() ? "" : ", ") + json_value(item);
          return "[" + type + "[\"" + lowbit::gguf_type_name(x.element_type) + "\", [" + items + "]]]";
        } else if constexpr (std::is_same_v<T, float>) {
          return "[" + type + std::to_string(std::bit_cast<uint32_t>(x)) + "]";
        } else if constexpr (std::is_same_v<T, double>) {
          return "[" + type + std::to_string(std::bit_cast<uint64_t>(x)) + "]";
        } else if constexpr (std::is_same_v<T, bool>) {
          return "[" + type + (x ? "1" : "0") + "]";
        } else {
          return "[" + type + std::to_string(x) + "]";  // integers (int8/uint8 promote, not chars)
        }
      },
      v.storage());
}

uint64_t fnv1a64(std::span<const std::byte> bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (std::byte b : bytes) h = (h ^ static_cast<uint8_t>(b)) * 0x100000001b3ull;
  return h;
}

void cmd_gguf_dump(const std::string& path) {
  const auto f = lowbit::GgufFile::open(path);
  std::ostringstream o;
  o << "{\"version\": " << f.version() << ", \"alignment\": " << f.alignment()
    << ", \"data_offset\": " << f.data_offset() << ",\n \"metadata\": [";
  bool first = true;
  for (const auto& kv : f.metadata()) {
    o << (first ? "\n  " : ",\n  ") << "[" << json_string(kv.key) << ", " << json_value(kv.value) << "]";
    first = false;
  }
  o << "],\n \"tensors\": [";
  first = true;
  for (const auto& t : f.tensors()) {
    o << (first ? "\n  " : ",\n  ") << "{\"name\": " << json_string(t.name) << ", \"shape\": [";
    for (size_t i = 0; i < t.shape.size(); ++i) o << (i ? ", " : "") << t.shape[i];
    o << "], \"type\": " << lowbit::traits(t.format).ggml_type << ", \"format\": \"" << lowbit::traits(t.format).name
      << "\", \"offset\": " << t.offset << ", \"file_offset\": " << t.file_offset << ", \"nbytes\": " << t.nbytes
      << ", \"fnv1a64\": " << fnv1a64(f.data(t)) << "}";
    first = false;
  }
  o << "]}\n";
  std::cout << o.str();
}

lowbit::GgufType parse_gguf_type(std::string_view name) {
  for (uint32_t i = 0; i < 13; ++i)
    if (lowbit::gguf_type_name(static_cast<lowbit::GgufType>(i)) == name) return static_cast<lowbit::GgufType>(i);
  throw ToolError("unknown GGUF value type '" + std::string(name) + "'");
}

// One VALUE of the gguf-write spec from the token stream.
lowbit::GgufValue parse_spec_value(std::istream& in) {
  std::string type, payload;
  if (!(in >> type >> payload)) throw ToolError("spec: value truncated");
  using lowbit::GgufType;
  switch (parse_gguf_type(type)) {
    case GgufType::uint8: return parse_int<uint8_t>(payload, type);
    case GgufType::int8: return parse_int<int8_t>(payload, type);
    case GgufType::uint16: return parse_int<uint16_t>(payload, type);
    case GgufType::int16: return parse_int<int16_t>(payload, type);
    case GgufType::uint32: return parse_int<uint32_t>(payload, type);
    case GgufType::int32: return parse_int<int32_t>(payload, type);
    case GgufType::uint64: return parse_int<uint64_t>(payload, type);
    case GgufType::int64: return parse_int<int64_t>(payload, type);
    case GgufType::float32: return std::bit_cast<float>(parse_int<uint32_t>(payload, type));
    case GgufType::float64: return std::bit_cast<double>(parse_int<uint64_t>(payload, type));
    case GgufType::bool_: return parse_int<int>(payload, type) != 0;
    case GgufType::string: return from_hex(payload);
    case GgufType::array: {
      lowbit::GgufArray a;
      a.element_type = parse_gguf_type(payload);
      std::string count;
      if (!(in >> count)) throw ToolError("spec: array count missing");
      const auto n = parse_int<uint64_t>(count, "array count");
      for (uint64_t i = 0; i < n; ++i) a.items.push_back(parse_spec_value(in));
      return lowbit::GgufValue(std::move(a));
    }
  }
  throw ToolError("spec: bad value type '" + type + "'");
}

void cmd_gguf_write(const std::string& spec_path, const std::string& out_path) {
  std::ifstream spec(spec_path);
  if (!spec) throw ToolError("cannot open '" + spec_path + "' for reading");
  lowbit::GgufWriter w;
  std::string line;
  while (std::getline(spec, line)) {
    std::istringstream in(line);
    std::string kind;
    if (!(in >> kind)) continue;
    if (kind == "kv") {
      std::string key;
      in >> key;
      w.set(from_hex(key), parse_spec_value(in));
    } else if (kind == "tensor") {
      std::string name, format, ndims, data;
      in >> name >> format >> ndims;
      std::vector<int64_t> shape(parse_int<size_t>(ndims, "NDIMS"));
      for (auto& d : shape) {
        std::string ne;
        in >> ne;
        d = parse_int<int64_t>(ne, "NE");
      }
      in >> data;
      w.add_tensor(from_hex(name), shape, parse_format(format), read_file(data));
    } else {
      throw ToolError("spec: unknown line kind '" + kind + "'");
    }
    std::string extra;
    if (in >> extra) throw ToolError("spec: trailing '" + extra + "' in line: " + line);
  }
  w.write(out_path);
}

void cmd_gguf_copy(const std::string& in_path, const std::string& out_path) {
  const auto f = lowbit::GgufFile::open(in_path);
  lowbit::GgufWriter w;
  w.copy_metadata(f);
  for (const auto& t : f.tensors()) w.add_tensor(t.name, t.shape, t.format, f.data(t));
  w.write(out_path);
}

void cmd_tokenize(const std::vector<std::string>& a) {
  check_argc(a, 6);
  const auto model = lowbit::GgufFile::open(a[1]);
  const auto tok = lowbit::Tokenizer::from_gguf(model);
  const auto bytes = read_file(a[2]);
  const std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  const auto ids = tok.tokenize(text, parse_int<int>(a[3], "ADD_SPECIAL") != 0, parse_int<int>(a[4], "PARSE_SPECIAL") != 0);
  write_file(a[5], ids.data(), ids.size() * sizeof(int32_t));
}

void cmd_llama_logits(const std::vector<std::string>& a) {
  check_argc(a, 4);
  const auto model = lowbit::LlamaModel::load(a[1]);
  const auto bytes = read_file(a[2]);
  std::vector<int32_t> ids(bytes.size() / sizeof(int32_t));
  std::memcpy(ids.data(), bytes.data(), ids.size() * sizeof(int32_t));
  lowbit::LlamaContext ctx(model, static_cast<int64_t>(ids.size()));
  const auto logits = ctx.decode(ids, true);
  write_file(a[3], logits.data(), logits.size() * sizeof(float));
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.empty()) throw ToolError(std::string(kUsage));
    const auto& cmd = args[0];
    if (cmd == "formats") {
      check_argc(args, 1);
      cmd_formats();
    } else if (cmd == "gen") {
      cmd_gen(args);
    } else if (cmd == "quantize") {
      cmd_quantize(args);
    } else if (cmd == "quantize-activations") {
      cmd_quantize_activations(args);
    } else if (cmd == "dequantize") {
      cmd_dequantize(args);
    } else if (cmd == "gsq") {
      cmd_gsq(args);
    } else if (cmd == "gptq") {
      cmd_gptq(args);
    } else if (cmd == "gguf-dump") {
      check_argc(args, 2);
      cmd_gguf_dump(args[1]);
    } else if (cmd == "gguf-write") {
      check_argc(args, 3);
      cmd_gguf_write(args[1], args[2]);
    } else if (cmd == "gguf-copy") {
      check_argc(args, 3);
      cmd_gguf_copy(args[1], args[2]);
    } else if (cmd == "st-dump") {
      cmd_st_dump(args);
    } else if (cmd == "st-write") {
      cmd_st_write(args);
    } else if (cmd == "tokenize") {
      cmd_tokenize(args);
    } else if (cmd == "llama-logits") {
      cmd_llama_logits(args);
    } else {
      throw ToolError("unknown command '" + cmd + "'\n" + std::string(kUsage));
    }
  } catch (const std::exception& e) {
    std::cerr << "lowbit_interop_tool: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
