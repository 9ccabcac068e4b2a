#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, made here from the test harness's own
builders (nothing downloaded): make_seeds.py OUT [CRIUSD] writes
OUT/<target>/<name> for every target of tests/fuzz/CMakeLists.txt."""
import json
import os
import struct
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
from harness import oci  # noqa: E402
from harness.node import conflist  # noqa: E402
from harness import streaming  # noqa: E402
from harness.streaming import SPDY_DICT  # noqa: E402

HEX = "0123456789abcdef" * 4


def references():
    return ["busybox", "busybox:1.36", "docker.io/library/busybox:latest", "library/busybox",
            f"127.0.0.1:5000/a/b@sha256:{HEX}", f"localhost/x:y@sha256:{HEX}", "registry.k8s.io/pause:3.9",
            "[::1]:5000/img:tag", "gcr.io/a-b_c.d/e__f:v1.2-rc", f"sha256:{HEX}", HEX, "UPPER/case",
            "a" * 255 + ":t", "host:99999/x", "x@sha512:" + HEX * 2, "x:"]


def manifests():
    layer = oci.Layer().file("etc/motd", b"hi\n").dir("data", mode=0o700, uid=1000)
    image = oci.Image([layer], cmd=["/bin/sh"], env=["PATH=/bin"], user="1000:1000", stop_signal="SIGINT",
                      labels={"a": "b"}, annotations={"org.crius.x": "y"})
    docker = oci.Image([layer], entrypoint=["/e"], docker=True)
    arm = oci.Image([layer], architecture="arm64", variant="v8")
    zstd = oci.Image([layer], compression="zstd")
    plain = oci.Image([layer], compression=None)
    seeds = {"index": oci.Index([image, arm]).manifest_blob().data,
             "list": oci.Index([docker], docker=True).manifest_blob().data,
             "only-arm": oci.Index([arm]).manifest_blob().data}
    for name, img in (("oci", image), ("docker", docker), ("zstd", zstd), ("plain", plain)):
        seeds[f"manifest-{name}"] = img.manifest_blob().data
        seeds[f"config-{name}"] = img.config_blob().data
    return seeds


def configs(criusd):
    seeds = {"empty": b"", "sections": b'root = "/r"\n[registry]\ninsecure = ["h:1"]\n[events]\nmax_queued = 1\n',
             "bad-duration": b'[registry]\npull_progress_timeout = "5 fortnights"\n'}
    deploy = Path(__file__).resolve().parent.parent.parent / "deploy" / "crius.toml"
    if deploy.exists():
        seeds["deploy"] = deploy.read_bytes()
    if criusd and os.access(criusd, os.X_OK):
        seeds["defaults"] = subprocess.run([criusd, "--print-config"], capture_output=True, check=True).stdout
    return seeds


def seccomp_profiles():
    oci_profile = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64"],
                   "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                                 "args": [{"index": 0, "value": 0x7E020000, "valueTwo": 0,
                                           "op": "SCMP_CMP_MASKED_EQ"}]},
                                {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}
    moby = {"defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
            "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                         {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_PTRACE"]}},
                         {"names": ["getpid"], "action": "SCMP_ACT_LOG"}]}
    return {"oci": json.dumps(oci_profile).encode(), "moby": json.dumps(moby).encode(),
            "allow": b'{"defaultAction": "SCMP_ACT_ALLOW"}', "notify": b'{"defaultAction": "SCMP_ACT_NOTIFY"}'}


def cni_configs():
    return {"bridge": conflist("/var/lib/cni/networks").encode(),
            "loopback": b'{"cniVersion": "1.0.0", "name": "lo", "plugins": [{"type": "loopback"}]}',
            "conf": b'{"cniVersion": "0.4.0", "name": "one", "type": "bridge", "ipam": {"type": "host-local"}}'}


def cni_results():
    """ADD results as Debian's plugins print them, in each result version."""
    v1 = {"cniVersion": "1.0.0",
          "interfaces": [{"name": "cni0", "mac": "aa:bb:cc:dd:ee:ff"},
                         {"name": "eth0", "mac": "0a:58:0a:58:00:05", "sandbox": "/run/netns/x"}],
          "ips": [{"interface": 1, "address": "10.88.0.5/16", "gateway": "10.88.0.1"},
                  {"interface": 1, "address": "fd00::5/64", "gateway": "fd00::1"}],
          "routes": [{"dst": "0.0.0.0/0"}], "dns": {"nameservers": ["10.88.0.1"]}}
    v04 = dict(v1, cniVersion="0.4.0", ips=[dict(ip, version="4") for ip in v1["ips"][:1]])
    v02 = {"cniVersion": "0.2.0", "ip4": {"ip": "10.1.0.2/24", "gateway": "10.1.0.1"}, "ip6": {"ip": "fd01::2/64"}}
    return {"v1": json.dumps(v1).encode(), "v04": json.dumps(v04).encode(), "v02": json.dumps(v02).encode(),
            "error": b'{"cniVersion": "1.0.0", "code": 7, "msg": "failed", "details": "why"}'}


def spdy_frames():
    comp = zlib.compressobj(zdict=SPDY_DICT)
    control, data = streaming.control_frame, streaming.data_frame

    def headers(h):
        return streaming.header_block(comp, h)

    syn = [control(1, 0, struct.pack(">II", sid, 0) + b"\0\0" + headers({"streamtype": t, "port": "80",
                                                                         "requestid": "0"}))
           for sid, t in ((1, "error"), (3, "stdin"), (5, "stdout"), (7, "resize"))]
    session = b"".join(syn) + data(3, b"echo hi\n") + data(7, b'{"Width":80,"Height":24}') + \
        control(6, 0, struct.pack(">I", 1)) + data(3, b"", fin=True) + control(3, 0, struct.pack(">II", 5, 5)) + \
        control(9, 0, struct.pack(">II", 3, 65536)) + control(4, 0, struct.pack(">I", 0)) + \
        control(7, 0, struct.pack(">II", 7, 0))
    return {f"piece-{p}": bytes([p]) + session for p in (0, 7, 63)}


def layers():
    base = oci.Layer().file("etc/motd", b"hi\n").dir("data", mode=0o700, uid=1000).symlink("lib", "usr/lib") \
        .hardlink("etc/motd2", "etc/motd").file("bin/su", b"x", mode=0o4755)
    upper = oci.Layer().whiteout("etc/motd").opaque("data").file("data/new", b"n\n")
    out = {}
    for name, layer in (("base", base), ("upper", upper)):
        out[f"{name}.tar"] = layer.tar()
        out[f"{name}.tar.gz"] = layer.blob("gzip").data
        out[f"{name}.tar.zst"] = layer.blob("zstd").data
    evil = tarfile.TarInfo("../escape")
    out["dotdot.tar"] = oci.raw_tar((evil, b"x"))
    link = tarfile.TarInfo("up")
    link.type, link.linkname = tarfile.SYMTYPE, "../../.."
    through = tarfile.TarInfo("up/etc/x")
    out["through-symlink.tar"] = oci.raw_tar((link, b""), (through, b"x"))
    dev = tarfile.TarInfo("dev/null")
    dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 3
    out["device.tar"] = oci.raw_tar((dev, b""))
    return out


def guest_elfs(criusd):
    """The project's own solo5 guests, as the build made them."""
    guests = Path(criusd).parent / "unikernel" / "guests" if criusd else None
    if guests is None or not guests.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(guests.iterdir())
            if p.suffix in (".hvt", ".spt") and p.stem in ("hello", "net", "blk", "shutdown")}


def main():
    out = Path(sys.argv[1])
    criusd = sys.argv[2] if len(sys.argv) > 2 else None
    targets = {"reference": {f"r{i}": r.encode() for i, r in enumerate(references())},
               "manifest": manifests(), "config": configs(criusd), "seccomp": seccomp_profiles(),
               "cni_config": cni_configs(), "cni_result": cni_results(), "spdy": spdy_frames(), "layer": layers(),
               "guest_elf": guest_elfs(criusd)}
    for target, seeds in targets.items():
        d = out / target
        d.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (d / name).write_bytes(data)
    print(f"seeds: {', '.join(f'{t} {len(s)}' for t, s in targets.items())} in {out}")


if __name__ == "__main__":
    main()
