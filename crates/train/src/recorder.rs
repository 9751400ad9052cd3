//! The dynamics recorder: turns each finished epoch into run-folder files.

use std::fs;
use std::path::{Path, PathBuf};
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
/// that describes the finished epochs.
///
/// An epoch's files are written on a background thread while the next epoch trains. The next
/// [`record`](Self::record), [`mark_stopped`](Self::mark_stopped) and [`finish`](Self::finish)
/// wait for that thread first and return its error, if any.
pub struct Recorder {
    dir: PathBuf,
    info: RunInfo,
    /// The rows of the recorded epochs, while no write is running.
    dynamics: Dynamics,
    /// The thread writing the last epoch's files; it hands the rows back.
    writer: Option<JoinHandle<Result<Dynamics, Error>>>,
    classes: usize,
    save_probs: SaveProbs,
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
            save_probs,
        })
    }

    /// Waits for the files of the last recorded epoch, and returns the error of their write.
    pub fn wait(&mut self) -> Result<(), Error> {
        if let Some(writer) = self.writer.take() {
            match writer.join() {
                Ok(result) => self.dynamics = result?,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(())
    }

    /// Returns the run folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the run description, with every recorded epoch (whose files may still be
    /// being written; see [`wait`](Self::wait)).
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
        self.info.epochs.push(metrics.clone());

        let files = EpochFiles {
            dir: self.dir.clone(),
            info: self.info.clone(),
            classes: self.classes,
            stale_epoch,
        };
        let mut dynamics = std::mem::take(&mut self.dynamics);
        let writer = thread::Builder::new()
            .name("toploss-recorder".to_string())
            .spawn(move || {
                files.write(result, &mut dynamics)?;
                Ok(dynamics)
            })
            .map_err(|source| Error::Io {
                path: self.dir.clone(),
                source,
            })?;
        self.writer = Some(writer);
        Ok(metrics)
    }

    /// Records that training stopped early with `status`, keeping the finished epochs.
    pub fn mark_stopped(&mut self, status: RunStatus) -> Result<(), Error> {
        self.wait()?;
        self.info.status = status;
        self.info.write(&self.dir)?;
        Ok(())
    }

    /// Writes the final weights and marks the run complete.
    pub fn finish(&mut self, model: &Classifier) -> Result<(), Error> {
        self.wait()?;
        let path = self.dir.join(MODEL_SAFETENSORS);
        save_weights(model, &path)?;
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
        if let Some(writer) = self.writer.take()
            && let Ok(Err(error)) = writer.join()
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
    /// `dynamics`, then `run.json`, so that run.json never names an epoch whose files are
    /// missing.
    fn write(self, result: EpochResult, dynamics: &mut Dynamics) -> Result<(), Error> {
        for (split, eval) in [
            (SplitName::Train, &result.train),
            (SplitName::Test, &result.test),
        ] {
            let path = probs_path(&self.dir, split, result.epoch);
            write_npy_f32(&path, &eval.probs, eval.rows.len(), self.classes)?;
            if let Some(stale) = self.stale_epoch {
                remove_if_present(&probs_path(&self.dir, split, stale))?;
            }
        }
        dynamics
            .parts
            .push((result.epoch, SplitName::Train, result.train.rows));
        dynamics
            .parts
            .push((result.epoch, SplitName::Test, result.test.rows));
        dynamics.write(&self.dir.join(DYNAMICS_PARQUET))?;
        self.info.write(&self.dir)?;
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
    let temporary = path.with_extension("safetensors.tmp");
    let mut store = SafetensorsStore::from_file(&temporary).metadata("producer", "toploss");
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
    fs::rename(&temporary, path).map_err(|source| Error::Io {
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
        }
    }

    #[test]
    fn background_writes_done_after_wait() {
        let dir = tempfile::tempdir().unwrap();
        let mut recorder = Recorder::new(dir.path(), run_info(), SaveProbs::Last).unwrap();
        for (e, loss) in [(1, 2.0), (2, 1.0), (3, 0.5)] {
            let metrics = recorder.record(epoch(e, loss)).unwrap();
            assert_eq!(metrics.epoch, e);
            assert_eq!(recorder.info().epochs.len(), e as usize);
        }
        recorder.wait().unwrap();

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

        recorder.mark_stopped(RunStatus::Interrupted).unwrap();
        assert_eq!(
            RunInfo::read(dir.path()).unwrap().status,
            RunStatus::Interrupted
        );
    }

    #[test]
    fn failed_write_returned_by_wait() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        fs::create_dir(&run).unwrap();
        let mut recorder = Recorder::new(&run, run_info(), SaveProbs::All).unwrap();
        // A plain file takes the folder's place, so the epoch's files cannot be written.
        fs::remove_dir_all(&run).unwrap();
        fs::write(&run, "not a folder").unwrap();
        recorder.record(epoch(1, 1.0)).unwrap();

        let error = recorder.wait().unwrap_err().to_string();
        assert!(error.contains("run"), "{error}");
        // The error is reported once, so the next wait has nothing left to report.
        assert!(recorder.wait().is_ok());
    }
}
