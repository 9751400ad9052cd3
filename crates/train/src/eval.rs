//! Per-sample results from logits: the evaluation pass behind every recorded loss.

use burn::prelude::*;
use rayon::prelude::*;
use toploss_data::run::SplitDynamics;

use crate::fit::SplitTensors;
use crate::model::{Classifier, InputSpec};

/// Per-sample results of one split and its softmax probabilities.
#[derive(Debug, Clone, Default)]
pub struct SplitEval {
    /// One row per sample id, `train_margin` left as `None`.
    pub rows: SplitDynamics,
    /// `N x K` softmax probabilities, row-major.
    pub probs: Vec<f32>,
}

impl SplitEval {
    /// Creates the results of `labels.len()` samples, with room for their rows and zeroed
    /// `N x classes` probabilities.
    pub fn for_labels(labels: &[u32], classes: usize) -> Self {
        let n = labels.len();
        Self {
            rows: SplitDynamics {
                label: labels.to_vec(),
                predicted: Vec::with_capacity(n),
                loss: Vec::with_capacity(n),
                p_label: Vec::with_capacity(n),
                p_predicted: Vec::with_capacity(n),
                margin: Vec::with_capacity(n),
                train_margin: vec![None; n],
            },
            probs: vec![0.0; n * classes],
        }
    }

    /// Appends the next sample's row; samples are pushed in id order.
    pub fn push(&mut self, result: &SampleResult) {
        self.rows.predicted.push(result.predicted);
        self.rows.loss.push(result.loss);
        self.rows.p_label.push(result.p_label);
        self.rows.p_predicted.push(result.p_predicted);
        self.rows.margin.push(result.margin);
    }

    /// Mean cross-entropy over the split (nats), NaN losses included.
    pub fn mean_loss(&self) -> f64 {
        mean(self.rows.loss.iter().map(|&loss| loss as f64))
    }

    /// Share of samples whose argmax equals the label (0 to 1).
    pub fn accuracy(&self) -> f64 {
        let rows = &self.rows;
        mean(
            rows.label
                .iter()
                .zip(&rows.predicted)
                .map(|(label, predicted)| f64::from(u8::from(label == predicted))),
        )
    }
}

fn mean(values: impl ExactSizeIterator<Item = f64>) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    values.sum::<f64>() / n as f64
}

/// Results for one sample, computed from its logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleResult {
    /// Argmax class (the first one on ties; 0 when every logit is NaN).
    pub predicted: u32,
    /// Cross-entropy against the label: `logsumexp(z) - z[label]` (nats).
    pub loss: f32,
    /// `softmax(z)[label]`.
    pub p_label: f32,
    /// `softmax(z)[predicted]`.
    pub p_predicted: f32,
    /// `z[label] - max_{j != label} z[j]`; positive when the label wins.
    pub margin: f32,
}

/// Computes loss, prediction, probabilities and margin of one sample from its logits `z`,
/// and writes `softmax(z)` into `probs`.
///
/// The log-sum-exp is shifted by the largest logit so that large logits do not overflow.
/// With a single class the margin is `+inf` (there is no other class to beat).
pub fn sample_from_logits(logits: &[f32], label: usize, probs: &mut [f32]) -> SampleResult {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|&z| (z - max).exp()).sum();
    let log_sum_exp = max + sum.ln();

    let mut predicted = 0;
    for (j, (&z, p)) in logits.iter().zip(probs.iter_mut()).enumerate() {
        *p = (z - log_sum_exp).exp();
        if z > logits[predicted] {
            predicted = j;
        }
    }
    let best_other = logits
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != label)
        .map(|(_, &z)| z)
        .fold(f32::NEG_INFINITY, f32::max);

    SampleResult {
        predicted: predicted as u32,
        loss: log_sum_exp - logits[label],
        p_label: probs[label],
        p_predicted: probs[predicted],
        margin: logits[label] - best_other,
    }
}

/// Margins `z[label] - max_{j != label} z[j]` of a batch of logits, row-major `B x K`.
pub fn margins(logits: &[f32], labels: &[u32], classes: usize) -> Vec<f32> {
    logits
        .chunks_exact(classes)
        .zip(labels)
        .map(|(row, &label)| {
            let best_other = row
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != label as usize)
                .map(|(_, &z)| z)
                .fold(f32::NEG_INFINITY, f32::max);
            row[label as usize] - best_other
        })
        .collect()
}

/// Runs `model` over every sample of a split in id order, in batches of `batch_size`
/// (the last one partial), and collects per-sample results.
///
/// `progress` is called with the number of
/// samples done after each batch.
pub fn evaluate(
    model: &Classifier,
    split: &SplitTensors,
    input: InputSpec,
    batch_size: usize,
    device: &Device,
    mut progress: impl FnMut(usize),
) -> SplitEval {
    let (images, labels) = (&split.images, &split.labels);
    let classes = input.classes;
    let shape = [input.channels, input.height, input.width];
    let n = labels.len();
    let pixels = shape[0] * shape[1] * shape[2];
    let mut out = SplitEval::for_labels(labels, classes);

    // Batches run a few at a time on the rayon pool. burn-flex also splits each batch's
    // kernels over the pool, but whole batches in parallel leave fewer small parallel
    // regions to wait on. Each batch is computed as it would be alone, and results do not
    // depend on the pool size (tests/parallel_eval.rs checks this bit for bit).
    let batches: Vec<(usize, usize)> = (0..n)
        .step_by(batch_size)
        .map(|start| (start, (start + batch_size).min(n)))
        .collect();
    let group = rayon::current_num_threads().max(1);
    for window in batches.chunks(group) {
        let logits: Vec<Vec<f32>> = window
            .par_iter()
            .map(|&(start, end)| {
                let data = TensorData::new(
                    images[start * pixels..end * pixels].to_vec(),
                    [end - start, shape[0], shape[1], shape[2]],
                );
                model
                    .forward(Tensor::<4>::from_data(data, device)) // [batch, classes]
                    .into_data()
                    .try_into_vec()
                    .expect("model logits are float32")
            })
            .collect();

        for (&(start, end), logits) in window.iter().zip(&logits) {
            for (row, id) in (start..end).enumerate() {
                let result = sample_from_logits(
                    &logits[row * classes..(row + 1) * classes],
                    labels[id] as usize,
                    &mut out.probs[id * classes..(id + 1) * classes],
                );
                out.push(&result);
            }
        }
        if let Some(&(_, end)) = window.last() {
            progress(end);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_matches_hand_computation() {
        // z = [2, 1, 0], label 1.
        // logsumexp = ln(e^2 + e^1 + e^0) = ln(7.389056 + 2.718282 + 1) = ln(11.107338) = 2.407606
        // loss = 2.407606 - 1 = 1.407606; p = [0.665241, 0.244728, 0.090031]
        // margin = 1 - 2 = -1; predicted = 0.
        let mut probs = [0.0; 3];
        let result = sample_from_logits(&[2.0, 1.0, 0.0], 1, &mut probs);
        assert_eq!(result.predicted, 0);
        assert!((result.loss - 1.407606).abs() < 1e-5, "{}", result.loss);
        assert!((result.p_label - 0.244728).abs() < 1e-5);
        assert!((result.p_predicted - 0.665241).abs() < 1e-5);
        assert_eq!(result.margin, -1.0);
        assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn sample_large_logits_do_not_overflow() {
        let mut probs = [0.0; 2];
        let result = sample_from_logits(&[1000.0, 0.0], 0, &mut probs);
        assert_eq!(result.loss, 0.0);
        assert_eq!(result.p_label, 1.0);
        assert_eq!(result.margin, 1000.0);
    }

    #[test]
    fn sample_ties_take_first_class() {
        let mut probs = [0.0; 3];
        let result = sample_from_logits(&[1.0, 3.0, 3.0], 2, &mut probs);
        assert_eq!(result.predicted, 1);
        assert_eq!(result.margin, 0.0);
    }

    #[test]
    fn margins_of_batch() {
        // Row 0: label 2, z = [0, 1, 4] -> 4 - 1 = 3. Row 1: label 0, z = [0, 1, 4] -> 0 - 4 = -4.
        let logits = [0.0, 1.0, 4.0, 0.0, 1.0, 4.0];
        assert_eq!(margins(&logits, &[2, 0], 3), vec![3.0, -4.0]);
    }
}
