"""Pods and containers in cgroups through criusd, on the node's hierarchy,
whichever version it runs: the pod cgroup kubelet names, one cgroup per
container with its resources, OOM kills reported as OOMKilled, a fork bomb
held by a pids limit, UpdateContainerResources on a running container, and
the device policy, pods sharing a cgroup_parent crius made. This node runs v1; test_cgroups_v2_guest.py runs this
module again in a guest booted with cgroup v2 only."""
import json
import os
import subprocess
import time

import grpc
import pytest

from harness import oci
from harness.util import rmdir_cgroup

pytestmark = pytest.mark.usefixtures("leak_check")

CG = "/sys/fs/cgroup"
V2 = os.path.exists(os.path.join(CG, "cgroup.controllers"))


def hierarchies():
    """v2: the one tree; v1: every hierarchy directory (one per mount; symlinks skipped)."""
    if V2:
        return [CG]
    return sorted(os.path.join(CG, h) for h in os.listdir(CG)
                  if not os.path.islink(os.path.join(CG, h)) and h not in ("unified", "systemd")
                  and os.path.isdir(os.path.join(CG, h)))


def cg_file(controller, cgroup, name=""):
    """A file (or with no name, the directory) of a cgroup, in `controller`'s hierarchy on v1."""
    top = CG if V2 else os.path.join(CG, controller)
    return os.path.join(top, cgroup.lstrip("/"), name)


def read(controller, cgroup, name):
    return open(cg_file(controller, cgroup, name)).read().strip()


def shares_to_weight(shares):
    """v1 cpu.shares as v2 cpu.weight (runc's and crun's mapping)."""
    return 1 + ((shares - 2) * 9999) // 262142


def node_device():
    """A character device the node itself can open and no default list allows:
    /dev/kvm here; the rtc in the guest, which has no KVM."""
    for path in ("/dev/kvm", "/dev/rtc0"):
        if os.path.exists(path):
            with open(path, "rb", buffering=0):
                pass
            return path
    pytest.skip("neither /dev/kvm nor /dev/rtc0 on this node")


@pytest.fixture(scope="module")
def image(registry):
    return oci.push(registry, oci.hog_image(), "cgroups").ref


@pytest.fixture
def d(make_daemon, registry, image):
    d = make_daemon(config=f'[registry]\ninsecure = ["{registry.host}"]\n')
    d.image.PullImage(d.pb.PullImageRequest(image=d.pb.ImageSpec(image=image)), timeout=60)
    yield d
    remove_pods(d)


def remove_pods(d):
    if d.running:
        pb = d.pb
        for p in d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items:
            d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=p.id), timeout=30)
            d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=30)


@pytest.fixture
def kubelet_parent(d):
    """A pod cgroup made as kubelet makes it (in every hierarchy), removed after
    the daemon's pods, as kubelet removes it after RemovePodSandbox."""
    path = f"/crius-test-{os.getpid()}/pod-x"
    for h in hierarchies():
        top = os.path.join(h, path.lstrip("/").split("/")[0])
        os.makedirs(os.path.join(h, path.lstrip("/")), exist_ok=True)
        if V2:  # kubelet passes the controllers down to its pod cgroups
            controllers = open(os.path.join(top, "cgroup.controllers")).read().split()
            for level in (top, os.path.join(h, path.lstrip("/"))):
                with open(os.path.join(level, "cgroup.subtree_control"), "w") as f:
                    f.write(" ".join("+" + c for c in controllers))
        elif h.endswith("cpuset"):
            for level in (top, os.path.join(h, path.lstrip("/"))):
                for f in ("cpuset.cpus", "cpuset.mems"):
                    with open(os.path.join(os.path.dirname(level), f)) as src:
                        value = src.read()
                    with open(os.path.join(level, f), "w") as dst:
                        dst.write(value)
    yield path
    remove_pods(d)
    for h in hierarchies():
        for level in (path, os.path.dirname(path)):
            rmdir_cgroup(os.path.join(h, level.lstrip("/")))


class Pod:
    def __init__(self, d, tmp, image, cgroup_parent="", name="cg"):
        pb = self.pb = d.pb
        self.d, self.image, self.logs = d, image, tmp / name / "logs"
        self.cfg = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, namespace="cg", uid=f"u-{name}"),
            log_directory=str(self.logs))
        self.cfg.linux.cgroup_parent = cgroup_parent
        self.id = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=self.cfg), timeout=60).pod_sandbox_id
        self.n = 0

    def create(self, script, resources=None, **kw):
        pb = self.pb
        self.n += 1
        cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=f"c{self.n}"),
                                 image=pb.ImageSpec(image=self.image), command=["sh", "-c", script],
                                 log_path=f"c{self.n}.log", **kw)
        if resources:
            cfg.linux.resources.CopyFrom(resources)
        return self.d.runtime.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=self.id, config=cfg, sandbox_config=self.cfg), timeout=60).container_id

    def start(self, cid):
        self.d.runtime.StartContainer(self.pb.StartContainerRequest(container_id=cid), timeout=60)

    def status(self, cid):
        return self.d.runtime.ContainerStatus(self.pb.ContainerStatusRequest(container_id=cid)).status

    def wait_exit(self, cid, timeout=30):
        deadline = time.monotonic() + timeout
        while (s := self.status(cid)).state != self.pb.CONTAINER_EXITED:
            assert time.monotonic() < deadline, f"container {cid} still running"
            time.sleep(0.05)
        return s

    def log(self, n):
        return (self.logs / f"c{n}.log").read_text()


def cgroup_of(pid, controller="memory"):
    for line in open(f"/proc/{pid}/cgroup"):
        number, names, path = line.rstrip("\n").split(":", 2)
        if (V2 and number == "0") or (not V2 and controller in names.split(",")):
            return path
    raise AssertionError(f"no {controller} cgroup for {pid}")


def test_pod_and_containers_live_in_the_pod_cgroup(d, tmp, image, kubelet_parent):
    p = Pod(d, tmp, image, cgroup_parent=kubelet_parent)
    info = json.loads(d.runtime.PodSandboxStatus(
        d.pb.PodSandboxStatusRequest(pod_sandbox_id=p.id, verbose=True)).info["info"])
    assert cgroup_of(info["monitorPid"]) == f"{kubelet_parent}/{p.id}"
    cid = p.create("sleep 30")
    p.start(cid)
    pid = int(read("memory", f"{kubelet_parent}/{cid}", "cgroup.procs").split()[0])
    assert cgroup_of(pid) == f"{kubelet_parent}/{cid}"
    d.runtime.RemoveContainer(d.pb.RemoveContainerRequest(container_id=cid), timeout=30)
    assert not os.path.exists(cg_file("memory", f"{kubelet_parent}/{cid}"))
    d.runtime.StopPodSandbox(d.pb.StopPodSandboxRequest(pod_sandbox_id=p.id), timeout=30)
    d.runtime.RemovePodSandbox(d.pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=30)
    # kubelet's pod cgroup is kubelet's: crius leaves it, empty.
    assert os.listdir(cg_file("memory", kubelet_parent))
    assert not os.path.exists(cg_file("memory", f"{kubelet_parent}/{p.id}"))


def test_resources_land_in_the_containers_cgroup(d, tmp, image):
    p = Pod(d, tmp, image)
    pb = d.pb
    r = pb.LinuxContainerResources(cpu_period=100000, cpu_quota=50000, cpu_shares=512,
                                   memory_limit_in_bytes=64 << 20, cpuset_cpus="0", cpuset_mems="0")
    cid = p.create("sleep 30", resources=r)
    cg = f"/crius/{p.id}/{cid}"
    if V2:
        assert read("cpu", cg, "cpu.max") == "50000 100000"
        assert read("cpu", cg, "cpu.weight") == str(shares_to_weight(512))
        assert read("memory", cg, "memory.max") == str(64 << 20)
    else:
        assert read("cpu", cg, "cpu.cfs_quota_us") == "50000"
        assert read("cpu", cg, "cpu.cfs_period_us") == "100000"
        assert read("cpu", cg, "cpu.shares") == "512"
        assert read("memory", cg, "memory.limit_in_bytes") == str(64 << 20)
    assert read("cpuset", cg, "cpuset.cpus") == "0"
    p.start(cid)
    # UpdateContainerResources on the running container.
    d.runtime.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=pb.LinuxContainerResources(memory_limit_in_bytes=128 << 20, cpu_quota=20000,
                                                           cpu_period=100000)))
    if V2:
        assert read("memory", cg, "memory.max") == str(128 << 20)
        assert read("cpu", cg, "cpu.max") == "20000 100000"
    else:
        assert read("memory", cg, "memory.limit_in_bytes") == str(128 << 20)
        assert read("cpu", cg, "cpu.cfs_quota_us") == "20000"
    assert p.status(cid).resources.linux.memory_limit_in_bytes == 128 << 20
    d.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=30)


def hugetlb_available():
    if V2:
        return "hugetlb" in open(os.path.join(CG, "cgroup.controllers")).read().split()
    return os.path.isdir(os.path.join(CG, "hugetlb"))


def node_hugepage_sizes():
    """The huge page sizes the node has, as kubelet names them ("2MB", "1GB")."""
    sizes = []
    for entry in sorted(os.listdir("/sys/kernel/mm/hugepages")):
        kib = int(entry.removeprefix("hugepages-").removesuffix("kB"))
        sizes.append(f"{kib >> 20}GB" if kib >= 1 << 20 else f"{kib >> 10}MB")
    return sizes


def test_hugepage_limits_land_in_the_hugetlb_controller(d, tmp, image):
    # kubelet sends every size the node has, zero for those the pod does not use.
    sizes = node_hugepage_sizes()
    if "2MB" not in sizes:
        pytest.skip(f"this node has no 2 MiB huge pages (it has: {sizes})")
    p = Pod(d, tmp, image)
    pb = d.pb
    r = pb.LinuxContainerResources(hugepage_limits=[pb.HugepageLimit(page_size=size, limit=4 << 20 if size == "2MB" else 0)
                                                    for size in sizes])
    if not hugetlb_available():  # this v1 node: the controller is not mounted
        with pytest.raises(grpc.RpcError) as e:
            p.create("true", resources=r)
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "hugepage_limits[2MB]" in e.value.details() and "hugetlb" in e.value.details()
        assert list(d.runtime.ListContainers(pb.ListContainersRequest()).containers) == []
        return
    cid = p.create("true", resources=r)
    cg = f"/crius/{p.id}/{cid}"
    name = "hugetlb.{}.max" if V2 else "hugetlb.{}.limit_in_bytes"
    for size in sizes:
        assert read("hugetlb", cg, name.format(size)) == (str(4 << 20) if size == "2MB" else "0")


def test_a_container_over_its_memory_limit_is_oom_killed(d, tmp, image):
    p = Pod(d, tmp, image)
    pb = d.pb
    r = pb.LinuxContainerResources(memory_limit_in_bytes=32 << 20)
    cid = p.create("exec /bin/hog 200", resources=r)
    p.start(cid)
    s = p.wait_exit(cid)
    assert s.exit_code == 137 and s.reason == "OOMKilled", (s.exit_code, s.reason, p.log(1))
    # A container that stays under it is left alone.
    cid2 = p.create("/bin/hog 8 & sleep 1; kill $!", resources=r)
    p.start(cid2)
    assert p.wait_exit(cid2).reason == "Completed"


def test_a_fork_bomb_is_held_by_the_pids_limit(d, tmp, image, kubelet_parent):
    with open(cg_file("pids", kubelet_parent, "pids.max"), "w") as f:
        f.write("64")  # kubelet's podPidsLimit
    p = Pod(d, tmp, image, cgroup_parent=kubelet_parent)
    cid = p.create("b() { b | b & }; b; sleep 5")
    p.start(cid)
    time.sleep(2)
    pids = int(read("pids", kubelet_parent, "pids.current"))
    assert pids <= 64
    # The node is unharmed: it still forks.
    assert subprocess.run(["true"]).returncode == 0
    d.runtime.StopContainer(d.pb.StopContainerRequest(container_id=cid, timeout=0), timeout=60)
    d.runtime.RemoveContainer(d.pb.RemoveContainerRequest(container_id=cid), timeout=60)
    assert not os.path.exists(cg_file("pids", f"{kubelet_parent}/{cid}"))


def test_mknod_cannot_open_a_host_device(d, tmp, image):
    st = os.stat(node_device())
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    p = Pod(d, tmp, image)
    cid = p.create(f"mknod /tmp/dev c {major} {minor} && echo made; exec 3<>/tmp/dev && echo opened-device")
    p.start(cid)
    p.wait_exit(cid)
    out = p.log(1)
    assert "made" in out and "opened-device" not in out, out
    # Two fences: the rootfs is nodev, and the device policy denies it (v1:
    # the devices cgroup lists it; v2's BPF program is tested just below).
    if not V2:
        allowed = read("devices", f"/crius/{p.id}/{cid}", "devices.list").split("\n")
        assert "a *:* rwm" not in allowed and "c 1:3 rwm" in allowed and "c *:* m" in allowed
        assert not any(l.startswith(f"c {major}:{minor}") for l in allowed)


def test_the_device_policy_enforces_a_cri_devices_permissions(d, tmp, image):
    # Not in the standard allow list: only the CRI entry opens it. Its bind
    # mount is not nodev, so only the device policy refuses the write.
    path = node_device()
    p = Pod(d, tmp, image)
    cfg_devices = [d.pb.Device(host_path=path, container_path="/dev/x", permissions="r")]
    cid = p.create("exec 3</dev/x && echo read-ok; exec 3<&-; exec 4>/dev/x && echo write-ok",
                   devices=cfg_devices)
    p.start(cid)
    p.wait_exit(cid)
    out = p.log(1)
    assert "read-ok" in out and "write-ok" not in out and "Operation not permitted" in out, out


@pytest.mark.parametrize("resources,field", [
    (dict(cpu_quota=-5, cpu_period=100000), "config.linux.resources.cpu_quota"),
    (dict(cpu_quota=50000), "config.linux.resources.cpu_quota"),
    (dict(memory_limit_in_bytes=-1), "config.linux.resources.memory_limit_in_bytes"),
    (dict(cpuset_cpus="0-4095"), "config.linux.resources.cpuset_cpus"),
    (dict(cpu_shares=1), "config.linux.resources.cpu_shares"),
])
def test_bad_resources_are_refused_naming_the_field(d, tmp, image, resources, field):
    p = Pod(d, tmp, image)
    with pytest.raises(grpc.RpcError) as e:
        p.create("true", resources=d.pb.LinuxContainerResources(**resources))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in e.value.details()
    assert list(d.runtime.ListContainers(d.pb.ListContainersRequest()).containers) == []
    pod_cgroup = cg_file("memory", f"/crius/{p.id}")
    assert [x for x in os.listdir(pod_cgroup)
            if os.path.isdir(os.path.join(pod_cgroup, x)) and x != p.id] == []


def test_bad_cgroup_parents_are_refused(d, tmp, image):
    for parent, why in [("kubepods-besteffort.slice", "systemd slice"), ("relative/x", "not a clean absolute"),
                        ("/a/../b", "not a clean absolute")]:
        with pytest.raises(grpc.RpcError) as e:
            Pod(d, tmp, image, cgroup_parent=parent)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "config.linux.cgroup_parent" in e.value.details() and why in e.value.details()
    assert list(d.runtime.ListPodSandbox(d.pb.ListPodSandboxRequest()).items) == []


def test_update_of_an_unknown_or_exited_container(d, tmp, image):
    pb = d.pb
    with pytest.raises(grpc.RpcError) as e:
        d.runtime.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
            container_id="f" * 64, linux=pb.LinuxContainerResources(cpu_shares=512)))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    p = Pod(d, tmp, image)
    cid = p.create("true")
    p.start(cid)
    p.wait_exit(cid)
    with pytest.raises(grpc.RpcError) as e:
        d.runtime.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
            container_id=cid, linux=pb.LinuxContainerResources(cpu_shares=512)))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as e:
        d.runtime.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
            container_id=cid, linux=pb.LinuxContainerResources(cpu_quota=-1, cpu_period=100000)))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "linux.resources.cpu_quota" in e.value.details()


# --- pods sharing a cgroup_parent that was not there (crictl and test tools do this) ---

def cgroup_exists(cgroup):
    """In every hierarchy (v1), or in the one tree (v2); asserts they agree."""
    found = {os.path.isdir(os.path.join(h, cgroup.lstrip("/"))) for h in hierarchies()}
    assert len(found) == 1, f"cgroup {cgroup} is in some hierarchies only"
    return found.pop()


@pytest.fixture
def shared_parent(d):
    """A two-level cgroup_parent that does not exist; whatever crius leaves of it
    fails the test (the leak check too), and is removed afterwards."""
    top = f"/crius-test-{os.getpid()}-shared"
    assert not cgroup_exists(top)
    yield f"{top}/pods"
    remove_pods(d)
    for h in hierarchies():
        for level in (f"{top}/pods", top):
            rmdir_cgroup(os.path.join(h, level.lstrip("/")))


def shared_pods(d, tmp, image, parent, n):
    pods = [Pod(d, tmp, image, cgroup_parent=parent, name=f"share{i}") for i in range(n)]
    for p in pods:
        p.start(p.create("sleep 1000"))  # each pod's cgroups hold processes
    return pods


def remove_pod(d, pod_id):
    pb = d.pb
    d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)
    d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)


def assert_still_served(d, parent, pods):
    """Every pod not yet removed is Ready, and its cgroup and the parent are there."""
    pb = d.pb
    for p in pods:
        status = d.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=p.id)).status
        assert status.state == pb.SANDBOX_READY, p.id
        assert cgroup_exists(f"{parent}/{p.id}"), p.id
    assert cgroup_exists(parent) == bool(pods)
    assert cgroup_exists(os.path.dirname(parent)) == bool(pods)


ORDERS = {"first_made_first": lambda n: list(range(n)), "last_made_first": lambda n: list(range(n))[::-1],
          "from_the_middle": lambda n: [n // 2] + [i for i in range(n) if i != n // 2]}


@pytest.mark.parametrize("order", ORDERS)
def test_a_parent_crius_made_for_pods_goes_with_the_last_of_them(d, tmp, image, shared_parent, order):
    n = 10
    pods = shared_pods(d, tmp, image, shared_parent, n)
    left = list(pods)
    for i in ORDERS[order](n):
        remove_pod(d, pods[i].id)
        left.remove(pods[i])
        assert_still_served(d, shared_parent, left)


def test_a_shared_parent_survives_restarts_until_its_last_pod_goes(d, tmp, image, shared_parent):
    pods = shared_pods(d, tmp, image, shared_parent, 4)
    d.restart(kill=True)
    assert_still_served(d, shared_parent, pods)
    remove_pod(d, pods[0].id)
    d.restart()
    assert_still_served(d, shared_parent, pods[1:])
    remove_pod(d, pods[3].id)
    remove_pod(d, pods[1].id)
    d.restart(kill=True)
    assert_still_served(d, shared_parent, pods[2:3])
    remove_pod(d, pods[2].id)
    assert_still_served(d, shared_parent, [])


def test_only_the_levels_crius_made_are_removed(d, tmp, image, kubelet_parent):
    # kubelet_parent's levels are the node's: crius makes only the one below.
    parent = f"{kubelet_parent}/made-by-crius"
    pods = shared_pods(d, tmp, image, parent, 2)
    for p in pods:
        remove_pod(d, p.id)
    assert not cgroup_exists(parent)
    assert cgroup_exists(kubelet_parent) and cgroup_exists(os.path.dirname(kubelet_parent))


def test_a_crash_after_the_parent_was_made_rolls_it_back(make_daemon, tmp, image, registry, shared_parent):
    d = make_daemon(failpoints=["sandbox_run.after_cgroup"])
    with pytest.raises(grpc.RpcError):
        Pod(d, tmp, image, cgroup_parent=shared_parent)
    d.wait_exit()
    d.failpoints = []
    d.start()
    assert list(d.runtime.ListPodSandbox(d.pb.ListPodSandboxRequest()).items) == []
    assert not cgroup_exists(shared_parent) and not cgroup_exists(os.path.dirname(shared_parent))
