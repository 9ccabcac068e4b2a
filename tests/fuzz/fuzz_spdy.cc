// The client's side of an upgraded SPDY/3.1 connection (exec, attach,
// port-forward), fed to the frame reader in pieces as a socket delivers it:
// the first byte says how big each piece is.
#include <cstddef>
#include <cstdint>

#include "stream/spdy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t piece = data[0] % 64 + 1;
  absl::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  crius::stream::spdy::Reader reader;
  while (true) {
    absl::StatusOr<std::optional<crius::stream::spdy::Frame>> frame = reader.Next();
    if (!frame.ok()) return 0;  // the connection would be closed
    if (frame->has_value()) continue;
    if (rest.empty()) return 0;
    size_t n = std::min(piece, rest.size());
    reader.Feed(rest.substr(0, n));
    rest.remove_prefix(n);
  }
}
