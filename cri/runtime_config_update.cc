#include <arpa/inet.h>

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cri/handlers.h"

namespace crius::cri {
namespace {

// "10.244.1.0/24" or "fd00::/64".
bool IsCidr(absl::string_view text) {
  std::pair<std::string, std::string> parts = absl::StrSplit(text, absl::MaxSplits('/', 1));
  int bits = 0;
  if (parts.second.empty() || !absl::SimpleAtoi(parts.second, &bits) || bits < 0) return false;
  unsigned char addr[16];
  if (inet_pton(AF_INET, parts.first.c_str(), addr) == 1) return bits <= 32;
  if (inet_pton(AF_INET6, parts.first.c_str(), addr) == 1) return bits <= 128;
  return false;
}

}  // namespace

absl::Status RuntimeConfigUpdate(Runtime& rt, const v1::UpdateRuntimeConfigRequest& req,
                                 v1::UpdateRuntimeConfigResponse*) {
  const std::string& cidr = req.runtime_config().network_config().pod_cidr();
  // An empty CIDR means "no change" (CRI: runtimes should omit it).
  if (cidr.empty()) return absl::OkStatus();
  // Dual-stack nodes send "v4cidr,v6cidr".
  for (absl::string_view one : absl::StrSplit(cidr, ',')) {
    if (!IsCidr(one)) {
      return absl::InvalidArgumentError(
          absl::StrCat("runtime_config.network_config.pod_cidr: \"", one,
                       "\" is not an IPv4 or IPv6 CIDR (address/prefix)"));
    }
  }
  return rt.SetPodCidr(cidr);
}

}  // namespace crius::cri
