// A fresh directory under /tmp for one test, removed with everything in it
// when the test ends (whether it passed or not).
#pragma once

#include <stdlib.h>

#include <string>

#include <gtest/gtest.h>

#include "common/files.h"

namespace crius::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "crius-test") {
    std::string tmpl = "/tmp/" + prefix + ".XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
    EXPECT_FALSE(path_.empty()) << "mkdtemp " << tmpl;
  }
  ~TempDir() {
    if (!path_.empty()) {
      EXPECT_TRUE(RemoveTree(path_).ok()) << "remove " << path_;
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace crius::testing
