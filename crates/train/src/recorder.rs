//! The dynamics recorder: turns each finished epoch into run-folder files.

use std::fs;
use std::path::{Path, PathBuf};

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
pub struct Recorder {
    dir: PathBuf,
    info: RunInfo,
    dynamics: Dynamics,
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
            save_probs,
        })
    }

    /// Returns the run folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the run description as written so far.
    pub fn info(&self) -> &RunInfo {
        &self.info
    }

    /// Records one epoch and returns its metrics.
    pub fn record(&mut self, result: EpochResult) -> Result<EpochMetrics, Error> {
        let metrics = EpochMetrics {
            epoch: result.epoch,
            train_loss: result.train.mean_loss(),
            train_accuracy: result.train.accuracy(),
            train_objective: result.train_objective,
            test_accuracy: result.test.accuracy(),
            test_loss: result.test.mean_loss(),
            seconds: result.seconds,
        };

        // Probabilities first, so that run.json never names an epoch whose files are missing.
        for (split, eval) in [
            (SplitName::Train, &result.train),
            (SplitName::Test, &result.test),
        ] {
            let rows = eval.rows.len();
            let path = probs_path(&self.dir, split, result.epoch);
            write_npy_f32(&path, &eval.probs, rows, self.classes)?;
            if self.save_probs == SaveProbs::Last
                && let Some(previous) = self.info.last_epoch()
            {
                remove_if_present(&probs_path(&self.dir, split, previous))?;
            }
        }

        self.dynamics
            .parts
            .push((result.epoch, SplitName::Train, result.train.rows));
        self.dynamics
            .parts
            .push((result.epoch, SplitName::Test, result.test.rows));
        self.dynamics.write(&self.dir.join(DYNAMICS_PARQUET))?;

        self.info.epochs.push(metrics.clone());
        self.info.write(&self.dir)?;
        Ok(metrics)
    }

    /// Records that training stopped early with `status`, keeping the finished epochs.
    pub fn mark_stopped(&mut self, status: RunStatus) -> Result<(), Error> {
        self.info.status = status;
        self.info.write(&self.dir)?;
        Ok(())
    }

    /// Writes the final weights and marks the run complete.
    pub fn finish(&mut self, model: &Classifier) -> Result<(), Error> {
        let path = self.dir.join(MODEL_SAFETENSORS);
        save_weights(model, &path)?;
        self.info.model.weights = Some(MODEL_SAFETENSORS.to_string());
        self.info.status = RunStatus::Complete;
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
