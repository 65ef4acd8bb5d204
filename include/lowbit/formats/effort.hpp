#pragma once
// How hard a weight quantizer searches for a block's scales and codes.
//   fast      ggml's own search (same objective, same candidates), vectorised: the
//             speed of llama.cpp's quantizer or better, its accuracy exactly.
//   standard  lowbit's search (spelled "default" on the command line): more accurate
//             than ggml's on every block, at a cost in speed.
//   best      a wider search where one buys measurable accuracy; the default search
//             where none does (docs/formats.md lists which formats differ).
// Every effort gives the same bytes on every CPU and thread count.
#include <cstdint>
#include <string_view>

namespace lowbit {

enum class QuantizeEffort : uint8_t { fast, standard, best };

// "fast", "default", "best".
std::string_view to_string(QuantizeEffort e);
// Parses the spellings above; throws Error naming the bad value.
QuantizeEffort quantize_effort_from_name(std::string_view name);

}  // namespace lowbit
