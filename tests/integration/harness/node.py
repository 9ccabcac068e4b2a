"""A test "node": a test-made network namespace holding a registry, criusd
and therefore the CNI bridge (Debian's bridge, host-local and portmap
plugins), the pod CIDR and the iptables rules the plugins write. Tests talk
to pods from that netns, as a node would; nothing touches the host's own
interfaces."""
import json
import os
import time
import urllib.error
import urllib.request

SUBNET = "10.88.0.0/16"
GATEWAY = "10.88.0.1"
NETWORK = "crius-test-pods"


def conflist(ipam_dir, plugins_after=(), ipam_extra=None, capabilities_ip_ranges=False):
    # host-local puts runtimeConfig.ipRanges before its own ranges: a network
    # that takes the pod CIDR from the runtime configures none itself.
    ranges = [] if capabilities_ip_ranges else [[{"subnet": SUBNET}]]
    ipam = {"type": "host-local", "ranges": ranges,
            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(ipam_dir)}
    ipam.update(ipam_extra or {})
    bridge = {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": True,
              "hairpinMode": True, "ipam": ipam}
    if capabilities_ip_ranges:
        bridge["capabilities"] = {"ipRanges": True}
    return json.dumps({"cniVersion": "1.0.0", "name": NETWORK,
                       "plugins": [bridge, {"type": "portmap", "capabilities": {"portMappings": True},
                                            "snat": True}, *plugins_after]})


class Node:
    """A test-made netns with a registry and a criusd inside, and the CNI state
    the plugins keep (IPAM reservations, iptables rules) to check afterwards."""

    def __init__(self, netns, tmp, make_daemon, registry, net_conf=None, failpoints=(),
                 extra_config=""):
        self.ns = netns
        self.tmp = tmp
        self.registry = registry
        self.ipam_dir = tmp / "ipam"
        self.net_d = tmp / "net.d"
        self.net_d.mkdir(exist_ok=True)
        (self.net_d / "10-pods.conflist").write_text(net_conf or conflist(self.ipam_dir))
        self.d = make_daemon(netns=netns, failpoints=failpoints, config=(
            f'[registry]\ninsecure = ["{registry.host}"]\n{extra_config}'
            f'[network]\ncni_conf_dir = "{self.net_d}"\ncni_bin_dirs = ["/usr/lib/cni"]\n'))
        self.pb = self.d.pb
        self.logs = tmp / "logs"

    # -- what the plugins left -------------------------------------------------

    def reserved_ips(self):
        net = self.ipam_dir / NETWORK
        if not net.exists():
            return []
        return sorted(f for f in os.listdir(net) if f[0].isdigit() or ":" in f)

    def links(self):
        out = self.ns.run(["ip", "-o", "link", "show"]).stdout
        return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())

    def nat_rules(self):
        return self.ns.run(["iptables-save", "-t", "nat"]).stdout

    def assert_pod_network_gone(self, pod_id):
        assert self.reserved_ips() == [], "an IP is still reserved"
        assert [l for l in self.links() if l.startswith("veth")] == [], self.links()
        rules = self.nat_rules()
        assert pod_id not in rules, rules
        assert ":CNI-DN-" not in rules, rules

    # -- CRI ---------------------------------------------------------------------

    def pull(self, ref):
        self.d.image.PullImage(self.pb.PullImageRequest(image=self.pb.ImageSpec(image=ref)), timeout=60)

    def pod_config(self, name="web", ports=(), host_network=False):
        pb = self.pb
        cfg = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, namespace="net", uid=f"uid-{name}"),
            hostname=name, log_directory=str(self.logs / name))
        for host_port, container_port in ports:
            cfg.port_mappings.add(host_port=host_port, container_port=container_port,
                                  protocol=pb.TCP)
        if host_network:
            cfg.linux.security_context.namespace_options.network = pb.NODE
        return cfg

    def run_pod(self, cfg, handler=""):
        return self.d.runtime.RunPodSandbox(self.pb.RunPodSandboxRequest(config=cfg, runtime_handler=handler),
                                            timeout=60).pod_sandbox_id

    def pod_status(self, pod_id, verbose=False):
        return self.d.runtime.PodSandboxStatus(
            self.pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=verbose), timeout=60)

    def container_config(self, image, name="c", command=None, args=None, memory_limit=0):
        pb = self.pb
        cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name),
                                 image=pb.ImageSpec(image=image), log_path=f"{name}.log")
        if command:
            cfg.command.extend(command)
        if args:
            cfg.args.extend(args)
        if memory_limit:
            cfg.linux.resources.memory_limit_in_bytes = memory_limit
        return cfg

    def create_container(self, pod_id, pod_cfg, image, name="c", **kwargs):
        cfg = self.container_config(image, name=name, **kwargs)
        return self.d.runtime.CreateContainer(self.pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=cfg, sandbox_config=pod_cfg), timeout=60).container_id

    def run_container(self, pod_id, pod_cfg, image, name="c", **kwargs):
        cid = self.create_container(pod_id, pod_cfg, image, name=name, **kwargs)
        self.d.runtime.StartContainer(self.pb.StartContainerRequest(container_id=cid), timeout=60)
        return cid

    def wait_exit(self, cid, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.d.runtime.ContainerStatus(self.pb.ContainerStatusRequest(container_id=cid)).status
            if s.state == self.pb.CONTAINER_EXITED:
                return s
            time.sleep(0.05)
        raise AssertionError(f"container {cid} still running after {timeout}s")

    def log(self, pod_name, container_name="c"):
        return (self.logs / pod_name / f"{container_name}.log").read_text()

    def remove_pod(self, pod_id):
        self.d.runtime.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
        self.d.runtime.RemovePodSandbox(self.pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                                        timeout=60)

    def remove_all(self):
        for p in self.d.runtime.ListPodSandbox(self.pb.ListPodSandboxRequest()).items:
            self.remove_pod(p.id)

    def http_get(self, url, timeout=5):
        def get():
            try:
                with urllib.request.urlopen(url, timeout=timeout) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                with e:
                    return e.code, e.read().decode()
        return self.ns.call(get)

    def http_get_eventually(self, url, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.http_get(url)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
