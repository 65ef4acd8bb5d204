#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace lowbit {

// Instruction-set targets a kernel variant may require, ordered from the most
// portable up (on x86: scalar < avx2 < avx512 < avx512vnni).
enum class Isa : uint8_t { scalar = 0, avx2 = 1, avx512 = 2, avx512vnni = 3, neon = 4 };

std::string_view isa_name(Isa isa);
// Whether this CPU can run kernels built for `isa` (detected once, then cached).
bool cpu_supports(Isa isa);

// Highway-style forcing for tests and benchmarks: while set, dispatch picks no
// variant above `ceiling`, so one machine can check every variant in turn.
// std::nullopt restores automatic selection.
void force_isa(std::optional<Isa> ceiling);
std::optional<Isa> forced_isa();

}  // namespace lowbit
