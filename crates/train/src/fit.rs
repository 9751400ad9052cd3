//! The training loop: Adam on shuffled mini-batches, then an evaluation pass over both splits
//! after every epoch.

use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use serde::{Deserialize, Serialize};

use crate::eval::{SplitEval, evaluate, margins};
use crate::model::{Classifier, InputSpec, ModelKind};
use crate::{Error, Shuffler};

/// Every knob of a training run. Written into `run.json` as part of the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Architecture.
    pub model: ModelKind,
    /// Number of passes over the train split.
    pub epochs: u32,
    /// Samples per training step.
    pub batch_size: usize,
    /// Samples per forward pass in the evaluation pass (affects speed and memory only).
    pub eval_batch_size: usize,
    /// Adam step size.
    pub learning_rate: f64,
    /// Seed of weight initialisation and of the shuffling order.
    pub seed: u64,
    /// Label smoothing epsilon in `[0, 1)`: training targets are `1 - eps` on the label plus
    /// `eps / K` on every class. Recorded losses never include it.
    pub label_smoothing: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            model: ModelKind::ShallowCnn,
            epochs: 5,
            batch_size: 128,
            eval_batch_size: 500,
            learning_rate: 1e-3,
            seed: 42,
            label_smoothing: 0.0,
        }
    }
}

impl TrainConfig {
    /// Checks ranges that would otherwise fail deep inside training.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |flag: &'static str, value: String, expected: &'static str| {
            Err(Error::InvalidConfig {
                flag,
                value,
                expected,
            })
        };
        if self.epochs == 0 {
            return invalid("--epochs", self.epochs.to_string(), "at least 1");
        }
        if self.batch_size == 0 {
            return invalid("--batch-size", self.batch_size.to_string(), "at least 1");
        }
        if self.eval_batch_size == 0 {
            return invalid(
                "--eval-batch-size",
                self.eval_batch_size.to_string(),
                "at least 1",
            );
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return invalid(
                "--lr",
                self.learning_rate.to_string(),
                "a positive finite number",
            );
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return invalid(
                "--label-smoothing",
                self.label_smoothing.to_string(),
                "a number with 0 <= EPS < 1",
            );
        }
        Ok(())
    }
}

/// One split in memory, with pixels scaled to `[0, 1]` as `f32`.
#[derive(Debug, Clone)]
pub struct SplitTensors {
    /// `N x C x H x W` pixels divided by 255.
    pub images: Vec<f32>,
    /// Given labels (after any relabelling).
    pub labels: Vec<u32>,
}

impl SplitTensors {
    /// Scales raw `u8` pixels to `[0, 1]`.
    pub fn from_u8(pixels: &[u8], labels: Vec<u32>) -> Self {
        Self {
            images: pixels.iter().map(|&p| f32::from(p) / 255.0).collect(),
            labels,
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Returns true when the split is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Data and image geometry given to the training loop.
#[derive(Debug, Clone)]
pub struct TrainData {
    /// Train split.
    pub train: SplitTensors,
    /// Test split.
    pub test: SplitTensors,
    /// Train ids left out of the gradient steps (discarded); they are still evaluated.
    pub excluded: Vec<bool>,
    /// Image shape and class count.
    pub input: InputSpec,
}

/// Stage of the training loop, for progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Gradient steps over the train split.
    Training,
    /// Evaluation pass over the train split.
    EvaluatingTrain,
    /// Evaluation pass over the test split.
    EvaluatingTest,
    /// Gradient steps of cross-validation fold `.0` of `.1` (1-based).
    TrainingFold(usize, usize),
    /// Predicting the held-out samples of fold `.0` of `.1` (1-based).
    PredictingFold(usize, usize),
}

/// Receives progress and results; the CLI draws bars, the recorder writes files.
pub trait Observer {
    /// A phase of `epoch` starts with `total` samples to process.
    fn phase_started(&mut self, _epoch: u32, _phase: Phase, _total: usize) {}
    /// `done` samples of the current phase are processed.
    fn progress(&mut self, _done: usize) {}
    /// An epoch finished; returning an error stops training.
    fn epoch_finished(&mut self, result: EpochResult) -> Result<(), Error>;
    /// Returns true when training should stop (checked before every step), for Ctrl-C.
    fn stop_requested(&self) -> bool {
        false
    }
}

/// Everything measured in one epoch.
#[derive(Debug, Clone)]
pub struct EpochResult {
    /// 1-based epoch number.
    pub epoch: u32,
    /// Evaluation pass over the train split, with `train_margin` filled in.
    pub train: SplitEval,
    /// Evaluation pass over the test split.
    pub test: SplitEval,
    /// Mean training objective over the epoch's steps, smoothing included.
    pub train_objective: f64,
    /// Wall time of training and evaluation (seconds).
    pub seconds: f64,
    /// The model after this epoch's steps, without autodiff: the weights to keep if training
    /// stops in a later epoch.
    pub model: Classifier,
}

/// Cross-entropy of each row against smoothed one-hot targets, averaged over the batch.
///
/// With `eps = 0` this is plain cross-entropy. With `eps > 0` the target of row `i` is
/// `(1 - eps) * onehot(label_i) + eps / K`, as in PyTorch's `cross_entropy(label_smoothing=eps)`.
///
/// # Shapes
/// - logits: `[batch_size, classes]`
/// - output: `[1]`
pub fn smoothed_cross_entropy(logits: Tensor<2>, labels: &[u32], eps: f64) -> Tensor<1> {
    let [batch_size, classes] = logits.dims();
    let device = logits.device();
    let off = (eps / classes as f64) as f32;
    let on = (1.0 - eps) as f32 + off;
    let mut targets = vec![off; batch_size * classes];
    for (row, &label) in labels.iter().enumerate() {
        targets[row * classes + label as usize] = on;
    }
    let targets = Tensor::<2>::from_data(TensorData::new(targets, [batch_size, classes]), &device);
    let per_sample = -(log_softmax(logits, 1) * targets).sum_dim(1); // [batch_size, 1]
    per_sample.mean()
}

/// Trains a fresh model on `data` and calls `observer` after every epoch.
///
/// Reproducible: the same config, data and build give the same weights and losses, because
/// initialisation is seeded through the device and the shuffling order comes from
/// [`Shuffler`] with the same seed.
pub fn fit(
    config: &TrainConfig,
    data: &TrainData,
    observer: &mut dyn Observer,
) -> Result<Classifier, Error> {
    config.validate()?;
    let trained_ids: Vec<usize> = (0..data.train.len())
        .filter(|&id| !data.excluded.get(id).copied().unwrap_or(false))
        .collect();
    run_epochs(config, data, trained_ids, None, observer)
}

/// The seed offset of fold `f`'s model, so that folds start from different weights.
const FOLD_SEED_STEP: u64 = 1_000_003;

/// Assigns each train id to one of `folds` folds, stratified by label: the ids of each class
/// are shuffled with `seed` and dealt out in turn, so every fold gets within one sample of
/// its share of every class.
pub fn stratified_folds(labels: &[u32], folds: usize, seed: u64) -> Vec<usize> {
    let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (id, &label) in labels.iter().enumerate() {
        by_class[label as usize].push(id);
    }
    let mut shuffler = Shuffler::new(seed ^ 0x5EED_F01D);
    let mut assignment = vec![0; labels.len()];
    let mut next = 0;
    for ids in &mut by_class {
        shuffler.shuffle(ids);
        for &id in ids.iter() {
            assignment[id] = next % folds;
            next += 1;
        }
    }
    assignment
}

/// Out-of-fold probabilities of the train split by stratified `folds`-fold cross-validation.
///
/// For each fold a fresh model (seeded with `seed + f * 1000003`) trains for `config.epochs`
/// epochs on the other folds, then predicts the held-out fold, so every train sample's row comes
/// from a model that never trained on it. Discarded ids never train, but still get a row.
///
/// Returns `N x K` probabilities, row-major, row `i` for train id `i`, and the fold of each id.
pub fn out_of_fold_probs(
    config: &TrainConfig,
    data: &TrainData,
    folds: usize,
    observer: &mut dyn Observer,
) -> Result<(Vec<f32>, Vec<usize>), Error> {
    config.validate()?;
    if folds < 2 || folds > data.train.len() {
        return Err(Error::InvalidConfig {
            flag: "--folds",
            value: folds.to_string(),
            expected: "at least 2 and at most the number of train samples",
        });
    }
    let input = data.input;
    let assignment = stratified_folds(&data.train.labels, folds, config.seed);
    let mut probs = vec![0.0; data.train.len() * input.classes];

    for fold in 0..folds {
        let trained_ids: Vec<usize> = (0..data.train.len())
            .filter(|&id| assignment[id] != fold)
            .filter(|&id| !data.excluded.get(id).copied().unwrap_or(false))
            .collect();
        let fold_config = TrainConfig {
            seed: config.seed.wrapping_add(FOLD_SEED_STEP * (fold as u64 + 1)),
            ..config.clone()
        };
        let model = run_epochs(
            &fold_config,
            data,
            trained_ids,
            Some((fold, folds)),
            observer,
        )?;

        // Predict the held-out ids.
        let held_out: Vec<usize> = (0..data.train.len())
            .filter(|&id| assignment[id] == fold)
            .collect();
        let pixels = input.channels * input.height * input.width;
        let mut subset = SplitTensors {
            images: Vec::with_capacity(held_out.len() * pixels),
            labels: Vec::with_capacity(held_out.len()),
        };
        for &id in &held_out {
            subset
                .images
                .extend_from_slice(&data.train.images[id * pixels..(id + 1) * pixels]);
            subset.labels.push(data.train.labels[id]);
        }
        observer.phase_started(
            config.epochs,
            Phase::PredictingFold(fold + 1, folds),
            held_out.len(),
        );
        let eval = evaluate(
            &model,
            &subset,
            input,
            config.eval_batch_size,
            &Device::flex(),
            |done| observer.progress(done),
        );
        for (row, &id) in held_out.iter().enumerate() {
            let k = input.classes;
            probs[id * k..(id + 1) * k].copy_from_slice(&eval.probs[row * k..(row + 1) * k]);
        }
    }
    Ok((probs, assignment))
}

/// Runs `config.epochs` epochs of gradient steps over `trained_ids`.
///
/// For the main run (`fold` is `None`), every epoch ends with an evaluation pass over both
/// splits whose results go to `observer.epoch_finished`. A cross-validation fold
/// (`Some((fold, folds))`) skips those passes and only reports progress.
fn run_epochs(
    config: &TrainConfig,
    data: &TrainData,
    trained_ids: Vec<usize>,
    fold: Option<(usize, usize)>,
    observer: &mut dyn Observer,
) -> Result<Classifier, Error> {
    let input = data.input;
    let shape = [input.channels, input.height, input.width];
    let pixels = shape.iter().product::<usize>();
    if trained_ids.is_empty() {
        return Err(Error::NothingToTrain);
    }

    // Model
    let device = Device::flex().autodiff();
    device.seed(config.seed);
    let mut model = Classifier::new(config.model, input, &device);
    let mut optimizer = AdamConfig::new().init();

    // Data
    let mut shuffler = Shuffler::new(config.seed);
    let mut order = trained_ids;
    let mut batch_labels = Vec::with_capacity(config.batch_size);

    for epoch in 1..=config.epochs {
        let started = Instant::now();
        shuffler.shuffle(&mut order);
        let phase = match fold {
            Some((fold, folds)) => Phase::TrainingFold(fold + 1, folds),
            None => Phase::Training,
        };
        observer.phase_started(epoch, phase, order.len());

        let mut train_margin = vec![None; data.train.len()];
        let mut objective_sum = 0.0;
        for (step, ids) in order.chunks(config.batch_size).enumerate() {
            if observer.stop_requested() {
                return Err(Error::Interrupted { epoch });
            }
            // A fresh buffer each step, because the tensor takes ownership of it.
            let mut batch_images = Vec::with_capacity(ids.len() * pixels);
            batch_labels.clear();
            for &id in ids {
                batch_images.extend_from_slice(&data.train.images[id * pixels..(id + 1) * pixels]);
                batch_labels.push(data.train.labels[id]);
            }
            let images = Tensor::<4>::from_data(
                TensorData::new(batch_images, [ids.len(), shape[0], shape[1], shape[2]]),
                &device,
            );

            let logits = model.forward(images); // [batch, classes]
            let logit_values: Vec<f32> = logits
                .clone()
                .detach()
                .into_data()
                .try_into_vec()
                .expect("model logits are float32");
            for (&id, margin) in
                ids.iter()
                    .zip(margins(&logit_values, &batch_labels, input.classes))
            {
                train_margin[id] = Some(margin);
            }

            let loss = smoothed_cross_entropy(logits, &batch_labels, config.label_smoothing);
            let loss_value: f32 = loss.clone().into_scalar();
            objective_sum += f64::from(loss_value) * ids.len() as f64;
            if !loss_value.is_finite() {
                return Err(Error::NonFiniteLoss {
                    epoch,
                    step: step + 1,
                    value: loss_value,
                });
            }

            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(config.learning_rate, model, grads);
            observer.progress((step * config.batch_size + ids.len()).min(order.len()));
        }
        if fold.is_some() {
            continue;
        }

        // Evaluation pass without autodiff, over every sample in id order.
        let eval_model = model.valid();
        let eval_device = device.clone().without_autodiff();
        observer.phase_started(epoch, Phase::EvaluatingTrain, data.train.len());
        let mut train = evaluate(
            &eval_model,
            &data.train,
            input,
            config.eval_batch_size,
            &eval_device,
            |done| observer.progress(done),
        );
        train.rows.train_margin = train_margin;
        observer.phase_started(epoch, Phase::EvaluatingTest, data.test.len());
        let test = evaluate(
            &eval_model,
            &data.test,
            input,
            config.eval_batch_size,
            &eval_device,
            |done| observer.progress(done),
        );

        observer.epoch_finished(EpochResult {
            epoch,
            train,
            test,
            train_objective: objective_sum / order.len() as f64,
            seconds: started.elapsed().as_secs_f64(),
            model: eval_model,
        })?;
    }
    Ok(model.valid())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss_of(logits: [[f32; 3]; 2], labels: &[u32], eps: f64) -> f32 {
        let device = Device::flex();
        let logits = Tensor::<2>::from_data(logits, &device);
        smoothed_cross_entropy(logits, labels, eps).into_scalar()
    }

    #[test]
    fn smoothing_zero_is_plain_cross_entropy() {
        // Row 0: z = [2, 1, 0], label 0: lse = 2.407606, loss = 0.407606.
        // Row 1: z = [0, 0, 0], label 2: loss = ln 3 = 1.098612. Mean = 0.753109.
        let loss = loss_of([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]], &[0, 2], 0.0);
        assert!((loss - 0.753109).abs() < 1e-5, "{loss}");
    }

    #[test]
    fn smoothing_matches_hand_computation() {
        // eps = 0.3, K = 3: targets 0.8 on the label, 0.1 elsewhere.
        // Row 0: log p = [-0.407606, -1.407606, -2.407606], label 0:
        //   0.8 * 0.407606 + 0.1 * 1.407606 + 0.1 * 2.407606 = 0.707606
        // Row 1: log p = -1.098612 everywhere: loss = 1.098612 whatever the target.
        // Mean = (0.707606 + 1.098612) / 2 = 0.903109.
        // PyTorch: F.cross_entropy(torch.tensor([[2.,1,0],[0,0,0]]), torch.tensor([0,2]),
        //   label_smoothing=0.3) = 0.9031
        let loss = loss_of([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]], &[0, 2], 0.3);
        assert!((loss - 0.903109).abs() < 1e-5, "{loss}");
    }

    #[test]
    fn folds_are_stratified_and_balanced() {
        // 3 classes with 10, 7 and 4 samples, 3 folds.
        let labels: Vec<u32> = [vec![0; 10], vec![1; 7], vec![2; 4]].concat();
        let assignment = stratified_folds(&labels, 3, 5);
        for class in 0..3 {
            let mut sizes = [0usize; 3];
            for (id, &label) in labels.iter().enumerate() {
                if label == class {
                    sizes[assignment[id]] += 1;
                }
            }
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(max - min <= 1, "class {class}: fold sizes {sizes:?}");
        }
        assert_eq!(assignment, stratified_folds(&labels, 3, 5));
    }

    #[test]
    fn config_rejects_bad_smoothing() {
        let config = TrainConfig {
            label_smoothing: 1.0,
            ..TrainConfig::default()
        };
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("--label-smoothing"), "{error}");
        assert!(error.contains('1'), "{error}");
    }
}
