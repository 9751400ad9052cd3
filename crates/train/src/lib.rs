//! Training for toploss: the shallow CNN, MLP and small ResNet models, the training loop with its
//! per-epoch evaluation pass, and the recorder that writes every sample's loss to the run
//! folder. This is the only crate that depends on the deep-learning engine (burn).
//!
//! ```no_run
//! use toploss_train::{InputSpec, ModelKind, TrainConfig};
//! let config = TrainConfig { model: ModelKind::Mlp, epochs: 2, ..TrainConfig::default() };
//! assert!(config.validate().is_ok());
//! let spec = InputSpec { channels: 1, height: 28, width: 28, classes: 10 };
//! # let _ = spec;
//! ```
#![deny(missing_docs)]

mod eval;
mod fast_ops;
mod fit;
mod model;
mod recorder;
mod resnet;

use std::path::PathBuf;

pub use eval::{SampleResult, SplitEval, evaluate, margins, sample_from_logits};
pub use fast_ops::{Kernels, kernels, set_kernels};
pub use fit::{
    EpochResult, Observer, Phase, SplitTensors, TrainConfig, TrainData, fit, out_of_fold_probs,
    smoothed_cross_entropy, stratified_folds,
};
pub use model::{Classifier, InputSpec, Mlp, ModelKind, ShallowCnn};
pub use recorder::{Recorder, SaveProbs, load_weights, save_weights};
pub use resnet::ResnetSmall;
pub use toploss_data::Shuffler;

/// Errors of training and recording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A training option is out of range.
    #[error("invalid {flag} {value}: expected {expected}")]
    InvalidConfig {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
        /// The accepted range.
        expected: &'static str,
    },
    /// The observer asked to stop, e.g. after Ctrl-C.
    #[error("training interrupted during epoch {epoch}; {}", kept_after_interrupt(*epoch))]
    Interrupted {
        /// The epoch that was cut short (1-based).
        epoch: u32,
    },
    /// Every train sample was discarded.
    #[error("no train samples left to train on: every id was discarded; check the --discard file")]
    NothingToTrain,
    /// The image is too small for the chosen model.
    #[error(
        "images of {height}x{width} pixels are too small for the shallow CNN (at least {min}x{min}); use --model mlp"
    )]
    ImageTooSmall {
        /// Image height.
        height: usize,
        /// Image width.
        width: usize,
        /// Smallest side accepted.
        min: usize,
    },
    /// The training objective became NaN or infinite.
    #[error(
        "training loss became {value} at epoch {epoch}, step {step}; lower --lr or check the data for NaN pixels"
    )]
    NonFiniteLoss {
        /// Epoch (1-based).
        epoch: u32,
        /// Step within the epoch (1-based).
        step: usize,
        /// The loss value.
        value: f32,
    },
    /// Writing a run file failed.
    #[error(transparent)]
    Run(#[from] toploss_data::run::RunError),
    /// Saving or loading weights failed.
    #[error("{path}: weights: {message}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// The underlying error message.
        message: String,
    },
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Describes what the run folder keeps when training stops during `epoch`.
fn kept_after_interrupt(epoch: u32) -> String {
    match epoch {
        0 | 1 => "no epoch finished, so the run folder has no results and no weights".to_string(),
        2 => "the run folder keeps epoch 1 and its weights".to_string(),
        _ => format!(
            "the run folder keeps epochs 1 to {} and the weights after epoch {}",
            epoch - 1,
            epoch - 1
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupt_message_counts_kept_epochs() {
        let message = |epoch| Error::Interrupted { epoch }.to_string();
        assert!(
            message(1)
                .ends_with("no epoch finished, so the run folder has no results and no weights")
        );
        assert!(message(2).ends_with("the run folder keeps epoch 1 and its weights"));
        assert!(message(5).ends_with("keeps epochs 1 to 4 and the weights after epoch 4"));
        assert!(message(5).starts_with("training interrupted during epoch 5;"));
    }
}
