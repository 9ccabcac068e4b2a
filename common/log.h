// Levelled logging to stderr, one line per call, written with a single
// write(2) so lines from different threads never interleave.
#pragma once

#include "absl/strings/string_view.h"


#include "absl/strings/str_format.h"

namespace crius {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Parses "debug", "info", "warn" or "error".
bool ParseLogLevel(absl::string_view text, LogLevel* level);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
void LogLine(LogLevel level, absl::string_view message);

}  // namespace crius

#define CRIUS_LOG(level, ...)                                          \
  do {                                                                 \
    if (::crius::LogEnabled(::crius::LogLevel::level))                 \
      ::crius::LogLine(::crius::LogLevel::level, absl::StrFormat(__VA_ARGS__)); \
  } while (0)
#define LOG_DEBUG(...) CRIUS_LOG(kDebug, __VA_ARGS__)
#define LOG_INFO(...) CRIUS_LOG(kInfo, __VA_ARGS__)
#define LOG_WARN(...) CRIUS_LOG(kWarn, __VA_ARGS__)
#define LOG_ERROR(...) CRIUS_LOG(kError, __VA_ARGS__)
