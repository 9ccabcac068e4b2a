"""The tests' import guard (installed by tests/path_guard.py; CTest puts it on
PYTHONPATH). A top-level module found in one of the system's module directories
is imported only if one of the packages build.sh installs (or what they depend
on, or Debian's required packages) ships it; a copy from elsewhere (pip, a
hand-made file) is passed over for the packaged one, and a module only found
there fails with ModuleNotFoundError naming it and where it is. Modules outside
those directories (the project's own, the generated CRI stubs) are not judged.
"""
import importlib.machinery
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def _canonical(path):
    head, tail = os.path.split(path)
    return os.path.join(os.path.realpath(head or "/"), tail)


class _GuardFinder:
    def __init__(self, roots, allowed):
        self.roots = roots
        self.allowed = allowed

    def _judge(self, path):
        """None if the path is outside the system's module directories, else
        whether an allowed package ships its top-level entry."""
        path = _canonical(path)
        for r in self.roots:
            if path.startswith(r + "/"):
                top = path[len(r) + 1:].split("/")[0].split(".")[0]
                return f"{r}/{top}" in self.allowed
        return None

    def find_spec(self, fullname, path=None, target=None):
        if path is not None or "." in fullname:
            return None  # submodules come with their top-level package
        refused = []
        for entry in sys.path:
            if not entry or os.path.abspath(entry) == _HERE:
                continue
            spec = importlib.machinery.PathFinder.find_spec(fullname, [entry])
            if spec is None:
                continue
            where = spec.origin if spec.origin not in (None, "namespace") else \
                next(iter(spec.submodule_search_locations or []), entry)
            if self._judge(where) is False:
                refused.append(where)
                continue
            return spec
        if refused:
            raise ModuleNotFoundError(
                f"crius test import guard: module '{fullname}' is only at {refused[0]}, which no "
                f"package build.sh installs ships: a fresh machine has no '{fullname}'; add the "
                f"Debian package (python3-...) that provides it to build.sh", name=fullname)
        return None


def _install():
    roots, allowed = [], set()
    try:
        with open(os.path.join(_HERE, "allowed.txt")) as f:
            for line in f:
                line = line.rstrip("\n")
                if line.startswith("root "):
                    roots.append(line[5:])
                elif line:
                    allowed.add(line)
    except OSError:
        return
    at = next((i for i, f in enumerate(sys.meta_path) if f is importlib.machinery.PathFinder),
              len(sys.meta_path))
    sys.meta_path.insert(at, _GuardFinder(roots, allowed))


_install()
