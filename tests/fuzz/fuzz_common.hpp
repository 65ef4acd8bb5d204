#pragma once
// Shared pieces of the libFuzzer targets: the input bytes become a file without
// touching the disk or the public API (the readers take a path and map it), and
// invariant failures abort so libFuzzer records a crash.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "lowbit/core/error.hpp"

namespace lowbit_fuzz {

// One anonymous in-memory file per process, rewritten for every input and reached
// through /proc/self/fd so the reader opens, stats and maps it like a real file.
class MemFile {
 public:
  explicit MemFile(const char* name) : fd_(memfd_create(name, MFD_CLOEXEC)) {
    if (fd_ < 0) die("memfd_create failed");
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  ~MemFile() { ::close(fd_); }

  // Replaces the file's contents with exactly `size` bytes.
  const std::string& write(const void* data, size_t size) {
    if (ftruncate(fd_, 0) != 0) die("ftruncate failed");
    const auto* p = static_cast<const char*>(data);
    size_t done = 0;
    while (done < size) {
      const ssize_t n = pwrite(fd_, p + done, size - done, static_cast<off_t>(done));
      if (n <= 0) die("pwrite failed");
      done += static_cast<size_t>(n);
    }
    return path_;
  }

  [[noreturn]] static void die(const char* what) {
    std::fprintf(stderr, "fuzz harness: %s\n", what);
    std::abort();
  }

 private:
  int fd_;
  std::string path_;
};

// An invariant the reader promises for every file it accepts.
inline void require(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant violated: %s\n", what.c_str());
    std::abort();
  }
}

// Reads every byte so a view that points outside the mapping faults here.
inline uint64_t touch(const std::byte* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<uint8_t>(p[i])) * 1099511628211ull;
  return h;
}

// Keeps a value alive so the reads above are not optimised away.
inline void sink(uint64_t v) {
  static volatile uint64_t s;
  s = s + v;
}

// One fuzz input: `data` becomes the file behind `input`, `open(path)` parses it.
// A lowbit::Error is the expected refusal; any other exception aborts. A file the
// reader accepts goes to `check`, which verifies the reader's promises and may not
// throw at all.
template <class Open, class Check>
int run_one(MemFile& input, const uint8_t* data, size_t size, Open open, Check check) {
  const std::string& path = input.write(data, size);
  std::optional<decltype(open(path))> opened;
  try {
    opened.emplace(open(path));
  } catch (const lowbit::Error&) {
    return 0;  // a clear refusal is the expected outcome for almost every input
  } catch (const std::exception& e) {
    require(false, std::string("open threw something other than lowbit::Error: ") + e.what());
  }
  try {
    check(*opened);
  } catch (const std::exception& e) {
    require(false, std::string("an accepted file threw: ") + e.what());
  }
  return 0;
}

}  // namespace lowbit_fuzz
