#pragma once
// The dequantize family: one row of a block format -> float32.
//   key         Format
//   comparison  exact_bytes: every variant's floats equal the scalar reference's bit
//               for bit (decoders perform the reference's operations in its order).
//   inputs      standard_patterns(), encoded by the format's scalar reference
//               quantizer; outputs poisoned with NaN before each call.
// The scalar references themselves are checked against the block codec
// (kernels/cpu/reference/block_codec.hpp), an independent per-element decoder, and
// the float formats against lowbit/core/half.hpp's conversions.
#include "cpu/reference/block_codec.hpp"
#include "families/family.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/kernels/registry.hpp"

namespace lowbit::kernel_families {

struct DequantizeFamily {
  using Fn = DequantizeRowFn;
  using Key = Format;
  using Variant = DequantizeKernel;
  static constexpr const char* name = "dequantize";
  static constexpr Comparison comparison = Comparison::exact_bytes;
  static const KernelTable<Fn, Key>& table() { return dequantize_kernels(); }

  // The pattern encoded by f's scalar reference quantizer.
  static std::vector<std::byte> encode(Format f, const InputPattern& p, int64_t n) {
    const std::vector<float> x = pattern_values(p, 1, n, 7);
    std::vector<std::byte> q(row_bytes(f, n));
    quantize_kernels().reference(f).fn(x.data(), q.data(), n, nullptr);
    return q;
  }

  // Element i of the row, decoded one element at a time without the row decoders.
  static float decode_element(Format f, const std::byte* row, int64_t i) {
    if (f == Format::F32) {
      float v;
      std::memcpy(&v, row + 4 * i, 4);
      return v;
    }
    if (f == Format::F16 || f == Format::BF16) {
      uint16_t h;
      std::memcpy(&h, row + 2 * i, 2);
      return f == Format::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
    }
    const kernels::BlockCodec* codec = kernels::block_codec(f);
    const std::byte* block = row + (i / codec->block_elems) * codec->block_bytes;
    const int e = static_cast<int>(i % codec->block_elems);
    return codec->decode(codec->sub_map(block, e / codec->sub_elems), codec->get_level(block, e));
  }

  static std::string check(const Variant& v) {
    const Variant& ref = table().reference(v.key);
    for (const InputPattern& p : standard_patterns()) {
      const int64_t n = pattern_row_elems(v.key, p);
      const std::vector<std::byte> q = encode(v.key, p, n);
      OffsetBuffer in(q.size(), p.unaligned ? kUnalignedShift : 0);
      std::memcpy(in.data(), q.data(), q.size());
      std::vector<float> want(static_cast<size_t>(n));
      if (v.is_reference()) {
        for (int64_t i = 0; i < n; ++i) want[i] = decode_element(v.key, in.data(), i);
      } else {
        ref.fn(in.data(), want.data(), n);
      }
      OffsetBuffer out(static_cast<size_t>(n) * 4, p.unaligned ? kUnalignedShift : 0);
      std::memset(out.data(), 0xff, static_cast<size_t>(n) * 4);  // NaN poison
      v.fn(in.data(), out.floats(), n);
      for (int64_t i = 0; i < n; ++i)
        if (std::memcmp(&want[i], out.floats() + i, 4) != 0) return mismatch(p.name, i, want[i], out.floats()[i]);
    }
    return {};
  }
};

}  // namespace lowbit::kernel_families
