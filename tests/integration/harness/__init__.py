"""crius integration-test harness.

daemon    Daemon: a real criusd on a private socket/root/state; CRI stubs on it
registry  Registry: Debian's docker-registry on 127.0.0.1 (optionally in a netns)
oci       Layer / Image / Index builders, push(), busybox_image(), sleeper_image()
leaks     LeakChecker: mounts, cgroups, netns, links, processes, fds left behind
netns     Netns: a named test netns; call_in() runs Python code inside one
cri       CRI v1 stubs (load()) and Client over a unix socket
fixtures  fixture_binary(): tests/fixtures/*.c compiled statically at test time
"""
from . import leaks  # sets CRIUS_HARNESS_SESSION before any child is spawned
from .daemon import Daemon, DaemonError, criusd_path
from .fixtures import fixture_binary
from .leaks import LeakChecker, LeakError
from .netns import Netns, call_in
from .oci import (Image, Index, Layer, RawLayer, busybox_image, busybox_layer, digest_of, push,
                  raw_tar, sleeper_image)
from .registry import Registry, RegistryError
from .util import HarnessError

__all__ = ["Daemon", "DaemonError", "criusd_path", "fixture_binary", "LeakChecker", "LeakError",
           "Netns", "call_in", "Image", "Index", "Layer", "RawLayer", "busybox_image", "busybox_layer",
           "digest_of", "raw_tar", "push",
           "sleeper_image", "Registry", "RegistryError", "HarnessError", "leaks"]
