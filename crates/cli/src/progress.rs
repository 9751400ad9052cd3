//! Progress bars for training and evaluation (only on a terminal).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use toploss_data::run::{RunInfo, RunStatus};
use toploss_train::Phase;

/// Set by the first Ctrl-C or SIGTERM: training stops before its next step and marks the run
/// folder interrupted. A second signal ends the process at once.
static STOP: AtomicBool = AtomicBool::new(false);

/// The run folder being trained into, which a second signal marks interrupted before it ends
/// the process.
static RUN_FOLDER: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Sets the run folder that a second Ctrl-C marks interrupted (`None` once the run's status
/// is final).
pub fn set_run_folder(dir: Option<&Path>) {
    if let Ok(mut folder) = RUN_FOLDER.lock() {
        *folder = dir.map(Path::to_path_buf);
    }
}

/// Marks the run folder set by [`set_run_folder`] interrupted if the status in its run.json is
/// still running, and returns that folder. Best effort, for the moment before the process
/// quits: errors are ignored.
fn mark_run_folder_interrupted() -> Option<PathBuf> {
    // try_lock: the main thread may hold the lock, and the process is about to end anyway.
    let dir = RUN_FOLDER
        .try_lock()
        .ok()
        .and_then(|folder| folder.clone())?;
    if let Ok(mut info) = RunInfo::read(&dir)
        && info.status == RunStatus::Running
    {
        info.status = RunStatus::Interrupted;
        let _ = info.write(&dir);
    }
    Some(dir)
}

/// Installs the Ctrl-C / SIGTERM handler that sets [`stop_requested`].
pub fn install_stop_handler(message: &'static str) {
    let installed = ctrlc::set_handler(move || {
        if STOP.swap(true, Ordering::SeqCst) {
            match mark_run_folder_interrupted() {
                Some(dir) => eprintln!("quit at once; {} is marked interrupted", dir.display()),
                None => eprintln!("quit at once"),
            }
            std::process::exit(130);
        }
        println_above_bars(&format!("{message} (press Ctrl-C again to quit now)"));
    });
    if let Err(error) = installed {
        tracing::debug!("no Ctrl-C handler: {error}");
    }
}

/// Returns true once Ctrl-C or SIGTERM arrived.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// The bar on screen, if any, so that the error path and status lines can clear it.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Removes any bar from the screen.
pub fn clear_all() {
    if let Ok(mut active) = ACTIVE.lock()
        && let Some(bar) = active.take()
    {
        bar.finish_and_clear();
    }
}

/// Prints `line` on stderr without tearing a bar that is being drawn.
pub fn println_above_bars(line: &str) {
    match ACTIVE
        .lock()
        .ok()
        .as_ref()
        .and_then(|active| active.as_ref())
    {
        Some(bar) => bar.suspend(|| eprintln!("{line}")),
        None => eprintln!("{line}"),
    }
}

/// One bar per phase of an epoch.
pub struct EpochBars {
    enabled: bool,
    epochs: u32,
}

impl EpochBars {
    /// Bars appear only when `enabled` (stderr is a terminal and `-q` is off).
    pub fn new(enabled: bool, epochs: u32) -> Self {
        Self { enabled, epochs }
    }

    /// Replaces the current bar by one for `phase`.
    pub fn start(&self, epoch: u32, phase: Phase, total: usize) {
        if !self.enabled {
            return;
        }
        clear_all();
        let what = match phase {
            Phase::Training => "train".to_string(),
            Phase::EvaluatingTrain => "score train".to_string(),
            Phase::EvaluatingTest => "score test".to_string(),
            Phase::TrainingFold(fold, folds) => format!("fold {fold}/{folds} train"),
            Phase::PredictingFold(fold, folds) => format!("fold {fold}/{folds} predict"),
        };
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "epoch {prefix} {msg:<18} [{bar:30}] {pos:>6}/{len} img  {per_sec:>12}  eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(format!("{epoch}/{}", self.epochs));
        bar.set_message(what);
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut active) = ACTIVE.lock() {
            *active = Some(bar);
        }
    }

    /// Moves the current bar to `done`.
    pub fn update(&self, done: usize) {
        if let Ok(active) = ACTIVE.lock()
            && let Some(bar) = active.as_ref()
        {
            bar.set_position(done as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toploss_data::run::{DatasetInfo, ModelInfo};

    #[test]
    fn second_signal_marks_run_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let mut info = RunInfo {
            toploss_version: "0.1.0".into(),
            status: RunStatus::Running,
            classes: vec!["a".into(), "b".into()],
            config: serde_json::Value::Null,
            dataset: DatasetInfo {
                format: "mnist".into(),
                path: "data/mnist".into(),
                resolved_path: None,
                fingerprint: "0".into(),
                train_count: 1,
                test_count: 1,
            },
            model: ModelInfo {
                architecture: "mlp".into(),
                channels: 1,
                height: 1,
                width: 1,
                weights: None,
            },
            epochs: Vec::new(),
        };
        info.write(dir.path()).unwrap();

        // Without a folder set, nothing changes.
        set_run_folder(None);
        assert_eq!(mark_run_folder_interrupted(), None);
        assert_eq!(
            RunInfo::read(dir.path()).unwrap().status,
            RunStatus::Running
        );

        set_run_folder(Some(dir.path()));
        assert_eq!(mark_run_folder_interrupted().as_deref(), Some(dir.path()));
        assert_eq!(
            RunInfo::read(dir.path()).unwrap().status,
            RunStatus::Interrupted
        );

        // A final status stays.
        info.status = RunStatus::Complete;
        info.write(dir.path()).unwrap();
        mark_run_folder_interrupted();
        assert_eq!(
            RunInfo::read(dir.path()).unwrap().status,
            RunStatus::Complete
        );
        set_run_folder(None);
    }
}
