"""Pod sandboxes as kubelet drives them: RunPodSandbox, StopPodSandbox,
RemovePodSandbox, PodSandboxStatus, ListPodSandbox, StreamPodSandboxes; one
crius-monitor per pod holding its namespaces, surviving criusd restarts."""
import json
import os
import signal
import subprocess
import time

import grpc
import pytest

pytestmark = pytest.mark.usefixtures("leak_check")


def config(pb, name="web", namespace="default", uid="uid-1", attempt=0, **kw):
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, namespace=namespace, uid=uid, attempt=attempt),
        **kw)


def run(d, cfg, handler=""):
    return d.runtime.RunPodSandbox(d.pb.RunPodSandboxRequest(config=cfg, runtime_handler=handler),
                                   timeout=30).pod_sandbox_id


def status(d, pod_id, verbose=False):
    return d.runtime.PodSandboxStatus(d.pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id,
                                                                   verbose=verbose))


def info(d, pod_id):
    return json.loads(status(d, pod_id, verbose=True).info["info"])


def stop(d, pod_id):
    d.runtime.StopPodSandbox(d.pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)


def remove(d, pod_id):
    d.runtime.RemovePodSandbox(d.pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)


def pods(d, **filt):
    f = d.pb.PodSandboxFilter(**filt) if filt else None
    return list(d.runtime.ListPodSandbox(d.pb.ListPodSandboxRequest(filter=f)).items)


def pod_dirs(d):
    path = d.state / "pods"
    return os.listdir(path) if os.path.exists(path) else []


def ns_inode(path):
    return os.stat(path).st_ino


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def wait_gone(pid, timeout=10):
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not alive(pid)


def cleanup(d):
    for p in pods(d):
        remove(d, p.id)


@pytest.fixture
def d(daemon):
    yield daemon
    if daemon.running:
        cleanup(daemon)


def test_run_pod_makes_a_ready_pod_with_its_own_namespaces(d):
    pb = d.pb
    pod_id = run(d, config(pb, hostname="web-0", labels={"app": "web"},
                           annotations={"a": "b"}))
    assert len(pod_id) == 64
    s = status(d, pod_id).status
    assert s.state == pb.SANDBOX_READY
    assert s.metadata.name == "web" and s.metadata.uid == "uid-1"
    assert dict(s.labels) == {"app": "web"} and dict(s.annotations) == {"a": "b"}
    assert s.created_at > 0
    i = info(d, pod_id)
    monitor = i["monitorPid"]
    assert alive(monitor)
    assert os.getppid() != monitor
    with open(f"/proc/{monitor}/stat") as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) != d.pid, "the monitor is not criusd's child"
    for kind in ("net", "ipc", "uts"):
        pinned = i["namespaces"][kind]
        assert ns_inode(pinned) != ns_inode(f"/proc/self/ns/{kind}")
        assert ns_inode(pinned) == ns_inode(f"/proc/{monitor}/ns/{kind}")
    # The hostname is set in the pod's UTS namespace.
    out = subprocess.run(["nsenter", f"--uts={i['namespaces']['uts']}", "hostname"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "web-0"
    pod_dir = i["dir"]
    assert open(f"{pod_dir}/hostname").read() == "web-0\n"
    assert "localhost" in open(f"{pod_dir}/hosts").read()


def test_dns_config_becomes_resolv_conf(d):
    pb = d.pb
    dns = pb.DNSConfig(servers=["10.96.0.10"], searches=["default.svc.cluster.local"],
                       options=["ndots:5"])
    pod_id = run(d, config(pb, dns_config=dns))
    text = open(f"{info(d, pod_id)['dir']}/resolv.conf").read()
    assert text == ("nameserver 10.96.0.10\nsearch default.svc.cluster.local\n"
                    "options ndots:5\n")


def test_host_network_pod_shares_the_nodes_network_and_name(d):
    pb = d.pb
    ns = pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER, ipc=pb.POD)
    pod_id = run(d, config(pb, linux=pb.LinuxPodSandboxConfig(
        security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns))))
    i = info(d, pod_id)
    assert "net" not in i["namespaces"] and "uts" not in i["namespaces"]
    assert "ipc" in i["namespaces"]
    assert ns_inode(f"/proc/{i['monitorPid']}/ns/net") == ns_inode("/proc/self/ns/net")
    s = status(d, pod_id).status
    assert s.linux.namespaces.options.network == pb.NODE


def test_pod_wide_pid_namespace_has_an_init(d):
    pb = d.pb
    ns = pb.NamespaceOption(pid=pb.POD)
    pod_id = run(d, config(pb, linux=pb.LinuxPodSandboxConfig(
        security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns))))
    pinned = info(d, pod_id)["namespaces"]["pid"]
    out = subprocess.run(["nsenter", f"--pid={pinned}", "--", "sh", "-c", "echo $$"],
                         capture_output=True, text=True)
    # A process entering the pod's pid namespace is not its pid 1: init is.
    assert out.returncode == 0 and int(out.stdout) > 1


def test_retry_with_the_same_metadata_returns_the_same_pod(d):
    pb = d.pb
    first = run(d, config(pb))
    assert run(d, config(pb)) == first
    assert run(d, config(pb, attempt=1)) != first
    assert len(pods(d)) == 2


def test_stop_releases_the_namespaces_and_keeps_the_pod(d):
    pb = d.pb
    pod_id = run(d, config(pb))
    i = info(d, pod_id)
    stop(d, pod_id)
    assert wait_gone(i["monitorPid"])
    assert status(d, pod_id).status.state == pb.SANDBOX_NOTREADY
    for path in i["namespaces"].values():
        assert not os.path.exists(path)
    stop(d, pod_id)  # idempotent


def test_remove_deletes_everything(d):
    pb = d.pb
    pod_id = run(d, config(pb))
    i = info(d, pod_id)
    remove(d, pod_id)
    assert wait_gone(i["monitorPid"])
    assert not os.path.exists(i["dir"])
    with pytest.raises(grpc.RpcError) as e:
        status(d, pod_id)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    remove(d, pod_id)  # removing an unknown pod succeeds
    stop(d, pod_id)


def test_list_filters_by_id_prefix_state_and_labels(d):
    pb = d.pb
    a = run(d, config(pb, name="a", labels={"app": "x", "tier": "1"}))
    b = run(d, config(pb, name="b", labels={"app": "x"}))
    stop(d, b)
    assert {p.id for p in pods(d)} == {a, b}
    assert [p.id for p in pods(d, id=a)] == [a]
    assert [p.id for p in pods(d, id=a[:12])] == [a]
    ready = pb.PodSandboxStateValue(state=pb.SANDBOX_READY)
    assert [p.id for p in pods(d, state=ready)] == [a]
    assert {p.id for p in pods(d, label_selector={"app": "x"})} == {a, b}
    assert [p.id for p in pods(d, label_selector={"tier": "1"})] == [a]
    streamed = [p.id for r in d.runtime.StreamPodSandboxes(pb.StreamPodSandboxesRequest())
                for p in r.pod_sandboxes]
    assert sorted(streamed) == sorted([a, b])


def test_list_entries_follow_each_state_and_agree_with_status(d):
    """A list entry is kept serialized between calls: it must show each
    state as it moves, also when the monitor dies unasked, and agree with
    PodSandboxStatus field for field."""
    pb = d.pb
    a = run(d, config(pb, name="a", labels={"k": "v"}, annotations={"x": "y"}))
    b = run(d, config(pb, name="b", uid="uid-2"))

    def entry(pod_id):
        (p,) = pods(d, id=pod_id)
        s = status(d, pod_id).status
        assert (p.id, p.metadata, p.state, p.created_at, p.runtime_handler) == (
            s.id, s.metadata, s.state, s.created_at, s.runtime_handler)
        assert (dict(p.labels), dict(p.annotations)) == (dict(s.labels), dict(s.annotations))
        return p.state

    assert entry(a) == entry(b) == pb.SANDBOX_READY
    assert dict(pods(d, id=a)[0].annotations) == {"x": "y"}
    stop(d, a)
    assert entry(a) == pb.SANDBOX_NOTREADY
    monitor = info(d, b)["monitorPid"]
    os.kill(monitor, signal.SIGKILL)
    assert wait_gone(monitor)
    assert entry(b) == pb.SANDBOX_NOTREADY
    for pod_id in (a, b):
        stop(d, pod_id)
        remove(d, pod_id)
    assert pods(d) == []


def test_status_by_id_prefix(d):
    pb = d.pb
    pod_id = run(d, config(pb))
    assert status(d, pod_id[:10]).status.id == pod_id


def test_pods_survive_a_criusd_restart(d):
    pb = d.pb
    pod_id = run(d, config(pb))
    monitor = info(d, pod_id)["monitorPid"]
    d.restart()
    assert status(d, pod_id).status.state == pb.SANDBOX_READY
    assert info(d, pod_id)["monitorPid"] == monitor
    d.kill9()
    assert alive(monitor), "a crash of criusd does not touch the pod"
    d.start()
    assert status(d, pod_id).status.state == pb.SANDBOX_READY
    stop(d, pod_id)
    assert wait_gone(monitor)


def test_a_killed_monitor_makes_the_pod_not_ready(d):
    pb = d.pb
    pod_id = run(d, config(pb))
    i = info(d, pod_id)
    os.kill(i["monitorPid"], signal.SIGKILL)
    assert wait_gone(i["monitorPid"])
    assert status(d, pod_id).status.state == pb.SANDBOX_NOTREADY
    # Every pin is released but the netns: its CNI DEL, at StopPodSandbox, needs it.
    for kind, path in i["namespaces"].items():
        assert os.path.exists(path) == (kind == "net"), kind
    d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    assert not os.path.exists(i["namespaces"]["net"])
    remove(d, pod_id)


def test_a_monitor_killed_while_criusd_is_down(d):
    pb = d.pb
    pod_id = run(d, config(pb))
    i = info(d, pod_id)
    d.stop()
    os.kill(i["monitorPid"], signal.SIGKILL)
    assert wait_gone(i["monitorPid"])
    d.start()
    assert status(d, pod_id).status.state == pb.SANDBOX_NOTREADY


# --- bad input ------------------------------------------------------------------

@pytest.mark.parametrize("change,field", [
    (lambda pb: pb.RunPodSandboxRequest(), "config: is missing"),
    (lambda pb: pb.RunPodSandboxRequest(config=pb.PodSandboxConfig()), "config.metadata: is missing"),
    (lambda pb: pb.RunPodSandboxRequest(config=config(pb, name="")), "config.metadata.name: is empty"),
    (lambda pb: pb.RunPodSandboxRequest(config=config(pb, namespace="")),
     "config.metadata.namespace: is empty"),
    (lambda pb: pb.RunPodSandboxRequest(config=config(pb, uid="")), "config.metadata.uid: is empty"),
    (lambda pb: pb.RunPodSandboxRequest(config=config(pb, name="a/b")),
     "config.metadata.name: \"a/b\" contains '/'"),
    (lambda pb: pb.RunPodSandboxRequest(config=config(pb, hostname="bad_host!")),
     "config.hostname"),
    (lambda pb: pb.RunPodSandboxRequest(config=config(pb, dns_config=pb.DNSConfig(servers=["x"]))),
     "config.dns_config.servers[0]"),
    (lambda pb: pb.RunPodSandboxRequest(config=config(pb, log_directory="relative/dir")),
     "config.log_directory"),
    (lambda pb: pb.RunPodSandboxRequest(config=config(pb, port_mappings=[
        pb.PortMapping(container_port=0)])), "config.port_mappings[0]"),
    (lambda pb: pb.RunPodSandboxRequest(config=config(pb), runtime_handler="runc"),
     "runtime_handler: unknown handler \"runc\""),
    (lambda pb: pb.RunPodSandboxRequest(config=config(pb, linux=pb.LinuxPodSandboxConfig(
        security_context=pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(pid=pb.TARGET))))),
     "namespace_options.pid"),
])
def test_bad_requests_are_invalid_argument_and_leave_nothing(d, change, field):
    with pytest.raises(grpc.RpcError) as e:
        d.runtime.RunPodSandbox(change(d.pb))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in e.value.details()
    assert pods(d) == []
    assert pod_dirs(d) == []


def test_empty_ids_are_invalid_argument(d):
    pb = d.pb
    for call, req in ((d.runtime.PodSandboxStatus, pb.PodSandboxStatusRequest()),
                      (d.runtime.StopPodSandbox, pb.StopPodSandboxRequest()),
                      (d.runtime.RemovePodSandbox, pb.RemovePodSandboxRequest())):
        with pytest.raises(grpc.RpcError) as e:
            call(req)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "pod_sandbox_id" in e.value.details()


def test_unknown_pod_status_is_not_found(d):
    with pytest.raises(grpc.RpcError) as e:
        status(d, "f" * 64)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_monitor_that_cannot_start_fails_the_pod_cleanly(make_daemon, tmp):
    bogus = tmp / "no-monitor"
    d = make_daemon(config=f'monitor_path = "{bogus}"\n')
    pb = d.pb
    with pytest.raises(grpc.RpcError) as e:
        run(d, config(pb))
    assert "crius-monitor" in e.value.details()
    assert pods(d) == []
    assert pod_dirs(d) == []


# --- crashes ----------------------------------------------------------------------

@pytest.mark.parametrize("point", ["sandbox_run.after_reserve", "sandbox_run.after_monitor"])
def test_crash_during_run_pod_is_rolled_back(make_daemon, point):
    d = make_daemon(failpoints=[point])
    pb = d.pb
    with pytest.raises(grpc.RpcError):
        run(d, config(pb))
    assert d.wait_exit() == -9
    d.failpoints = []
    d.start()
    assert pods(d) == []
    assert pod_dirs(d) == []
    # The same pod can be made now.
    pod_id = run(d, config(pb))
    remove(d, pod_id)


def test_crash_after_the_pod_is_ready_keeps_it(make_daemon):
    d = make_daemon(failpoints=["sandbox_run.after_ready"])
    pb = d.pb
    with pytest.raises(grpc.RpcError):
        run(d, config(pb))
    assert d.wait_exit() == -9
    d.failpoints = []
    d.start()
    [p] = pods(d)
    assert p.state == pb.SANDBOX_READY
    # kubelet's retry finds it.
    assert run(d, config(pb)) == p.id
    remove(d, p.id)


@pytest.mark.parametrize("point", ["sandbox_stop.after_monitor", "sandbox_remove.after_stop",
                                   "sandbox_remove.after_files"])
def test_crash_during_stop_or_remove_is_finished_by_a_retry(make_daemon, point):
    d = make_daemon(failpoints=[point])
    pb = d.pb
    pod_id = run(d, config(pb))
    monitor = info(d, pod_id)["monitorPid"]
    with pytest.raises(grpc.RpcError):
        remove(d, pod_id)
    assert d.wait_exit() == -9
    d.failpoints = []
    d.start()
    remove(d, pod_id)
    assert pods(d) == [] and pod_dirs(d) == []
    assert wait_gone(monitor)
