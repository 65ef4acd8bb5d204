// The output contract of docs/reliability.md: every writer replaces its output
// atomically, and neither an error, a signal (SIGINT, SIGTERM, SIGHUP), the file-size
// limit (RLIMIT_FSIZE), a special file as the output, nor the input given as the
// output leaves a temporary file behind or destroys something. Signals and limits
// are exercised in child processes (gtest death tests), which report through their
// exit status and stderr; the parent then inspects the folder.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../../src/io/file_io.hpp"  // write_atomically: the writers' common core (private)
#include "lowbit/core/error.hpp"
#include "lowbit/io/files.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/model/quant_rules.hpp"
#include "lowbit/model/quantize_model.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using lowbit::test::error_of;

namespace {

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "_" + info->name();
    std::replace(name.begin(), name.end(), '/', '_');  // parameterised names hold '/'
    path_ = fs::temp_directory_path() / ("lowbit_out_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }
  // Every entry of the folder, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  fs::path path_;
};

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << s;
}

// A small GGUF model: one 64 x 4 F32 weight (quantizable to Q8_0) and a norm.
lowbit::GgufWriter tiny_model() {
  lowbit::GgufWriter w;
  w.set("general.architecture", "llama");
  w.set("llama.block_count", uint32_t{1});
  std::vector<float> weight(64 * 4), norm(64, 1.0f);
  for (size_t i = 0; i < weight.size(); ++i) weight[i] = static_cast<float>(i % 17) - 8.0f;
  const auto as_bytes = [](const std::vector<float>& v) {
    std::vector<std::byte> b(v.size() * 4);
    std::memcpy(b.data(), v.data(), b.size());
    return b;
  };
  w.add_tensor("blk.0.attn_q.weight", {64, 4}, lowbit::Format::F32, as_bytes(weight));
  w.add_tensor("blk.0.attn_norm.weight", {64}, lowbit::Format::F32, as_bytes(norm));
  return w;
}

// write_atomically with `n` bytes of 'x', calling `mid` after the first half is on disk.
void write_with(const fs::path& out, size_t n, const std::function<void()>& mid) {
  lowbit::io_detail::write_atomically(out, "test write of '" + out.string() + "'", [&](lowbit::io_detail::FileSink& s) {
    const std::string half(n / 2, 'x');
    s.put(half.data(), half.size());
    s.flush();
    mid();
    s.put(half.data(), half.size());
  });
}

int mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return static_cast<int>(st.st_mode & 07777);
}

class OutputSignals : public ::testing::TestWithParam<int> {};

// A signal in the middle of a write: the child removes its temporary, says so, and
// exits with 128 + signo; the old output is untouched and nothing else is left.
TEST_P(OutputSignals, RemoveTheTemporaryAndExitWith128PlusSigno) {
  // "fast": the child is a fork at this point, so it writes into this test's folder.
  GTEST_FLAG_SET(death_test_style, "fast");
  const int sig = GetParam();
  TempDir dir;
  const fs::path out = dir / "model.gguf";
  write_text(out, "old contents");
  const std::string name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP";
  const auto child = [&] {
    ::signal(sig, SIG_DFL);  // as in a shell; the test runner might have ignored SIGHUP
    write_with(out, 1 << 16, [&] { ::raise(sig); });
  };
  EXPECT_EXIT(child(), ::testing::ExitedWithCode(128 + sig),
              name + ": removed the temporary file '.*model\\.gguf\\.tmp\\.[0-9]+\\.[0-9]+' of an unfinished write");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"model.gguf"});
  EXPECT_EQ(read_all(out), "old contents");
}

INSTANTIATE_TEST_SUITE_P(Writer, OutputSignals, ::testing::Values(SIGINT, SIGTERM, SIGHUP),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return i.param == SIGINT ? std::string("SIGINT")
                                  : i.param == SIGTERM ? std::string("SIGTERM") : std::string("SIGHUP");
                         });

bool is_default(int sig) {
  struct sigaction sa {};
  ::sigaction(sig, nullptr, &sa);
  return (sa.sa_flags & SA_SIGINFO) == 0 && sa.sa_handler == SIG_DFL;
}

int g_host_signals = 0;
extern "C" void host_handler(int) { ++g_host_signals; }

// Handlers exist only while a temporary does, and a host program's own handler is
// never replaced: its SIGTERM arrives, the write completes.
TEST(OutputContract, SignalHandlersAreScopedAndRespectTheHost) {
  TempDir dir;
  struct sigaction saved[4];
  const int sigs[4] = {SIGTERM, SIGINT, SIGHUP, SIGXFSZ};
  for (int i = 0; i < 4; ++i) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(sigs[i], &dfl, &saved[i]);
  }
  bool during = false;
  write_with(dir / "a.bin", 64, [&] { during = !is_default(SIGTERM) && !is_default(SIGXFSZ); });
  EXPECT_TRUE(during);
  EXPECT_TRUE(is_default(SIGTERM) && is_default(SIGINT) && is_default(SIGHUP) && is_default(SIGXFSZ));

  struct sigaction host {}, old {};
  host.sa_handler = host_handler;
  sigemptyset(&host.sa_mask);
  ASSERT_EQ(::sigaction(SIGTERM, &host, &old), 0);
  g_host_signals = 0;
  write_with(dir / "b.bin", 64, [] { ::raise(SIGTERM); });
  EXPECT_EQ(g_host_signals, 1);
  EXPECT_EQ(read_all(dir / "b.bin"), std::string(64, 'x'));
  struct sigaction now {};
  ::sigaction(SIGTERM, nullptr, &now);
  EXPECT_EQ(now.sa_handler, host_handler);
  ::sigaction(SIGTERM, &old, nullptr);
  for (int i = 0; i < 4; ++i) ::sigaction(sigs[i], &saved[i], nullptr);
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"a.bin", "b.bin"}));
}

// RLIMIT_FSIZE: the write fails with an Error naming the file and the limit (no
// SIGXFSZ death), the temporary is removed and the old output stays.
TEST(OutputContract, FileSizeLimitIsAnErrorNamingFileAndLimit) {
  GTEST_FLAG_SET(death_test_style, "fast");
  TempDir dir;
  const fs::path out = dir / "big.gguf";
  write_text(out, "old");
  const auto child = [&] {
    struct rlimit lim {65536, 65536};
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) std::_Exit(10);
    ::signal(SIGXFSZ, SIG_DFL);  // the default would kill the process; the writer must prevent that
    lowbit::GgufWriter w;
    w.add_tensor("t", {1 << 18}, lowbit::Format::F32, std::vector<std::byte>(size_t{1} << 20));
    try {
      w.write(out);
    } catch (const lowbit::Error& e) {
      std::fprintf(stderr, "%s\n", e.what());
      std::_Exit(0);
    }
    std::_Exit(11);
  };
  EXPECT_EXIT(child(), ::testing::ExitedWithCode(0),
              "GGUF write of '.*big\\.gguf': write failed: the file would exceed the file-size limit "
              "\\(RLIMIT_FSIZE, `ulimit -f`\\) of 65536 bytes");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"big.gguf"});
  EXPECT_EQ(read_all(out), "old");
}

// Special files as the output are refused before anything is written, and stay what
// they were.
TEST(OutputContract, SpecialFilesAreRefused) {
  TempDir dir;
  const lowbit::GgufWriter w = tiny_model();
  std::string e = error_of([&] { w.write("/dev/null"); });
  EXPECT_NE(e.find("output '/dev/null' is a character device, not a regular file"), std::string::npos) << e;
  struct stat st {};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_NE(error_of([] { lowbit::check_output_path("/dev/null"); }).find("character device"), std::string::npos);

  const fs::path fifo = dir / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  e = error_of([&] { w.write(fifo); });
  EXPECT_NE(e.find("is a FIFO (named pipe), not a regular file"), std::string::npos) << e;
  EXPECT_TRUE(fs::is_fifo(fifo));

  fs::create_directory(dir / "sub");
  e = error_of([&] { lowbit::SafetensorsWriter().write(dir / "sub"); });
  EXPECT_NE(e.find("is a directory, not a regular file"), std::string::npos) << e;
  EXPECT_TRUE(fs::is_directory(dir / "sub"));

  // A symlink counts as what it points to.
  fs::create_symlink("/dev/null", dir / "null-link");
  EXPECT_NE(error_of([&] { w.write(dir / "null-link"); }).find("character device"), std::string::npos);
  EXPECT_TRUE(fs::is_symlink(dir / "null-link"));
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"null-link", "pipe", "sub"}));
}

// OUT == IN under any name is refused before any work, and IN is untouched.
TEST(OutputContract, TheInputAsOutputIsRefused) {
  TempDir dir;
  const fs::path in = dir / "in.gguf";
  tiny_model().write(in);
  const std::string before = read_all(in);
  fs::create_hard_link(in, dir / "hard.gguf");
  fs::create_symlink("in.gguf", dir / "sym.gguf");
  fs::create_directory(dir / "sub");
  const auto opts = lowbit::QuantizeModelOptions{*lowbit::quant_scheme_from_name("Q8_0")};
  for (const fs::path& out : {in, dir / "hard.gguf", dir / "sym.gguf", dir / "sub" / ".." / "in.gguf"}) {
    const std::string e = error_of([&] { lowbit::quantize_model(in, out, opts); });
    EXPECT_NE(e.find("output '" + out.string() + "' is the input file '" + in.string() + "'"), std::string::npos)
        << out << ": " << e;
    EXPECT_NE(e.find("would replace the input"), std::string::npos) << e;
  }
  EXPECT_EQ(read_all(in), before);
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"hard.gguf", "in.gguf", "sub", "sym.gguf"}));
  // A different file is fine, and the one-call path writes it.
  const lowbit::QuantizePlan plan = lowbit::quantize_model(in, dir / "out.gguf", opts);
  EXPECT_EQ(lowbit::GgufFile::open(dir / "out.gguf").find_tensor("blk.0.attn_q.weight")->format,
            lowbit::Format::Q8_0);
  EXPECT_EQ(plan.tensors.size(), 2u);
}

// The replaced file's permission bits carry over; a new file gets 0666 & ~umask.
TEST(OutputContract, ExistingModeIsPreserved) {
  TempDir dir;
  const fs::path out = dir / "secret.gguf";
  write_text(out, "old");
  ASSERT_EQ(::chmod(out.c_str(), 0600), 0);
  tiny_model().write(out);
  EXPECT_EQ(mode_of(out), 0600);
  ASSERT_EQ(::chmod(out.c_str(), 0640), 0);
  lowbit::SafetensorsWriter().write(out);
  EXPECT_EQ(mode_of(out), 0640);

  if (::geteuid() == 0) {  // root: the owner and group carry over too
    ASSERT_EQ(::chown(out.c_str(), 4242, 4343), 0);
    tiny_model().write(out);
    struct stat st {};
    ASSERT_EQ(::stat(out.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 4242u);
    EXPECT_EQ(st.st_gid, 4343u);
    EXPECT_EQ(st.st_mode & 07777, 0640u);
  }

  const mode_t mask = ::umask(027);
  tiny_model().write(dir / "fresh.gguf");
  ::umask(mask);
  EXPECT_EQ(mode_of(dir / "fresh.gguf"), 0640);
}

// The documented atomic-replace behaviour: the directory entry is replaced, so other
// hard links (and a symlink's target) keep the old contents.
TEST(OutputContract, HardLinksAndSymlinksKeepTheOldFile) {
  TempDir dir;
  const fs::path out = dir / "out.bin", other = dir / "other.bin", target = dir / "target.bin";
  write_text(out, "old");
  fs::create_hard_link(out, other);
  write_with(out, 8, [] {});
  EXPECT_EQ(read_all(out), "xxxxxxxx");
  EXPECT_EQ(read_all(other), "old");

  write_text(target, "target");
  fs::create_symlink("target.bin", dir / "link.bin");
  write_with(dir / "link.bin", 4, [] {});
  EXPECT_FALSE(fs::is_symlink(dir / "link.bin"));
  EXPECT_EQ(read_all(dir / "link.bin"), "xxxx");
  EXPECT_EQ(read_all(target), "target");
}

// A legal 255-byte name works: the temporary then gets a short name of its own.
TEST(OutputContract, LongestLegalNameWorks) {
  TempDir dir;
  const std::string name = std::string(250, 'm') + ".gguf";
  ASSERT_EQ(name.size(), 255u);
  lowbit::check_output_path(dir / name);
  tiny_model().write(dir / name);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{name});
  EXPECT_EQ(lowbit::GgufFile::open(dir / name).tensors().size(), 2u);

  // The temporary names, exactly: the long form when it fits, else the short one.
  const std::string pid = std::to_string(::getpid());
  EXPECT_EQ(lowbit::io_detail::temporary_name("a.gguf", 255, 7), "a.gguf.tmp." + pid + ".7");
  EXPECT_EQ(lowbit::io_detail::temporary_name(name, 255, 7), ".lowbit-" + pid + "-7.tmp");

  const std::string too_long = std::string(256, 'm');
  const std::string e = error_of([&] { tiny_model().write(dir / too_long); });
  EXPECT_NE(e.find("the file name is 256 bytes, longer than the file system's limit of 255"), std::string::npos) << e;
}

// Problems with the folder are found before any work.
TEST(OutputContract, FolderProblemsAreFoundFirst) {
  TempDir dir;
  std::string e = error_of([&] { lowbit::check_output_path(dir / "missing" / "out.gguf"); });
  EXPECT_NE(e.find("folder '" + (dir / "missing").string() + "' does not exist"), std::string::npos) << e;
  write_text(dir / "file", "x");
  e = error_of([&] { lowbit::check_output_path(dir / "file" / "out.gguf"); });
  EXPECT_NE(e.find("file"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { lowbit::check_output_path(dir.path() / ""); }).find("does not name a file"),
            std::string::npos);
  EXPECT_NE(error_of([] { lowbit::check_output_path(""); }).find("empty"), std::string::npos);
  if (::geteuid() != 0) {  // root may write anywhere
    fs::create_directory(dir / "ro");
    fs::permissions(dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    e = error_of([&] { lowbit::check_output_path(dir / "ro" / "out.gguf"); });
    EXPECT_NE(e.find("cannot create a file in folder '" + (dir / "ro").string() + "': Permission denied"),
              std::string::npos)
        << e;
    fs::permissions(dir / "ro", fs::perms::owner_all);
    EXPECT_TRUE(fs::is_empty(dir / "ro"));
  }
  lowbit::check_output_path(dir / "ok.gguf");  // leaves nothing behind
  std::vector<std::string> expected = {"file"};
  if (::geteuid() != 0) expected.push_back("ro");
  EXPECT_EQ(dir.entries(), expected);
}

// An error inside the write removes the temporary and keeps the old output.
TEST(OutputContract, AFailedWriteLeavesTheOldFile) {
  TempDir dir;
  const fs::path out = dir / "out.bin";
  write_text(out, "old");
  const std::string e = error_of([&] { write_with(out, 1 << 20, [] { throw lowbit::Error("emitter failed"); }); });
  EXPECT_EQ(e, "emitter failed");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.bin"});
  EXPECT_EQ(read_all(out), "old");
}

// ------------------------------------------------------------------ tensor names as file names

TEST(TensorFileName, EscapesSeparatorsDotsAndControlBytes) {
  using lowbit::tensor_file_name;
  EXPECT_EQ(tensor_file_name("blk.0.attn_q.weight", ".hess"), "blk.0.attn_q.weight.hess");
  EXPECT_EQ(tensor_file_name("model.layers.0.mlp.down_proj.weight"), "model.layers.0.mlp.down_proj.weight");
  EXPECT_EQ(tensor_file_name("../x", ".hess"), "%2E.%2Fx.hess");
  EXPECT_EQ(tensor_file_name("/abs/x", ".hess"), "%2Fabs%2Fx.hess");
  EXPECT_EQ(tensor_file_name(std::string("a\0b", 3)), "a%00b");
  EXPECT_EQ(tensor_file_name("a%2Fb"), "a%252Fb");
  EXPECT_EQ(tensor_file_name("a\\b\nc\x7f"), "a%5Cb%0Ac%7F");
  EXPECT_EQ(tensor_file_name("."), "%2E");
  EXPECT_EQ(tensor_file_name(".."), "%2E.");
  EXPECT_EQ(tensor_file_name(".hidden"), "%2Ehidden");
  EXPECT_EQ(tensor_file_name("ünï"), "ünï");  // UTF-8 bytes are kept
  EXPECT_NE(error_of([] { tensor_file_name(""); }).find("empty"), std::string::npos);
  EXPECT_NE(error_of([] { tensor_file_name(std::string(120, '/'), ".hess"); }).find("365 bytes"), std::string::npos);
  EXPECT_EQ(tensor_file_name(std::string(250, 'w'), ".hess").size(), 255u);
}

TEST(TensorFileName, RoundTripsAndStaysInsideTheFolder) {
  std::vector<std::string> names = {"blk.0.attn_q.weight", "../x", "/abs/x", "..", ".", "a/../../b", "%", "%%41",
                                    std::string("nul\0inside", 10), "back\\slash", "x/", "./y", "\x01\x1f\x7f"};
  uint64_t s = 12345;
  for (int n = 0; n < 200; ++n) {  // random byte strings
    std::string r;
    for (int i = 0; i < 1 + n % 20; ++i) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      r.push_back(static_cast<char>(s >> 56));
    }
    names.push_back(r);
  }
  const fs::path dir = "/some/dir";
  for (const std::string& name : names) {
    const std::string file = lowbit::tensor_file_name(name);
    EXPECT_EQ(file.find('/'), std::string::npos) << file;
    EXPECT_EQ(file.find('\0'), std::string::npos) << file;
    EXPECT_NE(file[0], '.') << file;
    EXPECT_EQ((dir / (file + ".hess")).lexically_normal().parent_path(), dir) << file;
    EXPECT_EQ(lowbit::tensor_name_from_file_name(file), name) << file;
  }
  for (const char* bad : {"%41", "%2e", "a/b", "%2", "%", "%zz", ".x", ""})
    EXPECT_FALSE(lowbit::tensor_name_from_file_name(bad).has_value()) << bad;
}

// hessians_from_directory reads "<dir>/<tensor_file_name(name)>.hess" and nothing else:
// a tensor named "../x" or "/abs/x" cannot reach a file outside the folder.
TEST(TensorFileName, HessiansStayInsideTheirFolder) {
  TempDir dir;
  const fs::path hess_dir = dir / "hessians";
  fs::create_directory(hess_dir);
  lowbit::HessianAccumulator h(4);
  const std::vector<float> x = {1, 2, 3, 4, 0, 1, 0, 1};
  h.add(lowbit::ConstMatrixView<float>(x.data(), 2, 4));
  h.save((dir / "x.hess").string());            // outside the folder: must not be found
  h.save((dir / "hessians" / "blk.0.attn_q.weight.hess").string());  // the existing layout keeps working
  const lowbit::HessianSource src = lowbit::hessians_from_directory(hess_dir);
  EXPECT_EQ(src.get("../x"), nullptr);
  EXPECT_EQ(src.get((dir / "x").string()), nullptr);
  EXPECT_EQ(src.get("/abs/x"), nullptr);
  EXPECT_NE(src.get("blk.0.attn_q.weight"), nullptr);
  EXPECT_EQ(src.describe("../x"), (hess_dir / "%2E.%2Fx.hess").string());
  EXPECT_EQ(fs::path(src.describe((dir / "x").string())).parent_path(), hess_dir);
  // A Hessian saved under the escaped name is found for the odd name.
  h.save((hess_dir / lowbit::tensor_file_name("../x", ".hess")).string());
  ASSERT_NE(src.get("../x"), nullptr);
  EXPECT_EQ(src.get("../x")->cols(), 4);
  // A directory where a Hessian should be is an Error naming it, not a crash.
  fs::create_directory(hess_dir / "blk.1.attn_q.weight.hess");
  EXPECT_NE(error_of([&] { src.get("blk.1.attn_q.weight"); }).find("is a directory"), std::string::npos);
}

}  // namespace
