#pragma once
// File plumbing shared by the model-file readers and writers: a read-only memory
// map of a whole file, and atomic writes (temporary file in the same folder, fsync,
// rename, fsync of the folder). Private to the library.
#include <cstddef>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace lowbit::io_detail {

// A read-only, private mapping of a regular file. Errors name `what` (e.g.
// "GGUF 'model.gguf'") and the failing call.
class MappedFile {
 public:
  static MappedFile open(const std::filesystem::path& path, const std::string& what);
  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const std::byte> bytes() const { return {static_cast<const std::byte*>(addr_), size_}; }
  size_t size() const { return size_; }

 private:
  void* addr_ = nullptr;
  size_t size_ = 0;
};

// Buffered writes to an open file descriptor; large blocks bypass the buffer.
class FileSink {
 public:
  FileSink(int fd, std::string what) : fd_(fd), what_(std::move(what)) { buf_.reserve(kBuffer); }
  void put(const void* p, size_t n);
  void flush();

 private:
  static constexpr size_t kBuffer = size_t{1} << 20;
  void write_all(const std::byte* p, size_t n);
  int fd_;
  std::string what_;
  std::vector<std::byte> buf_;
};

// Writes `path` atomically: `emit` fills a FileSink over a fresh temporary file next
// to it (never through a symlink), which is flushed, fsynced and renamed over
// `path`; the folder is then fsynced (best effort). On any error the temporary file
// is removed and a lowbit::Error prefixed by `what` is thrown, so an interrupted or
// failed write never leaves a partial file at `path`.
void write_atomically(const std::filesystem::path& path, const std::string& what,
                      const std::function<void(FileSink&)>& emit);

}  // namespace lowbit::io_detail
