#!/usr/bin/env bash
# Scoring-core benchmark: toploss-core against cleanlab 2.9.0 and NumPy on the same arrays.
#
#   bash bench/core.sh [--repeats N] [--threads N] [--samples N] [--losses N] [--out DIR]
#
# Times confident learning on N x 10 float32 probabilities (compute_confident_joint and
# find_label_issues with prune_by_noise_rate, prune_by_class and both, ranked by
# self_confidence) and the top 100 of M float32 losses (np.argpartition + sort of the
# winners). Both sides use the same thread count; the table gives best and median seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/bench/.venv-core"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/tmp/target-corebench}"

repeats=3
threads=2
samples=1000000
losses=100000000
out=""

while [[ $# -gt 0 ]]; do
    case "$1" in
        --repeats | --threads | --samples | --losses)
            if [[ $# -lt 2 || ! "$2" =~ ^[1-9][0-9]*$ ]]; then
                echo "error: invalid $1 '${2:-}': expected a positive integer" >&2
                exit 2
            fi
            declare "${1#--}=$2"
            shift 2
            ;;
        --out)
            if [[ $# -lt 2 ]]; then
                echo "error: --out needs a folder" >&2
                exit 2
            fi
            out=$2
            shift 2
            ;;
        -h | --help)
            sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "error: unknown argument '$1'; see bash bench/core.sh --help" >&2
            exit 2
            ;;
    esac
done
out=${out:-$(mktemp -d /tmp/toploss-core-bench.XXXXXX)}
mkdir -p "$out/data"

# Python side: a venv with pinned cleanlab and NumPy.
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet cleanlab==2.9.0 numpy==2.4.6 threadpoolctl==3.8.0
fi

# This machine sets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which slow current NumPy. They
# are unset for the Python commands of this benchmark only.
py() {
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" \
        "$VENV/bin/python" "$@"
}

echo "== data ($samples x 10 probabilities, $losses losses) in $out/data"
py "$ROOT/bench/core_data.py" "$out/data" --samples "$samples" --losses "$losses"

echo "== building the Rust example"
cargo build --quiet --release -p toploss-core --example core_bench --manifest-path "$ROOT/Cargo.toml"

echo "== toploss-core ($threads rayon threads)"
RAYON_NUM_THREADS="$threads" "$CARGO_TARGET_DIR/release/examples/core_bench" \
    "$out/data" "$out" "$repeats" 100 | tee "$out/rust.json"

echo "== cleanlab / NumPy ($threads threads)"
py "$ROOT/bench/core_bench.py" "$out/data" "$out" --repeats "$repeats" --threads "$threads" \
    | tee "$out/python.json"

# Summary: best and median seconds, ratio of the best times, and id mismatches.
py - "$out" <<'PY' | tee "$out/summary.md"
import json, pathlib, statistics, sys
import numpy as np

out = pathlib.Path(sys.argv[1])
rust = json.loads((out / "rust.json").read_text())
python = json.loads((out / "python.json").read_text())
print(f"cleanlab {python['cleanlab']}, numpy {python['numpy']}, python {python['python']}, "
      f"rayon threads {rust['rayon_threads']}")
for pool in python["threadpools"]:
    print(f"numpy thread pool: {pool}")
print()
print("| operation | cleanlab/numpy best (median) s | toploss best (median) s | speed-up, best (median) | result check |")
print("|---|---:|---:|---:|---|")
data = out / "data"
probs = np.load(data / "pred_probs.npy", mmap_mode="r")
labels = np.load(data / "labels.npy")
losses = np.load(data / "losses.npy", mmap_mode="r")
files = {
    "compute_confident_joint": "confident_joint",
    "find_label_issues/prune_by_noise_rate": "prune_by_noise_rate",
    "find_label_issues/prune_by_class": "prune_by_class",
    "find_label_issues/both": "both",
}
for name, theirs in python["seconds"].items():
    ours = rust["seconds"][name]
    stem = files.get(name, "top_k")
    a = np.load(out / f"python_{stem}.npy")
    b = np.load(out / f"rust_{stem}.npy")
    if stem == "confident_joint":
        check = f"{int((a != b).sum())} of {a.size} calibrated cells differ"
    else:
        # Ids in one list only; then positions whose ids differ, and among those, positions
        # whose scores differ too (a differing id with an equal score is a tie ordered
        # differently: cleanlab's argsort is not stable, toploss puts the lower id first).
        only_one = len(set(a.tolist()) ^ set(b.tolist()))
        common = min(a.size, b.size)
        moved = np.flatnonzero(a[:common] != b[:common])
        if stem == "top_k":
            score = lambda ids: np.asarray(losses[ids])
        else:
            score = lambda ids: probs[ids, labels[ids]]
        unequal = int((score(a[moved]) != score(b[moved])).sum())
        check = (f"{a.size} vs {b.size} ids, {only_one} in one list only, {moved.size} positions "
                 f"differ, {unequal} of them by score")
    print(f"| {name} | {min(theirs):.3f} ({statistics.median(theirs):.3f}) "
          f"| {min(ours):.3f} ({statistics.median(ours):.3f}) "
          f"| {min(theirs) / min(ours):.1f}x ({statistics.median(theirs) / statistics.median(ours):.1f}x) "
          f"| {check} |")
PY
echo "results in $out"
