#include "io/file_io.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "lowbit/core/error.hpp"

namespace lowbit::io_detail {

MappedFile MappedFile::open(const std::filesystem::path& path, const std::string& what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(what + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw Error(what + ": cannot stat: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(what + ": not a regular file");
  }
  MappedFile m;
  m.size_ = static_cast<size_t>(st.st_size);
  if (m.size_ > 0) {
    void* addr = ::mmap(nullptr, m.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const int e = errno;
    if (addr == MAP_FAILED) {
      ::close(fd);
      throw Error(what + ": mmap of " + std::to_string(m.size_) + " bytes failed: " + std::strerror(e));
    }
    m.addr_ = addr;
  }
  ::close(fd);  // the mapping keeps the file alive
  return m;
}

MappedFile::MappedFile(MappedFile&& o) noexcept : addr_(o.addr_), size_(o.size_) {
  o.addr_ = nullptr;
  o.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (addr_) ::munmap(addr_, size_);
    addr_ = o.addr_;
    size_ = o.size_;
    o.addr_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (addr_) ::munmap(addr_, size_);
}

void FileSink::put(const void* p, size_t n) {
  if (buf_.size() + n > kBuffer) flush();
  if (n >= kBuffer) {
    write_all(static_cast<const std::byte*>(p), n);
  } else {
    const auto* b = static_cast<const std::byte*>(p);
    buf_.insert(buf_.end(), b, b + n);
  }
}

void FileSink::flush() {
  write_all(buf_.data(), buf_.size());
  buf_.clear();
}

void FileSink::write_all(const std::byte* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, std::min(n, size_t{1} << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      throw Error(what_ + ": write failed: " + std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void write_atomically(const std::filesystem::path& path, const std::string& what,
                      const std::function<void(FileSink&)>& emit) {
  // A unique temporary name in the destination folder, so the rename is atomic.
  static std::atomic<unsigned> counter{0};
  std::filesystem::path tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    tmp = path;
    tmp += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    // O_EXCL | O_NOFOLLOW: never write through a file or link someone planted there.
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) throw Error(what + ": cannot create '" + tmp.string() + "': " + std::strerror(errno));
  }
  if (fd < 0) throw Error(what + ": cannot find a free temporary file name next to '" + path.string() + "'");
  try {
    FileSink sink(fd, what);
    emit(sink);
    sink.flush();
    if (::fsync(fd) != 0) throw Error(what + ": fsync of '" + tmp.string() + "' failed: " + std::strerror(errno));
    const int rc = ::close(fd);
    fd = -1;
    if (rc != 0) throw Error(what + ": close of '" + tmp.string() + "' failed: " + std::strerror(errno));
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      throw Error(what + ": rename of '" + tmp.string() + "' to '" + path.string() + "' failed: " + std::strerror(errno));
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  // Make the rename itself durable; the file is complete either way, so this is best effort.
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace lowbit::io_detail
