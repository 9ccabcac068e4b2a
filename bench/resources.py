"""What a leak would grow, counted for one CRI runtime under soak
(bench/soak.py): mounts, namespace pins, cgroups, links, iptables chains and
rules, IP reservations, files, processes, the daemon's fds, threads and
memory, the state database's pages. Imported by the driver, not run on its own.
"""
import os
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

from common import V2, hierarchies, pss_kib
from harness.util import unescape_mount

RSS_SLACK_KIB = 1024
# Recorded, never growth: PSS moves as other processes share pages, RSS's
# parts explain its growth, and the database files are figures, not resources.
INFORMATIONAL = {"pss_kib", "rss_anon_kib", "rss_file_kib", "db_bytes", "wal_bytes", "db_free_pages"}


class Target:
    """One CRI endpoint under soak and where to look for what it keeps."""

    def __init__(self, name, daemon, client, pid, workdir, root, state, ns, ipam_dir, network, images,
                 daemon_cgroup, cgroup_parent, handler, unikernel_every=0, flavours=()):
        self.name, self.daemon, self.client, self.pb, self.pid = name, daemon, client, client.pb, pid
        self.cgroup_parent = cgroup_parent
        self.workdir, self.root, self.state = Path(workdir), Path(root), Path(state)
        self.ns, self.ipam, self.network = ns, Path(ipam_dir) / network, network
        self.images, self.daemon_cgroup, self.handler = images, daemon_cgroup, handler
        self.unikernel_every, self.flavours = unikernel_every, flavours
        self.soak = None

    def alive(self):
        return self.daemon.proc.poll() is None

    def kind(self, k):
        """Namespace pod, or (every Kth) a unikernel flavour, in turn."""
        if self.unikernel_every and self.flavours and k % self.unikernel_every == 0:
            return self.flavours[(k // self.unikernel_every - 1) % len(self.flavours)]
        return "ns"


def _mountinfo(pid):
    points = []
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            points.append((unescape_mount(fields[4]), fields[sep + 1]))
    return points


def _entries(top, dirs_only=False):
    """Paths of everything below top (files, dirs, sockets, links; with
    dirs_only, directories), not following links."""
    found = set()
    for root, dirs, files in os.walk(top):
        found.update(os.path.join(root, n) for n in (dirs if dirs_only else dirs + files))
    return found


def _in_netns(t, cmd):
    # nsenter --net only: `ip netns exec` would remount /sys for the command.
    return subprocess.run(["nsenter", f"--net={t.ns.path}"] + cmd, capture_output=True, text=True,
                          check=True).stdout


def _links(t):
    veths, taps = set(), set()
    for line in _in_netns(t, ["ip", "-o", "-d", "link", "show"]).splitlines():
        name = line.split(": ")[1].split("@")[0]
        words = line.split()
        if "veth" in words:
            veths.add(name)
        elif "tun" in words or name.startswith("tap"):
            taps.add(name)
    return veths, taps


def _iptables(t):
    chains, rules = set(), Counter()
    table = ""
    for line in _in_netns(t, ["iptables-save"]).splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":CNI-"):
            chains.add(f"{table} {line[1:].split()[0]}")
        elif line.startswith("-A ") and "CNI-" in line:
            rules[f"{table} {line}"] += 1
    return chains, rules


def _processes(t):
    """Pids (and command lines) of what the runtime runs for pods: whatever
    names its work dir (monitors, shims), with their descendants."""
    parents, cmdlines = {}, {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdlines[int(name)] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        parents[int(name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    ours = {p for p, c in cmdlines.items() if str(t.workdir) in c and p != t.pid}
    grown = True
    while grown:
        more = {p for p, pp in parents.items() if pp in ours and p not in ours}
        ours |= more
        grown = bool(more)
    return {f"{p} {cmdlines.get(p, '')[:160]}" for p in ours}


def _status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _database(t):
    """crius's SQLite (page count and free pages, read-only: no checkpoint,
    no lock held past the read), or containerd's bolt file (its size in 4 KiB
    pages); and the file sizes."""
    db = t.root / "state.db"
    out = {}
    if db.exists():
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            out["db_pages"] = con.execute("PRAGMA page_count").fetchone()[0]
            out["db_free_pages"] = con.execute("PRAGMA freelist_count").fetchone()[0]
        finally:
            con.close()
        wal = db.with_name("state.db-wal")
        out["wal_bytes"] = wal.stat().st_size if wal.exists() else 0
    else:
        db = t.root / "io.containerd.metadata.v1.bolt" / "meta.db"
        out["db_pages"] = db.stat().st_size // 4096 if db.exists() else 0
    out["db_bytes"] = db.stat().st_size if db.exists() else 0
    return out


def _others(t, point):
    """Whether a mount point is another test run's or bench's (their work
    dirs are /tmp/crius-*, their netns /run/netns/crius-*): tests may run
    beside the soak on the same host."""
    if point.startswith("/tmp/crius-"):
        return not point.startswith(str(t.workdir.parent) + "/")
    return point.startswith("/run/netns/crius-") and point != t.ns.path


def snapshot(t):
    """Counts of every resource, and the things counted (to name what grew)."""
    items = {}
    mounts = [m for m in _mountinfo(t.pid) if not _others(t, m[0])]
    items["mounts"] = Counter(mounts)
    dirs = (str(t.root) + "/", str(t.state) + "/")
    items["mounts_under"] = Counter(m for m in mounts if m[0].startswith(dirs))
    items["ns_pins"] = Counter(m for m in mounts if m[1] == "nsfs")
    # Test runs and benches make their own crius-* netns beside this one.
    items["run_netns"] = {n for n in os.listdir("/run/netns") if not n.startswith("crius-")} \
        if os.path.isdir("/run/netns") else set()
    for h in hierarchies():
        top = h / t.cgroup_parent.strip("/")
        items[f"cgroups:{h.name if not V2 else 'unified'}"] = _entries(top, dirs_only=True)
    items["veths"], items["taps"] = _links(t)
    items["iptables_chains"], items["iptables_rules"] = _iptables(t)
    items["ipam"] = {f for f in os.listdir(t.ipam) if f[0].isdigit() or ":" in f} if t.ipam.is_dir() else set()
    # libcni's result cache (containerd's; crius keeps its own in the pod's state dir).
    results = Path("/var/lib/cni/results")
    items["cni_cache"] = {f for f in os.listdir(results) if f.startswith(t.network + "-")} \
        if results.is_dir() else set()
    items["files_root"], items["files_state"] = _entries(t.root), _entries(t.state)
    items["processes"] = _processes(t)
    items["fds"] = set(os.listdir(f"/proc/{t.pid}/fd"))
    items["threads"] = set(os.listdir(f"/proc/{t.pid}/task"))
    counts = {k: sum(v.values()) if isinstance(v, Counter) else len(v) for k, v in items.items()}
    counts["cgroups"] = sum(v for k, v in counts.items() if k.startswith("cgroups:"))
    counts["rss_kib"] = _status_kib(t.pid, "VmRSS")
    # Anonymous (heap, stacks) apart from file pages (code and libraries,
    # which grow as new paths run): what a leak grows is the first.
    counts["rss_anon_kib"] = _status_kib(t.pid, "RssAnon")
    counts["rss_file_kib"] = _status_kib(t.pid, "RssFile")
    counts["pss_kib"] = pss_kib(t.pid)
    counts.update(_database(t))
    return counts, items


def growth(base, counts):
    """{key: delta} of what is above the baseline (RSS: by more than 1 MiB)."""
    grew = {}
    for k, v in counts.items():
        if k in INFORMATIONAL or k == "cgroups":
            continue
        d = v - base[0].get(k, 0)
        if d > (RSS_SLACK_KIB if k == "rss_kib" else 0):
            grew[k] = d
    return grew


def new_items(base, items, keys, limit=8):
    out = {}
    for k in keys:
        if k not in items:
            continue
        if isinstance(items[k], Counter):
            new = sorted(f"{p} ({fs})" for (p, fs) in (items[k] - base[1][k]).elements())
        else:
            new = sorted(str(x) for x in items[k] - base[1].get(k, set()))
        if new:
            out[k] = new[:limit]
    return out


def settled(t, base, settle):
    """A snapshot, taken again for up to `settle` seconds while something is
    above the baseline (a shim or a monitor may still be exiting)."""
    deadline = time.monotonic() + settle
    while True:
        counts, items = snapshot(t)
        if not growth(base, counts) or time.monotonic() >= deadline:
            return counts, items
        time.sleep(0.25)
