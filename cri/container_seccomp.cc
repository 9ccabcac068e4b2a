// Which seccomp profile a container runs under, as containerd decides it,
// compiled here (criusd links libseccomp; the monitor only installs bytes).
#include <cstring>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"
#include "cri/container_security.h"
#include "sandbox/seccomp.h"

namespace crius::cri {
namespace {

absl::StatusOr<sandbox::SeccompProgram> Localhost(const std::string& path, const std::string& field,
                                                  const std::vector<int>& caps) {
  if (path.empty() || path[0] != '/') {
    return InvalidField(field, absl::StrCat("\"", path, "\" is not an absolute path"));
  }
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return InvalidField(field, absl::StrCat("profile \"", path, "\" cannot be read: ", strerror(ErrnoOf(text.status()))));
  }
  return sandbox::CompileProfile(*text, caps, absl::StrCat(field, " \"", path, "\""));
}

}  // namespace

absl::Status ApplySeccomp(const v1::ContainerConfig& config, crius::monitor::ContainerSpec* spec) {
  const v1::LinuxContainerSecurityContext& sc = config.linux().security_context();
  if (sc.privileged()) return absl::OkStatus();  // privileged runs unconfined, as under containerd
  std::vector<int> caps(spec->capabilities().begin(), spec->capabilities().end());
  const std::string field = "config.linux.security_context.seccomp";
  std::optional<absl::StatusOr<sandbox::SeccompProgram>> program;
  if (sc.has_seccomp()) {
    switch (sc.seccomp().profile_type()) {
      case v1::SecurityProfile::RuntimeDefault:
        program = sandbox::RuntimeDefaultProgram(caps);
        break;
      case v1::SecurityProfile::Unconfined:
        return absl::OkStatus();
      case v1::SecurityProfile::Localhost:
        program = Localhost(sc.seccomp().localhost_ref(), field + ".localhost_ref", caps);
        break;
      default:
        return InvalidField(field + ".profile_type", absl::StrCat(sc.seccomp().profile_type(), " is not a profile type"));
    }
  } else {
    // The path form kubelets before 1.22 sent; empty means unconfined.
    const std::string& path = sc.seccomp_profile_path();
    const std::string path_field = "config.linux.security_context.seccomp_profile_path";
    if (path.empty() || path == "unconfined") return absl::OkStatus();
    if (path == "runtime/default" || path == "docker/default") {
      program = sandbox::RuntimeDefaultProgram(caps);
    } else if (absl::StartsWith(path, "localhost/")) {
      program = Localhost(path.substr(strlen("localhost")), path_field, caps);
    } else {
      return InvalidField(path_field, absl::StrCat("\"", path, "\" is neither runtime/default, unconfined nor localhost/<path>"));
    }
  }
  if (!program->ok()) return program->status();
  spec->set_seccomp_bpf((*program)->bpf);
  spec->set_seccomp_log((*program)->log_flag);
  return absl::OkStatus();
}

}  // namespace crius::cri
