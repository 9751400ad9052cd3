//! Reader for IDX files, the format of MNIST and Fashion-MNIST.
//!
//! An IDX file is a big-endian header followed by a row-major payload. The header is a
//! magic number `0x0000TTDD`, where `TT` is the element type (`0x08` = unsigned byte) and
//! `DD` the number of dimensions, then one `u32` size per dimension. Image files are
//! `N x H x W` (magic 2051) and label files are `N` (magic 2049). The format is described at
//! the bottom of <http://yann.lecun.com/exdb/mnist/>.
//!
//! A dataset folder contains four files: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
//! `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`. Each may be gzipped or raw, with or
//! without a `.gz` suffix, and may use a dot instead of the last dash
//! (`train-images.idx3-ubyte`), as some mirrors do. Compression is detected from the gzip
//! magic bytes, so a `.gz` file that a browser already decompressed still reads.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::Error;

/// Magic number of an IDX image file: unsigned bytes (`0x08`), 3 dimensions.
pub const IMAGES_MAGIC: u32 = 0x0000_0803;

/// Magic number of an IDX label file: unsigned bytes (`0x08`), 1 dimension.
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// First two bytes of every gzip member (RFC 1952, section 2.3.1).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Upper bound on the buffer reserved up front from a gzip trailer's size field, so that a
/// corrupt trailer cannot reserve more memory than any real IDX file needs.
const MAX_RESERVE_BYTES: usize = 1 << 30;

/// One of the four files of an IDX dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `train-images-idx3-ubyte`.
    TrainImages,
    /// `train-labels-idx1-ubyte`.
    TrainLabels,
    /// `t10k-images-idx3-ubyte`.
    TestImages,
    /// `t10k-labels-idx1-ubyte`.
    TestLabels,
}

impl Role {
    /// The four roles in the order that fingerprints hash them.
    pub const ALL: [Role; 4] = [
        Role::TrainImages,
        Role::TrainLabels,
        Role::TestImages,
        Role::TestLabels,
    ];

    /// File name stem and IDX suffix, e.g. ("train-images", "idx3-ubyte").
    fn name_parts(self) -> (&'static str, &'static str) {
        match self {
            Role::TrainImages => ("train-images", "idx3-ubyte"),
            Role::TrainLabels => ("train-labels", "idx1-ubyte"),
            Role::TestImages => ("t10k-images", "idx3-ubyte"),
            Role::TestLabels => ("t10k-labels", "idx1-ubyte"),
        }
    }

    /// Human-readable name used in error messages, e.g. "train images".
    pub fn description(self) -> &'static str {
        match self {
            Role::TrainImages => "train images",
            Role::TrainLabels => "train labels",
            Role::TestImages => "test images",
            Role::TestLabels => "test labels",
        }
    }

    /// File names accepted for this role, in order of preference: the canonical gzipped
    /// name, the canonical raw name, then the dotted variants.
    pub fn candidate_names(self) -> [String; 4] {
        let (stem, suffix) = self.name_parts();
        [
            format!("{stem}-{suffix}.gz"),
            format!("{stem}-{suffix}"),
            format!("{stem}.{suffix}.gz"),
            format!("{stem}.{suffix}"),
        ]
    }
}

/// Paths of the four files of an IDX dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxFiles {
    /// The train image file.
    pub train_images: PathBuf,
    /// The train label file.
    pub train_labels: PathBuf,
    /// The test image file.
    pub test_images: PathBuf,
    /// The test label file.
    pub test_labels: PathBuf,
}

impl IdxFiles {
    /// Returns the path for one role.
    pub fn get(&self, role: Role) -> &Path {
        match role {
            Role::TrainImages => &self.train_images,
            Role::TrainLabels => &self.train_labels,
            Role::TestImages => &self.test_images,
            Role::TestLabels => &self.test_labels,
        }
    }
}

/// Decoded contents of an IDX image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// `count x height x width` pixel bytes, row-major.
    pub pixels: Vec<u8>,
}

/// Finds the file for one role in `dir`.
///
/// When several accepted names exist, the first of [`Role::candidate_names`] wins and the
/// others are logged as ignored.
pub fn find_file(dir: &Path, role: Role) -> Result<PathBuf, Error> {
    let candidates = role.candidate_names();
    let present: Vec<PathBuf> = candidates
        .iter()
        .map(|name| dir.join(name))
        .filter(|path| path.is_file())
        .collect();

    match present.split_first() {
        Some((chosen, ignored)) => {
            if !ignored.is_empty() {
                tracing::warn!(
                    chosen = %chosen.display(),
                    ignored = ?ignored,
                    "several {} files found; using the first",
                    role.description()
                );
            }
            Ok(chosen.clone())
        }
        None => Err(Error::MissingFile {
            dir: dir.to_path_buf(),
            role: role.description(),
            tried: candidates.to_vec(),
        }),
    }
}

/// Finds all four files of an IDX dataset in `dir`.
pub fn find_files(dir: &Path) -> Result<IdxFiles, Error> {
    Ok(IdxFiles {
        train_images: find_file(dir, Role::TrainImages)?,
        train_labels: find_file(dir, Role::TrainLabels)?,
        test_images: find_file(dir, Role::TestImages)?,
        test_labels: find_file(dir, Role::TestLabels)?,
    })
}

/// Returns true when `dir` contains a file for each of the four roles.
pub fn has_idx_files(dir: &Path) -> bool {
    Role::ALL.iter().all(|role| find_file(dir, *role).is_ok())
}

/// Returns true when `bytes` starts with the gzip magic bytes.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Reads a file's bytes as stored on disk.
pub fn read_stored(path: &Path) -> Result<Vec<u8>, Error> {
    fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Decompresses `stored` if it is gzipped, and returns it unchanged otherwise.
///
/// `path` is used in error messages only.
pub fn decompress(path: &Path, stored: Vec<u8>) -> Result<Vec<u8>, Error> {
    if !is_gzip(&stored) {
        if path.extension().is_some_and(|ext| ext == "gz") {
            tracing::warn!(
                "{} is named .gz but is not gzip data; reading it as a raw IDX file",
                path.display()
            );
        }
        return Ok(stored);
    }

    // The last 4 bytes of a gzip member are the uncompressed size modulo 2^32 (RFC 1952).
    let reserve = stored
        .last_chunk::<4>()
        .map_or(0, |size| u32::from_le_bytes(*size) as usize)
        .min(MAX_RESERVE_BYTES);
    let mut data = Vec::with_capacity(reserve);
    MultiGzDecoder::new(stored.as_slice())
        .read_to_end(&mut data)
        .map_err(|source| Error::Gzip {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(data)
}

/// Checks the magic number and returns the dimension sizes of an IDX header.
fn parse_header(
    path: &Path,
    data: &[u8],
    kind: &'static str,
    magic: u32,
) -> Result<Vec<u64>, Error> {
    // The low byte of the magic number is the number of dimensions.
    let ndims = (magic & 0xff) as usize;
    let header_len = 4 + 4 * ndims;
    let truncated = || Error::TruncatedHeader {
        path: path.to_path_buf(),
        kind,
        expected: header_len as u64,
        found: data.len() as u64,
    };

    let found = read_be_u32(data, 0).ok_or_else(truncated)?;
    if found != magic {
        return Err(Error::BadMagic {
            path: path.to_path_buf(),
            kind,
            expected: magic,
            found,
        });
    }

    (0..ndims)
        .map(|dim| {
            read_be_u32(data, 4 + 4 * dim)
                .map(u64::from)
                .ok_or_else(truncated)
        })
        .collect()
}

/// Reads the big-endian `u32` at `offset`, or `None` past the end.
fn read_be_u32(data: &[u8], offset: usize) -> Option<u32> {
    let bytes = data.get(offset..offset + 4)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

/// Checks that the payload after `header_len` bytes is exactly `expected` bytes long.
fn check_payload_len(
    path: &Path,
    data: &[u8],
    header_len: usize,
    expected: u64,
    declared: String,
    unit: &'static str,
) -> Result<(), Error> {
    let found = (data.len() - header_len) as u64;
    if found < expected {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            declared,
            expected,
            found,
            unit,
        });
    }
    if found > expected {
        return Err(Error::TrailingBytes {
            path: path.to_path_buf(),
            declared,
            expected,
            found,
            unit,
        });
    }
    Ok(())
}

/// Parses a decompressed IDX image file (`N x H x W` unsigned bytes).
///
/// `path` is used in error messages only.
pub fn parse_images(path: &Path, mut data: Vec<u8>) -> Result<IdxImages, Error> {
    const HEADER_LEN: usize = 16;
    let dims = parse_header(path, &data, "image", IMAGES_MAGIC)?;
    let (count, height, width) = (dims[0], dims[1], dims[2]);

    // A zero-sized image would make every later reshape meaningless.
    if height == 0 || width == 0 {
        return Err(Error::InvalidHeader {
            path: path.to_path_buf(),
            reason: format!("image size is {height}x{width}; each side needs at least 1 pixel"),
        });
    }

    // Three u32 factors can overflow u64 only in theory, but a corrupt header must not panic.
    let expected = count
        .checked_mul(height)
        .and_then(|n| n.checked_mul(width))
        .ok_or_else(|| Error::InvalidHeader {
            path: path.to_path_buf(),
            reason: format!("{count}x{height}x{width} pixels overflow a 64-bit byte count"),
        })?;
    let declared = format!("{count}x{height}x{width} = {expected} pixel bytes");
    check_payload_len(path, &data, HEADER_LEN, expected, declared, "pixel bytes")?;

    // The payload length matched the header, so every size fits in memory and in usize.
    data.drain(..HEADER_LEN);
    Ok(IdxImages {
        count: count as usize,
        height: height as usize,
        width: width as usize,
        pixels: data,
    })
}

/// Parses a decompressed IDX label file (`N` unsigned bytes).
///
/// `path` is used in error messages only.
pub fn parse_labels(path: &Path, mut data: Vec<u8>) -> Result<Vec<u8>, Error> {
    const HEADER_LEN: usize = 8;
    let dims = parse_header(path, &data, "label", LABELS_MAGIC)?;
    let count = dims[0];

    let declared = format!("{count} labels of 1 byte each");
    check_payload_len(path, &data, HEADER_LEN, count, declared, "label bytes")?;

    data.drain(..HEADER_LEN);
    Ok(data)
}

/// Reads, decompresses and parses an IDX image file.
pub fn read_images(path: &Path) -> Result<IdxImages, Error> {
    let data = decompress(path, read_stored(path)?)?;
    parse_images(path, data)
}

/// Reads, decompresses and parses an IDX label file.
pub fn read_labels(path: &Path) -> Result<Vec<u8>, Error> {
    let data = decompress(path, read_stored(path)?)?;
    parse_labels(path, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    /// Builds an IDX file: magic, then each size as a big-endian u32, then the payload.
    fn idx_bytes(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut bytes = magic.to_be_bytes().to_vec();
        for dim in dims {
            bytes.extend_from_slice(&dim.to_be_bytes());
        }
        bytes.extend_from_slice(payload);
        bytes
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn magic_numbers_match_decimal() {
        // 0x0803 = 8 * 256 + 3 = 2051; 0x0801 = 8 * 256 + 1 = 2049.
        assert_eq!(IMAGES_MAGIC, 2051);
        assert_eq!(LABELS_MAGIC, 2049);
    }

    #[test]
    fn parse_images_good() {
        // Two 2x3 images: 2 * 2 * 3 = 12 pixel bytes.
        let pixels: Vec<u8> = (0..12).collect();
        let images = parse_images(Path::new("x"), idx_bytes(2051, &[2, 2, 3], &pixels)).unwrap();
        assert_eq!(images.count, 2);
        assert_eq!(images.height, 2);
        assert_eq!(images.width, 3);
        assert_eq!(images.pixels, pixels);
    }

    #[test]
    fn parse_images_truncated_names_numbers() {
        // The header declares 2x2x3 = 12 pixel bytes, but 5 are present.
        let data = idx_bytes(2051, &[2, 2, 3], &[0; 5]);
        let message = parse_images(Path::new("imgs"), data)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("imgs: truncated: header says 2x2x3 = 12 pixel bytes, found 5"),
            "{message}"
        );
    }

    #[test]
    fn parse_images_trailing_bytes() {
        // 12 pixel bytes declared, 14 present: 2 too many.
        let data = idx_bytes(2051, &[2, 2, 3], &[0; 14]);
        let err = parse_images(Path::new("imgs"), data).unwrap_err();
        assert!(matches!(
            err,
            Error::TrailingBytes {
                expected: 12,
                found: 14,
                ..
            }
        ));
        assert!(err.to_string().contains("(2 bytes too many)"), "{err}");
    }

    #[test]
    fn parse_images_zero_width_rejected() {
        let data = idx_bytes(2051, &[2, 2, 0], &[]);
        let message = parse_images(Path::new("imgs"), data)
            .unwrap_err()
            .to_string();
        assert!(message.contains("image size is 2x0"), "{message}");
    }

    #[test]
    fn parse_images_short_header() {
        // 10 bytes: the magic and 1.5 of the 3 sizes; the header needs 4 + 3 * 4 = 16.
        let data = idx_bytes(2051, &[2], &[0, 0]);
        let err = parse_images(Path::new("imgs"), data).unwrap_err();
        assert!(matches!(
            err,
            Error::TruncatedHeader {
                expected: 16,
                found: 10,
                ..
            }
        ));
    }

    #[test]
    fn parse_images_label_magic_hints_swap() {
        let data = idx_bytes(2049, &[2], &[0, 1]);
        let message = parse_images(Path::new("imgs"), data)
            .unwrap_err()
            .to_string();
        assert!(message.contains("magic number is 2049"), "{message}");
        assert!(message.contains("expected 2051"), "{message}");
        assert!(message.contains("swapped"), "{message}");
    }

    #[test]
    fn parse_labels_good_and_truncated() {
        let labels = parse_labels(Path::new("l"), idx_bytes(2049, &[3], &[7, 0, 9])).unwrap();
        assert_eq!(labels, vec![7, 0, 9]);

        let message = parse_labels(Path::new("l"), idx_bytes(2049, &[3], &[7]))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("header says 3 labels of 1 byte each, found 1 label bytes"),
            "{message}"
        );
    }

    #[test]
    fn decompress_detects_gzip_by_magic() {
        let raw = idx_bytes(2049, &[2], &[1, 2]);
        // A gzipped file without a .gz name and a raw file with one both decode.
        assert_eq!(decompress(Path::new("plain"), gzip(&raw)).unwrap(), raw);
        assert_eq!(decompress(Path::new("raw.gz"), raw.clone()).unwrap(), raw);
    }

    #[test]
    fn decompress_corrupt_gzip_names_file() {
        let mut compressed = gzip(&idx_bytes(2049, &[4], &[1, 2, 3, 4]));
        // Cut the stream in half so the deflate data ends early.
        compressed.truncate(compressed.len() / 2);
        let message = decompress(Path::new("labels.gz"), compressed)
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("labels.gz: corrupt gzip data"),
            "{message}"
        );
    }

    #[test]
    fn candidate_names_cover_both_spellings() {
        assert_eq!(
            Role::TestLabels.candidate_names(),
            [
                "t10k-labels-idx1-ubyte.gz",
                "t10k-labels-idx1-ubyte",
                "t10k-labels.idx1-ubyte.gz",
                "t10k-labels.idx1-ubyte",
            ]
        );
    }
}
