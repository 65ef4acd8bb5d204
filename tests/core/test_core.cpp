#include <gtest/gtest.h>

#include <cmath>

#include <atomic>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/lowbit.hpp"

namespace {

TEST(Error, IsARuntimeErrorWithTheMessage) {
  try {
    throw lowbit::Error("tensor blk.0.attn_q.weight: bad shape 3 x 5");
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "tensor blk.0.attn_q.weight: bad shape 3 x 5");
  }
}

TEST(MatrixView, IndexesRowsWithStride) {
  std::vector<int> buf(3 * 5);
  std::iota(buf.begin(), buf.end(), 0);
  lowbit::MatrixView<int> v(buf.data(), 3, 4, 5);  // 3 rows of 4 inside rows of 5
  EXPECT_EQ(v(2, 3), 13);
  EXPECT_EQ(v.row(1)[0], 5);
  EXPECT_EQ(v.size(), 12);
  lowbit::ConstMatrixView<int> c = v;
  EXPECT_EQ(c(1, 1), 6);
}

TEST(Parallel, CoversEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 0}) {
    lowbit::set_num_threads(threads);
    std::vector<std::atomic<int>> hits(10007);
    lowbit::parallel_for(10007, 3, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[i]++;
    });
    for (size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i].load(), 1) << "index " << i;
  }
  EXPECT_THROW(lowbit::set_num_threads(-1), lowbit::Error);
  lowbit::set_num_threads(0);
}

TEST(Parallel, ThreadCountIsHonoured) {
  lowbit::set_num_threads(1);
  EXPECT_EQ(lowbit::num_threads(), 1);
  lowbit::set_num_threads(0);
  EXPECT_GE(lowbit::num_threads(), 1);
}

TEST(Logging, QuietByDefaultAndAdjustable) {
  EXPECT_EQ(lowbit::log_level(), lowbit::LogLevel::off);
  std::vector<std::pair<lowbit::LogLevel, std::string>> seen;
  lowbit::set_log_sink([&](lowbit::LogLevel level, std::string_view msg) { seen.emplace_back(level, msg); });
  lowbit::log_message(lowbit::LogLevel::error, "not shown: the log is off");
  EXPECT_TRUE(seen.empty());

  lowbit::set_log_level(lowbit::LogLevel::info);
  EXPECT_EQ(lowbit::log_level(), lowbit::LogLevel::info);
  lowbit::log_message(lowbit::LogLevel::debug, "below the level");
  lowbit::log_message(lowbit::LogLevel::info, "an info line");
  lowbit::log_message(lowbit::LogLevel::warn, "a warning");
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], std::make_pair(lowbit::LogLevel::info, std::string("an info line")));
  EXPECT_EQ(seen[1], std::make_pair(lowbit::LogLevel::warn, std::string("a warning")));

  // Every level round-trips; off silences even errors.
  for (auto level : {lowbit::LogLevel::trace, lowbit::LogLevel::debug, lowbit::LogLevel::warn,
                     lowbit::LogLevel::error, lowbit::LogLevel::off}) {
    lowbit::set_log_level(level);
    EXPECT_EQ(lowbit::log_level(), level) << lowbit::to_string(level);
  }
  seen.clear();
  lowbit::log_message(lowbit::LogLevel::error, "off");
  EXPECT_TRUE(seen.empty());
  EXPECT_EQ(lowbit::to_string(lowbit::LogLevel::warn), "warning");
  lowbit::set_log_sink({});  // back to stderr
}

TEST(Synthetic, DeterministicAndShaped) {
  auto a = lowbit::synthetic_weights(8, 512, 5);
  auto b = lowbit::synthetic_weights(8, 512, 5);
  auto c = lowbit::synthetic_weights(8, 512, 6);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // Heavy tails: the largest magnitude is many standard deviations out.
  double ss = 0, mx = 0;
  for (float v : a) ss += double(v) * v, mx = std::max(mx, double(std::fabs(v)));
  EXPECT_GT(mx / std::sqrt(ss / a.size()), 5.0);
  auto imp = lowbit::synthetic_importance(512, 5);
  ASSERT_EQ(imp.size(), 512u);
  for (float v : imp) EXPECT_GT(v, 0.0f);
  EXPECT_THROW(lowbit::synthetic_weights(-1, 4, 0), lowbit::Error);
}

TEST(Metrics, RelativeRmseAgainstHandValues) {
  const float ref[4] = {3, 4, 0, 0};   // ||ref|| = 5
  const float app[4] = {3, 4, 0, 1};   // error norm 1
  EXPECT_DOUBLE_EQ(lowbit::relative_rmse({ref, 2, 2}, {app, 2, 2}), 0.2);
  const float imp[2] = {1, 4};  // column weights: num = 4*1, den = 9 + 4*16 = 73
  EXPECT_DOUBLE_EQ(lowbit::relative_rmse({ref, 2, 2}, {app, 2, 2}, imp), std::sqrt(4.0 / 73.0));
  EXPECT_THROW(lowbit::relative_rmse({ref, 2, 2}, {app, 1, 4}), lowbit::Error);
}

}  // namespace
