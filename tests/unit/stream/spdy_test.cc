#include "stream/spdy.h"

#include <zlib.h>

#include <gtest/gtest.h>

namespace crius::stream::spdy {
namespace {

TEST(SpdyDictionary, IsSpdy3sOwn) {
  // The dictionary's size and adler32 (its zlib dictionary id) as the
  // SPDY/3 draft defines them.
  const std::string& d = Dictionary();
  EXPECT_EQ(d.size(), 1423u);
  EXPECT_EQ(adler32(1, reinterpret_cast<const Bytef*>(d.data()), static_cast<uInt>(d.size())), 0xe3c6a7c2u);
}

TEST(SpdyFrames, SynStreamHeadersSurviveOneSharedCompressorPerDirection) {
  Writer w;
  Reader r;
  // Several blocks through the same zlib stream, as a connection sends them.
  for (int i = 0; i < 3; ++i) {
    Headers h = {{"streamtype", i == 0 ? "error" : "stdout"}, {"port", std::to_string(8000 + i)}};
    r.Feed(w.SynStream(2 * i + 1, h, kFlagFin));
    absl::StatusOr<std::optional<Frame>> f = r.Next();
    ASSERT_TRUE(f.ok()) << f.status();
    ASSERT_TRUE(f->has_value());
    EXPECT_EQ((*f)->type, Type::kSynStream);
    EXPECT_EQ((*f)->stream_id, static_cast<uint32_t>(2 * i + 1));
    EXPECT_TRUE((*f)->fin());
    EXPECT_EQ((*f)->headers, h);
    EXPECT_EQ(HeaderValue((*f)->headers, "port"), std::to_string(8000 + i));
  }
}

TEST(SpdyFrames, DataFramesArriveWhateverTheSplit) {
  std::string bytes = Writer::Data(5, "hello", false) + Writer::Data(5, "", true) + Writer::Ping(7) +
                      Writer::RstStream(9, kCancel) + Writer::GoAway(11, 0);
  Reader r;
  std::vector<Frame> frames;
  for (char c : bytes) {  // one byte at a time
    r.Feed(std::string(1, c));
    for (;;) {
      absl::StatusOr<std::optional<Frame>> f = r.Next();
      ASSERT_TRUE(f.ok());
      if (!f->has_value()) break;
      frames.push_back(std::move(**f));
    }
  }
  ASSERT_EQ(frames.size(), 5u);
  EXPECT_EQ(frames[0].type, Type::kData);
  EXPECT_EQ(frames[0].stream_id, 5u);
  EXPECT_EQ(frames[0].data, "hello");
  EXPECT_FALSE(frames[0].fin());
  EXPECT_TRUE(frames[1].fin());
  EXPECT_EQ(frames[2].type, Type::kPing);
  EXPECT_EQ(frames[2].value, 7u);
  EXPECT_EQ(frames[3].type, Type::kRstStream);
  EXPECT_EQ(frames[3].stream_id, 9u);
  EXPECT_EQ(frames[3].value, kCancel);
  EXPECT_EQ(frames[4].type, Type::kGoAway);
  EXPECT_EQ(frames[4].last_stream_id, 11u);
}

TEST(SpdyFrames, AnotherVersionIsAnError) {
  Reader r;
  r.Feed(std::string("\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01", 12));
  absl::StatusOr<std::optional<Frame>> f = r.Next();
  EXPECT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("version 2"), std::string::npos);
}

TEST(SpdyFrames, AHeaderBlockThatDoesNotInflateIsAnError) {
  Reader r;
  std::string payload = std::string("\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10) + "not zlib at all";
  std::string frame = std::string("\x80\x03\x00\x01\x00\x00\x00", 7) + static_cast<char>(payload.size()) + payload;
  r.Feed(frame);
  EXPECT_FALSE(r.Next().ok());
}

TEST(SpdyFrames, ATruncatedControlFrameIsAnError) {
  Reader r;
  r.Feed(std::string("\x80\x03\x00\x03\x00\x00\x00\x02\x00\x01", 10));  // RST_STREAM of 2 bytes
  EXPECT_FALSE(r.Next().ok());
}

}  // namespace
}  // namespace crius::stream::spdy
