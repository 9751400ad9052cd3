//! Reading a model's predictions, given labels and class names from `.npy`, CSV and Parquet
//! files, and deciding whether the predictions are logits or probabilities.
//!
//! Every error names the file and the offending value, so that `toploss score` can print it as
//! it is.

use std::fs;
use std::path::Path;

use anyhow::{Context, bail};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use ndarray::ArrayD;
use ndarray_npy::ReadNpyExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use toploss_core::loss::{looks_like_double_softmax, looks_like_probabilities, softmax};

use crate::args::KindArg;

/// An `N x K` matrix of predictions, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// `rows x cols` values; row `i` is sample `i`.
    pub values: Vec<f64>,
    /// `N`, the number of samples.
    pub rows: usize,
    /// `K`, the number of classes.
    pub cols: usize,
}

/// The file formats understood, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Npy,
    Csv,
    Parquet,
}

fn format_of(path: &Path) -> anyhow::Result<Format> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("npy") => Ok(Format::Npy),
        Some("csv" | "txt") => Ok(Format::Csv),
        Some("parquet" | "pq") => Ok(Format::Parquet),
        _ => bail!(
            "{}: unknown file type; name the file .npy, .csv, .txt or .parquet",
            path.display()
        ),
    }
}

/// Reads `N x K` predictions (logits or probabilities) and checks that every value is finite.
pub fn read_predictions(path: &Path) -> anyhow::Result<Matrix> {
    let matrix = match format_of(path)? {
        Format::Npy => read_npy_matrix(path)?,
        Format::Csv => read_csv_matrix(path)?,
        Format::Parquet => read_parquet_matrix(path)?,
    };
    if matrix.rows == 0 {
        bail!("{}: no predictions (0 rows)", path.display());
    }
    if let Some(index) = matrix.values.iter().position(|v| !v.is_finite()) {
        bail!(
            "{}: row {}, column {} is {}; predictions must be finite numbers",
            path.display(),
            index / matrix.cols,
            index % matrix.cols,
            matrix.values[index]
        );
    }
    Ok(matrix)
}

/// Reads `N` given labels, each a class index.
pub fn read_labels(path: &Path) -> anyhow::Result<Vec<u32>> {
    let labels = match format_of(path)? {
        Format::Npy => read_npy_labels(path)?,
        Format::Csv => read_csv_labels(path)?,
        Format::Parquet => read_parquet_labels(path)?,
    };
    if labels.is_empty() {
        bail!("{}: no labels (0 rows)", path.display());
    }
    Ok(labels)
}

/// Reads class names, one a line, in label order. A final empty line is ignored.
pub fn read_classes(path: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let names: Vec<String> = text
        .lines()
        .map(|line| line.trim_end_matches('\r').to_string())
        .collect();
    if let Some(line) = names.iter().position(|name| name.trim().is_empty()) {
        bail!(
            "{}: line {} is empty; write one class name a line, in label order",
            path.display(),
            line + 1
        );
    }
    if names.is_empty() {
        bail!("{}: no class names", path.display());
    }
    Ok(names)
}

// ---------------------------------------------------------------------------------------------
// .npy

/// The `descr` and `shape` entries of an `.npy` header, for messages and for choosing the
/// element type to read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NpyHeader {
    /// NumPy type string, for example `<f4` or `|u1`.
    descr: String,
    /// The shape as written, for example `(10000, 10)`.
    shape: String,
    /// Number of dimensions.
    ndim: usize,
}

/// Magic bytes at the start of every `.npy` file (NumPy format specification,
/// `numpy/lib/format.py`).
const NPY_MAGIC: &[u8] = b"\x93NUMPY";

fn parse_npy_header(bytes: &[u8], path: &Path) -> anyhow::Result<NpyHeader> {
    let invalid = || anyhow::anyhow!("{}: not a valid .npy file", path.display());
    if bytes.len() < 10 || !bytes.starts_with(NPY_MAGIC) {
        return Err(invalid());
    }

    // Version 1 stores the header length in 2 bytes, versions 2 and 3 in 4 bytes.
    let (start, len) = match bytes[6] {
        1 => (10, u16::from_le_bytes([bytes[8], bytes[9]]) as usize),
        2 | 3 if bytes.len() >= 12 => (
            12,
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
        ),
        _ => return Err(invalid()),
    };
    let header = bytes
        .get(start..start + len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(invalid)?;

    // The header is a Python dict literal: {'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }
    let descr = header
        .split("'descr':")
        .nth(1)
        .and_then(|rest| rest.split('\'').nth(1))
        .ok_or_else(invalid)?
        .to_string();
    let shape = header
        .split("'shape':")
        .nth(1)
        .and_then(|rest| {
            let open = rest.find('(')?;
            let close = rest.find(')')?;
            rest.get(open..=close)
        })
        .ok_or_else(invalid)?
        .to_string();
    let ndim = shape
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .filter(|part| !part.trim().is_empty())
        .count();
    Ok(NpyHeader { descr, shape, ndim })
}

fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn read_npy_as<T: ndarray_npy::ReadableElement>(
    bytes: &[u8],
    path: &Path,
) -> anyhow::Result<ArrayD<T>> {
    ArrayD::<T>::read_npy(bytes)
        .with_context(|| format!("{}: cannot read the array", path.display()))
}

fn read_npy_matrix(path: &Path) -> anyhow::Result<Matrix> {
    let bytes = read_file(path)?;
    let header = parse_npy_header(&bytes, path)?;
    if header.ndim != 2 {
        bail!(
            "{}: the array has shape {} ({}-D), but predictions must be a 2-D N x K array (one \
             row of K class scores per sample)",
            path.display(),
            header.shape,
            header.ndim
        );
    }
    let array: ArrayD<f64> = match header.descr.get(1..).unwrap_or_default() {
        "f4" => read_npy_as::<f32>(&bytes, path)?.mapv(f64::from),
        "f8" => read_npy_as::<f64>(&bytes, path)?,
        _ => bail!(
            "{}: dtype {} is not supported for predictions; save float32 or float64 (for \
             example preds.astype('float32'))",
            path.display(),
            header.descr
        ),
    };
    let (rows, cols) = (array.shape()[0], array.shape()[1]);
    Ok(Matrix {
        values: array.iter().copied().collect(),
        rows,
        cols,
    })
}

fn read_npy_labels(path: &Path) -> anyhow::Result<Vec<u32>> {
    let bytes = read_file(path)?;
    let header = parse_npy_header(&bytes, path)?;
    let shape: Vec<usize> = header
        .shape
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    let single_column = header.ndim == 2 && shape.get(1) == Some(&1);
    if header.ndim == 2 && !single_column {
        bail!(
            "{}: the labels have shape {}; multi-label input (one-hot or several labels per \
             sample) is not supported: pass one class index per sample, for example \
             labels.argmax(axis=1) of a one-hot array",
            path.display(),
            header.shape
        );
    }
    if header.ndim != 1 && !single_column {
        bail!(
            "{}: the labels have shape {} ({}-D), but they must be a 1-D array of N class \
             indices",
            path.display(),
            header.shape,
            header.ndim
        );
    }
    let values: Vec<i128> = match header.descr.get(1..).unwrap_or_default() {
        "u1" => widen(read_npy_as::<u8>(&bytes, path)?),
        "u2" => widen(read_npy_as::<u16>(&bytes, path)?),
        "u4" => widen(read_npy_as::<u32>(&bytes, path)?),
        "u8" => widen(read_npy_as::<u64>(&bytes, path)?),
        "i1" => widen(read_npy_as::<i8>(&bytes, path)?),
        "i2" => widen(read_npy_as::<i16>(&bytes, path)?),
        "i4" => widen(read_npy_as::<i32>(&bytes, path)?),
        "i8" => widen(read_npy_as::<i64>(&bytes, path)?),
        _ => bail!(
            "{}: dtype {} is not supported for labels; save integers (for example \
             labels.astype('int64'))",
            path.display(),
            header.descr
        ),
    };
    to_class_indices(values.into_iter(), path)
}

fn widen<T: Copy + Into<i128>>(array: ArrayD<T>) -> Vec<i128> {
    array.iter().map(|&v| v.into()).collect()
}

/// Converts labels to `u32`, rejecting negative values and values above `u32::MAX`.
fn to_class_indices(values: impl Iterator<Item = i128>, path: &Path) -> anyhow::Result<Vec<u32>> {
    values
        .enumerate()
        .map(|(row, value)| {
            u32::try_from(value).map_err(|_| {
                anyhow::anyhow!(
                    "{}: label {value} of sample {row} is not a class index; labels must lie in \
                     0..K",
                    path.display()
                )
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// CSV

fn csv_records(path: &Path) -> anyhow::Result<Vec<(u64, Vec<String>)>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut records = Vec::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("{}: invalid CSV", path.display()))?;
        let line = record.position().map_or(0, |p| p.line());
        records.push((line, record.iter().map(str::to_string).collect()));
    }
    Ok(records)
}

fn read_csv_matrix(path: &Path) -> anyhow::Result<Matrix> {
    let mut records = csv_records(path)?;

    // A first row that is not all numbers is a header.
    let is_numeric = |fields: &[String]| fields.iter().all(|f| f.parse::<f64>().is_ok());
    if records
        .first()
        .is_some_and(|(_, fields)| !is_numeric(fields))
    {
        records.remove(0);
    }
    let Some((first_line, first)) = records.first() else {
        bail!("{}: no rows of predictions", path.display());
    };
    let cols = first.len();
    let first_line = *first_line;

    let mut values = Vec::with_capacity(records.len() * cols);
    for (line, fields) in &records {
        if fields.len() != cols {
            bail!(
                "{}: line {line} has {} values, but line {first_line} has {cols}; every row must \
                 hold one score per class",
                path.display(),
                fields.len()
            );
        }
        for (column, field) in fields.iter().enumerate() {
            let value: f64 = field.parse().map_err(|_| {
                anyhow::anyhow!(
                    "{}: line {line}, column {}: `{field}` is not a number",
                    path.display(),
                    column + 1
                )
            })?;
            values.push(value);
        }
    }
    Ok(Matrix {
        rows: records.len(),
        cols,
        values,
    })
}

fn read_csv_labels(path: &Path) -> anyhow::Result<Vec<u32>> {
    let mut records = csv_records(path)?;

    // A first line that is not a number is a header.
    if records
        .first()
        .is_some_and(|(_, fields)| fields.len() == 1 && fields[0].parse::<i128>().is_err())
    {
        records.remove(0);
    }
    let mut values = Vec::with_capacity(records.len());
    for (line, fields) in &records {
        if fields.len() != 1 {
            bail!(
                "{}: line {line} has {} values; multi-label input (several labels per sample) \
                 is not supported: write one class index a line",
                path.display(),
                fields.len()
            );
        }
        let value: i128 = fields[0].parse().map_err(|_| {
            anyhow::anyhow!(
                "{}: line {line}: `{}` is not an integer class index",
                path.display(),
                fields[0]
            )
        })?;
        values.push(value);
    }
    to_class_indices(values.into_iter(), path)
}

// ---------------------------------------------------------------------------------------------
// Parquet

fn read_parquet(path: &Path) -> anyhow::Result<Vec<RecordBatch>> {
    let file = fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|builder| builder.build())
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: cannot read the Parquet data", path.display()))
}

/// Returns the values of a numeric column as `f64`, or `None` for a non-numeric type.
/// A null value is an error naming its row.
fn numeric_values(array: &ArrayRef, path: &Path, column: &str) -> anyhow::Result<Option<Vec<f64>>> {
    if let Some(row) = (0..array.len()).find(|&row| array.is_null(row)) {
        bail!(
            "{}: column `{column}` is null in row {row}; fill or drop missing values",
            path.display()
        );
    }
    macro_rules! collect {
        ($type:ty) => {
            array
                .as_primitive::<$type>()
                .values()
                .iter()
                .map(|&v| v as f64)
                .collect()
        };
    }
    let values = match array.data_type() {
        DataType::Float32 => collect!(Float32Type),
        DataType::Float64 => collect!(Float64Type),
        DataType::Int8 => collect!(Int8Type),
        DataType::Int16 => collect!(Int16Type),
        DataType::Int32 => collect!(Int32Type),
        DataType::Int64 => collect!(Int64Type),
        DataType::UInt8 => collect!(UInt8Type),
        DataType::UInt16 => collect!(UInt16Type),
        DataType::UInt32 => collect!(UInt32Type),
        DataType::UInt64 => collect!(UInt64Type),
        _ => return Ok(None),
    };
    Ok(Some(values))
}

/// Returns the rows of a list column (`list`, `large_list` or `fixed_size_list` of numbers), or
/// `None` for any other type.
fn list_rows(array: &ArrayRef, path: &Path, column: &str) -> anyhow::Result<Option<Vec<Vec<f64>>>> {
    let (offsets, child): (Vec<usize>, ArrayRef) = match array.data_type() {
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let offsets = list.value_offsets().iter().map(|&o| o as usize).collect();
            (offsets, list.values().clone())
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>();
            let offsets = list.value_offsets().iter().map(|&o| o as usize).collect();
            (offsets, list.values().clone())
        }
        DataType::FixedSizeList(_, size) => {
            let list = array.as_fixed_size_list();
            let size = *size as usize;
            let offsets = (0..=list.len()).map(|row| row * size).collect();
            (offsets, list.values().clone())
        }
        _ => return Ok(None),
    };
    if let Some(row) = (0..array.len()).find(|&row| array.is_null(row)) {
        bail!(
            "{}: column `{column}` is null in row {row}; fill or drop missing values",
            path.display()
        );
    }
    let Some(values) = numeric_values(&child, path, column)? else {
        bail!(
            "{}: column `{column}` is a list of {}, not of numbers",
            path.display(),
            child.data_type()
        );
    };
    Ok(Some(
        offsets
            .windows(2)
            .map(|w| values[w[0]..w[1]].to_vec())
            .collect(),
    ))
}

fn read_parquet_matrix(path: &Path) -> anyhow::Result<Matrix> {
    let batches = read_parquet(path)?;
    let Some(schema) = batches.first().map(RecordBatch::schema) else {
        bail!("{}: no rows of predictions", path.display());
    };
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();

    // Rows from one list column, or from K numeric columns.
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for batch in &batches {
        if names.len() == 1
            && let Some(list) = list_rows(batch.column(0), path, &names[0])?
        {
            rows.extend(list);
            continue;
        }
        let mut columns = Vec::with_capacity(names.len());
        for (array, name) in batch.columns().iter().zip(&names) {
            let Some(values) = numeric_values(array, path, name)? else {
                bail!(
                    "{}: column `{name}` has type {}; predictions must be one list<float> \
                     column or K numeric columns (the columns are {})",
                    path.display(),
                    array.data_type(),
                    names.join(", ")
                );
            };
            columns.push(values);
        }
        for row in 0..batch.num_rows() {
            rows.push(columns.iter().map(|column| column[row]).collect());
        }
    }

    let Some(cols) = rows.first().map(Vec::len) else {
        bail!("{}: no rows of predictions", path.display());
    };
    if let Some(row) = rows.iter().position(|r| r.len() != cols) {
        bail!(
            "{}: row {row} has {} values, but row 0 has {cols}; every row must hold one score \
             per class",
            path.display(),
            rows[row].len()
        );
    }
    Ok(Matrix {
        rows: rows.len(),
        cols,
        values: rows.into_iter().flatten().collect(),
    })
}

fn read_parquet_labels(path: &Path) -> anyhow::Result<Vec<u32>> {
    let batches = read_parquet(path)?;
    let Some(schema) = batches.first().map(RecordBatch::schema) else {
        bail!("{}: no labels (0 rows)", path.display());
    };
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let index = if names.len() == 1 {
        0
    } else if let Some(index) = names.iter().position(|n| n == "label" || n == "labels") {
        index
    } else {
        bail!(
            "{}: {} columns ({}); pass a file with one integer column, or name the label \
             column `label`",
            path.display(),
            names.len(),
            names.join(", ")
        );
    };
    let name = &names[index];

    let mut values: Vec<i128> = Vec::new();
    for batch in &batches {
        let array = batch.column(index);
        if matches!(
            array.data_type(),
            DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..)
        ) {
            bail!(
                "{}: column `{name}` holds lists; multi-label input (several labels per \
                 sample) is not supported: pass one class index per sample",
                path.display()
            );
        }
        if matches!(array.data_type(), DataType::Float32 | DataType::Float64) {
            bail!(
                "{}: column `{name}` has type {}; labels must be integers",
                path.display(),
                array.data_type()
            );
        }
        let Some(column) = numeric_values(array, path, name)? else {
            bail!(
                "{}: column `{name}` has type {}; labels must be integers",
                path.display(),
                array.data_type()
            );
        };
        // Integer columns up to 64 bits pass through f64 exactly below 2^53, far above any
        // class count; larger values are rejected below as not a class index.
        values.extend(column.into_iter().map(|v| v as i128));
    }
    to_class_indices(values.into_iter(), path)
}

// ---------------------------------------------------------------------------------------------
// Logits or probabilities

/// Predictions as probabilities, with the logits kept when the input was logits.
#[derive(Debug, Clone, PartialEq)]
pub struct Probabilities {
    /// `N x K` softmax probabilities, row-major.
    pub probs: Vec<f64>,
    /// The input logits, when `--kind` resolved to logits.
    pub logits: Option<Vec<f64>>,
    /// `K`.
    pub num_classes: usize,
    /// Warnings about the input, one sentence each, for stderr.
    pub warnings: Vec<String>,
}

/// Resolves `--kind` and returns probabilities.
///
/// - `auto`: probabilities when [`looks_like_probabilities`] (every value in `[0, 1]`, every
///   row summing to 1 within 1e-3), else logits. Values that all lie in `[0, 1]` without
///   rows summing to 1 are rejected: they are most likely per-class sigmoid (multi-label)
///   outputs, which are not supported.
/// - `logits`: softmax is applied; a warning is added when the rows already look like
///   probabilities, because softmax of probabilities squeezes every loss into a narrow band.
/// - `probabilities`: the rows are checked as probabilities by the scorers.
///
/// With probabilities, a warning is added when they look like a softmax applied twice, see
/// [`looks_like_double_softmax`].
pub fn resolve_kind(matrix: Matrix, kind: KindArg, path: &Path) -> anyhow::Result<Probabilities> {
    let Matrix { values, cols, .. } = matrix;
    let mut warnings = Vec::new();
    let as_probabilities = match kind {
        KindArg::Probabilities => true,
        KindArg::Logits => {
            if looks_like_probabilities(&values, cols) {
                warnings.push(format!(
                    "{}: every row already lies in [0, 1] and sums to 1, but --kind logits was \
                     given; softmax on probabilities squeezes every loss into a narrow band. \
                     Pass --kind probabilities if these are softmax outputs",
                    path.display()
                ));
            }
            false
        }
        KindArg::Auto => {
            let in_unit_range = values.iter().all(|v| (0.0..=1.0).contains(v));
            let probabilities = looks_like_probabilities(&values, cols);
            if in_unit_range && !probabilities {
                let (row, sum) = values
                    .chunks(cols)
                    .map(|row| row.iter().sum::<f64>())
                    .enumerate()
                    .find(|(_, sum)| (sum - 1.0).abs() > 1e-3)
                    .unwrap_or((0, f64::NAN));
                bail!(
                    "{}: every value lies in [0, 1] but row {row} sums to {sum}, not 1: \
                     multi-label (one sigmoid per class) outputs are not supported. Pass one \
                     softmax distribution per sample, or --kind logits if these are logits",
                    path.display()
                );
            }
            probabilities
        }
    };

    if as_probabilities {
        // Logits given as probabilities would give negative losses and p > 1 downstream.
        let outside = values
            .iter()
            .position(|v| !(v.is_finite() && (-1e-6..=1.0 + 1e-6).contains(v)));
        if let Some(index) = outside {
            bail!(
                "{}: value {} of sample {}, class {} is not a probability (outside [0, 1]), so \
                 these look like logits; pass --kind logits or --kind auto",
                path.display(),
                values[index],
                index / cols.max(1),
                index % cols.max(1)
            );
        }
        if looks_like_double_softmax(&values, cols) {
            warnings.push(format!(
                "{}: every probability lies in the narrow band that softmax applied twice \
                 produces, so every loss is squeezed together; pass the logits (or the \
                 probabilities before the second softmax) with --kind logits",
                path.display()
            ));
        }
        return Ok(Probabilities {
            probs: values,
            logits: None,
            num_classes: cols,
            warnings,
        });
    }
    let probs = softmax(&values, cols)
        .with_context(|| format!("{}: cannot apply softmax", path.display()))?;
    Ok(Probabilities {
        probs,
        logits: Some(values),
        num_classes: cols,
        warnings,
    })
}

/// Checks that predictions and labels describe the same samples and classes: equal counts,
/// at least 2 classes and every label below `K`.
pub fn check_against_labels(
    matrix: &Matrix,
    labels: &[u32],
    predictions_path: &Path,
    labels_path: &Path,
) -> anyhow::Result<()> {
    if matrix.rows != labels.len() {
        bail!(
            "{} has {} rows but {} has {} labels; both need one entry per sample, in the same \
             order",
            predictions_path.display(),
            matrix.rows,
            labels_path.display(),
            labels.len()
        );
    }
    if matrix.cols < 2 {
        bail!(
            "{}: {} column; predictions need one column per class and at least 2 classes",
            predictions_path.display(),
            matrix.cols
        );
    }
    if let Some(row) = labels.iter().position(|&l| l as usize >= matrix.cols) {
        bail!(
            "{}: label {} of sample {row} is out of range for the {} classes of {}; labels \
             must lie in 0..{}",
            labels_path.display(),
            labels[row],
            matrix.cols,
            predictions_path.display(),
            matrix.cols
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(values: &[f64], cols: usize) -> Matrix {
        Matrix {
            values: values.to_vec(),
            rows: values.len() / cols,
            cols,
        }
    }

    #[test]
    fn npy_header_parsed() {
        // numpy.save of a float64 array of shape (3, 2), version 1.0.
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }";
        let mut bytes = NPY_MAGIC.to_vec();
        bytes.extend([1, 0]);
        bytes.extend((dict.len() as u16).to_le_bytes());
        bytes.extend(dict.as_bytes());
        let header = parse_npy_header(&bytes, Path::new("x.npy")).unwrap();
        assert_eq!(header.descr, "<f8");
        assert_eq!(header.shape, "(3, 2)");
        assert_eq!(header.ndim, 2);
    }

    #[test]
    fn npy_header_counts_one_dimension() {
        let dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (7,), }";
        let mut bytes = NPY_MAGIC.to_vec();
        bytes.extend([1, 0]);
        bytes.extend((dict.len() as u16).to_le_bytes());
        bytes.extend(dict.as_bytes());
        assert_eq!(
            parse_npy_header(&bytes, Path::new("x.npy")).unwrap().ndim,
            1
        );
    }

    #[test]
    fn npy_header_rejects_other_files() {
        let error = parse_npy_header(b"PK\x03\x04 not numpy", Path::new("a.npy")).unwrap_err();
        assert!(error.to_string().contains("a.npy"), "{error}");
    }

    #[test]
    fn forced_probabilities_reject_logits() {
        // Row 1, class 0 contains -2.5: a logit, not a probability.
        let matrix = Matrix {
            values: vec![0.2, 0.8, -2.5, 3.0],
            rows: 2,
            cols: 2,
        };
        let error = resolve_kind(matrix, KindArg::Probabilities, Path::new("p.npy"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("value -2.5 of sample 1, class 0"), "{error}");
        assert!(error.contains("--kind logits"), "{error}");
    }

    #[test]
    fn auto_kind_detects_probabilities() {
        let result = resolve_kind(
            matrix(&[0.2, 0.8, 0.5, 0.5], 2),
            KindArg::Auto,
            Path::new("p"),
        )
        .unwrap();
        assert_eq!(result.logits, None);
        assert_eq!(result.probs, vec![0.2, 0.8, 0.5, 0.5]);
        assert!(result.warnings.is_empty());
    }

    #[test]
    fn auto_kind_applies_softmax_to_logits() {
        // softmax([0, ln 3]) = [1/4, 3/4].
        let result =
            resolve_kind(matrix(&[0.0, 3f64.ln()], 2), KindArg::Auto, Path::new("p")).unwrap();
        assert!(result.logits.is_some());
        assert!((result.probs[0] - 0.25).abs() < 1e-12);
        assert!((result.probs[1] - 0.75).abs() < 1e-12);
    }

    #[test]
    fn auto_kind_rejects_sigmoid_outputs() {
        // Both values in [0, 1], row 1 sums to 1.5: per-class sigmoids.
        let error = resolve_kind(
            matrix(&[0.5, 0.5, 0.7, 0.8], 2),
            KindArg::Auto,
            Path::new("multi.npy"),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("multi-label"), "{error}");
        assert!(error.contains("row 1 sums to 1.5"), "{error}");
    }

    #[test]
    fn declared_logits_that_sum_to_one_warn() {
        let result =
            resolve_kind(matrix(&[0.2, 0.8], 2), KindArg::Logits, Path::new("p.npy")).unwrap();
        assert!(result.logits.is_some());
        assert_eq!(result.warnings.len(), 1);
        assert!(
            result.warnings[0].contains("--kind logits"),
            "{:?}",
            result.warnings
        );
    }

    #[test]
    fn counts_and_label_range_checked() {
        let m = matrix(&[0.5, 0.5, 0.5, 0.5], 2);
        let (p, l) = (Path::new("p.npy"), Path::new("l.npy"));
        let error = check_against_labels(&m, &[0], p, l)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("2 rows") && error.contains("1 labels"),
            "{error}"
        );
        let error = check_against_labels(&m, &[0, 2], p, l)
            .unwrap_err()
            .to_string();
        assert!(error.contains("label 2 of sample 1"), "{error}");
        assert!(check_against_labels(&m, &[0, 1], p, l).is_ok());
    }
}
