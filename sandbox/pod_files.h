// The files a pod's containers see as /etc/hostname, /etc/hosts and
// /etc/resolv.conf, written once per pod into its run directory.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace crius::sandbox {

struct DnsConfig {
  std::vector<std::string> servers;
  std::vector<std::string> searches;
  std::vector<std::string> options;
};

struct PodFiles {
  std::string hostname;
  bool host_network = false;
  // With no DNS config given, the node's resolv.conf is used.
  bool has_dns = false;
  DnsConfig dns;
};

// Writes dir/hostname, dir/hosts, dir/resolv.conf.
absl::Status WritePodFiles(const std::string& dir, const PodFiles& files);

}  // namespace crius::sandbox
