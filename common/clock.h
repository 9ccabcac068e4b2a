// Clock readings in nanoseconds.
#pragma once

#include <time.h>

#include <cstdint>

namespace crius {

// Wall-clock time since the epoch: for timestamps kept or shown (CRI's
// created_at, events).
inline int64_t NowNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Time that never jumps: for measuring intervals.
inline int64_t MonotonicNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

}  // namespace crius
