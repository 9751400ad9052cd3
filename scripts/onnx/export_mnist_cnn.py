"""Build the ONNX fixtures of `toploss score --onnx` and their expected probabilities.

Writes into crates/cli/tests/fixtures/onnx/ (or --out):

- shallow_cnn.onnx: toploss's shallow CNN written in PyTorch, trained for a few hundred
  seeded steps on the bundled MNIST and exported with a dynamic batch dimension. Input
  `images` [batch, 1, 28, 28] float32 with pixels scaled to [0, 1], output `logits` [batch, 10].
- shallow_cnn_test1000_probs.npy: PyTorch's softmax probabilities of that model for the
  first 1,000 MNIST test images, float32, 1000 x 10.
- linear_batch1.onnx: a linear classifier built node by node with onnx.helper, with the
  batch fixed at 1. Input `pixels` [1, 1, 28, 28], output logits [1, 10].
- linear_softmax.onnx: the same weights with a Softmax node at the end and a dynamic
  batch, so that it outputs probabilities.
- linear_test50_probs.npy: NumPy's softmax of the linear model for the first 50 test
  images, float32, 50 x 10.
- rgb32.onnx: global average pooling of a [batch, 3, 32, 32] input, for the test of a
  wrong input shape.

The script also runs shallow_cnn.onnx through onnx's reference evaluator and prints the
largest difference to PyTorch, so a broken export shows here and not in the Rust test.

    /tmp/onnx-venv/bin/python scripts/onnx/export_mnist_cnn.py
"""

import argparse
import gzip
import struct
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from torch import nn

REPO = Path(__file__).resolve().parent.parent.parent
DEFAULT_DATA = REPO / "data" / "mnist"
DEFAULT_OUT = REPO / "crates" / "cli" / "tests" / "fixtures" / "onnx"

SEED = 0
# 300 Adam steps reach 95.4% accuracy on the first 1,000 test images: probabilities far from
# uniform, for about 1.5 minutes of CPU time on 2 cores.
STEPS = 300
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
# Test images whose probabilities the Rust test compares.
EXPECTED_IMAGES = 1000
LINEAR_EXPECTED_IMAGES = 50
# Standard deviation of the linear fixtures' random weights: logits of about +-1 on MNIST
# digits, so their softmax is neither uniform nor one-hot.
LINEAR_WEIGHT_STD = 0.05
# onnx.reference and the Rust test both compare float32 results at this tolerance.
TOLERANCE = 1e-5
# ONNX operator set of the exports. tract 0.23 is tested against opsets 9 to 18.
OPSET = 18
# IDX magic numbers: 0x0803 is unsigned bytes with 3 dimensions, 0x0801 with 1 dimension.
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049


def read_idx(path, magic, dims):
    """Read a gzipped IDX file of unsigned bytes into a numpy array of `dims` dimensions."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    header = 4 + 4 * dims
    found, *shape = struct.unpack(f">{1 + dims}I", data[:header])
    if found != magic:
        sys.exit(f"{path}: invalid IDX magic number {found}, expected {magic}; is this MNIST?")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def to_inputs(images):
    """Scale uint8 images [N, 28, 28] to float32 [N, 1, 28, 28] in [0, 1], as toploss does."""
    return (images.astype(np.float32) / 255.0)[:, None, :, :]


def shallow_cnn():
    """Build toploss's shallow CNN (valid 3x3 convolutions, 2x2 max-pools, ReLU)."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),   # [b, 32, 13, 13]
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),  # [b, 64, 5, 5]
        nn.Conv2d(64, 64, 3), nn.ReLU(),                   # [b, 64, 3, 3]
        nn.Flatten(),                                      # [b, 576]
        nn.Linear(576, 64), nn.ReLU(),
        nn.Linear(64, 10),                                 # [b, 10] logits
    )


def train(model, images, labels):
    """Train for STEPS Adam steps on seeded random batches and return the last batch loss."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(SEED)
    model.train()
    loss = torch.tensor(float("nan"))
    for _ in range(STEPS):
        ids = torch.randint(len(labels), (BATCH_SIZE,), generator=generator)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images[ids]), labels[ids])
        loss.backward()
        optimizer.step()
    return loss.item()


def export_cnn(model, example, path):
    """Export `model` with torch.onnx (the torch.export-based exporter) and a dynamic batch."""
    batch = torch.export.Dim("batch")
    program = torch.onnx.export(
        model,
        (example,),
        input_names=["images"],
        output_names=["logits"],
        dynamic_shapes=({0: batch},),
        opset_version=OPSET,
        dynamo=True,
        external_data=False,
    )
    program.save(str(path), external_data=False)


def linear_model(weights, bias, batch, softmax):
    """Build logits = flatten(pixels) @ weights + bias, optionally followed by Softmax."""
    batch_dim = batch if batch is not None else "batch"
    pixels = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [batch_dim, 1, 28, 28])
    output_name = "probabilities" if softmax else "logits"
    output = helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch_dim, 10])
    nodes = [
        helper.make_node("Flatten", ["pixels"], ["flat"], axis=1),          # [b, 784]
        helper.make_node("MatMul", ["flat", "weights"], ["product"]),       # [b, 10]
        helper.make_node("Add", ["product", "bias"], ["logits"]),
    ]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1))
    graph = helper.make_graph(
        nodes,
        "linear",
        [pixels],
        [output],
        initializer=[
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model, full_check=True)
    return model


def rgb32_model():
    """Build a weightless model that wants [batch, 3, 32, 32]: average pooling to [batch, 3]."""
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 32, 32])
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 3])
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),       # [b, 3, 1, 1]
        helper.make_node("Flatten", ["pooled"], ["scores"], axis=1),        # [b, 3]
    ]
    graph = helper.make_graph(nodes, "rgb32", [image], [scores])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model, full_check=True)
    return model


def softmax(logits):
    """Row-wise softmax in float32, shifted by the row maximum."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="MNIST folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fixture folder")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch CPU threads")
    args = parser.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    # Data
    train_images = read_idx(args.data / "train-images-idx3-ubyte.gz", IDX_IMAGES_MAGIC, 3)
    train_labels = read_idx(args.data / "train-labels-idx1-ubyte.gz", IDX_LABELS_MAGIC, 1)
    test_images = read_idx(args.data / "t10k-images-idx3-ubyte.gz", IDX_IMAGES_MAGIC, 3)
    test_labels = read_idx(args.data / "t10k-labels-idx1-ubyte.gz", IDX_LABELS_MAGIC, 1)
    x_train = torch.from_numpy(to_inputs(train_images))
    y_train = torch.from_numpy(train_labels.astype(np.int64))
    x_test = to_inputs(test_images[:EXPECTED_IMAGES])

    # Shallow CNN: train, take PyTorch's probabilities, export.
    model = shallow_cnn()
    last_loss = train(model, x_train, y_train)
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x_test))
        expected = torch.softmax(logits, dim=1).numpy().astype(np.float32)
    accuracy = (expected.argmax(axis=1) == test_labels[:EXPECTED_IMAGES]).mean()
    print(f"shallow CNN: last batch loss {last_loss:.4f}, accuracy on the first "
          f"{EXPECTED_IMAGES} test images {accuracy:.3f}, max probability {expected.max():.4f}")
    cnn_path = args.out / "shallow_cnn.onnx"
    export_cnn(model, torch.from_numpy(x_test[:2]), cnn_path)
    np.save(args.out / f"shallow_cnn_test{EXPECTED_IMAGES}_probs.npy", expected)

    # Check the export with onnx's reference evaluator, independent of PyTorch and tract.
    onnx.checker.check_model(str(cnn_path), full_check=True)
    evaluator = ReferenceEvaluator(str(cnn_path))
    (reference_logits,) = evaluator.run(None, {"images": x_test})
    difference = np.abs(softmax(reference_logits) - expected).max()
    print(f"onnx.reference vs PyTorch on {EXPECTED_IMAGES} images: max |dp| = {difference:.2e}")
    if difference > TOLERANCE:
        sys.exit(f"the exported model differs from PyTorch by {difference}; check the exporter")

    # Linear fixtures: fixed batch 1 with logits, dynamic batch with probabilities.
    rng = np.random.default_rng(SEED)
    weights = (rng.standard_normal((28 * 28, 10)) * LINEAR_WEIGHT_STD).astype(np.float32)
    bias = (rng.standard_normal(10) * LINEAR_WEIGHT_STD).astype(np.float32)
    onnx.save(linear_model(weights, bias, batch=1, softmax=False), args.out / "linear_batch1.onnx")
    onnx.save(linear_model(weights, bias, batch=None, softmax=True),
              args.out / "linear_softmax.onnx")
    flat = x_test[:LINEAR_EXPECTED_IMAGES].reshape(LINEAR_EXPECTED_IMAGES, -1)
    linear_expected = softmax(flat @ weights + bias)
    print(f"linear: max probability {linear_expected.max():.4f}, "
          f"min {linear_expected.min():.4f}")
    np.save(args.out / f"linear_test{LINEAR_EXPECTED_IMAGES}_probs.npy", linear_expected)

    onnx.save(rgb32_model(), args.out / "rgb32.onnx")
    for path in sorted(args.out.iterdir()):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
