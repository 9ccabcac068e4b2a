// SPDY/3.1 framing, as the Kubernetes streaming protocols use it (exec,
// attach and port-forward from kubelet and crictl): frames to and from
// bytes, and the zlib-compressed header blocks. No I/O here: the
// connection (stream/spdy_conn.h) feeds bytes in and writes frames out.
//
// Only what those clients use is modelled. Flow control is not: the Go
// clients (spdystream) neither send nor honour WINDOW_UPDATE, so a peer
// that waited for one would stall after the first 64 KiB.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crius::stream::spdy {

enum class Type : uint16_t {
  kData = 0,  // not a control frame
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

inline constexpr uint8_t kFlagFin = 0x01;
inline constexpr uint8_t kFlagUnidirectional = 0x02;

// RST_STREAM status codes.
inline constexpr uint32_t kProtocolError = 1;
inline constexpr uint32_t kRefusedStream = 3;
inline constexpr uint32_t kCancel = 5;
inline constexpr uint32_t kInternalError = 6;

// Header names are lower case on the wire; a name with several values has
// them joined by NUL.
using Headers = std::vector<std::pair<std::string, std::string>>;

// The value of `name`, or empty.
std::string HeaderValue(const Headers& headers, absl::string_view name);

struct Frame {
  Type type = Type::kData;
  uint8_t flags = 0;
  uint32_t stream_id = 0;  // data, SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS, WINDOW_UPDATE
  Headers headers;         // SYN_STREAM, SYN_REPLY, HEADERS
  std::string data;        // data frames
  uint32_t value = 0;      // RST_STREAM and GOAWAY status, PING id, WINDOW_UPDATE delta
  uint32_t last_stream_id = 0;  // GOAWAY
  bool fin() const { return (flags & kFlagFin) != 0; }
};

// One direction's header compression: a single zlib stream for the whole
// connection, primed with SPDY/3's dictionary, flushed after each block.
class HeaderCompressor {
 public:
  HeaderCompressor();
  ~HeaderCompressor();
  HeaderCompressor(const HeaderCompressor&) = delete;
  HeaderCompressor& operator=(const HeaderCompressor&) = delete;
  std::string Compress(const Headers& headers);

 private:
  z_stream z_{};
};

class HeaderDecompressor {
 public:
  HeaderDecompressor();
  ~HeaderDecompressor();
  HeaderDecompressor(const HeaderDecompressor&) = delete;
  HeaderDecompressor& operator=(const HeaderDecompressor&) = delete;
  absl::StatusOr<Headers> Decompress(absl::string_view block);

 private:
  z_stream z_{};
};

// Largest data frame payload this side sends; the client's are read whatever
// their size (24-bit lengths: at most 16 MiB).
inline constexpr size_t kMaxDataChunk = 32 * 1024;
// Largest decompressed header block accepted.
inline constexpr size_t kMaxHeaderBlock = 256 * 1024;

// Bytes in, frames out. An error means the connection is unusable (a
// malformed frame, a header block that does not inflate, another version).
class Reader {
 public:
  void Feed(absl::string_view bytes) { buffer_.append(bytes.data(), bytes.size()); }
  // The next whole frame, or nullopt until more bytes are fed.
  absl::StatusOr<std::optional<Frame>> Next();

 private:
  std::string buffer_;
  size_t offset_ = 0;
  HeaderDecompressor headers_;
};

// Frames to bytes. Frames with header blocks go through one compressor.
class Writer {
 public:
  std::string SynStream(uint32_t stream_id, const Headers& headers, uint8_t flags);
  std::string SynReply(uint32_t stream_id, const Headers& headers, uint8_t flags);
  static std::string Data(uint32_t stream_id, absl::string_view data, bool fin);
  static std::string RstStream(uint32_t stream_id, uint32_t status);
  static std::string Ping(uint32_t id);
  static std::string GoAway(uint32_t last_stream_id, uint32_t status);

 private:
  HeaderCompressor headers_;
};

// SPDY/3's header compression dictionary (1423 bytes).
const std::string& Dictionary();

}  // namespace crius::stream::spdy
