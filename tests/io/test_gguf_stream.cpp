// GgufStreamWriter: the bytes of GgufWriter::serialize (an independent writer, tested
// on its own) when written whole; gguf-split's names and keys when split, read back
// whole by GgufFile::open; resume keeps exactly the tensors whose checksum matches.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "lowbit/io/gguf.hpp"
#include "lowbit/io/gguf_stream.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace lowbit;

namespace {

struct Dir {
  fs::path path = fs::temp_directory_path() / ("lowbit_test_gguf_stream_" + std::to_string(::getpid()));
  Dir() { fs::create_directories(path); }
  ~Dir() { fs::remove_all(path); }
};

std::vector<std::byte> read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), {});
  std::vector<std::byte> b(c.size());
  std::memcpy(b.data(), c.data(), c.size());
  return b;
}

// Five F32 tensors of 7, 8, 9, 64 and 3 x 5 elements (odd sizes exercise the padding),
// each element distinct.
struct Model {
  std::vector<std::vector<std::byte>> data;
  std::vector<std::vector<int64_t>> shapes{{7}, {8}, {9}, {64}, {3, 5}};
  GgufWriter full, layout;
  Model() {
    for (GgufWriter* w : {&full, &layout}) {
      w->set("general.architecture", "llama");
      w->set("general.name", "stream test");
    }
    float v = 1;
    for (size_t i = 0; i < shapes.size(); ++i) {
      int64_t n = 1;
      for (int64_t d : shapes[i]) n *= d;
      std::vector<float> x(static_cast<size_t>(n));
      for (float& e : x) e = v++;
      std::vector<std::byte> b(x.size() * 4);
      std::memcpy(b.data(), x.data(), b.size());
      data.push_back(b);
      full.add_tensor("t" + std::to_string(i), shapes[i], Format::F32, b);
      layout.declare_tensor("t" + std::to_string(i), shapes[i], Format::F32);
    }
  }
};

TEST(GgufStream, WholeFileEqualsSerialize) {
  Dir d;
  Model m;
  const fs::path out = d.path / "m.gguf";
  GgufStreamWriter w(m.layout, out);
  EXPECT_TRUE(fs::exists(out.string() + ".partial"));
  EXPECT_FALSE(fs::exists(out));
  for (const auto& b : m.data) w.write(b);
  EXPECT_EQ(w.finish(), std::vector<fs::path>{out});
  EXPECT_EQ(read_all(out), m.full.serialize());
  EXPECT_FALSE(fs::exists(out.string() + ".partial"));
  EXPECT_FALSE(fs::exists(out.string() + ".partial-journal"));
  // A layout with declared tensors cannot be written whole.
  EXPECT_NE(test::error_of([&] { (void)m.layout.serialize(); }).find("declared"), std::string::npos);
}

TEST(GgufStream, WrongSizeAndEarlyFinishAreErrorsAndLeaveNothing) {
  Dir d;
  Model m;
  const fs::path out = d.path / "m.gguf";
  {
    GgufStreamWriter w(m.layout, out);
    EXPECT_NE(test::error_of([&] { w.write(m.data[1]); }).find("takes 28 bytes, 32 given"), std::string::npos);
    w.write(m.data[0]);
    EXPECT_NE(test::error_of([&] { w.finish(); }).find("after 1 of 5"), std::string::npos);
  }
  EXPECT_TRUE(fs::is_empty(d.path));  // destroyed unfinished: partial and journal removed
}

TEST(GgufStream, FileSizeLimitIsAnErrorAndLeavesNothing) {
  GTEST_FLAG_SET(death_test_style, "fast");
  Dir d;
  const fs::path out = d.path / "big.gguf";
  const auto child = [&] {
    struct rlimit lim {65536, 65536};
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) std::_Exit(10);
    ::signal(SIGXFSZ, SIG_DFL);  // the default would kill the process; the writer must prevent that
    GgufWriter layout;
    layout.declare_tensor("t", {1 << 18}, Format::F32);
    try {
      GgufStreamWriter w(layout, out);
      w.write(std::vector<std::byte>(size_t{1} << 20));
      w.finish();
    } catch (const Error& e) {
      std::fprintf(stderr, "%s\n", e.what());
      std::_Exit(fs::is_empty(d.path) ? 0 : 12);
    }
    std::_Exit(11);
  };
  EXPECT_EXIT(child(), ::testing::ExitedWithCode(0),
              "GGUF .*big\\.gguf.*the file would exceed the file-size limit \\(RLIMIT_FSIZE, `ulimit -f`\\) of 65536 bytes");
}

TEST(GgufStream, SplitFollowsGgufSplitAndReadsBackWhole) {
  Dir d;
  Model m;
  GgufStreamOptions o;
  o.split.max_tensors = 2;
  GgufStreamWriter w(m.layout, d.path / "m.gguf", o);
  for (const auto& b : m.data) w.write(b);
  const std::vector<fs::path> parts = w.finish();
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0], d.path / "m-00001-of-00003.gguf");
  EXPECT_EQ(parts[2], d.path / "m-00003-of-00003.gguf");
  // Each part on its own: gguf-split's keys; metadata only in the first.
  const GgufFile p1 = GgufFile::open(parts[1]);
  ASSERT_EQ(p1.tensors().size(), 2u);
  EXPECT_EQ(p1.tensors()[0].name, "t2");
  EXPECT_EQ(p1.at("split.no"), GgufValue(uint16_t{1}));
  EXPECT_EQ(p1.at("split.count"), GgufValue(uint16_t{3}));
  EXPECT_EQ(p1.at("split.tensors.count"), GgufValue(int32_t{5}));
  EXPECT_EQ(p1.find("general.name"), nullptr);
  // The first part opens the whole model.
  const GgufFile all = GgufFile::open(parts[0]);
  EXPECT_EQ(all.at("general.name").as_string(), "stream test");
  EXPECT_EQ(all.at("split.no"), GgufValue(uint16_t{0}));
  ASSERT_EQ(all.tensors().size(), 5u);
  EXPECT_EQ(all.paths(), parts);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(all.tensors()[i].name, "t" + std::to_string(i));
    EXPECT_EQ(all.tensors()[i].shard, i / 2);
    const auto got = all.data(all.tensors()[i]);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), m.data[i].begin(), m.data[i].end())) << i;
  }
  // A missing part is an error naming it.
  fs::remove(parts[2]);
  EXPECT_NE(test::error_of([&] { GgufFile::open(parts[0]); }).find("m-00003-of-00003.gguf"), std::string::npos);
}

TEST(GgufStream, SplitBySizeCountsPaddedTensorData) {
  Dir d;
  Model m;
  GgufStreamOptions o;
  // Padded sizes 32, 32, 64, 256, 64: a 100-byte limit gives {t0,t1}, {t2}, {t3}, {t4}.
  o.split.max_bytes = 100;
  GgufStreamWriter w(m.layout, d.path / "m", o);
  for (const auto& b : m.data) w.write(b);
  const auto parts = w.finish();
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[0], d.path / "m-00001-of-00004.gguf");
  EXPECT_EQ(GgufFile::open(parts[0]).tensors().size(), 5u);
  EXPECT_EQ(GgufFile::open(parts[1]).tensors().size(), 1u);
  EXPECT_EQ(parse_split_size("1.5G"), 1500000000u);
  EXPECT_EQ(parse_split_size("300M"), 300000000u);
  EXPECT_EQ(parse_split_size("4096"), 4096u);
  for (const char* bad : {"", "G", "-1M", "1.5X", "0"}) EXPECT_NE(test::error_of([&] { parse_split_size(bad); }), "") << bad;
}

TEST(GgufStream, ResumeKeepsVerifiedTensorsAndGivesTheSameBytes) {
  Dir d;
  Model m;
  const fs::path out = d.path / "m.gguf";
  GgufStreamOptions o;
  o.resume_key = "inputs A";
  {
    GgufStreamWriter w(m.layout, out, o);
    for (size_t i = 0; i < 4; ++i) w.write(m.data[i]);
    w.keep_partial();  // as if killed here
  }
  ASSERT_TRUE(fs::exists(out.string() + ".partial"));
  // Corrupt tensor 2's bytes in the partial file: resume keeps t0, t1 only.
  {
    const GgufFile probe = GgufFile::open(d.path / "m.gguf.partial");
    std::fstream f(out.string() + ".partial", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(probe.tensors()[2].file_offset));
    f.put('\x55');
  }
  o.resume = true;
  {
    GgufStreamWriter w(m.layout, out, o);
    EXPECT_EQ(w.resumed(), 2u);
    EXPECT_EQ(w.next(), 2u);
    for (size_t i = 2; i < 5; ++i) w.write(m.data[i]);
    w.finish();
  }
  EXPECT_EQ(read_all(out), m.full.serialize());
  // Another resume key (other inputs): nothing is taken over.
  {
    GgufStreamOptions other = o;
    other.resume = false;
    GgufStreamWriter w(m.layout, out, other);
    w.write(m.data[0]);
    w.keep_partial();
  }
  o.resume_key = "inputs B";
  GgufStreamWriter w(m.layout, out, o);
  EXPECT_EQ(w.resumed(), 0u);
}

}  // namespace
