#include "metrics/process.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace crius::metrics {
namespace {

namespace fs = std::filesystem;

// name -> value of every family Collect() returned.
std::map<std::string, double> Values(const ProcessCollector& c) {
  std::map<std::string, double> out;
  for (const auto& f : c.Collect()) {
    EXPECT_EQ(f.metric.size(), 1u) << f.name;
    out[f.name] = f.type == prometheus::MetricType::Counter ? f.metric[0].counter.value
                                                            : f.metric[0].gauge.value;
  }
  return out;
}

class FakeProc : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/crius-proc-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ / "self" / "fd");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& rel, const std::string& text) {
    std::ofstream(dir_ / rel) << text;
  }
  fs::path dir_;
};

// A stat line with a comm that holds spaces and a ')'; fields from 3 on:
// state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
// utime(14) stime(15) cutime cstime priority nice num_threads(20)
// itrealvalue starttime(22) vsize rss(24) ...
constexpr char kStat[] =
    "4242 (crius d) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 "
    "250 150 0 0 20 0 7 0 12345 100000000 3000 18446744073709551615\n";

TEST_F(FakeProc, ReadsEveryValueFromProcfs) {
  Write("self/stat", kStat);
  Write("stat", "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n");
  Write("self/limits",
        "Limit                     Soft Limit           Hard Limit           Units\n"
        "Max open files            1048576              1048576              files\n");
  for (const char* fd : {"0", "1", "2", "7"}) Write(std::string("self/fd/") + fd, "");
  double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  double page = static_cast<double>(::sysconf(_SC_PAGESIZE));

  auto v = Values(ProcessCollector(dir_.string()));
  EXPECT_DOUBLE_EQ(v["crius_process_resident_memory_bytes"], 3000 * page);
  EXPECT_DOUBLE_EQ(v["crius_process_threads"], 7);
  EXPECT_DOUBLE_EQ(v["crius_process_start_time_seconds"], 1700000000 + 12345 / ticks);
  EXPECT_DOUBLE_EQ(v["crius_process_cpu_seconds_total"], 400 / ticks);
  EXPECT_DOUBLE_EQ(v["crius_process_open_fds"], 4);
  EXPECT_DOUBLE_EQ(v["crius_process_max_fds"], 1048576);
}

TEST_F(FakeProc, LeavesOutWhatCannotBeRead) {
  // No self/stat, no stat, no limits: only the fd count can be reported.
  Write("self/fd/0", "");
  auto v = Values(ProcessCollector(dir_.string()));
  EXPECT_EQ(v.size(), 1u);
  EXPECT_DOUBLE_EQ(v["crius_process_open_fds"], 1);
}

TEST_F(FakeProc, UnlimitedFdsAreNotReportedAsANumber) {
  Write("self/limits", "Max open files            unlimited            unlimited            files\n");
  auto v = Values(ProcessCollector(dir_.string()));
  EXPECT_EQ(v.count("crius_process_max_fds"), 0u);
}

TEST(ProcessCollectorTest, RealProcIsPlausible) {
  auto v = Values(ProcessCollector());
  EXPECT_GT(v["crius_process_resident_memory_bytes"], 1 << 20);
  EXPECT_GE(v["crius_process_threads"], 1);
  EXPECT_GE(v["crius_process_open_fds"], 3);  // stdin, stdout, stderr
  double now = static_cast<double>(::time(nullptr));
  EXPECT_LE(v["crius_process_start_time_seconds"], now + 1);
  EXPECT_GT(v["crius_process_start_time_seconds"], now - 3600);
}

TEST(ProcessCollectorTest, OpenFdsDoesNotCountItsOwnListing) {
  double before = Values(ProcessCollector())["crius_process_open_fds"];
  int fd = ::dup(0);
  ASSERT_GE(fd, 0);
  double after = Values(ProcessCollector())["crius_process_open_fds"];
  ::close(fd);
  EXPECT_EQ(after, before + 1);
  // Count the real table another way: every fd that fcntl accepts.
  int open = 0;
  for (int i = 0; i < 1024; ++i) open += ::fcntl(i, F_GETFD) != -1;
  EXPECT_EQ(before, open);
}

}  // namespace
}  // namespace crius::metrics
