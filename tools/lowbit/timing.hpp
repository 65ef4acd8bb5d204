#pragma once
// Timing helpers shared by `lowbit bench` and `lowbit demo`: a repeat-until loop and
// the streaming-read ceiling every bandwidth figure is divided by.
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

}  // namespace lowbit::cli
