#!/usr/bin/env bash
# Interleaved wall-clock comparison of several builds of crates/train/examples/throughput.rs.
#
#   bash bench/compare_builds.sh [--rounds N] [--images N] [--threads N] BINARY...
#
# Each round runs every binary once, in an order that rotates between rounds, because the
# speed of a shared machine drifts over minutes. One line per run: round, binary, 1-minute load
# average before the run, training and evaluation images/s, CPU share and wall seconds from
# /usr/bin/time. Build the binaries first (for example from two commits) and copy them aside.
set -euo pipefail

rounds=3
images=5000
threads=2
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
        -h | --help)
            sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) break ;;
    esac
done
if [[ $# -eq 0 ]]; then
    echo "error: no binary given; see bash bench/compare_builds.sh --help" >&2
    exit 2
fi
binaries=("$@")
for binary in "${binaries[@]}"; do
    if [[ ! -x "$binary" ]]; then
        echo "error: $binary is not an executable file; build the throughput example first" >&2
        exit 1
    fi
done

time_file=$(mktemp)
trap 'rm -f "$time_file"' EXIT
printf '%-5s %-40s %5s %9s %9s %5s %7s\n' round binary load train eval cpu seconds
count=${#binaries[@]}
for ((round = 1; round <= rounds; round++)); do
    for ((k = 0; k < count; k++)); do
        binary=${binaries[$(((k + round - 1) % count))]}
        load=$(cut -d' ' -f1 /proc/loadavg)
        line=$(RAYON_NUM_THREADS=$threads /usr/bin/time -o "$time_file" -f '%P %e' \
            "$binary" --images "$images")
        read -r cpu seconds <"$time_file"
        train=$(sed -n 's/.*"train_img_per_s":\([0-9.]*\).*/\1/p' <<<"$line")
        eval=$(sed -n 's/.*"eval_img_per_s":\([0-9.]*\).*/\1/p' <<<"$line")
        printf '%-5s %-40s %5s %9.0f %9.0f %5s %7s\n' "$round" "$binary" "$load" \
            "$train" "$eval" "$cpu" "$seconds"
    done
done
