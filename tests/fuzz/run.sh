#!/usr/bin/env bash
# Runs one fuzz target as CTest's label `fuzz` does: the kept regression
# inputs and the seeds first, then a fixed number of mutated runs from a
# fixed seed. New inputs go to a scratch corpus, removed afterwards; a crash,
# a sanitizer report, a leak or a timeout fails the run and leaves the input
# as crash-*/leak-*/timeout-* in the current directory.
#   run.sh BINARY RUNS SEEDS_DIR REGRESSIONS_DIR
set -euo pipefail
bin=$1 runs=$2 seeds=$3 regressions=$4
if [[ ! -x $bin ]]; then
  echo "run.sh: $bin is not built (the main build makes it in <build>/fuzz with clang++)" >&2
  exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/crius-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
dirs=("$work" "$seeds")
if [[ -d $regressions ]]; then dirs+=("$regressions"); fi
"$bin" -runs="$runs" -seed=1 -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 "${dirs[@]}"
