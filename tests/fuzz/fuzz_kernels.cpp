// libFuzzer target for the kernels' public entry points (lowbit/formats/quantize.hpp):
// lowbit::dequantize and lowbit::quantize with a fuzzed format, shape, buffers sized
// correctly or not, and fuzzed weights and importance. Input layout:
//   byte 0   format (index into all_formats(), modulo their number)
//   byte 1   flags: bit 0 source/destination buffers of the right size (else the
//            remaining input's size), bit 1 importance given, bit 2 importance of a
//            wrong length, bit 3 row length a whole number of blocks
//   byte 2   rows (0..4)
//   byte 3-4 row length: blocks (0..4) when bit 3 is set, else any 0..599
// (small: the block searches cost thousands of instrumented comparisons per element)
//   rest     the block bytes to decode, and the floats to quantize (cyclically)
// Either call may refuse with lowbit::Error. The promises checked: a correctly sized
// dequantize of whole blocks always succeeds; a quantize that succeeds gives blocks
// that decode to finite values; nothing but lowbit::Error escapes.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "lowbit/formats/format.hpp"
#include "lowbit/formats/quantize.hpp"

namespace {

using lowbit_fuzz::require;

template <class F>
bool refused(F&& f, const char* what) {
  try {
    f();
    return false;
  } catch (const lowbit::Error&) {
    return true;
  } catch (const std::exception& e) {
    require(false, std::string(what) + " threw something other than lowbit::Error: " + e.what());
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  const auto formats = lowbit::all_formats();
  const lowbit::FormatTraits& t = formats[data[0] % formats.size()];
  const uint8_t flags = data[1];
  const bool right_size = flags & 1, with_importance = flags & 2, bad_importance = flags & 4, whole = flags & 8;
  const int64_t rows = data[2] % 5;
  const int64_t cols = whole ? (data[3] % 5) * t.block_elems : (data[3] | (int64_t{data[4]} << 8)) % 600;
  const uint8_t* rest = data + 5;
  const size_t rest_size = size - 5;
  const std::string what = std::string(t.name) + " " + std::to_string(rows) + "x" + std::to_string(cols);
  const bool aligned = cols % t.block_elems == 0;

  // Dequantize the remaining bytes.
  const size_t need = aligned ? lowbit::quantized_size(t.format, rows, cols) : 0;
  std::vector<std::byte> src(right_size && aligned ? need : rest_size);
  for (size_t i = 0; i < src.size() && rest_size > 0; ++i) src[i] = std::byte{rest[i % rest_size]};
  std::vector<float> out(static_cast<size_t>(rows * cols) + 1);
  const bool dq_refused = refused(
      [&] { lowbit::dequantize(t.format, src, lowbit::MatrixView<float>(out.data(), rows, cols)); },
      "dequantize");
  if (aligned && src.size() == need)
    require(!dq_refused, what + ": dequantize of a correctly sized buffer was refused");

  // Quantize floats taken from the same bytes.
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < w.size() && rest_size >= 4; ++i) std::memcpy(&w[i], rest + (4 * i) % (rest_size - 3), 4);
  std::vector<float> imp;
  if (with_importance) {
    imp.resize(static_cast<size_t>(bad_importance ? cols + 1 : cols));
    for (size_t i = 0; i < imp.size() && rest_size >= 4; ++i)
      std::memcpy(&imp[i], rest + (rest_size - 4) - (4 * i) % (rest_size - 3), 4);
  }
  std::vector<std::byte> q(aligned ? (right_size ? need : std::min(need, rest_size)) : rest_size);
  const bool q_refused = refused(
      [&] {
        lowbit::quantize(t.format, lowbit::ConstMatrixView<float>(w.data(), rows, cols), q,
                         std::span<const float>(imp));
      },
      "quantize");
  if (q_refused || !aligned || rows == 0 || cols == 0) return 0;

  // Accepted: the blocks decode to finite values.
  std::vector<float> back(w.size());
  require(!refused([&] { lowbit::dequantize(t.format, q, lowbit::MatrixView<float>(back.data(), rows, cols)); },
                   "dequantize"),
          what + ": its own quantized blocks were refused");
  for (size_t i = 0; i < back.size(); ++i)
    require(std::isfinite(back[i]), what + ": element " + std::to_string(i) + " of a quantized matrix decodes to " +
                                        std::to_string(back[i]) + " (input " + std::to_string(w[i]) + ")");
  return 0;
}
