"""Named network namespaces made by tests, and running Python code inside one.

    with Netns() as ns:                  # ip netns add crius-test-XXXX; lo up
        ns.run(["ip", "addr"])           # ip netns exec
        ns.call(urlopen, url)            # a Python callable, on a thread in the netns
"""
import ctypes
import os
import secrets
import subprocess
import threading

from .util import HarnessError

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def call_in(netns_path, fn, *args, **kwargs):
    """Run fn(*args, **kwargs) on a fresh thread that joined the netns at netns_path.

    setns(CLONE_NEWNET) moves only the calling thread, so the rest of the test
    process stays in the host netns; sockets made by fn belong to the netns.
    """
    result = {}

    def body():
        try:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns_path}: {os.strerror(err)}")
            finally:
                os.close(fd)
            result["value"] = fn(*args, **kwargs)
        except BaseException as e:  # re-raised on the caller's thread
            result["error"] = e

    t = threading.Thread(target=body, name=f"netns:{netns_path}")
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


class Netns:
    """A uniquely named netns (/run/netns/NAME) with lo up; delete() removes it."""

    def __init__(self, prefix="crius-test"):
        self.name = f"{prefix}-{secrets.token_hex(4)}"
        self.path = f"/run/netns/{self.name}"
        self.created = False

    def create(self):
        _ip("netns", "add", self.name)
        self.created = True
        try:
            _ip("-n", self.name, "link", "set", "lo", "up")
        except BaseException:
            self.delete()
            raise
        return self

    def exec_prefix(self):
        """Command prefix that runs a program inside this netns (exec, same pid)."""
        return ["nsenter", f"--net={self.path}"]

    def run(self, cmd, **kwargs):
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(["ip", "netns", "exec", self.name] + list(cmd), **kwargs)

    def call(self, fn, *args, **kwargs):
        return call_in(self.path, fn, *args, **kwargs)

    def delete(self):
        if self.created:
            _ip("netns", "delete", self.name)
            self.created = False

    def __enter__(self):
        return self.create()

    def __exit__(self, *exc):
        self.delete()


def _ip(*args):
    run = subprocess.run(["ip"] + list(args), capture_output=True, text=True)
    if run.returncode != 0:
        raise HarnessError(f"ip {' '.join(args)}: {run.stderr.strip()}")
    return run.stdout
