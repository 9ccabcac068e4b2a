#!/usr/bin/python3
"""crius side by side with containerd 1.6 (runc, and crun as a second
handler), in one run, through one CRI client, reported as ratios.

    bench/run.py [--smoke] [--iterations N] [--out results.json]

Both daemons run inside a network namespace this script makes, with the same
CNI plugins (Debian's bridge and host-local: a bridge each, so their address
pools never meet), images from one docker-registry on loopback in that netns,
and pod cgroups under /crius-bench. Runtimes are interleaved (crius, runc,
crun, crius, ...) after warm-up runs, so drift on this shared machine hits
all of them alike. Everything made is removed at the end, also on failure.

containerd, runc, crun and libyajl2 come from Debian's .debs, downloaded into
the build directory by build.sh and unpacked there: nothing is installed, and
no containerd service is started on the node.
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

# common puts the tests' harness on sys.path.
from common import (BUILD, CniCache, Containerd, bridge_network, close_run, confine, cpu_ns, pct, procs,
                    pss_kib)
from harness import oci
from harness.daemon import Daemon
from harness.netns import Netns
from harness.registry import Registry

CGROUP_PARENT = "/crius-bench"
METRICS = "127.0.0.1:9656"  # criusd's, inside the run's network namespace
DAEMONS = "/crius-bench-daemons"
RUNTIMES = ("crius", "runc", "crun")


# --- one CRI endpoint under test ---------------------------------------------------

class Runtime:
    def __init__(self, name, client, handler, daemon_pid, image, logs, daemon_cgroup=None):
        self.name, self.client, self.handler = name, client, handler
        self.pb = client.pb
        self.daemon_pid = daemon_pid
        self.daemon_cgroup = daemon_cgroup
        self.pod_cgroups = {}  # pod id -> its cgroup_parent
        self.image = image
        self.logs = logs
        self.n = 0
        self.lock = threading.Lock()  # pod_ready runs on four threads at once
        self.steps = []  # (RunPodSandbox, CreateContainer, StartContainer) seconds, sequential runs

    def start_pod(self, cfg, ccfg, handler, clock=time.perf_counter):
        """RunPodSandbox, CreateContainer, StartContainer: the pod's and the
        container's ids, and `clock` read before, between and after them."""
        pb, rt = self.pb, self.client.runtime
        t0 = clock()
        pod = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg, runtime_handler=handler),
                               timeout=120).pod_sandbox_id
        t1 = clock()
        self.pod_cgroups[pod] = cfg.linux.cgroup_parent
        cid = rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, config=ccfg, sandbox_config=cfg),
                                 timeout=120).container_id
        t2 = clock()
        rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=120)
        return pod, cid, (t0, t1, t2, clock())

    def pod_ready(self, containers=1):
        """RunPodSandbox → CreateContainer → StartContainer: seconds, and the ids
        (the last container's, when there are more)."""
        pb, rt = self.pb, self.client.runtime
        with self.lock:
            self.n += 1
            n = self.n
        uid = f"{self.name}-{os.getpid()}-{n}"
        cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=f"b{n}", namespace="bench", uid=uid),
                                  hostname=f"b{n}", log_directory=str(self.logs / uid))
        cfg.linux.cgroup_parent = f"{CGROUP_PARENT}/pod{uid}"
        cfg.linux.security_context.namespace_options.pid = pb.CONTAINER
        ccfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="app"), image=pb.ImageSpec(image=self.image),
                                  log_path="app.log")
        ccfg.linux.security_context.namespace_options.pid = pb.CONTAINER
        pod, cid, (t0, t1, t2, t3) = self.start_pod(cfg, ccfg, self.handler)
        self.steps.append((t1 - t0, t2 - t1, t3 - t2))
        for k in range(1, containers):
            ccfg.metadata.name = f"app{k}"
            ccfg.log_path = f"app{k}.log"
            more = rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, config=ccfg, sandbox_config=cfg),
                                      timeout=120).container_id
            rt.StartContainer(pb.StartContainerRequest(container_id=more), timeout=120)
        return t3 - t0, pod, cid

    def pod_processes(self):
        """The processes the runtime runs for its pods: in the pod's sandbox
        leaf (crius's monitor; containerd's pause) and in the daemon's cgroup
        but the daemon (containerd's shims)."""
        pids = [p for p in procs(self.daemon_cgroup) if p != self.daemon_pid] if self.daemon_cgroup else []
        for pod, parent in self.pod_cgroups.items():
            pids += procs(f"{parent}/{pod}")
        return pids

    def stop_container(self, cid):
        start = time.perf_counter()
        self.client.runtime.StopContainer(self.pb.StopContainerRequest(container_id=cid, timeout=0), timeout=120)
        return time.perf_counter() - start

    def remove_pod(self, pod):
        """Stops and removes it: the CPU time its cgroup used, nanoseconds."""
        rt, pb = self.client.runtime, self.pb
        used = cpu_ns(self.pod_cgroups.pop(pod, "/nonexistent"))
        rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=120)
        rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=120)
        return used

    def pull(self, ref):
        img = self.client.image
        try:
            img.RemoveImage(self.pb.RemoveImageRequest(image=self.pb.ImageSpec(image=ref)), timeout=60)
        except Exception:  # noqa: BLE001 - not there yet
            pass
        start = time.perf_counter()
        img.PullImage(self.pb.PullImageRequest(image=self.pb.ImageSpec(image=ref)), timeout=120)
        return time.perf_counter() - start

    def rss_mib(self):
        for line in open(f"/proc/{self.daemon_pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def remove_all(self):
        rt, pb = self.client.runtime, self.pb
        for p in rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=60).items:
            self.remove_pod(p.id)

    def timed(self, call, request, n):
        out = []
        for _ in range(n):
            start = time.perf_counter()
            call(request, timeout=120)
            out.append(time.perf_counter() - start)
        return out


# --- the run -------------------------------------------------------------------------

SANDBOX_STEPS = ("validate", "reserve", "files", "cgroup", "monitor", "network", "ready")


def sandbox_run_steps(ns):
    """Mean ms of each RunPodSandbox step over the pods criusd made so far, and
    of the whole call less its CNI ADD, from criusd's own histograms."""
    def get():
        with urllib.request.urlopen(f"http://{METRICS}/metrics", timeout=10) as r:
            return r.read().decode()
    samples = {}
    for line in ns.call(get).splitlines():
        if line.startswith("crius_pod_sandbox_run_"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)

    def mean(name, labels=""):
        n = samples.get(f"{name}_count{labels}", 0)
        return samples[f"{name}_sum{labels}"] / n * 1000 if n else float("nan")
    out = {step: mean("crius_pod_sandbox_run_step_seconds", f'{{step="{step}"}}') for step in SANDBOX_STEPS}
    out["less_cni"] = mean("crius_pod_sandbox_run_less_cni_seconds")
    return out


def memory_per_pod(r, n):
    """n running pods of one container: PSS of the processes the runtime runs
    per pod, and the daemon's growth, each per pod, MiB."""
    before = r.rss_mib()
    pods = [r.pod_ready()[1] for _ in range(n)]
    time.sleep(1)
    pss = sum(pss_kib(p) for p in r.pod_processes()) / 1024
    growth = r.rss_mib() - before
    for pod in pods:
        r.remove_pod(pod)
    return pss / n, growth / n


def list_latency(r, pods, per_pod, calls):
    """ListContainers, ListPodSandbox, ListContainerStats with pods × per_pod
    running containers: seconds per call."""
    made = [r.pod_ready(containers=per_pod)[1] for _ in range(pods)]
    rt, pb = r.client.runtime, r.pb
    # The same call with its answer left as bytes: the runtime's part, without
    # the Python client's decoding (which grows with the answer's size).
    wire = r.client.channel.unary_unary("/runtime.v1.RuntimeService/ListContainers",
                                        request_serializer=pb.ListContainersRequest.SerializeToString,
                                        response_deserializer=None)
    out = {"list_containers": r.timed(rt.ListContainers, pb.ListContainersRequest(), calls),
           "list_containers_wire": r.timed(wire, pb.ListContainersRequest(), calls),
           "list_pods": r.timed(rt.ListPodSandbox, pb.ListPodSandboxRequest(), calls),
           "list_stats": r.timed(rt.ListContainerStats, pb.ListContainerStatsRequest(), calls)}
    for pod in made:
        r.remove_pod(pod)
    return out


def measure(runtimes, iterations, warmup, pull_ref, smoke):
    results = {r.name: {"pod_ready": [], "pod_ready_c4": [], "stop": [], "pull": [], "cpu_ms": []}
               for r in runtimes}
    for i in range(warmup + iterations):
        for r in runtimes:  # interleaved: A B C A B C ...
            if i == warmup:
                r.steps.clear()
            daemon_cpu = cpu_ns(r.daemon_cgroup)
            t, pod, cid = r.pod_ready()
            s = r.stop_container(cid)
            pod_cpu = r.remove_pod(pod)
            cycle_cpu = cpu_ns(r.daemon_cgroup) - daemon_cpu + pod_cpu
            if i >= warmup:
                results[r.name]["pod_ready"].append(t)
                results[r.name]["stop"].append(s)
                results[r.name]["cpu_ms"].append(cycle_cpu / 1e6)
    for r in runtimes:  # where the sequential pod-ready time goes, p50 of each step
        results[r.name]["pod_ready_steps_ms"] = {
            step: pct([s[k] for s in r.steps], 50) * 1000
            for k, step in enumerate(("RunPodSandbox", "CreateContainer", "StartContainer"))}
    for i in range(warmup + max(1, iterations // 4)):
        for r in runtimes:  # four pods at once
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                done = list(pool.map(lambda _: r.pod_ready(), range(4)))
            for t, pod, cid in done:
                r.remove_pod(pod)
                if i >= warmup:
                    results[r.name]["pod_ready_c4"].append(t)
    for i in range(warmup + max(2, iterations // 3)):
        for r in runtimes:
            if r.name == "crun":
                continue  # the same containerd as runc
            t = r.pull(pull_ref)
            if i >= warmup:
                results[r.name]["pull"].append(t)
    for r in runtimes:
        results[r.name]["idle_rss_mib"] = r.rss_mib()
    for n in ((2, 4) if smoke else (20, 50)):
        for r in runtimes:
            pss, growth = memory_per_pod(r, n)
            results[r.name][f"pod_pss_mib_{n}"] = pss
            results[r.name][f"daemon_growth_mib_{n}"] = growth
    shape = (2, 5, 3) if smoke else (50, 20, 20)  # pods, containers each, calls
    for r in runtimes:
        for key, values in list_latency(r, *shape).items():
            results[r.name][key] = values
    results["shape"] = {"memory_pods": (2, 4) if smoke else (20, 50), "list": shape}
    return results


def log_time_ns(line):
    """The CRI log timestamp of a line ("2026-11-23T22:52:16.463840444Z stdout F ...")."""
    stamp = line.split(" ", 1)[0].rstrip("Z")
    whole, _, frac = stamp.partition(".")
    secs = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()
    return int(secs) * 1_000_000_000 + int((frac + "000000000")[:9])


def guest_first_line(r, flavour, image, n, warmup):
    """Unikernel pods: RunPodSandbox → the guest's first console line (its
    timestamp in the CRI log), seconds; the same by step (RunPodSandbox,
    CreateContainer, StartContainer, StartContainer's answer → the line);
    and the tender's PSS, MiB."""
    pb, rt = r.pb, r.client.runtime
    times, steps, pss = [], [], []
    for i in range(warmup + n):
        uid = f"uk-{flavour}-{os.getpid()}-{i}"
        logs = r.logs / uid
        cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=f"uk{i}", namespace="bench", uid=uid),
                                  hostname=f"uk{i}", log_directory=str(logs))
        cfg.linux.cgroup_parent = f"{CGROUP_PARENT}/pod{uid}"
        ccfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="guest"), image=pb.ImageSpec(image=image),
                                  log_path="guest.log")
        ccfg.linux.resources.memory_limit_in_bytes = 64 << 20
        # Wall-clock ns: the line's time is the CRI log's timestamp.
        pod, cid, (t0, t1, t2, t3) = r.start_pod(cfg, ccfg, f"crius-{flavour}", clock=time.time_ns)
        deadline = time.monotonic() + 30
        first = None
        while first is None and time.monotonic() < deadline:
            try:
                line = (logs / "guest.log").read_text().split("\n", 1)[0]
                first = log_time_ns(line) if " stdout " in line else None
            except (FileNotFoundError, ValueError):
                pass
            if first is None:
                time.sleep(0.001)
        if first is None:
            raise RuntimeError(f"crius-{flavour}: no console line from the guest in 30 s")
        if i >= warmup:
            times.append((first - t0) / 1e9)
            steps.append(((t1 - t0) / 1e9, (t2 - t1) / 1e9, (t3 - t2) / 1e9, max(first - t3, 0) / 1e9))
            info = json.loads(rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid, verbose=True),
                                                 timeout=60).info["info"])
            pss.append(pss_kib(info["pid"]) / 1024)
        r.remove_pod(pod)
    return times, steps, pss


FIGURES = [
    # key, title, statistic, unit, target ratio to containerd+runc (or None)
    ("pod_ready", "pod ready, CNI bridge, sequential, p50", 50, "ms", 1 / 5),
    ("pod_ready", "pod ready, CNI bridge, sequential, p99", 99, "ms", None),
    ("pod_ready_c4", "pod ready at concurrency 4, p50", 50, "ms", 1 / 5),
    ("stop", "StopContainer, timeout 0, p50", 50, "ms", 1 / 5),
    ("cpu_ms", "CPU per pod cycle (daemon, its children, the pod's cgroup), p50", 50, "ms", 1 / 5),
    ("idle_rss_mib", "daemon RSS after the pod cycles, no pods", None, "MiB", 1 / 2),
    ("pod_pss_mib_{m0}", "PSS per pod of monitor, or shim + pause, at {m0} pods", None, "MiB", 1 / 5),
    ("pod_pss_mib_{m1}", "PSS per pod of monitor, or shim + pause, at {m1} pods", None, "MiB", 1 / 5),
    ("daemon_growth_mib_{m1}", "daemon RSS growth per pod at {m1} pods", None, "MiB", None),
    ("list_containers", "ListContainers, {n} running containers in {p} pods, p50", 50, "ms", 1 / 2),
    ("list_containers_wire", "ListContainers as above, the answer received but not decoded, p50", 50, "ms", 1 / 2),
    ("list_pods", "ListPodSandbox, {n} running containers in {p} pods, p50", 50, "ms", None),
    ("list_stats", "ListContainerStats, {n} running containers in {p} pods, p50", 50, "ms", 1 / 10),
    ("pull", "PullImage busybox from loopback, p50", 50, "ms", 1.0),
]


def table(results):
    rows = ["| figure | crius | containerd+runc | containerd+crun | crius / runc | target |",
            "| --- | --- | --- | --- | --- | --- |"]
    out = []
    m0, m1 = results["shape"]["memory_pods"]
    p, per, _ = results["shape"]["list"]
    names = dict(m0=m0, m1=m1, n=p * per, p=p)
    for key, title, p, unit, target in FIGURES:
        key, title = key.format(**names), title.format(**names)
        cpu_or_ms = unit == "ms" and key == "cpu_ms"
        vals = {}
        for name in RUNTIMES:
            v = results.get(name, {}).get(key)
            if v is None or v == []:
                vals[name] = None
            elif p is None:
                vals[name] = v
            elif cpu_or_ms:
                vals[name] = pct(v, p)  # already ms
            else:
                vals[name] = pct(v, p) * 1000
        ratio = vals["crius"] / vals["runc"] if vals["crius"] and vals["runc"] else None
        fmt = lambda v: "-" if v is None else f"{v:.1f} {unit}"  # noqa: E731
        rows.append(f"| {title} | {fmt(vals['crius'])} | {fmt(vals['runc'])} | {fmt(vals['crun'])} | "
                    f"{'-' if ratio is None else f'{ratio:.2f}'} | "
                    f"{'-' if target is None else f'≤ {target:.2g}'} |")
        out.append({"figure": title, "unit": unit, **vals, "ratio": ratio, "target": target})
    return "\n".join(rows), out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="a few iterations, to show the driver works (CI)")
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--out", default=None, help="JSON results (default: build/bench-results.json)")
    args = ap.parse_args()
    iterations = args.iterations or (3 if args.smoke else 30)
    warmup = 1 if args.smoke else 3
    out_path = Path(args.out) if args.out else BUILD / "bench-results.json"

    work = Path(tempfile.mkdtemp(prefix="crius-bench-"))
    cni_cache = CniCache()
    ns, registry, crius, ctrd = Netns(prefix="crius-bench"), None, None, None
    try:
        ns.create()
        registry = Registry(netns=ns).start()
        busybox = oci.push(registry, oci.sleeper_image(), "bench/sleeper")
        pause = oci.push(registry, oci.sleeper_image(), "bench/pause")
        pull_image = oci.push(registry, oci.busybox_image(), "bench/busybox")
        for name, bridge, subnet in (("crius", "cbr-crius", "10.201.0.0/16"), ("containerd", "cbr-ctrd",
                                                                                "10.202.0.0/16")):
            bridge_network(work / f"net-{name}", f"bench-{name}", bridge, subnet, work / "ipam")
        (work / "crius").mkdir()
        crius = Daemon(netns=ns, workdir=work / "crius", config=(
            f'[registry]\ninsecure = ["{registry.host}"]\n'
            f'[network]\ncni_conf_dir = "{work}/net-crius"\ncni_bin_dirs = ["/usr/lib/cni"]\n'
            f'[metrics]\naddress = "{METRICS}"\n'))
        crius.start()
        (work / "containerd").mkdir()
        ctrd = Containerd(work / "containerd", ns, registry, pause.ref, work / "net-containerd").start()
        logs = work / "logs"
        crius_cg, ctrd_cg = confine(crius.pid, f"{DAEMONS}/crius"), confine(ctrd.pid, f"{DAEMONS}/containerd")
        runtimes = [Runtime("crius", crius.client, "", crius.pid, busybox.ref, logs, crius_cg),
                    Runtime("runc", ctrd.client, "runc", ctrd.pid, busybox.ref, logs, ctrd_cg),
                    Runtime("crun", ctrd.client, "crun", ctrd.pid, busybox.ref, logs, ctrd_cg)]
        for r in runtimes:
            r.client.image.PullImage(r.pb.PullImageRequest(image=r.pb.ImageSpec(image=busybox.ref)), timeout=120)
        results = measure(runtimes, iterations, warmup, pull_image.ref, args.smoke)
        results["crius"]["sandbox_run_steps_ms"] = run_steps = sandbox_run_steps(ns)
        md, rows = table(results)
        # Unikernel pods: no containerd equivalent; absolute figures beside
        # containerd+runc's pod ready.
        uk_rows = ["| unikernel pod (crius only) | RunPodSandbox → first console line, p50 | p99 | "
                   "tender PSS per pod | by step, p50: RunPodSandbox, CreateContainer, StartContainer, "
                   "then to the line |", "| --- | --- | --- | --- | --- |"]
        runc_ready = pct(results["runc"]["pod_ready"], 50) * 1000
        for flavour in ("spt", "hvt"):
            if flavour == "hvt" and not os.access("/dev/kvm", os.R_OK | os.W_OK):
                uk_rows.append("| crius-hvt | not measured: this node has no /dev/kvm | - | - | - |")
                continue
            elf = (BUILD / "unikernel" / "guests" / f"sleeper.{flavour}").read_bytes()
            ref = oci.push(registry, oci.unikernel_image("sleeper", elf, flavour), f"bench/sleeper-{flavour}").ref
            crius.client.image.PullImage(crius.pb.PullImageRequest(image=crius.pb.ImageSpec(image=ref)), timeout=120)
            times, steps, pss = guest_first_line(runtimes[0], flavour, ref, 3 if args.smoke else 50, warmup)
            results["crius"][f"first_line_{flavour}"] = times
            results["crius"][f"first_line_steps_{flavour}"] = steps
            results["crius"][f"tender_pss_mib_{flavour}"] = pss
            by_step = ", ".join(f"{pct([s[k] for s in steps], 50) * 1000:.1f}" for k in range(4))
            uk_rows.append(f"| crius-{flavour} | {pct(times, 50) * 1000:.1f} ms | {pct(times, 99) * 1000:.1f} ms | "
                           f"{pct(pss, 50):.2f} MiB | {by_step} ms |")
            rows.append({"figure": f"crius-{flavour}: RunPodSandbox to first console line, p50", "unit": "ms",
                         "crius": pct(times, 50) * 1000, "runc": runc_ready, "crun": None, "ratio": None,
                         "target": None})
        uk_rows.append(f"| containerd+runc pod ready, p50 (for scale) | {runc_ready:.1f} ms | - | - | - |")
        md = md + "\n\n" + "\n".join(uk_rows)
        steps = "; ".join(f"{name}: " + ", ".join(f"{k} {v:.1f}" for k, v in results[name]["pod_ready_steps_ms"].items())
                          for name in RUNTIMES)
        when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        machine = f"{os.cpu_count()} cores, Linux {platform.release()}"
        run_steps_line = ", ".join(f"{k} {run_steps[k]:.2f}" for k in SANDBOX_STEPS)
        print(f"crius vs containerd 1.6, {when}, {machine}, {iterations} iterations"
              f"{' (smoke)' if args.smoke else ''}\n\n{md}\n\npod ready by step, p50 ms: {steps}\n\n"
              f"crius's RunPodSandbox by step, mean ms over the namespace pods above (its own metrics): "
              f"{run_steps_line}; the whole call less its CNI ADD {run_steps['less_cni']:.2f}")
        out_path.write_text(json.dumps({"when": when, "machine": machine, "iterations": iterations,
                                        "smoke": args.smoke, "figures": rows, "raw": results}, indent=1))
        print(f"\nJSON: {out_path}")
    finally:
        if crius is not None:
            try:
                Runtime("crius", crius.client, "", crius.pid, "", work).remove_all()
            except Exception as e:  # noqa: BLE001 - keep cleaning
                print(f"bench: crius cleanup: {e}", file=sys.stderr)
            crius.stop(check=False)
        if ctrd is not None:
            try:
                if ctrd.client:
                    Runtime("runc", ctrd.client, "", ctrd.pid, "", work).remove_all()
            except Exception as e:  # noqa: BLE001
                print(f"bench: containerd cleanup: {e}", file=sys.stderr)
            ctrd.stop()
        close_run(registry, ns, cni_cache, work, CGROUP_PARENT, DAEMONS)


if __name__ == "__main__":
    main()
