# Shell helpers shared by the experiment scripts; source it, don't run it.

# Prints one verdict line per configuration of a `toploss compare --csv` file, against its
# first row.
verdict_lines() {
  awk -F, 'NR == 2 { base = $1; base_ce = $7; next }
    NR > 2 {
      printf "- %s: final test accuracy %+.2f points against %s (%s); test cross-entropy %.4f against %.4f.\n", $1, $9, base, $10, $7, base_ce
    }' "$1"
}

# Sums the recorded epoch times of every run under the given folders, in seconds.
training_seconds() {
  python3 - "$@" <<'PY'
import json, pathlib, sys
total = 0.0
for root in sys.argv[1:]:
    for path in pathlib.Path(root).rglob("run.json"):
        total += sum(epoch["seconds"] for epoch in json.loads(path.read_text())["epochs"])
print(round(total))
PY
}
