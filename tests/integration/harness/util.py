"""Small helpers shared by the harness: paths, temp dirs, waiting, log tails."""
import errno
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[3]
FIXTURES_DIR = SOURCE_ROOT / "tests" / "fixtures"


class HarnessError(Exception):
    """The harness could not set something up; the message says what and why."""


def build_dir():
    """$CRIUS_BUILD_DIR as a Path, or None."""
    d = os.environ.get("CRIUS_BUILD_DIR")
    return Path(d) if d else None


def short_tmpdir(prefix="crius-"):
    """A fresh dir directly under /tmp: unix socket paths must stay < 108 bytes."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def mounts_under(path):
    """Mount points at or below path, as seen in our mount namespace."""
    path = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = unescape_mount(line.split()[4])
            if point == path or point.startswith(path + "/"):
                found.append(point)
    return found


def unescape_mount(field):
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    return field.encode().decode("unicode_escape").encode("latin-1").decode()


def remove_tree(path):
    """rmtree that refuses to descend into mounts (it would delete their content)."""
    if not os.path.lexists(path):
        return
    busy = mounts_under(path)
    if busy:
        raise HarnessError(f"not removing {path}: still mounted below it: {busy}")
    shutil.rmtree(path)


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    """Poll predicate() until it returns a true value; return it or raise on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def tail(path, lines=40):
    """Last lines of a text file ('' if it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (callers retry on EADDRINUSE)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def rmdir_cgroup(path, timeout=5):
    """rmdir of a cgroup directory, retried while the kernel still releases
    tasks that just died (EBUSY); gone already is fine."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
