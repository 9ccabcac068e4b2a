#include "stream/spdy.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace crius::stream::spdy {
namespace {

constexpr uint16_t kVersion = 3;
constexpr size_t kFrameHeader = 8;

void Put32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out->append(b, 4);
}

uint32_t Get32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

// A control frame: version and type, flags, 24-bit length, payload.
std::string Control(Type type, uint8_t flags, const std::string& payload) {
  std::string out;
  out.reserve(kFrameHeader + payload.size());
  uint16_t t = static_cast<uint16_t>(type);
  char head[8] = {static_cast<char>(0x80 | (kVersion >> 8)), static_cast<char>(kVersion & 0xff),
                  static_cast<char>(t >> 8), static_cast<char>(t), static_cast<char>(flags),
                  static_cast<char>(payload.size() >> 16), static_cast<char>(payload.size() >> 8),
                  static_cast<char>(payload.size())};
  out.append(head, 8);
  out += payload;
  return out;
}

std::string EncodeBlock(const Headers& headers) {
  std::string out;
  Put32(&out, static_cast<uint32_t>(headers.size()));
  for (const auto& [name, value] : headers) {
    Put32(&out, static_cast<uint32_t>(name.size()));
    out += name;
    Put32(&out, static_cast<uint32_t>(value.size()));
    out += value;
  }
  return out;
}

absl::StatusOr<Headers> DecodeBlock(absl::string_view block) {
  auto need = [&](size_t n) { return block.size() >= n; };
  if (!need(4)) return absl::InvalidArgumentError("header block: truncated count");
  uint32_t count = Get32(block.data());
  block.remove_prefix(4);
  Headers out;
  for (uint32_t i = 0; i < count; ++i) {
    std::string kv[2];
    for (std::string& s : kv) {
      if (!need(4)) return absl::InvalidArgumentError("header block: truncated length");
      uint32_t len = Get32(block.data());
      block.remove_prefix(4);
      if (!need(len)) return absl::InvalidArgumentError("header block: truncated string");
      s.assign(block.data(), len);
      block.remove_prefix(len);
    }
    if (kv[0].empty()) return absl::InvalidArgumentError("header block: empty header name");
    out.emplace_back(std::move(kv[0]), std::move(kv[1]));
  }
  return out;
}

}  // namespace

const std::string& Dictionary() {
  // The SPDY/3 dictionary: common header names and values, each with a
  // 32-bit big-endian length, then a run of status lines, dates and types.
  static const std::string dict = [] {
    static const char* const kWords[] = {
        "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
        "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
        "content-base", "content-encoding", "content-language", "content-length", "content-location",
        "content-md5", "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host",
        "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified",
        "location", "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
        "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via",
        "warning", "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url",
        "public", "set-cookie", "keep-alive", "origin"};
    std::string d;
    for (const char* w : kWords) {
      Put32(&d, static_cast<uint32_t>(std::strlen(w)));
      d += w;
    }
    d += "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
         "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
         "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
         "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
         "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
         "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
         "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
    return d;
  }();
  return dict;
}

std::string HeaderValue(const Headers& headers, absl::string_view name) {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return "";
}

HeaderCompressor::HeaderCompressor() {
  deflateInit(&z_, Z_DEFAULT_COMPRESSION);
  const std::string& d = Dictionary();
  deflateSetDictionary(&z_, reinterpret_cast<const Bytef*>(d.data()), static_cast<uInt>(d.size()));
}

HeaderCompressor::~HeaderCompressor() { deflateEnd(&z_); }

std::string HeaderCompressor::Compress(const Headers& headers) {
  std::string in = EncodeBlock(headers);
  std::string out;
  z_.next_in = reinterpret_cast<Bytef*>(in.data());
  z_.avail_in = static_cast<uInt>(in.size());
  char buf[4096];
  do {
    z_.next_out = reinterpret_cast<Bytef*>(buf);
    z_.avail_out = sizeof buf;
    deflate(&z_, Z_SYNC_FLUSH);
    out.append(buf, sizeof buf - z_.avail_out);
  } while (z_.avail_out == 0);
  return out;
}

HeaderDecompressor::HeaderDecompressor() { inflateInit(&z_); }

HeaderDecompressor::~HeaderDecompressor() { inflateEnd(&z_); }

absl::StatusOr<Headers> HeaderDecompressor::Decompress(absl::string_view block) {
  std::string out;
  z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
  z_.avail_in = static_cast<uInt>(block.size());
  char buf[4096];
  for (;;) {
    z_.next_out = reinterpret_cast<Bytef*>(buf);
    z_.avail_out = sizeof buf;
    int rc = inflate(&z_, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      const std::string& d = Dictionary();
      if (inflateSetDictionary(&z_, reinterpret_cast<const Bytef*>(d.data()), static_cast<uInt>(d.size())) !=
          Z_OK) {
        return absl::InvalidArgumentError("header block: compressed with another dictionary");
      }
      continue;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END) {
      return absl::InvalidArgumentError(absl::StrCat("header block: inflate: ", z_.msg ? z_.msg : "error"));
    }
    out.append(buf, sizeof buf - z_.avail_out);
    if (out.size() > kMaxHeaderBlock) return absl::InvalidArgumentError("header block: too large");
    // Done when all input is taken and the output did not fill the buffer.
    if ((z_.avail_in == 0 && z_.avail_out != 0) || rc != Z_OK) break;
  }
  return DecodeBlock(out);
}

absl::StatusOr<std::optional<Frame>> Reader::Next() {
  absl::string_view rest(buffer_);
  rest.remove_prefix(offset_);
  if (rest.size() < kFrameHeader) return std::nullopt;
  const auto* u = reinterpret_cast<const unsigned char*>(rest.data());
  size_t length = (size_t{u[5]} << 16) | (size_t{u[6]} << 8) | u[7];
  if (rest.size() < kFrameHeader + length) return std::nullopt;
  absl::string_view payload = rest.substr(kFrameHeader, length);
  offset_ += kFrameHeader + length;
  if (offset_ > 65536 && offset_ * 2 > buffer_.size()) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }

  Frame f;
  f.flags = u[4];
  if ((u[0] & 0x80) == 0) {
    f.type = Type::kData;
    f.stream_id = Get32(reinterpret_cast<const char*>(u)) & 0x7fffffff;
    f.data.assign(payload.data(), payload.size());
    return f;
  }
  uint16_t version = static_cast<uint16_t>(((u[0] & 0x7f) << 8) | u[1]);
  if (version != kVersion) return absl::InvalidArgumentError(absl::StrCat("SPDY version ", version, ", not 3"));
  f.type = static_cast<Type>((u[2] << 8) | u[3]);
  auto need = [&](size_t n) -> absl::Status {
    if (payload.size() < n) {
      return absl::InvalidArgumentError(absl::StrCat("SPDY control frame ", static_cast<int>(f.type), ": ",
                                                     payload.size(), " bytes, needs ", n));
    }
    return absl::OkStatus();
  };
  switch (f.type) {
    case Type::kSynStream: {
      if (absl::Status st = need(10); !st.ok()) return st;
      f.stream_id = Get32(payload.data()) & 0x7fffffff;
      absl::StatusOr<Headers> h = headers_.Decompress(payload.substr(10));
      if (!h.ok()) return h.status();
      f.headers = std::move(*h);
      break;
    }
    case Type::kSynReply:
    case Type::kHeaders: {
      if (absl::Status st = need(4); !st.ok()) return st;
      f.stream_id = Get32(payload.data()) & 0x7fffffff;
      absl::StatusOr<Headers> h = headers_.Decompress(payload.substr(4));
      if (!h.ok()) return h.status();
      f.headers = std::move(*h);
      break;
    }
    case Type::kRstStream:
    case Type::kWindowUpdate:
      if (absl::Status st = need(8); !st.ok()) return st;
      f.stream_id = Get32(payload.data()) & 0x7fffffff;
      f.value = Get32(payload.data() + 4);
      break;
    case Type::kPing:
      if (absl::Status st = need(4); !st.ok()) return st;
      f.value = Get32(payload.data());
      break;
    case Type::kGoAway:
      if (absl::Status st = need(8); !st.ok()) return st;
      f.last_stream_id = Get32(payload.data()) & 0x7fffffff;
      f.value = Get32(payload.data() + 4);
      break;
    default:  // SETTINGS and unknown types carry nothing we act on
      break;
  }
  return f;
}

std::string Writer::SynStream(uint32_t stream_id, const Headers& headers, uint8_t flags) {
  std::string p;
  Put32(&p, stream_id & 0x7fffffff);
  Put32(&p, 0);            // associated stream
  p.append(2, '\0');       // priority, slot
  p += headers_.Compress(headers);
  return Control(Type::kSynStream, flags, p);
}

std::string Writer::SynReply(uint32_t stream_id, const Headers& headers, uint8_t flags) {
  std::string p;
  Put32(&p, stream_id & 0x7fffffff);
  p += headers_.Compress(headers);
  return Control(Type::kSynReply, flags, p);
}

std::string Writer::Data(uint32_t stream_id, absl::string_view data, bool fin) {
  std::string out;
  out.reserve(kFrameHeader + data.size());
  Put32(&out, stream_id & 0x7fffffff);
  char rest[4] = {static_cast<char>(fin ? kFlagFin : 0), static_cast<char>(data.size() >> 16),
                  static_cast<char>(data.size() >> 8), static_cast<char>(data.size())};
  out.append(rest, 4);
  out.append(data.data(), data.size());
  return out;
}

std::string Writer::RstStream(uint32_t stream_id, uint32_t status) {
  std::string p;
  Put32(&p, stream_id & 0x7fffffff);
  Put32(&p, status);
  return Control(Type::kRstStream, 0, p);
}

std::string Writer::Ping(uint32_t id) {
  std::string p;
  Put32(&p, id);
  return Control(Type::kPing, 0, p);
}

std::string Writer::GoAway(uint32_t last_stream_id, uint32_t status) {
  std::string p;
  Put32(&p, last_stream_id & 0x7fffffff);
  Put32(&p, status);
  return Control(Type::kGoAway, 0, p);
}

}  // namespace crius::stream::spdy
