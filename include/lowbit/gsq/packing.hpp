#pragma once
// Bit packing of b-bit codes into 32-bit words, least significant bits first, as a
// continuous bit stream: code i occupies bits [i*b, i*b + b) of the stream. For
// b = 2, 4, 8 a word holds 16, 8, 4 whole codes; for b = 3 (and 5, 6) codes spill
// across word boundaries exactly as AutoGPTQ's 3-bit packing does.
#include <cstdint>
#include <span>

namespace lowbit {

// Words needed for n codes of `bits` bits.
inline int64_t packed_words(int64_t n, int bits) { return (n * bits + 31) / 32; }

// Packs n codes (each < 2^bits) into out (packed_words(n, bits) words, overwritten).
void pack_codes(std::span<const uint32_t> codes, int bits, std::span<uint32_t> out);
// Code i of a packed stream.
uint32_t unpack_code(const uint32_t* words, int bits, int64_t i);

}  // namespace lowbit
