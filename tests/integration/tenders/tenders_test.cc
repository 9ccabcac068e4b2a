// The tenders, run for real on the project's own guests: crius-hvt with
// /dev/kvm, crius-spt under its seccomp filter. Each test is run for both
// flavours (suffix /hvt, /spt) unless its suite says otherwise.
#include <gtest/gtest.h>
#include <signal.h>
#include <time.h>

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/integration/tenders/guest_files.h"
#include "tests/integration/tenders/tender_run.h"
#include "unikernel/core/abi/elf_abi.h"
#include "unikernel/core/abi/mft_abi.h"

namespace crius::unikernel::testing {
namespace {

// A fault ends crius-hvt with status 1, as upstream; "guest fault" on stderr
// tells it from a set-up error.
constexpr int kFault = 1;
constexpr int kSetupError = 1;

class Tender : public ::testing::TestWithParam<std::string> {
 protected:
  std::string flavour() const { return GetParam(); }
  std::string tender() const { return TenderPath(flavour()); }
  std::string guest(const std::string& name) const { return GuestPath(name, flavour()); }
  TenderResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), tender());
    return RunTender(args);
  }
  // Runs a patched copy of guest `name`.
  TenderResult RunPatched(const std::string& name,
                          const std::function<void(ElfView&)>& patch,
                          std::vector<std::string> extra = {}) {
    ElfView v = LoadGuest(name, flavour());
    patch(v);
    TempFile f(v.bytes);
    std::vector<std::string> args = {tender(), "--mem=32"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(f.path());
    return RunTender(args);
  }
};

std::string Describe(const TenderResult& r) {
  return "status " + std::to_string(r.status) + "\nstdout: " + r.out + "\nstderr: " + r.err;
}

// Refused before the guest ran: exit status 1 and the message.
void ExpectRefused(const TenderResult& r, const std::string& fragment) {
  EXPECT_EQ(r.status, kSetupError) << Describe(r);
  EXPECT_NE(r.err.find(fragment), std::string::npos) << Describe(r);
  EXPECT_EQ(r.out, "") << "the guest must not have run";
}

// --- guests that run ---

TEST_P(Tender, HelloPrintsItsCommandLine) {
  TenderResult r = Run({"--mem=32", guest("hello"), "Hello_Solo5", "--solo5:quiet"});
  EXPECT_EQ(r.status, 0) << Describe(r);
  EXPECT_EQ(r.out, "hello from a crius guest: Hello_Solo5 --solo5:quiet\n");
  EXPECT_EQ(r.err, "");
}

TEST_P(Tender, GuestExitStatusPassesThrough) {
  for (int status : {0, 7, 42, 254}) {
    TenderResult r = Run({"--mem=32", guest("hello"), "exit=" + std::to_string(status)});
    EXPECT_EQ(r.status, status) << Describe(r);
  }
}

TEST_P(Tender, RunsWithTheDefaultMemorySize) {
  TenderResult r = Run({guest("hello"), "exit=3"});
  EXPECT_EQ(r.status, 3) << Describe(r);
}

TEST_P(Tender, OptionsAfterDoubleDashReachTheGuest) {
  TenderResult r = Run({"--mem=32", "--", guest("hello"), "--mem=1"});
  EXPECT_EQ(r.status, 0) << Describe(r);
  EXPECT_NE(r.out.find(": --mem=1\n"), std::string::npos) << Describe(r);
}

TEST_P(Tender, BlockGuestWritesAndReadsBack) {
  std::vector<uint8_t> disk(64 * 1024, 0);
  TempFile f(disk);
  TenderResult r = Run({"--mem=32", "--block:storage=" + f.path(), guest("blk")});
  EXPECT_EQ(r.status, 0) << Describe(r);
  EXPECT_NE(r.out.find("blk: ok, 64 blocks of 512 bytes"), std::string::npos) << Describe(r);
  // The data really reached the file: block 1 starts with (1 * 7 + 0).
  std::vector<uint8_t> after = ReadFile(f.path());
  ASSERT_EQ(after.size(), disk.size());
  EXPECT_EQ(after[512], 7);
  EXPECT_EQ(after[513], 8);
}

TEST_P(Tender, BlockGuestHonoursTheSectorSize) {
  std::vector<uint8_t> disk(64 * 1024, 0);
  TempFile f(disk);
  TenderResult r = Run({"--mem=32", "--block:storage=" + f.path(),
                        "--block-sector-size:storage=4096", guest("blk")});
  EXPECT_EQ(r.status, 0) << Describe(r);
  EXPECT_NE(r.out.find("blk: ok, 16 blocks of 4096 bytes"), std::string::npos) << Describe(r);
}

TEST_P(Tender, TimedWaitAndMonotonicClockAgree) {
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  TenderResult r = Run({"--mem=32", guest("clock"), "wait_ms=300"});
  clock_gettime(CLOCK_MONOTONIC, &b);
  double host_ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
  EXPECT_EQ(r.status, 0) << Describe(r);
  EXPECT_NE(r.out.find("clock: waited "), std::string::npos) << Describe(r);
  EXPECT_GE(host_ms, 300.0) << "the guest's clock ran faster than the host's";
}

// --- isolation ---

TEST_P(Tender, TenderRunsUnderSeccomp) {
  TenderProcess p({tender(), "--mem=32", guest("sleeper")});
  ASSERT_TRUE(p.WaitForOutput("waiting for shutdown", 5000));
  std::ifstream status("/proc/" + std::to_string(p.pid()) + "/status");
  std::string line, seccomp;
  while (std::getline(status, line))
    if (line.rfind("Seccomp:", 0) == 0) seccomp = line;
  EXPECT_EQ(seccomp, "Seccomp:\t2");
}

// A page fault the guest has no handler for: hvt's vCPU triple-faults,
// spt's process takes SIGSEGV; the guest never goes on.
void ExpectUnhandledPageFault(const std::string& flavour, const TenderResult& r) {
  if (flavour == "hvt") {
    EXPECT_EQ(r.status, kFault) << Describe(r);
    EXPECT_NE(r.err.find("guest fault: triple fault"), std::string::npos) << Describe(r);
  } else {
    EXPECT_EQ(r.status, 128 + SIGSEGV) << Describe(r);
  }
  EXPECT_EQ(r.out.find("still running"), std::string::npos);
}

TEST_P(Tender, WritingToTheZeroPageFaults) {
  ExpectUnhandledPageFault(flavour(), Run({"--mem=32", guest("fault"), "zeropage"}));
}

// A guest may touch every page it was given; the first byte past them is a
// fault of the guest, never the tender's or the node's.
TEST_P(Tender, TouchingAllMemoryWorksAndBeyondItFaults) {
  TenderResult r = Run({"--mem=32", guest("fault"), "overmem"});
  EXPECT_NE(r.out.find("fault: touched 30 MiB\n"), std::string::npos) << Describe(r);
  ExpectUnhandledPageFault(flavour(), r);
}

// The guest's addresses are contiguous up to its last page wherever the
// host puts them: on hvt, guest-physical memory breaks at 3 GiB.
TEST_P(Tender, MemoryAcross3GiBAndItsLastPageHoldWhatTheGuestWrote) {
  for (auto [mib, words] : std::vector<std::pair<int, int>>{{3072, 1}, {3074, 5}, {4096, 5}}) {
    TenderResult r = Run({"--mem=" + std::to_string(mib), guest("fault"), "edges"});
    EXPECT_NE(r.out.find("fault: edges: " + std::to_string(words) +
                         " words kept\nfault: printed from the last page\n"),
              std::string::npos)
        << "--mem=" << mib << ": " << Describe(r);
    ExpectUnhandledPageFault(flavour(), r);
  }
}

TEST_P(Tender, RefusesMalformedMemory) {
  for (const char* bad : {"--mem=0", "--mem=abc", "--mem=", "--mem=-4096"})
    ExpectRefused(Run({bad, guest("hello")}), "Malformed argument to --mem");
}

TEST_P(Tender, WritingToCodeFaults) {
  TenderResult r = Run({"--mem=32", guest("fault"), "text"});
  if (flavour() == "hvt") {
    EXPECT_EQ(r.status, kFault) << Describe(r);
    EXPECT_NE(r.err.find("guest fault: host/guest translation fault: write to read-only "
                         "guest memory at 0x10"),
              std::string::npos)
        << Describe(r);
  } else {
    EXPECT_EQ(r.status, 128 + SIGSEGV) << Describe(r);
  }
  EXPECT_EQ(r.out.find("still running"), std::string::npos);
}

TEST_P(Tender, ForbiddenSyscallEndsTheGuest) {
  TenderResult r = Run({"--mem=32", guest("forbidden")});
  EXPECT_EQ(r.status, flavour() == "spt" ? 128 + SIGSYS : kFault) << Describe(r);
  EXPECT_EQ(r.out.find("survived"), std::string::npos) << Describe(r);
}

// --- shutdown extension ---

TEST_P(Tender, AwareGuestShutsDownOnItsOwnTerms) {
  TenderProcess p({tender(), "--mem=32", guest("shutdown"), "status=9"});
  ASSERT_TRUE(p.WaitForOutput("waiting for shutdown\n", 5000));
  p.Signal(SIGTERM);
  TenderResult r = p.Finish(5000);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, 9) << Describe(r);
  EXPECT_NE(r.out.find("shutdown requested, exiting"), std::string::npos) << Describe(r);
}

TEST_P(Tender, RequestWhileTheGuestComputesIsKeptForItsNextWait) {
  TenderProcess p({tender(), "--mem=32", guest("shutdown"), "busy_ms=500", "status=4"});
  ASSERT_TRUE(p.WaitForOutput("busy\n", 5000));
  p.Signal(SIGTERM);
  TenderResult r = p.Finish(10000);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, 4) << Describe(r);
  EXPECT_NE(r.out.find("waiting for shutdown\nshutdown requested, exiting\n"), std::string::npos)
      << Describe(r);
}

TEST_P(Tender, UnawareGuestIsHaltedAtOnceOnSigterm) {
  TenderProcess p({tender(), "--mem=32", guest("sleeper")});
  ASSERT_TRUE(p.WaitForOutput("waiting for shutdown\n", 5000));
  p.Signal(SIGTERM);
  TenderResult r = p.Finish(5000);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, 128 + SIGTERM) << Describe(r);
  EXPECT_EQ(r.out.find("shutdown requested"), std::string::npos) << Describe(r);
}

TEST_P(Tender, AwareGuestKeepsRunningWithoutARequest) {
  // Without a request the aware guest keeps waiting; SIGKILL still ends it.
  TenderProcess p({tender(), "--mem=32", guest("shutdown")});
  ASSERT_TRUE(p.WaitForOutput("waiting for shutdown\n", 5000));
  EXPECT_FALSE(p.WaitForOutput("shutdown requested", 1500));
  p.Signal(SIGKILL);
  TenderResult r = p.Finish(5000);
  EXPECT_EQ(r.status, 128 + SIGKILL) << Describe(r);
}

// --- bad input: each refused with a clear message, exit status 1 ---

TEST_P(Tender, RefusesATruncatedGuest) {
  for (size_t keep : {size_t{0}, size_t{40}, size_t{200}, size_t{0x1100}}) {
    auto r = RunPatched("hello", [&](ElfView& v) { v.bytes.resize(keep); });
    ExpectRefused(r, "truncated");
  }
}

TEST_P(Tender, RefusesANonX86Guest) {
  ExpectRefused(RunPatched("hello", [](ElfView& v) { v.ehdr()->e_machine = EM_AARCH64; }),
                "not x86-64");
}

TEST_P(Tender, RefusesOverlappingSegments) {
  ExpectRefused(RunPatched("hello",
                           [](ElfView& v) {
                             v.nth(PT_LOAD, 1)->p_vaddr = v.nth(PT_LOAD, 0)->p_vaddr + 0x10;
                           }),
                "overlap");
}

TEST_P(Tender, RefusesHugeSegments) {
  ExpectRefused(RunPatched("hello", [](ElfView& v) { v.nth(PT_LOAD, 2)->p_memsz = 1ull << 40; }),
                "huge");
}

TEST_P(Tender, RefusesWritableExecutableSegments) {
  ExpectRefused(
      RunPatched("hello", [](ElfView& v) { v.nth(PT_LOAD, 0)->p_flags = PF_R | PF_W | PF_X; }),
      "W+X");
}

TEST_P(Tender, RefusesAnEntryOutsideTheSegments) {
  ExpectRefused(RunPatched("hello", [](ElfView& v) { v.ehdr()->e_entry = 0x7000000; }),
                "entry point 0x7000000");
}

TEST_P(Tender, RefusesAMissingManifest) {
  ExpectRefused(RunPatched("hello", [](ElfView& v) { v.nth(PT_NOTE, 1)->p_type = PT_NULL; }),
                "no Solo5 manifest");
}

TEST_P(Tender, RefusesAMalformedManifest) {
  ExpectRefused(RunPatched("hello",
                           [](ElfView& v) {
                             // The manifest's version field, after header and padding.
                             uint32_t bad = 7;
                             std::memcpy(v.bytes.data() + v.nth(PT_NOTE, 1)->p_offset + 24, &bad,
                                         sizeof bad);
                           }),
                "manifest: version 7");
}

TEST_P(Tender, RefusesAnotherAbiVersion) {
  ExpectRefused(RunPatched("hello",
                           [](ElfView& v) {
                             uint32_t bad = 1;  // abi1_info.abi_version
                             std::memcpy(v.bytes.data() + v.nth(PT_NOTE, 0)->p_offset + 24, &bad,
                                         sizeof bad);
                           }),
                "ABI version 1");
}

TEST_P(Tender, RefusesAGuestBuiltForTheOtherTender) {
  std::string other = flavour() == "hvt" ? "spt" : "hvt";
  TenderResult r = Run({"--mem=32", GuestPath("hello", other)});
  ExpectRefused(r, "built for the Solo5 " + other + " target");
}

TEST_P(Tender, RefusesADeclaredDeviceMissingFromTheCommandLine) {
  ExpectRefused(Run({"--mem=32", guest("blk")}),
                "declares block device 'storage', but no --block:storage=FILE was given");
}

TEST_P(Tender, RefusesADeviceTheGuestDoesNotDeclare) {
  std::vector<uint8_t> disk(4096, 0);
  TempFile f(disk);
  ExpectRefused(Run({"--mem=32", "--block:storage=" + f.path(), guest("hello")}),
                "the guest declares no block device 'storage'");
}

TEST_P(Tender, RefusesMemoryBelowTheGuestSize) {
  std::vector<uint8_t> disk(4096, 0);
  TempFile f(disk);
  // The guest's bss grown to 3 MiB: more than --mem=2 holds.
  auto r = RunPatched("blk", [](ElfView& v) { v.nth(PT_LOAD, 2)->p_memsz = 3u << 20; },
                      {"--mem=2", "--block:storage=" + f.path()});
  ExpectRefused(r, "beyond guest memory of 2 MiB");
}

TEST_P(Tender, RefusesABlockFileSmallerThanOneSector) {
  std::vector<uint8_t> disk(256, 0);
  TempFile f(disk);
  ExpectRefused(Run({"--mem=32", "--block:storage=" + f.path(), guest("blk")}),
                "Backing storage must be at least 1 block (512 bytes)");
}

TEST_P(Tender, RefusesAMisalignedBlockFile) {
  std::vector<uint8_t> disk(6144, 0);
  TempFile f(disk);
  ExpectRefused(Run({"--mem=32", "--block:storage=" + f.path(),
                     "--block-sector-size:storage=4096", guest("blk")}),
                "Backing storage size must be block aligned");
}

TEST_P(Tender, RefusesAnOddSectorSize) {
  std::vector<uint8_t> disk(4096, 0);
  TempFile f(disk);
  ExpectRefused(Run({"--mem=32", "--block:storage=" + f.path(),
                     "--block-sector-size:storage=521", guest("blk")}),
                "Block size must be a multiple of 2");
}

TEST_P(Tender, RefusesAMissingGuestFile) {
  ExpectRefused(Run({"--mem=32", "/nonexistent/guest"}), "open guest /nonexistent/guest");
}

INSTANTIATE_TEST_SUITE_P(Flavours, Tender, ::testing::Values("hvt", "spt"),
                         [](const auto& info) { return info.param; });

// --- hvt only ---

TEST(HvtOnly, GuestPointerOutsideMemoryIsAFault) {
  TenderResult r = RunTender({CRIUS_HVT_PATH, "--mem=32", GuestPath("fault", "hvt"), "badarg"});
  EXPECT_EQ(r.status, kFault) << Describe(r);
  EXPECT_NE(r.err.find("guest fault: PUTS data at 0x1fffff0 (+4096 bytes) is outside guest memory"),
            std::string::npos)
      << Describe(r);
}

TEST(HvtOnly, TouchingUnbackedMemoryIsAnMmioFault) {
  TenderResult r = RunTender({CRIUS_HVT_PATH, "--mem=32", GuestPath("fault", "hvt"), "mmio"});
  EXPECT_EQ(r.status, kFault) << Describe(r);
  EXPECT_NE(r.err.find("guest fault: access to unmapped guest-physical address 0x2001000 (MMIO exit"),
            std::string::npos)
      << Describe(r);
}

TEST(HvtOnly, TenderNeverWritesBelowTheGuestsWritableMemory) {
  TenderResult r = RunTender({CRIUS_HVT_PATH, "--mem=32", GuestPath("fault", "hvt"), "lowarg"});
  EXPECT_EQ(r.status, kFault) << Describe(r);
  EXPECT_NE(r.err.find("guest fault: POLL argument at 0x10000 is below the guest's writable memory"),
            std::string::npos)
      << Describe(r);
  EXPECT_EQ(r.out.find("still running"), std::string::npos) << Describe(r);
}

TEST(HvtOnly, InvalidInstructionIsAFault) {
  TenderResult r = RunTender({CRIUS_HVT_PATH, "--mem=32", GuestPath("fault", "hvt"), "ud2"});
  EXPECT_EQ(r.status, kFault) << Describe(r);
  EXPECT_NE(r.err.find("guest fault"), std::string::npos) << Describe(r);
}

// As solo5-hvt, whose suite runs every guest with --mem=4096.
TEST(HvtOnly, RunsAGuestWith4GiB) {
  TenderResult r = RunTender({CRIUS_HVT_PATH, "--mem=4096", GuestPath("hello", "hvt"), "big"});
  EXPECT_EQ(r.status, 0) << Describe(r);
  EXPECT_EQ(r.out, "hello from a crius guest: big\n");
  EXPECT_EQ(r.err, "");
}

// As solo5-hvt: down to whole 2 MiB pages (one at least), with a warning.
TEST(HvtOnly, RoundsMemoryDownToWhole2MiBPages) {
  for (auto [mib, bytes] : std::vector<std::pair<int, uint64_t>>{
           {4097, 4096ull << 20}, {4095, 4094ull << 20}, {3, 2ull << 20}, {1, 2ull << 20}}) {
    TenderResult r = RunTender({CRIUS_HVT_PATH, "--mem=" + std::to_string(mib),
                                GuestPath("hello", "hvt"), "exit=5"});
    EXPECT_EQ(r.status, 5) << "--mem=" << mib << ": " << Describe(r);
    EXPECT_EQ(r.err, "crius-hvt: adjusting memory to " + std::to_string(bytes) + " bytes\n");
  }
}

TEST(HvtOnly, RefusesMemoryAbove4GiB) {
  ExpectRefused(RunTender({CRIUS_HVT_PATH, "--mem=4098", GuestPath("hello", "hvt")}),
                "crius-hvt: guest memory size 4297064448 bytes exceeds the max size "
                "4294967296 bytes\n");
  TenderResult r = RunTender({CRIUS_HVT_PATH, "--mem=4099", GuestPath("hello", "hvt")});
  ExpectRefused(r, "crius-hvt: adjusting memory to 4297064448 bytes\ncrius-hvt: guest memory "
                   "size 4297064448 bytes exceeds the max size 4294967296 bytes\n");
  ExpectRefused(RunTender({CRIUS_HVT_PATH, "--mem=1048576", GuestPath("hello", "hvt")}),
                "exceeds the max size 4294967296 bytes");
}

// --- spt only ---

TEST(SptOnly, InvalidInstructionKillsTheProcess) {
  TenderResult r = RunTender({CRIUS_SPT_PATH, "--mem=32", GuestPath("fault", "spt"), "ud2"});
  EXPECT_EQ(r.status, 128 + SIGILL) << Describe(r);
}

}  // namespace
}  // namespace crius::unikernel::testing
