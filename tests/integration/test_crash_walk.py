"""criusd killed at every crash point its sources name restarts into a
consistent CRI view and leaves nothing behind.

The points come from the sources (tests/crash_points.py), so a new one is
walked as soon as it is written, and a durable step without one fails
test_every_durable_step_has_a_crash_point. Each point belongs to the RPC
that reaches it (SCENARIOS): the walk sets that RPC's stage up, restarts
criusd armed at the point, calls the RPC (which must reach the point: the
call fails and criusd dies with SIGKILL), restarts it, and checks that what
the RPC changed is all there or not there at all. It then retries the RPC as
kubelet would, checks the result works, removes everything and checks that
root and state hold what they held before, that no IP is still reserved and
no veth, mount, cgroup, netns or process is left (the leak check)."""
import os
import sys
from pathlib import Path

import grpc
import pytest

from harness import oci
from harness.netns import Netns
from harness.node import Node
from harness.registry import Registry
from harness.util import build_dir, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import crash_points  # noqa: E402

pytestmark = pytest.mark.usefixtures("leak_check")

STEPS, POINTS = crash_points.scan()
NAMES = sorted({p.name for p in POINTS})
CGROUP_PARENT = "/crius-walk/pods"  # levels crius makes, records and removes


def test_every_durable_step_has_a_crash_point():
    missing = crash_points.uncovered(STEPS)
    assert not missing, "durable steps without a crash point:\n" + "\n".join(
        f"  {s.file}:{s.line} ({s.function}): {s.what}: {s.text}" for s in missing)


def test_a_new_durable_step_without_a_crash_point_is_found(tmp):
    (tmp / "cri").mkdir()
    (tmp / "cri" / "thing_make.cc").write_text(
        "absl::Status ThingMake(Runtime& rt) {\n"
        "  CRIUS_RETURN_IF_ERROR(rt.pods().Save(pod));\n"
        "  CRIUS_FAILPOINT(\"thing_make.after_record\");\n"
        "  CRIUS_RETURN_IF_ERROR(MakeDirs(dir, 0700).status());\n"
        "  undo.Push(\"remove it\", [&] {\n"
        "    (void)RemoveTree(dir);\n"
        "  });\n"
        "  return absl::OkStatus();\n"
        "}\n")
    steps, points = crash_points.scan(tmp)
    assert [p.name for p in points] == ["thing_make.after_record"]
    assert [(s.line, s.point) for s in steps] == [(2, "thing_make.after_record"), (4, "")]
    assert [s.line for s in crash_points.uncovered(steps)] == [4]


def test_every_crash_point_has_a_scenario():
    assert NAMES, "no crash points found in the sources"
    assert [n for n in NAMES if scenario_of(n) is None] == []


# --- the node the walk runs on -------------------------------------------------------

@pytest.fixture(scope="module")
def walk_registry():
    ns = Netns(prefix="crius-walk")
    ns.create()
    try:
        with Registry(netns=ns) as reg:
            spt = build_dir() / "unikernel" / "guests" / "sleeper.spt"
            reg.walk_images = {
                "sleeper": oci.push(reg, oci.sleeper_image(), "walk/sleeper").ref,
                "busybox": oci.push(reg, oci.busybox_image(), "walk/busybox").ref,
                "spt": oci.push(reg, oci.unikernel_image("sleeper", spt.read_bytes(), "spt"),
                                "walk/sleeper-spt").ref if spt.exists() else None,
            }
            reg.netns = ns
            yield reg
    finally:
        ns.delete()


class Walk(Node):
    """A node whose criusd is armed at one crash point for one RPC."""

    def __init__(self, registry, tmp, make_daemon, point):
        super().__init__(registry.netns, tmp, make_daemon, registry)
        self.point = point
        self.images = registry.walk_images
        self.pull(self.images["busybox"])

    # -- crashing -------------------------------------------------------------

    def arm(self):
        self.d.stop()
        self.d.failpoints = [self.point]
        self.d.start()

    def crash(self, call):
        """call() must reach the point: criusd dies there; it is then restarted."""
        with pytest.raises(grpc.RpcError) as e:
            call()
            pytest.fail(f"the call returned without reaching crash point {self.point}")
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value.details()
        assert self.d.wait_exit() == -9, "a crash point kills criusd with SIGKILL"
        assert f"failpoint {self.point} reached" in self.d.log
        self.d.failpoints = []
        self.d.start()

    # -- CRI shorthands ------------------------------------------------------------

    def pods(self):
        return list(self.d.runtime.ListPodSandbox(self.pb.ListPodSandboxRequest()).items)

    def containers(self):
        return list(self.d.runtime.ListContainers(self.pb.ListContainersRequest()).containers)

    def state_of(self, cid):
        return self.d.runtime.ContainerStatus(self.pb.ContainerStatusRequest(container_id=cid)).status.state

    def images_listed(self):
        return {i.id for i in self.d.image.ListImages(self.pb.ListImagesRequest()).images}

    def start_container(self, cid):
        self.d.runtime.StartContainer(self.pb.StartContainerRequest(container_id=cid), timeout=60)

    def stop_container(self, cid, timeout=0):
        self.d.runtime.StopContainer(self.pb.StopContainerRequest(container_id=cid, timeout=timeout), timeout=60)

    def remove_container(self, cid):
        self.d.runtime.RemoveContainer(self.pb.RemoveContainerRequest(container_id=cid), timeout=60)

    def stop_pod(self, pod_id):
        self.d.runtime.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)

    def remove_only(self, pod_id):
        self.d.runtime.RemovePodSandbox(self.pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)

    def walk_pod_config(self, name="walk", parent=""):
        cfg = self.pod_config(name)
        if parent:
            cfg.linux.cgroup_parent = parent
        return cfg

    def sleeper(self, pod_id, cfg, name="c", mounts=()):
        """A busybox container that sleeps (and goes at SIGKILL: it is its pid namespace's init)."""
        ccfg = self.container_config(self.images["busybox"], name=name, command=["sleep", "3600"])
        ccfg.mounts.extend(mounts)
        return self.d.runtime.CreateContainer(self.pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=ccfg, sandbox_config=cfg), timeout=60).container_id

    def image_mount(self):
        ref = self.images["busybox"]
        image_id = self.d.image.ImageStatus(self.pb.ImageStatusRequest(
            image=self.pb.ImageSpec(image=ref))).image.id
        return self.pb.Mount(container_path="/iv", image=self.pb.ImageSpec(image=image_id), readonly=True)

    def exec_ok(self, cid):
        r = self.d.runtime.ExecSync(self.pb.ExecSyncRequest(container_id=cid, cmd=["true"], timeout=10),
                                    timeout=30)
        assert r.exit_code == 0, r

    # -- what is left -----------------------------------------------------------------

    def files(self):
        """Every path under root and state but SQLite's journals and the
        directories of their layout (state/pods, made with the first pod)."""
        out = set()
        for top in (self.d.root, self.d.state):
            for dirpath, dirs, names in os.walk(top):
                layout = dirpath == str(top)
                for n in (names if layout else dirs + names):
                    p = os.path.relpath(os.path.join(dirpath, n), self.d.workdir)
                    if not n.endswith(("-wal", "-shm", "-journal")):
                        out.add(p)
        return out


def pod_ready(w, pod_id):
    return w.pod_status(pod_id).status.state == w.pb.SANDBOX_READY


def running_container(w, pod_id, cfg):
    cid = w.sleeper(pod_id, cfg)
    w.start_container(cid)
    return cid


# --- scenarios: one per RPC; each sets up, crashes, checks, retries ---------------------

def run_pod(w, handler="", parent=""):
    cfg = w.walk_pod_config(parent=parent)
    w.arm()
    w.crash(lambda: w.run_pod(cfg, handler))
    pods = w.pods()
    assert pods == [] or [(p.metadata.name, p.state) for p in pods] == [("walk", w.pb.SANDBOX_READY)], pods
    pod_id = w.run_pod(cfg, handler)  # kubelet's retry
    assert pods == [] or pods[0].id == pod_id, "the retry finds the pod the crash kept"
    assert pod_ready(w, pod_id)
    if not handler:
        w.exec_ok(running_container(w, pod_id, cfg))


def run_guest_pod(w):
    if w.images["spt"] is None:
        pytest.skip("guest sleeper.spt not built")
    run_pod(w, handler="crius-spt")


def stop_pod(w, parent=""):
    cfg = w.walk_pod_config(parent=parent)
    pod_id = w.run_pod(cfg)
    cid = running_container(w, pod_id, cfg)
    w.arm()
    w.crash(lambda: w.stop_pod(pod_id))
    assert [p.id for p in w.pods()] == [pod_id]
    if pod_ready(w, pod_id) and w.state_of(cid) == w.pb.CONTAINER_RUNNING:
        w.exec_ok(cid)  # not stopped yet: still whole
    w.stop_pod(pod_id)
    assert not pod_ready(w, pod_id)
    assert w.state_of(cid) == w.pb.CONTAINER_EXITED


def remove_pod(w, parent=""):
    cfg = w.walk_pod_config(parent=parent)
    pod_id = w.run_pod(cfg)
    running_container(w, pod_id, cfg)
    w.arm()
    w.crash(lambda: w.remove_only(pod_id))
    assert [p.id for p in w.pods()] in ([], [pod_id])
    w.remove_only(pod_id)
    assert w.pods() == [] and w.containers() == []


def update_pod(w):
    cfg = w.walk_pod_config()
    pod_id = w.run_pod(cfg)
    pb = w.pb
    req = pb.UpdatePodSandboxResourcesRequest(pod_sandbox_id=pod_id,
                                               resources=pb.LinuxContainerResources(cpu_shares=512))
    w.arm()
    w.crash(lambda: w.d.runtime.UpdatePodSandboxResources(req, timeout=30))
    assert pod_ready(w, pod_id)
    w.d.runtime.UpdatePodSandboxResources(req, timeout=30)


def create_container(w, volume=False):
    cfg = w.walk_pod_config()
    pod_id = w.run_pod(cfg)
    mounts = [w.image_mount()] if volume else []
    w.arm()
    w.crash(lambda: w.sleeper(pod_id, cfg, mounts=mounts))
    kept = w.containers()
    assert kept == [] or [(c.metadata.name, c.state) for c in kept] == [("c", w.pb.CONTAINER_CREATED)], kept
    cid = kept[0].id if kept else w.sleeper(pod_id, cfg, mounts=mounts)
    w.start_container(cid)
    w.exec_ok(cid)


def start_container(w):
    cfg = w.walk_pod_config()
    pod_id = w.run_pod(cfg)
    cid = w.sleeper(pod_id, cfg)
    w.arm()
    w.crash(lambda: w.start_container(cid))
    state = w.state_of(cid)
    assert state in (w.pb.CONTAINER_CREATED, w.pb.CONTAINER_RUNNING)
    if state == w.pb.CONTAINER_CREATED:
        w.start_container(cid)
    w.exec_ok(cid)


def stop_container(w):
    cfg = w.walk_pod_config()
    pod_id = w.run_pod(cfg)
    cid = running_container(w, pod_id, cfg)
    w.arm()
    w.crash(lambda: w.stop_container(cid))
    assert w.state_of(cid) in (w.pb.CONTAINER_RUNNING, w.pb.CONTAINER_EXITED)
    w.stop_container(cid)
    assert w.state_of(cid) == w.pb.CONTAINER_EXITED


def remove_container(w, volume=False, running=True):
    cfg = w.walk_pod_config()
    pod_id = w.run_pod(cfg)
    cid = w.sleeper(pod_id, cfg, mounts=[w.image_mount()] if volume else [])
    if running:
        w.start_container(cid)
    w.arm()
    w.crash(lambda: w.remove_container(cid))
    assert [c.id for c in w.containers()] in ([], [cid])
    w.remove_container(cid)
    assert w.containers() == []
    w.exec_ok(running_container(w, pod_id, cfg))  # the pod still runs containers


def remove_exited_container(w):
    cfg = w.walk_pod_config()
    pod_id = w.run_pod(cfg)
    cid = running_container(w, pod_id, cfg)
    w.stop_container(cid)
    w.arm()
    w.crash(lambda: w.remove_container(cid))
    w.remove_container(cid)
    assert w.containers() == []


def update_container(w):
    cfg = w.walk_pod_config()
    pod_id = w.run_pod(cfg)
    cid = running_container(w, pod_id, cfg)
    pb = w.pb
    req = pb.UpdateContainerResourcesRequest(container_id=cid, linux=pb.LinuxContainerResources(cpu_shares=256))
    w.arm()
    w.crash(lambda: w.d.runtime.UpdateContainerResources(req, timeout=30))
    w.d.runtime.UpdateContainerResources(req, timeout=30)
    status = w.d.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
    assert status.resources.linux.cpu_shares == 256


def reopen_log(w):
    cfg = w.walk_pod_config()
    pod_id = w.run_pod(cfg)
    cid = running_container(w, pod_id, cfg)
    req = w.pb.ReopenContainerLogRequest(container_id=cid)
    w.arm()
    w.crash(lambda: w.d.runtime.ReopenContainerLog(req, timeout=30))
    w.d.runtime.ReopenContainerLog(req, timeout=30)
    w.exec_ok(cid)


def pull_image(w):
    ref = w.images["sleeper"]
    w.arm()
    w.crash(lambda: w.pull(ref))
    before = w.images_listed()
    w.pull(ref)
    status = w.d.image.ImageStatus(w.pb.ImageStatusRequest(image=w.pb.ImageSpec(image=ref))).image
    assert status.id and (len(before) == 1 or status.id in before)
    cfg = w.walk_pod_config()
    pod_id = w.run_pod(cfg)
    cid = w.d.runtime.CreateContainer(w.pb.CreateContainerRequest(
        pod_sandbox_id=pod_id, config=w.container_config(ref), sandbox_config=cfg), timeout=60).container_id
    w.start_container(cid)  # the image pulled after the crash runs
    w.remove_all()
    w.d.image.RemoveImage(w.pb.RemoveImageRequest(image=w.pb.ImageSpec(image=ref)), timeout=30)


def remove_image(w):
    ref = w.images["sleeper"]
    w.pull(ref)
    w.arm()
    w.crash(lambda: w.d.image.RemoveImage(w.pb.RemoveImageRequest(image=w.pb.ImageSpec(image=ref)), timeout=30))
    w.d.image.RemoveImage(w.pb.RemoveImageRequest(image=w.pb.ImageSpec(image=ref)), timeout=30)
    assert len(w.images_listed()) == 1  # busybox only


def update_runtime_config(w):
    pb = w.pb
    req = pb.UpdateRuntimeConfigRequest(runtime_config=pb.RuntimeConfig(
        network_config=pb.NetworkConfig(pod_cidr="10.77.0.0/16")))
    w.arm()
    w.crash(lambda: w.d.runtime.UpdateRuntimeConfig(req, timeout=10))
    w.d.runtime.UpdateRuntimeConfig(req, timeout=10)


SCENARIOS = {
    "sandbox_run.after_tap": run_guest_pod,
    "sandbox_run.after_guest_link": run_guest_pod,
    "sandbox_run.": run_pod,
    "pod_network.after_del": stop_pod,
    "pod_network.": run_pod,
    "pod_cgroups.after_parent_record": lambda w: run_pod(w, parent=CGROUP_PARENT),
    "pod_cgroups.after_parent_": lambda w: remove_pod(w, parent=CGROUP_PARENT),
    "pod_cgroups.": remove_pod,
    "sandbox_stop.": stop_pod,
    "sandbox_remove.": remove_pod,
    "sandbox_update.": update_pod,
    "container_create.after_image_volumes": lambda w: create_container(w, volume=True),
    "image_volume.after_dir": lambda w: create_container(w, volume=True),
    "container_create.": create_container,
    "container_start.": start_container,
    "container_stop.": stop_container,
    "container_remove.after_volumes": lambda w: remove_container(w, volume=True),
    "image_volume.after_unmount": lambda w: remove_container(w, volume=True, running=False),
    "container_remove.": remove_container,
    "container_cgroup.": remove_exited_container,
    "container_update.": update_container,
    "container_reopen_log.": reopen_log,
    "image_pull.": pull_image,
    "image_remove.": remove_image,
    "runtime_config_update.": update_runtime_config,
}


def scenario_of(point):
    """The most specific scenario whose key the point's name starts with."""
    keys = [k for k in SCENARIOS if point == k or (k.endswith((".", "_")) and point.startswith(k))]
    return SCENARIOS[max(keys, key=len)] if keys else None


@pytest.mark.parametrize("point", NAMES)
def test_crash_at(point, walk_registry, tmp, make_daemon):
    scenario = scenario_of(point)
    assert scenario is not None, f"crash point {point} has no scenario in SCENARIOS"
    w = Walk(walk_registry, tmp, make_daemon, point)
    baseline = w.files()
    try:
        scenario(w)
    finally:
        if w.d.running:
            w.remove_all()
    assert w.pods() == [] and w.containers() == []
    assert w.reserved_ips() == [], "an IP is still reserved"
    assert [link for link in w.links() if link.startswith("veth")] == []
    try:
        wait_for(lambda: w.files() == baseline, 5)
    except TimeoutError:  # say what differs
        now = w.files()
        pytest.fail(f"root and state: new {sorted(now - baseline)}, gone {sorted(baseline - now)}")
    w.d.stop()
