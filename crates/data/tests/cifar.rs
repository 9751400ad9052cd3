//! `cifar10:` on tiny batch files written in the exact binary record format.

use std::fs;
use std::path::Path;

use toploss_data::{DatasetFormat, DatasetSpec, Error, load};

/// 1 label byte + 3 x 32 x 32 pixel bytes.
const RECORD: usize = 3073;
const PLANE: usize = 32 * 32;

/// Builds one record whose pixel at plane `c`, row `y`, column `x` is `(c * 7 + y + x + seed) % 256`,
/// so that every position has a known, mostly distinct value.
fn record(label: u8, seed: usize) -> Vec<u8> {
    let mut bytes = vec![label];
    for c in 0..3 {
        for y in 0..32 {
            for x in 0..32 {
                bytes.push(((c * 7 + y + x + seed) % 256) as u8);
            }
        }
    }
    bytes
}

fn batch(labels: &[u8], first_seed: usize) -> Vec<u8> {
    labels
        .iter()
        .enumerate()
        .flat_map(|(i, &label)| record(label, first_seed + i))
        .collect()
}

const META: &str = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";

/// Writes data_batch_1.bin (5 records), data_batch_2.bin (5), test_batch.bin (3) and the
/// class-name file into `dir`.
fn write_tiny(dir: &Path) {
    fs::write(dir.join("data_batch_1.bin"), batch(&[0, 1, 2, 3, 4], 0)).unwrap();
    fs::write(dir.join("data_batch_2.bin"), batch(&[5, 6, 7, 8, 9], 5)).unwrap();
    fs::write(dir.join("test_batch.bin"), batch(&[9, 0, 3], 100)).unwrap();
    fs::write(dir.join("batches.meta.txt"), META).unwrap();
}

fn load_dir(dir: &Path) -> Result<toploss_data::Dataset, Error> {
    load(&DatasetSpec::new(DatasetFormat::Cifar10, dir))
}

#[test]
fn cifar_loads_labels_pixels_classes() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny(dir.path());
    let data = load_dir(dir.path()).unwrap();

    // Train: 5 + 5 records across the two batches, in batch order.
    assert_eq!(data.train.len(), 10);
    assert_eq!(data.test.len(), 3);
    assert_eq!(data.train.labels, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(data.test.labels, [9, 0, 3]);
    assert_eq!(data.classes[0], "airplane");
    assert_eq!(data.classes[9], "truck");
    assert_eq!(data.classes.len(), 10);
    assert_eq!(data.train.shape.channels, 3);
    assert_eq!(data.train.shape.height, 32);
    assert_eq!(data.train.paths, None);

    // CHW order: train id 6 has seed 6; green plane (c = 1), row 2, column 3 is at
    // 1 * 1024 + 2 * 32 + 3 = 1091 and contains (1 * 7 + 2 + 3 + 6) % 256 = 18.
    let image = data.train.image(6);
    assert_eq!(image.len(), 3 * PLANE);
    assert_eq!(image[PLANE + 2 * 32 + 3], 18);
    // Blue plane, row 31, column 31 of test id 2 (seed 102): (14 + 31 + 31 + 102) % 256 = 178.
    assert_eq!(data.test.image(2)[2 * PLANE + 31 * 32 + 31], 178);
    assert!(data.fingerprint.starts_with("sha256:"));
}

#[test]
fn cifar_accepts_archive_subfolder() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("cifar-10-batches-bin");
    fs::create_dir(&nested).unwrap();
    write_tiny(&nested);
    let data = load_dir(dir.path()).unwrap();
    assert_eq!(data.train.len(), 10);
}

#[test]
fn cifar_fingerprint_sees_bytes() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny(dir.path());
    let before = load_dir(dir.path()).unwrap().fingerprint;
    fs::write(dir.path().join("test_batch.bin"), batch(&[9, 0, 4], 100)).unwrap();
    assert_ne!(load_dir(dir.path()).unwrap().fingerprint, before);
}

#[test]
fn cifar_truncated_record_names_file_size_remainder() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny(dir.path());
    // Two whole records and 1000 bytes of a third: 2 * 3073 + 1000 = 7146 bytes, and
    // 7146 % 3073 = 1000.
    let mut bytes = batch(&[1, 2, 3], 0);
    bytes.truncate(2 * RECORD + 1000);
    fs::write(dir.path().join("data_batch_2.bin"), bytes).unwrap();

    let message = load_dir(dir.path()).unwrap_err().to_string();
    assert!(message.contains("data_batch_2.bin"), "{message}");
    assert!(message.contains("size 7146 bytes"), "{message}");
    assert!(message.contains("1000 bytes left over"), "{message}");
}

#[test]
fn cifar_label_10_names_file_and_value() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny(dir.path());
    fs::write(dir.path().join("test_batch.bin"), batch(&[1, 10], 0)).unwrap();

    let message = load_dir(dir.path()).unwrap_err().to_string();
    assert!(message.contains("test_batch.bin"), "{message}");
    assert!(message.contains("record 1"), "{message}");
    assert!(message.contains("label 10"), "{message}");
}

#[test]
fn cifar_missing_test_batch_named() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny(dir.path());
    fs::remove_file(dir.path().join("test_batch.bin")).unwrap();

    let message = load_dir(dir.path()).unwrap_err().to_string();
    assert!(message.contains("test_batch.bin"), "{message}");
    assert!(
        message.contains("no CIFAR-10 test batch file found"),
        "{message}"
    );
}

#[test]
fn cifar_gap_in_batches_rejected() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny(dir.path());
    fs::rename(
        dir.path().join("data_batch_2.bin"),
        dir.path().join("data_batch_3.bin"),
    )
    .unwrap();

    let message = load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        message.contains("data_batch_3.bin exists but data_batch_2.bin is missing"),
        "{message}"
    );
}

#[test]
fn cifar_spec_parses() {
    let spec: DatasetSpec = "cifar10:data/cifar".parse().unwrap();
    assert_eq!(spec.format, DatasetFormat::Cifar10);
}

#[test]
fn cifar_inferred_from_bare_path() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("cifar-10-batches-bin");
    fs::create_dir(&nested).unwrap();
    write_tiny(&nested);
    let spec: DatasetSpec = dir.path().to_str().unwrap().parse().unwrap();
    assert_eq!(spec.format, DatasetFormat::Cifar10);
}
