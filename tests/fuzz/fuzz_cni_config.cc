// A CNI network config from the node's conf dir (.conflist or .conf).
#include <cstddef>
#include <cstdint>

#include "network/cni_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  (void)crius::network::ParseNetwork(text, "10-fuzz.conflist");
  (void)crius::network::ParseNetwork(text, "10-fuzz.conf");
  return 0;
}
