//! Loading the real MNIST and Fashion-MNIST files.
//!
//! The shared copies are found through `TOPLOSS_SHARED_DATA`; see `common::shared_data`.
//! Expected counts are the published label histograms of the original files.

mod common;

use std::path::Path;

use toploss_data::{Dataset, DatasetFormat, DatasetSpec, load};

/// MNIST train labels 0..9, from the original train-labels-idx1-ubyte (sums to 60000).
const MNIST_TRAIN_COUNTS: [usize; 10] =
    [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];

/// MNIST test labels 0..9, from the original t10k-labels-idx1-ubyte (sums to 10000).
const MNIST_TEST_COUNTS: [usize; 10] = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];

/// Fingerprint of the original four MNIST .gz files with counts 60000 and 10000. Reference:
/// python3: h = hashlib.sha256(b"toploss-dataset-fingerprint-v1\n"); for each file in the
/// order train-images, train-labels, t10k-images, t10k-labels:
/// h.update(struct.pack("<Q", len(b)) + b); then h.update(struct.pack("<QQ", 60000, 10000)).
const MNIST_FINGERPRINT: &str =
    "sha256:0738747779a71886ac5df6ff2d4e12ce51ad45c232379be33bbb91915d6bbb3a";

fn histogram(labels: &[u32], classes: usize) -> Vec<usize> {
    let mut counts = vec![0; classes];
    for &label in labels {
        counts[label as usize] += 1;
    }
    counts
}

fn load_or_panic(format: DatasetFormat, dir: &Path) -> Dataset {
    load(&DatasetSpec::new(format, dir)).unwrap_or_else(|err| panic!("{err}"))
}

fn check_mnist(data: &Dataset) {
    assert_eq!(data.train.len(), 60_000);
    assert_eq!(data.test.len(), 10_000);
    assert_eq!(data.train.shape.height, 28);
    assert_eq!(data.train.shape.width, 28);
    assert_eq!(data.train.images.len(), 60_000 * 28 * 28);
    assert_eq!(histogram(&data.train.labels, 10), MNIST_TRAIN_COUNTS);
    assert_eq!(histogram(&data.test.labels, 10), MNIST_TEST_COUNTS);
    assert_eq!(
        data.classes,
        ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
    );
    assert_eq!(data.fingerprint, MNIST_FINGERPRINT);
}

#[test]
fn shared_mnist_loads() {
    let Some(dir) = common::shared_data("mnist") else {
        return;
    };
    check_mnist(&load_or_panic(DatasetFormat::Mnist, &dir));
}

#[test]
fn shared_fashion_mnist_loads() {
    let Some(dir) = common::shared_data("fashion-mnist") else {
        return;
    };
    let data = load_or_panic(DatasetFormat::FashionMnist, &dir);
    assert_eq!(data.train.len(), 60_000);
    assert_eq!(data.test.len(), 10_000);
    assert_eq!(histogram(&data.train.labels, 10), [6000; 10]);
    assert_eq!(histogram(&data.test.labels, 10), [1000; 10]);
    assert_eq!(
        data.classes,
        [
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ]
    );
}

#[test]
fn shared_fashion_mnist_inferred_by_name() {
    let Some(dir) = common::shared_data("fashion-mnist") else {
        return;
    };
    let spec: DatasetSpec = dir.to_str().unwrap().parse().unwrap();
    assert_eq!(spec.format, DatasetFormat::FashionMnist);
}

#[test]
fn bundled_mnist_loads() {
    let dir = common::bundled_mnist();
    let data = load_or_panic(DatasetFormat::Mnist, &dir);
    check_mnist(&data);

    // Sample 0 of MNIST is a 5; its top-left pixel is background (0).
    assert_eq!(data.train.labels[0], 5);
    assert_eq!(data.train.image(0)[0], 0);
}

#[test]
fn bundled_mnist_as_idx_has_ten_classes() {
    // Both splits hold every digit, so the largest label is 9 and K = 10.
    let data = load_or_panic(DatasetFormat::Idx, &common::bundled_mnist());
    assert_eq!(data.classes.len(), 10);
    assert_eq!(data.fingerprint, MNIST_FINGERPRINT);
}
