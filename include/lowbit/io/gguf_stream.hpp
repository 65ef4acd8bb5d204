#pragma once
// Writing a GGUF model tensor by tensor, without holding it in memory, optionally
// split into parts (llama.cpp's gguf-split convention) and resumable after an
// interruption.
//
// The layout (metadata, every tensor's name, shape and type, hence every offset) is
// fixed up front from a GgufWriter whose tensors were declared (declare_tensor); the
// headers are written at once and each write() puts the next tensor's bytes in place.
// The bytes go to "<file>.partial" beside each output file; finish() fsyncs them and
// renames them over the outputs, so the outputs only ever appear complete.
//
// Resume: after each tensor a line (index, part, offset, size, a 64-bit checksum of the
// bytes and padding) is appended to the journal "<first output>.partial-journal". A
// run that ends without finish() -- Ctrl-C, kill -9, power loss -- leaves the partial
// files and the journal; a new writer with `resume` set and the same layout and
// resume_key re-reads every journaled tensor from the partial files, keeps the
// leading run whose checksums match, and continues after it. The finished files are
// byte-identical to an uninterrupted run's (the bytes of each tensor are the
// caller's; the rest is fixed by the layout). A writer destroyed without finish()
// after an exception removes its partial files and journal (keep_partial() keeps
// them, e.g. on a cancellation meant to be resumed).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lowbit/io/gguf.hpp"

namespace lowbit {

// gguf-split's limits: a new part starts before a tensor that would take a part past
// max_bytes of tensor data (padding included; headers not counted, as gguf-split
// counts) or past max_tensors tensors. A part always takes at least one tensor. 0: no
// limit. Any limit set: the outputs are named gguf_split_path(prefix, i, n) where
// prefix is the output path without ".gguf", even when n is 1, and every part
// carries split.no (u16), split.count (u16) and split.tensors.count (i32); the first
// part carries all other metadata.
struct GgufSplitLimits {
  uint64_t max_bytes = 0;
  int64_t max_tensors = 0;
  bool any() const { return max_bytes != 0 || max_tensors != 0; }
};

// "300M", "2G", "1.5G", "4096" (bytes); M and G are 1000^2 and 1000^3 as in
// gguf-split. Throws Error for anything else or a value that is not positive.
uint64_t parse_split_size(const std::string& text);

struct GgufStreamOptions {
  GgufSplitLimits split;
  bool resume = false;     // continue from the partial files of an earlier run, if any
  std::string resume_key;  // what else must match to resume (the caller's inputs); hashed
};

class GgufStreamWriter {
 public:
  // Checks every output path (lowbit::check_output_path), creates (or, resuming,
  // reopens and verifies) the partial files and writes the headers. Throws Error.
  GgufStreamWriter(const GgufWriter& layout, const std::filesystem::path& out, const GgufStreamOptions& options = {});
  GgufStreamWriter(GgufStreamWriter&&) noexcept;
  ~GgufStreamWriter();

  // The files finish() produces (one, or the parts of a split).
  const std::vector<std::filesystem::path>& paths() const;
  size_t tensor_count() const;
  // Tensors taken over, verified, from an earlier run: the first resumed() tensors of
  // the layout, so write() starts at tensor resumed().
  size_t resumed() const;
  size_t next() const;  // index (in layout order) of the tensor write() takes next
  // The next tensor's bytes; their size must be the declared one.
  void write(std::span<const std::byte> bytes);
  // Every tensor written: fsync, rename the partial files over the outputs, remove
  // the journal. Returns paths().
  const std::vector<std::filesystem::path>& finish();
  // Leave the partial files and journal in place when destroyed unfinished.
  void keep_partial();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lowbit
