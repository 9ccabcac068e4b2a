"""crius on cgroup v2, for real: this node runs cgroup v1, so Debian's kernel
boots in qemu with cgroup_no_v1=all (harness/vm.py), and inside it run
- the driver's own test binary, its real-hierarchy tests included (pids
  limit, OOM kill, cpu accounting, cpuset, the BPF device policy, kill and
  remove);
- test_cgroups.py, the cgroup integration tests: a real criusd with its
  monitor, a registry and images, pods in kubelet's pod cgroup, resources,
  OOMKilled, a fork bomb, UpdateContainerResources and the device policy,
  through the CRI (harness/guest_suite.py)."""
import re

import pytest

from harness.guest_suite import run_modules_in_guest
from harness.util import build_dir
from harness.vm import Guest

pytestmark = pytest.mark.usefixtures("leak_check")


def test_the_cgroup_driver_passes_its_tests_on_cgroup_v2():
    binary = build_dir() / "tests" / "unit" / "cgroups_test"
    with Guest(files={"/t/cgroups_test": binary}, env={"GTEST_COLOR": "no"}) as g:
        status, out = g.run(["sh", "-c", "cat /sys/fs/cgroup/cgroup.controllers; "
                                         "CRIUS_CGROUP_REAL=1 /t/cgroups_test"], timeout=900)
    failures = [l for l in out.splitlines() if "FAILED" in l or "Failure" in l or "error:" in l]
    assert status == 0, "\n".join(failures) + "\n...\n" + out[-3000:]
    assert "memory" in out.splitlines()[0] and "pids" in out.splitlines()[0]
    # The real tests ran (none skipped) on v2.
    assert re.search(r"\[  PASSED  \] \d+ tests", out), out[-2000:]
    assert "SKIPPED" not in out, out[-2000:]
    assert "RealCgroup" in out


def test_the_cgroup_integration_tests_pass_on_cgroup_v2():
    status, out = run_modules_in_guest(["test_cgroups.py"])
    assert status == 0, out[-6000:]
    summary = out.strip().splitlines()[-1]
    # Every test ran: none skipped (a skip would hide a v1-only assumption).
    assert re.fullmatch(r"\d+ passed(, \d+ warnings?)? in [0-9.]+s( \([0-9:]+\))?", summary), out[-3000:]


def test_a_guest_that_cannot_idmap_its_layers_refuses_user_namespace_pods():
    # Its root is a tmpfs, which Linux 6.1 cannot idmap.
    status, out = run_modules_in_guest(["test_userns.py"], args=["-k", "need_idmapped_image_layers"])
    assert status == 0, out[-6000:]
    assert re.fullmatch(r"1 passed, \d+ deselected in [0-9.]+s", out.strip().splitlines()[-1]), out[-3000:]
