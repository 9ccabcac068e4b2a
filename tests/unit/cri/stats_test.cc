// The pieces of stats that need no cgroup: the CPU rate, the writable
// layer's measures and /proc/<pid>/net/dev (the directory walk itself is
// common/files_test.cc's).
#include "cri/stats.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/unit/temp_dir.h"


namespace crius::cri {
namespace {

TEST(CpuRatesTest, TheRateIsCpuTimeOverWallTimeSinceTheLastSample) {
  CpuRates rates;
  EXPECT_EQ(rates.Sample("c", 1'000'000'000, 5'000'000'000), std::nullopt);  // first: no rate
  // Half a core for two seconds.
  EXPECT_EQ(rates.Sample("c", 3'000'000'000, 6'000'000'000), 500'000'000u);
  EXPECT_EQ(rates.Sample("other", 3'000'000'000, 1), std::nullopt);  // keys are separate
  // A counter that went back (a new cgroup under the key) restarts the rate.
  EXPECT_EQ(rates.Sample("c", 4'000'000'000, 10), std::nullopt);
  EXPECT_EQ(rates.Sample("c", 5'000'000'000, 2'000'000'010), 2'000'000'000u);
  // The same instant twice: no rate rather than a division by zero.
  EXPECT_EQ(rates.Sample("c", 5'000'000'000, 2'000'000'010), std::nullopt);
}

TEST(CpuRatesTest, SamplesOlderThanTenMinutesAreForgotten) {
  CpuRates rates;
  rates.Sample("old", 1'000'000'000, 1);
  int64_t later = 1'000'000'000 + int64_t{11} * 60 * 1'000'000'000;
  rates.Sample("new", later, 1);
  EXPECT_EQ(rates.Sample("old", later + 1'000'000'000, 1'000'000'001), std::nullopt);
}

TEST(LayerUsagesTest, AMeasureIsReusedWithItsOwnTimestampThenTakenAgain) {
  crius::testing::TempDir dir;
  LayerUsages usages;
  LayerUsages::Measure first = usages.Get("c", dir.path());
  EXPECT_GT(first.timestamp_ns, 0);
  std::ofstream(dir.path() + "/file") << std::string(8192, 'x');
  LayerUsages::Measure again = usages.Get("c", dir.path());
  EXPECT_EQ(again.timestamp_ns, first.timestamp_ns);  // the same measure, saying when
  EXPECT_EQ(again.usage.inodes, first.usage.inodes);
  LayerUsages::Measure other = usages.Get("d", dir.path());  // another container: its own
  EXPECT_EQ(other.usage.inodes, first.usage.inodes + 1);
  EXPECT_GE(other.usage.bytes, first.usage.bytes + 8192);
}

TEST(NetDevTest, ReadsBytesAndErrorsOfEachInterface) {
  const std::string text =
      "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls "
      "carrier compressed\n"
      "    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0 "
      "      0          0\n"
      "  eth0:   51234     120    3    0    0     0          0         0    98765     110    7    0    0     0 "
      "      0          0\n";
  std::vector<InterfaceCounters> ifs = ParseNetDev(text);
  ASSERT_EQ(ifs.size(), 2u);
  EXPECT_EQ(ifs[0].name, "lo");
  EXPECT_EQ(ifs[1].name, "eth0");
  EXPECT_EQ(ifs[1].rx_bytes, 51234u);
  EXPECT_EQ(ifs[1].rx_errors, 3u);
  EXPECT_EQ(ifs[1].tx_bytes, 98765u);
  EXPECT_EQ(ifs[1].tx_errors, 7u);
  EXPECT_TRUE(ParseNetDev("eth0: 1 2 3\n").empty());  // short lines are skipped
}

}  // namespace
}  // namespace crius::cri
