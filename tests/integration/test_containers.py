"""Containers as kubelet drives them: CreateContainer, StartContainer,
StopContainer, RemoveContainer, ContainerStatus, ListContainers,
StreamContainers, ReopenContainerLog; each container a process the pod's
monitor started in its own mount namespace on an overlay of the image."""
import json
import os
import re
import signal
import time

import grpc
import pytest

import harness
from harness.cri import container_status as status, create_container, remove_all, start_container as start

pytestmark = pytest.mark.usefixtures("leak_check")


@pytest.fixture
def d(make_daemon, registry):
    d = make_daemon(config=f'[registry]\ninsecure = ["{registry.host}"]\n')
    yield d
    if not d.running:
        d.failpoints = []
        d.start()
    remove_all(d)


@pytest.fixture
def pod(d, tmp, busybox):
    pb = d.pb
    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=busybox.ref)), timeout=60)
    cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="p", namespace="ns", uid="u1"),
                              hostname="podhost", log_directory=str(tmp / "logs"))
    pod_id = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=30).pod_sandbox_id
    return pod_id, cfg


def create(d, pod, image, name="c", **kw):
    pod_id, pod_cfg = pod
    return create_container(d, pod_id, pod_cfg, image, name, **kw)


def stop(d, cid, timeout=10):
    d.runtime.StopContainer(d.pb.StopContainerRequest(container_id=cid, timeout=timeout), timeout=60)


def remove(d, cid):
    d.runtime.RemoveContainer(d.pb.RemoveContainerRequest(container_id=cid), timeout=60)


def container_dirs(d):
    path = d.root / "containers"
    return os.listdir(path) if os.path.exists(path) else []


def monitor_pid(d, pod_id):
    return json.loads(d.runtime.PodSandboxStatus(d.pb.PodSandboxStatusRequest(
        pod_sandbox_id=pod_id, verbose=True)).info["info"])["monitorPid"]


def wait_state(d, cid, state, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = status(d, cid)
        if s.state == state:
            return s
        time.sleep(0.05)
    raise AssertionError(f"container {cid} did not reach {state}: {status(d, cid)}")


def log_lines(path):
    with open(path) as f:
        return f.read().splitlines()


CRI_LOG = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (P|F) (.*)$")


def test_a_container_runs_logs_and_exits_with_its_code(d, pod, busybox, tmp):
    pb = d.pb
    cid = create(d, pod, busybox.ref, command=["sh", "-c"],
                 args=["echo out; echo err >&2; printf partial; exit 3"])
    s = status(d, cid)
    assert s.state == pb.CONTAINER_CREATED and s.created_at > 0 and s.started_at == 0
    start(d, cid)
    s = wait_state(d, cid, pb.CONTAINER_EXITED)
    assert s.exit_code == 3 and s.reason == "Error"
    assert s.started_at > 0 and s.finished_at >= s.started_at
    assert s.image_ref.startswith(f"{busybox.host}/busybox@sha256:")
    assert s.log_path == str(tmp / "logs/c/0.log")
    lines = [CRI_LOG.match(l).groups() for l in log_lines(s.log_path)]
    assert ("stdout", "F", "out") in lines and ("stderr", "F", "err") in lines
    assert ("stdout", "F", "partial") in lines


def pid_ns(d, pid_mode, target_id=""):
    pb = d.pb
    return pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
        namespace_options=pb.NamespaceOption(pid=pid_mode, target_id=target_id)))


def test_a_target_container_joins_another_containers_pid_namespace(d, pod, busybox, tmp):
    # kubelet's debug containers: pid mode TARGET names a running container
    # that has a pid namespace of its own.
    pb = d.pb
    target = create(d, pod, busybox.ref, name="app", command=["sh", "-c", "echo up; exec sleep 60"],
                    linux=pid_ns(d, pb.CONTAINER))
    start(d, target)
    wait_state(d, target, pb.CONTAINER_RUNNING)
    debug = create(d, pod, busybox.ref, name="debug", command=["sh", "-c", "echo pid=$$; ps -o pid,args"],
                   linux=pid_ns(d, pb.TARGET, target_id=target[:12]))  # crictl shortens ids
    start(d, debug)
    s = wait_state(d, debug, pb.CONTAINER_EXITED)
    out = [CRI_LOG.match(l).group(3) for l in log_lines(s.log_path)]
    # The target's process is pid 1 there; the debug shell is another.
    assert any(re.fullmatch(r"\s*1 sleep 60", l) for l in out), out
    assert "pid=1" not in out, out


def test_bad_pid_modes_are_refused_naming_the_field(d, pod, busybox):
    pb = d.pb
    other = create(d, pod, busybox.ref, name="pod-pid", command=["sleep", "60"])  # pid mode POD
    start(d, other)
    mine = create(d, pod, busybox.ref, name="own-pid", command=["sleep", "60"], linux=pid_ns(d, pb.CONTAINER))
    field = "config.linux.security_context.namespace_options"
    for linux, code, why in [
        (pid_ns(d, pb.TARGET), grpc.StatusCode.INVALID_ARGUMENT, f"{field}.target_id: is empty"),
        (pid_ns(d, pb.TARGET, "f" * 64), grpc.StatusCode.INVALID_ARGUMENT, f"{field}.target_id: no container"),
        (pid_ns(d, pb.TARGET, other), grpc.StatusCode.INVALID_ARGUMENT, "has no pid namespace of its own"),
        (pid_ns(d, pb.TARGET, mine), grpc.StatusCode.FAILED_PRECONDITION, "is not running"),
        (pid_ns(d, pb.NODE), grpc.StatusCode.INVALID_ARGUMENT, f"{field}.pid"),
        (pid_ns(d, 9), grpc.StatusCode.INVALID_ARGUMENT, f"{field}.pid"),
    ]:
        before = container_dirs(d)
        with pytest.raises(grpc.RpcError) as e:
            create(d, pod, busybox.ref, name="bad", command=["true"], linux=linux)
        assert e.value.code() == code and why in e.value.details(), e.value.details()
        assert container_dirs(d) == before


def test_completed_container_reason(d, pod, busybox):
    pb = d.pb
    cid = create(d, pod, busybox.ref, command=["true"])
    start(d, cid)
    s = wait_state(d, cid, pb.CONTAINER_EXITED)
    assert s.exit_code == 0 and s.reason == "Completed"


def test_the_container_sees_its_own_root_hostname_and_pid_1(d, pod, busybox, tmp):
    pb = d.pb
    ns = pb.NamespaceOption(pid=pb.CONTAINER)
    cid = create(d, pod, busybox.ref, command=["sh", "-c"],
                 args=["echo pid=$$; hostname; cat /etc/hostname; ls /; cat /etc/passwd | head -1"],
                 linux=pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
                     namespace_options=ns)))
    start(d, cid)
    s = wait_state(d, cid, pb.CONTAINER_EXITED)
    out = [CRI_LOG.match(l).group(3) for l in log_lines(s.log_path)]
    assert "pid=1" in out
    assert out.count("podhost") == 2
    assert "busybox" not in out and "bin" in out and "proc" in out
    assert "root:x:0:0:root:/root:/bin/sh" in out
    assert s.exit_code == 0


def test_image_entrypoint_cmd_env_and_workdir_combine_as_kubernetes_says(d, pod, registry):
    pb = d.pb
    image = harness.busybox_image(entrypoint=["/bin/sh", "-c"], cmd=["echo image-cmd $A $B; pwd"],
                                  env=["PATH=/bin", "A=image", "B=image"], working_dir="/tmp")
    pushed = harness.push(registry, image, "combine")
    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=pushed.ref)), timeout=60)

    def run(name, **kw):
        cid = create(d, pod, pushed.ref, name=name, **kw)
        start(d, cid)
        s = wait_state(d, cid, pb.CONTAINER_EXITED)
        return [CRI_LOG.match(l).group(3) for l in log_lines(s.log_path)]

    assert run("defaults") == ["image-cmd image image", "/tmp"]
    assert run("args", args=["echo args $A"]) == ["args image"]
    assert run("command", command=["echo", "command"]) == ["command"]
    assert run("env", envs=[pb.KeyValue(key="B", value=b"cri")]) == ["image-cmd image cri", "/tmp"]
    assert run("workdir", working_dir="/etc") == ["image-cmd image image", "/etc"]


def trapped_shell(d, pod, busybox, trap):
    """A running container whose shell has set `trap` for SIGTERM and logged
    so: a SIGTERM before it set its trap would kill it (143)."""
    cid = create(d, pod, busybox.ref, command=["sh", "-c"],
                 args=[f"trap {trap} TERM; echo trapped; while true; do sleep 0.1; done"])
    start(d, cid)
    log = status(d, cid).log_path
    deadline = time.monotonic() + 10
    while not any(line.endswith(" trapped") for line in log_lines(log)):
        assert time.monotonic() < deadline, "the shell never set its trap"
        time.sleep(0.02)
    return cid


def test_stop_sends_sigterm_then_the_process_exits_with_its_code(d, pod, busybox):
    pb = d.pb
    cid = trapped_shell(d, pod, busybox, "'exit 42'")
    t = time.monotonic()
    stop(d, cid, timeout=10)
    assert time.monotonic() - t < 5
    s = status(d, cid)
    assert s.state == pb.CONTAINER_EXITED and s.exit_code == 42


def test_stop_kills_after_the_timeout(d, pod, busybox):
    cid = trapped_shell(d, pod, busybox, "''")
    t = time.monotonic()
    stop(d, cid, timeout=1)
    assert 0.9 < time.monotonic() - t < 5
    assert status(d, cid).exit_code == 137


def test_stop_with_timeout_0_kills_at_once(d, pod, busybox):
    pb = d.pb
    cid = create(d, pod, busybox.ref, command=["sleep", "1000"])
    start(d, cid)
    stop(d, cid, timeout=0)
    s = status(d, cid)
    assert s.state == pb.CONTAINER_EXITED and s.exit_code == 137
    stop(d, cid)  # stopping an exited container is fine


def test_start_of_a_running_container_is_failed_precondition(d, pod, busybox):
    cid = create(d, pod, busybox.ref, command=["sleep", "1000"])
    start(d, cid)
    with pytest.raises(grpc.RpcError) as e:
        start(d, cid)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    stop(d, cid, timeout=0)


def test_list_and_stream_with_filters(d, pod, busybox):
    pb = d.pb
    a = create(d, pod, busybox.ref, name="a", command=["sleep", "1000"], labels={"x": "1"})
    b = create(d, pod, busybox.ref, name="b", command=["true"], labels={"x": "2"})
    start(d, a)

    def ids(**f):
        flt = pb.ContainerFilter(**f) if f else None
        return sorted(c.id for c in d.runtime.ListContainers(pb.ListContainersRequest(filter=flt)).containers)

    assert ids() == sorted([a, b])
    assert ids(id=a[:8]) == [a]
    assert ids(pod_sandbox_id=pod[0]) == sorted([a, b])
    assert ids(state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING)) == [a]
    assert ids(state=pb.ContainerStateValue(state=pb.CONTAINER_CREATED)) == [b]
    assert ids(label_selector={"x": "2"}) == [b]
    streamed = sorted(c.id for r in d.runtime.StreamContainers(pb.StreamContainersRequest())
                      for c in r.containers)
    assert streamed == sorted([a, b])
    stop(d, a, timeout=0)


def test_list_entries_follow_each_state_and_agree_with_status(d, pod, busybox):
    """A list entry is kept serialized between calls: it must show each
    state as it moves, and agree with ContainerStatus field for field."""
    pb = d.pb
    cid = create(d, pod, busybox.ref, name="moving", command=["sleep", "1000"], labels={"k": "v"},
                 annotations={"a": "b"})

    def entry():
        (c,) = d.runtime.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter(id=cid))).containers
        s = status(d, cid)
        assert (c.id, c.pod_sandbox_id, c.state, c.created_at) == (s.id, pod[0], s.state, s.created_at)
        assert (c.metadata, c.image, c.image_ref, c.image_id) == (s.metadata, s.image, s.image_ref, s.image_id)
        assert (dict(c.labels), dict(c.annotations)) == ({"k": "v"}, {"a": "b"}) == (dict(s.labels),
                                                                                    dict(s.annotations))
        return c.state

    assert entry() == pb.CONTAINER_CREATED
    start(d, cid)
    assert entry() == pb.CONTAINER_RUNNING
    stop(d, cid, timeout=0)
    wait_state(d, cid, pb.CONTAINER_EXITED)
    assert entry() == pb.CONTAINER_EXITED
    remove(d, cid)
    assert list(d.runtime.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter(id=cid))).containers) == []


@pytest.mark.parametrize("method", ["ListContainers", "ListPodSandbox"])
def test_list_of_bytes_that_are_no_request_is_invalid_argument(d, method):
    raw = d.client.channel.unary_unary(f"/runtime.v1.RuntimeService/{method}",
                                       request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as e:
        raw(b"\x0a\xff\xff\xff", timeout=10)  # field 1, a length past the end
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"{method}Request" in e.value.details()


def test_remove_deletes_the_container_and_its_layer(d, pod, busybox):
    pb = d.pb
    cid = create(d, pod, busybox.ref, command=["sh", "-c", "echo x > /written"])
    start(d, cid)
    wait_state(d, cid, pb.CONTAINER_EXITED)
    assert os.path.exists(d.root / "containers" / cid / "upper/written")
    remove(d, cid)
    assert not os.path.exists(d.root / "containers" / cid)
    with pytest.raises(grpc.RpcError) as e:
        status(d, cid)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    remove(d, cid)
    stop(d, cid)


def test_containers_keep_running_across_a_criusd_crash(d, pod, busybox):
    pb = d.pb
    cid = create(d, pod, busybox.ref, command=["sh", "-c"],
                 args=["i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"])
    start(d, cid)
    s = wait_state(d, cid, pb.CONTAINER_RUNNING)
    d.kill9()
    time.sleep(0.5)
    d.start()
    assert status(d, cid).state == pb.CONTAINER_RUNNING
    before = len(log_lines(s.log_path))
    time.sleep(0.5)
    assert len(log_lines(s.log_path)) > before, "the container kept logging"
    stop(d, cid, timeout=0)
    assert status(d, cid).exit_code == 137


def test_an_exit_while_criusd_is_down_is_found(d, pod, busybox):
    pb = d.pb
    cid = create(d, pod, busybox.ref, command=["sh", "-c", "sleep 0.5; exit 7"])
    start(d, cid)
    d.stop()
    time.sleep(1)
    d.start()
    s = status(d, cid)
    assert s.state == pb.CONTAINER_EXITED and s.exit_code == 7


def test_a_killed_monitor_ends_the_containers_with_a_message(d, pod, busybox):
    pb = d.pb
    cid = create(d, pod, busybox.ref, command=["sleep", "1000"])
    start(d, cid)
    monitor = monitor_pid(d, pod[0])
    os.kill(monitor, signal.SIGKILL)
    time.sleep(0.5)
    s = status(d, cid)
    assert s.state == pb.CONTAINER_EXITED
    assert "monitor" in s.message


def test_a_monitor_that_is_alive_but_does_not_answer_leaves_its_containers_as_they_were(d, pod, busybox):
    # A stopped monitor stands for one too busy or starved to answer in time.
    pb = d.pb
    cid = create(d, pod, busybox.ref, command=["sleep", "1000"])
    start(d, cid)
    monitor = monitor_pid(d, pod[0])
    os.kill(monitor, signal.SIGSTOP)
    try:
        assert status(d, cid).state == pb.CONTAINER_RUNNING  # after the monitor call's timeout
    finally:
        os.kill(monitor, signal.SIGCONT)
    assert status(d, cid).state == pb.CONTAINER_RUNNING
    assert "is running but did not answer" in d.log_path.read_text()


def test_stop_pod_stops_its_containers(d, pod, busybox):
    pb = d.pb
    cid = create(d, pod, busybox.ref, command=["sleep", "1000"])
    start(d, cid)
    d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod[0]), timeout=30)
    s = status(d, cid)
    assert s.state == pb.CONTAINER_EXITED and s.exit_code == 137
    with pytest.raises(grpc.RpcError) as e:
        create(d, pod, busybox.ref, name="late", command=["true"])
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


# --- bad input -------------------------------------------------------------------

def test_a_command_that_does_not_exist_is_named(d, pod, busybox):
    with pytest.raises(grpc.RpcError) as e:
        create(d, pod, busybox.ref, command=["/no/such/binary"])
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "/no/such/binary" in e.value.details()
    assert list(d.runtime.ListContainers(d.pb.ListContainersRequest()).containers) == []


def test_a_bad_working_dir_is_named(d, pod, busybox):
    with pytest.raises(grpc.RpcError) as e:
        create(d, pod, busybox.ref, command=["true"], working_dir="/no/such/dir")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "/no/such/dir" in e.value.details()
    assert container_dirs(d) == []


def test_an_image_that_is_not_pulled(d, pod):
    with pytest.raises(grpc.RpcError) as e:
        create(d, pod, "docker.io/library/never-pulled:1", command=["true"])
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "never-pulled" in e.value.details()


def test_an_unknown_pod(d, busybox, pod):
    pb = d.pb
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"), image=pb.ImageSpec(image=busybox.ref))
    with pytest.raises(grpc.RpcError) as e:
        d.runtime.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id="f" * 64, config=cfg))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("log_path", ["../escape.log", "/abs/c.log", "a/../../b.log"])
def test_a_log_path_outside_the_pods_log_directory(d, pod, busybox, log_path):
    pb = d.pb
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"), image=pb.ImageSpec(image=busybox.ref),
                             command=["true"], log_path=log_path)
    with pytest.raises(grpc.RpcError) as e:
        d.runtime.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod[0], config=cfg))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config.log_path" in e.value.details()


@pytest.mark.parametrize("change,field", [
    (lambda pb: pb.ContainerConfig(), "config.metadata.name"),
    (lambda pb: pb.ContainerConfig(metadata=pb.ContainerMetadata(name="a/b"),
                                   image=pb.ImageSpec(image="x")), "config.metadata.name"),
    (lambda pb: pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c")), "config.image.image"),
])
def test_missing_fields_are_invalid_argument(d, pod, change, field):
    pb = d.pb
    with pytest.raises(grpc.RpcError) as e:
        d.runtime.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod[0], config=change(pb)))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in e.value.details()


def test_the_same_name_twice_is_already_exists(d, pod, busybox):
    create(d, pod, busybox.ref, command=["true"])
    with pytest.raises(grpc.RpcError) as e:
        create(d, pod, busybox.ref, command=["true"])
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize("point", ["container_create.after_reserve", "container_create.after_monitor"])
def test_crash_during_create_is_rolled_back(make_daemon, registry, busybox, tmp, point):
    d = make_daemon(config=f'[registry]\ninsecure = ["{registry.host}"]\n', failpoints=[point])
    try:
        crash_during_create(d, busybox)
    finally:
        if not d.running:
            d.failpoints = []
            d.start()
        remove_all(d)


def crash_during_create(d, busybox):
    pb = d.pb
    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=busybox.ref)), timeout=60)
    cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="p", namespace="ns", uid="u1"))
    pod_id = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=30).pod_sandbox_id
    with pytest.raises(grpc.RpcError):
        create(d, (pod_id, cfg), busybox.ref, command=["true"])
    assert d.wait_exit() == -9
    d.failpoints = []
    d.start()
    assert list(d.runtime.ListContainers(pb.ListContainersRequest()).containers) == []
    assert container_dirs(d) == []
    cid = create(d, (pod_id, cfg), busybox.ref, command=["true"])
    d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)
    assert list(d.runtime.ListContainers(pb.ListContainersRequest()).containers) == []
    assert cid


def test_an_image_in_use_cannot_be_removed(d, pod, busybox):
    pb = d.pb
    cid = create(d, pod, busybox.ref, command=["true"])
    with pytest.raises(grpc.RpcError) as e:
        d.image.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=busybox.ref)))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert cid in e.value.details()
    remove(d, cid)
    d.image.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=busybox.ref)))
    assert not d.image.ImageStatus(pb.ImageStatusRequest(
        image=pb.ImageSpec(image=busybox.ref))).HasField("image")


@pytest.fixture(scope="module")
def go_sigterm_image(registry, tmp_path_factory):
    """A static Go binary (Debian's golang-go, built here) that traps SIGTERM."""
    import subprocess
    out = tmp_path_factory.mktemp("go")
    src = os.path.join(os.path.dirname(__file__), "..", "fixtures", "sigterm_exit.go")
    env = dict(os.environ, CGO_ENABLED="0", GOCACHE=str(out / "cache"), HOME=str(out),
               GOFLAGS="-mod=mod", GO111MODULE="off")
    subprocess.run(["go", "build", "-o", str(out / "sigterm_exit"), src], check=True, env=env,
                   capture_output=True)
    with open(out / "sigterm_exit", "rb") as f:
        layer = harness.Layer().file("sigterm_exit", f.read(), mode=0o755)
    return harness.push(registry, harness.Image([layer], entrypoint=["/sigterm_exit"], env=None),
                        "go-sigterm")


def test_a_go_program_that_traps_sigterm_exits_with_its_own_code(d, pod, go_sigterm_image):
    pb = d.pb
    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=go_sigterm_image.ref)), timeout=60)
    cid = create(d, pod, go_sigterm_image.ref, args=["23"])
    start(d, cid)
    s = wait_state(d, cid, pb.CONTAINER_RUNNING)
    deadline = time.monotonic() + 10
    while "waiting for SIGTERM" not in open(s.log_path).read() and time.monotonic() < deadline:
        time.sleep(0.05)
    stop(d, cid, timeout=10)
    s = status(d, cid)
    assert s.state == pb.CONTAINER_EXITED and s.exit_code == 23 and s.reason == "Error"
    assert "got SIGTERM, exiting with 23" in open(s.log_path).read()


def test_pods_and_containers_are_counted_in_metrics(make_daemon, registry, busybox, tmp):
    from test_metrics import scrape, value
    from harness.util import free_port
    address = f"127.0.0.1:{free_port()}"
    d = make_daemon(config=f'[registry]\ninsecure = ["{registry.host}"]\n[metrics]\naddress = "{address}"\n')
    try:
        pb = d.pb
        d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=busybox.ref)), timeout=60)
        cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="p", namespace="ns", uid="u1"))
        pod = (d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id, cfg)
        ok = create(d, pod, busybox.ref, name="ok", command=["true"])
        bad = create(d, pod, busybox.ref, name="bad", command=["false"])
        idle = create(d, pod, busybox.ref, name="idle", command=["true"])
        start(d, ok)
        start(d, bad)
        wait_state(d, ok, pb.CONTAINER_EXITED)
        wait_state(d, bad, pb.CONTAINER_EXITED)
        s = scrape(address)
        assert value(s, "crius_pods", state="ready") == 1
        assert value(s, "crius_containers", state="exited") == 2
        assert value(s, "crius_containers", state="created") == 1
        assert value(s, "crius_container_exits_total", reason="Completed") == 1
        assert value(s, "crius_container_exits_total", reason="Error") == 1
        assert value(s, "crius_pod_ready_duration_seconds_count") == 1
        assert idle
    finally:
        remove_all(d)


def test_a_tty_container_logs_its_terminal_as_stdout(d, pod, busybox):
    pb = d.pb
    cid = create(d, pod, busybox.ref, tty=True,
                 command=["sh", "-c", "test -t 0 && test -t 1 && test -t 2 && echo is-a-tty; "
                                      "echo to-stderr >&2"])
    start(d, cid)
    s = wait_state(d, cid, pb.CONTAINER_EXITED)
    lines = [CRI_LOG.match(l).groups() for l in log_lines(s.log_path)]
    # A terminal has one stream: all of it is logged as stdout.
    assert [l[2].rstrip("\r") for l in lines] == ["is-a-tty", "to-stderr"]
    assert all(l[0] == "stdout" for l in lines)
    assert s.exit_code == 0


def test_containers_of_a_pod_share_its_dev_shm(d, pod, busybox):
    pb = d.pb
    w = create(d, pod, busybox.ref, name="w", command=["sh", "-c", "echo shared > /dev/shm/x"])
    start(d, w)
    wait_state(d, w, pb.CONTAINER_EXITED)
    r = create(d, pod, busybox.ref, name="r", command=["cat", "/dev/shm/x"])
    start(d, r)
    s = wait_state(d, r, pb.CONTAINER_EXITED)
    assert [CRI_LOG.match(l).group(3) for l in log_lines(s.log_path)] == ["shared"]


@pytest.mark.parametrize("point,expect", [
    ("container_start.after_monitor", "running"),
    ("container_stop.before_kill", "exited"),
    ("container_remove.after_monitor", "gone"),
])
def test_crash_during_start_stop_or_remove_is_taken_up(make_daemon, registry, busybox, point, expect):
    d = make_daemon(config=f'[registry]\ninsecure = ["{registry.host}"]\n', failpoints=[point])
    try:
        pb = d.pb
        d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=busybox.ref)), timeout=60)
        cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="p", namespace="ns", uid="u1"))
        pod = (d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id, cfg)
        cid = create(d, pod, busybox.ref, command=["sleep", "1000"])
        with pytest.raises(grpc.RpcError):
            start(d, cid)
            stop(d, cid, timeout=0)
            remove(d, cid)
        assert d.wait_exit() == -9
        d.failpoints = []
        d.start()
        if expect == "running":
            assert status(d, cid).state == pb.CONTAINER_RUNNING
            stop(d, cid, timeout=0)
        if expect == "exited":
            stop(d, cid, timeout=0)  # the retry finishes the stop
            assert status(d, cid).state == pb.CONTAINER_EXITED
        remove(d, cid)
        assert container_dirs(d) == []
        assert list(d.runtime.ListContainers(pb.ListContainersRequest()).containers) == []
    finally:
        if not d.running:
            d.failpoints = []
            d.start()
        remove_all(d)


def test_reopen_container_log_follows_a_rotation(d, pod, busybox):
    pb = d.pb
    cid = create(d, pod, busybox.ref, command=["sh", "-c"],
                 args=["i=0; while true; do echo line $i; i=$((i+1)); sleep 0.05; done"])
    start(d, cid)
    s = wait_state(d, cid, pb.CONTAINER_RUNNING)
    time.sleep(0.3)
    os.rename(s.log_path, s.log_path + ".1")  # what kubelet's rotation does
    d.runtime.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=cid))
    deadline = time.monotonic() + 5
    while not os.path.exists(s.log_path) or not log_lines(s.log_path):
        assert time.monotonic() < deadline, "nothing written to the reopened log"
        time.sleep(0.05)
    assert all(CRI_LOG.match(l) for l in log_lines(s.log_path))
    stop(d, cid, timeout=0)
    with pytest.raises(grpc.RpcError) as e:
        d.runtime.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=cid))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    os.unlink(s.log_path + ".1")


@pytest.mark.parametrize("rpc", ["StopPodSandbox", "RemovePodSandbox"])
def test_stopping_a_pod_right_after_its_monitor_died(d, pod, busybox, rpc):
    """No status call in between: the stop itself finds the monitor gone."""
    pb = d.pb
    cid = create(d, pod, busybox.ref, command=["sleep", "1000"])
    start(d, cid)
    monitor = monitor_pid(d, pod[0])
    os.kill(monitor, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{monitor}") and time.monotonic() < deadline:
        time.sleep(0.02)
    request = getattr(pb, f"{rpc}Request")(pod_sandbox_id=pod[0])
    getattr(d.runtime, rpc)(request, timeout=15)
    if rpc == "StopPodSandbox":
        assert d.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(
            pod_sandbox_id=pod[0])).status.state == pb.SANDBOX_NOTREADY
        s = status(d, cid)
        assert s.state == pb.CONTAINER_EXITED and "monitor" in s.message
    else:
        assert list(d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items) == []
