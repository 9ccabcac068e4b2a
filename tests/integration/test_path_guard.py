"""The test PATH guard (tests/path_guard.py): every test runs with only what a
fresh machine has after build.sh, and what it lacks fails by name."""
import os
import subprocess
import sys

import pytest

from harness.util import SOURCE_ROOT, build_dir, remove_tree, short_tmpdir

GUARD = SOURCE_ROOT / "tests" / "path_guard.py"


def test_ctest_runs_every_test_with_the_guard_on():
    if not os.environ.get("CRIUS_BUILD_DIR"):
        pytest.skip("not run by CTest")
    guard = build_dir() / "test-path"
    assert os.environ["PATH"] == str(guard / "bin")
    assert os.environ["PYTHONPATH"] == str(guard / "python")
    assert "sitecustomize" in sys.modules and sys.modules["sitecustomize"].__file__.startswith(str(guard))
    # build.sh's packages and what they depend on are there.
    packages = (guard / "packages.txt").read_text().split()
    for p in ("iproute2", "iputils-ping", "docker-registry", "busybox-static", "python3-grpcio", "bash", "libc6"):
        assert p in packages, p
    assert os.path.realpath(guard / "bin" / "ping") == os.path.realpath("/usr/bin/ping")


@pytest.fixture(scope="module")
def narrow_guard():
    """A guard for a build.sh that installs nothing but python3: iproute2's `ip`
    and python3-yaml are then what a fresh machine lacks."""
    tmp = short_tmpdir("crius-guard-")
    fake = f"{tmp}/build.sh"
    with open(fake, "w") as f:
        f.write('[ "$1" = packages ] && echo python3\n')
    run = subprocess.run([sys.executable, str(GUARD), "--build-sh", fake, "--out", f"{tmp}/test-path"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    yield f"{tmp}/test-path"
    remove_tree(tmp)


def test_a_program_no_listed_package_ships_fails_naming_it_and_its_package(narrow_guard, tmp):
    log = tmp / "guard.log"
    run = subprocess.run(["ip", "link"], env={"PATH": f"{narrow_guard}/bin", "CRIUS_PATH_GUARD_LOG": str(log)},
                         capture_output=True, text=True, timeout=10)
    assert run.returncode == 127
    assert "'ip'" in run.stderr and "from package iproute2" in run.stderr and "build.sh" in run.stderr
    assert log.read_text().strip() == run.stderr.strip()  # what fails the test that ran it


def test_required_packages_programs_are_there(narrow_guard):
    run = subprocess.run(["sh", "-c", "ls / >/dev/null && echo ok"], env={"PATH": f"{narrow_guard}/bin"},
                         capture_output=True, text=True, timeout=10)
    assert run.stdout == "ok\n", run.stderr


def test_a_module_no_listed_package_ships_fails_naming_it(narrow_guard, tmp):
    env = {"PATH": f"{narrow_guard}/bin", "PYTHONPATH": f"{narrow_guard}/python"}
    run = subprocess.run(["/usr/bin/python3", "-c", "import json, sqlite3; import yaml"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert run.returncode != 0
    assert "module 'yaml'" in run.stderr and "build.sh" in run.stderr, run.stderr
    # The project's own modules are not judged.
    (tmp / "projects_own.py").write_text("x = 1\n")
    env["PYTHONPATH"] += f":{tmp}"
    run = subprocess.run(["/usr/bin/python3", "-c", "import projects_own"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
