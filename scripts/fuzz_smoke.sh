#!/usr/bin/env bash
# A short, fixed-seed run of every fuzz target: each is built (dev profile: no
# optimisation, so the build is quick; overflow checks and ASan on) and its body run on
# 2,000 inputs grown from seed 1 (plus the seeds in fuzz/seeds/<target>), so a
# target that no longer builds, or fails at once, fails the test command. A crash
# leaves its input in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo +nightly fuzz build --dev
log=$(mktemp)
for t in $(cargo +nightly fuzz list); do
  corpus=$(mktemp -d)
  seeds=()
  if [ -d "fuzz/seeds/$t" ]; then seeds=("fuzz/seeds/$t"); fi
  if ! cargo +nightly fuzz run --dev "$t" "$corpus" "${seeds[@]}" -- \
      -runs=2000 -seed=1 -max_len=4096 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz smoke: $t failed"
    exit 1
  fi
  echo "fuzz smoke: $t: $(grep -E '^Done' "$log" || echo done)"
  rm -rf "$corpus"
done
rm -f "$log"
