//! Per-sample label-quality scores from predicted probabilities.
//!
//! Inputs are probabilities `p` as a row-major `N x K` slice (each row a softmax distribution)
//! and the given labels `y` (`N`, each below `K`). Every scorer checks its input as described
//! in [`crate::confident`]: values finite and in `[0, 1]` within 1e-6, rows summing to 1 within
//! 1e-3. All scores assume out-of-sample probabilities (from cross-validation, or a model that
//! did not train on the sample); in-sample probabilities are overconfident and hide errors.
//!
//! References: Northcutt, Jiang, Chuang, "Confident Learning: Estimating Uncertainty in
//! Dataset Labels", JAIR 70, 2021; Kuan and Mueller, "Model-Agnostic Label Quality Scoring to
//! Detect Real-World Label Errors", ICML DataPerf workshop 2022 (self-confidence, normalized
//! margin, confidence-weighted entropy as implemented in cleanlab 2.9.0 `cleanlab/rank.py`).

use rayon::prelude::*;

use crate::numpy::{argmax_first, pairwise_sum};
use crate::{Real, Result, check};

/// Lower clip of self-confidence and of the weighted entropy in
/// [`confidence_weighted_entropy`]: cleanlab 2.9.0's `CLIPPING_LOWER_BOUND`.
const CLIPPING_LOWER_BOUND: f64 = 1e-6;

/// Computes the self-confidence `p_i,y_i`, the predicted probability of the given label.
///
/// Range `[0, 1]`; lower is more suspicious. Best at finding samples whose label the model
/// finds unlikely regardless of what else it predicts.
///
/// # Shapes
/// `probs`: `N x K`, `labels`: `N`. Returns `N` scores.
///
/// # Errors
/// [`crate::Error::TooFewClasses`] if `K = 0`, [`crate::Error::LengthMismatch`],
/// [`crate::Error::LabelOutOfRange`], [`crate::Error::InvalidProbability`] or
/// [`crate::Error::RowSumNotOne`] for malformed input.
pub fn self_confidence<T: Real>(
    probs: &[T],
    labels: &[u32],
    num_classes: usize,
) -> Result<Vec<f64>> {
    check::probs_and_labels("self_confidence", probs, labels, num_classes, 1)?;
    Ok(per_row(probs, labels, num_classes, |row, label| {
        row[label].to_f64()
    }))
}

/// Computes the normalized margin `p_i,y_i - max_{k != y_i} p_ik`.
///
/// Range `[-1, 1]`; lower is more suspicious, and a negative value means the model prefers
/// another class. cleanlab's `normalized_margin` score is the same value rescaled to
/// `(margin + 1) / 2` in `[0, 1]`, which ranks samples identically;
/// [`crate::confident::Ranking::NormalizedMargin`] uses that rescaled form.
///
/// # Shapes
/// As [`self_confidence`].
///
/// # Errors
/// As [`self_confidence`], and [`crate::Error::TooFewClasses`] if `K < 2`.
pub fn normalized_margin<T: Real>(
    probs: &[T],
    labels: &[u32],
    num_classes: usize,
) -> Result<Vec<f64>> {
    check::probs_and_labels("normalized_margin", probs, labels, num_classes, 2)?;
    Ok(per_row(probs, labels, num_classes, margin_of_row))
}

/// Computes the Shannon entropy of each row in nats: `H_i = -sum_k p_ik ln p_ik`, with
/// `0 ln 0 = 0`.
///
/// Range `[0, ln K]`; higher means the model is less certain. It ignores the given label.
///
/// # Shapes
/// `probs`: `N x K`. Returns `N` values.
///
/// # Errors
/// [`crate::Error::TooFewClasses`] if `K = 0`, [`crate::Error::LengthMismatch`] if the length
/// is not a multiple of `K`, [`crate::Error::InvalidProbability`] or
/// [`crate::Error::RowSumNotOne`] for rows that are not distributions.
pub fn entropy<T: Real>(probs: &[T], num_classes: usize) -> Result<Vec<f64>> {
    check::classes("entropy", num_classes, 1)?;
    let n = probs.len() / num_classes;
    check::matrix_len("probs", probs.len(), n, num_classes)?;
    check::probabilities(probs, num_classes)?;
    Ok(probs
        .par_chunks(num_classes)
        .map(|row| -row.iter().map(|&p| x_ln_x(p.to_f64())).sum::<f64>())
        .collect())
}

/// Computes cleanlab's confidence-weighted entropy, exactly as cleanlab 2.9.0's
/// `get_confidence_weighted_entropy_for_each_label` (`cleanlab/rank.py`) does:
///
/// ```text
/// H_i = -sum_k p_ik ln p_ik / ln K                (normalized entropy, in [0, 1])
/// x_i = H_i / max(p_i,y_i, 1e-6)
/// score_i = ln(x_i + 1) / max(x_i, 1e-6)
/// ```
///
/// Range `[0, 1]`; lower is more suspicious. `ln(1 + x) / x` falls from 1 towards 0 as the
/// entropy grows or the self-confidence shrinks. One quirk of the formula is kept for parity:
/// a one-hot row has `x = 0` and scores exactly 0, the most suspicious value, whichever class
/// it predicts.
///
/// # Shapes
/// As [`self_confidence`].
///
/// # Errors
/// As [`self_confidence`], and [`crate::Error::TooFewClasses`] if `K < 2` (`ln 1 = 0`).
pub fn confidence_weighted_entropy<T: Real>(
    probs: &[T],
    labels: &[u32],
    num_classes: usize,
) -> Result<Vec<f64>> {
    check::probs_and_labels("confidence_weighted_entropy", probs, labels, num_classes, 2)?;
    Ok(confidence_weighted_entropy_unchecked(
        probs,
        labels,
        num_classes,
    ))
}

/// [`confidence_weighted_entropy`] without the input check.
pub(crate) fn confidence_weighted_entropy_unchecked<T: Real>(
    probs: &[T],
    labels: &[u32],
    num_classes: usize,
) -> Vec<f64> {
    let ln_k = (num_classes as f64).ln();
    probs
        .par_chunks(num_classes)
        .zip(labels.par_iter())
        .map_init(
            || Vec::with_capacity(num_classes),
            |terms, (row, &label)| {
                // NumPy sums each row of the x ln x matrix pairwise; match it bit for bit.
                terms.clear();
                terms.extend(row.iter().map(|&p| x_ln_x(p.to_f64())));
                let normalized_entropy = -pairwise_sum(terms) / ln_k;

                let confidence = row[label as usize].to_f64().max(CLIPPING_LOWER_BOUND);
                let weighted = normalized_entropy / confidence;
                (weighted + 1.0).ln() / weighted.max(CLIPPING_LOWER_BOUND)
            },
        )
        .collect()
}

/// Computes mistakenness `(m_i c_i + 1) / 2`, where `c_i = max_k p_ik` is the confidence of the
/// prediction and `m_i = +1` if the prediction (first argmax) differs from the given label,
/// else `-1`.
///
/// Range `[0, 1]`; higher is more suspicious. Scores above 0.5 are exactly the samples the
/// model predicts as another class, ordered by how sure it is.
///
/// # Shapes
/// As [`self_confidence`].
///
/// # Errors
/// As [`self_confidence`].
pub fn mistakenness<T: Real>(probs: &[T], labels: &[u32], num_classes: usize) -> Result<Vec<f64>> {
    check::probs_and_labels("mistakenness", probs, labels, num_classes, 1)?;
    Ok(per_row(probs, labels, num_classes, |row, label| {
        let predicted = argmax_first(row.iter().map(|p| p.to_f64()));
        let confidence = row[predicted].to_f64();
        let sign = if predicted == label { -1.0 } else { 1.0 };
        (sign * confidence + 1.0) / 2.0
    }))
}

/// Computes the cross-entropy from probabilities, `-ln p_i,y_i` (natural log).
///
/// Range `[0, +inf]`, `+inf` where `p_i,y_i = 0`; higher is more suspicious. Use
/// [`crate::loss::cross_entropy`] when logits are at hand: it stays finite where the
/// probability underflows to 0.
///
/// # Shapes
/// As [`self_confidence`].
///
/// # Errors
/// As [`self_confidence`].
pub fn cross_entropy_from_probs<T: Real>(
    probs: &[T],
    labels: &[u32],
    num_classes: usize,
) -> Result<Vec<f64>> {
    check::probs_and_labels("cross_entropy_from_probs", probs, labels, num_classes, 1)?;
    // max(0) maps a tolerated tiny negative probability to 0 and its loss to +inf.
    Ok(per_row(probs, labels, num_classes, |row, label| {
        -row[label].to_f64().max(0.0).ln()
    }))
}

/// Returns each row's predicted class: the index of its largest probability, the first one
/// on ties (as `np.argmax`).
///
/// # Shapes
/// `probs`: `N x K`. Returns `N` labels.
///
/// # Errors
/// As [`entropy`].
pub fn predicted_labels<T: Real>(probs: &[T], num_classes: usize) -> Result<Vec<u32>> {
    check::classes("predicted_labels", num_classes, 1)?;
    let n = probs.len() / num_classes;
    check::matrix_len("probs", probs.len(), n, num_classes)?;
    check::probabilities(probs, num_classes)?;
    Ok(probs
        .par_chunks(num_classes)
        .map(|row| argmax_first(row.iter().map(|p| p.to_f64())) as u32)
        .collect())
}

/// `p_y - max_{k != y} p_k` of one row. `row` needs at least two values.
pub(crate) fn margin_of_row<T: Real>(row: &[T], label: usize) -> f64 {
    let max_other = row
        .iter()
        .enumerate()
        .filter(|&(k, _)| k != label)
        .map(|(_, p)| p.to_f64())
        .fold(f64::NEG_INFINITY, f64::max);
    row[label].to_f64() - max_other
}

/// `x ln x` with `0 ln 0 = 0`, as `scipy.special.xlogy(x, x)`.
fn x_ln_x(x: f64) -> f64 {
    if x == 0.0 { 0.0 } else { x * x.ln() }
}

/// Applies `score(row, label)` to every row in parallel.
pub(crate) fn per_row<T: Real>(
    probs: &[T],
    labels: &[u32],
    num_classes: usize,
    score: impl Fn(&[T], usize) -> f64 + Sync,
) -> Vec<f64> {
    probs
        .par_chunks(num_classes)
        .zip(labels.par_iter())
        .map(|(row, &label)| score(row, label as usize))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    // Three samples, K = 3:
    //   row 0: [0.7, 0.2, 0.1], label 0 (predicted 0, agrees)
    //   row 1: [0.1, 0.6, 0.3], label 2 (predicted 1, disagrees)
    //   row 2: [0.5, 0.5, 0.0], label 1 (tie: first argmax is 0)
    const PROBS: [f64; 9] = [0.7, 0.2, 0.1, 0.1, 0.6, 0.3, 0.5, 0.5, 0.0];
    const LABELS: [u32; 3] = [0, 2, 1];

    fn assert_all_close(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len());
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!((a - e).abs() < 1e-12, "index {i}: actual {a}, expected {e}");
        }
    }

    #[test]
    fn self_confidence_hand_computed() {
        // p[given] = [0.7, 0.3, 0.5].
        let scores = self_confidence(&PROBS, &LABELS, 3).unwrap();
        assert_all_close(&scores, &[0.7, 0.3, 0.5]);
    }

    #[test]
    fn normalized_margin_hand_computed() {
        // 0.7 - max(0.2, 0.1) = 0.5; 0.3 - max(0.1, 0.6) = -0.3; 0.5 - max(0.5, 0.0) = 0.
        let scores = normalized_margin(&PROBS, &LABELS, 3).unwrap();
        assert_all_close(&scores, &[0.5, -0.3, 0.0]);
    }

    #[test]
    fn entropy_hand_computed() {
        // row 0: -(0.7 ln 0.7 + 0.2 ln 0.2 + 0.1 ln 0.1) = 0.8018185525433372
        // row 1: -(0.1 ln 0.1 + 0.6 ln 0.6 + 0.3 ln 0.3) = 0.8979457248567798
        // row 2: -(2 * 0.5 ln 0.5) - 0 = ln 2 = 0.6931471805599453 (0 ln 0 = 0)
        let values = entropy(&PROBS, 3).unwrap();
        assert_all_close(
            &values,
            &[0.8018185525433372, 0.8979457248567798, 2f64.ln()],
        );
    }

    #[test]
    fn confidence_weighted_entropy_hand_computed() {
        // row 0: H = 0.8018185525 / ln 3 = 0.7298466992, x = H / 0.7 = 1.0426381417,
        //        score = ln(2.0426381417) / 1.0426381417 = 0.7142421791 / 1.0426381417
        //              = 0.6850336186
        // row 1: H = 0.8979457249 / ln 3 = 0.8173454221, x = H / 0.3 = 2.7244847405,
        //        score = 1.3149285176 / 2.7244847405 = 0.4826338346
        // row 2: H = ln 2 / ln 3 = 0.6309297536, x = H / 0.5 = 1.2618595071,
        //        score = 0.8161872657 / 1.2618595071 = 0.6468131049
        // cleanlab 2.9.0: get_confidence_weighted_entropy_for_each_label(np.array([0, 2, 1]),
        //     np.array([[.7, .2, .1], [.1, .6, .3], [.5, .5, 0]]))
        //     -> [0.68503362, 0.48263383, 0.6468131]
        let scores = confidence_weighted_entropy(&PROBS, &LABELS, 3).unwrap();
        assert!((scores[0] - 0.6850336186).abs() < 1e-9, "{}", scores[0]);
        assert!((scores[1] - 0.4826338346).abs() < 1e-9, "{}", scores[1]);
        assert!((scores[2] - 0.6468131049).abs() < 1e-9, "{}", scores[2]);
    }

    #[test]
    fn confidence_weighted_entropy_one_hot_is_zero() {
        // A one-hot row has entropy 0, so x = 0 and ln(1) / 1e-6 = 0.
        let scores = confidence_weighted_entropy(&[1.0, 0.0], &[0], 2).unwrap();
        assert_eq!(scores, vec![0.0]);
    }

    #[test]
    fn mistakenness_hand_computed() {
        // row 0: agrees, c = 0.7: (-0.7 + 1) / 2 = 0.15
        // row 1: disagrees, c = 0.6: (0.6 + 1) / 2 = 0.8
        // row 2: first argmax 0 != 1, c = 0.5: (0.5 + 1) / 2 = 0.75
        let scores = mistakenness(&PROBS, &LABELS, 3).unwrap();
        assert_all_close(&scores, &[0.15, 0.8, 0.75]);
    }

    #[test]
    fn cross_entropy_from_probs_hand_computed() {
        // -ln [0.7, 0.3, 0.5] = [0.35667494393873245, 1.2039728043259361, 0.6931471805599453]
        let losses = cross_entropy_from_probs(&PROBS, &LABELS, 3).unwrap();
        assert_all_close(
            &losses,
            &[0.35667494393873245, 1.2039728043259361, 2f64.ln()],
        );
        // p[given] = 0 gives +inf.
        let zero = cross_entropy_from_probs(&[1.0, 0.0], &[1], 2).unwrap();
        assert_eq!(zero, vec![f64::INFINITY]);
    }

    #[test]
    fn predicted_labels_first_argmax() {
        assert_eq!(predicted_labels(&PROBS, 3).unwrap(), vec![0, 1, 0]);
    }

    #[test]
    fn scorers_accept_f32() {
        let probs: Vec<f32> = PROBS.iter().map(|&p| p as f32).collect();
        let scores = self_confidence(&probs, &LABELS, 3).unwrap();
        assert_eq!(scores[1], f64::from(0.3_f32));
    }

    #[test]
    fn scorers_reject_logits() {
        // Logits are out of [0, 1]: the error names the sample, class and value.
        let err = self_confidence(&[2.0_f32, -1.0], &[0], 2).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidProbability {
                    id: 0,
                    class: 0,
                    value: 2.0,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn normalized_margin_rejects_single_class() {
        let err = normalized_margin(&[1.0_f32], &[0], 1).unwrap_err();
        assert!(
            matches!(err, Error::TooFewClasses { needed: 2, .. }),
            "{err}"
        );
    }
}
