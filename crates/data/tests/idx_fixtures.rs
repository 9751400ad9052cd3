//! Loading tiny hand-made IDX datasets, good and broken, written into temp folders.

mod common;

use std::fs;
use std::path::Path;

use common::{Tiny, gzip, idx_bytes};
use tempfile::TempDir;
use toploss_data::{DatasetFormat, DatasetSpec, Error, load};

fn load_dir(format: DatasetFormat, dir: &Path) -> Result<toploss_data::Dataset, Error> {
    load(&DatasetSpec::new(format, dir))
}

/// Writes `tiny` (gzipped) and returns the folder.
fn write_gz(tiny: &Tiny) -> TempDir {
    let dir = TempDir::new().unwrap();
    tiny.write(dir.path(), true);
    dir
}

fn error_message(tiny: &Tiny) -> String {
    let dir = write_gz(tiny);
    load_dir(DatasetFormat::Mnist, dir.path())
        .unwrap_err()
        .to_string()
}

#[test]
fn load_gzipped_fixture() {
    let dir = write_gz(&Tiny::new());
    let data = load_dir(DatasetFormat::Mnist, dir.path()).unwrap();

    assert_eq!(data.train.len(), 3);
    assert_eq!(data.test.len(), 2);
    assert_eq!(data.train.shape.channels, 1);
    assert_eq!(data.train.shape.height, 2);
    assert_eq!(data.train.shape.width, 2);
    // Train image 2 is pixel values 8..12; test image 1 is 104..108.
    assert_eq!(data.train.image(2), &[8, 9, 10, 11]);
    assert_eq!(data.test.image(1), &[104, 105, 106, 107]);
    assert_eq!(data.train.labels, vec![0, 1, 2]);
    assert_eq!(data.test.labels, vec![2, 0]);
    assert_eq!(data.classes.len(), 10);
    assert!(data.fingerprint.starts_with("sha256:"));
}

#[test]
fn load_raw_equals_gzipped() {
    let tiny = Tiny::new();
    let gz = write_gz(&tiny);
    let raw = TempDir::new().unwrap();
    tiny.write(raw.path(), false);

    let from_gz = load_dir(DatasetFormat::Mnist, gz.path()).unwrap();
    let from_raw = load_dir(DatasetFormat::Mnist, raw.path()).unwrap();
    assert_eq!(from_gz.train, from_raw.train);
    assert_eq!(from_gz.test, from_raw.test);
    // The fingerprint covers the stored bytes, which differ between the two.
    assert_ne!(from_gz.fingerprint, from_raw.fingerprint);
}

#[test]
fn load_dotted_names_and_misnamed_gzip() {
    // Dotted names, as some mirrors use. Train images are gzipped without a .gz suffix and
    // train labels are raw with one, so only the magic bytes reveal the compression.
    let tiny = Tiny::new();
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    fs::write(d.join("train-images.idx3-ubyte"), gzip(&tiny.train_images)).unwrap();
    fs::write(d.join("train-labels.idx1-ubyte.gz"), &tiny.train_labels).unwrap();
    fs::write(d.join("t10k-images.idx3-ubyte.gz"), gzip(&tiny.test_images)).unwrap();
    fs::write(d.join("t10k-labels.idx1-ubyte"), &tiny.test_labels).unwrap();

    let data = load_dir(DatasetFormat::Idx, d).unwrap();
    assert_eq!(data.train.labels, vec![0, 1, 2]);
    assert_eq!(data.train.image(0), &[0, 1, 2, 3]);
}

#[test]
fn idx_classes_from_max_label() {
    // Labels are 0, 1, 2 (train) and 2, 0 (test): max 2, so K = 3.
    let dir = write_gz(&Tiny::new());
    let data = load_dir(DatasetFormat::Idx, dir.path()).unwrap();
    assert_eq!(data.classes, vec!["0", "1", "2"]);
}

#[test]
fn idx_classes_count_test_labels() {
    // The largest label (11) is in the test split only: K = 12. As mnist it is rejected.
    let mut tiny = Tiny::new();
    tiny.test_labels = idx_bytes(2049, &[2], &[11, 0]);
    let dir = write_gz(&tiny);
    let data = load_dir(DatasetFormat::Idx, dir.path()).unwrap();
    assert_eq!(data.classes.len(), 12);
    assert_eq!(data.classes[11], "11");

    let err = load_dir(DatasetFormat::Mnist, dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LabelOutOfRange {
                id: 0,
                label: 11,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn fashion_mnist_class_names() {
    let dir = write_gz(&Tiny::new());
    let data = load_dir(DatasetFormat::FashionMnist, dir.path()).unwrap();
    assert_eq!(data.classes[0], "T-shirt/top");
    assert_eq!(data.classes[9], "Ankle boot");
}

#[test]
fn truncated_images_names_file_and_numbers() {
    // The header declares 3x2x2 = 12 pixel bytes, but only 5 follow.
    let mut tiny = Tiny::new();
    tiny.train_images = idx_bytes(2051, &[3, 2, 2], &[0; 5]);
    let message = error_message(&tiny);
    assert!(
        message.contains("train-images-idx3-ubyte.gz: truncated: header says 3x2x2 = 12 pixel bytes, found 5 pixel bytes"),
        "{message}"
    );
}

#[test]
fn truncated_labels_names_file_and_numbers() {
    let mut tiny = Tiny::new();
    tiny.test_labels = idx_bytes(2049, &[2], &[1]);
    let message = error_message(&tiny);
    assert!(
        message.contains("t10k-labels-idx1-ubyte.gz: truncated: header says 2 labels of 1 byte each, found 1 label bytes"),
        "{message}"
    );
}

#[test]
fn trailing_bytes_rejected() {
    // 12 pixel bytes declared, 15 present.
    let mut tiny = Tiny::new();
    tiny.train_images = idx_bytes(2051, &[3, 2, 2], &[0; 15]);
    let message = error_message(&tiny);
    assert!(
        message.contains("train-images-idx3-ubyte.gz: trailing data"),
        "{message}"
    );
    assert!(
        message.contains("found 15 pixel bytes (3 bytes too many)"),
        "{message}"
    );
}

#[test]
fn wrong_magic_names_both_numbers() {
    // 2052 would be 4 dimensions of unsigned bytes.
    let mut tiny = Tiny::new();
    tiny.test_images = idx_bytes(2052, &[2, 2, 2, 1], &[0; 8]);
    let message = error_message(&tiny);
    assert!(
        message.contains("t10k-images-idx3-ubyte.gz: not an IDX image file"),
        "{message}"
    );
    assert!(
        message.contains("magic number is 2052 (0x00000804)"),
        "{message}"
    );
    assert!(message.contains("expected 2051 (0x00000803)"), "{message}");
}

#[test]
fn count_mismatch_names_both_files() {
    // 3 train images but 2 train labels.
    let mut tiny = Tiny::new();
    tiny.train_labels = idx_bytes(2049, &[2], &[0, 1]);
    let message = error_message(&tiny);
    assert!(
        message.contains("train-images-idx3-ubyte.gz has 3 images"),
        "{message}"
    );
    assert!(
        message.contains("train-labels-idx1-ubyte.gz has 2 labels"),
        "{message}"
    );
}

#[test]
fn label_out_of_range_names_id_and_label() {
    // Id 1 has label 10, but mnist labels are 0..=9.
    let mut tiny = Tiny::new();
    tiny.train_labels = idx_bytes(2049, &[3], &[0, 10, 2]);
    let message = error_message(&tiny);
    assert!(
        message.contains("train-labels-idx1-ubyte.gz: label 10 of id 1 is out of range"),
        "{message}"
    );
    assert!(
        message.contains("mnist has 10 classes (labels 0..=9)"),
        "{message}"
    );
    assert!(message.contains("idx:PATH"), "{message}");
}

#[test]
fn corrupt_gzip_names_file() {
    let tiny = Tiny::new();
    let dir = write_gz(&tiny);
    // Keep the gzip header but replace the deflate stream with bytes that are not deflate.
    let path = dir.path().join("t10k-images-idx3-ubyte.gz");
    let mut bytes = fs::read(&path).unwrap();
    let len = bytes.len();
    bytes[10..len].fill(0xff);
    fs::write(&path, bytes).unwrap();

    let message = load_dir(DatasetFormat::Mnist, dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("t10k-images-idx3-ubyte.gz: corrupt gzip data"),
        "{message}"
    );
}

#[test]
fn shape_mismatch_between_splits() {
    // Test images 2x1 against train images 2x2.
    let mut tiny = Tiny::new();
    tiny.test_images = idx_bytes(2051, &[2, 2, 1], &[0; 4]);
    let message = error_message(&tiny);
    assert!(message.contains("contains 2x2 images"), "{message}");
    assert!(message.contains("contains 2x1 images"), "{message}");
}

#[test]
fn empty_split_rejected() {
    let mut tiny = Tiny::new();
    tiny.test_images = idx_bytes(2051, &[0, 2, 2], &[]);
    tiny.test_labels = idx_bytes(2049, &[0], &[]);
    let message = error_message(&tiny);
    assert!(
        message.contains("t10k-images-idx3-ubyte.gz: the file contains 0 samples"),
        "{message}"
    );
}

#[test]
fn missing_file_lists_names_tried() {
    let dir = write_gz(&Tiny::new());
    fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let message = load_dir(DatasetFormat::Mnist, dir.path())
        .unwrap_err()
        .to_string();
    assert!(message.contains("no test labels file found"), "{message}");
    for name in [
        "t10k-labels-idx1-ubyte.gz",
        "t10k-labels-idx1-ubyte",
        "t10k-labels.idx1-ubyte.gz",
        "t10k-labels.idx1-ubyte",
    ] {
        assert!(message.contains(name), "{name} missing from: {message}");
    }
}

#[test]
fn path_that_is_a_file_rejected() {
    let dir = write_gz(&Tiny::new());
    let file = dir.path().join("train-labels-idx1-ubyte.gz");
    let err = load_dir(DatasetFormat::Mnist, &file).unwrap_err();
    assert!(matches!(err, Error::NotAFolder { .. }), "{err}");
}

#[test]
fn missing_folder_names_path() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("nope");
    let err = load_dir(DatasetFormat::Mnist, &missing).unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn bare_path_with_idx_files_is_idx() {
    let dir = write_gz(&Tiny::new());
    let spec: DatasetSpec = dir.path().to_str().unwrap().parse().unwrap();
    assert_eq!(spec.format, DatasetFormat::Idx);
}

#[test]
fn bare_path_without_files_cannot_infer() {
    let dir = TempDir::new().unwrap();
    let err = dir
        .path()
        .to_str()
        .unwrap()
        .parse::<DatasetSpec>()
        .unwrap_err();
    assert!(matches!(err, Error::CannotInferFormat { .. }), "{err}");
    assert!(err.to_string().contains("FORMAT:PATH"), "{err}");
}

#[test]
fn fingerprint_stable_and_byte_sensitive() {
    let tiny = Tiny::new();
    let first = write_gz(&tiny);
    let second = write_gz(&tiny);
    let a = load_dir(DatasetFormat::Mnist, first.path()).unwrap();
    let b = load_dir(DatasetFormat::Mnist, second.path()).unwrap();
    // Same bytes in another folder give the same fingerprint.
    assert_eq!(a.fingerprint, b.fingerprint);

    // Change one byte: train pixel 5 (after the 16-byte header) goes from 5 to 6.
    let mut changed = Tiny::new();
    changed.train_images[16 + 5] = 6;
    let third = write_gz(&changed);
    let c = load_dir(DatasetFormat::Mnist, third.path()).unwrap();
    assert_ne!(a.fingerprint, c.fingerprint);
}

#[test]
fn fingerprint_ignores_format_and_truncate() {
    let dir = write_gz(&Tiny::new());
    let mnist = load_dir(DatasetFormat::Mnist, dir.path()).unwrap();
    let mut idx = load_dir(DatasetFormat::Idx, dir.path()).unwrap();
    idx.train.truncate(1);
    // The fingerprint identifies the files, whatever format or subset a run uses.
    assert_eq!(mnist.fingerprint, idx.fingerprint);
}
