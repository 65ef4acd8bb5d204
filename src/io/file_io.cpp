#include "io/file_io.hpp"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>

#include "lowbit/core/error.hpp"
#include "lowbit/io/files.hpp"

namespace lowbit::io_detail {
namespace {

std::string quoted(const std::filesystem::path& p) {
  std::string s;  // built by appends: GCC 12 warns (-Wrestrict, falsely) about "'" + string + "'"
  s.reserve(p.native().size() + 2);
  s.push_back('\'');
  s.append(p.native());
  s.push_back('\'');
  return s;
}

// ---------------------------------------------------------------------------------------
// Live temporary files, for the signal handler. Fixed storage, so the handler reads it
// without allocating or locking: a slot is free (0), being filled or emptied (1), or
// holds the absolute path of a temporary that exists or is about to (2).

constexpr int kSlots = 64;
struct Slot {
  std::atomic<int> state{0};
  char path[PATH_MAX];
};
Slot g_slots[kSlots];

// Claims a slot for `path`; -1 when all are taken or the path is too long (the write
// still works, only a signal would then leave that temporary behind).
int register_temporary(const std::filesystem::path& path) {
  std::error_code ec;
  const std::string abs = std::filesystem::absolute(path, ec).string();
  if (ec || abs.size() >= PATH_MAX) return -1;
  for (int i = 0; i < kSlots; ++i) {
    int expected = 0;
    if (g_slots[i].state.compare_exchange_strong(expected, 1)) {
      std::memcpy(g_slots[i].path, abs.c_str(), abs.size() + 1);
      g_slots[i].state.store(2);
      return i;
    }
  }
  return -1;
}

void unregister_temporary(int slot) {
  if (slot >= 0) g_slots[slot].state.store(0);
}

// ---------------------------------------------------------------------------------------
// Signals. While at least one temporary exists (a refcount), SIGINT, SIGTERM and SIGHUP
// whose disposition is the default (terminate) get a handler that removes every live
// temporary, says so on stderr and exits with 128 + signo; SIGXFSZ at its default
// (terminate with a core) is ignored, so write() fails with EFBIG and the writer
// reports it. Dispositions a host program set itself are left alone.

constexpr int kCleanupSignals[] = {SIGINT, SIGTERM, SIGHUP};
constexpr int kNumCleanupSignals = sizeof kCleanupSignals / sizeof kCleanupSignals[0];

std::mutex g_signal_mutex;
int g_signal_users = 0;
struct sigaction g_old_action[kNumCleanupSignals];
bool g_installed[kNumCleanupSignals] = {};
struct sigaction g_old_xfsz;
bool g_xfsz_ignored = false;

void put_stderr(const char* s) {
  size_t n = 0;
  while (s[n] != '\0') ++n;
  while (n > 0) {
    const ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

const char* signal_name(int signo) {
  switch (signo) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    default: return "a signal";
  }
}

// Async-signal-safe: atomics, unlink, write and _exit only.
extern "C" void remove_temporaries_and_exit(int signo) {
  bool any = false;
  for (Slot& s : g_slots) {
    if (s.state.load() != 2) continue;
    if (::unlink(s.path) != 0) continue;  // not created yet, or already renamed
    put_stderr("lowbit: ");
    put_stderr(signal_name(signo));
    put_stderr(": removed the temporary file '");
    put_stderr(s.path);
    put_stderr("' of an unfinished write\n");
    any = true;
  }
  if (!any) {
    put_stderr("lowbit: ");
    put_stderr(signal_name(signo));
    put_stderr(" during a write: stopped\n");
  }
  ::_exit(128 + signo);
}

// Holds the handlers for the lifetime of one temporary file.
class SignalGuard {
 public:
  SignalGuard() {
    const std::lock_guard<std::mutex> lock(g_signal_mutex);
    if (g_signal_users++ > 0) return;
    for (int i = 0; i < kNumCleanupSignals; ++i) {
      g_installed[i] = false;
      struct sigaction old {};
      if (::sigaction(kCleanupSignals[i], nullptr, &old) != 0) continue;
      if ((old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) continue;  // the host's choice
      struct sigaction sa {};
      sa.sa_handler = remove_temporaries_and_exit;
      sigfillset(&sa.sa_mask);  // one handler at a time
      if (::sigaction(kCleanupSignals[i], &sa, &g_old_action[i]) == 0) g_installed[i] = true;
    }
    g_xfsz_ignored = false;
    struct sigaction old {};
    if (::sigaction(SIGXFSZ, nullptr, &old) == 0 && (old.sa_flags & SA_SIGINFO) == 0 && old.sa_handler == SIG_DFL) {
      struct sigaction sa {};
      sa.sa_handler = SIG_IGN;
      sigemptyset(&sa.sa_mask);
      if (::sigaction(SIGXFSZ, &sa, &g_old_xfsz) == 0) g_xfsz_ignored = true;
    }
  }
  ~SignalGuard() {
    const std::lock_guard<std::mutex> lock(g_signal_mutex);
    if (--g_signal_users > 0) return;
    for (int i = 0; i < kNumCleanupSignals; ++i) {
      if (!g_installed[i]) continue;
      struct sigaction cur {};
      // Restore only what we installed: a handler the host set meanwhile stays.
      if (::sigaction(kCleanupSignals[i], nullptr, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) == 0 &&
          cur.sa_handler == remove_temporaries_and_exit)
        ::sigaction(kCleanupSignals[i], &g_old_action[i], nullptr);
      g_installed[i] = false;
    }
    if (g_xfsz_ignored) {
      struct sigaction cur {};
      if (::sigaction(SIGXFSZ, nullptr, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) == 0 && cur.sa_handler == SIG_IGN)
        ::sigaction(SIGXFSZ, &g_old_xfsz, nullptr);
      g_xfsz_ignored = false;
    }
  }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;
};

// ---------------------------------------------------------------------------------------
// Output checks.

std::filesystem::path folder_of(const std::filesystem::path& path) {
  std::filesystem::path dir = path.parent_path();
  return dir.empty() ? std::filesystem::path(".") : dir;
}

long name_max_of(const std::filesystem::path& dir) {
  errno = 0;
  const long n = ::pathconf(dir.c_str(), _PC_NAME_MAX);
  return n > 0 ? n : NAME_MAX;
}

// What check_output_path and write_atomically share; messages start with `prefix`.
// Returns OUT's stat (through symlinks) when it exists.
std::optional<struct stat> inspect_output(const std::filesystem::path& path, const std::string& prefix) {
  const std::string out = prefix + "output " + quoted(path);
  if (path.empty()) throw Error(prefix + "the output path is empty");
  const std::filesystem::path name = path.filename();
  if (name.empty() || name == "." || name == "..")
    throw Error(out + " does not name a file (it ends in '/', '.' or '..')");
  const std::filesystem::path dir = folder_of(path);
  struct stat dst {};
  if (::stat(dir.c_str(), &dst) != 0) {
    const int e = errno;
    throw Error(out + ": folder " + quoted(dir) +
                (e == ENOENT ? std::string(" does not exist") : ": " + std::string(std::strerror(e))));
  }
  if (!S_ISDIR(dst.st_mode)) throw Error(out + ": " + quoted(dir) + " is " + file_kind(dst.st_mode) + ", not a folder");
  const long name_max = name_max_of(dir);
  if (name.native().size() > static_cast<size_t>(name_max))
    throw Error(out + ": the file name is " + std::to_string(name.native().size()) +
                " bytes, longer than the file system's limit of " + std::to_string(name_max) + " (NAME_MAX)");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int e = errno;
    if (e == ENOENT) return std::nullopt;  // a new file (or a dangling symlink, replaced like one)
    throw Error(out + ": cannot stat: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode))
    throw Error(out + " is " + file_kind(st.st_mode) +
                ", not a regular file: lowbit writes a new file and renames it over the output, which would "
                "replace it; give the path of a regular file");
  return st;
}

}  // namespace

std::string file_kind(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "a special file";
}

std::string temporary_name(const std::string& file_name, long name_max, unsigned n) {
  const std::string pid = std::to_string(::getpid()), count = std::to_string(n);
  std::string name = file_name + ".tmp." + pid + "." + count;
  if (name.size() <= static_cast<size_t>(name_max)) return name;
  return ".lowbit-" + pid + "-" + count + ".tmp";  // at most 36 bytes
}

MappedFile MappedFile::open(const std::filesystem::path& path, const std::string& what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // O_NONBLOCK: a FIFO must not hang open()
  if (fd < 0) throw Error(what + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw Error(what + ": cannot stat: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(what + ": is " + file_kind(st.st_mode) + ", not a regular file");
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
  if (n == 0) return;
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
      const int e = errno;
      if (e == EINTR) continue;
      if (e == EFBIG) {
        struct rlimit lim {};
        std::string limit = "the file-size limit";
        if (::getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
          limit += " (RLIMIT_FSIZE, `ulimit -f`) of " + std::to_string(static_cast<unsigned long long>(lim.rlim_cur)) +
                   " bytes";
        else
          limit += " of the file system";
        throw Error(what_ + ": write failed: the file would exceed " + limit);
      }
      throw Error(what_ + ": write failed: " + std::strerror(e));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void write_atomically(const std::filesystem::path& path, const std::string& what,
                      const std::function<void(FileSink&)>& emit) {
  const std::optional<struct stat> existing = inspect_output(path, what + ": ");
  const std::filesystem::path dir = folder_of(path);
  const long name_max = name_max_of(dir);
  const SignalGuard signals;  // before the temporary exists, so no signal can strand it

  // A unique temporary name in the destination folder, so the rename is atomic.
  static std::atomic<unsigned> counter{0};
  std::filesystem::path tmp;
  int fd = -1, slot = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    tmp = path.parent_path() / temporary_name(path.filename().string(), name_max, counter++);
    slot = register_temporary(tmp);  // before open(): a signal right after it still finds the file
    // O_EXCL | O_NOFOLLOW: never write through a file or link someone planted there.
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0) {
      const int e = errno;
      unregister_temporary(slot);
      slot = -1;
      if (e != EEXIST) throw Error(what + ": cannot create " + quoted(tmp) + ": " + std::strerror(e));
    }
  }
  if (fd < 0) throw Error(what + ": cannot find a free temporary file name next to " + quoted(path));
  try {
    if (existing) {
      // Keep the replaced file's owner (as root; otherwise its group, where allowed)
      // and permission bits. Best effort for the owner, exact for the mode.
      if (existing->st_uid != ::geteuid() || existing->st_gid != ::getegid()) {
        if (::fchown(fd, existing->st_uid, existing->st_gid) != 0)
          (void)::fchown(fd, static_cast<uid_t>(-1), existing->st_gid);
      }
      if (::fchmod(fd, existing->st_mode & 07777) != 0)
        throw Error(what + ": cannot give " + quoted(tmp) + " the mode of " + quoted(path) + ": " +
                    std::strerror(errno));
    }
    FileSink sink(fd, what);
    emit(sink);
    sink.flush();
    if (::fsync(fd) != 0) throw Error(what + ": fsync of " + quoted(tmp) + " failed: " + std::strerror(errno));
    const int rc = ::close(fd);
    fd = -1;
    if (rc != 0) throw Error(what + ": close of " + quoted(tmp) + " failed: " + std::strerror(errno));
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      throw Error(what + ": rename of " + quoted(tmp) + " to " + quoted(path) + " failed: " + std::strerror(errno));
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    unregister_temporary(slot);
    throw;
  }
  unregister_temporary(slot);
  // Make the rename itself durable; the file is complete either way, so this is best effort.
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace lowbit::io_detail

namespace lowbit {

void check_output_path(const std::filesystem::path& out, const std::vector<std::filesystem::path>& inputs) {
  const std::optional<struct stat> st = io_detail::inspect_output(out, "");
  if (st) {
    for (const std::filesystem::path& in : inputs) {
      struct stat ist {};
      if (::stat(in.c_str(), &ist) != 0) continue;  // opening it will say what is wrong
      if (ist.st_dev == st->st_dev && ist.st_ino == st->st_ino)
        throw Error("output '" + out.string() + "' is the input file '" + in.string() +
                    "' (the same file: device " + std::to_string(static_cast<unsigned long long>(st->st_dev)) +
                    ", inode " + std::to_string(static_cast<unsigned long long>(st->st_ino)) +
                    "); writing it would replace the input: choose another output path");
    }
  }
  // Can a file be created there? Create the temporary the write would use, then remove it.
  const std::filesystem::path dir = io_detail::folder_of(out);
  static std::atomic<unsigned> counter{0};
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::filesystem::path probe =
        out.parent_path() / io_detail::temporary_name(out.filename().string(), io_detail::name_max_of(dir),
                                                      (1u << 31) | counter++);
    const int slot = io_detail::register_temporary(probe);
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    const int e = errno;
    if (fd >= 0) {
      ::close(fd);
      ::unlink(probe.c_str());
    }
    io_detail::unregister_temporary(slot);
    if (fd >= 0) return;
    if (e != EEXIST)
      throw Error("output '" + out.string() + "': cannot create a file in folder '" + dir.string() +
                  "': " + std::strerror(e));
  }
  throw Error("output '" + out.string() + "': cannot find a free temporary file name in '" + dir.string() + "'");
}

namespace {

bool escaped(unsigned char c, bool first) {
  return c == '%' || c == '/' || c == '\\' || c < 0x20 || c == 0x7f || (first && c == '.');
}

constexpr char kHex[] = "0123456789ABCDEF";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // lower case is not canonical
}

}  // namespace

std::string tensor_file_name(std::string_view name, std::string_view suffix) {
  if (name.empty()) throw Error("tensor file name: the tensor name is empty");
  std::string out;
  out.reserve(name.size() + suffix.size());
  for (size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (escaped(c, i == 0)) {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.append(suffix);
  constexpr size_t kNameMax = 255;
  if (out.size() > kNameMax)
    throw Error("tensor file name for '" + std::string(name.substr(0, 64)) + (name.size() > 64 ? "...'" : "'") +
                " is " + std::to_string(out.size()) + " bytes, longer than a file name may be (" +
                std::to_string(kNameMax) + ")");
  return out;
}

std::optional<std::string> tensor_name_from_file_name(std::string_view stem) {
  if (stem.empty()) return std::nullopt;
  std::string out;
  out.reserve(stem.size());
  for (size_t i = 0; i < stem.size(); ++i) {
    const auto c = static_cast<unsigned char>(stem[i]);
    if (c != '%') {
      if (escaped(c, i == 0)) return std::nullopt;  // would have been escaped
      out.push_back(static_cast<char>(c));
      continue;
    }
    if (i + 2 >= stem.size()) return std::nullopt;
    const int hi = hex_value(stem[i + 1]), lo = hex_value(stem[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    const auto v = static_cast<unsigned char>(hi * 16 + lo);
    if (!escaped(v, out.empty())) return std::nullopt;  // not canonical: this byte is never escaped
    out.push_back(static_cast<char>(v));
    i += 2;
  }
  return out;
}

}  // namespace lowbit
