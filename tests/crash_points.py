#!/usr/bin/python3
"""criusd's crash points and the durable steps they cover, read from its sources.

    tests/crash_points.py            prints every crash point and the step it follows;
                                     exits 1 naming each durable step that has none

A durable step is a call in the RPC layers (cri/, image/, network/) that
writes something a restart finds again or that changes the node: a record in
the database, a directory or file under root or state, a cgroup, a mount, the
monitor (and with it the pod's namespaces), a request that makes the monitor
change the node, a CNI ADD or DEL, a blob or a layer. DURABLE below lists the
calls that do so. Each must be followed, in its function and before the next
durable step, by a CRIUS_FAILPOINT: SIGKILL there is the crash just after that
step, and tests/integration/test_crash_walk.py kills criusd at every point
this finds and checks what a restart makes of it.

Two comments in the code say why a step needs no point of its own:
  // Crash points: at its callers   just above a function: a wrapper; its last
                                   step is covered where it is called, and each
                                   call of it counts as a durable step there
  // Crash points: none, <why>    just above a function: none of its steps (a
                                   rollback or recovery that the next start redoes)
  // no crash point: <why>       on a step's line or the line above it
Steps inside an undo (the lambda given to undo.Push) are rollbacks: a crash
there is a crash of the step being undone, which already has its point.
"""
import re
import sys
from dataclasses import dataclass
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
SOURCES = ("cri/*.cc", "image/*.cc", "network/pod_network.cc")
# The primitives DURABLE names (the record tables, the blob store), and the
# unpacker, which writes only into a scratch directory that the next start removes.
NOT_SCANNED = {"cri/pods.cc", "cri/containers.cc", "image/content_store.cc", "image/unpack.cc"}

# What changes the node or writes what outlives criusd.
DURABLE = [
    (r"\bpods\(\)\.(Reserve|Save|Delete)\(", "pod record"),
    (r"\bcontainers\(\)\.(Reserve|Save|Delete)\(", "container record"),
    (r"\b(store\(\)\.|store_->|db_\.)(Add|Delete|Put|Set|Insert|Update|Remove)\w*\(|\bRecord\(image\)", "database row"),
    (r"\bMakeDirs\(", "directory made"),
    (r"\bRemoveTree(At)?\(", "directory removed"),
    (r"\bWriteFileAtomic\(|\bWritePodFiles\(", "file written"),
    (r"\b(cgroups\(\)|driver)\.(Create|Remove|KillAll|RemoveIfEmpty|Apply|SetDevicePolicy)\w*\(", "cgroup"),
    (r"\bStartMonitor\(", "monitor started"),
    (r"\bConnectGuestLink\(", "tap"),
    (r"\bCallMonitor\(", "monitor request"),
    (r"\bnetworks\(\)\.(Setup|Teardown)\(|\bcni_\.(Add|Del)\(", "CNI ADD/DEL"),
    (r"\bimage_volumes\(\)\.(Mount|Sweep)\(", "image volume"),
    (r"\bcontent_->(Put|Delete)\(|->Commit\(\)", "blob"),
    (r"\bUnpack\(", "layer"),
    (r"::(mount|umount2?|rename|renameat|unlink|unlinkat|rmdir|mkdir|symlink|link)\(", "file system"),
]
POINT = re.compile(r'CRIUS_FAILPOINT\("([a-z0-9_]+\.[a-z0-9_]+)"\)')
FUNCTION_EXEMPT = re.compile(r"^\s*// Crash points: \S")
WRAPPER = "at its callers"
LINE_EXEMPT = "// no crash point: "


@dataclass
class Step:
    file: str
    line: int
    function: str
    what: str
    text: str
    point: str = ""  # the crash point that follows it; "" when none
    exempt: str = ""  # why none is needed


@dataclass
class Point:
    name: str
    file: str
    line: int
    function: str


def _functions(lines):
    """(name, first, last, exempt) of each top-level function of a clang-formatted file."""
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        head = re.match(r"(?:[A-Za-z_][\w:<>,*& ]*?[\s*&])?([A-Za-z_~][\w:~]*)\(", line)
        if head is None or line.startswith(("namespace", "struct", "class", "enum", "extern", "using")):
            i += 1
            continue
        j = i
        while j < len(lines) and not lines[j].rstrip().endswith(("{", ";", "}")):
            j += 1
        if j == len(lines) or not lines[j].rstrip().endswith("{"):
            i = j + 1
            continue
        last = j + 1
        while last < len(lines) and not lines[last].startswith("}"):
            last += 1
        exempt, k = "", i - 1
        while k >= 0 and lines[k].lstrip().startswith("//"):
            if FUNCTION_EXEMPT.match(lines[k]):
                exempt = lines[k].split("Crash points:", 1)[1].strip()
            k -= 1
        out.append((head.group(1), i, last, exempt))
        i = last + 1
    return out


def _undo_lines(lines, first, last):
    """Line numbers (0-based) inside undo.Push(...) calls between first and last."""
    inside, depth = set(), 0
    for i in range(first, last + 1):
        code = lines[i].split("//")[0]
        if depth == 0 and "undo.Push(" not in code:
            continue
        if depth == 0:
            code = code[code.index("undo.Push("):]
        inside.add(i)
        depth += code.count("(") - code.count(")")
        depth = max(depth, 0)
    return inside


def _parsed(top):
    files = sorted({p for pattern in SOURCES for p in top.glob(pattern)})
    for path in (p for p in files if str(p.relative_to(top)) not in NOT_SCANNED):
        lines = path.read_text().splitlines()
        yield str(path.relative_to(top)), lines, _functions(lines)


def scan(top=TOP):
    """(steps, points): every durable step and every crash point of the sources."""
    parsed = list(_parsed(top))
    durable = list(DURABLE)
    # A wrapper's own last step is covered where it is called: each call of
    # it is a durable step of its caller.
    for _, _, functions in parsed:
        for name, _, _, exempt in functions:
            if exempt.startswith(WRAPPER):
                durable.append((rf"\b{re.escape(name.split('::')[-1])}\(", f"via {name.split('::')[-1]}"))
    steps, points = [], []
    for rel, lines, functions in parsed:
        for name, first, last, exempt in functions:
            undo = _undo_lines(lines, first, last)
            pending = []  # steps not yet followed by a point
            for i in range(first, last + 1):
                line = lines[i]
                code = re.sub(r'"([^"\\]|\\.)*"', '""', line.split("//")[0])
                if i == first:  # the signature
                    code = code[code.index("(") + 1:]
                if i not in undo:
                    for rx, what in durable:
                        if not re.search(rx, code):
                            continue
                        s = Step(rel, i + 1, name, what, line.strip())
                        for near in (line, lines[i - 1]):
                            if LINE_EXEMPT in near:
                                s.exempt = near.split(LINE_EXEMPT, 1)[1].strip()
                        if exempt and not exempt.startswith(WRAPPER):
                            s.exempt = exempt
                        if not s.exempt:
                            pending = [s]  # one before it with no point stays uncovered
                        steps.append(s)
                        break
                for m in POINT.finditer(line):
                    points.append(Point(m.group(1), rel, i + 1, name))
                    if i not in undo:
                        for s in pending:
                            s.point = m.group(1)
                        pending = []
            if exempt.startswith(WRAPPER):
                for s in pending:
                    s.point = f"(the callers' of {name})"
    return steps, points


def uncovered(steps):
    return [s for s in steps if not s.point and not s.exempt]


def main():
    steps, points = scan()
    names = sorted({p.name for p in points})
    print(f"{len(names)} crash points, {len(steps)} durable steps\n")
    for p in points:
        covers = [s for s in steps if s.point == p.name]
        what = ", ".join(sorted({s.what for s in covers})) or "-"
        print(f"{p.name:45} {p.file}:{p.line:<5} after: {what}")
    missing = uncovered(steps)
    if missing:
        print(f"\n{len(missing)} durable steps without a crash point:")
        for s in missing:
            print(f"  {s.file}:{s.line} ({s.function}): {s.what}: {s.text}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
