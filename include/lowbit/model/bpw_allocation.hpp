#pragma once
// Choosing each tensor's type under a size budget (`lowbit quantize --target-bpw`):
// a multiple-choice knapsack. Every tensor offers a few candidate types, each with the
// bytes it would take and the error it would cause; the allocation minimises the sum
// of errors with the sum of bytes within the budget.
//
// Solved greedily on each tensor's lower convex hull of (bytes, error), taking the
// upgrade with the best error saved per byte next; this is the exact optimum of the
// LP relaxation up to the first upgrade that does not fit (Sinha & Zoltners, 1979),
// after which the remaining upgrades that still fit are taken, then any off-hull
// candidate that lowers an item's error within the bytes left. The result never
// exceeds the budget, and its error exceeds the integer optimum by at most `bound`
// (its error minus the LP optimum, which no integer choice can beat).
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/formats/format.hpp"

namespace lowbit {

struct TypeCandidate {
  Format format = Format::F32;
  uint64_t bytes = 0;
  double error = 0;  // finite, >= 0
};

struct TypeAllocation {
  std::vector<size_t> choice;  // per item: the index into its candidates
  uint64_t bytes = 0;          // sum of the chosen candidates' bytes (<= budget)
  double error = 0;            // sum of their errors
  double bound = 0;            // error - (a lower bound of the optimum) >= error - optimum
};

// Throws Error when an item has no candidate, an error is negative or not finite, or
// even the smallest candidates exceed the budget (naming the bytes needed).
TypeAllocation allocate_types(std::span<const std::vector<TypeCandidate>> items, uint64_t budget);

}  // namespace lowbit
