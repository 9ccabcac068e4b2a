"""Integration test modules run inside a Guest (harness/vm.py), on cgroup v2:

    status, out = run_modules_in_guest(["test_cgroups.py"])

The guest holds what those tests use on the host, at the same paths: Debian's
python3 with its standard library and the packages pytest, grpc and the
harness import; docker-registry; the CNI loopback plugin; iproute2's ip. The
tests and the harness go to /src (tests/integration, tests/fixtures), the
build's criusd, crius-monitor, Python stubs and compiled fixtures to /b
($CRIUS_BUILD_DIR there); the kernel's overlay module is loaded. pytest runs in /src/tests/integration with
CRIUS_GUEST=1; run() returns its exit status and output.
"""
import os
from pathlib import Path

from .cri import stub_dir
from .fixtures import fixture_binary
from .util import FIXTURES_DIR, SOURCE_ROOT, HarnessError, build_dir
from .vm import Guest, kernel_module

PYTHON = "/usr/bin/python3"
STDLIB = Path("/usr/lib/python3.11")
DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")
# What pytest, grpc, protobuf and the harness import from dist-packages.
PACKAGES = ("_pytest", "pytest", "pluggy", "iniconfig", "packaging", "py", "py.py", "attr",
            "grpc", "google")
# Standard library parts no test imports: left out to keep the initramfs small.
STDLIB_SKIPPED = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
                  "pydoc_data", "config-3.11-x86_64-linux-gnu", "site-packages",
                  "dist-packages", "distutils"}
HOST_TOOLS = ("/usr/bin/docker-registry", "/usr/lib/cni/loopback", "/usr/bin/ip")
BUILD_FILES = ("criusd", "crius-monitor")
FIXTURES = ("hog", "sleeper", "euid")


def _tree(root, dest, skipped=()):
    """{dest/relative: host path} for the regular files below root; bytecode
    only as the interpreter reads it by default (no .opt-N)."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skipped]
        for name in filenames:
            if ".opt-" in name:
                continue
            path = Path(dirpath) / name
            if path.is_file():
                files[str(Path(dest) / path.relative_to(root))] = path
    return files


def python_files():
    """Debian's python3 and what the tests import, at their host paths."""
    files = {PYTHON: Path(os.path.realpath(PYTHON))}
    files.update(_tree(STDLIB, STDLIB, STDLIB_SKIPPED))
    for name in PACKAGES:
        path = DIST_PACKAGES / name
        if path.is_dir():
            files.update(_tree(path, path, {"tests"}))
        elif path.is_file():
            files[str(path)] = path
        else:
            raise HarnessError(f"{path} missing (Debian package python3-pytest or python3-grpcio)")
    return files


def suite_files(modules):
    """Everything the integration test modules need in the guest."""
    if build_dir() is None:
        raise HarnessError("set CRIUS_BUILD_DIR: the guest runs the build's criusd")
    files = python_files()
    for tool in HOST_TOOLS:
        if not os.path.exists(tool):
            raise HarnessError(f"{tool} missing (build.sh installs it)")
        files[tool] = Path(os.path.realpath(tool))
    integration = SOURCE_ROOT / "tests" / "integration"
    for module in ["conftest.py", *modules]:
        files[f"/src/tests/integration/{module}"] = integration / module
    files.update(_tree(integration / "harness", "/src/tests/integration/harness", {"__pycache__"}))
    files.update(_tree(FIXTURES_DIR, "/src/tests/fixtures"))
    for name in BUILD_FILES:
        files[f"/b/{name}"] = build_dir() / name
    for name in FIXTURES:
        binary = Path(fixture_binary(name))  # compiled on the host, found by hash in the guest
        files[f"/b/test-fixtures/{binary.name}"] = binary
    stubs = Path(stub_dir())
    for stub in stubs.glob("*.py"):
        files[f"/b/python/{stub.name}"] = stub
    files["/lib/modules/overlay.ko"] = kernel_module("overlay")
    files["/etc/passwd"] = b"root:x:0:0:root:/root:/bin/sh\n"
    files["/etc/group"] = b"root:x:0:\n"
    files["/etc/hosts"] = b"127.0.0.1 localhost\n::1 localhost\n"
    return files


def run_modules_in_guest(modules, timeout=1500, args=()):
    """Boots a guest and runs pytest on the modules there: (exit status, output)."""
    env = {"CRIUS_BUILD_DIR": "/b", "CRIUS_SOURCE_DIR": "/src", "CRIUS_PY_STUBS": "/b/python",
           "PYTHONDONTWRITEBYTECODE": "1", "CRIUS_GUEST": "1", "HOME": "/root"}
    script = ("insmod /lib/modules/overlay.ko && ip link set lo up && cd /src/tests/integration && "
              "exec python3 -m pytest -p no:cacheprovider -q -rfEs --color=no "
              + " ".join([*args, *modules]))
    with Guest(files=suite_files(modules), env=env, memory=3072, timeout=timeout, tmpfs_root=True) as g:
        return g.run(["sh", "-c", script])
