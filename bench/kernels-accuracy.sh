#!/usr/bin/env bash
# Does the choice of kernels change test accuracy? Trains the demo's configuration (shallow
# CNN on all of MNIST, 5 epochs, batch 128, Adam 0.001) with SEEDS seeds from 42 on. It
# trains each seed twice: with toploss's fast kernels and with burn's own ops (--kernels
# burn). Then `toploss compare` compares the two groups. The two differ only in the order in which f32 sums
# are added, so their accuracies should agree within the seed-to-seed spread.
#
# Usage: bash bench/kernels-accuracy.sh [OUT_DIR]
# OUT_DIR (default runs/kernels-accuracy) is relative to the repository root, and its fast/
# and burn/ folders are replaced. Needs python3 for the per-seed table.
# Environment: SEEDS (default 5). On 2 cores a seed takes about 1 min with the fast kernels
# and about 5.5 min with burn's ops.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-runs/kernels-accuracy}
SEEDS=${SEEDS:-5}

cargo build --release --quiet
TOPLOSS=target/release/toploss

for kernels in fast burn; do
  echo "== $OUT/$kernels: $SEEDS seeds with --kernels $kernels"
  # A group folder from an earlier run with more seeds would add its runs to the comparison.
  rm -rf "${OUT:?}/$kernels"
  "$TOPLOSS" -q train --data mnist:data/mnist --seeds "$SEEDS" --seed 42 \
    --kernels "$kernels" --overwrite --out "$OUT/$kernels"
done

"$TOPLOSS" compare "$OUT/fast" "$OUT/burn" --out "$OUT/compare.png" --markdown
echo
echo "final test accuracy (%) per seed:"
echo "| seed | fast | burn | fast - burn |"
echo "| --- | --- | --- | --- |"
for run in "$OUT"/fast/seed-*; do
  seed=${run##*seed-}
  python3 - "$run/run.json" "$OUT/burn/seed-$seed/run.json" "$seed" <<'PY'
import json, sys
fast, burn = (json.load(open(p))["epochs"][-1]["test_accuracy"] * 100 for p in sys.argv[1:3])
print(f"| {sys.argv[3]} | {fast:.2f} | {burn:.2f} | {fast - burn:+.2f} |")
PY
done
