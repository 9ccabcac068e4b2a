// criusd's TOML config file: parsed, then validated as at start.
#include <cstddef>
#include <cstdint>

#include "common/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<crius::Config> config = crius::ParseConfig(text, "fuzz.toml");
  if (config.ok()) (void)crius::ValidateConfig(*config);
  return 0;
}
