#pragma once
// The GSQ packed layouts both GSQ kernel families (gsq_gemv, gsq_dequantize) run every
// variant on: bits 2, 3, 4, 5, 6, 8 x groups 32, 64, 128, 256 and per-channel x the
// three schemes (symmetric, asymmetric with integer zeros, float minimum), each with
// contiguous groups and with act-order groups scattered over the columns (g_idx).
// Shapes: 13 x 512 (an odd row count: the SIMD variants' row blocks leave a tail),
// 6 x 544 at group 32 (17 chunks of 32 codes) and per-channel 5 x 100 (a row that
// ends inside a 32-code chunk, so the last packed word is partial). Every case also
// runs on copies placed off every SIMD alignment (kUnalignedShift).
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "families/family.hpp"
#include "lowbit/gsq/quantizer.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"

namespace lowbit::kernel_families {

struct GsqCase {
  std::string name;     // "4-bit g128 asym rtn fp16 act-order 13x512 unaligned"
  const GsqResult* q;   // the quantized matrix (g_idx filled for act-order)
  GsqMatrixRef m;       // its arrays, possibly copies at an unaligned address
  const float* x;       // cols activations at the same alignment as m's arrays
};

// Calls f on every case; stops at (and returns) the first non-empty message.
inline std::string for_each_gsq_case(const std::function<std::string(const GsqCase&)>& f) {
  struct Shape {
    int64_t rows, cols;
    std::vector<int> groups;
  };
  const Shape shapes[] = {{13, 512, {32, 64, 128, 256, 0}}, {6, 544, {32}}, {5, 100, {0}}};
  for (const Shape& sh : shapes) {
    const std::vector<float> w = synthetic_weights(sh.rows, sh.cols, 21);
    const std::vector<float> x = synthetic_weights(1, sh.cols, 22, Distribution::gaussian);
    for (int bits : {2, 3, 4, 5, 6, 8})
      for (int group : sh.groups)
        for (GsqScheme scheme : {GsqScheme::symmetric, GsqScheme::asymmetric, GsqScheme::asymmetric_float})
          for (bool act_order : {false, true}) {
            GsqConfig cfg;
            cfg.bits = bits;
            cfg.group_size = group;
            cfg.scheme = scheme;
            cfg.search = ScaleSearch::rtn;
            GsqResult q = gsq_quantize(cfg, {w.data(), sh.rows, sh.cols});
            if (act_order) {  // scatter the groups over the columns, as act-order checkpoints do
              q.g_idx.resize(static_cast<size_t>(sh.cols));
              for (int64_t c = 0; c < sh.cols; ++c) q.g_idx[c] = static_cast<int32_t>((c * 7 + c / 5) % q.groups());
            }
            const std::string name = cfg.describe() + (act_order ? " act-order " : " ") + std::to_string(sh.rows) +
                                     "x" + std::to_string(sh.cols);
            const GsqMatrixRef aligned{q.qweight.data(), q.scales.data(), q.zeros.data(),
                                       q.mins.empty() ? nullptr : q.mins.data(),
                                       q.g_idx.empty() ? nullptr : q.g_idx.data(),
                                       q.config.bits, q.rows, q.cols, q.group(), q.words_per_row()};
            std::string err = f({name, &q, aligned, x.data()});
            if (!err.empty()) return err;

            // The same arrays kUnalignedShift bytes past a 64-byte boundary.
            auto shifted = [](const auto& v) {
              auto buf = std::make_unique<OffsetBuffer>(v.size() * sizeof(v[0]) + 1, kUnalignedShift);
              if (!v.empty()) std::memcpy(buf->data(), v.data(), v.size() * sizeof(v[0]));
              return buf;
            };
            const auto qw = shifted(q.qweight), sc = shifted(q.scales), ze = shifted(q.zeros), mi = shifted(q.mins),
                       gi = shifted(q.g_idx), xs = shifted(x);
            GsqMatrixRef m = aligned;
            m.qweight = reinterpret_cast<const uint32_t*>(qw->data());
            m.scales = reinterpret_cast<const float*>(sc->data());
            m.zeros = reinterpret_cast<const int32_t*>(ze->data());
            if (m.mins) m.mins = reinterpret_cast<const float*>(mi->data());
            if (m.g_idx) m.g_idx = reinterpret_cast<const int32_t*>(gi->data());
            err = f({name + " unaligned", &q, m, xs->floats()});
            if (!err.empty()) return err;
          }
  }
  return {};
}

// Row splits a caller of a GSQ kernel may make (parallel_for hands out any ranges):
// one call, row by row, and an uneven split. Results must not depend on them.
inline std::vector<std::vector<int64_t>> gsq_row_splits(int64_t rows) {
  std::vector<int64_t> each;
  for (int64_t r = 0; r <= rows; ++r) each.push_back(r);
  return {{0, rows}, each, {0, 1, std::min<int64_t>(rows, 6), rows}};
}

}  // namespace lowbit::kernel_families
