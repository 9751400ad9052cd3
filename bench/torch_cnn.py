"""PyTorch side of the toploss throughput benchmark.

Trains the same shallow CNN as toploss for one epoch over the first N MNIST train images
(batch 128, Adam, lr 1e-3). Then it times an evaluation pass over the same images: no_grad,
batch 500, per-sample cross-entropy through log_softmax and gather, plus softmax. Prints
one JSON line with the same keys as crates/train/examples/throughput.rs.

    python bench/torch_cnn.py --images 20000 --threads 2
"""

import argparse
import gzip
import json
import resource
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BATCH_SIZE = 128
EVAL_BATCH_SIZE = 500
LEARNING_RATE = 1e-3
# Warm-up: two training batches and a short evaluation pass on a throwaway model, untimed,
# as the toploss side does.
WARMUP_IMAGES = 256
# IDX magic numbers: 0x0803 is unsigned bytes with 3 dimensions, 0x0801 with 1 dimension.
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049

REPO = Path(__file__).resolve().parent.parent


def read_idx(path, magic, dims):
    """Read a gzipped IDX file of unsigned bytes into a numpy array of `dims` dimensions."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    header = 4 + 4 * dims
    found, *shape = struct.unpack(f">{1 + dims}I", data[:header])
    if found != magic:
        sys.exit(f"{path}: invalid IDX magic number {found}, expected {magic}; is this MNIST?")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def shallow_cnn():
    """Build the toploss shallow CNN: 28x28 input shrinks to 26, 13, 11, 5 and 3."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),   # [b, 32, 13, 13]
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),  # [b, 64, 5, 5]
        nn.Conv2d(64, 64, 3), nn.ReLU(),                   # [b, 64, 3, 3]
        nn.Flatten(),                                      # [b, 576]
        nn.Linear(576, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )


def train_epoch(model, images, labels, seed):
    """Train one shuffled epoch and return the mean training loss.

    Reads the loss value every step, as toploss does to check that it stays finite.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    model.train()
    loss_sum = 0.0
    for start in range(0, len(order), BATCH_SIZE):
        ids = order[start:start + BATCH_SIZE]
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images[ids]), labels[ids])
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(ids)
    return loss_sum / len(order)


def evaluate(model, images, labels):
    """Return per-sample losses and N x K softmax probabilities, in sample order."""
    model.eval()
    n = len(labels)
    losses = torch.empty(n)
    probs = torch.empty(n, 10)
    with torch.no_grad():
        for start in range(0, n, EVAL_BATCH_SIZE):
            end = min(start + EVAL_BATCH_SIZE, n)
            logits = model(images[start:end])                         # [b, 10]
            log_probs = F.log_softmax(logits, dim=1)
            target = labels[start:end].unsqueeze(1)                   # [b, 1]
            losses[start:end] = -log_probs.gather(1, target).squeeze(1)
            probs[start:end] = torch.softmax(logits, dim=1)
    return losses, probs


def peak_rss_kib():
    """Return this process's peak resident set size so far, in KiB (Linux units)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000,
                        help="train images (ids 0..N) to train on for one epoch, then evaluate")
    parser.add_argument("--threads", type=int, required=True,
                        help="torch.set_num_threads value; match the toploss side")
    parser.add_argument("--data", type=Path, default=REPO / "data" / "mnist",
                        help="folder with the four gzipped MNIST IDX files")
    parser.add_argument("--seed", type=int, default=42, help="seed of initialisation and shuffling")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    # Data: the whole train split is read, as toploss reads it, then the first N are scaled.
    images = read_idx(args.data / "train-images-idx3-ubyte.gz", IDX_IMAGES_MAGIC, 3)
    labels = read_idx(args.data / "train-labels-idx1-ubyte.gz", IDX_LABELS_MAGIC, 1)
    if not 1 <= args.images <= len(labels):
        sys.exit(f"invalid --images {args.images}: expected 1 to {len(labels)}, "
                 f"the size of the train split in {args.data}")
    x = torch.from_numpy(images[:args.images].astype(np.float32) / 255.0).unsqueeze(1)  # [n, 1, 28, 28]
    y = torch.from_numpy(labels[:args.images].astype(np.int64))
    rss_after_setup_kib = peak_rss_kib()

    # Warm-up on a throwaway model.
    warmup = min(WARMUP_IMAGES, args.images)
    scratch = shallow_cnn()
    train_epoch(scratch, x[:warmup], y[:warmup], args.seed)
    evaluate(scratch, x[:warmup], y[:warmup])
    del scratch

    # Training: one epoch over the subset.
    model = shallow_cnn()
    started = time.perf_counter()
    train_objective = train_epoch(model, x, y, args.seed)
    train_seconds = time.perf_counter() - started

    # Evaluation over the same images.
    started = time.perf_counter()
    losses, probs = evaluate(model, x, y)
    eval_seconds = time.perf_counter() - started
    accuracy = (probs.argmax(dim=1) == y).double().mean().item()

    record = {
        "side": "pytorch",
        "images": args.images,
        "threads": torch.get_num_threads(),
        "batch_size": BATCH_SIZE,
        "eval_batch_size": EVAL_BATCH_SIZE,
        "train_seconds": train_seconds,
        "train_img_per_s": args.images / train_seconds,
        "eval_seconds": eval_seconds,
        "eval_img_per_s": args.images / eval_seconds,
        "train_objective": train_objective,
        "eval_mean_loss": losses.double().mean().item(),
        "eval_accuracy": accuracy,
        "rss_after_setup_kib": rss_after_setup_kib,
        "peak_rss_kib": peak_rss_kib(),
        "torch_version": torch.__version__,
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
