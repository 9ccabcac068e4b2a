// An image layer as a registry sends it (tar; gzip, zstd or plain), unpacked
// into a scratch directory as a pull unpacks it. Nothing may land beside
// the layer's directory: the scratch holds the blob, the layer and an empty
// directory that must stay empty.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "common/files.h"
#include "image/unpack.h"

namespace {

std::set<std::string> Names(const std::string& dir) {
  std::set<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.insert(n);
    }
    ::closedir(d);
  }
  return names;
}

// Made once per process and removed at its exit (the path outlives every
// static destructor: it is never freed).
const std::string& Scratch() {
  static const std::string* dir = [] {
    std::string base = std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "/tmp";
    std::string tmpl = base + "/crius-fuzz-layer-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr || ::mkdir((tmpl + "/outside").c_str(), 0755) != 0) std::abort();
    std::atexit([] { (void)crius::RemoveTree(Scratch()); });
    return new std::string(tmpl);
  }();
  return *dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& scratch = Scratch();
  const std::string blob = scratch + "/blob", layer = scratch + "/layer";
  int fd = ::open(blob.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ::write(fd, data, size) != static_cast<ssize_t>(size) || ::close(fd) != 0) std::abort();
  if (::mkdir(layer.c_str(), 0755) != 0) std::abort();
  (void)crius::image::UnpackLayer(blob, layer);
  if (Names(scratch) != std::set<std::string>{"blob", "layer", "outside"} || !Names(scratch + "/outside").empty()) {
    std::fprintf(stderr, "the layer wrote outside its directory\n");
    __builtin_trap();
  }
  if (!crius::RemoveTree(layer).ok()) std::abort();
  return 0;
}
