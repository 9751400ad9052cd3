//! The dynamics recorder: turns each finished epoch into run-folder files.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};

use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};
use toploss_data::run::{
    DYNAMICS_PARQUET, Dynamics, EpochMetrics, MODEL_SAFETENSORS, RunInfo, RunStatus, SplitName,
    probs_path, write_npy_f32,
};

use crate::Error;
use crate::fit::EpochResult;
use crate::model::Classifier;

/// Policy for which epochs keep their `probs/SPLIT-eNN.npy` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SaveProbs {
    /// Only the last finished epoch (earlier files are removed as the run goes on).
    #[default]
    Last,
    /// Every epoch: `N x K x 4` bytes per split and epoch.
    All,
}

/// Writes `run.json`, `dynamics.parquet` and `probs/` after every epoch, and the weights at
/// the end. Each file is replaced atomically, so an interrupted run leaves a consistent folder
/// that describes the finished epochs. A run that stops early keeps the weights of the last
/// epoch that run.json lists.
///
/// An epoch's files are written on a background thread while the next epoch trains, and
/// run.json lists an epoch only once its other files are written. If that write fails,
/// [`write_failed`](Self::write_failed) turns true at once, so the training loop can stop, and
/// the next [`wait`](Self::wait), [`record`](Self::record), [`mark_stopped`](Self::mark_stopped)
/// or [`finish`](Self::finish) returns the error and leaves run.json marked failed.
pub struct Recorder {
    dir: PathBuf,
    /// The run description, listing the epochs whose files are all written.
    info: RunInfo,
    /// The rows of those epochs, while no write is running.
    dynamics: Dynamics,
    /// The thread writing the last epoch's files.
    writer: Option<JoinHandle<Written>>,
    /// Set by the writer thread when its write fails.
    failed: Arc<AtomicBool>,
    /// The model after the epoch being written, until its write succeeds.
    pending_model: Option<Classifier>,
    /// The model after the last epoch listed in `info`.
    last_model: Option<Classifier>,
    classes: usize,
    save_probs: SaveProbs,
}

/// The result of the writer thread: the rows (also after a failed write, so none are lost)
/// and the epoch's metrics, or the error of its write.
struct Written {
    dynamics: Dynamics,
    result: Result<EpochMetrics, Error>,
}

impl Recorder {
    /// Starts recording into `dir` (which must exist) and writes the initial `run.json`.
    pub fn new(dir: &Path, mut info: RunInfo, save_probs: SaveProbs) -> Result<Self, Error> {
        info.status = RunStatus::Running;
        info.epochs.clear();
        info.write(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            classes: info.classes.len(),
            info,
            dynamics: Dynamics::default(),
            writer: None,
            failed: Arc::new(AtomicBool::new(false)),
            pending_model: None,
            last_model: None,
            save_probs,
        })
    }

    /// Waits for the files of the last recorded epoch. After a failed write it marks run.json
    /// failed (best effort) and returns the write's error.
    pub fn wait(&mut self) -> Result<(), Error> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        let written = match writer.join() {
            Ok(written) => written,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        self.dynamics = written.dynamics;
        let model = self.pending_model.take();
        match written.result {
            Ok(metrics) => {
                self.info.epochs.push(metrics);
                self.last_model = model;
                Ok(())
            }
            Err(error) => {
                self.mark_failed();
                Err(error)
            }
        }
    }

    /// Marks run.json failed, best effort: the error that made the run fail matters more.
    fn mark_failed(&mut self) {
        self.info.status = RunStatus::Failed;
        if let Err(mark_error) = self.info.write(&self.dir) {
            tracing::warn!("cannot mark {} as failed: {mark_error}", self.dir.display());
        }
    }

    /// Returns true once a background write has failed. [`wait`](Self::wait) returns its
    /// error.
    pub fn write_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Returns the run folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the run description. It lists the epochs whose files are written, so the epoch
    /// being written in the background appears only after [`wait`](Self::wait).
    pub fn info(&self) -> &RunInfo {
        &self.info
    }

    /// Records one epoch and returns its metrics at once. The epoch's files are written in the
    /// background (see the type's documentation).
    pub fn record(&mut self, result: EpochResult) -> Result<EpochMetrics, Error> {
        self.wait()?;
        let metrics = EpochMetrics {
            epoch: result.epoch,
            train_loss: result.train.mean_loss(),
            train_accuracy: result.train.accuracy(),
            train_objective: result.train_objective,
            test_accuracy: result.test.accuracy(),
            test_loss: result.test.mean_loss(),
            seconds: result.seconds,
        };
        let stale_epoch = match self.save_probs {
            SaveProbs::Last => self.info.last_epoch(),
            SaveProbs::All => None,
        };
        self.pending_model = Some(result.model.clone());
        let mut info = self.info.clone();
        info.epochs.push(metrics.clone());
        let files = EpochFiles {
            dir: self.dir.clone(),
            info,
            classes: self.classes,
            stale_epoch,
        };
        let mut dynamics = std::mem::take(&mut self.dynamics);
        let failed = Arc::clone(&self.failed);
        let written = metrics.clone();
        let writer = thread::Builder::new()
            .name("toploss-recorder".to_string())
            .spawn(move || {
                let result = files.write(result, &mut dynamics).map(|()| written);
                if result.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                Written { dynamics, result }
            })
            .map_err(|source| Error::Io {
                path: self.dir.clone(),
                source,
            })?;
        self.writer = Some(writer);
        Ok(metrics)
    }

    /// Records that training stopped early with `status`, keeping the finished epochs, and
    /// saves the weights after the last of them. If the last epoch's write failed, the run is
    /// marked failed instead and that error returned. Weights that cannot be saved only get a
    /// warning: the status matters more, and run.json then names no weights file.
    pub fn mark_stopped(&mut self, status: RunStatus) -> Result<(), Error> {
        self.wait()?;
        if let Some(model) = self.last_model.take() {
            let path = self.dir.join(MODEL_SAFETENSORS);
            match save_weights(&model, &path) {
                Ok(()) => self.info.model.weights = Some(MODEL_SAFETENSORS.to_string()),
                Err(error) => tracing::warn!(
                    "failed to save the weights of the last finished epoch, so run.json names no \
                     weights file: {error}"
                ),
            }
        }
        self.info.status = status;
        self.info.write(&self.dir)?;
        Ok(())
    }

    /// Writes the final weights and marks the run complete. If that fails, or the last
    /// epoch's write failed, the run is marked failed (best effort) and the error returned.
    pub fn finish(&mut self, model: &Classifier) -> Result<(), Error> {
        self.wait()?;
        self.last_model = None;
        let path = self.dir.join(MODEL_SAFETENSORS);
        if let Err(error) = save_weights(model, &path) {
            self.mark_failed();
            return Err(error);
        }
        self.info.model.weights = Some(MODEL_SAFETENSORS.to_string());
        self.info.status = RunStatus::Complete;
        self.info.write(&self.dir)?;
        Ok(())
    }
}

impl Drop for Recorder {
    /// Waits for the last epoch's files, so that a recorder dropped on an error path leaves
    /// no write half done when the process exits.
    fn drop(&mut self) {
        if self.writer.is_some()
            && let Err(error) = self.wait()
        {
            tracing::warn!("failed to write the files of the last epoch: {error}");
        }
    }
}

/// The inputs of one epoch's file writes, moved to the thread of [`Recorder::record`].
struct EpochFiles {
    dir: PathBuf,
    /// The run description with this epoch's metrics already added.
    info: RunInfo,
    classes: usize,
    /// The epoch whose probabilities files to remove once this epoch's are written.
    stale_epoch: Option<u32>,
}

impl EpochFiles {
    /// Writes the probabilities, then the dynamics with this epoch's rows added to
    /// `dynamics`, then `run.json`, and only then removes the stale probabilities. So run.json
    /// never names an epoch whose files are missing, and a failed write keeps the files of the
    /// epochs before. A failed write also takes this epoch's rows out of `dynamics` again.
    fn write(self, result: EpochResult, dynamics: &mut Dynamics) -> Result<(), Error> {
        let epoch = result.epoch;
        let written = self.write_files(result, dynamics);
        if written.is_err() {
            dynamics.parts.retain(|(e, _, _)| *e != epoch);
        }
        written
    }

    fn write_files(&self, result: EpochResult, dynamics: &mut Dynamics) -> Result<(), Error> {
        for (split, eval) in [
            (SplitName::Train, &result.train),
            (SplitName::Test, &result.test),
        ] {
            let path = probs_path(&self.dir, split, result.epoch);
            write_npy_f32(&path, &eval.probs, eval.rows.len(), self.classes)?;
        }
        dynamics
            .parts
            .push((result.epoch, SplitName::Train, result.train.rows));
        dynamics
            .parts
            .push((result.epoch, SplitName::Test, result.test.rows));
        dynamics.write(&self.dir.join(DYNAMICS_PARQUET))?;
        self.info.write(&self.dir)?;
        if let Some(stale) = self.stale_epoch {
            for split in [SplitName::Train, SplitName::Test] {
                remove_if_present(&probs_path(&self.dir, split, stale))?;
            }
        }
        Ok(())
    }
}

fn remove_if_present(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Saves `model` as safetensors at `path`, through a temporary file and a rename.
pub fn save_weights(model: &Classifier, path: &Path) -> Result<(), Error> {
    let target = toploss_data::run::replaced_file(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let temporary = target.with_extension("safetensors.tmp");
    // burn adds its own "version" key, so toploss's version goes under a key of its own.
    let mut store = SafetensorsStore::from_file(&temporary)
        .metadata("producer", "toploss")
        .metadata("toploss_version", env!("CARGO_PKG_VERSION"));
    model
        .save_into(&mut store)
        .map_err(|error| Error::Weights {
            path: path.to_path_buf(),
            message: error.to_string(),
        })?;
    // Same mode as the other run files, which are written 0644 less the umask.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let permissions = fs::Permissions::from_mode(0o644);
        fs::set_permissions(&temporary, permissions).map_err(|source| Error::Io {
            path: temporary.clone(),
            source,
        })?;
    }
    fs::rename(&temporary, &target).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads weights written by [`save_weights`] into `model`.
pub fn load_weights(model: &mut Classifier, path: &Path) -> Result<(), Error> {
    let mut store = SafetensorsStore::from_file(path);
    model
        .load_from(&mut store)
        .map_err(|error| Error::Weights {
            path: path.to_path_buf(),
            message: error.to_string(),
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{SampleResult, SplitEval};
    use crate::model::{InputSpec, ModelKind};
    use burn::prelude::{Device, Tensor};
    use toploss_data::run::{DatasetInfo, ModelInfo, read_npy_f32};

    fn run_info() -> RunInfo {
        RunInfo {
            toploss_version: "0.1.0".into(),
            status: RunStatus::Running,
            classes: vec!["a".into(), "b".into()],
            config: serde_json::Value::Null,
            dataset: DatasetInfo {
                format: "csv".into(),
                path: "data.csv".into(),
                resolved_path: None,
                fingerprint: "0".into(),
                train_count: 3,
                test_count: 1,
            },
            model: ModelInfo {
                architecture: "mlp".into(),
                channels: 1,
                height: 2,
                width: 2,
                weights: None,
            },
            epochs: Vec::new(),
        }
    }

    /// Returns an epoch whose samples all have loss `loss` and p(label) 0.25.
    fn epoch(epoch: u32, loss: f32) -> EpochResult {
        let split = |labels: &[u32]| {
            let mut eval = SplitEval::for_labels(labels, 2);
            for _ in labels {
                eval.push(&SampleResult {
                    predicted: 0,
                    loss,
                    p_label: 0.25,
                    p_predicted: 0.75,
                    margin: -1.0,
                });
            }
            eval.probs.fill(0.5);
            eval
        };
        EpochResult {
            epoch,
            train: split(&[0, 1, 1]),
            test: split(&[1]),
            train_objective: f64::from(loss),
            seconds: 1.0,
            model: tiny_model(),
        }
    }

    /// Builds an MLP for 2x2 images with freshly drawn weights, other ones on every call.
    fn tiny_model() -> Classifier {
        let spec = InputSpec {
            channels: 1,
            height: 2,
            width: 2,
            classes: 2,
        };
        let device = Device::flex();
        let model = Classifier::new(ModelKind::Mlp, spec, &device);
        // burn draws parameters at their first use, and a clone made before then draws its
        // own. A forward pass draws them once, as training does.
        model.forward(Tensor::<4>::zeros([1, 1, 2, 2], &device));
        model
    }

    /// Saves `model` into `dir` under `name` and returns the file's contents.
    fn weights_bytes(model: &Classifier, dir: &Path, name: &str) -> Weights {
        let path = dir.join(name);
        save_weights(model, &path).unwrap();
        Weights::read(&path)
    }

    /// A safetensors file: its JSON header, whose key order may differ between two saves of
    /// the same weights, and the tensor bytes after it.
    #[derive(PartialEq)]
    struct Weights {
        header: serde_json::Value,
        data: Vec<u8>,
    }

    impl Weights {
        fn read(path: &Path) -> Self {
            let bytes = fs::read(path).unwrap();
            let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            Self {
                header: serde_json::from_slice(&bytes[8..8 + length]).unwrap(),
                data: bytes[8 + length..].to_vec(),
            }
        }
    }

    #[test]
    fn background_writes_done_after_wait() {
        let dir = tempfile::tempdir().unwrap();
        let mut recorder = Recorder::new(dir.path(), run_info(), SaveProbs::Last).unwrap();
        let saved = tempfile::tempdir().unwrap();
        let mut expected_weights = None;
        for (e, loss) in [(1, 2.0), (2, 1.0), (3, 0.5)] {
            let result = epoch(e, loss);
            let name = format!("epoch{e}.safetensors");
            expected_weights = Some(weights_bytes(&result.model, saved.path(), &name));
            let metrics = recorder.record(result).unwrap();
            assert_eq!(metrics.epoch, e);
            // The epoch being written is not listed yet.
            assert_eq!(recorder.info().epochs.len(), e as usize - 1);
        }
        recorder.wait().unwrap();
        assert_eq!(recorder.info().epochs.len(), 3);
        assert!(!recorder.write_failed());

        let info = RunInfo::read(dir.path()).unwrap();
        assert_eq!(info.epochs.len(), 3);
        assert_eq!(info.status, RunStatus::Running);
        let dynamics = Dynamics::read(&dir.path().join(DYNAMICS_PARQUET), None, None).unwrap();
        let losses: Vec<(u32, f32)> = dynamics
            .parts
            .iter()
            .flat_map(|(e, _, rows)| rows.loss.iter().map(move |&loss| (*e, loss)))
            .collect();
        assert_eq!(losses.len(), 3 * 4, "3 epochs of 3 train and 1 test rows");
        assert!(losses.contains(&(1, 2.0)));
        assert!(losses.contains(&(3, 0.5)));
        // Only the last epoch keeps its probabilities.
        for split in [SplitName::Train, SplitName::Test] {
            assert!(!probs_path(dir.path(), split, 2).exists());
            let probs = read_npy_f32(&probs_path(dir.path(), split, 3)).unwrap();
            assert_eq!(probs.ncols(), 2);
        }

        assert!(!dir.path().join(MODEL_SAFETENSORS).exists());
        recorder.mark_stopped(RunStatus::Interrupted).unwrap();
        let info = RunInfo::read(dir.path()).unwrap();
        assert_eq!(info.status, RunStatus::Interrupted);
        // The weights kept are those after epoch 3, the last epoch listed.
        assert_eq!(info.model.weights.as_deref(), Some(MODEL_SAFETENSORS));
        let saved = Weights::read(&dir.path().join(MODEL_SAFETENSORS));
        let metadata = &saved.header["__metadata__"];
        assert_eq!(metadata["producer"], "toploss");
        assert_eq!(metadata["toploss_version"], env!("CARGO_PKG_VERSION"));
        assert!(Some(Weights::read(&dir.path().join(MODEL_SAFETENSORS))) == expected_weights);
    }

    #[test]
    fn failed_write_returned_by_wait() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        let mut recorder = Recorder::new(run, run_info(), SaveProbs::Last).unwrap();
        let first = epoch(1, 1.0);
        let saved = tempfile::tempdir().unwrap();
        let first_weights = weights_bytes(&first.model, saved.path(), "first.safetensors");
        recorder.record(first).unwrap();
        recorder.wait().unwrap();
        // A plain file takes the place of probs/, so epoch 2's files cannot be written.
        fs::remove_dir_all(run.join("probs")).unwrap();
        fs::write(run.join("probs"), "not a folder").unwrap();
        recorder.record(epoch(2, 0.5)).unwrap();

        let error = recorder.wait().unwrap_err().to_string();
        assert!(error.contains("train-e02.npy"), "{error}");
        assert!(error.contains("in the way"), "{error}");
        assert!(recorder.write_failed());
        // The error is reported once, so the next wait has nothing left to report.
        assert!(recorder.wait().is_ok());

        // run.json lists only the epoch whose files exist, with the status failed.
        let info = RunInfo::read(run).unwrap();
        assert_eq!(info.status, RunStatus::Failed);
        assert_eq!(info.epochs.len(), 1);
        assert_eq!(recorder.info().epochs.len(), 1);
        let dynamics = Dynamics::read(&run.join(DYNAMICS_PARQUET), None, None).unwrap();
        assert_eq!(dynamics.rows(), 4);

        // Stopping keeps the weights of epoch 1, not those of the epoch whose write failed.
        recorder.mark_stopped(RunStatus::Failed).unwrap();
        assert_eq!(
            RunInfo::read(run).unwrap().model.weights.as_deref(),
            Some(MODEL_SAFETENSORS)
        );
        assert!(Weights::read(&run.join(MODEL_SAFETENSORS)) == first_weights);
    }

    #[test]
    fn failed_parquet_write_keeps_earlier_probs() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        let mut recorder = Recorder::new(run, run_info(), SaveProbs::Last).unwrap();
        recorder.record(epoch(1, 1.0)).unwrap();
        recorder.wait().unwrap();
        // A folder in the place of dynamics.parquet makes its rename fail after the
        // probabilities of epoch 2 are written.
        fs::remove_file(run.join(DYNAMICS_PARQUET)).unwrap();
        fs::create_dir(run.join(DYNAMICS_PARQUET)).unwrap();
        fs::write(run.join(DYNAMICS_PARQUET).join("x"), "").unwrap();
        recorder.record(epoch(2, 0.5)).unwrap();
        assert!(recorder.wait().is_err());

        assert_eq!(RunInfo::read(run).unwrap().epochs.len(), 1);
        for split in [SplitName::Train, SplitName::Test] {
            assert!(probs_path(run, split, 1).exists(), "epoch 1 {split:?}");
        }
    }
}
