#!/usr/bin/env bash
# Runs every fuzz target for a while (default an hour each), one after
# another, each with a corpus kept under <build>/fuzz/corpus/<target> so a
# later run goes on from there. Reports what each found.
#   tests/fuzz/run-long.sh [SECONDS_PER_TARGET] [TARGET...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${CRIUS_BUILD_DIR:-$here/../../build}
seconds=${1:-3600}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  read -r -a targets < <(sed -n 's/^set(CRIUS_FUZZ_TARGETS \(.*\))$/\1/p' "$here/CMakeLists.txt")
fi
[[ -d $build/fuzz/seeds ]] || /usr/bin/python3 "$here/make_seeds.py" "$build/fuzz/seeds" "$build/criusd"
for t in "${targets[@]}"; do
  corpus=$build/fuzz/corpus/$t findings=$build/fuzz/findings/$t
  mkdir -p "$corpus" "$findings"
  dirs=("$corpus" "$build/fuzz/seeds/$t")
  if [[ -d $here/regressions/$t ]]; then dirs+=("$here/regressions/$t"); fi
  echo "== fuzz_$t for ${seconds}s (corpus $corpus, findings $findings)"
  if (cd "$findings" && "$build/fuzz/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 "${dirs[@]}" > "$findings/log" 2>&1); then
    tail -n 12 "$findings/log"
  else
    tail -n 40 "$findings/log"
    echo "== fuzz_$t FOUND something: the input is in $findings"
  fi
done
