"""The harness boots Debian's cloud kernel in qemu with cgroup v2 only and runs
programs inside it (harness/vm.py): two boots, plus one killed at once."""
import re
import subprocess
import time

import pytest

from harness import vm
from harness.util import remove_tree, short_tmpdir

pytestmark = pytest.mark.usefixtures("leak_check")

# Dynamically linked against libc and zlib: proves ldd's libraries and the loader
# reach the guest at the paths the loader looks for them.
HELLO_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>
int main(int argc, char **argv) {
  const char *greeting = getenv("GREETING");
  printf("%s %s, zlib %s\n", greeting ? greeting : "(unset)", argc > 1 ? argv[1] : "",
         zlibVersion());
  fprintf(stderr, "on stderr\n");
  return argc > 2 ? atoi(argv[2]) : 0;
}
"""


@pytest.fixture(scope="module")
def hello():
    d = short_tmpdir("crius-vm-test-")
    (d / "hello.c").write_text(HELLO_C)
    subprocess.run(["gcc", "-O2", "-o", str(d / "hello"), str(d / "hello.c"), "-lz"],
                   check=True, capture_output=True)
    yield d / "hello"
    remove_tree(d)


@pytest.fixture(scope="module")
def guest(hello):
    with vm.Guest(files={"/t/hello": hello, "/t/script": b"#!/bin/sh\necho script $1\n"},
                  env={"GREETING": "hi 'there'"}, timeout=120) as g:
        yield g


def test_the_initramfs_carries_the_libraries_and_loader(guest, hello):
    libs = vm.shared_libraries(hello)
    assert any("/libz.so" in lib for lib in libs) and any("/ld-linux" in lib for lib in libs)
    archive = guest._base_cpio()
    assert all(lib in archive for lib in libs)
    assert "/bin/sh" in archive and "/t/hello" in archive


def test_guest_runs_cgroup_v2_only_with_every_controller(guest):
    status, out = guest.run("""
        cat /sys/fs/cgroup/cgroup.controllers
        cat /sys/fs/cgroup/cgroup.subtree_control
        grep cgroup /proc/mounts
        uname -r
        /t/hello world
        /t/script arg
    """)
    print(out, guest.last_times)
    assert status == 0, out
    lines = out.splitlines()
    controllers, enabled = set(lines[0].split()), set(lines[1].split())
    assert {"cpu", "memory", "pids", "cpuset", "io", "hugetlb"} <= controllers
    assert enabled == controllers
    assert lines[2].split()[:3] == ["cgroup2", "/sys/fs/cgroup", "cgroup2"]  # and no v1
    assert re.fullmatch(r"6\.\d+\.\d+-\d+-cloud-amd64", lines[3]), lines[3]
    assert vm.kernel_deb().name.startswith(f"linux-image-{lines[3]}_")
    assert re.fullmatch(r"hi 'there' world, zlib [\d.]+", lines[4]), out
    assert lines[5:] == ["on stderr", "script arg"]


def test_a_failing_command_returns_its_status_and_output(guest):
    # argv, not a script: exec'd as given, the environment per run
    status, out = guest.run(["/t/hello", "it's me", "42"], env={"GREETING": "bye"})
    assert (status, out) == (42, f"bye it's me, zlib {_zlib_version(out)}\non stderr\n")
    assert 0 < guest.last_times["boot_to_command"] < guest.last_times["total"]


def test_a_timeout_kills_qemu_and_shows_the_console(guest):
    started = time.monotonic()
    with pytest.raises(vm.GuestError, match=r"timed out after 0.5s(.|\n)*console \(tail\)"):
        guest.run(["true"], timeout=0.5)
    assert time.monotonic() - started < 10
    assert guest.proc is None


def _zlib_version(out):
    return re.search(r"zlib ([\d.]+)", out).group(1)
