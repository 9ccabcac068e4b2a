#include "image/reference.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace crius::image {
namespace {

using ::testing::HasSubstr;

const std::string kDigest = "sha256:" + std::string(64, 'a');

std::string Normal(absl::string_view text) {
  absl::StatusOr<Reference> r = ParseReference(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status();
  return r.ok() ? r->String() : "";
}

TEST(ReferenceTest, DockerHubDefaults) {
  EXPECT_EQ(Normal("busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(Normal("busybox:1.36"), "docker.io/library/busybox:1.36");
  EXPECT_EQ(Normal("library/busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(Normal("someone/tool"), "docker.io/someone/tool:latest");
  EXPECT_EQ(Normal("docker.io/busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(Normal("index.docker.io/library/busybox"), "docker.io/library/busybox:latest");
}

TEST(ReferenceTest, OtherRegistriesKeepTheirPath) {
  EXPECT_EQ(Normal("registry.k8s.io/pause:3.9"), "registry.k8s.io/pause:3.9");
  EXPECT_EQ(Normal("127.0.0.1:5000/busybox"), "127.0.0.1:5000/busybox:latest");
  EXPECT_EQ(Normal("localhost/a/b/c:t"), "localhost/a/b/c:t");
  EXPECT_EQ(Normal("[::1]:5000/x:y"), "[::1]:5000/x:y");
  EXPECT_EQ(Normal("gcr.io/k8s-staging/test__image.v2-x:v1.0_rc"),
            "gcr.io/k8s-staging/test__image.v2-x:v1.0_rc");
}

TEST(ReferenceTest, Digests) {
  absl::StatusOr<Reference> r = ParseReference("busybox@" + kDigest);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tag, "");
  EXPECT_EQ(r->digest, kDigest);
  EXPECT_EQ(r->String(), "docker.io/library/busybox@" + kDigest);
  EXPECT_EQ(Normal("127.0.0.1:5000/b:t@" + kDigest), "127.0.0.1:5000/b:t@" + kDigest);
  EXPECT_EQ(r->TagRef(), "");
}

TEST(ReferenceTest, BadReferencesSayWhy) {
  struct Case {
    std::string text, why;
  } cases[] = {
      {"", "is empty"},
      {"Busybox", "not a valid repository name component"},
      {"busybox:", "not a valid tag"},
      {"busybox:-x", "not a valid tag"},
      {"busybox@sha256:abc", "the digest"},
      {"busybox@md5:" + std::string(32, 'a'), "the digest"},
      {"a//b", "not a valid repository name component"},
      {"host:port/x", "not a valid registry host"},
      {":tag", "has no repository name"},
      {"foo/../bar", "not a valid repository name component"},
      {"a b", "not a valid"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Reference> r = ParseReference(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr(c.why)) << c.text;
    EXPECT_THAT(r.status().message(), HasSubstr("image reference \"" + c.text.substr(0, 64)));
  }
}

TEST(ReferenceTest, IsDigest) {
  EXPECT_TRUE(IsDigest(kDigest));
  EXPECT_FALSE(IsDigest("sha256:" + std::string(64, 'A')));
  EXPECT_FALSE(IsDigest("sha256:" + std::string(63, 'a')));
  EXPECT_FALSE(IsDigest(std::string(64, 'a')));
}

}  // namespace
}  // namespace crius::image
