// A unikernel guest binary from an image, checked as CreateContainer and the
// tenders check it: headers, segments and notes, the ABI, the manifest, the
// fit in guest memory; one that passes is loaded into zeroed memory of its
// own size, as the tender loads it.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "unikernel/core/abi/hvt_abi.h"
#include "unikernel/core/abi/spt_abi.h"
#include "unikernel/core/elf_image.h"
#include "unikernel/core/mft.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  struct elf_image img = {};
  struct terr e = {};
  if (elf_parse(data, size, HVT_GUEST_MIN_BASE, &img, &e) != 0) return 0;
  for (uint32_t target : {HVT_ABI_TARGET, SPT_ABI_TARGET}) (void)elf_check_abi(&img, target, HVT_ABI_VERSION, &e);
  if (img.mft == nullptr || mft_validate(img.mft, img.mft_size, &e) != 0) return 0;
  constexpr uint64_t kMem = 64 << 20;  // small, so that a run stays fast
  if (elf_check_fits(&img, kMem, &e) != 0) return 0;
  std::vector<uint8_t> mem(img.end);
  elf_copy_segments(&img, data, mem.data());
  return 0;
}
