// Paths of the tenders and guests under test, and copies of built guests
// with one thing broken, written to temporary files removed on destruction.
#pragma once

#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

namespace crius::unikernel::testing {

inline std::string TenderPath(const std::string& flavour) {
  return flavour == "hvt" ? CRIUS_HVT_PATH : CRIUS_SPT_PATH;
}

inline std::string GuestPath(const std::string& name, const std::string& flavour) {
  return std::string(CRIUS_GUEST_DIR) + "/" + name + "." + flavour;
}

inline std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

// A temporary file (created with mkstemp), removed when this goes away.
class TempFile {
 public:
  TempFile(const std::vector<uint8_t>& bytes) {
    char tmpl[] = "/tmp/crius-tender-test-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd >= 0) {
      size_t done = 0;
      while (done < bytes.size()) {
        ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
        if (n <= 0) break;
        done += static_cast<size_t>(n);
      }
      close(fd);
      path_ = tmpl;
    }
  }
  ~TempFile() {
    if (!path_.empty()) unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Views of a guest image for patching.
struct ElfView {
  std::vector<uint8_t> bytes;
  Elf64_Ehdr* ehdr() { return reinterpret_cast<Elf64_Ehdr*>(bytes.data()); }
  Elf64_Phdr* phdr(unsigned i) {
    return reinterpret_cast<Elf64_Phdr*>(bytes.data() + ehdr()->e_phoff) + i;
  }
  unsigned phnum() { return ehdr()->e_phnum; }
  // The i-th PT_LOAD / PT_NOTE program header (our guests: text, rodata,
  // data; ABI note, manifest note, crius note).
  Elf64_Phdr* nth(uint32_t type, unsigned n) {
    for (unsigned i = 0; i < phnum(); i++)
      if (phdr(i)->p_type == type && n-- == 0) return phdr(i);
    return nullptr;
  }
};

inline ElfView LoadGuest(const std::string& name, const std::string& flavour) {
  return ElfView{ReadFile(GuestPath(name, flavour))};
}

}  // namespace crius::unikernel::testing
