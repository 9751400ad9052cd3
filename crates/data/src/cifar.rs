//! Reader for the binary version of CIFAR-10.
//!
//! The dataset folder (or its `cifar-10-batches-bin/` subfolder, as the published archive
//! unpacks) contains `data_batch_1.bin` to `data_batch_5.bin` (the train split, in that
//! order), `test_batch.bin` and `batches.meta.txt`, the ten class names one per line. Each
//! batch is a sequence of 3073-byte records: one label byte (0 to 9), then 3072 pixel bytes
//! as three 32x32 planes, red, green, blue, each row-major. That is already the `C x H x W`
//! layout of a [`Split`], so records are copied as they are. The format is described at
//! <https://www.cs.toronto.edu/~kriz/cifar.html>.
//!
//! A sample's id is its record position: for the train split, counted across the data
//! batches in order. Fewer than five data batches are accepted (with a warning) as long as
//! they are numbered from 1 without a gap, so that a subset of the train split loads.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::fingerprint::Fingerprinter;
use crate::folder::LoadReport;
use crate::{Dataset, DatasetSpec, Error, ImageShape, Split};

/// Side of a CIFAR-10 image in pixels.
pub const SIDE: usize = 32;

/// Pixel bytes of one record: 3 planes of 32x32.
pub const PIXEL_BYTES: usize = 3 * SIDE * SIDE;

/// Bytes of one record: the label byte plus the pixels.
pub const RECORD_BYTES: usize = 1 + PIXEL_BYTES;

/// Number of data batches in the published train split.
pub const DATA_BATCHES: usize = 5;

/// Subfolder that the published archive unpacks into.
pub const ARCHIVE_FOLDER: &str = "cifar-10-batches-bin";

/// Test batch file name.
pub const TEST_BATCH: &str = "test_batch.bin";

/// Class-name file.
pub const META_FILE: &str = "batches.meta.txt";

/// Number of CIFAR-10 classes.
const CLASSES: usize = 10;

/// The class names in label order, as `batches.meta.txt` of the published archive lists them;
/// used when that file is missing.
const CLASS_NAMES: [&str; CLASSES] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Returns the folder that contains the batches: `dir` itself, or `dir/cifar-10-batches-bin`
/// when only that one contains `data_batch_1.bin`.
pub fn batches_dir(dir: &Path) -> PathBuf {
    let nested = dir.join(ARCHIVE_FOLDER);
    if !dir.join(data_batch_name(1)).is_file() && nested.join(data_batch_name(1)).is_file() {
        nested
    } else {
        dir.to_path_buf()
    }
}

/// Returns true when `dir` looks like a CIFAR-10 folder, for format inference.
pub fn has_cifar_files(dir: &Path) -> bool {
    let dir = batches_dir(dir);
    dir.join(data_batch_name(1)).is_file() && dir.join(TEST_BATCH).is_file()
}

fn data_batch_name(number: usize) -> String {
    format!("data_batch_{number}.bin")
}

/// Loads a CIFAR-10 folder.
pub fn load(spec: &DatasetSpec) -> Result<Dataset, Error> {
    let started = Instant::now();
    if !spec.path.is_dir() {
        return Err(Error::InvalidDataset {
            path: spec.path.clone(),
            reason: format!(
                "not a folder; cifar10:PATH expects the folder with data_batch_1.bin .. \
                 data_batch_{DATA_BATCHES}.bin and {TEST_BATCH} (or its {ARCHIVE_FOLDER}/ \
                 subfolder)"
            ),
        });
    }
    let dir = batches_dir(&spec.path);
    let train_files = find_data_batches(&dir)?;
    let test_file = dir.join(TEST_BATCH);
    if !test_file.is_file() {
        return Err(Error::MissingFile {
            dir: dir.clone(),
            role: "CIFAR-10 test batch",
            tried: vec![TEST_BATCH.to_string()],
        });
    }

    // Read and hash the batches in id order, then the class-name file.
    let mut fingerprinter = Fingerprinter::new();
    let mut train = empty_split();
    for path in &train_files {
        let bytes = read(path)?;
        fingerprinter.add_file(&bytes);
        append_records(path, &bytes, &mut train)?;
    }
    let mut test = empty_split();
    let bytes = read(&test_file)?;
    fingerprinter.add_file(&bytes);
    append_records(&test_file, &bytes, &mut test)?;

    let meta_path = dir.join(META_FILE);
    let classes = if meta_path.is_file() {
        let bytes = read(&meta_path)?;
        fingerprinter.add_file(&bytes);
        parse_class_names(&meta_path, &bytes)?
    } else {
        tracing::warn!(
            path = %meta_path.display(),
            "no CIFAR-10 class-name file; using the published class names"
        );
        CLASS_NAMES.iter().map(|name| name.to_string()).collect()
    };

    let fingerprint = fingerprinter.finish(&[train.len() as u64, test.len() as u64]);
    tracing::info!(
        path = %dir.display(),
        train = train.len(),
        test = test.len(),
        batches = train_files.len(),
        millis = started.elapsed().as_millis() as u64,
        "loaded CIFAR-10"
    );
    Ok(Dataset {
        format: spec.format,
        path: spec.path.clone(),
        classes,
        train,
        test,
        fingerprint,
        generated_split: None,
        report: LoadReport::default(),
    })
}

/// Finds `data_batch_1.bin` and the batches that follow it without a gap.
fn find_data_batches(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let present: Vec<bool> = (1..=DATA_BATCHES)
        .map(|number| dir.join(data_batch_name(number)).is_file())
        .collect();
    if !present[0] {
        return Err(Error::MissingFile {
            dir: dir.to_path_buf(),
            role: "CIFAR-10 train batch",
            tried: vec![data_batch_name(1)],
        });
    }

    let count = present.iter().take_while(|&&is_present| is_present).count();
    if let Some(after_gap) = present[count..].iter().position(|&is_present| is_present) {
        return Err(Error::InvalidDataset {
            path: dir.to_path_buf(),
            reason: format!(
                "{} exists but {} is missing; restore the missing batch or remove the later ones",
                data_batch_name(count + after_gap + 1),
                data_batch_name(count + 1)
            ),
        });
    }
    if count < DATA_BATCHES {
        tracing::warn!(
            path = %dir.display(),
            found = count,
            expected = DATA_BATCHES,
            "only some CIFAR-10 data batches are present; the train split is a subset"
        );
    }
    Ok((1..=count)
        .map(|number| dir.join(data_batch_name(number)))
        .collect())
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn empty_split() -> Split {
    Split {
        images: Vec::new(),
        labels: Vec::new(),
        shape: ImageShape {
            channels: 3,
            height: SIDE,
            width: SIDE,
        },
        paths: None,
    }
}

/// Checks a batch's size and labels and appends its records to `split`.
fn append_records(path: &Path, bytes: &[u8], split: &mut Split) -> Result<(), Error> {
    let remainder = bytes.len() % RECORD_BYTES;
    if remainder != 0 {
        return Err(Error::CifarRecordSize {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            remainder: remainder as u64,
        });
    }
    if bytes.is_empty() {
        return Err(Error::EmptySplit {
            path: path.to_path_buf(),
        });
    }

    split
        .images
        .reserve(bytes.len() / RECORD_BYTES * PIXEL_BYTES);
    for (record_index, record) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        let label = record[0];
        if usize::from(label) >= CLASSES {
            return Err(Error::InvalidDataset {
                path: path.to_path_buf(),
                reason: format!(
                    "record {record_index} (byte offset {}) has label {label}; CIFAR-10 labels \
                     are 0 to 9, so the file is corrupt or not a CIFAR-10 batch (CIFAR-100 \
                     batches have 2 label bytes per record)",
                    record_index * RECORD_BYTES
                ),
            });
        }
        split.labels.push(u32::from(label));
        split.images.extend_from_slice(&record[1..]);
    }
    Ok(())
}

/// Parses `batches.meta.txt`: ten non-empty lines, blank lines ignored, whitespace trimmed.
fn parse_class_names(path: &Path, bytes: &[u8]) -> Result<Vec<String>, Error> {
    let text = std::str::from_utf8(bytes).map_err(|error| Error::InvalidDataset {
        path: path.to_path_buf(),
        reason: format!("not UTF-8 text ({error}); expected one class name per line"),
    })?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect();
    if names.len() != CLASSES {
        return Err(Error::InvalidDataset {
            path: path.to_path_buf(),
            reason: format!(
                "found {} class names, expected {CLASSES} (one per line)",
                names.len()
            ),
        });
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(label: u8, fill: u8) -> Vec<u8> {
        let mut bytes = vec![label];
        bytes.extend(std::iter::repeat_n(fill, PIXEL_BYTES));
        bytes
    }

    #[test]
    fn record_size_is_3073() {
        // 1 label byte + 3 planes x 32 x 32 = 1 + 3072.
        assert_eq!(RECORD_BYTES, 3073);
    }

    #[test]
    fn append_records_copies_pixels() {
        let bytes = [record(3, 7), record(9, 8)].concat();
        let mut split = empty_split();
        append_records(Path::new("b.bin"), &bytes, &mut split).unwrap();
        assert_eq!(split.labels, vec![3, 9]);
        assert_eq!(split.image(1), &[8; PIXEL_BYTES][..]);
    }

    #[test]
    fn append_records_rejects_partial_record() {
        // 3073 + 100 bytes: 100 left over.
        let mut bytes = record(0, 0);
        bytes.extend_from_slice(&[0; 100]);
        let err = append_records(Path::new("b.bin"), &bytes, &mut empty_split()).unwrap_err();
        assert!(matches!(
            err,
            Error::CifarRecordSize {
                size: 3173,
                remainder: 100,
                ..
            }
        ));
    }

    #[test]
    fn class_names_need_ten_lines() {
        let message = parse_class_names(Path::new("m.txt"), b"a\nb\n\n")
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("found 2 class names, expected 10"),
            "{message}"
        );
    }
}
