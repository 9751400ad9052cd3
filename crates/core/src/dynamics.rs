//! Scores from recorded training dynamics: AUM and dataset cartography.
//!
//! Input is one array of length `N` per epoch, in epoch order, indexed by sample id (the
//! `train_margin`, `p_label` and `predicted` columns of `dynamics.parquet`, one epoch each).
//!
//! References: Pleiss, Zhang, Elenberg, Weinberger, "Identifying Mislabeled Data using the
//! Area Under the Margin Ranking", NeurIPS 2020; Swayamdipta, Schwartz, Lourie, Wang,
//! Hajishirzi, Smith, Choi, "Dataset Cartography: Mapping and Diagnosing Datasets with Training
//! Dynamics", EMNLP 2020.

use rayon::prelude::*;

use crate::{Error, Real, Result, check};

/// Area under the margin, per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Aum {
    /// Mean margin per sample (`N` values). Lower is more suspicious.
    pub scores: Vec<f64>,
    /// How many epochs were averaged.
    pub epochs_used: usize,
    /// Whether epoch 1 was left out (true whenever at least two epochs were passed).
    pub first_epoch_skipped: bool,
}

/// Computes AUM: the mean over epochs of each sample's in-loop training margin
/// `x_y - max_{k != y} x_k` (logit of the given label minus the largest other logit).
///
/// `AUM_i = (1 / (E - 1)) * sum_{e = 2..E} margin_i,e`: epoch 1 is skipped because its margins
/// come from a nearly untrained model and mostly add noise. With a single epoch that epoch is
/// used, and [`Aum::first_epoch_skipped`] is false, so callers can warn.
///
/// Range `(-inf, +inf)`; lower is more suspicious. Pleiss et al. flag samples whose AUM falls
/// below that of deliberately mislabelled threshold samples, a step this function leaves to the
/// caller. A NaN margin (a sample missing from an epoch) makes that sample's AUM NaN.
///
/// # Shapes
/// `margins_per_epoch`: `E` arrays of `N` margins each. Returns `N` scores.
///
/// # Errors
/// [`Error::NoEpochs`] if `E = 0`, [`Error::LengthMismatch`] if the epochs differ in length.
pub fn aum<T: Real>(margins_per_epoch: &[&[T]]) -> Result<Aum> {
    let Some(first) = margins_per_epoch.first() else {
        return Err(Error::NoEpochs { method: "aum" });
    };
    let n = first.len();
    for epoch in margins_per_epoch {
        check::same_len("margins of an epoch", epoch.len(), "margins of epoch 1", n)?;
    }

    // Skip epoch 1 when there is anything else to average.
    let first_epoch_skipped = margins_per_epoch.len() > 1;
    let used = if first_epoch_skipped {
        &margins_per_epoch[1..]
    } else {
        margins_per_epoch
    };
    let count = used.len() as f64;
    let scores = (0..n)
        .into_par_iter()
        .map(|id| used.iter().map(|epoch| epoch[id].to_f64()).sum::<f64>() / count)
        .collect();
    Ok(Aum {
        scores,
        epochs_used: used.len(),
        first_epoch_skipped,
    })
}

/// Dataset-cartography coordinates, per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Cartography {
    /// Mean of `p_label` over epochs, in `[0, 1]`. Low confidence with low variability marks
    /// the "hard to learn" region, where most label errors lie.
    pub confidence: Vec<f64>,
    /// Population standard deviation (ddof 0) of `p_label` over epochs, in `[0, 0.5]`.
    pub variability: Vec<f64>,
    /// Share of epochs in which the prediction equals the given label, in `[0, 1]`.
    pub correctness: Vec<f64>,
}

/// Computes dataset cartography (Swayamdipta et al. 2020, Sect. 2): per sample, the mean
/// (confidence) and population standard deviation (variability, divisor `E`) of the
/// probability of the given label across epochs, and the share of epochs whose prediction
/// matches the given label (correctness).
///
/// All epochs are used. Samples with low confidence and low variability are the most
/// suspicious.
///
/// # Shapes
/// `p_label_per_epoch` and `predicted_per_epoch`: `E` arrays of `N` each; `labels`: `N`.
/// Returns three arrays of `N`.
///
/// # Errors
/// [`Error::NoEpochs`] if `E = 0`, [`Error::LengthMismatch`] if the epoch counts or any array
/// length differ.
pub fn cartography<T: Real>(
    p_label_per_epoch: &[&[T]],
    predicted_per_epoch: &[&[u32]],
    labels: &[u32],
) -> Result<Cartography> {
    if p_label_per_epoch.is_empty() {
        return Err(Error::NoEpochs {
            method: "cartography",
        });
    }
    let n = labels.len();
    let epochs = p_label_per_epoch.len();
    check::same_len(
        "predicted_per_epoch (epochs)",
        predicted_per_epoch.len(),
        "p_label_per_epoch",
        epochs,
    )?;
    for (p_label, predicted) in p_label_per_epoch.iter().zip(predicted_per_epoch) {
        check::same_len("p_label of an epoch", p_label.len(), "labels", n)?;
        check::same_len("predicted of an epoch", predicted.len(), "labels", n)?;
    }

    let count = epochs as f64;
    let per_sample: Vec<(f64, f64, f64)> = (0..n)
        .into_par_iter()
        .map(|id| {
            // Two passes: mean first, then the mean squared deviation.
            let mean = p_label_per_epoch
                .iter()
                .map(|e| e[id].to_f64())
                .sum::<f64>()
                / count;
            let variance = p_label_per_epoch
                .iter()
                .map(|e| (e[id].to_f64() - mean).powi(2))
                .sum::<f64>()
                / count;
            let correct = predicted_per_epoch
                .iter()
                .filter(|e| e[id] == labels[id])
                .count();
            (mean, variance.sqrt(), correct as f64 / count)
        })
        .collect();

    Ok(Cartography {
        confidence: per_sample.iter().map(|s| s.0).collect(),
        variability: per_sample.iter().map(|s| s.1).collect(),
        correctness: per_sample.iter().map(|s| s.2).collect(),
    })
}

/// Returns each sample's most frequent predicted class over the epochs given; a tie goes to
/// the tied class predicted in the latest epoch, because the later model is the better one.
///
/// This is the suggested label of the training-dynamics methods (AUM, cartography).
///
/// # Shapes
/// `predicted_per_epoch`: `E` arrays of `N` each, in epoch order. Returns `N` classes.
///
/// # Errors
/// [`Error::NoEpochs`] if `E = 0`, [`Error::LengthMismatch`] if the epochs differ in length,
/// [`Error::LabelOutOfRange`] if a class is not below `num_classes`.
pub fn most_frequent_class(predicted_per_epoch: &[&[u32]], num_classes: usize) -> Result<Vec<u32>> {
    let Some(first) = predicted_per_epoch.first() else {
        return Err(Error::NoEpochs {
            method: "most_frequent_class",
        });
    };
    let n = first.len();
    for epoch in predicted_per_epoch {
        check::same_len(
            "predictions of an epoch",
            epoch.len(),
            "predictions of epoch 1",
            n,
        )?;
        check::labels("predicted label", epoch, num_classes)?;
    }

    Ok((0..n)
        .into_par_iter()
        .map(|id| {
            let mut counts = vec![0usize; num_classes];
            for epoch in predicted_per_epoch {
                counts[epoch[id] as usize] += 1;
            }
            let most = counts.iter().copied().max().unwrap_or(0);
            // Walk back from the last epoch: the first class with the top count wins.
            predicted_per_epoch
                .iter()
                .rev()
                .map(|epoch| epoch[id])
                .find(|&class| counts[class as usize] == most)
                .unwrap_or(first[id])
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aum_skips_first_epoch() {
        // Sample 0 margins per epoch: [-5, 1, 3] -> mean of epochs 2..3 = (1 + 3) / 2 = 2.
        // Sample 1: [4, -2, -1] -> (-2 + -1) / 2 = -1.5.
        let epochs: [&[f32]; 3] = [&[-5.0, 4.0], &[1.0, -2.0], &[3.0, -1.0]];
        let result = aum(&epochs).unwrap();
        assert_eq!(result.scores, vec![2.0, -1.5]);
        assert_eq!(result.epochs_used, 2);
        assert!(result.first_epoch_skipped);
    }

    #[test]
    fn aum_single_epoch_fallback() {
        let epochs: [&[f64]; 1] = [&[0.5, -0.25]];
        let result = aum(&epochs).unwrap();
        assert_eq!(result.scores, vec![0.5, -0.25]);
        assert_eq!(result.epochs_used, 1);
        assert!(!result.first_epoch_skipped);
    }

    #[test]
    fn aum_rejects_no_epochs_and_ragged() {
        assert_eq!(
            aum::<f32>(&[]).unwrap_err(),
            Error::NoEpochs { method: "aum" }
        );
        let ragged: [&[f32]; 2] = [&[1.0, 2.0], &[1.0]];
        assert!(matches!(
            aum(&ragged).unwrap_err(),
            Error::LengthMismatch {
                len: 1,
                expected: 2,
                ..
            }
        ));
    }

    #[test]
    fn aum_nan_margin_propagates() {
        let epochs: [&[f32]; 2] = [&[1.0], &[f32::NAN]];
        assert!(aum(&epochs).unwrap().scores[0].is_nan());
    }

    #[test]
    fn cartography_hand_computed() {
        // Sample 0 (label 1): p_label [0.2, 0.4, 0.9]; mean 0.5;
        //   deviations [-0.3, -0.1, 0.4], squares [0.09, 0.01, 0.16], mean 0.26 / 3,
        //   std sqrt(0.0866...) = 0.2943920288775949; predicted [0, 1, 1]: 2 of 3 correct.
        // Sample 1 (label 0): p_label [0.5, 0.5, 0.5]; mean 0.5, std 0; predicted [1, 1, 1]: 0.
        let p_label: [&[f64]; 3] = [&[0.2, 0.5], &[0.4, 0.5], &[0.9, 0.5]];
        let predicted: [&[u32]; 3] = [&[0, 1], &[1, 1], &[1, 1]];
        let map = cartography(&p_label, &predicted, &[1, 0]).unwrap();
        assert!((map.confidence[0] - 0.5).abs() < 1e-12);
        assert!((map.variability[0] - 0.2943920288775949).abs() < 1e-12);
        assert!((map.correctness[0] - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(map.confidence[1], 0.5);
        assert_eq!(map.variability[1], 0.0);
        assert_eq!(map.correctness[1], 0.0);
    }

    #[test]
    fn cartography_rejects_mismatches() {
        let p_label: [&[f32]; 1] = [&[0.5, 0.5]];
        let predicted: [&[u32]; 2] = [&[0, 1], &[0, 1]];
        assert!(matches!(
            cartography(&p_label, &predicted, &[0, 1]).unwrap_err(),
            Error::LengthMismatch { .. }
        ));
        let short: [&[u32]; 1] = [&[0]];
        assert!(matches!(
            cartography(&p_label, &short, &[0, 1]).unwrap_err(),
            Error::LengthMismatch { .. }
        ));
        assert_eq!(
            cartography::<f32>(&[], &[], &[]).unwrap_err(),
            Error::NoEpochs {
                method: "cartography"
            }
        );
    }

    #[test]
    fn most_frequent_class_breaks_ties_by_latest() {
        // Sample 0: [2, 1, 2] -> 2 twice. Sample 1: [0, 1] then 1 -> 1 twice.
        // Sample 2: [0, 0, 1] -> 0 twice. Sample 3: [1, 2, 0] -> a three-way tie; epoch 3 says 0.
        let epochs: [&[u32]; 3] = [&[2, 0, 0, 1], &[1, 1, 0, 2], &[2, 1, 1, 0]];
        assert_eq!(most_frequent_class(&epochs, 3).unwrap(), vec![2, 1, 0, 0]);
    }

    #[test]
    fn most_frequent_class_rejects_bad_input() {
        assert!(matches!(
            most_frequent_class(&[], 3).unwrap_err(),
            Error::NoEpochs { .. }
        ));
        let out_of_range: [&[u32]; 1] = [&[0, 3]];
        assert!(matches!(
            most_frequent_class(&out_of_range, 3).unwrap_err(),
            Error::LabelOutOfRange {
                id: 1,
                label: 3,
                ..
            }
        ));
        let ragged: [&[u32]; 2] = [&[0, 1], &[0]];
        assert!(matches!(
            most_frequent_class(&ragged, 3).unwrap_err(),
            Error::LengthMismatch { .. }
        ));
    }
}
