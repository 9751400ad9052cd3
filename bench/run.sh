#!/usr/bin/env bash
# Side-by-side throughput benchmark of the shallow CNN on MNIST: toploss (burn, flex CPU
# backend) against PyTorch (CPU), same images, batch size and thread count.
#
#   bash bench/run.sh [--rounds N] [--images N] [--threads N] [--out DIR]
#
# Each round runs both sides once, each as its own process under /usr/bin/time -v for the
# peak memory (max RSS). The order alternates between rounds, because this kind of shared
# machine drifts by tens of percent over minutes; the summary gives best and median.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/bench/.venv"

rounds=3
images=20000
threads=$(nproc)
out=""

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    echo
    echo "Options (defaults in brackets):"
    echo "  --rounds N   rounds, each running both sides once [3]"
    echo "  --images N   MNIST train images trained on (one epoch) and then evaluated [20000]"
    echo "  --threads N  threads of each side: RAYON_NUM_THREADS and torch.set_num_threads [nproc]"
    echo "  --out DIR    folder for the raw results and summary.md [a new folder under /tmp]"
}

# Arguments
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds | --images | --threads)
            if [[ $# -lt 2 || ! "$2" =~ ^[1-9][0-9]*$ ]]; then
                echo "error: invalid $1 '${2:-}': expected a positive integer" >&2
                exit 2
            fi
            declare "${1#--}=$2"
            shift 2
            ;;
        --out)
            if [[ $# -lt 2 ]]; then
                echo "error: missing folder after --out" >&2
                exit 2
            fi
            out=$2
            shift 2
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "error: unknown argument '$1'; see bash bench/run.sh --help" >&2
            exit 2
            ;;
    esac
done
if [[ ! -x /usr/bin/time ]]; then
    echo "error: /usr/bin/time not found; install GNU time (apt-get install time)" >&2
    exit 1
fi
if [[ -z "$out" ]]; then
    out=$(mktemp -d /tmp/toploss-bench.XXXXXX)
fi
mkdir -p "$out"

# PyTorch: a local virtual environment with the pinned packages.
if ! "$VENV/bin/python" -c "import torch, numpy" 2>/dev/null; then
    echo "== installing PyTorch into $VENV (several GiB, once)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet -r "$ROOT/bench/requirements.txt"
fi

# toploss: the example binary, built in release mode.
echo "== building crates/train/examples/throughput.rs"
(cd "$ROOT" && cargo build --quiet --release -p toploss-train --example throughput)
target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
toploss_bin="$target_dir/release/examples/throughput"

# Machine and versions, for the results page.
# Prints the version of crate $1 that Cargo.lock pins.
locked_version() {
    awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' \
        "$ROOT/Cargo.lock"
}
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ]]; then
    commit="$commit (with uncommitted changes)"
fi
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    echo "nproc: $(nproc)"
    echo "toploss commit: $commit"
    echo "burn: $(locked_version burn), burn-flex: $(locked_version burn-flex)"
    echo "rustc: $(rustc --version)"
    echo "torch: $("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
    echo "python: $("$VENV/bin/python" --version 2>&1)"
    echo "threads: $threads, images: $images, rounds: $rounds"
    # Other work on the machine slows both sides; the load average shows how much there was.
    echo "load average (1, 5, 15 min) at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/environment.txt"

# Runs one side once: its JSON line goes to $out/SIDE-ROUND.json, /usr/bin/time's report
# to $out/SIDE-ROUND.time.
run_side() {
    local side=$1 round=$2
    local command
    if [[ "$side" == toploss ]]; then
        command=("$toploss_bin" --images "$images" --data "$ROOT/data/mnist")
    else
        command=("$VENV/bin/python" "$ROOT/bench/torch_cnn.py" --images "$images" --threads "$threads"
            --data "$ROOT/data/mnist")
    fi
    echo "== round $round/$rounds: $side"
    RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads \
        /usr/bin/time -v -o "$out/$side-$round.time" "${command[@]}" >"$out/$side-$round.json"
}

for ((round = 1; round <= rounds; round++)); do
    if ((round % 2 == 1)); then
        run_side toploss "$round"
        run_side pytorch "$round"
    else
        run_side pytorch "$round"
        run_side toploss "$round"
    fi
done

echo "load average (1, 5, 15 min) at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/environment.txt"

# Summary: best and median of each side, and the ratio toploss / PyTorch.
python3 - "$out" "$rounds" "$threads" <<'EOF' | tee "$out/summary.md"
import json
import re
import statistics
import sys
from pathlib import Path

out, rounds, expected_threads = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sides = ("toploss", "pytorch")


def load(side, round_):
    record = json.loads((out / f"{side}-{round_}.json").read_text().strip().splitlines()[-1])
    report = (out / f"{side}-{round_}.time").read_text()
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
    if match is None:
        sys.exit(f"{out}/{side}-{round_}.time: no 'Maximum resident set size' line")
    record["max_rss_mib"] = int(match.group(1)) / 1024
    # How many cores the process kept busy on average: 200% means two.
    match = re.search(r"Percent of CPU this job got: (\d+)%", report)
    if match is None:
        sys.exit(f"{out}/{side}-{round_}.time: no 'Percent of CPU this job got' line")
    record["cpu_percent"] = int(match.group(1))
    return record


records = {side: [load(side, r) for r in range(1, rounds + 1)] for side in sides}
for side in sides:
    threads = {record["threads"] for record in records[side]}
    if threads != {expected_threads}:
        sys.exit(f"{side} ran with {sorted(threads)} threads; expected {expected_threads}")
(out / "records.json").write_text(json.dumps(records, indent=1))

# (label, key, whether higher is better, format)
metrics = [
    ("training (img/s)", "train_img_per_s", True, "{:,.0f}"),
    ("evaluation pass (img/s)", "eval_img_per_s", True, "{:,.0f}"),
    ("peak memory, max RSS (MiB)", "max_rss_mib", False, "{:,.0f}"),
]
print("| metric | toploss best | toploss median | PyTorch best | PyTorch median "
      "| ratio of best | ratio of medians |")
print("|---|---:|---:|---:|---:|---:|---:|")
for label, key, higher_is_better, fmt in metrics:
    pick = max if higher_is_better else min
    cells = []
    summary = {}
    for side in sides:
        values = [record[key] for record in records[side]]
        summary[side] = (pick(values), statistics.median(values))
        cells += [fmt.format(v) for v in summary[side]]
    ratios = [summary["toploss"][i] / summary["pytorch"][i] for i in range(2)]
    cells += [f"{ratio:.2f}" for ratio in ratios]
    print(f"| {label} | " + " | ".join(cells) + " |")
print()
print("Ratios are toploss / PyTorch: above 1 means toploss trains or evaluates faster, "
      "or uses more memory.")
print()
print("| round | first | toploss train | PyTorch train | toploss eval | PyTorch eval "
      "| toploss CPU | PyTorch CPU | toploss accuracy | PyTorch accuracy |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for i in range(rounds):
    t, p = records["toploss"][i], records["pytorch"][i]
    first = "toploss" if i % 2 == 0 else "PyTorch"
    print(f"| {i + 1} | {first} | {t['train_img_per_s']:,.0f} | {p['train_img_per_s']:,.0f} "
          f"| {t['eval_img_per_s']:,.0f} | {p['eval_img_per_s']:,.0f} "
          f"| {t['cpu_percent']}% | {p['cpu_percent']}% "
          f"| {t['eval_accuracy']:.3f} | {p['eval_accuracy']:.3f} |")
print()
print("Throughputs in images per second. CPU: the process's CPU time over its wall time "
      "(/usr/bin/time), so 200% means two busy cores over the whole process, setup included. "
      "Accuracy: after the one timed epoch, on the trained "
      "images (a check that both sides learn, not a result).")
EOF
echo "== raw results and summary in $out"
