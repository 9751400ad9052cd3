"""Writes the synthetic arrays of bench/core.sh into one folder.

- pred_probs.npy: N x K float32 rows drawn from a Dirichlet whose concentration favours each
  sample's true class, so that most rows are confident and some are not;
- labels.npy: N int64 given labels, the true class with about 10% replaced by another class
  drawn uniformly, so that confident learning has label issues to find;
- losses.npy: M float32 per-sample losses (exponential, like cross-entropy of a fair model).

Usage: python core_data.py OUT_DIR [--samples N] [--classes K] [--losses M] [--seed S]
"""

import argparse
import pathlib

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--losses", type=int, default=100_000_000)
    parser.add_argument("--noise", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=20261204)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    n, k = args.samples, args.classes

    # Dirichlet rows: concentration 1 everywhere plus 4 on the true class.
    true_labels = rng.integers(0, k, size=n)
    alpha = np.ones((n, k))
    alpha[np.arange(n), true_labels] += 4.0
    gamma = rng.standard_gamma(alpha)
    pred_probs = (gamma / gamma.sum(axis=1, keepdims=True)).astype(np.float32)

    # Flip about `noise` of the labels to a different class.
    labels = true_labels.copy()
    flip = rng.random(n) < args.noise
    labels[flip] = (true_labels[flip] + rng.integers(1, k, size=int(flip.sum()))) % k

    losses = rng.standard_exponential(args.losses, dtype=np.float32)

    np.save(args.out / "pred_probs.npy", pred_probs)
    np.save(args.out / "labels.npy", labels.astype(np.int64))
    np.save(args.out / "losses.npy", losses)
    print(
        f"wrote {args.out}: pred_probs {pred_probs.shape} float32, labels {labels.shape} "
        f"({int(flip.sum())} flipped), losses {losses.shape} float32"
    )


if __name__ == "__main__":
    main()
