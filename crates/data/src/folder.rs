//! Reader for ImageFolder trees: one subfolder of PNG and JPEG files per class.
//!
//! `folder:PATH` has either `train/` and `test/` folders, each with one subfolder per class,
//! or the class subfolders directly, in which case a seeded stratified split takes
//! `--test-fraction` of each class for the test split (see [`crate::stratified_split`]).
//!
//! - Class names are the subfolder names, any Unicode, sorted by byte order. With split
//!   folders they come from `train/`, and a class folder that only `test/` has is an error.
//!   Hidden entries (names starting with `.`) are ignored.
//! - Images are the files under a class folder, at any depth, whose extension is `png`,
//!   `jpg` or `jpeg` (ASCII case ignored); other files are ignored and counted in a log line.
//!   The decoder picks the format from the file's first bytes, not its extension.
//! - Every image is resized to `--image-size HxW` (default: the most common size; ties go to
//!   the smaller size) with bilinear filtering, and converted to `--channels 1|3` (default: 1
//!   when every image is grayscale, else 3). Alpha is dropped, not composited, and 16-bit
//!   samples become 8-bit. Each converted file is listed in the [`LoadReport`].
//! - A file that cannot be read or decoded stops loading with an error naming it, the first
//!   in path order, unless [`crate::DatasetOptions::skip_unreadable`] is set; then it is left
//!   out and listed in the report.
//!
//! A sample's id is its position in its split when the split's files are sorted by relative
//! path (byte order, `/` separators). [`crate::Split::paths`] keeps those relative paths,
//! e.g. `train/cat/001.png`.

use std::collections::HashMap;
use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::imageops::FilterType;
use image::{ColorType, DynamicImage, ImageDecoder, ImageReader};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::fingerprint::Fingerprinter;
use crate::options::{ImageSize, split_by_fraction};
use crate::{Dataset, DatasetSpec, Error, ImageShape, Split};

/// Files read and hashed per step of the first pass, to bound the bytes held at once.
const CHUNK: usize = 512;

/// Converted files logged one by one; the rest are counted in the summary line.
const MAX_LOGGED: usize = 10;

/// Image file extensions, lowercase.
const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Files that a load converted or left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadReport {
    /// Files whose size or color format was changed, in path order.
    pub converted: Vec<ConvertedFile>,
    /// Unreadable files left out because of `--skip-unreadable`, in path order.
    pub skipped: Vec<SkippedFile>,
}

impl LoadReport {
    /// Returns true when no file was converted or left out.
    pub fn is_empty(&self) -> bool {
        self.converted.is_empty() && self.skipped.is_empty()
    }
}

/// A file whose pixels were resized or converted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvertedFile {
    /// Path relative to the dataset folder.
    pub path: String,
    /// The changes, e.g. "resized from 32x30 to 28x28 (HxW)" or "color to grayscale".
    pub changes: Vec<String>,
}

/// A file left out because it could not be read or decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    /// Path relative to the dataset folder.
    pub path: String,
    /// The read or decode error.
    pub reason: String,
}

/// One image file found in the tree.
#[derive(Debug, Clone)]
struct Entry {
    /// Path relative to the dataset folder, `/`-separated.
    relative: String,
    /// Full path.
    path: PathBuf,
    /// Class index.
    label: u32,
}

/// A header probe, or the read or decode error.
type ProbeResult = Result<Probe, String>;

/// `C x H x W` bytes and the changes made, or the read or decode error.
type Decoded = Result<(Vec<u8>, Vec<String>), String>;

/// Size and color of an image, read from its header.
#[derive(Debug, Clone, Copy)]
struct Probe {
    size: ImageSize,
    color: ColorType,
}

/// Loads a `folder:` dataset.
pub fn load(spec: &DatasetSpec) -> Result<Dataset, Error> {
    let started = Instant::now();
    let options = &spec.options;
    let channels_option = options.checked_channels()?;
    let root = &spec.path;
    if !root.is_dir() {
        return Err(Error::InvalidDataset {
            path: root.clone(),
            reason: "not a folder; folder:PATH expects one subfolder of images per class, or \
                     train/ and test/ folders that each contain them"
                .to_string(),
        });
    }

    // Data: the class folders and their image files, each split sorted by relative path.
    let train_dir = root.join("train");
    let test_dir = root.join("test");
    let has_split_folders = match (train_dir.is_dir(), test_dir.is_dir()) {
        (true, true) => true,
        (false, false) => false,
        (has_train, _) => {
            let (found, missing) = if has_train {
                ("train", "test")
            } else {
                ("test", "train")
            };
            return Err(Error::InvalidDataset {
                path: root.clone(),
                reason: format!(
                    "found {found}/ but no {missing}/; give both split folders, or put the \
                     class folders directly in the dataset folder for a generated split"
                ),
            });
        }
    };
    let (classes, mut train_entries, mut test_entries) = if has_split_folders {
        let classes = class_folders(&train_dir)?;
        let test_classes = class_folders(&test_dir)?;
        if let Some(extra) = test_classes.iter().find(|name| !classes.contains(name)) {
            return Err(Error::InvalidDataset {
                path: test_dir.join(extra),
                reason: format!(
                    "class {extra:?} is in test/ but not in train/; every test class needs \
                     a train folder of the same name"
                ),
            });
        }
        let train = image_entries(root, "train", &classes)?;
        let test = image_entries(root, "test", &classes)?;
        (classes, train, Some(test))
    } else {
        let classes = class_folders(root)?;
        let entries = image_entries(root, "", &classes)?;
        (classes, entries, None)
    };
    if classes.is_empty() {
        return Err(Error::InvalidDataset {
            path: root.clone(),
            reason: "no class folders found; put the images of each class in a subfolder \
                     named after the class"
                .to_string(),
        });
    }
    train_entries.sort_by(|a, b| a.relative.cmp(&b.relative));
    if let Some(test) = &mut test_entries {
        test.sort_by(|a, b| a.relative.cmp(&b.relative));
    }

    // First pass: hash every file in id order and read each image's size and color.
    let mut fingerprinter = Fingerprinter::new();
    let train_probes = probe_all(&train_entries, &mut fingerprinter);
    let test_probes = test_entries
        .as_ref()
        .map(|entries| probe_all(entries, &mut fingerprinter));

    // Target size and channels, from the options or the readable images.
    let readable = || {
        train_probes
            .iter()
            .chain(test_probes.iter().flatten())
            .filter_map(|probe| probe.as_ref().ok())
    };
    let size = match options.image_size {
        Some(size) => size,
        None => most_common_size(readable()).ok_or_else(|| Error::InvalidDataset {
            path: root.clone(),
            reason: "no readable PNG or JPEG image found".to_string(),
        })?,
    };
    let channels = channels_option.unwrap_or_else(|| {
        if readable().all(|probe| !probe.color.has_color()) {
            1
        } else {
            3
        }
    });
    let shape = ImageShape {
        channels,
        height: size.height,
        width: size.width,
    };

    // Second pass: decode and convert in parallel; then keep or skip in path order.
    let mut report = LoadReport::default();
    let whole_train = decode_split(
        &train_entries,
        &train_probes,
        shape,
        options.skip_unreadable,
        &mut report,
    )?;
    let decoded_test = match (&test_entries, &test_probes) {
        (Some(entries), Some(probes)) => Some(decode_split(
            entries,
            probes,
            shape,
            options.skip_unreadable,
            &mut report,
        )?),
        _ => None,
    };
    // With --image-size or --channels the conversions are what the user asked for.
    let requested = options.image_size.is_some() || channels_option.is_some();
    log_report(&report, requested);

    // Splits: the split folders, or a stratified split of the class folders.
    let (train, test, generated_split) = match decoded_test {
        Some(test) => (whole_train, test, None),
        None => {
            let fraction = options.checked_test_fraction()?;
            let (train, test, generated) =
                split_by_fraction(&whole_train, classes.len(), fraction, options.split_seed);
            (train, test, Some(generated))
        }
    };
    for (split, name) in [(&train, "train"), (&test, "test")] {
        if split.is_empty() {
            return Err(Error::InvalidDataset {
                path: root.clone(),
                reason: format!(
                    "the {name} split has no readable images (a generated split needs a class \
                     with at least 2 images)"
                ),
            });
        }
    }

    // A class whose images were all skipped still counts in K, but no training sample has it.
    let mut train_counts = vec![0usize; classes.len()];
    for &label in &train.labels {
        if let Some(count) = train_counts.get_mut(label as usize) {
            *count += 1;
        }
    }
    for (class, count) in classes.iter().zip(&train_counts) {
        if *count == 0 {
            tracing::warn!(
                "class {class:?} of {} has no training image, so the model can never learn it; \
                 remove its folder or add readable images",
                root.display()
            );
        }
    }

    // The settings that decide ids and pixels are part of the fingerprint.
    let settings = format!(
        "folder size={}x{} channels={channels} split={:?}",
        size.height,
        size.width,
        generated_split.map(|split| (split.test_fraction, split.seed)),
    );
    fingerprinter.add_file(settings.as_bytes());
    let fingerprint = fingerprinter.finish(&[train.len() as u64, test.len() as u64]);

    tracing::info!(
        path = %root.display(),
        train = train.len(),
        test = test.len(),
        classes = classes.len(),
        shape = %format!("{channels}x{}x{}", size.height, size.width),
        converted = report.converted.len(),
        skipped = report.skipped.len(),
        millis = started.elapsed().as_millis() as u64,
        "loaded image folder"
    );
    Ok(Dataset {
        format: spec.format,
        path: spec.path.clone(),
        classes,
        train,
        test,
        fingerprint,
        generated_split,
        report,
    })
}

/// Returns true when `name` is hidden (starts with a dot).
fn is_hidden(name: &str) -> bool {
    name.starts_with('.')
}

/// Lists the non-hidden subfolders of `dir`, sorted by byte order.
fn class_folders(dir: &Path) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    for entry in read_dir(dir)? {
        let entry = entry.map_err(|source| Error::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(Error::InvalidDataset {
                path,
                reason: "the folder name is not valid UTF-8; rename the class folder".to_string(),
            });
        };
        if !is_hidden(&name) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn read_dir(dir: &Path) -> Result<fs::ReadDir, Error> {
    fs::read_dir(dir).map_err(|source| Error::Read {
        path: dir.to_path_buf(),
        source,
    })
}

/// Collects the image files of every class folder under `root/split`.
fn image_entries(root: &Path, split: &str, classes: &[String]) -> Result<Vec<Entry>, Error> {
    let mut entries = Vec::new();
    let mut ignored = 0usize;
    for (label, class) in classes.iter().enumerate() {
        let prefix = if split.is_empty() {
            class.clone()
        } else {
            format!("{split}/{class}")
        };
        let dir = root.join(&prefix);
        if !dir.is_dir() {
            // A class of train/ without a test/ folder simply has no test images.
            continue;
        }
        let before = entries.len();
        walk(&dir, &prefix, label as u32, &mut entries, &mut ignored)?;
        if entries.len() == before {
            tracing::warn!(folder = %dir.display(), "class folder contains no PNG or JPEG file");
        }
    }
    if ignored > 0 {
        tracing::info!(
            ignored,
            "ignored files without a png, jpg or jpeg extension"
        );
    }
    Ok(entries)
}

/// Adds the image files under `dir` (recursively) to `entries`.
fn walk(
    dir: &Path,
    prefix: &str,
    label: u32,
    entries: &mut Vec<Entry>,
    ignored: &mut usize,
) -> Result<(), Error> {
    for entry in read_dir(dir)? {
        let entry = entry.map_err(|source| Error::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(Error::InvalidDataset {
                path,
                reason: "the file name is not valid UTF-8; rename it".to_string(),
            });
        };
        if is_hidden(&name) {
            continue;
        }
        let relative = format!("{prefix}/{name}");
        if path.is_dir() {
            walk(&path, &relative, label, entries, ignored)?;
            continue;
        }
        let is_image = Path::new(&name)
            .extension()
            .and_then(|ext| ext.to_str())
            .is_some_and(|ext| EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()));
        if is_image {
            entries.push(Entry {
                relative,
                path,
                label,
            });
        } else {
            *ignored += 1;
        }
    }
    Ok(())
}

/// Reads every file (in parallel, chunk by chunk), hashes its relative path and bytes in
/// order, and reads its size and color from the header. `Err` contains the read or decode error.
fn probe_all(entries: &[Entry], fingerprinter: &mut Fingerprinter) -> Vec<ProbeResult> {
    let mut probes = Vec::with_capacity(entries.len());
    for chunk in entries.chunks(CHUNK) {
        let read: Vec<Result<(Vec<u8>, ProbeResult), String>> = chunk
            .par_iter()
            .map(|entry| {
                let bytes = fs::read(&entry.path).map_err(|error| error.to_string())?;
                let probe = probe(&bytes);
                Ok((bytes, probe))
            })
            .collect();
        for (entry, result) in chunk.iter().zip(read) {
            match result {
                Ok((bytes, probe)) => {
                    fingerprinter.add_file(entry.relative.as_bytes());
                    fingerprinter.add_file(&bytes);
                    probes.push(probe);
                }
                Err(error) => probes.push(Err(error)),
            }
        }
    }
    probes
}

/// Reads an image's size and color type from its header.
fn probe(bytes: &[u8]) -> Result<Probe, String> {
    let decoder = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|error| error.to_string())?
        .into_decoder()
        .map_err(|error| error.to_string())?;
    let (width, height) = decoder.dimensions();
    Ok(Probe {
        size: ImageSize {
            height: height as usize,
            width: width as usize,
        },
        color: decoder.color_type(),
    })
}

/// Returns the most common size; a tie goes to the smaller (height, width).
fn most_common_size<'a>(probes: impl Iterator<Item = &'a Probe>) -> Option<ImageSize> {
    let mut counts: HashMap<ImageSize, usize> = HashMap::new();
    for probe in probes {
        *counts.entry(probe.size).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by(|(a_size, a_count), (b_size, b_count)| {
            a_count.cmp(b_count).then_with(|| b_size.cmp(a_size))
        })
        .map(|(size, _)| size)
}

/// Decodes and converts one split's files; unreadable ones stop loading or are skipped.
fn decode_split(
    entries: &[Entry],
    probes: &[ProbeResult],
    shape: ImageShape,
    skip_unreadable: bool,
    report: &mut LoadReport,
) -> Result<Split, Error> {
    let decoded: Vec<Decoded> = entries
        .par_iter()
        .zip(probes.par_iter())
        .map(|(entry, probe)| {
            probe.as_ref().map_err(String::clone)?;
            let bytes = fs::read(&entry.path).map_err(|error| error.to_string())?;
            let image = image::load_from_memory(&bytes).map_err(|error| error.to_string())?;
            Ok(convert(image, shape))
        })
        .collect();

    let mut split = Split {
        images: Vec::with_capacity(entries.len() * shape.len()),
        labels: Vec::with_capacity(entries.len()),
        shape,
        paths: Some(Vec::with_capacity(entries.len())),
    };
    for (entry, result) in entries.iter().zip(decoded) {
        match result {
            Ok((pixels, changes)) => {
                if !changes.is_empty() {
                    report.converted.push(ConvertedFile {
                        path: entry.relative.clone(),
                        changes,
                    });
                }
                split.images.extend_from_slice(&pixels);
                split.labels.push(entry.label);
                if let Some(paths) = &mut split.paths {
                    paths.push(entry.relative.clone());
                }
            }
            Err(reason) if skip_unreadable => {
                tracing::warn!(path = %entry.path.display(), %reason, "skipped unreadable image");
                report.skipped.push(SkippedFile {
                    path: entry.relative.clone(),
                    reason,
                });
            }
            Err(reason) => {
                return Err(Error::UnreadableImage {
                    path: entry.path.clone(),
                    reason,
                });
            }
        }
    }
    Ok(split)
}

/// Converts an image to `shape` and returns its `C x H x W` bytes and the changes made.
fn convert(image: DynamicImage, shape: ImageShape) -> (Vec<u8>, Vec<String>) {
    let mut changes = Vec::new();
    let color = image.color();
    if color.has_alpha() {
        changes.push("alpha dropped".to_string());
    }
    if color.bytes_per_pixel() / color.channel_count() > 1 {
        changes.push("16-bit samples to 8-bit".to_string());
    }
    let (width, height) = (image.width() as usize, image.height() as usize);
    let resize = (height, width) != (shape.height, shape.width);
    if resize {
        changes.push(format!(
            "resized from {height}x{width} to {}x{} (HxW)",
            shape.height, shape.width
        ));
    }
    let (target_width, target_height) = (shape.width as u32, shape.height as u32);

    let pixels = if shape.channels == 1 {
        if color.has_color() {
            changes.push("color to grayscale".to_string());
        }
        let mut gray = image.to_luma8();
        if resize {
            gray =
                image::imageops::resize(&gray, target_width, target_height, FilterType::Triangle);
        }
        gray.into_raw()
    } else {
        if !color.has_color() {
            changes.push("grayscale to RGB".to_string());
        }
        let mut rgb = image.to_rgb8();
        if resize {
            rgb = image::imageops::resize(&rgb, target_width, target_height, FilterType::Triangle);
        }
        // Interleaved H x W x 3 to planar 3 x H x W.
        let plane = shape.height * shape.width;
        let interleaved = rgb.into_raw();
        let mut planar = vec![0u8; 3 * plane];
        for (index, pixel) in interleaved.chunks_exact(3).enumerate() {
            planar[index] = pixel[0];
            planar[plane + index] = pixel[1];
            planar[2 * plane + index] = pixel[2];
        }
        planar
    };
    (pixels, changes)
}

/// Logs the converted files, the first few as warnings and the rest at debug level, then a
/// summary warning. When `requested` (a size or channel count given on the command line) the
/// conversions are expected, so they are logged at debug level only. Skipped files were already
/// logged one by one as they were found.
fn log_report(report: &LoadReport, requested: bool) {
    for (index, file) in report.converted.iter().enumerate() {
        let changes = file.changes.join(", ");
        if index < MAX_LOGGED && !requested {
            tracing::warn!(path = %file.path, %changes, "converted image");
        } else {
            tracing::debug!(path = %file.path, %changes, "converted image");
        }
    }
    if requested && report.skipped.is_empty() {
        tracing::debug!(
            converted = report.converted.len(),
            "images converted to the requested size and channels"
        );
    } else if !report.is_empty() {
        tracing::warn!(
            converted = report.converted.len(),
            skipped = report.skipped.len(),
            "images converted or skipped; debug-level logging lists every converted file"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use image::{GrayImage, Luma, Rgb, RgbImage};

    fn probe_of(height: usize, width: usize) -> Probe {
        Probe {
            size: ImageSize { height, width },
            color: ColorType::L8,
        }
    }

    #[test]
    fn most_common_size_breaks_ties_small() {
        let probes = [probe_of(28, 28), probe_of(30, 30), probe_of(28, 28)];
        assert_eq!(
            most_common_size(probes.iter()),
            Some(ImageSize {
                height: 28,
                width: 28
            })
        );
        // One each: the tie goes to the smaller size.
        let probes = [probe_of(30, 30), probe_of(20, 40)];
        assert_eq!(
            most_common_size(probes.iter()),
            Some(ImageSize {
                height: 20,
                width: 40
            })
        );
    }

    #[test]
    fn convert_rgb_to_planar() {
        // A 1x2 RGB image: pixel 0 = (1, 2, 3), pixel 1 = (4, 5, 6); planes R = [1, 4],
        // G = [2, 5], B = [3, 6].
        let mut rgb = RgbImage::new(2, 1);
        rgb.put_pixel(0, 0, Rgb([1, 2, 3]));
        rgb.put_pixel(1, 0, Rgb([4, 5, 6]));
        let shape = ImageShape {
            channels: 3,
            height: 1,
            width: 2,
        };
        let (pixels, changes) = convert(DynamicImage::ImageRgb8(rgb), shape);
        assert_eq!(pixels, vec![1, 4, 2, 5, 3, 6]);
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn convert_gray_resize_and_expand() {
        let gray = GrayImage::from_pixel(4, 4, Luma([200]));
        let shape = ImageShape {
            channels: 3,
            height: 2,
            width: 2,
        };
        let (pixels, changes) = convert(DynamicImage::ImageLuma8(gray), shape);
        // A constant image stays constant under bilinear resizing: 3 planes x 2 x 2 of 200.
        assert_eq!(pixels, vec![200; 12]);
        assert_eq!(
            changes,
            ["resized from 4x4 to 2x2 (HxW)", "grayscale to RGB"]
        );
    }
}
