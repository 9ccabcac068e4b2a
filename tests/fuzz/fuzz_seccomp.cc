// Localhost seccomp profiles (OCI or moby JSON), compiled to BPF as for a
// container with no capabilities and with CAP_SYS_ADMIN.
#include <linux/capability.h>

#include <cstddef>
#include <cstdint>

#include "sandbox/seccomp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view json(reinterpret_cast<const char*>(data), size);
  (void)crius::sandbox::CompileProfile(json, {}, "profile");
  (void)crius::sandbox::CompileProfile(json, {CAP_SYS_ADMIN}, "profile");
  return 0;
}
