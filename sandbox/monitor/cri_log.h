// A container's log in the CRI format kubelet reads:
//   2026-11-23T12:00:00.123456789Z stdout F a whole line
//   2026-11-23T12:00:00.123456789Z stderr P the first 16 KiB of a longer line
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/unique_fd.h"

namespace crius::monitor {

class CriLog {
 public:
  // Opens (appending to) `path`; an empty path discards output.
  absl::Status Open(const std::string& path);
  // Reopens the same path (after kubelet rotated the file).
  absl::Status Reopen() { return Open(path_); }
  // Bytes read from a stream: whole lines are written at once, a tail
  // without a newline waits for the rest (or is written as partial once it
  // reaches kMaxLine).
  void Write(bool stderr_stream, absl::string_view data);
  // The stream ended: what is left is written as a last, full line.
  void Flush(bool stderr_stream);

  static constexpr size_t kMaxLine = 16 * 1024;

 private:
  void Emit(bool stderr_stream, char tag, absl::string_view line);

  std::string path_;
  UniqueFd fd_;
  std::string pending_[2];  // stdout, stderr
};

}  // namespace crius::monitor
