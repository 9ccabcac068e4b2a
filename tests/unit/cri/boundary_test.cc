// CRI headers first: <signal.h> (pulled in by gtest) defines macros named
// like the CRI Signal enum's values.
#include "api.pb.h"
#include "cri/boundary.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace crius::cri {
namespace {

using ::testing::HasSubstr;

TEST(BoundaryTest, StatusCodesMapOneToOne) {
  EXPECT_EQ(ToGrpcStatus(absl::OkStatus()).error_code(), grpc::StatusCode::OK);
  grpc::Status st = ToGrpcStatus(absl::NotFoundError("pod x not found"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "pod x not found");
  EXPECT_EQ(ToGrpcStatus(absl::InvalidArgumentError("")).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ToGrpcStatus(absl::FailedPreconditionError("")).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ToGrpcStatus(absl::AlreadyExistsError("")).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(ToGrpcStatus(absl::UnimplementedError("")).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

TEST(BoundaryTest, DescribeRequestNamesIds) {
  runtime::v1::StopContainerRequest stop;
  stop.set_container_id("abc123");
  EXPECT_EQ(DescribeRequest(stop), "container_id=abc123");

  runtime::v1::CreateContainerRequest create;
  create.set_pod_sandbox_id("pod1");
  create.mutable_config()->mutable_metadata()->set_name("web");
  EXPECT_EQ(DescribeRequest(create), "pod_sandbox_id=pod1 name=web");

  EXPECT_EQ(DescribeRequest(runtime::v1::VersionRequest()), "");
}

TEST(BoundaryTest, ServeRunsTheHandlerAndMapsItsStatus) {
  runtime::v1::VersionRequest req;
  int calls = 0;
  grpc::Status st = Serve("Version", req, [&] {
    ++calls;
    return absl::FailedPreconditionError("container is running");
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace crius::cri
