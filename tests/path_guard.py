#!/usr/bin/python3
"""Builds the test PATH guard: what the tests may run and import is what a fresh
Debian 12 machine has after build.sh, and nothing installed by hand.

    path_guard.py --build-sh build.sh --out DIR

The allowed packages are build.sh's list, everything they depend on (Depends and
Pre-Depends, recursively: apt installs those with --no-install-recommends too),
and Debian's Essential and Priority: required packages (every Debian 12 machine
has them). Out of what is installed here, it writes

  DIR/bin/NAME     a link to the program NAME from an allowed package, or, for
                   a program that only something else provides (another package,
                   or nothing: installed by hand), a script that says which
                   program and which package, appends that to the file named by
                   $CRIUS_PATH_GUARD_LOG when set, and exits 127
  DIR/python/      sitecustomize.py and allowed.txt: an import guard (see
                   sitecustomize.py beside this file) that lets a test import a
                   top-level module only from an allowed package's files, or
                   from outside the system's module directories (the project's
                   own)

CTest runs every test with PATH=DIR/bin and PYTHONPATH=DIR/python. The tree is
built afresh at every build, then swapped in whole.
"""
import argparse
import functools
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROGRAM_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
PYTHON_ROOTS = ["/usr/lib/python3/dist-packages", "/usr/local/lib/python3/dist-packages"]
DPKG_INFO = "/var/lib/dpkg/info"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@functools.lru_cache(maxsize=None)
def real_dir(path):
    return os.path.realpath(path or "/")


def canonical(path):
    """The path with its directory resolved (merged /usr: /bin is /usr/bin)."""
    head, tail = os.path.split(path)
    return os.path.join(real_dir(head), tail)


def build_sh_packages(build_sh):
    run = subprocess.run(["/bin/bash", build_sh, "packages"], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"path_guard: {build_sh} packages: {run.stderr.strip()}")
    return run.stdout.split()


class Dpkg:
    """Installed packages: their fields and files."""

    def __init__(self):
        fmt = "${Package}\t${Status}\t${Essential}\t${Priority}\t${Depends}\t${Pre-Depends}\t${Provides}\n"
        out = subprocess.run(["dpkg-query", "-W", "-f", fmt], capture_output=True, text=True,
                             check=True).stdout
        self.installed = {}
        self.providers = {}
        for line in out.splitlines():
            pkg, status, essential, priority, depends, predepends, provides = line.split("\t")
            if not status.endswith(" installed"):
                continue
            self.installed[pkg] = (essential == "yes" or priority == "required",
                                   ", ".join(x for x in (depends, predepends) if x))
            for p in provides.split(","):
                p = p.strip().split(" ")[0]
                if p:
                    self.providers.setdefault(p, []).append(pkg)
        self.owner = {}  # canonical path -> package
        self.files = {}  # package -> canonical paths
        for lst in glob.glob(f"{DPKG_INFO}/*.list"):
            pkg = Path(lst).stem.split(":")[0]
            paths = []
            with open(lst, errors="replace") as f:
                for line in f:
                    p = canonical(line.rstrip("\n"))
                    paths.append(p)
                    self.owner.setdefault(p, pkg)
            self.files.setdefault(pkg, []).extend(paths)

    def resolve(self, alternatives):
        """The installed packages one dependency ("a | b (>= 1)") brings: the
        first alternative that is installed, or that installed packages provide."""
        for alt in alternatives.split("|"):
            name = alt.strip().split(" ")[0].split(":")[0]
            if name in self.installed:
                return [name]
            if name in self.providers:
                return self.providers[name][:1]
        return []

    def closure(self, roots):
        required = [p for p, (req, _) in self.installed.items() if req]
        todo = [p for p in roots if p in self.installed] + required
        missing = [p for p in roots if p not in self.installed]
        allowed = set()
        while todo:
            pkg = todo.pop()
            if pkg in allowed:
                continue
            allowed.add(pkg)
            for dep in self.installed[pkg][1].split(","):
                if dep.strip():
                    todo.extend(d for d in self.resolve(dep) if d not in allowed)
        return allowed, missing


def stub(name, path, owner):
    if owner:
        why = (f"is from package {owner}, which build.sh does not install: a fresh machine "
               f"has no '{name}'; add {owner} to the packages in build.sh")
    else:
        why = (f"is from no Debian package (installed by hand): a fresh machine has no "
               f"'{name}'; use a program of a Debian package and add that package to build.sh")
    msg = f"crius test PATH guard: '{name}' ({path}) {why}"
    q = msg.replace("'", "'\\''")
    return ("#!/bin/sh\n"
            f"msg='{q}'\n"
            'echo "$msg" >&2\n'
            '[ -n "$CRIUS_PATH_GUARD_LOG" ] && echo "$msg" >> "$CRIUS_PATH_GUARD_LOG"\n'
            "exit 127\n")


def programs(dpkg, allowed, out):
    dirs = PROGRAM_DIRS + [d for d in os.environ.get("PATH", "").split(":") if d and d not in PROGRAM_DIRS]
    chosen = {}  # name -> (path, allowed?, owner)
    for d in dirs:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for name in names:
            path = os.path.join(d, name)
            if not NAME.match(name) or not os.path.isfile(path) or not os.access(path, os.X_OK):
                continue
            owner = dpkg.owner.get(canonical(path))
            if owner is None:  # an alternatives link, or made by a postinst: judge its target
                owner = dpkg.owner.get(os.path.realpath(path))
            ok = owner in allowed
            if name not in chosen or (ok and not chosen[name][1]):
                chosen[name] = (path, ok, owner)
    bindir = out / "bin"
    bindir.mkdir()
    for name, (path, ok, owner) in chosen.items():
        if ok:
            os.symlink(path, bindir / name)
        else:
            (bindir / name).write_text(stub(name, path, owner))
            os.chmod(bindir / name, 0o755)
    return sum(ok for _, ok, _ in chosen.values()), sum(not ok for _, ok, _ in chosen.values())


def python_allowed(dpkg, allowed):
    """Top-level entries (ROOT/NAME, NAME without suffixes) of the allowed
    packages' files under the system's module directories."""
    roots = PYTHON_ROOTS + glob.glob("/usr/lib/python3.*") + glob.glob("/usr/lib/python3.*/lib-dynload")
    for pattern in ("/usr/local/lib/python3*/*-packages", "~/.local/lib/python3*/site-packages"):
        roots += glob.glob(os.path.expanduser(pattern))  # pip's: no package ships a file there
    roots = sorted({canonical(r) for r in roots}, key=len, reverse=True)
    entries = set()
    for pkg in allowed:
        for f in dpkg.files.get(pkg, []):
            for r in roots:
                if f.startswith(r + "/"):
                    top = f[len(r) + 1:].split("/")[0]
                    entries.add(f"{r}/{top.split('.')[0]}")
                    break
    return roots, entries


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-sh", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = Path(args.out)
    dpkg = Dpkg()
    allowed, missing = dpkg.closure(build_sh_packages(args.build_sh))
    if missing:
        sys.exit(f"path_guard: build.sh's packages not installed: {' '.join(missing)} (run ./build.sh build)")
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        linked, stubbed = programs(dpkg, allowed, tmp)
        roots, entries = python_allowed(dpkg, allowed)
        (tmp / "python").mkdir()
        shutil.copy(Path(__file__).with_name("sitecustomize.py"), tmp / "python" / "sitecustomize.py")
        (tmp / "python" / "allowed.txt").write_text(
            "".join(f"root {r}\n" for r in roots) + "".join(f"{e}\n" for e in sorted(entries)))
        (tmp / "packages.txt").write_text("".join(f"{p}\n" for p in sorted(allowed)))
        old = out.with_name(out.name + ".old")
        if out.exists():
            os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"path_guard: {len(allowed)} packages, {linked} programs, {stubbed} refused, "
          f"{len(entries)} python modules")


if __name__ == "__main__":
    main()
