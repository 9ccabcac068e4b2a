"""Prometheus metrics as an operator scrapes them: a real criusd, real CRI
calls, /metrics over HTTP, and the start-up errors of a bad metrics address."""
import os
import re
import socket
import subprocess
import time
import tomllib
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.daemon import Daemon, criusd_path
from harness.util import free_port, remove_tree, short_tmpdir

pytestmark = pytest.mark.usefixtures("leak_check")


def metrics_config(address):
    return f'[metrics]\naddress = "{address}"\n'


@pytest.fixture
def address():
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def daemon(address):
    with Daemon(config=metrics_config(address)) as d:
        d.start()
        d.metrics_address = address
        yield d
        d.stop()


@pytest.fixture
def workdir():
    d = short_tmpdir("crius-t-")
    yield d
    remove_tree(d)


def scrape_text(address):
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        return r.read().decode()


def scrape(address):
    """{(sample name, ((label, value), ...)): value} of one scrape, parsed by
    prometheus_client's parser (an independent reader of the text format)."""
    samples = {}
    for family in text_string_to_metric_families(scrape_text(address)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def changed(before, after, prefix):
    """Every sample under `prefix` that moved, with its delta."""
    keys = {k for k in set(before) | set(after) if k[0].startswith(prefix)}
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in keys
            if after.get(k, 0.0) != before.get(k, 0.0)}


def update_cidr(d, cidr):
    pb = d.pb
    return d.runtime.UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest(
        runtime_config=pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr=cidr))))


def run_criusd(*args, timeout=20):
    return subprocess.run([str(criusd_path()), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def private_args(workdir):
    return ["--root", f"{workdir}/root", "--state", f"{workdir}/state",
            "--listen", f"unix://{workdir}/run/crius.sock"]


def assert_one_line_error(run, *needles):
    assert run.returncode != 0, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line error, got:\n{run.stderr}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


# --- what the RPCs leave in the metrics ----------------------------------------

def code_label(code):
    """The `code` label criusd uses for a grpc.StatusCode: gRPC's own names."""
    return {"OK": "OK", "CANCELLED": "Canceled"}.get(
        code.name, "".join(w.capitalize() for w in code.name.split("_")))


def call(rpc, request):
    """Calls a unary RPC; returns the code label of its answer."""
    try:
        rpc(request, timeout=10)
        return "OK"
    except grpc.RpcError as e:
        return code_label(e.code())


# Refused by this build (no CRIU); if it ever is served, the tests below
# still hold, with the code the client saw.
UNSERVED = "CheckpointContainer"


def test_each_rpc_is_counted_once_by_method_and_code(daemon):
    pb = daemon.pb
    before = scrape(daemon.metrics_address)
    daemon.runtime.Version(pb.VersionRequest())
    daemon.runtime.Version(pb.VersionRequest())
    daemon.runtime.Status(pb.StatusRequest())
    unserved = call(daemon.runtime.CheckpointContainer, pb.CheckpointContainerRequest(container_id="nope"))
    with pytest.raises(grpc.RpcError) as e:
        update_cidr(daemon, "10.0.0.0/40")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    after = scrape(daemon.metrics_address)

    total = "crius_grpc_requests_total"
    assert changed(before, after, total) == {
        (total, (("code", "OK"), ("method", "Version"))): 2,
        (total, (("code", "OK"), ("method", "Status"))): 1,
        (total, (("code", unserved), ("method", UNSERVED))): 1,
        (total, (("code", "InvalidArgument"), ("method", "UpdateRuntimeConfig"))): 1,
    }


def test_unimplemented_rpcs_are_counted_as_unimplemented(daemon):
    before = scrape(daemon.metrics_address)
    assert call(daemon.runtime.CheckpointContainer, daemon.pb.CheckpointContainerRequest()) == "Unimplemented", \
        f"{UNSERVED} is served now: pick another unserved RPC for this test"
    after = scrape(daemon.metrics_address)
    assert changed(before, after, "crius_grpc_requests_total") == {
        ("crius_grpc_requests_total", (("code", "Unimplemented"), ("method", UNSERVED))): 1}


def test_each_rpc_is_timed_in_the_histogram(daemon):
    before = scrape(daemon.metrics_address)
    for _ in range(3):
        daemon.runtime.Status(daemon.pb.StatusRequest())
    call(daemon.runtime.CheckpointContainer, daemon.pb.CheckpointContainerRequest())
    after = scrape(daemon.metrics_address)

    h = "crius_grpc_request_duration_seconds"
    for method, n in (("Status", 3), (UNSERVED, 1)):
        count = value(after, f"{h}_count", method=method) - value(before, f"{h}_count",
                                                                   method=method)
        assert count == n, method
        total = value(after, f"{h}_sum", method=method) - value(before, f"{h}_sum",
                                                                 method=method)
        assert 0 < total < n * 1.0, f"{method}: {n} local calls took {total}s?"
        buckets = sorted((float(dict(labels)["le"]), v) for (name, labels), v in after.items()
                         if name == f"{h}_bucket" and dict(labels)["method"] == method)
        bounds = [b for b, _ in buckets]
        assert bounds[0] == 0.00005 and bounds[-2] == 10 and bounds[-1] == float("inf")
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), "buckets are cumulative"
        assert counts[-1] == value(after, f"{h}_count", method=method)
    # Nothing else was timed between the two scrapes.
    moved = {dict(k[1])["method"] for k in changed(before, after, f"{h}_count")}
    assert moved == {"Status", UNSERVED}


def test_build_info_names_the_version_served(daemon):
    v = daemon.runtime.Version(daemon.pb.VersionRequest())
    samples = scrape(daemon.metrics_address)
    info = {k: val for k, val in samples.items() if k[0] == "crius_build_info"}
    assert info == {("crius_build_info", (("api_version", "v1"),
                                          ("version", v.runtime_version))): 1.0}


def proc_status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split()[1]
    raise KeyError(field)


def test_process_metrics_describe_the_daemon_process(daemon):
    samples = scrape(daemon.metrics_address)
    pid = daemon.pid

    rss = value(samples, "crius_process_resident_memory_bytes")
    vmrss = int(proc_status(pid, "VmRSS")) * 1024
    assert rss > 1 << 20
    assert 0.5 * vmrss < rss < 2 * vmrss, (rss, vmrss)

    fds = value(samples, "crius_process_open_fds")
    assert fds > 3
    assert abs(fds - len(os.listdir(f"/proc/{pid}/fd"))) <= 2  # a scrape's own socket

    threads = value(samples, "crius_process_threads")
    assert threads >= 2
    assert abs(threads - int(proc_status(pid, "Threads"))) <= 2

    with open(f"/proc/{pid}/limits") as f:
        soft = next(line.split()[3] for line in f if line.startswith("Max open files"))
    assert value(samples, "crius_process_max_fds") == int(soft)

    start = value(samples, "crius_process_start_time_seconds")
    assert time.time() - 60 < start <= time.time(), "criusd started within the last minute"
    with open("/proc/stat") as f:
        btime = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    with open(f"/proc/{pid}/stat") as f:
        ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    assert start == pytest.approx(btime + ticks / os.sysconf("SC_CLK_TCK"), abs=0.011)

    assert value(samples, "crius_process_cpu_seconds_total") > 0


def test_every_crius_family_follows_prometheus_naming(daemon):
    call(daemon.runtime.ExecSync, daemon.pb.ExecSyncRequest(container_id="x"))
    families = {f.name: f.type for f in
                text_string_to_metric_families(scrape_text(daemon.metrics_address))
                if f.name.startswith("crius_")}
    # prometheus_client names a counter family without its _total suffix.
    assert families == {
        "crius_grpc_requests": "counter",
        "crius_grpc_request_duration_seconds": "histogram",
        "crius_build_info": "gauge",
        "crius_process_resident_memory_bytes": "gauge",
        "crius_process_open_fds": "gauge",
        "crius_process_max_fds": "gauge",
        "crius_process_threads": "gauge",
        "crius_process_start_time_seconds": "gauge",
        "crius_process_cpu_seconds": "counter",
        "crius_image_pulls": "counter",
        "crius_image_pull_bytes": "counter",
        "crius_image_pull_duration_seconds": "histogram",
        "crius_pod_ready_duration_seconds": "histogram",
        "crius_container_exits": "counter",
        "crius_pods": "gauge",
        "crius_containers": "gauge",
        "crius_tender_starts": "counter",
        "crius_tender_exits": "counter",
        "crius_tender_shutdowns": "counter",
        "crius_guest_boot_duration_seconds": "histogram",
        "crius_pod_sandbox_run_step_seconds": "histogram",
        "crius_pod_sandbox_run_less_cni_seconds": "histogram",
    }


def listening_ports(d):
    """TCP ports criusd listens on (from its socket inodes and /proc/net/tcp*),
    but for its streaming server's (its start-up line names it)."""
    pid = d.pid
    streaming = {int(m) for m in re.findall(r"streaming on http://[^ ]+:(\d+),", d.log)}
    assert len(streaming) == 1, d.log
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    assert streaming <= ports
    return ports - streaming


def test_metrics_are_served_at_the_configured_address_only(daemon):
    port = int(daemon.metrics_address.rsplit(":", 1)[1])
    assert listening_ports(daemon) == {port}


def test_empty_address_disables_the_endpoint():
    with Daemon(config=metrics_config("")) as d:
        d.start()
        assert listening_ports(d) == set()
        assert "metrics off" in d.log
        d.client.version()
        d.stop()


def test_flag_overrides_the_configured_address(address):
    other = f"127.0.0.1:{free_port()}"
    with Daemon(config=metrics_config(other), args=["--metrics-address", address]) as d:
        d.start()
        assert listening_ports(d) == {int(address.rsplit(":", 1)[1])}
        assert value(scrape(address), "crius_build_info", api_version="v1",
                     version=d.client.version().runtime_version) == 1
        d.stop()


def test_default_address_is_loopback_9654():
    run = run_criusd("--print-config")
    assert run.returncode == 0, run.stderr
    assert tomllib.loads(run.stdout)["metrics"] == {"address": "127.0.0.1:9654"}


def test_restart_serves_metrics_again_on_the_same_address(daemon):
    scrape(daemon.metrics_address)  # a connection that left TIME_WAIT behind
    daemon.restart()
    assert value(scrape(daemon.metrics_address), "crius_grpc_requests_total",
                 code="OK", method="Version") >= 1


# --- bad metrics addresses ------------------------------------------------------

def test_address_in_use_is_a_one_line_error_naming_it(workdir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        run = run_criusd(*private_args(workdir), "--metrics-address", address)
    assert_one_line_error(run, f"serve metrics on {address}", "Address already in use")
    assert os.listdir(workdir) == [], "nothing half-made"


@pytest.mark.parametrize("bad", ["localhost:9654", "9654", "127.0.0.1", "127.0.0.1:0",
                                 "127.0.0.1:70000", "[::1]:9654", "300.0.0.1:9654",
                                 "http://127.0.0.1:9654/metrics"])
def test_unparsable_address_is_a_one_line_error_naming_it(workdir, bad):
    path = f"{workdir}/c.toml"
    with open(path, "w") as f:
        f.write(metrics_config(bad))
    run = run_criusd("--config", path, *private_args(workdir))
    assert_one_line_error(run, f'metrics address "{bad}"')
    assert os.listdir(workdir) == ["c.toml"], "nothing half-made"
