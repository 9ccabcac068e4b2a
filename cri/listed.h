// List answers built as bytes: each pod's and container's entry is kept
// serialized between calls and made again only when its CRI state moves,
// since nothing else an entry shows changes after it was created.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

namespace crius::cri {

struct ListedEntry {
  std::mutex mu;
  std::string bytes;
  int state = -1;  // the CRI state `bytes` shows; -1: none made yet
};

inline void AppendVarint(uint64_t v, std::string* out) {
  for (; v >= 0x80; v >>= 7) out->push_back(static_cast<char>(v | 0x80));
  out->push_back(static_cast<char>(v));
}

// Appends the entry as field 1 (length-delimited) of a List answer, the
// repeated field of ListContainersResponse and ListPodSandboxResponse alike;
// `make(state)` serializes it anew when `state` is not what it shows.
template <typename Make>
void AppendListed(ListedEntry& e, int state, Make&& make, std::string* wire) {
  constexpr char kField1Tag = (1 << 3) | 2;
  std::lock_guard<std::mutex> lock(e.mu);
  if (e.state != state) {
    e.bytes = make(state);
    e.state = state;
  }
  wire->push_back(kField1Tag);
  AppendVarint(e.bytes.size(), wire);
  wire->append(e.bytes);
}

}  // namespace crius::cri
