#include "sandbox/monitor/cri_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace crius::monitor {

absl::Status CriLog::Open(const std::string& path) {
  path_ = path;
  if (path.empty()) {
    fd_.reset();
    return absl::OkStatus();
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return ErrnoError(errno, absl::StrCat("open log ", path));
  fd_.reset(fd);
  return absl::OkStatus();
}

void CriLog::Emit(bool stderr_stream, char tag, absl::string_view line) {
  if (!fd_) return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char stamp[48];
  int n = std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ %s %c ",
                        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                        tm.tm_sec, ts.tv_nsec, stderr_stream ? "stderr" : "stdout", tag);
  std::string out;
  out.reserve(static_cast<size_t>(n) + line.size() + 1);
  out.append(stamp, static_cast<size_t>(n)).append(line.data(), line.size()).push_back('\n');
  // O_APPEND and one write per line: lines never interleave. A line the
  // disk has no room for is dropped whole: the part a short write left is cut
  // off again, so the file stays parseable once space returns.
  ssize_t written = ::write(fd_.get(), out.data(), out.size());
  struct stat st;
  if (written > 0 && static_cast<size_t>(written) < out.size() && ::fstat(fd_.get(), &st) == 0) {
    (void)::ftruncate(fd_.get(), st.st_size - written);
  }
}

void CriLog::Write(bool stderr_stream, absl::string_view data) {
  std::string& pending = pending_[stderr_stream ? 1 : 0];
  while (!data.empty()) {
    size_t nl = data.find('\n');
    if (nl == absl::string_view::npos) {
      pending.append(data.data(), data.size());
      while (pending.size() >= kMaxLine) {
        Emit(stderr_stream, 'P', absl::string_view(pending).substr(0, kMaxLine));
        pending.erase(0, kMaxLine);
      }
      return;
    }
    pending.append(data.data(), nl);
    data.remove_prefix(nl + 1);
    size_t off = 0;
    while (pending.size() - off > kMaxLine) {
      Emit(stderr_stream, 'P', absl::string_view(pending).substr(off, kMaxLine));
      off += kMaxLine;
    }
    Emit(stderr_stream, 'F', absl::string_view(pending).substr(off));
    pending.clear();
  }
}

void CriLog::Flush(bool stderr_stream) {
  std::string& pending = pending_[stderr_stream ? 1 : 0];
  if (!pending.empty()) Emit(stderr_stream, 'F', pending);
  pending.clear();
}

}  // namespace crius::monitor
