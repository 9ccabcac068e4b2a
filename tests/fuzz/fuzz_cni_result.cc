// What a CNI plugin prints on ADD: its result is read for the pod's
// addresses and handed to the next plugin of the list as prevResult.
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "network/cni.h"
#include "network/cni_config.h"

namespace {

const crius::network::CniNetwork& Network() {
  static const crius::network::CniNetwork* net = [] {
    absl::StatusOr<crius::network::CniNetwork> parsed = crius::network::ParseNetwork(
        R"({"cniVersion": "1.0.0", "name": "fuzz", "plugins": [{"type": "bridge"},
            {"type": "portmap", "capabilities": {"portMappings": true}}]})",
        "10-fuzz.conflist");
    if (!parsed.ok()) __builtin_trap();
    return new crius::network::CniNetwork(*parsed);
  }();
  return *net;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json result = nlohmann::json::parse(data, data + size, nullptr, false);
  if (!result.is_object()) return 0;  // refused as the daemon refuses it
  for (const char* ifname : {"eth0", ""}) {
    (void)crius::network::SandboxAddresses(result, ifname);
    (void)crius::network::SandboxIps(result, ifname);
  }
  nlohmann::json caps = {{"portMappings", nlohmann::json::array()}};
  (void)crius::network::PluginConfig(Network(), 1, caps, result).dump();
  if (auto v = result.find("cniVersion"); v != result.end() && v->is_string()) {
    (void)crius::network::CniVersionAtLeast(v->get<std::string>(), 0, 4);
  }
  return 0;
}
