"""cleanlab/NumPy side of bench/core.sh: times confident learning and top-k on the arrays of
bench/core_data.py, writes each result to OUT_DIR/python_*.npy and the timings as JSON to
stdout.

Usage: python core_bench.py DATA_DIR OUT_DIR [--repeats R] [--threads T] [--k K]
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import cleanlab
from cleanlab.count import compute_confident_joint
from cleanlab.filter import find_label_issues

FILTERS = ["prune_by_noise_rate", "prune_by_class", "both"]


def timed(repeats, function):
    """Runs `function` `repeats` times; returns (seconds of each run, last result)."""
    seconds = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def top_k_largest(losses, k):
    """Ids of the k largest losses, descending, ties by lower id (np.argpartition + sort)."""
    winners = np.argpartition(losses, losses.size - k)[losses.size - k :]
    # lexsort sorts by the last key first: descending loss, then ascending id.
    return winners[np.lexsort((winners, -losses[winners]))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=pathlib.Path)
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--k", type=int, default=100)
    args = parser.parse_args()

    pred_probs = np.load(args.data / "pred_probs.npy")
    labels = np.load(args.data / "labels.npy")
    losses = np.load(args.data / "losses.npy")

    timings = {}
    with threadpool_limits(limits=args.threads):
        pools = [
            {key: pool.get(key) for key in ("internal_api", "version", "architecture", "num_threads")}
            for pool in threadpool_info()
        ]
        seconds, joint = timed(
            args.repeats, lambda: compute_confident_joint(labels, pred_probs)
        )
        timings["compute_confident_joint"] = seconds
        np.save(args.out / "python_confident_joint.npy", joint.astype(np.int64))

        for filter_by in FILTERS:
            seconds, ids = timed(
                args.repeats,
                lambda: find_label_issues(
                    labels,
                    pred_probs,
                    filter_by=filter_by,
                    return_indices_ranked_by="self_confidence",
                    n_jobs=args.threads,
                ),
            )
            timings[f"find_label_issues/{filter_by}"] = seconds
            np.save(args.out / f"python_{filter_by}.npy", np.asarray(ids, dtype=np.int64))

        seconds, ids = timed(args.repeats, lambda: top_k_largest(losses, args.k))
        timings[f"top_k/{args.k}"] = seconds
        np.save(args.out / "python_top_k.npy", ids.astype(np.int64))

    json.dump(
        {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "cleanlab": cleanlab.__version__,
            "threadpools": pools,
            "seconds": timings,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
