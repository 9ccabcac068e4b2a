#!/usr/bin/env bash
# Runs the README's two commands as a new user would: on a fresh Debian 12
# root, from a clean clone of this repository's HEAD. Catches what CI on a
# machine used before cannot: a package the build, the daemon or a test needs
# that build.sh does not install.
#
#   tests/fresh-machine.sh [--keep] [--skip-test] [ctest args...]
#
# Needs root and mmdebstrap (build.sh installs it). The root is made with
# mmdebstrap --variant=minbase from this machine's apt sources and apt
# settings, into a directory under /var/tmp; it runs in a mount namespace of
# its own, with the node's /dev (so /dev/kvm and /dev/net/tun), /proc, /sys
# and its cgroup hierarchies bound in, and the node's network (apt). Then:
#   1. ./build.sh run: installs, builds, starts criusd; the script waits for
#      its socket, asks it for Version over the CRI and stops it (SIGTERM);
#   2. ./build.sh test: the whole suite.
# The root is removed afterwards unless --keep. Exit status: that of the
# first step that failed. Not part of .ci/run (it takes 20-30 minutes).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
keep=0 skip_test=0
while (($#)); do
  case $1 in
    --keep) keep=1; shift ;;
    --skip-test) skip_test=1; shift ;;
    *) break ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "fresh-machine: needs root" >&2; exit 2; }
command -v mmdebstrap >/dev/null || { echo "fresh-machine: needs mmdebstrap (apt-get install mmdebstrap)" >&2; exit 2; }

root=$(mktemp -d /var/tmp/crius-fresh.XXXXXX)
log() { echo "fresh-machine: $*" >&2; }
cleanup() {
  local rc=$?
  if ((keep)); then log "root kept at $root"; else rm -rf --one-file-system "$root"; fi
  exit $rc
}
trap cleanup EXIT

# This machine's apt sources (one-line and deb822) and its Acquire settings.
sources=()
[[ -s /etc/apt/sources.list ]] && grep -q '^deb ' /etc/apt/sources.list && sources+=(/etc/apt/sources.list)
for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [[ -f $f ]] && sources+=("$f")
done
((${#sources[@]})) || { log "no apt sources on this machine"; exit 2; }
aptopts=()
for f in /etc/apt/apt.conf.d/*; do
  [[ -f $f ]] && grep -q '^Acquire::' "$f" && aptopts+=("--aptopt=$f")
done

log "making a Debian 12 minbase root in $root"
start=$(date +%s)
mmdebstrap --variant=minbase --mode=root "${aptopts[@]}" bookworm "$root" "${sources[@]}"
log "root made in $(($(date +%s) - start)) s"

log "cloning $(git -C "$top" rev-parse --short HEAD) into it"
git clone -q --no-hardlinks "$top" "$root/root/crius"
cp /etc/resolv.conf "$root/etc/resolv.conf"

# Inside: a private mount namespace whose / is the new root (pivot_root, not
# chroot: the kernel refuses user namespaces to a chrooted process), a mount
# point (crius makes it a slave mount for each container), with the node's
# devices, proc and sys.
inner=$(cat <<'EOF'
set -euo pipefail
root=$1 skip_test=$2; shift 2
mount --bind "$root" "$root"
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount -t tmpfs -o mode=755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mkdir -p "$root/.old-root"
cd "$root"
pivot_root . .old-root
/.old-root/usr/bin/umount -l /.old-root  # minbase may have no umount of its own yet
rmdir /.old-root
cd /
exec /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/bash -s "$skip_test" "$@" <<'IN'
set -euo pipefail
skip_test=$1; shift
cd /root/crius
echo "fresh-machine: 1. ./build.sh run" >&2
start=$(date +%s)
./build.sh run < /dev/null > /tmp/criusd.log 2>&1 &
pid=$!
for ((i = 0; i < 3600; i++)); do
  [[ -S /run/crius/crius.sock ]] && break
  kill -0 $pid 2>/dev/null || { tail -40 /tmp/criusd.log; echo "fresh-machine: ./build.sh run exited" >&2; exit 1; }
  sleep 1
done
[[ -S /run/crius/crius.sock ]] || { tail -40 /tmp/criusd.log; echo "fresh-machine: no socket after an hour" >&2; exit 1; }
echo "fresh-machine: criusd serving after $(($(date +%s) - start)) s (packages and build included)" >&2
CRIUS_SOURCE_DIR=/root/crius /usr/bin/python3 - <<'PY'
import sys
sys.path.insert(0, "/root/crius/tests/integration")
import grpc
from harness import cri
stubs = cri.load()
channel = grpc.insecure_channel("unix:///run/crius/crius.sock")
v = stubs.grpc.RuntimeServiceStub(channel).Version(stubs.pb.VersionRequest(), timeout=10)
print(f"fresh-machine: Version: {v.runtime_name} {v.runtime_version} (CRI {v.runtime_api_version})",
      file=sys.stderr)
PY
kill -TERM $pid
wait $pid && echo "fresh-machine: criusd stopped on SIGTERM, exit 0" >&2 || {
  rc=$?; tail -20 /tmp/criusd.log; echo "fresh-machine: criusd exited $rc on SIGTERM" >&2; exit 1; }
((skip_test)) && exit 0
echo "fresh-machine: 2. ./build.sh test" >&2
start=$(date +%s)
rc=0
./build.sh test "$@" < /dev/null || rc=$?
echo "fresh-machine: ./build.sh test exited $rc after $(($(date +%s) - start)) s" >&2
exit $rc
IN
EOF
)
unshare --mount --propagation private /bin/bash -c "$inner" inner "$root" "$skip_test" "$@"
