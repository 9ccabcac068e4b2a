"""What bench/run.py and bench/soak.py share: the harness on sys.path,
cgroup reading and confining, containerd unpacked from Debian's .debs and run
beside criusd, the CNI bridge networks, and removing what the drivers made.

Imported by the drivers, not run on its own.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP / "tests" / "integration"))
os.environ.setdefault("CRIUS_BUILD_DIR", str(TOP / "build"))
os.environ.setdefault("CRIUS_PY_STUBS", os.path.join(os.environ["CRIUS_BUILD_DIR"], "python"))

from harness import cri  # noqa: E402
from harness.util import mounts_under  # noqa: E402

BUILD = Path(os.environ["CRIUS_BUILD_DIR"])
DEBS = BUILD / "test-debs"
CGROUP_ROOT = Path("/sys/fs/cgroup")


# --- cgroups: where a runtime's processes are, and their CPU time ------------------

V2 = (CGROUP_ROOT / "cgroup.controllers").exists()


def cgroup_dir(controller, path):
    """A cgroup's directory in the hierarchy of `controller` (the one tree on v2)."""
    path = path.strip("/")
    return CGROUP_ROOT / path if V2 else CGROUP_ROOT / controller / path


def hierarchies():
    """The directory of every mounted cgroup hierarchy: the one tree on v2;
    each v1 controller's (and named) tree and the unified one of a hybrid host."""
    if V2:
        return [CGROUP_ROOT]
    return sorted(p for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink())


def cpu_ns(path):
    """CPU time of everything in the cgroup `path` and below, nanoseconds."""
    d = cgroup_dir("cpuacct", path)
    try:
        if V2:
            for line in open(d / "cpu.stat"):
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) * 1000
            return 0
        return int((d / "cpuacct.usage").read_text())
    except FileNotFoundError:
        return 0


def procs(path):
    try:
        return [int(p) for p in (cgroup_dir("memory", path) / "cgroup.procs").read_text().split()]
    except FileNotFoundError:
        return []


def pss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def confine(pid, path):
    """Puts a daemon (before it has children) in the cgroup `path`, so its CPU
    time and that of what it starts (CNI plugins, shims) can be read."""
    for controller in (("",) if V2 else ("cpuacct", "memory")):
        d = cgroup_dir(controller, path)
        d.mkdir(parents=True, exist_ok=True)
        (d / "cgroup.procs").write_text(str(pid))
    return path


def remove_cgroup_tree(path):
    """rmdir the cgroup `path` and everything below it, deepest first, in
    every hierarchy; a cgroup that still holds a process stays."""
    for base in hierarchies():
        top = base / path.strip("/")
        if not top.is_dir():
            continue
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [top]:
            try:
                d.rmdir()
            except OSError:
                pass


# --- the CNI bridge -----------------------------------------------------------------

def bridge_network(conf_dir, name, bridge, subnet, ipam_dir):
    """Writes a CNI network of Debian's bridge and host-local plugins into
    conf_dir: one bridge per runtime, so address pools never meet."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "10-bench.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": name, "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False,
             "ipam": {"type": "host-local", "dataDir": str(ipam_dir), "ranges": [[{"subnet": subnet}]]}}]}))
    return conf_dir


class CniCache:
    """libcni's cache (containerd's results) has no place but /var/lib/cni:
    what of it a run makes is removed at the end."""

    def __init__(self):
        self.made = [p for p in (Path("/var/lib/cni"), Path("/var/lib/cni/results")) if not p.exists()]

    def remove(self):
        for p in reversed(self.made):
            try:
                p.rmdir()
            except OSError:
                pass


# --- containerd from Debian's .debs ----------------------------------------------

def unpacked_containerd():
    """The unpacked root holding containerd, its runc shim, runc and crun."""
    root = BUILD / "bench-root"
    if (root / ".done").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for package in ("containerd", "runc", "crun", "libyajl2"):
        debs = sorted(DEBS.glob(f"{package}_*.deb"))
        if not debs:
            raise SystemExit(f"bench: no {package}.deb in {DEBS}: run it as ./build.sh bench")
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(root)], check=True)
    (root / ".done").write_text("")
    return root


class Containerd:
    """containerd with its CRI plugin on its own socket, root, state and CNI
    network, in `netns`, inside a mount namespace of its own without the
    empty cgroup2 tree of a hybrid host (crun 1.8 refuses such a host)."""

    def __init__(self, workdir, netns, registry, pause_ref, cni_dir):
        self.root = unpacked_containerd()
        self.workdir = workdir
        self.socket = workdir / "containerd.sock"
        usr = self.root / "usr"
        runc = usr / "sbin" / "runc"
        crun = usr / "bin" / "crun"
        config = f"""version = 2
root = "{workdir}/root"
state = "{workdir}/state"
[grpc]
  address = "{self.socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_ref}"
  # This node lacks CAP_SYS_RESOURCE: a negative oom_score_adj cannot be set.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun.options]
        BinaryName = "{crun}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni_dir}"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{registry.host}"]
    endpoint = ["http://{registry.host}"]
"""
        (workdir / "config.toml").write_text(config)
        hide = "mountpoint -q /sys/fs/cgroup/unified && umount /sys/fs/cgroup/unified; "
        self.command = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                        hide + f'exec nsenter --net={netns.path} containerd --config "$0"',
                        str(workdir / "config.toml")]
        self.env = dict(os.environ, PATH=f"{usr}/bin:{usr}/sbin:{os.environ['PATH']}",
                        LD_LIBRARY_PATH=str(usr / "lib" / "x86_64-linux-gnu"))
        self.proc = None
        self.client = None

    def start(self, timeout=30):
        log = open(self.workdir / "containerd.log", "ab")
        self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.socket.exists():
                c = cri.Client(self.socket)
                try:
                    c.runtime.Status(c.pb.StatusRequest(), timeout=2)
                    self.client = c
                    return self
                except Exception:  # noqa: BLE001 - not up yet
                    c.close()
            time.sleep(0.1)
        raise SystemExit(f"bench: containerd did not come up; see {self.workdir}/containerd.log")

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.client:
            self.client.close()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def remove_pods(client, timeout=120):
    """Stops and removes every pod the runtime behind `client` has."""
    rt, pb = client.runtime, client.pb
    for p in rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=60).items:
        rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=p.id), timeout=timeout)
        rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=timeout)


def unmount_and_remove(work):
    """The work dir of a run, with whatever is still mounted below it
    (deepest first, lazily: a daemon that died mid-pod leaves mounts)."""
    for point in sorted(mounts_under(work), key=lambda p: -p.count("/")):
        subprocess.run(["umount", "-l", point], capture_output=True)
    shutil.rmtree(work, ignore_errors=True)


def close_run(registry, ns, cni_cache, work, *cgroup_trees):
    """What a driver made around its daemons, once they are stopped: the
    registry, the netns, the cgroup trees (whatever kubelet would have
    removed and the daemons' own), the CNI cache and the work dir."""
    if registry is not None:
        registry.close()
    ns.delete()
    for path in cgroup_trees:
        remove_cgroup_tree(path)
    cni_cache.remove()
    unmount_and_remove(work)


def pct(values, p):
    """The p-th percentile of values, interpolated; nan for none."""
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)
