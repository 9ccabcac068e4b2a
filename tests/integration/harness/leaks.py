"""Leak checker: what a test left behind on the host.

    lc = LeakChecker()            # snapshots now
    ... test ...
    lc.check()                    # raises LeakError listing every new mount, cgroup,
                                  # netns, link, process and fd of this process

A new process counts when it is ours: a descendant of the test process, or of
a process that carries this session's CRIUS_HARNESS_SESSION in its environment
(criusd and the monitors it spawns, even once reparented to init; their
containers are their descendants), or whose command line names a path given
to own_path() (every Daemon's workdir).
Other processes are not ours: ctest runs other tests beside us and developers
share machines. strict=True counts every new process (kernel threads aside),
for a machine known to be quiet. keep_pid() marks harness fixtures that outlive
a test. Mounts, cgroups, netns and links are host-wide: tests that make them
must not run beside a leak-checked test (ctest RESOURCE_LOCK).
"""
import os
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from .cri import warm_up_grpc
from .util import unescape_mount

SESSION_VAR = "CRIUS_HARNESS_SESSION"
SESSION = os.environ.setdefault(SESSION_VAR, uuid.uuid4().hex)
_long_lived = set()
_owned_paths = set()
CGROUP_ROOT = "/sys/fs/cgroup"


def keep_pid(pid):
    """Ignore pid (and its descendants) in every check: a long-lived harness fixture."""
    _long_lived.add(pid)


def forget_pid(pid):
    _long_lived.discard(pid)


def own_path(path):
    """A new process whose command line names path is ours (a Daemon's workdir:
    its monitors are found so even if criusd gave them an empty environment)."""
    _owned_paths.add(str(path))


class LeakError(AssertionError):
    def __init__(self, leaks):
        self.leaks = leaks
        super().__init__("left behind:\n  " + "\n  ".join(leaks))


@dataclass
class Proc:
    pid: int
    ppid: int
    start: int  # clock ticks since boot: (pid, start) names a process uniquely
    state: str
    comm: str


@dataclass
class Snapshot:
    mounts: Counter = field(default_factory=Counter)
    cgroups: set = field(default_factory=set)
    netns_names: set = field(default_factory=set)
    netns_inodes: dict = field(default_factory=dict)  # inode -> [pid]
    links: set = field(default_factory=set)
    procs: dict = field(default_factory=dict)  # pid -> Proc
    fds: dict = field(default_factory=dict)  # fd -> ((dev, inode), target)


def take(cgroup_depth=8):
    return Snapshot(mounts=_mounts(), cgroups=_cgroups(cgroup_depth),
                    netns_names=set(_listdir("/run/netns")), netns_inodes=_netns_inodes(),
                    links=_links(), procs=_procs(), fds=_fds())


class LeakChecker:
    def __init__(self, ignore_pids=(), cgroup_depth=8, strict=False):
        warm_up_grpc()
        self.strict = strict
        self.cgroup_depth = cgroup_depth
        self.ignored = set(ignore_pids)
        self.before = take(cgroup_depth)

    def ignore_pid(self, pid):
        """Expected to outlive the test (with its descendants); not a leak."""
        self.ignored.add(pid)

    def leaks(self):
        """One readable line per thing that is new since the snapshot."""
        before, after = self.before, take(self.cgroup_depth)
        ignored = _with_descendants(self.ignored | _long_lived, after.procs)
        ours = self._ours(after.procs)
        found = []
        for (point, fstype, source), n in (after.mounts - before.mounts).items():
            found.append(f"mount: {point} ({fstype} from {source})" + (f" x{n}" if n > 1 else ""))
        found += [f"cgroup: {d}" for d in sorted(after.cgroups - before.cgroups)]
        found += [f"netns: /run/netns/{n}" for n in sorted(after.netns_names - before.netns_names)]
        for inode, pids in sorted(after.netns_inodes.items()):
            holders = [p for p in pids if p in ours and p not in ignored]
            if inode not in before.netns_inodes and holders:
                found.append(f"netns: net:[{inode}] held by pids {holders}")
        found += [f"link: {n}" for n in sorted(after.links - before.links)]
        for p in sorted(after.procs.values(), key=lambda p: p.pid):
            if p.pid in ours and p.pid not in ignored and _is_new(p, before.procs):
                found.append(f"process: pid {p.pid} ppid {p.ppid} state {p.state} "
                             f"{_cmdline(p.pid) or p.comm!r}")
        for fd, (identity, target) in sorted(after.fds.items()):
            # The same open file, even if it was renamed or deleted meanwhile.
            if before.fds.get(fd, (None,))[0] != identity:
                found.append(f"fd: {fd} -> {target}")
        return found

    def check(self, settle=3.0):
        """Raise LeakError unless nothing is new; waits up to settle seconds for
        things that go away asynchronously (exiting processes, netns teardown)."""
        deadline = time.monotonic() + settle
        while True:
            found = self.leaks()
            if not found or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        if found:
            raise LeakError(found)

    def _ours(self, procs):
        """Pids (of procs) that this test session may have left behind."""
        if self.strict:
            return {p.pid for p in procs.values() if p.pid != 2 and p.ppid != 2}
        new = [p.pid for p in procs.values() if _is_new(p, self.before.procs)]
        roots = {os.getpid()} | {pid for pid in new if _environ_has_session(pid)
                                 or any(path in _cmdline(pid) for path in _owned_paths)}
        return _with_descendants(roots, procs)


def _is_new(p, before):
    old = before.get(p.pid)
    return old is None or old.start != p.start


def _with_descendants(pids, procs):
    result = set(pids)
    changed = True
    while changed:
        changed = False
        for p in procs.values():
            if p.ppid in result and p.pid not in result:
                result.add(p.pid)
                changed = True
    return result


def _mounts():
    mounts = Counter()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            mounts[(unescape_mount(fields[4]), fields[sep + 1], fields[sep + 2])] += 1
    return mounts


def _cgroups(max_depth):
    dirs = set()
    base = CGROUP_ROOT.count("/")
    for root, subdirs, _ in os.walk(CGROUP_ROOT):
        if root.count("/") - base >= max_depth:
            subdirs[:] = []
        dirs.update(os.path.join(root, d) for d in subdirs)
    return dirs


def _links():
    run = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                         check=True)
    return {line.split(": ")[1].split("@")[0] for line in run.stdout.splitlines() if ": " in line}


def _procs():
    procs = {}
    for name in _listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # exited meanwhile
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        rest = stat[stat.rindex(")") + 2:].split()
        procs[int(name)] = Proc(int(name), int(rest[1]), int(rest[19]), rest[0], comm)
    return procs


def _netns_inodes():
    inodes = {}
    for name in _listdir("/proc"):
        if name.isdigit():
            ns = _namespaces(int(name)).get("net")
            if ns:
                inodes.setdefault(ns, []).append(int(name))
    return inodes


def _namespaces(pid, kinds=("net",)):
    result = {}
    for kind in kinds:
        try:
            result[kind] = int(os.readlink(f"/proc/{pid}/ns/{kind}").split("[")[1][:-1])
        except OSError:
            pass
    return result


def _fds():
    fds = {}
    own = f"/proc/{os.getpid()}/fd"
    for name in _listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
            st = os.stat(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the listdir's own fd, closed by now
        if not target.startswith(own):
            fds[int(name)] = ((st.st_dev, st.st_ino), target)
    return fds


def _environ_has_session(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f"{SESSION_VAR}={SESSION}".encode() in f.read().split(b"\0")
    except OSError:
        return False


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _listdir(path):
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []
