#include "common/status.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace crius {
namespace {

TEST(StatusTest, ErrnoErrorKeepsErrnoAndSaysWhat) {
  absl::Status st = ErrnoError(ENOENT, "open /x");
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "open /x: No such file or directory");
  EXPECT_EQ(ErrnoOf(st), ENOENT);
}

TEST(StatusTest, AnnotateWrapsOutwardAndKeepsCodeAndErrno) {
  absl::Status st = Annotate(ErrnoError(EACCES, "mkdir"), "create cgroup /sys/fs/cgroup/x");
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(st.message(), "create cgroup /sys/fs/cgroup/x: mkdir: Permission denied");
  EXPECT_EQ(ErrnoOf(st), EACCES);
  EXPECT_TRUE(Annotate(absl::OkStatus(), "x").ok());
}

TEST(StatusTest, ErrnoOfPlainStatusIsZero) { EXPECT_EQ(ErrnoOf(absl::InternalError("x")), 0); }

}  // namespace
}  // namespace crius
