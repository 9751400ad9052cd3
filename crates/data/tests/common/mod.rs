//! Helpers shared by the integration tests: tiny IDX files and the real-data folder.

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

/// Builds an IDX file: magic, each size as a big-endian u32, then the payload.
pub fn idx_bytes(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut bytes = magic.to_be_bytes().to_vec();
    for dim in dims {
        bytes.extend_from_slice(&dim.to_be_bytes());
    }
    bytes.extend_from_slice(payload);
    bytes
}

/// Gzips `bytes` in memory.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The four decompressed files of a tiny valid dataset.
///
/// Train: 3 images of 2x2 pixels, pixel values 0..12 in order, labels 0, 1, 2.
/// Test: 2 images of 2x2 pixels, pixel values 100..108, labels 2, 0.
pub struct Tiny {
    pub train_images: Vec<u8>,
    pub train_labels: Vec<u8>,
    pub test_images: Vec<u8>,
    pub test_labels: Vec<u8>,
}

impl Tiny {
    pub fn new() -> Self {
        Self {
            train_images: idx_bytes(2051, &[3, 2, 2], &(0..12).collect::<Vec<u8>>()),
            train_labels: idx_bytes(2049, &[3], &[0, 1, 2]),
            test_images: idx_bytes(2051, &[2, 2, 2], &(100..108).collect::<Vec<u8>>()),
            test_labels: idx_bytes(2049, &[2], &[2, 0]),
        }
    }

    /// Writes the four files into `dir` under the canonical names, gzipped when `gz` is true.
    pub fn write(&self, dir: &Path, gz: bool) {
        let files = [
            ("train-images-idx3-ubyte", &self.train_images),
            ("train-labels-idx1-ubyte", &self.train_labels),
            ("t10k-images-idx3-ubyte", &self.test_images),
            ("t10k-labels-idx1-ubyte", &self.test_labels),
        ];
        for (name, bytes) in files {
            if gz {
                fs::write(dir.join(format!("{name}.gz")), gzip(bytes)).unwrap();
            } else {
                fs::write(dir.join(name), bytes).unwrap();
            }
        }
    }
}

/// Returns the real-data folder from `TOPLOSS_SHARED_DATA`, or `None` (with a note) when unset.
///
/// # Panics
///
/// When the variable is set but `subfolder` is missing, so that CI fails loudly.
pub fn shared_data(subfolder: &str) -> Option<PathBuf> {
    let Some(root) = std::env::var_os("TOPLOSS_SHARED_DATA") else {
        eprintln!("note: TOPLOSS_SHARED_DATA is unset; skipping the {subfolder} real-data test");
        return None;
    };
    let dir = PathBuf::from(root).join(subfolder);
    assert!(
        dir.is_dir(),
        "TOPLOSS_SHARED_DATA is set but {} is missing",
        dir.display()
    );
    Some(dir)
}

/// Returns the folder of the MNIST copy bundled in the repository.
pub fn bundled_mnist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
}
