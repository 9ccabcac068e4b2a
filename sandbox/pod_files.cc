#include "sandbox/pod_files.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/status.h"

namespace crius::sandbox {
namespace {

std::string ReadOr(const char* path, const std::string& fallback) {
  absl::StatusOr<std::string> text = ReadFile(path);
  return text.ok() ? *std::move(text) : fallback;
}

}  // namespace

absl::Status WritePodFiles(const std::string& dir, const PodFiles& f) {
  CRIUS_RETURN_IF_ERROR(WriteFileAtomic(absl::StrCat(dir, "/hostname"), absl::StrCat(f.hostname, "\n"), 0644));

  std::string hosts;
  if (f.host_network) {
    // A hostNetwork pod sees the node's names, as under containerd.
    hosts = ReadOr("/etc/hosts", "127.0.0.1\tlocalhost\n");
  } else {
    hosts = absl::StrCat(
        "# Kubernetes-managed hosts file (crius).\n"
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "fe00::0\tip6-mcastprefix\n"
        "fe00::1\tip6-allnodes\n"
        "fe00::2\tip6-allrouters\n");
  }
  CRIUS_RETURN_IF_ERROR(WriteFileAtomic(absl::StrCat(dir, "/hosts"), hosts, 0644));

  std::string resolv;
  if (f.has_dns) {
    for (const auto& s : f.dns.servers) absl::StrAppend(&resolv, "nameserver ", s, "\n");
    if (!f.dns.searches.empty()) absl::StrAppend(&resolv, "search ", absl::StrJoin(f.dns.searches, " "), "\n");
    if (!f.dns.options.empty()) absl::StrAppend(&resolv, "options ", absl::StrJoin(f.dns.options, " "), "\n");
  } else {
    resolv = ReadOr("/etc/resolv.conf", "");
  }
  return WriteFileAtomic(absl::StrCat(dir, "/resolv.conf"), resolv, 0644);
}

}  // namespace crius::sandbox
