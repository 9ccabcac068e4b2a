"""Debian's cloud kernel booted in qemu (TCG emulation) with cgroup v2 only, running
one command per boot: cgroup v2 tested for real on a host that runs cgroup v1.

    files = {"/t/cgroups_test": build_dir() / "tests/unit/cgroups_test"}
    with Guest(files=files, env={"GTEST_COLOR": "no"}) as g:
        status, out = g.run(["/t/cgroups_test", "--gtest_filter=RealCgroup*"], timeout=600)
        status, out = g.run(["cat", "/sys/fs/cgroup/cgroup.controllers"])  # a second boot

    status, out = run_in_guest(["sh", "-c", "echo hi; exit 3"])          # (3, "hi\\n")

Every run() boots a fresh VM: Debian's linux-image-*-cloud-amd64 (the .deb
build.sh test downloads into $CRIUS_BUILD_DIR/test-debs; its vmlinuz is unpacked
once into $CRIUS_BUILD_DIR/vm-cache/) and an initramfs (uncompressed newc cpio,
built once per Guest) holding busybox-static with its applets, /init, and the
caller's files: {guest path: host path, or bytes (written mode 0755)}. An ELF
also brings every shared library ldd resolves for it on the host, and the
dynamic loader, at the same paths (dlopen()ed libraries: pass them in files).

/init mounts proc, sysfs, devtmpfs, cgroup2 on /sys/fs/cgroup and a tmpfs on
/tmp, enables every controller in the root's cgroup.subtree_control, then runs
the command as root in / with stdin /dev/null, HOME=/, no TERM,
PATH=/usr/sbin:/usr/bin:/sbin:/bin plus env. Its stdout and stderr go to a
second serial port (ttyS1 in raw mode: a tty, but bytes pass unchanged; a file
on the host), so kernel messages never mix into them. After it exits, /init
kills what it left running, writes an end marker with the exit status (a
per-boot random token) and powers off.
run() returns (exit status, output); a guest that never reached the end marker
(boot failure, kernel panic, timeout: the qemu process is killed) raises
GuestError with the tail of the serial console.

No KVM: qemu -enable-kvm hangs at kernel start on these (nested) machines.
Boot to the command takes a few seconds; the command then runs emulated,
several times slower than on the host, so give it a generous timeout.
g.last_times holds {"boot_to_command": guest uptime when the command started,
"total": host wall time of the whole boot} for the last run().
"""
import atexit
import os
import re
import secrets
import shlex
import shutil
import stat
import subprocess
import tarfile
import threading
import time

from .util import HarnessError, build_dir, remove_tree, short_tmpdir, tail

QEMU = "qemu-system-x86_64"
BUSYBOX = "/bin/busybox"  # busybox-static: no libraries to bring along
KERNEL_DEB_GLOB = "linux-image-*-cloud-amd64_*.deb"
KERNEL_ARGS = "console=ttyS0 cgroup_no_v1=all panic=-1 quiet"
GUEST_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

_lock = threading.Lock()
_tmp_cache = None


class GuestError(HarnessError):
    """The guest did not boot, or did not finish its command in time.
    before_command: it never reached the command (boot failure or hang)."""

    before_command = False


def kernel_deb():
    """The cloud kernel .deb that build.sh downloaded into the build dir."""
    debs = sorted((build_dir() / "test-debs").glob(KERNEL_DEB_GLOB)) if build_dir() else []
    if not debs:
        raise FileNotFoundError(f"no {KERNEL_DEB_GLOB} in $CRIUS_BUILD_DIR/test-debs "
                                "(build.sh test downloads it)")
    return debs[-1]


def kernel_image():
    """vmlinuz of kernel_deb(), unpacked once per .deb (kept in the build dir)."""
    return _unpacked(r"(\./)?boot/vmlinuz-.*", "vmlinuz")


def kernel_module(name):
    """<name>.ko of kernel_deb() (e.g. "overlay"), unpacked once per .deb, for a
    guest to insmod: the cloud kernel builds many filesystems as modules."""
    return _unpacked(rf"(\./)?lib/modules/[^/]+/kernel/.*/{re.escape(name)}\.ko", f"{name}.ko")


def _unpacked(pattern, name):
    """The first file of kernel_deb() whose path matches `pattern`, kept as
    vm-cache/<deb>/<name>."""
    deb = kernel_deb()
    with _lock:
        out = _cache_dir() / deb.name.removesuffix(".deb") / name
        if out.exists():
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f"{name}.{os.getpid()}.tmp")
        # dpkg-deb -x would write all of /lib/modules too: stream the tar instead.
        unpack = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        found = False
        try:
            with tarfile.open(fileobj=unpack.stdout, mode="r|") as tar:
                for member in tar:
                    if member.isfile() and re.fullmatch(pattern, member.name):
                        with open(partial, "wb") as f:
                            shutil.copyfileobj(tar.extractfile(member), f)
                        found = True
                        break
        finally:
            unpack.stdout.close()
            unpack.kill()  # it may still be writing the rest of the tar
            err = unpack.stderr.read().decode(errors="replace")
            unpack.stderr.close()
            unpack.wait()
        if not found:
            raise HarnessError(f"no {pattern} in {deb}: {err.strip()}")
        os.replace(partial, out)  # atomic: parallel test processes may race here
        return out


def _cache_dir():
    global _tmp_cache
    if build_dir():
        return build_dir() / "vm-cache"
    if _tmp_cache is None:
        _tmp_cache = short_tmpdir("crius-vm-cache-")
        atexit.register(remove_tree, _tmp_cache)
    return _tmp_cache


def shared_libraries(path):
    """Absolute paths of the libraries (and loader) ldd resolves for the ELF at path;
    [] for a static one. Raises if ldd finds one missing."""
    run = subprocess.run(["ldd", str(path)], capture_output=True, text=True)
    if run.returncode != 0:
        if "not a dynamic executable" in run.stdout + run.stderr:
            return []
        raise HarnessError(f"ldd {path}: {(run.stdout + run.stderr).strip()}")
    libs = []
    for line in run.stdout.splitlines():
        parts = line.split()
        if "not found" in line:
            raise HarnessError(f"ldd {path}: {line.strip()}")
        lib = parts[2] if len(parts) >= 3 and parts[1] == "=>" else parts[0] if parts else ""
        if lib.startswith("/"):  # not linux-vdso
            libs.append(lib)
    return libs


class Cpio:
    """A newc cpio archive (the initramfs format) built in memory; parent
    directories are added as needed, entries are written sorted (parents first)."""

    def __init__(self):
        self.entries = {}  # path without leading "/" -> (mode, data, rdev)

    def dir(self, path, mode=0o755):
        self._put(path, stat.S_IFDIR | mode, b"")
        return self

    def file(self, path, data, mode=0o755):
        self._put(path, stat.S_IFREG | mode, data)
        return self

    def symlink(self, path, target):
        self._put(path, stat.S_IFLNK | 0o777, target.encode())
        return self

    def chardev(self, path, major, minor, mode=0o600):
        self._put(path, stat.S_IFCHR | mode, b"", (major, minor))
        return self

    def __contains__(self, path):
        return _clean(path) in self.entries

    def _put(self, path, mode, data, rdev=(0, 0)):
        path = _clean(path)
        parent = os.path.dirname(path)
        while parent:
            self.entries.setdefault(parent, (stat.S_IFDIR | 0o755, b"", (0, 0)))
            parent = os.path.dirname(parent)
        self.entries[path] = (mode, data, rdev)

    def bytes(self):
        out = bytearray()
        for ino, name in enumerate(sorted(self.entries) + ["TRAILER!!!"], start=1):
            mode, data, (major, minor) = self.entries.get(name, (0, b"", (0, 0)))
            encoded = name.encode() + b"\0"
            nlink = 2 if stat.S_ISDIR(mode) else 1
            fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, major, minor, len(encoded), 0)
            out += b"070701" + "".join(f"{v:08x}" for v in fields).encode() + encoded
            out += b"\0" * (-len(out) % 4) + data
            out += b"\0" * (-len(out) % 4)
        return bytes(out)


def _clean(path):
    path = os.path.normpath("/" + str(path)).lstrip("/")
    if not path or path == ".":
        raise ValueError("an initramfs entry needs a path below /")
    return path


def _checked_env(env):
    env = dict(env or {})
    for name in env:
        if not _ENV_NAME.match(name):
            raise ValueError(f"not an environment variable name: {name!r}")
    return env


def _is_elf(data):
    return data[:4] == b"\x7fELF"


INIT = """#!/bin/busybox sh
# crius test guest (tests/integration/harness/vm.py): one command, then power off.
export PATH={path}
unset TERM  # the kernel's TERM=linux would make test programs print colours
fail() {{ echo "{token} init-failed: $*"; poweroff -f; }}
{switch_root}
mount -t proc proc /proc || fail mount proc
mount -t sysfs sysfs /sys || fail mount sysfs
mount -t devtmpfs devtmpfs /dev || fail mount devtmpfs
mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail mount cgroup2
mount -t tmpfs tmpfs /tmp || fail mount tmpfs
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
  echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control || echo "{token} cannot enable $c"
done
stty -F /dev/ttyS1 raw -echo || fail ttyS1
echo "{token} begin $(cut -d' ' -f1 /proc/uptime)" > /dev/ttyS1
(
{exports}
exec {command}
) </dev/null >/dev/ttyS1 2>&1
status=$?
kill -KILL -1 2>/dev/null  # whatever the command left running (not init)
# open() fails with EAGAIN while a killed process is still closing ttyS1
for try in $(seq 50); do
  echo "{token} end $status" 2>/dev/null > /dev/ttyS1 && break; sleep 0.1
done
stty -F /dev/ttyS1 raw -echo  # tcsetattr(TCSADRAIN): returns once all output is sent
echo "{token} end $status"
poweroff -f
"""


# pivot_root(2) cannot leave the initramfs (it is no mount of its own): a
# guest that runs containers first moves everything to a tmpfs root.
SWITCH_ROOT = """if [ ! -e /.tmpfs-root ]; then
  mkdir /newroot && mount -t tmpfs -o mode=755 root /newroot || fail tmpfs root
  for f in /* /.[!.]*; do
    [ "$f" = /newroot ] || [ ! -e "$f" ] || cp -a "$f" /newroot/ || fail copy "$f"
  done
  touch /newroot/.tmpfs-root
  exec switch_root /newroot /init
fi"""


class Guest:
    """A VM recipe: files (+ their libraries), env; run() boots it once per command.

    timeout: the default for run(); cpu/memory/cpus: qemu -cpu, -m (MiB), -smp
    (the initramfs lives in guest memory: raise memory for very large files).
    tmpfs_root: copy the initramfs to a tmpfs and switch_root there first, so
    the command can pivot_root (containers); the copy takes memory and time.
    The initramfs is built once (on enter or first run()); close() removes the
    temp dir; an interrupted run() kills its qemu.
    """

    def __init__(self, files=None, env=None, timeout=600, cpu="max", memory=1024, cpus=2,
                 tmpfs_root=False):
        self.files = dict(files or {})
        self.tmpfs_root = tmpfs_root
        self.env = _checked_env(env)
        self.timeout = timeout
        self.cpu, self.memory, self.cpus = cpu, memory, cpus
        self.workdir = None
        self.base = None  # cpio: busybox + files + libraries
        self.last_times = None
        self.proc = None

    def __enter__(self):
        self.prepare()
        return self

    def __exit__(self, *exc):
        self.close()

    def prepare(self):
        if self.workdir is None:
            self.workdir = short_tmpdir("crius-vm-")
            atexit.register(self.close)  # a Guest never closed: still no temp dir left
            try:
                self.kernel = kernel_image()
                base = self._base_cpio()
                self.base = base.bytes()
            except BaseException:
                self.close()
                raise
        return self

    def close(self):
        self._kill()
        if self.workdir is not None:
            atexit.unregister(self.close)
            remove_tree(self.workdir)
            self.workdir = None

    def _base_cpio(self):
        if shutil.which(QEMU) is None:
            raise HarnessError(f"{QEMU} not installed (Debian package qemu-system-x86)")
        archive = Cpio()
        for d in ("proc", "sys", "dev", "tmp", "root", "etc", "mnt", "run"):
            archive.dir(d)
        archive.chardev("dev/console", 5, 1)
        with open(BUSYBOX, "rb") as f:
            archive.file("bin/busybox", f.read())
        applets = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True,
                                 check=True).stdout.split()
        for applet in applets:
            if applet != "bin/busybox":
                archive.symlink(applet, "/bin/busybox")
        libraries = set()
        for dest, source in self.files.items():
            if isinstance(source, (bytes, bytearray)):
                archive.file(dest, bytes(source), mode=0o755)
                continue
            with open(source, "rb") as f:
                data = f.read()
            archive.file(dest, data, mode=stat.S_IMODE(os.stat(source).st_mode))
            if _is_elf(data):
                libraries.update(shared_libraries(source))
        for lib in sorted(libraries):
            if lib not in archive:  # the caller's own copy wins
                with open(lib, "rb") as f:
                    archive.file(lib, f.read())
        return archive

    def run(self, command, timeout=None, env=None):
        """Boot, run command (a list: argv; a str: a sh -c script), power off.
        env adds to (and overrides) the Guest's env for this run only.
        Returns (exit status, stdout+stderr).

        A boot that never reached the command (seen rarely under TCG on a
        loaded host: the kernel silent after the BIOS) is tried once more;
        last_times["boots"] says how many it took."""
        try:
            result = self._run_once(command, timeout, env)
            boots = 1
        except GuestError as e:
            if not e.before_command:
                raise
            result = self._run_once(command, timeout, env)
            boots = 2
        self.last_times["boots"] = boots
        return result

    def _run_once(self, command, timeout, env):
        self.prepare()
        timeout = self.timeout if timeout is None else timeout
        env = {**self.env, **_checked_env(env)}
        if isinstance(command, str):
            command = ["sh", "-c", command]
        token = f"CRIUS-VM-{secrets.token_hex(8)}"
        init = INIT.format(path=GUEST_PATH, token=token,
                           switch_root=SWITCH_ROOT if self.tmpfs_root else "",
                           exports="\n".join(f"export {k}={shlex.quote(str(v))}"
                                             for k, v in env.items()),
                           command=" ".join(shlex.quote(str(a)) for a in command))
        initrd = self.workdir / "initrd"
        console = self.workdir / "console.log"
        output = self.workdir / "output.log"
        for p in (console, output):
            p.unlink(missing_ok=True)
        # Concatenated archives: the kernel unpacks each in turn. Not compressed:
        # gunzip under TCG costs seconds per boot for a large test binary.
        initrd.write_bytes(self.base + Cpio().file("init", init.encode()).bytes())
        argv = [QEMU, "-accel", "tcg", "-cpu", self.cpu, "-m", str(self.memory),
                "-smp", str(self.cpus), "-nographic", "-no-reboot", "-nodefaults",
                "-monitor", "none", "-serial", "stdio", "-serial", f"file:{output}",
                "-kernel", str(self.kernel), "-initrd", str(initrd), "-append", KERNEL_ARGS]
        started = time.monotonic()
        with open(console, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        try:
            returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            self._kill()
        total = time.monotonic() - started
        raw = output.read_bytes() if output.exists() else b""
        text = raw.decode(errors="replace")
        begin = re.search(rf"^{token} begin ([0-9.]+)\n", text, re.M)
        # The last one (a command may print /init); no "^": output may lack a final "\n".
        end = None
        for end in re.finditer(rf"{token} end (\d+)\n", text):
            pass
        if not (begin and end and begin.end() <= end.start()):
            why = (f"timed out after {timeout}s" if returncode is None
                   else f"stopped (qemu exit status {returncode})")
            error = GuestError(f"guest {why} before its command finished: {shlex.join(argv)}\n"
                               f"console (tail):\n{tail(console)}\n"
                               f"output (tail):\n{chr(10).join(text.splitlines()[-20:])}")
            error.before_command = begin is None
            raise error
        self.last_times = {"boot_to_command": float(begin.group(1)), "total": total}
        return int(end.group(1)), text[begin.end():end.start()]

    def _kill(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None


def run_in_guest(command, files=None, env=None, timeout=600):
    """One boot of a Guest(files, env): (exit status, output) of command."""
    with Guest(files=files, env=env) as g:
        return g.run(command, timeout=timeout)
