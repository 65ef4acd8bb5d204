#pragma once
// Timing helpers shared by `lowbit bench` and `lowbit demo`: a repeat-until loop and
// the streaming ceilings bandwidth figures are divided by.
#include <cstddef>
#include <functional>
#include <vector>

namespace lowbit::cli {

// Calls body once to warm up, then until min_seconds have passed (at least twice);
// returns the mean seconds per call.
double time_per_call(double min_seconds, const std::function<void()>& body);

// Mean seconds to read every byte of `buffers` once (8-byte words summed, split over
// lowbit's threads in 64 KiB chunks): the least work any kernel reading the same
// bytes can do.
double stream_read_seconds(const std::vector<std::vector<std::byte>>& buffers, double min_seconds);

// Mean seconds to read every byte of `in` once (as stream_read_seconds) and write
// every byte of `out` once with ordinary stores, in the same proportion chunk by
// chunk: the least memory traffic of a kernel that reads `in` and writes `out` (an
// ordinary store first reads its cache line, so writing costs about twice its bytes).
double stream_read_write_seconds(const std::vector<std::byte>& in, std::vector<std::byte>& out,
                                 double min_seconds);

}  // namespace lowbit::cli
