//! The error type of `toploss-data`.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while reading a dataset or a corrections file.
///
/// Each message names the file, the value that was expected and the value that was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened or read.
    #[error("failed to read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },

    /// A file could not be written or moved into place.
    #[error("failed to write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },

    /// The dataset path is not a folder.
    #[error(
        "{}: not a folder; {format}:PATH expects a folder that contains the four IDX files \
         (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, \
         t10k-labels-idx1-ubyte, each raw or .gz)",
        path.display()
    )]
    NotAFolder {
        /// The path given.
        path: PathBuf,
        /// The dataset format that was requested.
        format: String,
    },

    /// One of the four IDX files is missing from the dataset folder.
    #[error("{}: no {role} file found; tried {}", dir.display(), tried.join(", "))]
    MissingFile {
        /// The dataset folder.
        dir: PathBuf,
        /// Role of the missing file, e.g. "train images".
        role: &'static str,
        /// The file names that were looked for, in order.
        tried: Vec<String>,
    },

    /// A file starts with the gzip magic bytes but does not decompress.
    #[error("{}: corrupt gzip data: {source}; download the file again", path.display())]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decompressor's error.
        source: io::Error,
    },

    /// An IDX file has the wrong magic number.
    #[error(
        "{}: not an IDX {kind} file: magic number is {found} ({found:#010x}), expected {expected} \
         ({expected:#010x}){}",
        path.display(),
        magic_hint(*expected, *found)
    )]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// "image" or "label".
        kind: &'static str,
        /// The magic number of this kind of file.
        expected: u32,
        /// The magic number in the file.
        found: u32,
    },

    /// An IDX file is shorter than its header.
    #[error(
        "{}: truncated: an IDX {kind} header is {expected} bytes, found {found} bytes; \
         download the file again",
        path.display()
    )]
    TruncatedHeader {
        /// The file.
        path: PathBuf,
        /// "image" or "label".
        kind: &'static str,
        /// The header length in bytes.
        expected: u64,
        /// The file length (decompressed) in bytes.
        found: u64,
    },

    /// An IDX header declares an impossible shape.
    #[error("{}: invalid IDX header: {reason}", path.display())]
    InvalidHeader {
        /// The file.
        path: PathBuf,
        /// Reason the header is invalid.
        reason: String,
    },

    /// An IDX payload is shorter than its header declares.
    #[error(
        "{}: truncated: header says {declared}, found {found} {unit}; download the file again",
        path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The header's shape and byte count, e.g. "60000x28x28 = 47040000 pixel bytes".
        declared: String,
        /// The payload length the header declares, in bytes.
        expected: u64,
        /// The payload length in the file, in bytes.
        found: u64,
        /// "pixel bytes" or "label bytes".
        unit: &'static str,
    },

    /// An IDX payload is longer than its header declares.
    #[error(
        "{}: trailing data: header says {declared}, found {found} {unit} ({} bytes too many); \
         the file is corrupt or has other data appended, download it again",
        path.display(),
        found - expected
    )]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// The header's shape and byte count, e.g. "60000x28x28 = 47040000 pixel bytes".
        declared: String,
        /// The payload length the header declares, in bytes.
        expected: u64,
        /// The payload length in the file, in bytes.
        found: u64,
        /// "pixel bytes" or "label bytes".
        unit: &'static str,
    },

    /// The image and label files of one split have different sample counts.
    #[error(
        "{} has {images} images but {} has {labels} labels; both files must belong to the same split",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// The number of images.
        images: usize,
        /// The label file.
        labels_path: PathBuf,
        /// The number of labels.
        labels: usize,
    },

    /// The train and test images have different sizes.
    #[error(
        "{} contains {train_height}x{train_width} images but {} contains {test_height}x{test_width} \
         images; both splits must have one image size",
        train_path.display(),
        test_path.display()
    )]
    ShapeMismatch {
        /// The train image file.
        train_path: PathBuf,
        /// Train image height in pixels.
        train_height: usize,
        /// Train image width in pixels.
        train_width: usize,
        /// The test image file.
        test_path: PathBuf,
        /// Test image height in pixels.
        test_height: usize,
        /// Test image width in pixels.
        test_width: usize,
    },

    /// A split contains no samples.
    #[error("{}: the file contains 0 samples; a split needs at least one", path.display())]
    EmptySplit {
        /// The image file of the split.
        path: PathBuf,
    },

    /// A label is not below the format's class count.
    #[error(
        "{}: label {label} of id {id} is out of range: {format} has {classes} classes \
         (labels 0..={}); if the data is not {format}, load it as idx:PATH, which takes the \
         class count from the labels",
        path.display(),
        classes.saturating_sub(1)
    )]
    LabelOutOfRange {
        /// The label file.
        path: PathBuf,
        /// The sample id (0-based position in the file).
        id: usize,
        /// The label found.
        label: u32,
        /// The dataset format, e.g. "mnist".
        format: String,
        /// The format's class count.
        classes: usize,
    },

    /// The dataset format name is not known.
    #[error(
        "unknown dataset format {value:?}; expected one of: mnist, fashion-mnist, idx, cifar10, \
         folder, csv"
    )]
    UnknownFormat {
        /// The name given.
        value: String,
    },

    /// A dataset argument has an empty path.
    #[error("dataset {value:?} has an empty path; write FORMAT:PATH, e.g. mnist:data/mnist")]
    EmptyPath {
        /// The argument given.
        value: String,
    },

    /// A dataset argument without `FORMAT:` names a path whose format cannot be inferred.
    #[error(
        "cannot infer the dataset format of {}: it is not a folder named mnist or fashion-mnist \
         and does not contain the four IDX files; write FORMAT:PATH with FORMAT one of mnist, \
         fashion-mnist, idx, cifar10, folder, csv",
        path.display()
    )]
    CannotInferFormat {
        /// The path given.
        path: PathBuf,
    },

    /// A sample id is not below the split's length.
    #[error("id {id} is out of range: the split has {len} samples (ids 0..{len})")]
    IdOutOfRange {
        /// The id given.
        id: u32,
        /// The split's length.
        len: usize,
    },

    /// A corrections file is not valid CSV.
    #[error("{}: invalid CSV: {source}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// The CSV parser's error.
        source: csv::Error,
    },

    /// A corrections file has the wrong header line.
    #[error(
        "{}, line 1: invalid header {found:?}: {reason}; expected id,action,new_label,note \
         (plus an optional path column)",
        path.display()
    )]
    CorrectionsHeader {
        /// The file.
        path: PathBuf,
        /// The header line as read.
        found: String,
        /// Reason the header is invalid.
        reason: String,
    },

    /// A line of a corrections file names an id beyond the training split.
    #[error(
        "{}, line {line}: id {id} is out of range: the training split has {train_len} samples \
         (ids 0..{train_len})",
        path.display()
    )]
    CorrectionIdOutOfRange {
        /// The file.
        path: PathBuf,
        /// The 1-based line number, counting the header as line 1.
        line: u64,
        /// The id on that line.
        id: u32,
        /// The number of training samples.
        train_len: usize,
    },

    /// A line of a corrections file is invalid.
    #[error("{}, line {line}: {reason}", path.display())]
    CorrectionsLine {
        /// The file.
        path: PathBuf,
        /// The 1-based line number; the header is line 1.
        line: u64,
        /// Reason the line is invalid, with the fix.
        reason: String,
    },

    /// A corrections file has two lines for one id.
    #[error(
        "{}, line {second_line}: id {id} already has a decision on line {first_line}; keep one \
         line per id",
        path.display()
    )]
    DuplicateId {
        /// The file.
        path: PathBuf,
        /// The repeated id.
        id: u32,
        /// The line of the first decision.
        first_line: u64,
        /// The line of the repeated decision.
        second_line: u64,
    },

    /// A dataset option has an invalid value.
    #[error("invalid {option} {value:?}: {reason}")]
    InvalidOption {
        /// The command-line flag, e.g. "--test-fraction".
        option: &'static str,
        /// The value given.
        value: String,
        /// What was expected.
        reason: String,
    },

    /// A dataset file or folder does not have the layout its format needs.
    #[error("{}: {reason}", path.display())]
    InvalidDataset {
        /// The file or folder.
        path: PathBuf,
        /// Reason it is invalid, with the fix.
        reason: String,
    },

    /// A line of a dataset file (CSV rows, CIFAR-10 class names) is invalid.
    #[error("{}, line {line}: {reason}", path.display())]
    InvalidLine {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: u64,
        /// Reason the line is invalid, with the fix.
        reason: String,
    },

    /// A CIFAR-10 batch file is not a whole number of records.
    #[error(
        "{}: size {size} bytes is not a multiple of the 3073-byte CIFAR-10 record (1 label \
         byte + 3072 pixel bytes): {remainder} bytes left over; the file is truncated or not a \
         CIFAR-10 binary batch, download it again",
        path.display()
    )]
    CifarRecordSize {
        /// The batch file.
        path: PathBuf,
        /// The file size in bytes.
        size: u64,
        /// `size % 3073`.
        remainder: u64,
    },

    /// An image file of a `folder:` dataset cannot be decoded.
    #[error(
        "{}: cannot decode the image: {reason}; replace or remove the file, or pass \
         --skip-unreadable to leave such files out",
        path.display()
    )]
    UnreadableImage {
        /// The image file.
        path: PathBuf,
        /// The decoder's error.
        reason: String,
    },

    /// A correction that is about to be written is invalid.
    #[error("{}: cannot write the correction for id {id}: {reason}", path.display())]
    InvalidCorrection {
        /// The file to be written.
        path: PathBuf,
        /// The id of the correction.
        id: u32,
        /// Reason the correction is invalid.
        reason: String,
    },

    /// An HTTP request failed before a response arrived (DNS, connection, TLS, timeout).
    #[error(
        "failed to download {url}: {source}; check the network connection or the --mirror \
         URL, then run the command again"
    )]
    Http {
        /// The URL requested.
        url: String,
        /// The HTTP client's error.
        source: Box<ureq::Error>,
    },

    /// The server responded with a status other than 200 or 206.
    #[error(
        "failed to download {url}: HTTP {status} {reason}; check the URL (with --mirror, the \
         server must serve MIRROR/DATASET/FILE)"
    )]
    HttpStatus {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The status's standard reason phrase.
        reason: String,
    },

    /// The connection failed while the body was being received; the `.part` file stays.
    #[error(
        "download of {url} stopped after {received} bytes: {source}; run the command again to \
         resume from {}",
        part.display()
    )]
    DownloadStopped {
        /// The URL requested.
        url: String,
        /// The partial file that the next call resumes from.
        part: PathBuf,
        /// Bytes of the file on disk, counting any earlier resumed part.
        received: u64,
        /// The I/O error.
        source: io::Error,
    },

    /// The response ended before the whole file arrived; the `.part` file stays.
    #[error(
        "download of {url} is incomplete: received {received} of {expected} bytes; run the \
         command again to resume from {}",
        part.display()
    )]
    DownloadIncomplete {
        /// The URL requested.
        url: String,
        /// The partial file that the next call resumes from.
        part: PathBuf,
        /// Bytes of the file on disk.
        received: u64,
        /// The published size in bytes.
        expected: u64,
    },

    /// The download was stopped by the caller (Ctrl-C); the `.part` file stays.
    #[error(
        "download of {url} interrupted after {received} bytes; run the command again to resume \
         from {}",
        part.display()
    )]
    Interrupted {
        /// The URL requested.
        url: String,
        /// The partial file that the next call resumes from.
        part: PathBuf,
        /// Bytes of the file on disk.
        received: u64,
    },

    /// The server's file has another size than the published one; the `.part` was removed.
    #[error(
        "wrong size for {url}: expected {expected} bytes, {measurement} {found}; the partial file \
         was removed. The server does not have the published file: check the URL or the --mirror"
    )]
    DownloadSize {
        /// The URL requested.
        url: String,
        /// The published size in bytes.
        expected: u64,
        /// The size announced or received, in bytes.
        found: u64,
        /// Source of `found`: "the server announces" or "the server sent at least".
        measurement: &'static str,
    },

    /// A downloaded file does not have its published MD5; the `.part` was removed.
    #[error(
        "MD5 mismatch for {url}: expected {expected}, got {found}; the downloaded file was \
         removed. Run the command again to download it anew, or check the --mirror"
    )]
    ChecksumMismatch {
        /// The URL requested.
        url: String,
        /// The published MD5, lowercase hex.
        expected: String,
        /// The MD5 of the received bytes, lowercase hex.
        found: String,
    },
}

/// Explains a magic number that belongs to the other kind of IDX file.
fn magic_hint(expected: u32, found: u32) -> &'static str {
    use crate::idx::{IMAGES_MAGIC, LABELS_MAGIC};

    match (expected, found) {
        (IMAGES_MAGIC, LABELS_MAGIC) => "; this is a label file, so the file names are swapped",
        (LABELS_MAGIC, IMAGES_MAGIC) => "; this is an image file, so the file names are swapped",
        _ => "",
    }
}
