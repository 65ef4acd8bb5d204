#pragma once
// File plumbing shared by the model-file readers and writers: a read-only memory
// map of a whole regular file, and atomic writes (temporary file in the same folder,
// fsync, rename, fsync of the folder) that clean up after errors and after the
// signals that would otherwise leave the temporary behind. Private to the library;
// the promises are docs/reliability.md's, the public face is lowbit/io/files.hpp.
#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace lowbit::io_detail {

// "a directory", "a character device", ... for the file type bits of a st_mode.
std::string file_kind(mode_t mode);

// A read-only, private mapping of a regular file. Errors name `what` (e.g.
// "GGUF 'model.gguf'") and the failing call; a directory, device, FIFO or socket is
// refused before anything is read ("is a directory, not a regular file").
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

// Buffered writes to an open file descriptor; large blocks bypass the buffer. A
// write refused by the file-size limit (RLIMIT_FSIZE, EFBIG) is an Error naming the
// limit.
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
// to it (created exclusively, never through a symlink), which is flushed, fsynced and
// renamed over `path`; the folder is then fsynced (best effort). Before the temporary
// is created, `path` is checked as lowbit::check_output_path does (an existing
// non-regular file, a missing folder or an over-long name is an Error). An existing
// file's permission bits (and owner/group, best effort) carry over to the new one.
// While the temporary exists, SIGINT, SIGTERM and SIGHUP (where their disposition is
// the default) remove it and end the process with status 128 + signo, and SIGXFSZ
// (where default) is ignored so an over-size write fails with EFBIG instead of killing
// the process. On any error the temporary file is removed and a lowbit::Error prefixed
// by `what` is thrown, so a failed or interrupted write never leaves a partial file at
// `path` (or a temporary beside it, SIGKILL and power loss aside).
void write_atomically(const std::filesystem::path& path, const std::string& what,
                      const std::function<void(FileSink&)>& emit);

// The file name a temporary for `path` gets: "<name>.tmp.<pid>.<n>" when that fits
// the folder's NAME_MAX (`name_max`), else the short ".lowbit-<pid>-<n>.tmp". Exposed
// for the tests.
std::string temporary_name(const std::string& file_name, long name_max, unsigned n);

}  // namespace lowbit::io_detail
