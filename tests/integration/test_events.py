"""GetContainerEvents as kubelet's evented PLEG reads it, from a real criusd:
created, started, stopped and deleted events for containers and for the pod
sandbox itself, each with the pod's status and its containers' statuses; a
container that exits on its own is reported at once (its monitor tells
criusd), also after a criusd restart. Every open stream gets every event; a
stream whose client stops reading is ended once it falls events.max_queued
behind, and the others never wait for it."""
import os
import queue
import signal
import threading
import time

import grpc
import pytest

pytestmark = pytest.mark.usefixtures("leak_check")


@pytest.fixture
def d(make_daemon, registry, busybox):
    d = make_daemon(config=f'[registry]\ninsecure = ["{registry.host}"]\n[events]\nmax_queued = 64\n')
    d.image.PullImage(d.pb.PullImageRequest(image=d.pb.ImageSpec(image=busybox.ref)), timeout=60)
    yield d
    if d.running:
        for p in d.runtime.ListPodSandbox(d.pb.ListPodSandboxRequest()).items:
            d.runtime.StopPodSandbox(d.pb.StopPodSandboxRequest(pod_sandbox_id=p.id), timeout=30)
            d.runtime.RemovePodSandbox(d.pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=30)


class Events:
    """A GetContainerEvents stream read by a thread into a queue."""

    def __init__(self, d):
        self.pb = d.pb
        self.stream = d.runtime.GetContainerEvents(d.pb.GetEventsRequest())
        self.queue = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        time.sleep(0.3)  # subscribed before the test acts

    def _read(self):
        try:
            for e in self.stream:
                self.queue.put(e)
        except grpc.RpcError as e:
            self.queue.put(e)

    def next(self, timeout=5):
        e = self.queue.get(timeout=timeout)
        if isinstance(e, grpc.RpcError) and e.code() != grpc.StatusCode.CANCELLED:
            raise e
        return e

    def expect(self, id, kind, timeout=5):
        """The next event of `id`, which must be of `kind` (events of other ids are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            e = self.next(max(0.01, deadline - time.monotonic()))
            if e.container_id == id:
                assert e.container_event_type == kind, (self.pb.ContainerEventType.Name(e.container_event_type), e)
                return e

    def close(self):
        self.stream.cancel()
        self.thread.join(timeout=5)


def test_a_pod_and_a_container_send_their_whole_life(d, tmp, busybox):
    pb = d.pb
    events = Events(d)
    try:
        cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="ev", namespace="e", uid="u-ev"),
                                  log_directory=str(tmp / "logs"))
        pod = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id
        e = events.expect(pod, pb.CONTAINER_CREATED_EVENT)
        assert e.pod_sandbox_status.id == pod and e.created_at > 0
        events.expect(pod, pb.CONTAINER_STARTED_EVENT)

        c = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"), image=pb.ImageSpec(image=busybox.ref),
                               command=["sh", "-c", "sleep 0.5; exit 3"], log_path="c.log")
        cid = d.runtime.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, config=c, sandbox_config=cfg),
                                        timeout=60).container_id
        e = events.expect(cid, pb.CONTAINER_CREATED_EVENT)
        assert e.pod_sandbox_status.state == pb.SANDBOX_READY
        assert [(s.id, s.state) for s in e.containers_statuses] == [(cid, pb.CONTAINER_CREATED)]
        d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)
        events.expect(cid, pb.CONTAINER_STARTED_EVENT)
        # It exits by itself: nobody lists, the event comes anyway.
        e = events.expect(cid, pb.CONTAINER_STOPPED_EVENT, timeout=5)
        [s] = e.containers_statuses
        assert s.state == pb.CONTAINER_EXITED and s.exit_code == 3 and s.reason == "Error"

        d.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=60)
        e = events.expect(cid, pb.CONTAINER_DELETED_EVENT)
        assert list(e.containers_statuses) == []
        d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)
        e = events.expect(pod, pb.CONTAINER_STOPPED_EVENT)
        assert e.pod_sandbox_status.state == pb.SANDBOX_NOTREADY
        d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=60)
        e = events.expect(pod, pb.CONTAINER_DELETED_EVENT)
        assert not e.HasField("pod_sandbox_status")
    finally:
        events.close()


def test_exits_are_reported_at_once_after_a_criusd_restart(d, tmp, busybox):
    pb = d.pb
    cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="ev", namespace="e", uid="u-ev"),
                              log_directory=str(tmp / "logs"))
    pod = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id
    c = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"), image=pb.ImageSpec(image=busybox.ref),
                           command=["sh", "-c", "read x; exit 7"], log_path="c.log", stdin=True)
    cid = d.runtime.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, config=c, sandbox_config=cfg),
                                    timeout=60).container_id
    d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)
    d.restart(kill=True)
    events = Events(d)
    try:
        # The container still runs (its stdin stays open): end it from the node.
        v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
        procs = f"/sys/fs/cgroup/crius/{pod}/{cid}/cgroup.procs" if v2 else \
            f"/sys/fs/cgroup/memory/crius/{pod}/{cid}/cgroup.procs"
        os.kill(int(open(procs).read().split()[0]), signal.SIGTERM)
        e = events.expect(cid, pb.CONTAINER_STOPPED_EVENT, timeout=5)
        [s] = e.containers_statuses
        assert s.state == pb.CONTAINER_EXITED and s.exit_code == 143, s
    finally:
        events.close()


def test_a_stream_ends_when_its_client_goes(d):
    events = Events(d)
    events.close()
    assert not events.thread.is_alive()
    # criusd still serves, and a new stream works.
    again = Events(d)
    again.close()
    assert d.runtime.Version(d.pb.VersionRequest()).runtime_name == "crius"


def summary(pb, e):
    """What an event says, statuses included, for comparing streams."""
    return (e.container_id, pb.ContainerEventType.Name(e.container_event_type), e.created_at,
            e.pod_sandbox_status.SerializeToString(deterministic=True),
            tuple(s.SerializeToString(deterministic=True) for s in e.containers_statuses))


def test_every_stream_gets_every_event_with_full_statuses(d, tmp, busybox):
    pb = d.pb
    streams = [Events(d) for _ in range(3)]
    try:
        cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="all", namespace="e", uid="u-all"),
                                  log_directory=str(tmp / "logs"), labels={"app": "all"})
        pod = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id
        ids = []
        for i in range(2):
            c = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=f"c{i}"), image=pb.ImageSpec(image=busybox.ref),
                                   command=["sleep", "60"], log_path=f"c{i}.log")
            cid = d.runtime.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, config=c,
                                                                      sandbox_config=cfg), timeout=60).container_id
            d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)
            ids.append(cid)
        got = [[] for _ in streams]

        def take(n):
            for s, events in zip(streams, got):
                try:
                    while len(events) < n:
                        events.append(summary(pb, s.next()))
                except queue.Empty:
                    pytest.fail(f"{len(events)} events of {n}: {[e[:2] for e in events]}")

        # The pod created and started, each container created and started:
        # taken before the stop, so their statuses were built before it.
        take(2 + 2 * len(ids))
        d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)
        d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=60)
        # Each container stopped, the pod stopped; each container deleted,
        # the pod deleted.
        take(2 + 2 * len(ids) + len(ids) + 1 + len(ids) + 1)
        assert got[0] == got[1] == got[2]
        kinds = [(cid, kind) for cid, kind, *_ in got[0]]
        for cid in ids:
            for kind in ("CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT", "CONTAINER_STOPPED_EVENT",
                         "CONTAINER_DELETED_EVENT"):
                assert kinds.count((cid, kind)) == 1, (cid, kind, kinds)
        # Full statuses: the started event of the second container carries
        # the pod's whole status and both containers' statuses.
        e = next(e for e in got[0] if e[0] == ids[1] and e[1] == "CONTAINER_STARTED_EVENT")
        status = pb.PodSandboxStatus.FromString(e[3])
        assert status.id == pod and status.labels["app"] == "all" and status.state == pb.SANDBOX_READY
        assert sorted(pb.ContainerStatus.FromString(s).id for s in e[4]) == sorted(ids)
        assert all(pb.ContainerStatus.FromString(s).state == pb.CONTAINER_RUNNING for s in e[4])
        for s in streams:
            with pytest.raises(queue.Empty):
                s.queue.get(timeout=0.3)  # nothing more, nothing twice
    finally:
        for s in streams:
            s.close()


def test_a_stream_that_stops_reading_is_ended_and_stalls_nobody(d, tmp, busybox):
    pb = d.pb
    reader = Events(d)
    # Opened and never read: gRPC's flow-control window fills, then criusd's
    # queue for it (events.max_queued = 64 here).
    stalled = d.runtime.GetContainerEvents(pb.GetEventsRequest())
    time.sleep(0.3)
    try:
        # Events of 32 KiB each (the pod's annotation is in every one), so the
        # window fills after a few.
        cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="slow", namespace="e", uid="u-slow"),
                                  log_directory=str(tmp / "logs"), annotations={"big": "x" * 32768})
        pod = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id
        reader.expect(pod, pb.CONTAINER_CREATED_EVENT)
        reader.expect(pod, pb.CONTAINER_STARTED_EVENT)
        ended = "a stream fell 64 events behind"
        made = 0
        deadline = time.monotonic() + 120
        while ended not in d.log:
            assert time.monotonic() < deadline, "the stalled stream was never ended"
            c = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=f"c{made}"),
                                   image=pb.ImageSpec(image=busybox.ref), command=["true"], log_path=f"c{made}.log")
            cid = d.runtime.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, config=c,
                                                                      sandbox_config=cfg), timeout=60).container_id
            d.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=60)
            # The reading stream is never held back by the stalled one.
            e = reader.expect(cid, pb.CONTAINER_CREATED_EVENT)
            assert e.pod_sandbox_status.annotations["big"] == "x" * 32768
            reader.expect(cid, pb.CONTAINER_DELETED_EVENT)
            made += 1
        assert made * 2 + 2 > 64
        # The stalled client reads at last: what was in flight, then the end.
        taken = 0
        with pytest.raises(grpc.RpcError) as err:
            for _ in stalled:
                taken += 1
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.value
        assert "fell 64 events behind" in err.value.details()
        assert taken < made * 2 + 2
        # The reader still gets new events, and a new stream works.
        again = Events(d)
        try:
            d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)
            reader.expect(pod, pb.CONTAINER_STOPPED_EVENT)
            again.expect(pod, pb.CONTAINER_STOPPED_EVENT)
        finally:
            again.close()
    finally:
        stalled.cancel()
        reader.close()
