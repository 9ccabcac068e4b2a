#!/usr/bin/env bash
# Installs crius on a node: criusd (and crius-monitor and the crius-spt /
# crius-hvt tenders when they were built), the systemd unit, the default
# config, crictl's config, a default CNI network and the operator docs. Safe
# to run again: a file that is already as shipped is left alone, and an
# operator's edited config is kept.
#
#   deploy/install.sh [--prefix ROOT] [--build-dir DIR] [--dry-run]
#
#   --prefix ROOT    install below ROOT instead of / (a node image, a test)
#   --build-dir DIR  where criusd was built (default: ../build beside this script)
#   --dry-run        print what would be done; change nothing
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=/
build=${CRIUS_BUILD_DIR:-$here/../build}
dry_run=0

usage() { sed -n '2,13s/^# \{0,1\}//p' "$0"; }
die() { echo "install.sh: $*" >&2; exit 1; }

while (($#)); do
  case $1 in
    --prefix) (($# >= 2)) || die "--prefix needs a directory"; root=$2; shift 2 ;;
    --prefix=*) root=${1#*=}; shift ;;
    --build-dir) (($# >= 2)) || die "--build-dir needs a directory"; build=$2; shift 2 ;;
    --build-dir=*) build=${1#*=}; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ $root == /* ]] || die "--prefix $root is not an absolute path"
root=${root%/}
[[ -x $build/criusd ]] || die "no criusd in $build: build first (./build.sh build) or pass --build-dir"

changed_unit=0

# put SRC DEST MODE: DEST (below ROOT) becomes SRC with MODE, unless it already is.
put() {
  local src=$1 dest=$root$2 mode=$3
  if [[ -f $dest ]] && cmp -s "$src" "$dest"; then
    if [[ $(stat -c %a "$dest") == "$mode" ]]; then
      echo "unchanged $dest"
      return
    fi
    echo "chmod $mode $dest"
    ((dry_run)) || chmod "$mode" "$dest"
  else
    echo "install $src -> $dest ($mode)"
    # install(1) replaces DEST by a new file, so a running criusd is not
    # overwritten in place.
    ((dry_run)) || install -D -m "$mode" "$src" "$dest"
  fi
  [[ $2 != /etc/systemd/system/crius.service ]] || changed_unit=1
}

# keep SRC DEST MODE: a config file; an existing one is the operator's.
keep() {
  local src=$1 dest=$root$2 mode=$3
  if [[ -e $dest ]] && ! cmp -s "$src" "$dest"; then
    echo "keep $dest (differs from the shipped $src; not replaced)"
    return
  fi
  put "$src" "$2" "$mode"
}

put "$build/criusd" /usr/local/bin/criusd 755
# criusd starts the per-pod monitor from beside itself (config key monitor_path).
if [[ -x $build/crius-monitor ]]; then
  put "$build/crius-monitor" /usr/local/bin/crius-monitor 755
else
  echo "skip crius-monitor (not built in $build)"
fi
for tender in crius-spt crius-hvt; do
  if [[ -x $build/$tender ]]; then
    put "$build/$tender" "/usr/local/bin/$tender" 755
  else
    echo "skip $tender (not built in $build)"
  fi
done
put "$here/crius.service" /etc/systemd/system/crius.service 644
keep "$here/crius.toml" /etc/crius/crius.toml 644
keep "$here/crictl.yaml" /etc/crictl.yaml 644
keep "$here/10-crius-bridge.conflist" /etc/cni/net.d/10-crius-bridge.conflist 644
for doc in kubelet.md runtimeclass.yaml grafana-dashboard.json; do
  put "$here/$doc" "/usr/local/share/doc/crius/$doc" 644
done

if [[ -z $root && -d /run/systemd/system ]] && ((changed_unit)); then
  echo "systemctl daemon-reload"
  ((dry_run)) || systemctl daemon-reload
fi
if ((dry_run)); then
  echo "dry run: nothing was changed"
elif [[ -z $root ]]; then
  echo "next: systemctl enable --now crius; then point kubelet at unix:///run/crius/crius.sock" \
       "(see /usr/local/share/doc/crius/kubelet.md)"
fi
