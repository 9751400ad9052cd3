//! Options of the `folder:`, `csv:` and `cifar10:` readers, and the seeded stratified split
//! that `folder:` and `csv:` make when the files have no test split.
//!
//! The options travel inside a [`crate::DatasetSpec`], so that [`crate::load`] stays the one
//! entry point. The IDX formats ignore them.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Shuffler, Split};

/// Share of the samples that goes to the test split when the files define none.
pub const DEFAULT_TEST_FRACTION: f64 = 0.2;

/// Options of the dataset readers; `Default` gives every documented default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DatasetOptions {
    /// Share of the samples (0 < F < 1) that a generated test split takes, per class;
    /// `None` means [`DEFAULT_TEST_FRACTION`]. Used only when the files have no test split.
    pub test_fraction: Option<f64>,
    /// Seed of the generated test split, independent of the training seed so that runs with
    /// several training seeds see the same split.
    pub split_seed: u64,
    /// `csv:` label column, by header name or 0-based index. `None` means the column named
    /// `label` when the file has a header with one, else the first column.
    pub label_column: Option<LabelColumn>,
    /// `csv:` image shape; `None` means a square grayscale image inferred from the number of
    /// pixel columns.
    pub image_shape: Option<ImageShapeOption>,
    /// `csv:` file of class names, one per line in label order; `None` means the sorted
    /// unique label values.
    pub classes_file: Option<PathBuf>,
    /// `folder:` size every image is resized to; `None` means the most common size.
    pub image_size: Option<ImageSize>,
    /// `folder:` channel count, 1 or 3; `None` means 1 when every image is grayscale, else 3.
    pub channels: Option<usize>,
    /// `folder:` leave out files that cannot be decoded (they are listed in the load report)
    /// instead of stopping at the first one.
    pub skip_unreadable: bool,
}

// The loader rejects a NaN test fraction before using it, so equality is reflexive for every
// value that a loaded dataset records.
impl Eq for DatasetOptions {}

impl DatasetOptions {
    /// Returns the test fraction to use, checked to lie strictly between 0 and 1.
    pub fn checked_test_fraction(&self) -> Result<f64, Error> {
        let fraction = self.test_fraction.unwrap_or(DEFAULT_TEST_FRACTION);
        if fraction > 0.0 && fraction < 1.0 {
            Ok(fraction)
        } else {
            Err(Error::InvalidOption {
                option: "--test-fraction",
                value: fraction.to_string(),
                reason: "expected a number strictly between 0 and 1, e.g. 0.2".to_string(),
            })
        }
    }

    /// Returns the channel count to convert to, checked to be 1 or 3.
    pub fn checked_channels(&self) -> Result<Option<usize>, Error> {
        match self.channels {
            None | Some(1) | Some(3) => Ok(self.channels),
            Some(other) => Err(Error::InvalidOption {
                option: "--channels",
                value: other.to_string(),
                reason: "expected 1 (grayscale) or 3 (RGB)".to_string(),
            }),
        }
    }

    /// Returns true when every option has its default value.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The label column of a CSV file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelColumn {
    /// The column with this header name (the file needs a header).
    Name(String),
    /// The column at this 0-based position.
    Index(usize),
}

impl FromStr for LabelColumn {
    type Err = Error;

    /// Parses a 0-based column index (digits only) or a header name.
    fn from_str(value: &str) -> Result<Self, Error> {
        if value.is_empty() {
            return Err(Error::InvalidOption {
                option: "--label-column",
                value: String::new(),
                reason: "expected a header name or a 0-based column index".to_string(),
            });
        }
        match value.parse::<usize>() {
            Ok(index) => Ok(LabelColumn::Index(index)),
            Err(_) => Ok(LabelColumn::Name(value.to_string())),
        }
    }
}

impl fmt::Display for LabelColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelColumn::Name(name) => f.write_str(name),
            LabelColumn::Index(index) => write!(f, "{index}"),
        }
    }
}

/// `--image-shape CxHxW` or `HxW` (one channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShapeOption {
    /// Number of channels.
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

impl FromStr for ImageShapeOption {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidOption {
            option: "--image-shape",
            value: value.to_string(),
            reason: "expected CxHxW or HxW with positive whole numbers, e.g. 3x32x32 or 28x28"
                .to_string(),
        };
        let sides = parse_sides(value).ok_or_else(invalid)?;
        match sides.as_slice() {
            [height, width] => Ok(Self {
                channels: 1,
                height: *height,
                width: *width,
            }),
            [channels, height, width] => Ok(Self {
                channels: *channels,
                height: *height,
                width: *width,
            }),
            _ => Err(invalid()),
        }
    }
}

impl fmt::Display for ImageShapeOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

/// `--image-size HxW`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ImageSize {
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

impl FromStr for ImageSize {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        match parse_sides(value).as_deref() {
            Some([height, width]) => Ok(Self {
                height: *height,
                width: *width,
            }),
            _ => Err(Error::InvalidOption {
                option: "--image-size",
                value: value.to_string(),
                reason: "expected HxW with positive whole numbers, e.g. 28x28".to_string(),
            }),
        }
    }
}

impl fmt::Display for ImageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.height, self.width)
    }
}

/// Splits `AxBxC` into positive numbers, or `None` when any part is not one.
fn parse_sides(value: &str) -> Option<Vec<usize>> {
    value
        .split(['x', 'X'])
        .map(|side| side.trim().parse::<usize>().ok().filter(|&n| n > 0))
        .collect()
}

/// A test split made by [`stratified_split`], recorded in the dataset so that a run can
/// state it and a later load can repeat it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeneratedSplit {
    /// Share of each class that went to the test split (0 < F < 1).
    pub test_fraction: f64,
    /// Seed of the per-class shuffle.
    pub seed: u64,
}

// A generated split always has a checked, finite fraction, so equality is reflexive.
impl Eq for GeneratedSplit {}

/// Splits sample positions into train and test, class by class.
///
/// For each class with `n` samples, in label order, the positions are shuffled with one
/// [`Shuffler`] seeded with `seed`. The first `round(fraction * n)` go to the test split,
/// clamped to `1..=n-1` so that a class with two or more samples is present in both splits. A class with one sample stays in train. Both returned lists are sorted, so
/// each split keeps the order of the input, which is what makes ids follow file order.
pub fn stratified_split(
    labels: &[u32],
    classes: usize,
    fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (position, &label) in labels.iter().enumerate() {
        by_class[label as usize].push(position);
    }

    let mut shuffler = Shuffler::new(seed);
    let mut train = Vec::with_capacity(labels.len());
    let mut test = Vec::new();
    for mut members in by_class {
        let n = members.len();
        if n < 2 {
            train.extend(members);
            continue;
        }
        shuffler.shuffle(&mut members);
        let wanted = (fraction * n as f64).round() as usize;
        let test_count = wanted.clamp(1, n - 1);
        test.extend_from_slice(&members[..test_count]);
        train.extend_from_slice(&members[test_count..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// Splits `whole` into train and test by [`stratified_split`] and records how, for datasets
/// that come without a test split.
pub fn split_by_fraction(
    whole: &Split,
    classes: usize,
    fraction: f64,
    seed: u64,
) -> (Split, Split, GeneratedSplit) {
    let (train_ids, test_ids) = stratified_split(&whole.labels, classes, fraction, seed);
    let generated = GeneratedSplit {
        test_fraction: fraction,
        seed,
    };
    (whole.select(&train_ids), whole.select(&test_ids), generated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_shape_parses_both_forms() {
        let shape: ImageShapeOption = "28x28".parse().unwrap();
        assert_eq!((shape.channels, shape.height, shape.width), (1, 28, 28));
        let shape: ImageShapeOption = "3x32x16".parse().unwrap();
        assert_eq!((shape.channels, shape.height, shape.width), (3, 32, 16));
        assert!("3x0x2".parse::<ImageShapeOption>().is_err());
        assert!("28".parse::<ImageShapeOption>().is_err());
        assert!("1x2x3x4".parse::<ImageShapeOption>().is_err());
    }

    #[test]
    fn image_size_parses_hxw() {
        let size: ImageSize = "20x30".parse().unwrap();
        assert_eq!((size.height, size.width), (20, 30));
        let message = "20".parse::<ImageSize>().unwrap_err().to_string();
        assert!(message.contains("--image-size"), "{message}");
    }

    #[test]
    fn label_column_index_or_name() {
        assert_eq!("3".parse::<LabelColumn>().unwrap(), LabelColumn::Index(3));
        assert_eq!(
            "digit".parse::<LabelColumn>().unwrap(),
            LabelColumn::Name("digit".into())
        );
    }

    #[test]
    fn test_fraction_range_checked() {
        let mut options = DatasetOptions::default();
        assert_eq!(options.checked_test_fraction().unwrap(), 0.2);
        for bad in [0.0, 1.0, -0.5, f64::NAN] {
            options.test_fraction = Some(bad);
            assert!(options.checked_test_fraction().is_err(), "{bad}");
        }
    }

    #[test]
    fn stratified_split_counts_per_class() {
        // Class 0: 10 samples, round(0.3 * 10) = 3 to test. Class 1: 4 samples,
        // round(0.3 * 4) = round(1.2) = 1. Class 2: 1 sample, stays in train.
        let labels: Vec<u32> = [vec![0; 10], vec![1; 4], vec![2]].concat();
        let (train, test) = stratified_split(&labels, 3, 0.3, 7);
        let count = |ids: &[usize], class: u32| ids.iter().filter(|&&i| labels[i] == class).count();
        assert_eq!(count(&test, 0), 3);
        assert_eq!(count(&test, 1), 1);
        assert_eq!(count(&test, 2), 0);
        assert_eq!(train.len() + test.len(), labels.len());
        assert!(train.windows(2).all(|w| w[0] < w[1]));
        assert!(test.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn stratified_split_clamps_to_both_splits() {
        // Two samples at fraction 0.9: round(1.8) = 2 would empty train, so 1 goes to test.
        let (train, test) = stratified_split(&[0, 0], 1, 0.9, 1);
        assert_eq!(train.len(), 1);
        assert_eq!(test.len(), 1);
    }

    #[test]
    fn stratified_split_depends_on_seed() {
        let labels = vec![0u32; 100];
        let first = stratified_split(&labels, 1, 0.2, 1);
        assert_eq!(first, stratified_split(&labels, 1, 0.2, 1));
        assert_ne!(first, stratified_split(&labels, 1, 0.2, 2));
    }
}
