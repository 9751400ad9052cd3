//! Reader for images stored as CSV rows: a label column plus one column per pixel.
//!
//! `csv:PATH` is either one CSV file or a folder with `train.csv` and `test.csv` (the layout
//! of the Kaggle copies of MNIST and Fashion-MNIST). Rules:
//!
//! - The first row is a header when more than one of its fields, or its only field, is not a
//!   number. A string label alone does not make a row a header.
//! - The label column is `--label-column` (a header name or a 0-based index), else the column
//!   named `label` (ASCII case ignored) when there is a header, else the first column.
//! - Every other column is a pixel, a whole number from 0 to 255, in `C x H x W` order
//!   (channel planes, each row-major), the layout of a [`Split`]. The image shape is
//!   `--image-shape CxHxW` or `HxW`, else a square grayscale image whose side is the square
//!   root of the pixel count.
//! - Class names are the lines of `--classes FILE` (a label matches a name, or else is a
//!   0-based index into the list), else the sorted unique label values, numerically when
//!   every value is a number. With two files the classes come from `train.csv`, and a label
//!   that only `test.csv` has is an error.
//! - A single file has no test split: a seeded stratified split takes `--test-fraction` of
//!   each class (see [`crate::stratified_split`]).
//!
//! A sample's id is its position among the data rows of its split, in file order. With a
//! single file, the train and test ids each count the rows that went to that split, in file
//! order. A malformed row is an error that names the file and the line.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::fingerprint::Fingerprinter;
use crate::folder::LoadReport;
use crate::options::{DatasetOptions, LabelColumn, split_by_fraction};
use crate::{Dataset, DatasetSpec, Error, ImageShape, Split};

/// Train file name inside a `csv:` folder.
pub const TRAIN_FILE: &str = "train.csv";

/// Test file name inside a `csv:` folder.
pub const TEST_FILE: &str = "test.csv";

/// Name of the default label column.
const DEFAULT_LABEL_COLUMN: &str = "label";

/// Rows of one CSV file, before labels become class indices.
#[derive(Debug)]
struct Table {
    /// The file.
    path: PathBuf,
    /// Header fields, when the first row is a header.
    header: Option<Vec<String>>,
    /// Position of the label column.
    label_column: usize,
    /// Number of columns of every row.
    columns: usize,
    /// Pixel bytes of all rows, row after row.
    pixels: Vec<u8>,
    /// Per row, an index into `label_values`.
    label_keys: Vec<u32>,
    /// Distinct label texts, in order of first appearance.
    label_values: Vec<String>,
    /// Per row, its 1-based line number in the file.
    lines: Vec<u64>,
}

impl Table {
    fn pixel_count(&self) -> usize {
        self.columns - 1
    }

    fn rows(&self) -> usize {
        self.label_keys.len()
    }
}

/// Loads a `csv:` dataset.
pub fn load(spec: &DatasetSpec) -> Result<Dataset, Error> {
    let started = Instant::now();
    let options = &spec.options;
    let metadata = fs::metadata(&spec.path).map_err(|source| Error::Read {
        path: spec.path.clone(),
        source,
    })?;

    // Data: one file, or train.csv and test.csv.
    let (train_path, test_path) = if metadata.is_dir() {
        let train = spec.path.join(TRAIN_FILE);
        let test = spec.path.join(TEST_FILE);
        for (path, role) in [(&train, "CSV train"), (&test, "CSV test")] {
            if !path.is_file() {
                return Err(Error::MissingFile {
                    dir: spec.path.clone(),
                    role,
                    tried: vec![TRAIN_FILE.to_string(), TEST_FILE.to_string()],
                });
            }
        }
        (train, Some(test))
    } else {
        (spec.path.clone(), None)
    };
    let fraction = match test_path {
        Some(_) => None,
        None => Some(options.checked_test_fraction()?),
    };

    let mut fingerprinter = Fingerprinter::new();
    let train_bytes = read(&train_path)?;
    fingerprinter.add_file(&train_bytes);
    let train_table = parse_table(&train_path, &train_bytes, options.label_column.as_ref())?;
    drop(train_bytes);
    let test_table = match &test_path {
        Some(path) => {
            let bytes = read(path)?;
            fingerprinter.add_file(&bytes);
            let table = parse_table(path, &bytes, options.label_column.as_ref())?;
            if table.columns != train_table.columns {
                return Err(Error::InvalidDataset {
                    path: path.clone(),
                    reason: format!(
                        "has {} columns but {} has {}; both files need the same columns",
                        table.columns,
                        train_table.path.display(),
                        train_table.columns
                    ),
                });
            }
            Some(table)
        }
        None => None,
    };

    // Shape and classes.
    let shape = image_shape(&train_table, options)?;
    let classes = match &options.classes_file {
        Some(file) => {
            let bytes = read(file)?;
            fingerprinter.add_file(&bytes);
            read_class_names(file, &bytes)?
        }
        None => sorted_label_values(&train_table.label_values),
    };
    let train_labels = class_indices(&train_table, &classes, options.classes_file.as_deref())?;

    // Splits: the two files, or a stratified split of the one file.
    let (train, test, generated_split) = match test_table {
        Some(test_table) => {
            let test_labels =
                class_indices(&test_table, &classes, options.classes_file.as_deref())?;
            let train = make_split(train_table.pixels, train_labels, shape);
            let test = make_split(test_table.pixels, test_labels, shape);
            (train, test, None)
        }
        None => {
            let fraction = fraction.unwrap_or(crate::options::DEFAULT_TEST_FRACTION);
            let whole = make_split(train_table.pixels, train_labels, shape);
            let (train, test, generated) =
                split_by_fraction(&whole, classes.len(), fraction, options.split_seed);
            (train, test, Some(generated))
        }
    };
    for (split, name) in [(&train, "train"), (&test, "test")] {
        if split.is_empty() {
            return Err(Error::InvalidDataset {
                path: spec.path.clone(),
                reason: format!(
                    "the {name} split has no rows; a CSV dataset needs rows in both splits \
                     (a single file needs at least 2 rows of one class)"
                ),
            });
        }
    }

    // The settings that decide ids, labels and pixels are part of the fingerprint.
    let settings = format!(
        "csv label_column={} shape={}x{}x{} split={:?}",
        train_table.label_column,
        shape.channels,
        shape.height,
        shape.width,
        generated_split.map(|split| (split.test_fraction, split.seed)),
    );
    fingerprinter.add_file(settings.as_bytes());
    let fingerprint = fingerprinter.finish(&[train.len() as u64, test.len() as u64]);

    tracing::info!(
        path = %spec.path.display(),
        train = train.len(),
        test = test.len(),
        classes = classes.len(),
        shape = %format!("{}x{}x{}", shape.channels, shape.height, shape.width),
        millis = started.elapsed().as_millis() as u64,
        "loaded CSV dataset"
    );
    Ok(Dataset {
        format: spec.format,
        path: spec.path.clone(),
        classes,
        train,
        test,
        fingerprint,
        generated_split,
        report: LoadReport::default(),
    })
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Returns true when `field` parses as a number (integer or decimal).
fn is_number(field: &[u8]) -> bool {
    std::str::from_utf8(field)
        .ok()
        .is_some_and(|text| text.trim().parse::<f64>().is_ok())
}

/// Parses a CSV file into pixels and label texts, checking every row.
fn parse_table(
    path: &Path,
    bytes: &[u8],
    label_option: Option<&LabelColumn>,
) -> Result<Table, Error> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.byte_records();
    let line_error = |line: u64, reason: String| Error::InvalidLine {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let csv_error = |source: csv::Error| Error::Csv {
        path: path.to_path_buf(),
        source,
    };

    // The first row: a header, or the first data row.
    let Some(first) = records.next() else {
        return Err(Error::InvalidDataset {
            path: path.to_path_buf(),
            reason: "the file is empty; expected a label column and pixel columns".to_string(),
        });
    };
    let first = first.map_err(csv_error)?;
    let non_numeric = first.iter().filter(|field| !is_number(field)).count();
    let is_header = non_numeric > 1 || (first.len() == 1 && non_numeric == 1);
    let header: Option<Vec<String>> = is_header.then(|| {
        first
            .iter()
            .map(|field| String::from_utf8_lossy(field).trim().to_string())
            .collect()
    });
    let columns = first.len();
    if columns < 2 {
        return Err(line_error(
            1,
            format!(
                "found {columns} column; expected a label column and at least one pixel column"
            ),
        ));
    }
    let label_column = resolve_label_column(path, header.as_deref(), columns, label_option)?;

    let mut table = Table {
        path: path.to_path_buf(),
        header,
        label_column,
        columns,
        pixels: Vec::new(),
        label_keys: Vec::new(),
        label_values: Vec::new(),
        lines: Vec::new(),
    };
    let mut keys: HashMap<String, u32> = HashMap::new();
    let first_data = if is_header { None } else { Some(first) };
    for record in first_data.into_iter().map(Ok).chain(records) {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, |position| position.line());
        if record.len() != columns {
            return Err(line_error(
                line,
                format!(
                    "found {} columns, expected {columns} like the first row",
                    record.len()
                ),
            ));
        }

        for (column, field) in record.iter().enumerate() {
            if column == label_column {
                let text = String::from_utf8_lossy(field).trim().to_string();
                if text.is_empty() {
                    return Err(line_error(
                        line,
                        format!("the label (column {column}) is empty"),
                    ));
                }
                let next_key = keys.len() as u32;
                let key = *keys.entry(text.clone()).or_insert_with(|| {
                    table.label_values.push(text);
                    next_key
                });
                table.label_keys.push(key);
            } else {
                let value = parse_pixel(field).map_err(|reason| {
                    let name = match &table.header {
                        Some(names) => format!(" ({})", names[column]),
                        None => String::new(),
                    };
                    line_error(line, format!("column {column}{name}: {reason}"))
                })?;
                table.pixels.push(value);
            }
        }
        table.lines.push(line);
    }
    if table.rows() == 0 {
        return Err(Error::InvalidDataset {
            path: path.to_path_buf(),
            reason: "the file has a header but no data rows".to_string(),
        });
    }
    tracing::debug!(
        path = %path.display(),
        rows = table.rows(),
        columns,
        header = table.header.is_some(),
        label_column,
        "parsed CSV file"
    );
    Ok(table)
}

/// Parses one pixel field, a whole number from 0 to 255.
fn parse_pixel(field: &[u8]) -> Result<u8, String> {
    let text = String::from_utf8_lossy(field);
    let text = text.trim();
    match text.parse::<i64>() {
        Ok(value) => u8::try_from(value).map_err(|_| {
            format!("pixel value {value} is outside 0..=255; scale the pixels to 0 to 255")
        }),
        Err(_) => Err(format!(
            "pixel value {text:?} is not a whole number; pixels must be whole numbers 0 to 255"
        )),
    }
}

/// Finds the label column from the option, the header and the column count.
fn resolve_label_column(
    path: &Path,
    header: Option<&[String]>,
    columns: usize,
    option: Option<&LabelColumn>,
) -> Result<usize, Error> {
    match option {
        Some(LabelColumn::Index(index)) if *index < columns => Ok(*index),
        Some(LabelColumn::Index(index)) => Err(Error::InvalidOption {
            option: "--label-column",
            value: index.to_string(),
            reason: format!(
                "{} has {columns} columns (indices 0 to {})",
                path.display(),
                columns - 1
            ),
        }),
        Some(LabelColumn::Name(name)) => {
            let Some(header) = header else {
                return Err(Error::InvalidOption {
                    option: "--label-column",
                    value: name.clone(),
                    reason: format!(
                        "{} has no header row, so give the column as a 0-based index",
                        path.display()
                    ),
                });
            };
            header
                .iter()
                .position(|field| field == name)
                .ok_or_else(|| Error::InvalidOption {
                    option: "--label-column",
                    value: name.clone(),
                    reason: format!(
                        "no such column in the header of {}; it starts with {}",
                        path.display(),
                        header
                            .iter()
                            .take(5)
                            .map(|field| format!("{field:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
        }
        None => Ok(header
            .and_then(|header| {
                header
                    .iter()
                    .position(|field| field.eq_ignore_ascii_case(DEFAULT_LABEL_COLUMN))
            })
            .unwrap_or(0)),
    }
}

/// Returns the image shape from the option, or a square grayscale shape.
fn image_shape(table: &Table, options: &DatasetOptions) -> Result<ImageShape, Error> {
    let pixels = table.pixel_count();
    if let Some(shape) = options.image_shape {
        let expected = shape.channels * shape.height * shape.width;
        if expected != pixels {
            return Err(Error::InvalidOption {
                option: "--image-shape",
                value: shape.to_string(),
                reason: format!(
                    "{} has {pixels} pixel columns but {shape} is {expected} pixels",
                    table.path.display()
                ),
            });
        }
        return Ok(ImageShape {
            channels: shape.channels,
            height: shape.height,
            width: shape.width,
        });
    }

    let side = pixels.isqrt();
    if side * side != pixels {
        return Err(Error::InvalidDataset {
            path: table.path.clone(),
            reason: format!(
                "{pixels} pixel columns is not a square number, so the image shape cannot be \
                 inferred; pass --image-shape CxHxW or HxW"
            ),
        });
    }
    Ok(ImageShape {
        channels: 1,
        height: side,
        width: side,
    })
}

/// Sorts distinct label texts: numerically when all are numbers, else by bytes.
fn sorted_label_values(values: &[String]) -> Vec<String> {
    let numbers: Option<Vec<f64>> = values.iter().map(|value| value.parse().ok()).collect();
    let mut sorted: Vec<(Option<f64>, String)> = match numbers {
        Some(numbers) => numbers
            .into_iter()
            .map(Some)
            .zip(values.iter().cloned())
            .collect(),
        None => values.iter().map(|value| (None, value.clone())).collect(),
    };
    sorted.sort_by(|(a_number, a_text), (b_number, b_text)| {
        let by_number = match (a_number, b_number) {
            (Some(a), Some(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            _ => Ordering::Equal,
        };
        by_number.then_with(|| a_text.cmp(b_text))
    });
    sorted.into_iter().map(|(_, text)| text).collect()
}

/// Reads `--classes FILE`: one name per line, blank lines ignored, no duplicates.
fn read_class_names(path: &Path, bytes: &[u8]) -> Result<Vec<String>, Error> {
    let text = std::str::from_utf8(bytes).map_err(|error| Error::InvalidDataset {
        path: path.to_path_buf(),
        reason: format!("not UTF-8 text ({error}); expected one class name per line"),
    })?;
    let mut names: Vec<String> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let name = line.trim();
        if name.is_empty() {
            continue;
        }
        if let Some(first) = names.iter().position(|existing| existing == name) {
            return Err(Error::InvalidLine {
                path: path.to_path_buf(),
                line: index as u64 + 1,
                reason: format!(
                    "class {name:?} is already class {first}; each class needs one line"
                ),
            });
        }
        names.push(name.to_string());
    }
    if names.is_empty() {
        return Err(Error::InvalidDataset {
            path: path.to_path_buf(),
            reason: "no class names; expected one per line".to_string(),
        });
    }
    Ok(names)
}

/// Maps each row's label text to its class index.
fn class_indices(
    table: &Table,
    classes: &[String],
    classes_file: Option<&Path>,
) -> Result<Vec<u32>, Error> {
    let by_name: HashMap<&str, u32> = classes
        .iter()
        .enumerate()
        .map(|(index, name)| (name.as_str(), index as u32))
        .collect();

    // Resolve each distinct label once; an unknown one is reported at its first row.
    let mut resolved: Vec<Option<u32>> = Vec::with_capacity(table.label_values.len());
    for value in &table.label_values {
        let index = by_name.get(value.as_str()).copied().or_else(|| {
            // With a class file, a label may also be a 0-based index into it.
            classes_file?;
            value
                .parse::<usize>()
                .ok()
                .filter(|&index| index < classes.len())
                .map(|index| index as u32)
        });
        resolved.push(index);
    }

    let mut labels = Vec::with_capacity(table.rows());
    for (row, &key) in table.label_keys.iter().enumerate() {
        match resolved[key as usize] {
            Some(index) => labels.push(index),
            None => {
                let value = &table.label_values[key as usize];
                let known = match classes_file {
                    Some(file) => format!(
                        "the {} classes of {} (by name or 0-based index)",
                        classes.len(),
                        file.display()
                    ),
                    None => format!("the labels of {TRAIN_FILE} ({})", classes.join(", ")),
                };
                return Err(Error::InvalidLine {
                    path: table.path.clone(),
                    line: table.lines[row],
                    reason: format!("label {value:?} is not one of {known}"),
                });
            }
        }
    }
    Ok(labels)
}

fn make_split(images: Vec<u8>, labels: Vec<u32>, shape: ImageShape) -> Split {
    Split {
        images,
        labels,
        shape,
        paths: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_parse_cases() {
        assert_eq!(parse_pixel(b" 255 "), Ok(255));
        assert!(parse_pixel(b"256").unwrap_err().contains("outside 0..=255"));
        assert!(parse_pixel(b"-1").unwrap_err().contains("outside 0..=255"));
        assert!(
            parse_pixel(b"0.5")
                .unwrap_err()
                .contains("not a whole number")
        );
    }

    #[test]
    fn label_values_sort_numerically() {
        let values = ["10", "9", "2"].map(String::from);
        assert_eq!(sorted_label_values(&values), ["2", "9", "10"]);
        let values = ["dog", "cat", "10"].map(String::from);
        assert_eq!(sorted_label_values(&values), ["10", "cat", "dog"]);
    }

    #[test]
    fn header_needs_two_non_numbers() {
        // "cat,1,2" has one non-number (a string label), so it is a data row.
        let table = parse_table(Path::new("t.csv"), b"cat,1,2\ndog,3,4\n", None).unwrap();
        assert!(table.header.is_none());
        assert_eq!(table.rows(), 2);
        let table = parse_table(Path::new("t.csv"), b"label,a,b\ncat,1,2\n", None).unwrap();
        assert_eq!(table.header.as_deref().unwrap(), ["label", "a", "b"]);
        assert_eq!(table.rows(), 1);
    }
}
