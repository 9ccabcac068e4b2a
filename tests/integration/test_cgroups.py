"""Pods and containers in cgroups through criusd, on this node's hierarchy
(cgroup v1 here): the pod cgroup kubelet names, one cgroup per container
with its resources, OOM kills reported as OOMKilled, a fork bomb held by a
pids limit, UpdateContainerResources on a running container, and the
device policy. The driver itself is also tested on cgroup v2, in a guest
(test_cgroups_v2_guest.py)."""
import json
import os
import subprocess
import time

import grpc
import pytest

from harness import oci
from harness.fixtures import fixture_binary

pytestmark = pytest.mark.usefixtures("leak_check")

CG = "/sys/fs/cgroup"


def hierarchies():
    """Every v1 hierarchy directory (one per mount; symlinks skipped)."""
    return sorted(os.path.join(CG, h) for h in os.listdir(CG)
                  if not os.path.islink(os.path.join(CG, h)) and h not in ("unified", "systemd")
                  and os.path.isdir(os.path.join(CG, h)))


def v1_file(controller, cgroup, name):
    return os.path.join(CG, controller, cgroup.lstrip("/"), name)


@pytest.fixture(scope="module")
def image(registry):
    with open(fixture_binary("hog"), "rb") as f:
        hog = f.read()
    layer = oci.Layer().file("bin/hog", hog, mode=0o755)
    return oci.push(registry, oci.Image([oci.busybox_layer(), layer], cmd=["sh"], env=["PATH=/bin"]),
                    "cgroups").ref


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
        if h.endswith("cpuset"):
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


def rmdir_cgroup(path, timeout=5):
    """rmdir, retried while the kernel still releases tasks that just died (EBUSY)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != 16 or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Pod:
    def __init__(self, d, tmp, image, cgroup_parent=""):
        pb = self.pb = d.pb
        self.d, self.image, self.logs = d, image, tmp / "logs"
        self.cfg = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name="cg", namespace="cg", uid="u-cg"),
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
        _, names, path = line.rstrip("\n").split(":", 2)
        if controller in names.split(","):
            return path
    raise AssertionError(f"no {controller} cgroup for {pid}")


def test_pod_and_containers_live_in_the_pod_cgroup(d, tmp, image, kubelet_parent):
    p = Pod(d, tmp, image, cgroup_parent=kubelet_parent)
    info = json.loads(d.runtime.PodSandboxStatus(
        d.pb.PodSandboxStatusRequest(pod_sandbox_id=p.id, verbose=True)).info["info"])
    assert cgroup_of(info["monitorPid"]) == f"{kubelet_parent}/{p.id}"
    cid = p.create("sleep 30")
    p.start(cid)
    pid = int(open(v1_file("memory", f"{kubelet_parent}/{cid}", "cgroup.procs")).read().split()[0])
    assert cgroup_of(pid) == f"{kubelet_parent}/{cid}"
    d.runtime.RemoveContainer(d.pb.RemoveContainerRequest(container_id=cid), timeout=30)
    assert not os.path.exists(v1_file("memory", f"{kubelet_parent}/{cid}", ""))
    d.runtime.StopPodSandbox(d.pb.StopPodSandboxRequest(pod_sandbox_id=p.id), timeout=30)
    d.runtime.RemovePodSandbox(d.pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=30)
    # kubelet's pod cgroup is kubelet's: crius leaves it, empty.
    assert os.listdir(os.path.join(CG, "memory", kubelet_parent.lstrip("/")))
    assert not os.path.exists(v1_file("memory", f"{kubelet_parent}/{p.id}", ""))


def test_resources_land_in_the_containers_cgroup(d, tmp, image):
    p = Pod(d, tmp, image)
    pb = d.pb
    r = pb.LinuxContainerResources(cpu_period=100000, cpu_quota=50000, cpu_shares=512,
                                   memory_limit_in_bytes=64 << 20, cpuset_cpus="0", cpuset_mems="0")
    cid = p.create("sleep 30", resources=r)
    cg = f"/crius/{p.id}/{cid}"
    assert open(v1_file("cpu", cg, "cpu.cfs_quota_us")).read().strip() == "50000"
    assert open(v1_file("cpu", cg, "cpu.cfs_period_us")).read().strip() == "100000"
    assert open(v1_file("cpu", cg, "cpu.shares")).read().strip() == "512"
    assert open(v1_file("memory", cg, "memory.limit_in_bytes")).read().strip() == str(64 << 20)
    assert open(v1_file("cpuset", cg, "cpuset.cpus")).read().strip() == "0"
    p.start(cid)
    # UpdateContainerResources on the running container.
    d.runtime.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=pb.LinuxContainerResources(memory_limit_in_bytes=128 << 20, cpu_quota=20000,
                                                           cpu_period=100000)))
    assert open(v1_file("memory", cg, "memory.limit_in_bytes")).read().strip() == str(128 << 20)
    assert open(v1_file("cpu", cg, "cpu.cfs_quota_us")).read().strip() == "20000"
    assert p.status(cid).resources.linux.memory_limit_in_bytes == 128 << 20
    d.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=30)


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
    with open(os.path.join(CG, "pids", kubelet_parent.lstrip("/"), "pids.max"), "w") as f:
        f.write("64")  # kubelet's podPidsLimit
    p = Pod(d, tmp, image, cgroup_parent=kubelet_parent)
    cid = p.create("b() { b | b & }; b; sleep 5")
    p.start(cid)
    time.sleep(2)
    pids = int(open(os.path.join(CG, "pids", kubelet_parent.lstrip("/"), "pids.current")).read())
    assert pids <= 64
    # The node is unharmed: it still forks.
    assert subprocess.run(["true"]).returncode == 0
    d.runtime.StopContainer(d.pb.StopContainerRequest(container_id=cid, timeout=0), timeout=60)
    d.runtime.RemoveContainer(d.pb.RemoveContainerRequest(container_id=cid), timeout=60)
    assert not os.path.exists(v1_file("pids", f"{kubelet_parent}/{cid}", ""))


def test_mknod_cannot_open_a_host_device(d, tmp, image):
    # /dev/kvm: a device the node itself opens (this VM's disk it cannot read).
    st = os.stat("/dev/kvm")
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    with open("/dev/kvm", "rb+", buffering=0):
        pass
    p = Pod(d, tmp, image)
    cid = p.create(f"mknod /tmp/kvm c {major} {minor} && echo made; exec 3<>/tmp/kvm && echo opened-device")
    p.start(cid)
    p.wait_exit(cid)
    out = p.log(1)
    assert "made" in out and "opened-device" not in out, out
    # Two fences: the rootfs is nodev, and the device cgroup denies it.
    allowed = open(v1_file("devices", f"/crius/{p.id}/{cid}", "devices.list")).read().split("\n")
    assert "a *:* rwm" not in allowed and "c 1:3 rwm" in allowed and "c *:* m" in allowed
    assert not any(l.startswith(f"c {major}:{minor}") for l in allowed)


def test_the_device_cgroup_enforces_a_cri_devices_permissions(d, tmp, image):
    # /dev/kvm is not in the standard allow list: only the CRI entry opens it.
    p = Pod(d, tmp, image)
    cfg_devices = [d.pb.Device(host_path="/dev/kvm", container_path="/dev/kvm", permissions="r")]
    cid = p.create("exec 3</dev/kvm && echo read-ok; exec 4>/dev/kvm && echo write-ok", devices=cfg_devices)
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
    assert os.listdir(os.path.join(CG, "memory", "crius", p.id)) is not None
    assert [x for x in os.listdir(os.path.join(CG, "memory", "crius", p.id))
            if os.path.isdir(os.path.join(CG, "memory", "crius", p.id, x)) and x != p.id] == []


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
