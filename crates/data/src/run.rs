//! The run folder: `run.json`, `dynamics.parquet`, `probs/*.npy` and the rules for writing
//! them (atomic replace, never mixing into a folder that belongs to something else).
//!
//! Column names and JSON keys here are a public format that scripts rely on: change them only
//! together with the user guide.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, Float32Array, RecordBatch, StringArray, UInt32Array,
    cast::AsArray,
    types::{Float32Type, UInt32Type},
};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

/// File name of the run description.
pub const RUN_JSON: &str = "run.json";
/// File name of the per-sample table.
pub const DYNAMICS_PARQUET: &str = "dynamics.parquet";
/// Folder of per-epoch probability arrays.
pub const PROBS_DIR: &str = "probs";
/// File name of the out-of-fold probabilities (`train --folds K`).
pub const OOF_PROBS_NPY: &str = "oof_probs.npy";
/// File name of the injected label noise (`train --label-noise`).
pub const NOISE_JSON: &str = "noise.json";
/// File name of the final weights.
pub const MODEL_SAFETENSORS: &str = "model.safetensors";

/// Errors of reading and writing run folders.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The output folder exists and `--overwrite` was not given.
    #[error(
        "output folder {0} already exists and is not empty; choose another --out or pass --overwrite to replace the run files in it"
    )]
    OutputExists(PathBuf),
    /// The folder is not a run folder.
    #[error(
        "{0} is not a toploss run folder: it has no {RUN_JSON}; pass the --out folder of `toploss train`"
    )]
    NotARun(PathBuf),
    /// `run.json` is malformed.
    #[error("{path}: invalid run description: {source}")]
    Json {
        /// The file involved.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// `dynamics.parquet` is malformed or has unexpected columns.
    #[error("{path}: {message}")]
    Parquet {
        /// The file involved.
        path: PathBuf,
        /// The problem found.
        message: String,
    },
    /// An `.npy` file could not be written.
    #[error("{path}: {message}")]
    Npy {
        /// The file involved.
        path: PathBuf,
        /// The problem found.
        message: String,
    },
}

/// Turns a parquet writer error into an I/O error. A failed write comes back as the I/O error
/// itself, which parquet would otherwise show with an "External: " prefix.
fn parquet_io_error(error: ParquetError) -> io::Error {
    match error {
        ParquetError::External(inner) => match inner.downcast::<io::Error>() {
            Ok(source) => *source,
            Err(inner) => io::Error::other(inner),
        },
        other => io::Error::other(other),
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> RunError + '_ {
    move |source| RunError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the folder `dir` that `file` goes into, with a clear message when a file of that
/// name is in the way.
fn create_folder_for(file: &Path, dir: &Path) -> Result<(), RunError> {
    match fs::create_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(_) if dir.exists() && !dir.is_dir() => Err(RunError::Npy {
            path: file.to_path_buf(),
            message: format!(
                "cannot create the folder {}: a file of that name is in the way; move it away",
                dir.display()
            ),
        }),
        Err(source) => Err(io_error(dir)(source)),
    }
}

/// Creates `out` for a new run.
///
/// A missing folder is created with its parents. An existing empty folder is used as it is.
/// An existing non-empty folder is rejected unless `overwrite` is set. With `overwrite`, its run
/// files are replaced one by one as the run writes them, and nothing else in it is deleted.
pub fn prepare_output_dir(out: &Path, overwrite: bool) -> Result<(), RunError> {
    match fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() && !overwrite {
                return Err(RunError::OutputExists(out.to_path_buf()));
            }
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(out).map_err(io_error(out))?;
        }
        Err(error) => return Err(io_error(out)(error)),
    }
    // Probe writability now, so that a read-only folder fails before an hour of training.
    let probe = tempfile::NamedTempFile::new_in(out).map_err(io_error(out))?;
    drop(probe);
    Ok(())
}

/// Returns the file that an atomic write to `path` replaces by a rename: `path` itself, or,
/// when `path` is a symbolic link, the file it points to, so that the link stays.
///
/// A path that exists and is not a regular file (a folder, a named pipe, a device) is an
/// error, because the rename would replace it with a plain file.
pub fn replaced_file(path: &Path) -> io::Result<PathBuf> {
    let target = match fs::symlink_metadata(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(path.to_path_buf()),
        Err(error) => return Err(error),
        Ok(metadata) if metadata.file_type().is_symlink() => fs::canonicalize(path)?,
        Ok(_) => path.to_path_buf(),
    };
    if fs::metadata(&target)?.is_file() {
        Ok(target)
    } else {
        let problem = if target == path {
            "is not a regular file".to_string()
        } else {
            format!("links to {}, which is not a regular file", target.display())
        };
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{problem} (a folder, pipe or device); toploss writes a new file and renames it \
                 into place, so give the path of a file"
            ),
        ))
    }
}

/// Writes `path` atomically: the bytes go to a temporary file in the same folder, which then
/// replaces `path` by a rename, so a reader never sees a partial file and a failure leaves the
/// previous version in place. A symbolic link at `path` keeps pointing to the new file.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut (dyn Write + Send)) -> io::Result<()>,
) -> Result<(), RunError> {
    let target = replaced_file(path).map_err(io_error(path))?;
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = new_temp_file(dir).map_err(io_error(path))?;
    {
        let mut buffered = io::BufWriter::new(file.as_file_mut());
        write(&mut buffered).map_err(io_error(path))?;
        buffered.flush().map_err(io_error(path))?;
    }
    file.as_file().sync_all().map_err(io_error(path))?;
    file.persist(&target)
        .map_err(|error| io_error(path)(error.error))?;
    Ok(())
}

/// Creates a temporary file in `dir` with the mode of a file written directly (`0644` less the
/// umask on Unix), because tempfile's own default is owner-only.
pub(crate) fn new_temp_file(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".toploss-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o644));
    }
    builder.tempfile_in(dir)
}

/// The dataset a run was trained on, as recorded in `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// Dataset format (`mnist`, `fashion-mnist`, `idx`, ...).
    pub format: String,
    /// Path as given on the command line.
    pub path: String,
    /// Absolute form of `path` at training time, so that commands run from another folder
    /// still find the images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_path: Option<String>,
    /// Content fingerprint, see `toploss_data::fingerprint`.
    pub fingerprint: String,
    /// Samples in the train split that the run used.
    pub train_count: usize,
    /// Samples in the test split that the run used.
    pub test_count: usize,
}

/// Metrics of one finished epoch. Losses are plain cross-entropy (natural log, no smoothing)
/// from the evaluation pass, so runs with and without label smoothing compare directly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: u32,
    /// Mean cross-entropy over the train split after the epoch (nats).
    pub train_loss: f64,
    /// Share of the train split predicted right after the epoch (0 to 1).
    pub train_accuracy: f64,
    /// Mean training objective during the epoch, smoothing included (nats).
    pub train_objective: f64,
    /// Share of the test split predicted right (0 to 1).
    pub test_accuracy: f64,
    /// Mean cross-entropy over the test split (nats).
    pub test_loss: f64,
    /// Wall time of the epoch, training and evaluation passes together (seconds).
    pub seconds: f64,
}

/// Progress of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Training is under way or was interrupted; `epochs` lists the finished ones.
    Running,
    /// All epochs finished and the weights were written.
    Complete,
    /// Stopped by Ctrl-C or SIGTERM; `epochs` lists the finished ones.
    Interrupted,
    /// Stopped by an error; `epochs` lists the finished ones.
    Failed,
}

impl RunStatus {
    /// Returns the name used in `run.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Complete => "complete",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The model of a run, as recorded in `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Architecture name (`shallow-cnn`, `mlp`).
    pub architecture: String,
    /// Input channels.
    pub channels: usize,
    /// Input height in pixels.
    pub height: usize,
    /// Input width in pixels.
    pub width: usize,
    /// Weights file inside the run folder, once written.
    pub weights: Option<String>,
}

/// Contents of `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Version of toploss that wrote the run.
    pub toploss_version: String,
    /// Whether the run finished.
    pub status: RunStatus,
    /// Class names in label order.
    pub classes: Vec<String>,
    /// Every training option, as given or defaulted.
    pub config: serde_json::Value,
    /// The dataset.
    pub dataset: DatasetInfo,
    /// The model.
    pub model: ModelInfo,
    /// Finished epochs, in order.
    pub epochs: Vec<EpochMetrics>,
}

impl RunInfo {
    /// Reads `RUN/run.json`.
    pub fn read(run_dir: &Path) -> Result<Self, RunError> {
        let path = run_dir.join(RUN_JSON);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(RunError::NotARun(run_dir.to_path_buf()));
            }
            Err(error) => return Err(io_error(&path)(error)),
        };
        serde_json::from_slice(&bytes).map_err(|source| RunError::Json { path, source })
    }

    /// Writes `RUN/run.json` atomically.
    pub fn write(&self, run_dir: &Path) -> Result<(), RunError> {
        let path = run_dir.join(RUN_JSON);
        write_atomic(&path, |out| {
            serde_json::to_writer_pretty(&mut *out, self).map_err(io::Error::other)?;
            out.write_all(b"\n")
        })
    }

    /// Returns the last finished epoch, if any.
    pub fn last_epoch(&self) -> Option<u32> {
        self.epochs.last().map(|metrics| metrics.epoch)
    }
}

/// A dataset split, as named in run files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitName {
    /// The training split.
    Train,
    /// The test split.
    Test,
}

impl SplitName {
    /// Returns the name used in files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            SplitName::Train => "train",
            SplitName::Test => "test",
        }
    }
}

impl std::fmt::Display for SplitName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-sample results of one split at one epoch, in id order: row `i` is sample id `i`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SplitDynamics {
    /// Given label used in training (after any relabelling).
    pub label: Vec<u32>,
    /// Argmax class.
    pub predicted: Vec<u32>,
    /// Cross-entropy against `label` (nats).
    pub loss: Vec<f32>,
    /// Softmax probability of `label`.
    pub p_label: Vec<f32>,
    /// Softmax probability of `predicted`.
    pub p_predicted: Vec<f32>,
    /// Logit of `label` minus the largest other logit.
    pub margin: Vec<f32>,
    /// In-loop training margin (train split only; `None` for discarded samples and the test split).
    pub train_margin: Vec<Option<f32>>,
}

impl SplitDynamics {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.loss.len()
    }

    /// Returns true when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.loss.is_empty()
    }
}

/// Returns the arrow schema of `dynamics.parquet`.
pub fn dynamics_schema() -> Schema {
    Schema::new(vec![
        Field::new("epoch", DataType::UInt32, false),
        Field::new("split", DataType::Utf8, false),
        Field::new("id", DataType::UInt32, false),
        Field::new("label", DataType::UInt32, false),
        Field::new("predicted", DataType::UInt32, false),
        Field::new("loss", DataType::Float32, false),
        Field::new("p_label", DataType::Float32, false),
        Field::new("p_predicted", DataType::Float32, false),
        Field::new("margin", DataType::Float32, false),
        Field::new("train_margin", DataType::Float32, true),
    ])
}

fn split_batch(epoch: u32, split: SplitName, rows: &SplitDynamics) -> Result<RecordBatch, String> {
    let n = rows.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from(vec![epoch; n])),
        Arc::new(StringArray::from(vec![split.as_str(); n])),
        Arc::new(UInt32Array::from_iter_values(0..n as u32)),
        Arc::new(UInt32Array::from(rows.label.clone())),
        Arc::new(UInt32Array::from(rows.predicted.clone())),
        Arc::new(Float32Array::from(rows.loss.clone())),
        Arc::new(Float32Array::from(rows.p_label.clone())),
        Arc::new(Float32Array::from(rows.p_predicted.clone())),
        Arc::new(Float32Array::from(rows.margin.clone())),
        Arc::new(Float32Array::from(rows.train_margin.clone())),
    ];
    RecordBatch::try_new(Arc::new(dynamics_schema()), columns).map_err(|e| e.to_string())
}

/// Every epoch's per-sample results of a run, as written to `dynamics.parquet`.
#[derive(Debug, Clone, Default)]
pub struct Dynamics {
    /// `(epoch, split, rows)` in the order they were recorded.
    pub parts: Vec<(u32, SplitName, SplitDynamics)>,
}

impl Dynamics {
    /// Total number of rows.
    pub fn rows(&self) -> usize {
        self.parts.iter().map(|(_, _, rows)| rows.len()).sum()
    }

    /// Returns the rows of one epoch and split.
    pub fn get(&self, epoch: u32, split: SplitName) -> Option<&SplitDynamics> {
        self.parts
            .iter()
            .find(|(e, s, _)| *e == epoch && *s == split)
            .map(|(_, _, rows)| rows)
    }

    /// Checks that every label and prediction is below `classes`, the length of run.json's
    /// class list, so that callers can look up class names. `path` names the dynamics file in
    /// the error.
    pub fn check_classes(&self, classes: usize, path: &Path) -> Result<(), RunError> {
        for (epoch, split, rows) in &self.parts {
            let out_of_range =
                rows.label
                    .iter()
                    .zip(&rows.predicted)
                    .position(|(&label, &predicted)| {
                        label as usize >= classes || predicted as usize >= classes
                    });
            if let Some(id) = out_of_range {
                let value = rows.label[id].max(rows.predicted[id]);
                return Err(RunError::Parquet {
                    path: path.to_path_buf(),
                    message: format!(
                        "class {value} of {split} id {id} (epoch {epoch}) is out of range: \
                         run.json lists {classes} classes (0..{classes}). The run folder's \
                         files come from different runs; train the run again"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Epoch numbers present, ascending.
    pub fn epochs(&self) -> Vec<u32> {
        let mut epochs: Vec<u32> = self.parts.iter().map(|(epoch, _, _)| *epoch).collect();
        epochs.sort_unstable();
        epochs.dedup();
        epochs
    }

    /// Writes all parts to `path` atomically, one row group per (epoch, split).
    pub fn write(&self, path: &Path) -> Result<(), RunError> {
        let parquet_error = |message: String| RunError::Parquet {
            path: path.to_path_buf(),
            message,
        };
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let mut batches = Vec::with_capacity(self.parts.len());
        for (epoch, split, rows) in &self.parts {
            batches.push(split_batch(*epoch, *split, rows).map_err(parquet_error)?);
        }
        write_atomic(path, |out| {
            let mut writer =
                ArrowWriter::try_new(out, Arc::new(dynamics_schema()), Some(properties))
                    .map_err(parquet_io_error)?;
            for batch in &batches {
                writer.write(batch).map_err(parquet_io_error)?;
                writer.flush().map_err(parquet_io_error)?;
            }
            writer.close().map_err(parquet_io_error)?;
            Ok(())
        })
    }

    /// Reads `dynamics.parquet`, keeping only `epoch` and `split` when given.
    ///
    /// Rows of one (epoch, split) may come in any order in the file; they are placed by `id`.
    pub fn read(
        path: &Path,
        epoch: Option<u32>,
        split: Option<SplitName>,
    ) -> Result<Self, RunError> {
        let parquet_error = |message: String| RunError::Parquet {
            path: path.to_path_buf(),
            message,
        };
        let file = fs::File::open(path).map_err(io_error(path))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|builder| builder.with_batch_size(65_536).build())
            .map_err(|e| parquet_error(e.to_string()))?;

        let mut dynamics = Dynamics::default();
        for batch in reader {
            let batch = batch.map_err(|e| parquet_error(e.to_string()))?;
            let column = |name: &str| {
                batch
                    .column_by_name(name)
                    .ok_or_else(|| parquet_error(format!("missing column `{name}`")))
            };
            let u32s = |name: &str| -> Result<Vec<u32>, RunError> {
                let array = column(name)?;
                let values = array
                    .as_primitive_opt::<UInt32Type>()
                    .ok_or_else(|| parquet_error(format!("column `{name}` is not u32")))?;
                Ok(values.values().to_vec())
            };
            let f32s = |name: &str| -> Result<Vec<Option<f32>>, RunError> {
                let array = column(name)?;
                let values = array
                    .as_primitive_opt::<Float32Type>()
                    .ok_or_else(|| parquet_error(format!("column `{name}` is not f32")))?;
                Ok(values.iter().collect())
            };
            let splits = column("split")?;
            let splits = splits
                .as_string_opt::<i32>()
                .ok_or_else(|| parquet_error("column `split` is not utf8".into()))?;

            let epochs = u32s("epoch")?;
            let ids = u32s("id")?;
            let labels = u32s("label")?;
            let predicted = u32s("predicted")?;
            let loss = f32s("loss")?;
            let p_label = f32s("p_label")?;
            let p_predicted = f32s("p_predicted")?;
            let margin = f32s("margin")?;
            let train_margin = f32s("train_margin")?;

            for row in 0..batch.num_rows() {
                let row_split = match splits.value(row) {
                    "train" => SplitName::Train,
                    "test" => SplitName::Test,
                    other => {
                        return Err(parquet_error(format!(
                            "row {row}: unknown split `{other}` (expected train or test)"
                        )));
                    }
                };
                if epoch.is_some_and(|e| e != epochs[row]) || split.is_some_and(|s| s != row_split)
                {
                    continue;
                }
                let part = dynamics.part_mut(epochs[row], row_split);
                let id = ids[row] as usize;
                part.ensure_len(id + 1);
                part.label[id] = labels[row];
                part.predicted[id] = predicted[row];
                part.loss[id] = loss[row].unwrap_or(f32::NAN);
                part.p_label[id] = p_label[row].unwrap_or(f32::NAN);
                part.p_predicted[id] = p_predicted[row].unwrap_or(f32::NAN);
                part.margin[id] = margin[row].unwrap_or(f32::NAN);
                part.train_margin[id] = train_margin[row];
            }
        }
        Ok(dynamics)
    }

    fn part_mut(&mut self, epoch: u32, split: SplitName) -> &mut SplitDynamics {
        let index = match self
            .parts
            .iter()
            .position(|(e, s, _)| *e == epoch && *s == split)
        {
            Some(index) => index,
            None => {
                self.parts.push((epoch, split, SplitDynamics::default()));
                self.parts.len() - 1
            }
        };
        &mut self.parts[index].2
    }
}

impl SplitDynamics {
    fn ensure_len(&mut self, n: usize) {
        if self.loss.len() < n {
            self.label.resize(n, 0);
            self.predicted.resize(n, 0);
            self.loss.resize(n, f32::NAN);
            self.p_label.resize(n, f32::NAN);
            self.p_predicted.resize(n, f32::NAN);
            self.margin.resize(n, f32::NAN);
            self.train_margin.resize(n, None);
        }
    }
}

/// Path of the probabilities of `split` after `epoch` inside a run folder.
pub fn probs_path(run_dir: &Path, split: SplitName, epoch: u32) -> PathBuf {
    run_dir
        .join(PROBS_DIR)
        .join(format!("{}-e{epoch:02}.npy", split.as_str()))
}

/// Writes an `N x K` float32 array as `.npy` (version 1.0, C order, little-endian), atomically.
pub fn write_npy_f32(
    path: &Path,
    values: &[f32],
    rows: usize,
    cols: usize,
) -> Result<(), RunError> {
    if values.len() != rows * cols {
        return Err(RunError::Npy {
            path: path.to_path_buf(),
            message: format!(
                "expected {rows} x {cols} = {} values, got {}",
                rows * cols,
                values.len()
            ),
        });
    }
    if let Some(dir) = path.parent() {
        create_folder_for(path, dir)?;
    }
    let array =
        ndarray::ArrayView2::from_shape((rows, cols), values).map_err(|e| RunError::Npy {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    write_atomic(path, |out| {
        ndarray_npy::WriteNpyExt::write_npy(&array, out).map_err(io::Error::other)
    })
}

/// Reads an `N x K` float32 `.npy` file.
pub fn read_npy_f32(path: &Path) -> Result<ndarray::Array2<f32>, RunError> {
    let file = fs::File::open(path).map_err(io_error(path))?;
    ndarray_npy::ReadNpyExt::read_npy(io::BufReader::new(file)).map_err(|e| RunError::Npy {
        path: path.to_path_buf(),
        message: format!("not a 2-D float32 .npy array: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_rows(n: usize, with_margin: bool) -> SplitDynamics {
        SplitDynamics {
            label: (0..n as u32).map(|i| i % 3).collect(),
            predicted: (0..n as u32).map(|i| (i + 1) % 3).collect(),
            loss: (0..n).map(|i| i as f32 * 0.5).collect(),
            p_label: vec![0.25; n],
            p_predicted: vec![0.5; n],
            margin: vec![-1.0; n],
            train_margin: (0..n)
                .map(|i| (with_margin && i != 1).then_some(i as f32))
                .collect(),
        }
    }

    #[test]
    fn dynamics_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DYNAMICS_PARQUET);
        let dynamics = Dynamics {
            parts: vec![
                (1, SplitName::Train, sample_rows(5, true)),
                (1, SplitName::Test, sample_rows(3, false)),
                (2, SplitName::Train, sample_rows(5, true)),
            ],
        };
        dynamics.write(&path).unwrap();

        let all = Dynamics::read(&path, None, None).unwrap();
        assert_eq!(all.rows(), 13);
        assert_eq!(all.epochs(), vec![1, 2]);
        assert_eq!(all.get(1, SplitName::Train), Some(&sample_rows(5, true)));
        assert_eq!(all.get(1, SplitName::Test), Some(&sample_rows(3, false)));

        let one = Dynamics::read(&path, Some(2), Some(SplitName::Train)).unwrap();
        assert_eq!(one.parts.len(), 1);
        assert_eq!(one.get(2, SplitName::Train).unwrap().train_margin[1], None);
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_keeps_symlink_and_rejects_special_files() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &Path| write_atomic(path, |file| file.write_all(b"new"));

        // Through a symbolic link the target is replaced and the link stays a link.
        let target = dir.path().join("target.txt");
        fs::write(&target, "old").unwrap();
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write(&link).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");

        // A folder, a named pipe and a link to a folder are left alone, with an error.
        let folder = dir.path().join("folder");
        fs::create_dir(&folder).unwrap();
        let pipe = dir.path().join("pipe");
        let mkfifo = std::process::Command::new("mkfifo")
            .arg(&pipe)
            .status()
            .unwrap();
        assert!(mkfifo.success());
        let folder_link = dir.path().join("folder-link");
        std::os::unix::fs::symlink(&folder, &folder_link).unwrap();
        for path in [&folder, &pipe, &folder_link] {
            let error = write(path).unwrap_err().to_string();
            assert!(error.contains("not a regular file"), "{error}");
            assert!(error.contains(&path.display().to_string()), "{error}");
        }
        assert!(folder.is_dir());
        assert!(!fs::metadata(&pipe).unwrap().is_file());
        assert!(
            fs::symlink_metadata(&folder_link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn output_dir_refuses_non_empty() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("keep.txt"), "x").unwrap();
        let error = prepare_output_dir(dir.path(), false).unwrap_err();
        assert!(error.to_string().contains("--overwrite"), "{error}");
        prepare_output_dir(dir.path(), true).unwrap();
        assert!(dir.path().join("keep.txt").exists());
    }

    #[test]
    fn output_dir_created_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a/b");
        prepare_output_dir(&out, false).unwrap();
        assert!(out.is_dir());
    }

    #[test]
    fn npy_round_trip_and_shape_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = probs_path(dir.path(), SplitName::Test, 3);
        assert!(path.ends_with("probs/test-e03.npy"));
        write_npy_f32(&path, &[0.1, 0.9, 0.6, 0.4], 2, 2).unwrap();
        let array = read_npy_f32(&path).unwrap();
        assert_eq!(array.shape(), &[2, 2]);
        assert_eq!(array[[1, 0]], 0.6);
        assert!(write_npy_f32(&path, &[0.1], 2, 2).is_err());
    }

    #[test]
    fn run_json_missing_names_folder() {
        let dir = tempfile::tempdir().unwrap();
        let error = RunInfo::read(dir.path()).unwrap_err();
        assert!(matches!(error, RunError::NotARun(_)));
        assert!(error.to_string().contains("run.json"));
    }
}
