//! Dataset specs (`FORMAT:PATH`), in-memory splits and the loader.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use crate::Error;
use crate::fingerprint::Fingerprinter;
use crate::folder::LoadReport;
use crate::idx::{self, IdxImages, Role};
use crate::options::{DatasetOptions, GeneratedSplit};
use crate::{cifar, csv_images, folder};

/// Number of classes of MNIST and Fashion-MNIST.
const TEN_CLASSES: usize = 10;

/// Fashion-MNIST class names in label order, as published by Zalando Research
/// (<https://github.com/zalandoresearch/fashion-mnist#labels>).
const FASHION_MNIST_CLASSES: [&str; TEN_CLASSES] = [
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
];

/// A dataset format, written before the colon of a `FORMAT:PATH` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetFormat {
    /// MNIST digits: the four IDX files, classes "0" to "9".
    Mnist,
    /// Fashion-MNIST: the four IDX files, ten clothing classes.
    FashionMnist,
    /// Any four IDX files with 1-byte labels; the classes are "0" to "K-1", where K is the
    /// largest label in either split plus one.
    Idx,
    /// CIFAR-10 binary batches; see [`crate::cifar`].
    Cifar10,
    /// ImageFolder: one subfolder of PNG and JPEG files per class; see [`crate::folder`].
    Folder,
    /// A label column plus pixel columns; see [`crate::csv_images`].
    Csv,
}

impl DatasetFormat {
    /// Every format, in the order that help text lists them.
    pub const ALL: [DatasetFormat; 6] = [
        DatasetFormat::Mnist,
        DatasetFormat::FashionMnist,
        DatasetFormat::Idx,
        DatasetFormat::Cifar10,
        DatasetFormat::Folder,
        DatasetFormat::Csv,
    ];

    /// Returns the name used on the command line and in `run.json`.
    pub fn name(self) -> &'static str {
        match self {
            DatasetFormat::Mnist => "mnist",
            DatasetFormat::FashionMnist => "fashion-mnist",
            DatasetFormat::Idx => "idx",
            DatasetFormat::Cifar10 => "cifar10",
            DatasetFormat::Folder => "folder",
            DatasetFormat::Csv => "csv",
        }
    }

    /// Class names fixed by the format, or `None` when they come from the labels.
    pub fn fixed_classes(self) -> Option<Vec<String>> {
        match self {
            DatasetFormat::Mnist => Some((0..TEN_CLASSES).map(|d| d.to_string()).collect()),
            DatasetFormat::FashionMnist => Some(
                FASHION_MNIST_CLASSES
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            ),
            // CIFAR-10 reads its names from batches.meta.txt.
            DatasetFormat::Idx
            | DatasetFormat::Cifar10
            | DatasetFormat::Folder
            | DatasetFormat::Csv => None,
        }
    }
}

impl fmt::Display for DatasetFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetFormat {
    type Err = Error;

    /// Parses a format name, ignoring ASCII case.
    fn from_str(value: &str) -> Result<Self, Error> {
        DatasetFormat::ALL
            .into_iter()
            .find(|format| format.name().eq_ignore_ascii_case(value))
            .ok_or_else(|| Error::UnknownFormat {
                value: value.to_string(),
            })
    }
}

/// A dataset argument: a format and the folder that contains the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSpec {
    /// The dataset format.
    pub format: DatasetFormat,
    /// The dataset folder (or, for `csv:`, a file or a folder).
    pub path: PathBuf,
    /// Reader options of `folder:`, `csv:` and `cifar10:`; the IDX formats ignore them.
    pub options: DatasetOptions,
}

impl DatasetSpec {
    /// Builds a spec from a format and a folder, with default options.
    pub fn new(format: DatasetFormat, path: impl Into<PathBuf>) -> Self {
        Self {
            format,
            path: path.into(),
            options: DatasetOptions::default(),
        }
    }

    /// Returns the spec with `options` in place of its options.
    pub fn with_options(mut self, options: DatasetOptions) -> Self {
        self.options = options;
        self
    }

    /// Infers the format of a bare path.
    ///
    /// A folder named `mnist` is MNIST and one named `fashion-mnist` (or `fashion_mnist`,
    /// `fashionmnist`) is Fashion-MNIST, ignoring ASCII case. These two rules look at the
    /// name only. Any other folder that contains the four IDX files is `idx`, one that
    /// contains `data_batch_1.bin` and `test_batch.bin` (directly or in
    /// `cifar-10-batches-bin/`) is `cifar10`, and a file ending in `.csv` is `csv`. Everything
    /// else, class folders included, is an error that requests `FORMAT:PATH`.
    pub fn infer(path: &Path) -> Result<Self, Error> {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();

        let format = match name.as_str() {
            "mnist" => DatasetFormat::Mnist,
            "fashion-mnist" | "fashion_mnist" | "fashionmnist" => DatasetFormat::FashionMnist,
            _ if path.is_dir() && idx::has_idx_files(path) => DatasetFormat::Idx,
            _ if path.is_dir() && cifar::has_cifar_files(path) => DatasetFormat::Cifar10,
            _ if path.is_file() && name.ends_with(".csv") => DatasetFormat::Csv,
            _ => {
                return Err(Error::CannotInferFormat {
                    path: path.to_path_buf(),
                });
            }
        };
        tracing::debug!(path = %path.display(), %format, "inferred the dataset format");
        Ok(Self::new(format, path))
    }
}

impl fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.format, self.path.display())
    }
}

impl FromStr for DatasetSpec {
    type Err = Error;

    /// Parses `FORMAT:PATH`, or a bare path whose format [`DatasetSpec::infer`] can infer.
    ///
    /// Text before the first colon counts as a format when it is at least two characters of
    /// letters, digits, `-` or `_`, so that a Windows drive letter (`C:\data`) stays part of a
    /// bare path. An unknown format is an error that lists the known ones.
    fn from_str(value: &str) -> Result<Self, Error> {
        let empty_path = || Error::EmptyPath {
            value: value.to_string(),
        };

        if let Some((prefix, path)) = value.split_once(':')
            && looks_like_format(prefix)
        {
            let format: DatasetFormat = prefix.parse()?;
            if path.is_empty() {
                return Err(empty_path());
            }
            return Ok(Self::new(format, path));
        }

        if value.is_empty() {
            return Err(empty_path());
        }
        Self::infer(Path::new(value))
    }
}

/// Returns true when `prefix` can be a format name rather than part of a path.
fn looks_like_format(prefix: &str) -> bool {
    prefix.len() >= 2
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Size of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageShape {
    /// Number of channels: 1 for grayscale.
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

impl ImageShape {
    /// Number of bytes of one image: `channels x height x width`.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Returns true when one image has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The images and labels of one split, in id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// `N x C x H x W` raw pixel values (0 to 255), row-major, channel first.
    pub images: Vec<u8>,
    /// `N` labels, each an index into the dataset's classes.
    pub labels: Vec<u32>,
    /// Size of one image.
    pub shape: ImageShape,
    /// `N` paths relative to the dataset folder, with `/` separators, for formats whose
    /// samples are files (`folder:`); `None` for the others.
    pub paths: Option<Vec<String>>,
}

impl Split {
    /// Returns the relative path of sample `id`, when the format keeps paths.
    pub fn path(&self, id: usize) -> Option<&str> {
        self.paths.as_ref()?.get(id).map(String::as_str)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Returns true when the split contains no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Returns the `C x H x W` bytes of sample `id`.
    ///
    /// # Panics
    ///
    /// When `id >= self.len()`.
    pub fn image(&self, id: usize) -> &[u8] {
        let size = self.shape.len();
        &self.images[id * size..(id + 1) * size]
    }

    /// Copies the samples at `ids` (in the order given) into a new split, paths included.
    ///
    /// # Panics
    ///
    /// When an id is `>= self.len()`.
    pub fn select(&self, ids: &[usize]) -> Split {
        let mut images = Vec::with_capacity(ids.len() * self.shape.len());
        let mut labels = Vec::with_capacity(ids.len());
        let mut paths = Vec::with_capacity(ids.len());
        for &id in ids {
            images.extend_from_slice(self.image(id));
            labels.push(self.labels[id]);
            if let Some(path) = self.path(id) {
                paths.push(path.to_string());
            }
        }
        Split {
            images,
            labels,
            shape: self.shape,
            paths: self.paths.as_ref().map(|_| paths),
        }
    }

    /// Keeps the first `n` samples, for quick runs on a subset; ids stay the same because
    /// the kept samples are the first ones. Does nothing when `n >= self.len()`.
    pub fn truncate(&mut self, n: usize) {
        if n >= self.len() {
            return;
        }
        self.labels.truncate(n);
        self.images.truncate(n * self.shape.len());
        if let Some(paths) = &mut self.paths {
            paths.truncate(n);
        }
    }

    /// Replaces the label of each `(id, new_label)` pair and returns how many labels changed.
    ///
    /// Every id is checked before any label is changed, so on error the split is unchanged.
    /// Labels are not range-checked here because a split does not know its class count;
    /// [`crate::read_corrections`] checks them against the class list.
    pub fn apply_relabels(&mut self, relabels: &[(u32, u32)]) -> Result<usize, Error> {
        for &(id, _) in relabels {
            self.check_id(id)?;
        }

        let mut changed = 0;
        for &(id, new_label) in relabels {
            let label = &mut self.labels[id as usize];
            if *label != new_label {
                *label = new_label;
                changed += 1;
            }
        }
        tracing::debug!(requested = relabels.len(), changed, "applied relabels");
        Ok(changed)
    }

    /// Removes the samples whose ids are in `discard` and returns the ids of the samples that
    /// remain, in order.
    ///
    /// After this call, position `i` of the split contains the sample whose id is the returned
    /// `ids[i]`; callers that record per-sample results must map positions back through it.
    /// Repeated ids are allowed. Every id is checked first, so on error the split is unchanged.
    pub fn apply_discards(&mut self, discard: &[u32]) -> Result<Vec<u32>, Error> {
        let mut keep = vec![true; self.len()];
        for &id in discard {
            self.check_id(id)?;
            keep[id as usize] = false;
        }

        // Compact in place: sample `id` moves to position `kept_ids.len()`.
        let size = self.shape.len();
        let mut kept_ids = Vec::with_capacity(self.len());
        for (id, is_kept) in keep.into_iter().enumerate() {
            if !is_kept {
                continue;
            }
            let position = kept_ids.len();
            if position != id {
                self.labels[position] = self.labels[id];
                self.images
                    .copy_within(id * size..(id + 1) * size, position * size);
                if let Some(paths) = &mut self.paths {
                    paths.swap(position, id);
                }
            }
            kept_ids.push(id as u32);
        }
        self.labels.truncate(kept_ids.len());
        self.images.truncate(kept_ids.len() * size);
        if let Some(paths) = &mut self.paths {
            paths.truncate(kept_ids.len());
        }

        tracing::debug!(
            discarded = discard.len(),
            remaining = kept_ids.len(),
            "applied discards"
        );
        Ok(kept_ids)
    }

    fn check_id(&self, id: u32) -> Result<(), Error> {
        if (id as usize) < self.len() {
            Ok(())
        } else {
            Err(Error::IdOutOfRange {
                id,
                len: self.len(),
            })
        }
    }
}

/// A loaded dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// The format it was read as.
    pub format: DatasetFormat,
    /// The folder it was read from.
    pub path: PathBuf,
    /// Class names in label order.
    pub classes: Vec<String>,
    /// The training split.
    pub train: Split,
    /// The test split.
    pub test: Split,
    /// `sha256:...` over the files as stored and the full sample counts; see
    /// [`crate::fingerprint`]. Computed before any [`Split::truncate`].
    pub fingerprint: String,
    /// The seeded stratified test split that `folder:` and `csv:` make when the files have
    /// none; `None` when the files define both splits.
    pub generated_split: Option<GeneratedSplit>,
    /// Files that `folder:` converted or left out; empty for the other formats.
    pub report: LoadReport,
}

/// Loads and checks the dataset that `spec` names.
///
/// Reads the four IDX files, checks them (see [`crate::idx`]), checks that image and label
/// counts match, that both splits have one image size and contain samples, and that labels are
/// below the format's class count (10 for `mnist` and `fashion-mnist`).
pub fn load(spec: &DatasetSpec) -> Result<Dataset, Error> {
    match spec.format {
        DatasetFormat::Cifar10 => return cifar::load(spec),
        DatasetFormat::Folder => return folder::load(spec),
        DatasetFormat::Csv => return csv_images::load(spec),
        DatasetFormat::Mnist | DatasetFormat::FashionMnist | DatasetFormat::Idx => {}
    }
    let started = Instant::now();

    // Data: the folder and its four files.
    let metadata = fs::metadata(&spec.path).map_err(|source| Error::Read {
        path: spec.path.clone(),
        source,
    })?;
    if !metadata.is_dir() {
        return Err(Error::NotAFolder {
            path: spec.path.clone(),
            format: spec.format.name().to_string(),
        });
    }
    let files = idx::find_files(&spec.path)?;

    // Read the stored bytes in the fixed order that the fingerprint hashes them.
    let mut fingerprinter = Fingerprinter::new();
    let mut read_and_hash = |role: Role| -> Result<Vec<u8>, Error> {
        let bytes = idx::read_stored(files.get(role))?;
        fingerprinter.add_file(&bytes);
        Ok(bytes)
    };
    let train_images = read_and_hash(Role::TrainImages)?;
    let train_labels = read_and_hash(Role::TrainLabels)?;
    let test_images = read_and_hash(Role::TestImages)?;
    let test_labels = read_and_hash(Role::TestLabels)?;

    // Decode the two splits in parallel: inflating the train images takes most of the time.
    let (train, test) = std::thread::scope(|scope| {
        let train = scope.spawn(|| {
            decode_split(
                &files.train_images,
                train_images,
                &files.train_labels,
                train_labels,
            )
        });
        let test = decode_split(
            &files.test_images,
            test_images,
            &files.test_labels,
            test_labels,
        );
        let train = train
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (train, test)
    });
    let (train, test) = (train?, test?);

    if train.shape != test.shape {
        return Err(Error::ShapeMismatch {
            train_path: files.train_images.clone(),
            train_height: train.shape.height,
            train_width: train.shape.width,
            test_path: files.test_images.clone(),
            test_height: test.shape.height,
            test_width: test.shape.width,
        });
    }

    // Classes: fixed by the format, or counted from the labels of both splits.
    let classes = match spec.format.fixed_classes() {
        Some(classes) => {
            check_labels(
                &files.train_labels,
                &train.labels,
                spec.format,
                classes.len(),
            )?;
            check_labels(&files.test_labels, &test.labels, spec.format, classes.len())?;
            classes
        }
        None => {
            let max_label = train.labels.iter().chain(&test.labels).max().copied();
            // Both splits are non-empty, so there is a largest label.
            let count = max_label.map_or(0, |max| max as usize + 1);
            let unused = classes_without_labels(&train.labels, count);
            if let (Some(max), false) = (max_label, unused.is_empty()) {
                // One corrupt label byte would make up classes, so name where the largest is.
                let (path, id) = match train.labels.iter().position(|&label| label == max) {
                    Some(id) => (&files.train_labels, id),
                    None => {
                        let id = test.labels.iter().position(|&label| label == max);
                        (&files.test_labels, id.unwrap_or(0))
                    }
                };
                tracing::warn!(
                    "{} of the {count} classes 0 to {max} (from the largest label, {max} at \
                     sample {id} of {}) have no training image: {}; the model can never \
                     predict them. Check that label file if it should have fewer classes",
                    unused.len(),
                    path.display(),
                    format_ranges(&unused),
                );
            }
            (0..count).map(|class| class.to_string()).collect()
        }
    };

    let fingerprint = fingerprinter.finish(&[train.len() as u64, test.len() as u64]);
    tracing::info!(
        path = %spec.path.display(),
        format = %spec.format,
        train = train.len(),
        test = test.len(),
        height = train.shape.height,
        width = train.shape.width,
        classes = classes.len(),
        millis = started.elapsed().as_millis() as u64,
        "loaded dataset"
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

/// Decompresses and parses one split's image and label files and checks that they agree.
fn decode_split(
    images_path: &Path,
    images_stored: Vec<u8>,
    labels_path: &Path,
    labels_stored: Vec<u8>,
) -> Result<Split, Error> {
    let IdxImages {
        count,
        height,
        width,
        pixels,
    } = idx::parse_images(images_path, idx::decompress(images_path, images_stored)?)?;
    let labels = idx::parse_labels(labels_path, idx::decompress(labels_path, labels_stored)?)?;

    if count != labels.len() {
        return Err(Error::CountMismatch {
            images_path: images_path.to_path_buf(),
            images: count,
            labels_path: labels_path.to_path_buf(),
            labels: labels.len(),
        });
    }
    if count == 0 {
        return Err(Error::EmptySplit {
            path: images_path.to_path_buf(),
        });
    }

    Ok(Split {
        images: pixels,
        labels: labels.into_iter().map(u32::from).collect(),
        shape: ImageShape {
            channels: 1,
            height,
            width,
        },
        paths: None,
    })
}

/// Returns the classes below `count` that no label in `labels` uses, in increasing order.
fn classes_without_labels(labels: &[u32], count: usize) -> Vec<usize> {
    let mut used = vec![false; count];
    for &label in labels {
        if let Some(slot) = used.get_mut(label as usize) {
            *slot = true;
        }
    }
    (0..count).filter(|&class| !used[class]).collect()
}

/// Formats increasing numbers as comma-separated ranges, such as `3, 10-199`.
fn format_ranges(values: &[usize]) -> String {
    let mut ranges: Vec<String> = Vec::new();
    let mut start = 0;
    while start < values.len() {
        let mut end = start;
        while end + 1 < values.len() && values[end + 1] == values[end] + 1 {
            end += 1;
        }
        ranges.push(if end == start {
            values[start].to_string()
        } else {
            format!("{}-{}", values[start], values[end])
        });
        start = end + 1;
    }
    ranges.join(", ")
}

/// Checks that every label is below `classes`.
fn check_labels(
    path: &Path,
    labels: &[u32],
    format: DatasetFormat,
    classes: usize,
) -> Result<(), Error> {
    match labels.iter().position(|&label| label as usize >= classes) {
        Some(id) => Err(Error::LabelOutOfRange {
            path: path.to_path_buf(),
            id,
            label: labels[id],
            format: format.name().to_string(),
            classes,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unused_classes_as_ranges() {
        // Labels 0, 2 and 200 leave 1 and 3 to 199 without a sample.
        let unused = classes_without_labels(&[0, 2, 200, 0], 201);
        assert_eq!(unused.len(), 1 + 197);
        assert_eq!(format_ranges(&unused), "1, 3-199");
        assert!(classes_without_labels(&[1, 0, 2], 3).is_empty());
        assert_eq!(format_ranges(&[4]), "4");
        assert_eq!(format_ranges(&[]), "");
        assert_eq!(format_ranges(&[0, 1, 5, 7, 8]), "0-1, 5, 7-8");
    }

    /// Three 1x2x2 images with pixel values equal to their byte position, labels 0, 1, 2.
    fn tiny_split() -> Split {
        Split {
            images: (0..12).collect(),
            labels: vec![0, 1, 2],
            shape: ImageShape {
                channels: 1,
                height: 2,
                width: 2,
            },
            paths: None,
        }
    }

    #[test]
    fn format_round_trips_through_text() {
        for format in DatasetFormat::ALL {
            assert_eq!(format.to_string().parse::<DatasetFormat>().unwrap(), format);
        }
        assert_eq!(
            "Fashion-MNIST".parse::<DatasetFormat>().unwrap(),
            DatasetFormat::FashionMnist
        );
    }

    #[test]
    fn format_unknown_lists_known() {
        let message = "tiff".parse::<DatasetFormat>().unwrap_err().to_string();
        assert!(message.contains("\"tiff\""), "{message}");
        assert!(
            message.contains("mnist, fashion-mnist, idx, cifar10, folder, csv"),
            "{message}"
        );
    }

    #[test]
    fn spec_parses_format_and_path() {
        let spec: DatasetSpec = "fashion-mnist:data/fm".parse().unwrap();
        assert_eq!(spec.format, DatasetFormat::FashionMnist);
        assert_eq!(spec.path, PathBuf::from("data/fm"));
        assert_eq!(spec.to_string(), "fashion-mnist:data/fm");
    }

    #[test]
    fn spec_splits_at_first_colon_only() {
        let spec: DatasetSpec = "idx:/data/a:b".parse().unwrap();
        assert_eq!(spec.path, PathBuf::from("/data/a:b"));
    }

    #[test]
    fn spec_unknown_format_rejected() {
        let err = "tiff:data/x".parse::<DatasetSpec>().unwrap_err();
        assert!(matches!(err, Error::UnknownFormat { ref value } if value == "tiff"));
    }

    #[test]
    fn spec_empty_path_rejected() {
        assert!(matches!(
            "mnist:".parse::<DatasetSpec>(),
            Err(Error::EmptyPath { .. })
        ));
        assert!(matches!(
            "".parse::<DatasetSpec>(),
            Err(Error::EmptyPath { .. })
        ));
    }

    #[test]
    fn spec_infers_from_folder_name() {
        // Inference by name does not touch the file system, so these paths need not exist.
        let spec: DatasetSpec = "some/where/MNIST/".parse().unwrap();
        assert_eq!(spec.format, DatasetFormat::Mnist);
        let spec: DatasetSpec = "fashion_mnist".parse().unwrap();
        assert_eq!(spec.format, DatasetFormat::FashionMnist);
    }

    #[test]
    fn spec_drive_letter_is_bare_path() {
        // "C" is one character, so it is not taken as a format; the path has no IDX files.
        let err = "C:/nowhere/data".parse::<DatasetSpec>().unwrap_err();
        assert!(matches!(err, Error::CannotInferFormat { .. }), "{err}");
    }

    #[test]
    fn split_image_and_truncate() {
        let mut split = tiny_split();
        // Image 1 is bytes 4..8.
        assert_eq!(split.image(1), &[4, 5, 6, 7]);
        split.truncate(2);
        assert_eq!(split.len(), 2);
        assert_eq!(split.images.len(), 8);
        split.truncate(10);
        assert_eq!(split.len(), 2);
    }

    #[test]
    fn apply_relabels_counts_changes() {
        let mut split = tiny_split();
        // Id 0 already has label 0, so only id 2 changes.
        assert_eq!(split.apply_relabels(&[(0, 0), (2, 1)]).unwrap(), 1);
        assert_eq!(split.labels, vec![0, 1, 1]);
    }

    #[test]
    fn apply_relabels_bad_id_changes_nothing() {
        let mut split = tiny_split();
        let err = split.apply_relabels(&[(0, 2), (3, 0)]).unwrap_err();
        assert!(matches!(err, Error::IdOutOfRange { id: 3, len: 3 }));
        assert_eq!(split.labels, vec![0, 1, 2]);
    }

    #[test]
    fn apply_discards_compacts_in_order() {
        let mut split = tiny_split();
        // Discard id 1 (twice): ids 0 and 2 remain, id 2's image is bytes 8..12.
        let kept = split.apply_discards(&[1, 1]).unwrap();
        assert_eq!(kept, vec![0, 2]);
        assert_eq!(split.labels, vec![0, 2]);
        assert_eq!(split.images, vec![0, 1, 2, 3, 8, 9, 10, 11]);
    }

    #[test]
    fn apply_discards_keeps_paths_aligned() {
        let mut split = tiny_split();
        split.paths = Some(vec!["a.png".into(), "b.png".into(), "c.png".into()]);
        // Discard id 0: ids 1 and 2 move to positions 0 and 1, their paths with them.
        split.apply_discards(&[0]).unwrap();
        assert_eq!(split.path(0), Some("b.png"));
        assert_eq!(split.path(1), Some("c.png"));
        assert_eq!(split.paths.as_ref().unwrap().len(), 2);
        split.truncate(1);
        assert_eq!(split.paths.unwrap(), ["b.png"]);
    }

    #[test]
    fn apply_discards_bad_id_changes_nothing() {
        let mut split = tiny_split();
        assert!(split.apply_discards(&[0, 7]).is_err());
        assert_eq!(split, tiny_split());
    }

    #[test]
    fn fashion_classes_in_label_order() {
        let classes = DatasetFormat::FashionMnist.fixed_classes().unwrap();
        assert_eq!(classes.len(), 10);
        assert_eq!(classes[0], "T-shirt/top");
        assert_eq!(classes[9], "Ankle boot");
        assert_eq!(DatasetFormat::Idx.fixed_classes(), None);
    }
}
