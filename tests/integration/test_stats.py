"""Container and pod stats as kubelet reads them (ContainerStats,
ListContainerStats, StreamContainerStats and the PodSandbox ones) from a real
criusd: CPU time and rate, memory, the writable layer, process counts, with
filters, for running and exited containers; unknown ids refused. Network
counters are tested with a real CNI network in test_network.py."""
import time

import grpc
import pytest

from harness import oci

pytestmark = pytest.mark.usefixtures("leak_check")


@pytest.fixture(scope="module")
def image(registry):
    return oci.push(registry, oci.hog_image(), "stats").ref


@pytest.fixture
def d(make_daemon, registry, image):
    d = make_daemon(config=f'[registry]\ninsecure = ["{registry.host}"]\n')
    d.image.PullImage(d.pb.PullImageRequest(image=d.pb.ImageSpec(image=image)), timeout=60)
    yield d
    for p in d.runtime.ListPodSandbox(d.pb.ListPodSandboxRequest()).items:
        d.runtime.StopPodSandbox(d.pb.StopPodSandboxRequest(pod_sandbox_id=p.id), timeout=30)
        d.runtime.RemovePodSandbox(d.pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=30)


def run_pod(d, tmp, name, labels=None):
    pb = d.pb
    cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=name, namespace="s", uid=f"u-{name}"),
                              log_directory=str(tmp / name), labels=labels or {})
    return d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id, cfg


def run(d, pod, image, name, script, labels=None, memory=0, start=True):
    pb = d.pb
    pod_id, pod_cfg = pod
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=image),
                             command=["sh", "-c", script], log_path=f"{name}.log", labels=labels or {})
    if memory:
        cfg.linux.resources.memory_limit_in_bytes = memory
    cid = d.runtime.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=cfg,
                                                              sandbox_config=pod_cfg), timeout=60).container_id
    if start:
        d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)
    return cid


def wait_log(tmp, pod_name, name, text, timeout=20):
    deadline = time.monotonic() + timeout
    path = tmp / pod_name / f"{name}.log"
    while not (path.exists() and text in path.read_text()):
        assert time.monotonic() < deadline, f"no {text!r} in {path}"
        time.sleep(0.05)


def stats(d, cid):
    return d.runtime.ContainerStats(d.pb.ContainerStatsRequest(container_id=cid)).stats


def test_a_busy_container_shows_its_cpu_memory_and_writable_layer(d, tmp, image):
    pod = run_pod(d, tmp, "busy")
    cid = run(d, pod, image, "burn", "dd if=/dev/zero of=/data bs=1M count=3 2>/dev/null; "
                                     "/bin/hog 40 & while :; do :; done", labels={"app": "burn"},
              memory=256 << 20)
    wait_log(tmp, "busy", "burn", "held 40 MiB")
    first = stats(d, cid)
    time.sleep(1)
    s = stats(d, cid)
    assert s.attributes.id == cid and s.attributes.metadata.name == "burn"
    assert s.attributes.labels["app"] == "burn"
    assert s.cpu.timestamp > first.cpu.timestamp
    assert s.cpu.usage_core_nano_seconds.value > first.cpu.usage_core_nano_seconds.value > 0
    # A shell spinning on one of the node's cores: about 1e9 nano-cores.
    assert s.cpu.HasField("usage_nano_cores") and s.cpu.usage_nano_cores.value > 3e8, s.cpu
    assert s.memory.working_set_bytes.value >= 40 << 20, s.memory
    assert s.memory.rss_bytes.value >= 40 << 20 and s.memory.usage_bytes.value >= s.memory.working_set_bytes.value
    assert s.memory.available_bytes.value == (256 << 20) - s.memory.working_set_bytes.value
    assert s.memory.page_faults.value > 0
    assert s.writable_layer.used_bytes.value >= 3 << 20 and s.writable_layer.inodes_used.value >= 1
    assert s.writable_layer.fs_id.mountpoint.endswith("/containers")
    # The pod's cgroup holds the container: its figures are at least as large.
    p = d.runtime.PodSandboxStats(d.pb.PodSandboxStatsRequest(pod_sandbox_id=pod[0])).stats
    assert p.attributes.id == pod[0] and p.attributes.metadata.name == "busy"
    assert p.linux.cpu.usage_core_nano_seconds.value >= s.cpu.usage_core_nano_seconds.value
    assert p.linux.memory.working_set_bytes.value >= 40 << 20
    assert p.linux.process.process_count.value >= 3  # sh, hog and the pod's own
    assert [c.attributes.id for c in p.linux.containers] == [cid]


def test_lists_and_streams_follow_their_filters(d, tmp, image):
    pb = d.pb
    a = run_pod(d, tmp, "a", labels={"tier": "front"})
    b = run_pod(d, tmp, "b")
    a1 = run(d, a, image, "a1", "sleep 60", labels={"role": "web"})
    a2 = run(d, a, image, "a2", "true")
    b1 = run(d, b, image, "b1", "sleep 60", start=False)

    def ids(**f):
        listed = sorted(s.attributes.id for s in d.runtime.ListContainerStats(
            pb.ListContainerStatsRequest(filter=pb.ContainerStatsFilter(**f))).stats)
        streamed = sorted(s.attributes.id for r in d.runtime.StreamContainerStats(
            pb.StreamContainerStatsRequest(filter=pb.ContainerStatsFilter(**f))) for s in r.container_stats)
        assert listed == streamed
        return listed

    assert ids() == sorted([a1, a2, b1])
    assert ids(pod_sandbox_id=a[0][:10]) == sorted([a1, a2])
    assert ids(id=b1[:12]) == [b1]
    assert ids(label_selector={"role": "web"}) == [a1]
    assert ids(label_selector={"role": "db"}) == []
    # Exited and created containers: their attributes and writable layer, no CPU.
    deadline = time.monotonic() + 10
    while d.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=a2)).status.state != pb.CONTAINER_EXITED:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for cid in (a2, b1):
        s = stats(d, cid)
        assert not s.HasField("cpu") and s.HasField("writable_layer"), s

    def pods(**f):
        listed = sorted(s.attributes.id for s in d.runtime.ListPodSandboxStats(
            pb.ListPodSandboxStatsRequest(filter=pb.PodSandboxStatsFilter(**f))).stats)
        streamed = sorted(s.attributes.id for r in d.runtime.StreamPodSandboxStats(
            pb.StreamPodSandboxStatsRequest(filter=pb.PodSandboxStatsFilter(**f))) for s in r.pod_sandbox_stats)
        assert listed == streamed
        return listed

    assert pods() == sorted([a[0], b[0]])
    assert pods(label_selector={"tier": "front"}) == [a[0]]
    assert pods(id=b[0][:8]) == [b[0]]


def test_stats_of_unknown_ids_are_not_found(d):
    pb = d.pb
    for call, req in [(d.runtime.ContainerStats, pb.ContainerStatsRequest(container_id="f" * 64)),
                      (d.runtime.PodSandboxStats, pb.PodSandboxStatsRequest(pod_sandbox_id="f" * 64))]:
        with pytest.raises(grpc.RpcError) as e:
            call(req)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND and "f" * 64 in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        d.runtime.ContainerStats(pb.ContainerStatsRequest())
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "container_id" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        d.runtime.PodSandboxStats(pb.PodSandboxStatsRequest())
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "pod_sandbox_id" in e.value.details()


def series(metrics, descriptors, name):
    """{label dict: value} of one metric, its labels named by its descriptor."""
    keys = descriptors[name]
    out = {}
    for m in metrics:
        if m.name == name:
            assert len(m.label_values) == len(keys), m
            out[tuple(sorted(zip(keys, m.label_values)))] = m.value.value
    return out


def test_pod_sandbox_metrics_carry_cadvisor_names_and_labels(d, tmp, image):
    pb = d.pb
    desc = {m.name: list(m.label_keys) for m in
            d.runtime.ListMetricDescriptors(pb.ListMetricDescriptorsRequest()).descriptors}
    for name in ("container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
                 "container_memory_rss", "container_network_receive_bytes_total", "container_fs_usage_bytes"):
        assert name in desc
        assert desc[name] == sorted(desc[name]) and {"container", "pod", "namespace"} <= set(desc[name])
    assert "interface" in desc["container_network_receive_bytes_total"]
    pod = run_pod(d, tmp, "m")
    cid = run(d, pod, image, "burn", "dd if=/dev/zero of=/data bs=1M count=2 2>/dev/null; "
                                     "/bin/hog 30 & while :; do :; done")
    wait_log(tmp, "m", "burn", "held 30 MiB")
    time.sleep(1.2)
    other = run_pod(d, tmp, "idle")
    listed = d.runtime.ListPodSandboxMetrics(pb.ListPodSandboxMetricsRequest()).pod_metrics
    assert {p.pod_sandbox_id for p in listed} == {pod[0], other[0]}
    (pm,) = [p for p in listed if p.pod_sandbox_id == pod[0]]
    (cm,) = pm.container_metrics
    assert cm.container_id == cid
    base = {"container": "burn", "id": cid, "image": image, "namespace": "s", "pod": "m"}
    ws = series(cm.metrics, desc, "container_memory_working_set_bytes")
    assert ws[tuple(sorted(base.items()))] >= 30 << 20
    cpu = series(cm.metrics, desc, "container_cpu_usage_seconds_total")[tuple(sorted(base.items()))]
    assert cpu >= 1
    assert series(cm.metrics, desc, "container_fs_usage_bytes")[tuple(sorted(base.items()))] >= 2 << 20
    faults = series(cm.metrics, desc, "container_memory_failures_total")
    assert faults[tuple(sorted({**base, "failure_type": "pgfault", "scope": "container"}.items()))] > 0
    # The pod's own series: container "" (its cgroup), and its network by interface.
    pod_base = {"container": "", "id": pod[0], "image": "", "namespace": "s", "pod": "m"}
    assert series(pm.metrics, desc, "container_memory_working_set_bytes")[tuple(sorted(pod_base.items()))] >= 30 << 20
    assert series(pm.metrics, desc, "container_processes")[tuple(sorted(pod_base.items()))] >= 2
    # (Network series by interface: test_network.py, with a CNI network.)
    # The stream carries the same pods.
    streamed = [p.pod_sandbox_id for r in d.runtime.StreamPodSandboxMetrics(pb.StreamPodSandboxMetricsRequest())
                for p in r.pod_sandbox_metrics]
    assert sorted(streamed) == sorted([pod[0], other[0]])


def test_update_pod_sandbox_resources_resizes_a_pod_cgroup_crius_made(d, tmp, image):
    pb = d.pb
    pod = run_pod(d, tmp, "r")
    req = pb.UpdatePodSandboxResourcesRequest(pod_sandbox_id=pod[0])
    req.resources.memory_limit_in_bytes = 200 << 20
    req.overhead.memory_limit_in_bytes = 20 << 20
    d.runtime.UpdatePodSandboxResources(req, timeout=10)
    # No cgroup_parent: crius made the pod's cgroup (/crius/<id>), and sizes
    # it to the containers' total plus the overhead.
    import os
    limits = [p for p in (f"/sys/fs/cgroup/memory/crius/{pod[0]}/memory.limit_in_bytes",
                          f"/sys/fs/cgroup/crius/{pod[0]}/memory.max") if os.path.exists(p)]
    assert limits and int(open(limits[0]).read()) == 220 << 20, limits
    for bad, field in ((pb.UpdatePodSandboxResourcesRequest(), "pod_sandbox_id"),
                       (pb.UpdatePodSandboxResourcesRequest(pod_sandbox_id="nope"), None)):
        with pytest.raises(grpc.RpcError) as e:
            d.runtime.UpdatePodSandboxResources(bad, timeout=10)
        if field:
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith(field)
        else:
            assert e.value.code() == grpc.StatusCode.NOT_FOUND
    bad = pb.UpdatePodSandboxResourcesRequest(pod_sandbox_id=pod[0])
    bad.resources.cpu_shares = -5
    with pytest.raises(grpc.RpcError) as e:
        d.runtime.UpdatePodSandboxResources(bad, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "resources.cpu_shares" in e.value.details()
