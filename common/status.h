// absl::Status helpers: errors say what was being done, and keep the errno
// where a caller must branch on it.
#pragma once

#include "absl/strings/string_view.h"


#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace crius {

// The absl code that best describes an errno from a failed syscall.
absl::StatusCode ErrnoToCode(int err);

// "<what>: <strerror(err)>" with the code ErrnoToCode(err) and the errno kept
// as a payload (see ErrnoOf).
absl::Status ErrnoError(int err, absl::string_view what);

// The errno recorded by ErrnoError, or 0.
int ErrnoOf(const absl::Status& status);

// Bad input, InvalidArgument naming the field: "<field>: <why>".
absl::Status InvalidField(absl::string_view field, absl::string_view why);

// Wraps context outward: Annotate(s, "create cgroup x") turns
// "mkdir: EACCES" into "create cgroup x: mkdir: EACCES", same code.
absl::Status Annotate(const absl::Status& status, absl::string_view context);

}  // namespace crius

// Returns early with the status of `expr` when it is not OK.
#define CRIUS_RETURN_IF_ERROR(expr)                   \
  do {                                                \
    if (absl::Status _st = (expr); !_st.ok()) return _st; \
  } while (0)

#define CRIUS_CONCAT_INNER(a, b) a##b
#define CRIUS_CONCAT(a, b) CRIUS_CONCAT_INNER(a, b)
#define CRIUS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(*tmp)
// `CRIUS_ASSIGN_OR_RETURN(auto x, StatusOrExpr());`
#define CRIUS_ASSIGN_OR_RETURN(lhs, expr) \
  CRIUS_ASSIGN_OR_RETURN_IMPL(CRIUS_CONCAT(_statusor_, __LINE__), lhs, expr)
