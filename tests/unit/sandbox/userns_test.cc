// ID mappings: their checks, lookups and the text the kernel and the monitor
// take. Making namespaces and idmapped mounts needs root and a kernel: the
// integration tests (test_userns.py) run those.
#include "sandbox/userns.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace crius::sandbox {
namespace {

using ::testing::HasSubstr;

TEST(IdRangesTest, KubeletsOneRangeIsFine) {
  EXPECT_EQ(CheckIdRanges({{0, 65536, 65536}}), "");
  EXPECT_EQ(CheckIdRanges({{0, 65536, 1000}, {1000, 200000, 64536}}), "");
}

TEST(IdRangesTest, EachProblemIsNamed) {
  EXPECT_THAT(CheckIdRanges({}), HasSubstr("no mapping"));
  EXPECT_THAT(CheckIdRanges({{0, 1, 0}}), HasSubstr("length 0"));
  EXPECT_THAT(CheckIdRanges({{0, 0xFFFFFFF0u, 65536}}), HasSubstr("past ID 4294967295"));
  EXPECT_THAT(CheckIdRanges({{0xFFFFFFF0u, 1, 65536}}), HasSubstr("past ID 4294967295"));
  EXPECT_THAT(CheckIdRanges({{0, 100000, 10}, {5, 200000, 10}}), HasSubstr("overlap in container IDs"));
  EXPECT_THAT(CheckIdRanges({{0, 100000, 10}, {10, 100005, 10}}), HasSubstr("overlap in host IDs"));
  std::vector<IdRange> many;
  for (uint32_t i = 0; i <= kMaxIdRanges; ++i) many.push_back({i, 100000 + i, 1});
  EXPECT_THAT(CheckIdRanges(many), HasSubstr("more than 340"));
}

TEST(IdRangesTest, HostIdFollowsTheRangeHoldingTheId) {
  std::vector<IdRange> r = {{0, 100000, 1000}, {1000, 500000, 10}};
  EXPECT_EQ(HostId(r, 0), 100000u);
  EXPECT_EQ(HostId(r, 999), 100999u);
  EXPECT_EQ(HostId(r, 1005), 500005u);
  EXPECT_EQ(HostId(r, 1010), std::nullopt);
}

TEST(IdRangesTest, MapTextAndFlagsRoundTrip) {
  std::vector<IdRange> r = {{0, 100000, 65536}, {70000, 4000000, 5}};
  EXPECT_EQ(MapText(r), "0 100000 65536\n70000 4000000 5\n");
  for (const IdRange& one : r) {
    auto parsed = ParseRangeFlag(RangeFlag(one));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, one);
  }
  for (const char* bad : {"", "1:2", "1:2:3:4", "a:2:3", "1:-2:3", "1:2:99999999999"}) {
    EXPECT_FALSE(ParseRangeFlag(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace crius::sandbox
