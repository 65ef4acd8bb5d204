// lowbit_interop_tool: a thin command-line face of the public API, so the Python
// interop tests can hand lowbit's bytes to gguf (numpy) and ggml (ctypes) and
// compare. All files are raw little-endian arrays with no header.
//
//   lowbit_interop_tool formats
//       one line per format: NAME GGML_TYPE BLOCK_ELEMS BLOCK_BYTES QUANTIZED ACTIVATION_ONLY
//   lowbit_interop_tool gen DIST ROWS COLS SEED OUT.f32 OUT_IMP.f32
//       DIST is heavy_tailed | gaussian | outliers; writes ROWS*COLS weights and COLS importances
//   lowbit_interop_tool quantize FORMAT ROWS COLS IN.f32 IMP.f32|- OUT.bin
//       "-" quantizes without an importance vector
//   lowbit_interop_tool dequantize FORMAT ROWS COLS IN.bin OUT.f32
//   lowbit_interop_tool gsq BITS GROUP SCHEME SEARCH ROWS COLS IN.f32 IMP.f32|- CODES.u8 SCALES.f32 ZEROS.i32 MINS.f32
//       GSQ (SCHEME sym|asym|asym-fmin, SEARCH rtn|mse|importance|hqq, GROUP 0 = per channel);
//       writes the unpacked codes [ROWS, COLS] and per-group scales, zeros and minimums [ROWS, GROUPS]
//   lowbit_interop_tool gptq BITS GROUP SCHEME SEARCH ACT STATIC ROWS COLS W.f32 H.f32 CODES.u8 SCALES.f32 ZEROS.i32 MINS.f32 GIDX.i32
//       GPTQ into GSQ with the full symmetric Hessian H [COLS, COLS]; ACT, STATIC are 0 or 1
//
// Any error prints a message on stderr and exits with status 1.
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/core/matrix_view.hpp"
#include "lowbit/core/synthetic.hpp"
#include "lowbit/formats/format.hpp"
#include "lowbit/gptq/solver.hpp"
#include "lowbit/gptq/target.hpp"
#include "lowbit/gsq/quantizer.hpp"
#include "lowbit/kernels/quantize.hpp"

namespace {

// Errors of the tool itself (usage, files); lowbit::Error covers the library's.
struct ToolError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr std::string_view kUsage =
    "usage:\n"
    "  lowbit_interop_tool formats\n"
    "  lowbit_interop_tool gen DIST ROWS COLS SEED OUT.f32 OUT_IMP.f32\n"
    "  lowbit_interop_tool quantize FORMAT ROWS COLS IN.f32 IMP.f32|- OUT.bin\n"
    "  lowbit_interop_tool dequantize FORMAT ROWS COLS IN.bin OUT.f32\n"
    "  lowbit_interop_tool gsq BITS GROUP SCHEME SEARCH ROWS COLS IN.f32 IMP.f32|- CODES.u8 SCALES.f32 ZEROS.i32 MINS.f32\n"
    "  lowbit_interop_tool gptq BITS GROUP SCHEME SEARCH ACT STATIC ROWS COLS W.f32 H.f32 CODES.u8 SCALES.f32 ZEROS.i32 MINS.f32 GIDX.i32\n";

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
  check_argc(a, 7);
  const auto f = parse_format(a[1]);
  const int64_t rows = parse_dim(a[2], "ROWS"), cols = parse_dim(a[3], "COLS");
  const size_t out_bytes = lowbit::quantized_size(f, rows, cols);  // rejects a bad COLS first
  const auto src = read_floats(a[4], rows * cols);
  std::vector<float> imp;
  if (a[5] != "-") imp = read_floats(a[5], cols);
  std::vector<std::byte> dst(out_bytes);
  lowbit::quantize(f, lowbit::ConstMatrixView<float>(src.data(), rows, cols), dst, imp);
  write_file(a[6], dst.data(), dst.size());
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
    } else if (cmd == "dequantize") {
      cmd_dequantize(args);
    } else if (cmd == "gsq") {
      cmd_gsq(args);
    } else if (cmd == "gptq") {
      cmd_gptq(args);
    } else {
      throw ToolError("unknown command '" + cmd + "'\n" + std::string(kUsage));
    }
  } catch (const std::exception& e) {
    std::cerr << "lowbit_interop_tool: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
