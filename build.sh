#!/usr/bin/env bash
# crius developer entry point: installs Debian packages, builds, then runs.
#   ./build.sh run  [criusd flags]   start criusd with its embedded defaults
#   ./build.sh test [ctest flags]    run the whole test suite (CTest)
#   ./build.sh build                 install packages and build only
#   ./build.sh bench [--smoke]       crius side by side with containerd (bench/run.py)
#   ./build.sh packages              print the Debian packages it installs
set -euo pipefail
cd "$(dirname "$0")"
top=$PWD
builddir=${CRIUS_BUILD_DIR:-$top/build}

# Every package the build, the daemon and the tests need (Debian 12).
packages=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libseccomp-dev libcap-dev libbpf-dev prometheus-cpp-dev libsqlite3-dev sqlite3
  libcurl4-openssl-dev ca-certificates libarchive-dev libssl-dev libzstd-dev zlib1g-dev
  nlohmann-json3-dev libtomlplusplus-dev libboost-dev libgtest-dev libgmock-dev
  python3 python3-grpcio python3-protobuf python3-pytest python3-websocket python3-bcrypt openssl
  docker-registry busybox-static containernetworking-plugins golang-go qemu-system-x86
  iproute2 iptables iputils-ping util-linux procps kmod zstd mmdebstrap
  python3-yaml python3-prometheus-client systemd libcivetweb-dev shellcheck
  clang libclang-rt-14-dev
)

install_packages() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "build.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

# Debian packages the tests unpack into images, and bench/ unpacks to run
# containerd beside criusd (not installed: their postinsts would start
# services on the host), downloaded once into the build dir.
# Also Debian's cloud kernel, which tests/integration/harness/vm.py boots in
# qemu to test cgroup v2 on a cgroup v1 host: linux-image-cloud-amd64 is a
# metapackage, so the .deb fetched is the linux-image-*-cloud-amd64 it depends on.
test_debs=(nginx containerd runc crun libyajl2)
test_kernel=linux-image-cloud-amd64
fetch_test_debs() {
  local dir=$builddir/test-debs p
  mkdir -p "$dir"
  for p in "${test_debs[@]}"; do
    compgen -G "$dir/${p}_*.deb" >/dev/null && continue
    echo "build.sh: downloading $p.deb for the tests" >&2
    (cd "$dir" && { apt-get download -q "$p" 2>/dev/null || { apt-get update -q && apt-get download -q "$p"; }; })
  done
  compgen -G "$dir/linux-image-*-cloud-amd64_*.deb" >/dev/null && return
  local try
  for try in cached updated; do  # stale apt lists: neither resolve nor download works
    [[ $try == cached ]] || apt-get update -q
    p=$(apt-cache depends "$test_kernel" 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }') || p=
    [[ -n $p ]] || continue
    echo "build.sh: downloading $p.deb ($test_kernel) for the tests" >&2
    (cd "$dir" && apt-get download -q "$p") && return
  done
  echo "build.sh: cannot download the kernel image package of $test_kernel" >&2
  return 1
}

build() {
  if [[ ! -f $builddir/build.ninja ]]; then
    cmake -S "$top" -B "$builddir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
  fi
  cmake --build "$builddir" -j"$(nproc)"
}

cmd=${1:-}
shift || true
case "$cmd" in
  run)
    install_packages; build
    exec "$builddir/criusd" "$@" ;;
  test)
    install_packages; build; fetch_test_debs
    cd "$builddir"
    exec ctest --output-on-failure --timeout 1200 -j"$(nproc)" "$@" ;;
  build)
    install_packages; build ;;
  packages)
    printf '%s\n' "${packages[@]}" ;;
  bench)
    install_packages; build; fetch_test_debs
    CRIUS_BUILD_DIR=$builddir exec /usr/bin/python3 "$top/bench/run.py" "$@" ;;
  *)
    echo "usage: $0 run|test|build|bench [args]" >&2; exit 2 ;;
esac
