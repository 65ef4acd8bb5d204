#include "lowbit/io/gguf_stream.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include "lowbit/core/error.hpp"
#include "lowbit/io/files.hpp"

namespace lowbit {
namespace {

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// A 64-bit checksum (word-wise multiply-xorshift, seeded with the length): not
// cryptographic, only meant to catch bytes that did not reach the disk.
uint64_t checksum(std::span<const std::byte> b, uint64_t h) {
  h ^= b.size() * 0x9E3779B97F4A7C15ull;
  size_t i = 0;
  for (; i + 8 <= b.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, b.data() + i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  for (; i < b.size(); ++i) h = (h ^ static_cast<uint64_t>(b[i])) * 0x100000001b3ull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 33);
}

std::string hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string quoted(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

// strerror, or for EFBIG the limit that was hit.
std::string errno_text(int e) {
  if (e != EFBIG) return std::strerror(e);
  std::string why = "the file would exceed the file-size limit";
  struct rlimit lim {};
  if (::getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
    why += " (RLIMIT_FSIZE, `ulimit -f`) of " + std::to_string(static_cast<unsigned long long>(lim.rlim_cur)) + " bytes";
  else
    why += " of the file system";
  return why;
}

void pwrite_all(int fd, const std::byte* p, size_t n, uint64_t off, const std::filesystem::path& file) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, std::min(n, size_t{1} << 30), static_cast<off_t>(off));
    if (w < 0) {
      const int e = errno;
      if (e == EINTR) continue;
      throw Error("GGUF write of " + quoted(file) + ": write at offset " + std::to_string(off) +
                  " failed: " + errno_text(e));
    }
    p += w, off += static_cast<uint64_t>(w), n -= static_cast<size_t>(w);
  }
}

// The checksum of bytes [off, off + n) of the file; false when the file is shorter.
// The range is one tensor, so holding it costs what writing it did.
bool checksum_range(int fd, uint64_t off, uint64_t n, uint64_t& h) {
  std::vector<std::byte> all(static_cast<size_t>(n));
  uint64_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, all.data() + done, static_cast<size_t>(n - done), static_cast<off_t>(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    done += static_cast<uint64_t>(r);
  }
  h = checksum(all, 0);
  return true;
}

// While any stream writer lives, SIGXFSZ (by default: kill with a core dump) is
// ignored where its disposition is the default, so a write past `ulimit -f` fails with
// EFBIG and becomes an Error that removes the partial files (as write_atomically does).
class FileSizeSignalGuard {
 public:
  FileSizeSignalGuard() {
    std::lock_guard<std::mutex> lock(mutex());
    if (count()++ > 0) return;
    struct sigaction now {};
    if (::sigaction(SIGXFSZ, nullptr, &now) == 0 && now.sa_handler == SIG_DFL && !(now.sa_flags & SA_SIGINFO)) {
      struct sigaction ign {};
      ign.sa_handler = SIG_IGN;
      sigemptyset(&ign.sa_mask);
      changed() = ::sigaction(SIGXFSZ, &ign, nullptr) == 0;
    }
  }
  ~FileSizeSignalGuard() {
    std::lock_guard<std::mutex> lock(mutex());
    if (--count() > 0 || !changed()) return;
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGXFSZ, &dfl, nullptr);
    changed() = false;
  }
  FileSizeSignalGuard(const FileSizeSignalGuard&) = delete;
  FileSizeSignalGuard& operator=(const FileSizeSignalGuard&) = delete;

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static int& count() {
    static int n = 0;
    return n;
  }
  static bool& changed() {
    static bool c = false;
    return c;
  }
};

// "<name><suffix>" beside `path`; where that is longer than the folder allows
// (NAME_MAX), the fixed-length ".lowbit-<checksum of the name><suffix>", so a resumed
// run finds the same file again.
std::filesystem::path partial_path(const std::filesystem::path& path, const std::string& suffix) {
  const std::string name = path.filename().string();
  std::filesystem::path dir = path.parent_path();
  errno = 0;
  long name_max = ::pathconf(dir.empty() ? "." : dir.c_str(), _PC_NAME_MAX);
  if (name_max <= 0) name_max = 255;
  if (name.size() + suffix.size() <= static_cast<size_t>(name_max)) return path.string() + suffix;
  const uint64_t h = checksum(std::as_bytes(std::span(name.data(), name.size())), 0);
  return dir / (".lowbit-" + hex(h) + suffix);
}

// An output that exists keeps its permission bits (and, best effort, its owner), as
// every lowbit writer does (docs/reliability.md).
void copy_mode(int fd, const std::filesystem::path& existing, const std::filesystem::path& partial) {
  struct stat st {};
  if (::stat(existing.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
  if (st.st_uid != ::geteuid() || st.st_gid != ::getegid())
    if (::fchown(fd, st.st_uid, st.st_gid) != 0) (void)::fchown(fd, static_cast<uid_t>(-1), st.st_gid);
  if (::fchmod(fd, st.st_mode & 07777) != 0)
    throw Error("GGUF write: cannot give " + quoted(partial) + " the mode of " + quoted(existing) + ": " +
                std::strerror(errno));
}

}  // namespace

uint64_t parse_split_size(const std::string& text) {
  const std::string bad = "split size '" + text + "': expected a positive number of bytes, optionally with M or G";
  if (text.empty()) throw Error(bad);
  double mult = 1;
  std::string num = text;
  const char last = text.back();
  if (last == 'M' || last == 'm') mult = 1e6, num.pop_back();
  else if (last == 'G' || last == 'g') mult = 1e9, num.pop_back();
  if (num.empty()) throw Error(bad);
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(num, &used);
  } catch (const std::exception&) {
    throw Error(bad);
  }
  if (used != num.size() || !(v > 0) || !std::isfinite(v) || v * mult >= 1.8e19) throw Error(bad);
  const auto bytes = static_cast<uint64_t>(v * mult);
  if (bytes == 0) throw Error(bad);
  return bytes;
}

struct GgufStreamWriter::Impl {
  struct Part {
    std::filesystem::path path, partial;
    std::vector<std::byte> header;
    uint64_t size = 0;
    int fd = -1;
  };
  struct Slot {
    size_t part;
    uint64_t offset, nbytes, padded;
  };
  std::vector<Part> parts;
  std::vector<std::filesystem::path> paths;
  std::vector<Slot> slots;
  std::filesystem::path journal;
  int journal_fd = -1;
  size_t resumed = 0, next = 0;
  bool finished = false, keep = false;
  std::string tag;  // the journal's first line
  FileSizeSignalGuard signal_guard;

  ~Impl() {
    for (Part& p : parts)
      if (p.fd >= 0) ::close(p.fd);
    if (journal_fd >= 0) ::close(journal_fd);
    if (!finished && !keep) {
      for (Part& p : parts) ::unlink(p.partial.c_str());
      ::unlink(journal.c_str());
    }
  }

  // The journaled tensors whose bytes in the partial files still match: how many,
  // counted from the first tensor. 0 when the journal is missing or of another layout.
  size_t verify(std::vector<std::string>& kept) {
    std::ifstream in(journal);
    std::string line;
    if (!in || !std::getline(in, line) || line != tag) return 0;
    size_t n = 0;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      size_t index = 0, part = 0;
      uint64_t offset = 0, nbytes = 0;
      std::string sum;
      if (!(ls >> index >> part >> offset >> nbytes >> sum) || index != n || n >= slots.size()) break;
      const Slot& s = slots[n];
      if (s.part != part || s.offset != offset || s.padded != nbytes) break;
      uint64_t h = 0;
      if (!checksum_range(parts[part].fd, offset, nbytes, h) || hex(h) != sum) break;
      kept.push_back(line);
      ++n;
    }
    return n;
  }

  void append_journal(const std::string& line) {
    const std::string l = line + "\n";
    pwrite_all(journal_fd, reinterpret_cast<const std::byte*>(l.data()), l.size(),
               static_cast<uint64_t>(::lseek(journal_fd, 0, SEEK_END)), journal);
  }
};

GgufStreamWriter::GgufStreamWriter(const GgufWriter& layout, const std::filesystem::path& out,
                                   const GgufStreamOptions& o)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  const size_t align = layout.alignment();
  const auto& tensors = layout.tensors_;

  // Which part each tensor goes to (gguf-split's rule).
  std::vector<size_t> part_of(tensors.size(), 0);
  size_t n_parts = 1;
  if (o.split.any()) {
    uint64_t bytes = 0;
    int64_t count = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const uint64_t padded = align_up(tensors[i].nbytes, align);
      const bool full = (o.split.max_tensors && count >= o.split.max_tensors) ||
                        (o.split.max_bytes && count > 0 && bytes + padded > o.split.max_bytes);
      if (full) ++n_parts, bytes = 0, count = 0;
      part_of[i] = n_parts - 1;
      bytes += padded, ++count;
    }
    if (n_parts > 99999) throw Error("GGUF split: " + std::to_string(n_parts) + " parts, more than gguf-split's 99999");
  }
  std::filesystem::path prefix = out;
  if (prefix.extension() == ".gguf") prefix.replace_extension();
  for (size_t p = 0; p < n_parts; ++p) {
    GgufWriter w;
    if (p == 0) w.metadata_ = layout.metadata_;
    else if (const GgufValue* a = layout.find("general.alignment")) w.set("general.alignment", *a);
    if (o.split.any()) {
      w.set("split.no", GgufValue(static_cast<uint16_t>(p)));
      w.set("split.count", GgufValue(static_cast<uint16_t>(n_parts)));
      w.set("split.tensors.count", GgufValue(static_cast<int32_t>(tensors.size())));
    }
    Impl::Part part;
    part.path = o.split.any() ? gguf_split_path(prefix, static_cast<int>(p), static_cast<int>(n_parts)) : out;
    part.partial = partial_path(part.path, ".partial");
    uint64_t offset = 0;
    for (size_t i = 0; i < tensors.size(); ++i)
      if (part_of[i] == p) {
        w.declare_tensor(tensors[i].name, tensors[i].shape, tensors[i].format);
        const uint64_t padded = align_up(tensors[i].nbytes, align);
        m.slots.push_back({p, offset, tensors[i].nbytes, padded});  // offset fixed up below
        offset += padded;
      }
    part.header = w.header();
    for (auto& s : m.slots)
      if (s.part == p) s.offset += part.header.size();
    part.size = part.header.size() + offset;
    m.paths.push_back(part.path);
    m.parts.push_back(std::move(part));
  }
  for (const auto& p : m.paths) check_output_path(p);
  m.journal = partial_path(m.paths.front(), ".partial-journal");

  uint64_t layout_hash = 0;
  for (const auto& p : m.parts) layout_hash = checksum(p.header, layout_hash);
  const uint64_t key_hash = checksum(std::as_bytes(std::span(o.resume_key.data(), o.resume_key.size())), 0);
  m.tag = "lowbit-gguf-stream 1 " + hex(layout_hash) + " " + hex(key_hash);

  bool reopen = o.resume;
  for (const auto& p : m.parts) {
    struct stat st {};
    if (::lstat(p.partial.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) reopen = false;
  }
  for (auto& p : m.parts) {
    const int flags = O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (reopen ? 0 : O_TRUNC);
    p.fd = ::open(p.partial.c_str(), flags, 0666);
    if (p.fd < 0) throw Error("GGUF write: cannot open " + quoted(p.partial) + ": " + std::strerror(errno));
    copy_mode(p.fd, p.path, p.partial);
  }
  std::vector<std::string> kept;
  if (reopen) m.resumed = m.verify(kept);
  m.next = m.resumed;
  for (auto& p : m.parts) {
    if (::ftruncate(p.fd, static_cast<off_t>(p.size)) != 0)
      throw Error("GGUF write of " + quoted(p.partial) + ": cannot size it to " + std::to_string(p.size) +
                  " bytes: " + errno_text(errno));
    pwrite_all(p.fd, p.header.data(), p.header.size(), 0, p.partial);
  }
  m.journal_fd = ::open(m.journal.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (m.journal_fd < 0) throw Error("GGUF write: cannot open " + quoted(m.journal) + ": " + std::strerror(errno));
  std::string text = m.tag + "\n";
  for (const auto& l : kept) text += l + "\n";
  pwrite_all(m.journal_fd, reinterpret_cast<const std::byte*>(text.data()), text.size(), 0, m.journal);
}

GgufStreamWriter::GgufStreamWriter(GgufStreamWriter&&) noexcept = default;
GgufStreamWriter::~GgufStreamWriter() = default;

const std::vector<std::filesystem::path>& GgufStreamWriter::paths() const { return impl_->paths; }
size_t GgufStreamWriter::tensor_count() const { return impl_->slots.size(); }
size_t GgufStreamWriter::resumed() const { return impl_->resumed; }
size_t GgufStreamWriter::next() const { return impl_->next; }
void GgufStreamWriter::keep_partial() { impl_->keep = true; }

void GgufStreamWriter::write(std::span<const std::byte> bytes) {
  Impl& m = *impl_;
  if (m.finished || m.next >= m.slots.size())
    throw Error("GgufStreamWriter: all " + std::to_string(m.slots.size()) + " tensors are written already");
  const Impl::Slot& s = m.slots[m.next];
  if (bytes.size() != s.nbytes)
    throw Error("GgufStreamWriter: tensor " + std::to_string(m.next) + " takes " + std::to_string(s.nbytes) +
                " bytes, " + std::to_string(bytes.size()) + " given");
  Impl::Part& p = m.parts[s.part];
  // The padding is written too, so a resumed file never keeps stale bytes there.
  std::vector<std::byte> padded(bytes.begin(), bytes.end());
  padded.resize(s.padded);
  pwrite_all(p.fd, padded.data(), padded.size(), s.offset, p.partial);
  const uint64_t h = checksum(padded, 0);
  m.append_journal(std::to_string(m.next) + " " + std::to_string(s.part) + " " + std::to_string(s.offset) + " " +
                   std::to_string(s.padded) + " " + hex(h));
  ++m.next;
}

const std::vector<std::filesystem::path>& GgufStreamWriter::finish() {
  Impl& m = *impl_;
  if (m.next != m.slots.size())
    throw Error("GgufStreamWriter: finish() after " + std::to_string(m.next) + " of " +
                std::to_string(m.slots.size()) + " tensors");
  for (auto& p : m.parts) {
    if (::fsync(p.fd) != 0) throw Error("GGUF write: fsync of " + quoted(p.partial) + " failed: " + std::strerror(errno));
    const int rc = ::close(p.fd);
    p.fd = -1;
    if (rc != 0) throw Error("GGUF write: close of " + quoted(p.partial) + " failed: " + std::strerror(errno));
  }
  for (auto& p : m.parts)
    if (::rename(p.partial.c_str(), p.path.c_str()) != 0)
      throw Error("GGUF write: rename of " + quoted(p.partial) + " to " + quoted(p.path) + " failed: " +
                  std::strerror(errno));
  m.finished = true;
  ::close(m.journal_fd);
  m.journal_fd = -1;
  ::unlink(m.journal.c_str());
  std::filesystem::path dir = m.paths.front().parent_path();
  if (dir.empty()) dir = ".";
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return m.paths;
}

}  // namespace lowbit
