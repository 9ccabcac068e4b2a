"""OCI test images built offline: layers, config, manifest, index; pushed to a Registry.

    layer = Layer().file("etc/motd", "hi\\n").dir("data", mode=0o700, uid=1000)
    image = Image([layer], cmd=["/bin/sh"], env=["PATH=/bin"])
    pushed = push(registry, image, "demo", "v1")    # pushed.ref == "127.0.0.1:PORT/demo:v1"
    index = Index([image, Image([layer], architecture="arm64", variant="v8")])
    push(registry, index, "multi")

Everything is deterministic (fixed mtimes, sorted JSON, gzip without a
timestamp): building the same image twice gives the same digests.
"""
import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass

from .fixtures import fixture_binary
from .util import build_dir

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MT_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"

EPOCH = 1600000000  # every mtime, and the config's "created"
CREATED = "2020-09-13T12:26:40Z"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self):
        return digest_of(self.data)

    def descriptor(self, **extra):
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data),
                **extra}


class Layer:
    """A layer tar built from entries; parent dirs are added (0755) when missing.

    Entries may also be given up front: a dict {path: bytes|str} (files; a path
    ending in '/' is a dir), or a list of dicts with the keyword arguments of
    add() (type, path, data, mode, uid, gid, target).
    """

    def __init__(self, entries=(), mtime=EPOCH):
        self.mtime = mtime
        self.entries = {}  # path -> TarInfo, data; insertion order is tar order
        if isinstance(entries, dict):
            for path, data in entries.items():
                self.dir(path) if path.endswith("/") else self.file(path, data)
        else:
            for e in entries:
                self.add(**e)

    def add(self, type, path, data=b"", mode=None, uid=0, gid=0, target=None):
        kinds = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                 "hardlink": tarfile.LNKTYPE}
        path = _clean(path)
        self._parents(path)
        info = tarfile.TarInfo(path)
        info.type = kinds[type]
        info.mode = mode if mode is not None else {"dir": 0o755, "file": 0o644}.get(type, 0o777)
        info.uid, info.gid, info.mtime = uid, gid, self.mtime
        if type in ("symlink", "hardlink"):
            info.linkname = target if type == "symlink" else _clean(target)
        if isinstance(data, str):
            data = data.encode()
        info.size = len(data) if type == "file" else 0
        self.entries.pop(path, None)
        self.entries[path] = (info, data if type == "file" else b"")
        return self

    def file(self, path, data=b"", mode=0o644, uid=0, gid=0):
        return self.add("file", path, data, mode, uid, gid)

    def dir(self, path, mode=0o755, uid=0, gid=0):
        return self.add("dir", path, mode=mode, uid=uid, gid=gid)

    def symlink(self, path, target, uid=0, gid=0):
        return self.add("symlink", path, uid=uid, gid=gid, target=target)

    def hardlink(self, path, target):
        """path becomes another name of the earlier entry target."""
        return self.add("hardlink", path, target=target)

    def whiteout(self, path):
        """Deletes path of a lower layer (.wh.<name>)."""
        head, name = os.path.split(_clean(path))
        return self.file(os.path.join(head, ".wh." + name))

    def opaque(self, path):
        """Hides everything lower layers have under dir path."""
        return self.file(os.path.join(_clean(path), ".wh..wh..opq"))

    def add_tree(self, src, dest=""):
        """Copy a host directory (modes, uid/gid, symlinks; hardlinks kept as links)."""
        seen = {}
        for root, dirs, files in os.walk(src):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                host = os.path.join(root, name)
                path = os.path.join(dest, os.path.relpath(host, src))
                st = os.lstat(host)
                mode = stat.S_IMODE(st.st_mode)
                if stat.S_ISLNK(st.st_mode):
                    self.symlink(path, os.readlink(host), st.st_uid, st.st_gid)
                elif stat.S_ISDIR(st.st_mode):
                    self.dir(path, mode, st.st_uid, st.st_gid)
                elif (st.st_dev, st.st_ino) in seen:
                    self.hardlink(path, seen[(st.st_dev, st.st_ino)])
                else:
                    with open(host, "rb") as f:
                        self.file(path, f.read(), mode, st.st_uid, st.st_gid)
                    seen[(st.st_dev, st.st_ino)] = path
        return self

    def _parents(self, path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            if parent not in self.entries:
                info = tarfile.TarInfo(parent)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, self.mtime
                self.entries[parent] = (info, b"")

    def tar(self):
        """The uncompressed layer tar (its sha256 is the diff_id)."""
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
            for info, data in self.entries.values():
                t.addfile(info, io.BytesIO(data) if info.isreg() else None)
        return out.getvalue()

    def blob(self, compression="gzip", docker=False):
        """The layer as pushed: gzip (default), "zstd" (OCI only) or None for a plain tar."""
        data = self.tar()
        if compression == "gzip":
            media_type = MT_DOCKER_LAYER_GZIP if docker else MT_OCI_LAYER_GZIP
            return Blob(media_type, gzip.compress(data, compresslevel=6, mtime=0))
        if compression == "zstd" and not docker:
            packed = subprocess.run(["zstd", "-q", "-c", "-"], input=data, capture_output=True,
                                    check=True).stdout
            return Blob(MT_OCI_LAYER_ZSTD, packed)
        if compression is None:
            return Blob(MT_DOCKER_LAYER if docker else MT_OCI_LAYER, data)
        raise ValueError(f"unsupported layer compression {compression!r}")


class RawLayer(Layer):
    """A layer whose tar is given byte for byte: for layers no honest tool
    writes (entries with "..", absolute paths, links out of the layer)."""

    def __init__(self, tar_bytes):
        super().__init__()
        self._tar = tar_bytes

    def tar(self):
        return self._tar


def raw_tar(*members):
    """A tar of (TarInfo, bytes) pairs exactly as given, names unchecked."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            t.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


class Image:
    """Config + manifest over layers. docker=True makes Docker schema 2 media types."""

    def __init__(self, layers, entrypoint=None, cmd=None, env=(DEFAULT_PATH,), working_dir=None,
                 user=None, stop_signal=None, labels=None, architecture="amd64", os="linux",
                 variant=None, annotations=None, compression="gzip", docker=False):
        self.layers = list(layers)
        self.settings = {"Entrypoint": entrypoint, "Cmd": cmd, "Env": list(env) if env else None,
                         "WorkingDir": working_dir, "User": user, "StopSignal": stop_signal,
                         "Labels": labels}
        self.architecture, self.os, self.variant = architecture, os, variant
        self.annotations = annotations
        self.compression, self.docker = compression, docker
        self._layer_blobs = None

    def platform(self):
        p = {"architecture": self.architecture, "os": self.os}
        return {**p, "variant": self.variant} if self.variant else p

    def layer_blobs(self):
        if self._layer_blobs is None:
            self._layer_blobs = [layer.blob(self.compression, self.docker) for layer in self.layers]
        return self._layer_blobs

    def config(self):
        return {
            **self.platform(),
            "created": CREATED,
            "config": {k: v for k, v in self.settings.items() if v is not None},
            "rootfs": {"type": "layers",
                       "diff_ids": [digest_of(layer.tar()) for layer in self.layers]},
            "history": [{"created": CREATED, "created_by": "crius test harness"}
                        for _ in self.layers],
        }

    def config_blob(self):
        return Blob(MT_DOCKER_CONFIG if self.docker else MT_OCI_CONFIG,
                    canonical_json(self.config()))

    def manifest_blob(self):
        manifest = {"schemaVersion": 2,
                    "mediaType": MT_DOCKER_MANIFEST if self.docker else MT_OCI_MANIFEST,
                    "config": self.config_blob().descriptor(),
                    "layers": [b.descriptor() for b in self.layer_blobs()]}
        if self.annotations:
            manifest["annotations"] = self.annotations
        return Blob(manifest["mediaType"], canonical_json(manifest))

    def blobs(self):
        """Every blob the manifest references: config first, then layers."""
        return [self.config_blob()] + self.layer_blobs()


class Index:
    """An OCI image index (or with docker=True a Docker manifest list) over images."""

    def __init__(self, images, annotations=None, docker=False):
        self.images, self.annotations, self.docker = list(images), annotations, docker

    def manifest_blob(self):
        index = {"schemaVersion": 2,
                 "mediaType": MT_DOCKER_LIST if self.docker else MT_OCI_INDEX,
                 "manifests": [i.manifest_blob().descriptor(platform=i.platform())
                               for i in self.images]}
        if self.annotations:
            index["annotations"] = self.annotations
        return Blob(index["mediaType"], canonical_json(index))


@dataclass
class Pushed:
    host: str
    repo: str
    tag: str
    digest: str
    media_type: str

    @property
    def ref(self):
        return f"{self.host}/{self.repo}:{self.tag}"

    @property
    def ref_by_digest(self):
        return f"{self.host}/{self.repo}@{self.digest}"


def push(registry, target, repo, tag="latest"):
    """Push an Image or Index (children first) and tag it; returns Pushed."""
    for image in getattr(target, "images", [target]):
        for blob in image.blobs():
            registry.push_blob(repo, blob.data)
        if image is not target:
            m = image.manifest_blob()
            registry.put_manifest(repo, m.digest, m.data, m.media_type)
    m = target.manifest_blob()
    got = registry.put_manifest(repo, tag, m.data, m.media_type)
    if got != m.digest:
        raise AssertionError(f"registry says {repo}:{tag} is {got}, we pushed {m.digest}")
    return Pushed(registry.host, repo, tag, m.digest, m.media_type)


def busybox_layer(busybox="/bin/busybox"):
    """Debian's static busybox with a /bin symlink per applet, passwd, group, /tmp."""
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    with open(busybox, "rb") as f:
        layer = Layer().file("bin/busybox", f.read(), mode=0o755)
    for applet in applets:
        if applet != "busybox":
            layer.symlink(f"bin/{applet}", "busybox")
    layer.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                             "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    layer.file("etc/group", "root:x:0:\nnogroup:x:65534:\n")
    return layer.dir("root", mode=0o700).dir("tmp", mode=0o1777)


def busybox_image(**settings):
    """busybox_layer() as an image with Cmd ["sh"]; keyword args go to Image()."""
    return Image([busybox_layer()], **{"cmd": ["sh"], "env": ["PATH=/bin"], **settings})


def sleeper_image(**settings):
    """tests/fixtures/sleeper.c (static) as /sleeper, the entrypoint."""
    with open(fixture_binary("sleeper"), "rb") as f:
        layer = Layer().file("sleeper", f.read(), mode=0o755)
    return Image([layer], **{"entrypoint": ["/sleeper"], "env": None, **settings})


def hog_image(**settings):
    """busybox with tests/fixtures/hog.c (static) as /bin/hog: "hog N" takes N MiB and holds it."""
    with open(fixture_binary("hog"), "rb") as f:
        layer = Layer().file("bin/hog", f.read(), mode=0o755)
    return Image([busybox_layer(), layer], **{"cmd": ["sh"], "env": ["PATH=/bin"], **settings})


NGINX_CONF = """user nobody nogroup;
worker_processes 1;
pid /tmp/nginx.pid;
error_log stderr;
events { worker_connections 64; }
http {
  access_log off;
  server {
    listen 80;
    location / { root /srv/www; }
  }
}
"""
NGINX_INDEX = "hello from nginx in a crius pod\n"


def debian_deb(package):
    """The .deb of `package` that build.sh downloaded into the build dir."""
    debs = sorted((build_dir() / "test-debs").glob(f"{package}_*.deb")) if build_dir() else []
    if not debs:
        raise FileNotFoundError(f"no {package}_*.deb in $CRIUS_BUILD_DIR/test-debs "
                                "(build.sh test downloads it)")
    return debs[-1]


def add_binary_with_libraries(layer, path, root="/"):
    """The ELF at root+path as /path, plus every shared library ldd resolves for it
    (taken from the host, at the paths the loader will look them up)."""
    full = os.path.join(root, path.lstrip("/"))
    with open(full, "rb") as f:
        layer.file(path, f.read(), mode=0o755)
    out = subprocess.run(["ldd", full], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        lib = parts[2] if len(parts) >= 3 and parts[1] == "=>" else parts[0]
        if not lib.startswith("/"):
            continue  # linux-vdso
        with open(lib, "rb") as f:
            layer.file(lib, f.read(), mode=0o755)
    return layer


def nginx_image(**settings):
    """Debian's nginx (from its .deb, with the host's copies of its libraries) on
    top of busybox_layer(): serves NGINX_INDEX on port 80 as nobody."""
    with tempfile.TemporaryDirectory(prefix="crius-nginx-") as root:
        subprocess.run(["dpkg-deb", "-x", str(debian_deb("nginx")), root], check=True)
        layer = add_binary_with_libraries(Layer(), "/usr/sbin/nginx", root)
    layer.file("etc/nginx/nginx.conf", NGINX_CONF).file("srv/www/index.html", NGINX_INDEX)
    layer.dir("var/log/nginx").dir("var/lib/nginx")
    return Image([busybox_layer(), layer],
                 **{"entrypoint": ["/usr/sbin/nginx", "-g", "daemon off;"], "cmd": None,
                    "env": [DEFAULT_PATH], **settings})


def _clean(path):
    path = os.path.normpath("/" + path).lstrip("/")
    if not path or path == ".":
        raise ValueError("a layer entry needs a path below /")
    return path


def unikernel_image(name, elf, flavour, cmdline=None, blocks=None, extra_files=(), keys=None, use_labels=False):
    """A unikernel guest's image: the ELF at /unikernel/<name>.<flavour>, named
    by crius's annotations (or, with use_labels, config labels); `blocks`
    maps a device name to (path, data) of a block image in the layer; `keys`
    replaces crius's keys (urunc's, say)."""
    layer = Layer()
    layer.file(f"/unikernel/{name}.{flavour}", elf, mode=0o755)
    for path, data in (blocks or {}).values():
        layer.file(path, data, mode=0o644)
    for kind, path, data in extra_files:
        if kind == "file":
            layer.file(path, data)
        else:
            layer.symlink(path, data)
    settings = dict(keys) if keys is not None else {
        "org.crius.unikernel.flavour": flavour,
        "org.crius.unikernel.binary": f"/unikernel/{name}.{flavour}",
    }
    if cmdline is not None:
        settings["org.crius.unikernel.cmdline"] = cmdline
    if blocks:
        settings["org.crius.unikernel.block"] = ",".join(f"{dev}={path}" for dev, (path, _) in blocks.items())
    if use_labels:
        return Image([layer], env=None, labels=settings)
    return Image([layer], env=None, annotations=settings)
