// Whether a fuzz input left a descriptor open: the lowest free descriptor
// is taken before the input runs and must be free again after it.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace crius::fuzz {

inline int LowestFreeFd() {
  int fd = ::dup(0);
  ::close(fd);
  return fd;
}

// Aborts, naming `target` and what the descriptor is, if descriptor
// `lowest`, free when the input began, is open now.
inline void CheckFdsClosed(const char* target, int lowest) {
  if (LowestFreeFd() == lowest) return;
  char what[256] = {};
  std::string link = "/proc/self/fd/" + std::to_string(lowest);
  (void)::readlink(link.c_str(), what, sizeof what - 1);
  std::fprintf(stderr, "%s: descriptor %d is %s: a received descriptor was left open\n", target, lowest,
               what);
  std::abort();
}

}  // namespace crius::fuzz
