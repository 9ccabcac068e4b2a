"""Pod networks from CNI, with Debian's bridge, host-local and portmap plugins.

Each test makes its own "node": a network namespace holding the registry,
criusd and therefore the CNI bridge, the pod CIDR and the iptables rules the
plugins write. The test talks to pods from that netns, as a node would;
nothing touches the host's own interfaces."""
import json
import os
import signal
import subprocess
import time

import grpc
import pytest

from harness import oci
from harness.node import GATEWAY, NETWORK, SUBNET, Node, conflist
from harness.registry import Registry

pytestmark = pytest.mark.usefixtures("leak_check")


@pytest.fixture
def node_registry(netns):
    with Registry(netns=netns) as reg:
        yield reg


@pytest.fixture
def images(node_registry):
    return {"nginx": oci.push(node_registry, oci.nginx_image(), "nginx").ref,
            "busybox": oci.push(node_registry, oci.busybox_image(), "busybox").ref}


@pytest.fixture
def make_node(netns, tmp, make_daemon, node_registry, images):
    made = []

    def make(**kwargs):
        n = Node(netns, tmp, make_daemon, node_registry, **kwargs)
        n.images = images
        made.append(n)
        return n

    yield make
    for n in made:
        if n.d.running:
            n.remove_all()


@pytest.fixture
def node(make_node):
    return make_node()


# --- the seed case --------------------------------------------------------------

def test_nginx_pod_answers_on_its_pod_ip_and_on_a_host_port(node):
    node.pull(node.images["nginx"])
    cfg = node.pod_config("web", ports=[(8080, 80), (0, 81)])
    pod_id = node.run_pod(cfg)
    status = node.pod_status(pod_id).status
    ip = status.network.ip
    assert ip.startswith("10.88."), status.network
    assert list(status.network.additional_ips) == []
    assert node.reserved_ips() == [ip]
    node.run_container(pod_id, cfg, node.images["nginx"])

    assert node.http_get_eventually(f"http://{ip}/") == (200, oci.NGINX_INDEX)
    # The host port, through portmap's DNAT on the node.
    assert node.http_get_eventually(f"http://{GATEWAY}:8080/") == (200, oci.NGINX_INDEX)
    # A mapping without a host port forwards nothing.
    rules = node.nat_rules()
    assert f"--to-destination {ip}:80" in rules and f"{ip}:81" not in rules, rules

    node.remove_pod(pod_id)
    node.assert_pod_network_gone(pod_id)


def test_two_pods_reach_each_other_by_pod_ip(node):
    node.pull(node.images["nginx"])
    node.pull(node.images["busybox"])
    server_cfg = node.pod_config("server")
    server = node.run_pod(server_cfg)
    node.run_container(server, server_cfg, node.images["nginx"])
    server_ip = node.pod_status(server).status.network.ip
    node.http_get_eventually(f"http://{server_ip}/")
    # crictl inspectp: the cached attachment, checked by CNI CHECK.
    info = json.loads(node.pod_status(server, verbose=True).info["info"])
    assert info["network"] == {"name": NETWORK, "ips": [server_ip], "check": "ok"}

    client_cfg = node.pod_config("client")
    client = node.run_pod(client_cfg)
    client_ip = node.pod_status(client).status.network.ip
    assert client_ip != server_ip
    cid = node.run_container(client, client_cfg, node.images["busybox"],
                             command=["wget", "-q", "-O", "-", f"http://{server_ip}/"])
    assert node.wait_exit(cid).exit_code == 0, node.log("client")
    assert oci.NGINX_INDEX.strip() in node.log("client")
    node.remove_pod(client)
    node.remove_pod(server)
    node.assert_pod_network_gone(client)
    node.assert_pod_network_gone(server)


def test_pod_stats_count_the_traffic_of_eth0(node):
    node.pull(node.images["nginx"])
    cfg = node.pod_config("counted")
    pod_id = node.run_pod(cfg)
    node.run_container(pod_id, cfg, node.images["nginx"])
    ip = node.pod_status(pod_id).status.network.ip
    for _ in range(3):
        assert node.http_get_eventually(f"http://{ip}/") == (200, oci.NGINX_INDEX)
    stats = node.d.runtime.PodSandboxStats(node.pb.PodSandboxStatsRequest(pod_sandbox_id=pod_id)).stats
    net = stats.linux.network
    assert net.default_interface.name == "eth0" and [i.name for i in net.interfaces] == ["eth0"], net
    # Three responses went out and three requests came in.
    assert net.default_interface.tx_bytes.value > 3 * len(oci.NGINX_INDEX), net
    assert net.default_interface.rx_bytes.value > 3 * len("GET / HTTP/1.1"), net
    assert net.timestamp > 0
    # The same counters as kubelet's cAdvisor-named pod metrics, by interface.
    keys = {m.name: list(m.label_keys) for m in
            node.d.runtime.ListMetricDescriptors(node.pb.ListMetricDescriptorsRequest()).descriptors}
    (pm,) = [p for p in node.d.runtime.ListPodSandboxMetrics(node.pb.ListPodSandboxMetricsRequest()).pod_metrics
             if p.pod_sandbox_id == pod_id]
    tx = [dict(zip(keys[m.name], m.label_values)) | {"value": m.value.value} for m in pm.metrics
          if m.name == "container_network_transmit_bytes_total"]
    assert len(tx) == 1 and tx[0]["interface"] == "eth0" and tx[0]["pod"] == "counted", tx
    assert tx[0]["value"] >= net.default_interface.tx_bytes.value
    node.remove_pod(pod_id)


def test_pod_has_loopback_up_and_eth0(node):
    node.pull(node.images["busybox"])
    cfg = node.pod_config("ifaces")
    pod_id = node.run_pod(cfg)
    cid = node.run_container(pod_id, cfg, node.images["busybox"],
                             command=["sh", "-c", "ip -o addr; ping -c1 -W2 127.0.0.1"])
    assert node.wait_exit(cid).exit_code == 0, node.log("ifaces")
    out = node.log("ifaces")
    assert "inet 127.0.0.1/8" in out
    assert "eth0" in out and node.pod_status(pod_id).status.network.ip in out
    node.remove_pod(pod_id)


def test_host_network_pod_sees_the_node_interfaces_and_skips_cni(node):
    node.ns.run(["ip", "link", "add", "crius-probe0", "type", "veth", "peer", "name", "crius-probe1"],
                check=True)
    node.pull(node.images["busybox"])
    cfg = node.pod_config("hostnet", host_network=True)
    pod_id = node.run_pod(cfg)
    assert node.pod_status(pod_id).status.network.ip == ""
    assert node.reserved_ips() == []
    cid = node.run_container(pod_id, cfg, node.images["busybox"], command=["cat", "/proc/net/dev"])
    assert node.wait_exit(cid).exit_code == 0
    assert "crius-probe0" in node.log("hostnet")
    node.remove_pod(pod_id)


def test_pod_cidr_from_update_runtime_config_reaches_plugins_that_ask(make_node, tmp):
    node = make_node(net_conf=conflist(tmp / "ipam", capabilities_ip_ranges=True))
    pb = node.pb
    node.d.runtime.UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest(
        runtime_config=pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr="10.77.3.0/24"))))
    pod_id = node.run_pod(node.pod_config("cidr"))
    assert node.pod_status(pod_id).status.network.ip.startswith("10.77.3."), \
        node.pod_status(pod_id).status.network
    node.remove_pod(pod_id)
    node.assert_pod_network_gone(pod_id)


def test_a_dual_stack_network_gives_ipv4_then_ipv6(make_node, tmp):
    ipam_extra = {"ranges": [[{"subnet": SUBNET}], [{"subnet": "fd00:88::/64"}]],
                  "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}
    node = make_node(net_conf=conflist(tmp / "ipam", ipam_extra=ipam_extra))
    node.pull(node.images["nginx"])
    cfg = node.pod_config("dual")
    pod_id = node.run_pod(cfg)
    net = node.pod_status(pod_id).status.network
    assert net.ip.startswith("10.88.")
    assert [a.ip for a in net.additional_ips] == [ip for ip in node.reserved_ips() if ":" in ip]
    assert net.additional_ips[0].ip.startswith("fd00:88::")
    node.run_container(pod_id, cfg, node.images["nginx"])
    # nginx listens on IPv4 only; the pod answers pings on its IPv6 address
    # once duplicate address detection has let the address go (a second or two).
    deadline = time.monotonic() + 15
    while node.ns.run(["ping", "-6", "-c1", "-W1", net.additional_ips[0].ip]).returncode != 0:
        assert time.monotonic() < deadline, "the pod's IPv6 address does not answer"
        time.sleep(0.2)
    assert node.http_get_eventually(f"http://{net.ip}/")[0] == 200
    node.remove_pod(pod_id)
    node.assert_pod_network_gone(pod_id)


# --- teardown that must still work --------------------------------------------

def test_stop_after_a_criusd_restart_detaches_from_the_cached_result(node):
    pod_id = node.run_pod(node.pod_config("restart"))
    assert len(node.reserved_ips()) == 1
    node.d.kill9()
    node.d.start()
    ip = node.pod_status(pod_id).status.network.ip
    assert node.reserved_ips() == [ip]
    node.remove_pod(pod_id)
    node.assert_pod_network_gone(pod_id)


def wait_not_ready(node, pod_id):
    deadline = time.monotonic() + 10
    while node.pod_status(pod_id).status.state != node.pb.SANDBOX_NOTREADY:
        assert time.monotonic() < deadline, "pod still ready after its monitor died"
        time.sleep(0.05)


def test_a_pod_whose_monitor_died_keeps_its_netns_until_cni_del(node):
    pod_id = node.run_pod(node.pod_config("died", ports=[(8080, 80)]))
    info = json.loads(node.pod_status(pod_id, verbose=True).info["info"])
    os.kill(info["monitorPid"], signal.SIGKILL)
    wait_not_ready(node, pod_id)
    # As containerd keeps its netns: DEL still finds eth0, so the plugins
    # remove every rule they made for it, not only the IP reservation.
    assert any(l.startswith("veth") for l in node.links())
    node.remove_pod(pod_id)
    node.remove_pod(pod_id)  # repeated: nothing left to do, no error
    node.assert_pod_network_gone(pod_id)


def test_del_after_the_netns_vanished_still_releases_the_ip(node):
    pod_id = node.run_pod(node.pod_config("vanish", ports=[(8080, 80)]))
    info = json.loads(node.pod_status(pod_id, verbose=True).info["info"])
    pin = info["namespaces"]["net"]
    subprocess.run(["umount", "-l", pin], check=True)  # taken away behind criusd's back
    os.kill(info["monitorPid"], signal.SIGKILL)  # and its last holder gone: the netns is gone
    wait_not_ready(node, pod_id)
    assert len(node.reserved_ips()) == 1
    node.remove_pod(pod_id)
    assert node.reserved_ips() == []
    assert [l for l in node.links() if l.startswith("veth")] == []
    # portmap finds its rules by container id; the bridge plugin finds its
    # masquerade rule only through eth0's address, which went with the netns.
    assert ":CNI-DN-" not in node.nat_rules()


@pytest.mark.parametrize("point", ["sandbox_run.after_network", "sandbox_stop.after_network"])
def test_crash_around_cni_leaves_nothing_after_restart(make_node, point):
    node = make_node(failpoints=[point])
    with pytest.raises(grpc.RpcError):
        pod_id = node.run_pod(node.pod_config("crash"))
        node.d.runtime.StopPodSandbox(node.pb.StopPodSandboxRequest(pod_sandbox_id=pod_id),
                                      timeout=60)
    assert node.d.wait_exit() == -signal.SIGKILL
    node.d.failpoints = []
    node.d.start()
    node.remove_all()
    assert list(node.d.runtime.ListPodSandbox(node.pb.ListPodSandboxRequest()).items) == []
    assert node.reserved_ips() == []
    assert [l for l in node.links() if l.startswith("veth")] == []
    assert ":CNI-DN-" not in node.nat_rules()


# --- bad input ----------------------------------------------------------------

# ADD fails after bridge and portmap made their veth, IP and rules.
FAILING = {"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.crius_no_such": "1"}}


def assert_no_pod_left(node):
    assert list(node.d.runtime.ListPodSandbox(node.pb.ListPodSandboxRequest()).items) == []
    pods = node.d.state / "pods"
    assert not pods.exists() or os.listdir(pods) == []
    assert node.reserved_ips() == []
    assert [l for l in node.links() if l.startswith("veth")] == []
    assert ":CNI-DN-" not in node.nat_rules() and "crius-bad" not in node.nat_rules()


def test_a_plugin_that_fails_add_leaves_no_pod_ip_veth_or_rule(make_node, tmp):
    node = make_node(net_conf=conflist(tmp / "ipam", plugins_after=[FAILING]))
    with pytest.raises(grpc.RpcError) as e:
        node.run_pod(node.pod_config("crius-bad", ports=[(8080, 80)]))
    assert e.value.code() == grpc.StatusCode.INTERNAL
    assert "set up the pod network" in e.value.details()
    assert "plugin tuning" in e.value.details() and "crius_no_such" in e.value.details()
    assert_no_pod_left(node)


@pytest.mark.parametrize("name,text,why", [
    ("10-broken.conflist", "{not json", "is not valid JSON"),
    ("10-missing.conflist", json.dumps({"cniVersion": "1.0.0", "name": "x",
                                        "plugins": [{"type": "crius-no-such-plugin"}]}),
     'CNI plugin "crius-no-such-plugin" is not in /usr/lib/cni'),
])
def test_an_unusable_config_refuses_pods_and_says_why(make_node, tmp, name, text, why):
    node = make_node()
    os.unlink(node.net_d / "10-pods.conflist")
    (node.net_d / name).write_text(text)
    conditions = {c.type: c for c in node.d.runtime.Status(node.pb.StatusRequest()).status.conditions}
    assert conditions["NetworkReady"].status is False
    assert why in conditions["NetworkReady"].message
    with pytest.raises(grpc.RpcError) as e:
        node.run_pod(node.pod_config("crius-bad"))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert why in e.value.details()
    assert_no_pod_left(node)


@pytest.mark.parametrize("mapping,field", [
    (dict(host_port=8080, container_port=0), "container_port 0"),
    (dict(host_port=70000, container_port=80), "host_port 70000"),
    (dict(host_port=8080, container_port=80, protocol=7), "protocol 7"),
])
def test_bad_port_mappings_are_refused_naming_the_field(node, mapping, field):
    cfg = node.pod_config("crius-bad")
    cfg.port_mappings.add(**mapping)
    with pytest.raises(grpc.RpcError) as e:
        node.run_pod(cfg)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config.port_mappings[0]" in e.value.details() and field in e.value.details()
    assert_no_pod_left(node)


# --- metrics --------------------------------------------------------------------

def test_cni_latency_and_failures_are_metrics(make_node, tmp):
    port = 9654  # criusd listens inside the node's netns: no other daemon is there
    node = make_node(net_conf=conflist(tmp / "ipam"),
                     extra_config=f'[metrics]\naddress = "127.0.0.1:{port}"\n')
    node.remove_pod(node.run_pod(node.pod_config("m")))
    (node.net_d / "10-pods.conflist").write_text(conflist(tmp / "ipam", plugins_after=[FAILING]))
    with pytest.raises(grpc.RpcError):
        node.run_pod(node.pod_config("crius-bad"))
    text = node.http_get(f"http://127.0.0.1:{port}/metrics")[1]
    samples = {}
    for line in text.splitlines():
        if line.startswith(("crius_cni_plugin", "crius_pod_sandbox_run")):
            k, v = line.rsplit(" ", 1)
            samples[k] = float(v)
    count = 'crius_cni_plugin_duration_seconds_count{operation="%s",plugin="%s"}'
    assert samples[count % ("ADD", "bridge")] == 2
    assert samples[count % ("DEL", "bridge")] == 2  # the stop, and the failed ADD's undo
    assert samples[count % ("ADD", "portmap")] == 2
    assert samples['crius_cni_plugin_failures_total{operation="ADD",plugin="tuning"}'] == 1
    assert 'crius_cni_plugin_failures_total{operation="ADD",plugin="bridge"}' not in samples
    # RunPodSandbox's steps, of the pod it made only; its CNI ADD lies inside
    # the network step, and the call less that ADD is left.
    steps = ("validate", "reserve", "files", "cgroup", "monitor", "network", "ready")
    for step in steps:
        assert samples['crius_pod_sandbox_run_step_seconds_count{step="%s"}' % step] == 1, step
    total = sum(samples['crius_pod_sandbox_run_step_seconds_sum{step="%s"}' % step] for step in steps)
    less_cni = samples["crius_pod_sandbox_run_less_cni_seconds_sum"]
    assert samples["crius_pod_sandbox_run_less_cni_seconds_count"] == 1
    assert 0 < less_cni < total
    assert samples['crius_pod_sandbox_run_step_seconds_sum{step="network"}'] >= total - less_cni
