//! Per-sample softmax, log-softmax, cross-entropy and logit margins from logits.
//!
//! Inputs are logits as a row-major `N x K` slice (`N = labels.len()` where labels are given,
//! else `logits.len() / K`). Every function computes in `f64` and returns one value per sample
//! (or one row per sample), never a batch mean.
//!
//! Non-finite logits are not rejected, because a diverged model's losses must still be ranked
//! (NaN losses rank first in [`crate::rank`]). A row with a NaN or `+inf` logit, or with
//! only `-inf` logits, gets NaN. A single `-inf` logit only gets probability 0, so a label
//! whose logit is `-inf` has loss `+inf`.

use rayon::prelude::*;

use crate::check::{self, ROW_SUM_TOLERANCE};
use crate::{Error, Real, Result};

/// Computes `ln(sum_k exp(x_k))` of one row stably as `m + ln(sum_k exp(x_k - m))` with
/// `m = max_k x_k`. Returns `-inf` for an empty row or a row of `-inf`.
pub fn log_sum_exp<T: Real>(row: &[T]) -> f64 {
    let max = row_max(row);

    // All -inf (or empty): every exp is 0, and x - max would be NaN.
    if max == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    let sum: f64 = row.iter().map(|v| (v.to_f64() - max).exp()).sum();
    max + sum.ln()
}

/// Computes the softmax of each row: `p_ik = exp(x_ik) / sum_j exp(x_ij)`.
///
/// # Shapes
/// `logits`: `N x K`, row-major. Returns `N x K`, each row in [0, 1] summing to 1.
///
/// # Errors
/// [`Error::TooFewClasses`] if `num_classes` is 0, [`Error::LengthMismatch`] if the length is
/// not a multiple of `num_classes`.
pub fn softmax<T: Real>(logits: &[T], num_classes: usize) -> Result<Vec<f64>> {
    check_rows(logits, num_classes, "softmax")?;
    let mut out = vec![0.0; logits.len()];
    out.par_chunks_mut(num_classes)
        .zip(logits.par_chunks(num_classes))
        .for_each(|(out_row, row)| {
            // exp(x - max) / sum keeps full precision where exp(log_softmax) would lose the
            // low bits of large logits.
            let max = row_max(row);
            let mut sum = 0.0;
            for (o, &x) in out_row.iter_mut().zip(row) {
                *o = (x.to_f64() - max).exp();
                sum += *o;
            }
            for o in out_row.iter_mut() {
                *o /= sum;
            }
        });
    Ok(out)
}

/// Computes the log-softmax of each row: `x_ik - ln(sum_j exp(x_ij))`, stably.
///
/// # Shapes
/// `logits`: `N x K`, row-major. Returns `N x K`, each value in `[-inf, 0]`.
///
/// # Errors
/// As [`softmax`].
pub fn log_softmax<T: Real>(logits: &[T], num_classes: usize) -> Result<Vec<f64>> {
    check_rows(logits, num_classes, "log_softmax")?;
    let mut out = vec![0.0; logits.len()];
    out.par_chunks_mut(num_classes)
        .zip(logits.par_chunks(num_classes))
        .for_each(|(out_row, row)| {
            let lse = log_sum_exp(row);
            for (o, &x) in out_row.iter_mut().zip(row) {
                *o = x.to_f64() - lse;
            }
        });
    Ok(out)
}

/// Computes each sample's cross-entropy against its given label, natural log, no smoothing:
/// `loss_i = -ln softmax(x_i)[y_i] = ln(sum_k exp(x_ik)) - x_i,y_i`.
///
/// This is the loss that toploss records and ranks. Range `[0, +inf]`; higher means the model
/// disagrees more with the given label.
///
/// # Shapes
/// `logits`: `N x K`, `labels`: `N`. Returns `N` losses.
///
/// # Errors
/// [`Error::TooFewClasses`] if `num_classes` is 0, [`Error::LengthMismatch`] if `logits` is
/// not `N x K`, [`Error::LabelOutOfRange`] if a label is not below `K`.
pub fn cross_entropy<T: Real>(
    logits: &[T],
    labels: &[u32],
    num_classes: usize,
) -> Result<Vec<f64>> {
    check_logits_and_labels(logits, labels, num_classes, "cross_entropy", 1)?;
    Ok(per_row(logits, labels, num_classes, |row, label| {
        log_sum_exp(row) - row[label].to_f64()
    }))
}

/// Computes each sample's cross-entropy with label smoothing, as PyTorch's
/// `cross_entropy(logits, labels, label_smoothing=epsilon, reduction="none")` defines it.
///
/// The target puts `1 - epsilon` on the given label plus `epsilon / K` on every class, so
/// `loss_i = (1 - epsilon) * (-ln p_i,y_i) + (epsilon / K) * sum_k (-ln p_ik)`. With
/// `epsilon = 0` this equals [`cross_entropy`]. It exists to cross-check the training loss;
/// toploss ranks the unsmoothed loss.
///
/// # Shapes
/// As [`cross_entropy`].
///
/// # Errors
/// As [`cross_entropy`], plus [`Error::InvalidParameter`] if `epsilon` is not in `[0, 1]`.
pub fn cross_entropy_smoothed<T: Real>(
    logits: &[T],
    labels: &[u32],
    num_classes: usize,
    epsilon: f64,
) -> Result<Vec<f64>> {
    if !(0.0..=1.0).contains(&epsilon) {
        return Err(Error::InvalidParameter {
            name: "label smoothing epsilon",
            value: epsilon.to_string(),
            allowed: "in [0, 1]",
        });
    }
    check_logits_and_labels(logits, labels, num_classes, "cross_entropy_smoothed", 1)?;
    let uniform_weight = epsilon / num_classes as f64;
    Ok(per_row(logits, labels, num_classes, |row, label| {
        let lse = log_sum_exp(row);
        let label_term = lse - row[label].to_f64();
        let all_classes: f64 = row.iter().map(|x| lse - x.to_f64()).sum();
        (1.0 - epsilon) * label_term + uniform_weight * all_classes
    }))
}

/// Computes each sample's logit margin: the logit of the given label minus the largest other
/// logit, `m_i = x_i,y_i - max_{k != y_i} x_ik`.
///
/// Range `(-inf, +inf)`. Negative means the model predicts another class; the more negative,
/// the more suspicious the label. Averaged over training epochs this is AUM (Pleiss et al.,
/// "Identifying Mislabeled Data using the Area Under the Margin Ranking", NeurIPS 2020,
/// Eq. 1), see [`crate::dynamics::aum`].
///
/// # Shapes
/// As [`cross_entropy`].
///
/// # Errors
/// As [`cross_entropy`], and [`Error::TooFewClasses`] if `num_classes < 2`.
pub fn margins<T: Real>(logits: &[T], labels: &[u32], num_classes: usize) -> Result<Vec<f64>> {
    check_logits_and_labels(logits, labels, num_classes, "margins", 2)?;
    Ok(per_row(logits, labels, num_classes, |row, label| {
        let max_other = row
            .iter()
            .enumerate()
            .filter(|&(k, _)| k != label)
            .map(|(_, x)| x.to_f64())
            .fold(f64::NEG_INFINITY, f64::max);
        row[label].to_f64() - max_other
    }))
}

/// Returns whether `values` look like probabilities rather than logits: every value in
/// `[0, 1]` and every row summing to 1 within 1e-3.
///
/// Passing softmax outputs where logits are expected applies softmax twice and squeezes every
/// loss into a narrow band (for 10 classes, into `[ln(1 + 9/e), ln(9 + e)] = [1.46, 2.46]`), so
/// callers should report it. Returns `false` for empty input or a length that is not a
/// multiple of `num_classes`.
pub fn looks_like_probabilities<T: Real>(values: &[T], num_classes: usize) -> bool {
    if num_classes == 0 || values.is_empty() || !values.len().is_multiple_of(num_classes) {
        return false;
    }
    values.par_chunks(num_classes).all(|row| {
        let mut sum = 0.0;
        for v in row {
            let v = v.to_f64();
            if !(0.0..=1.0).contains(&v) {
                return false;
            }
            sum += v;
        }
        (sum - 1.0).abs() <= ROW_SUM_TOLERANCE
    })
}

/// Returns whether probabilities look like a softmax applied twice: `K >= 2`, at least
/// [`DOUBLE_SOFTMAX_MIN_SAMPLES`] rows, and every value inside the only range that softmax of
/// values in `[0, 1]` can produce, `[1 / (1 + (K - 1) e), e / (e + K - 1)]`.
///
/// Softmax of a probability row gives `p_j = e^{x_j} / sum_k e^{x_k}` with every `x` in
/// `[0, 1]`, so `p_j` is smallest when `x_j = 0` and every other `x` is 1, and largest in the
/// opposite case. For 10 classes that range is `[0.039, 0.232]` and every loss falls in
/// `[1.46, 2.46]`. A real model puts a value outside the range in at least one row of a
/// few dozen, which is why a minimum row count applies. Returns `false` for a length that is
/// not a multiple of `num_classes`.
///
/// # Shapes
/// `probs`: `N x K`.
pub fn looks_like_double_softmax<T: Real>(probs: &[T], num_classes: usize) -> bool {
    if num_classes < 2 || !probs.len().is_multiple_of(num_classes) {
        return false;
    }
    if probs.len() / num_classes < DOUBLE_SOFTMAX_MIN_SAMPLES {
        return false;
    }
    let e = std::f64::consts::E;
    let others = (num_classes - 1) as f64;
    let low = 1.0 / (1.0 + others * e);
    let high = e / (e + others);
    probs.par_iter().all(|p| (low..=high).contains(&p.to_f64()))
}

/// Fewest rows on which [`looks_like_double_softmax`] reports anything: with only a handful
/// of rows, an honestly uncertain model can stay inside the squeezed range by chance.
pub const DOUBLE_SOFTMAX_MIN_SAMPLES: usize = 20;

/// Returns the maximum of a row: NaN if any value is NaN, `-inf` for an empty row.
fn row_max<T: Real>(row: &[T]) -> f64 {
    let mut max = f64::NEG_INFINITY;
    for v in row {
        let v = v.to_f64();
        if v.is_nan() {
            return f64::NAN;
        }
        if v > max {
            max = v;
        }
    }
    max
}

/// Applies `score(row, label)` to every row in parallel.
fn per_row<T: Real>(
    logits: &[T],
    labels: &[u32],
    num_classes: usize,
    score: impl Fn(&[T], usize) -> f64 + Sync,
) -> Vec<f64> {
    logits
        .par_chunks(num_classes)
        .zip(labels.par_iter())
        .map(|(row, &label)| score(row, label as usize))
        .collect()
}

fn check_rows<T>(logits: &[T], num_classes: usize, method: &'static str) -> Result<()> {
    check::classes(method, num_classes, 1)?;
    if !logits.len().is_multiple_of(num_classes) {
        return Err(Error::LengthMismatch {
            name: "logits",
            len: logits.len(),
            expected: logits.len() - logits.len() % num_classes,
            shape: format!("N x K with K = {num_classes}, and the length is not a multiple of K"),
        });
    }
    Ok(())
}

fn check_logits_and_labels<T>(
    logits: &[T],
    labels: &[u32],
    num_classes: usize,
    method: &'static str,
    needed_classes: usize,
) -> Result<()> {
    check::classes(method, num_classes, needed_classes)?;
    check::matrix_len("logits", logits.len(), labels.len(), num_classes)?;
    check::labels("given label", labels, num_classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() < 1e-12,
            "actual {actual}, expected {expected}"
        );
    }

    #[test]
    fn softmax_hand_computed() {
        // Row [0, ln 2, ln 5]: exp gives [1, 2, 5], sum 8, softmax [1/8, 2/8, 5/8].
        let logits = [0.0, 2f64.ln(), 5f64.ln()];
        let p = softmax(&logits, 3).unwrap();
        assert_close(p[0], 0.125);
        assert_close(p[1], 0.25);
        assert_close(p[2], 0.625);
    }

    #[test]
    fn softmax_stable_for_huge_logits() {
        // [1000, 1000] would overflow exp; shifted by the max it is [0, 0] -> [0.5, 0.5].
        let p = softmax(&[1000.0_f32, 1000.0], 2).unwrap();
        assert_eq!(p, vec![0.5, 0.5]);
    }

    #[test]
    fn log_softmax_hand_computed() {
        // Row [0, ln 3]: exp sum 1 + 3 = 4, log-softmax [-ln 4, ln 3 - ln 4].
        let out = log_softmax(&[0.0, 3f64.ln()], 2).unwrap();
        assert_close(out[0], -(4f64.ln()));
        assert_close(out[1], 3f64.ln() - 4f64.ln());
    }

    #[test]
    fn log_softmax_rejects_ragged_length() {
        let err = log_softmax(&[0.0_f32; 5], 2).unwrap_err();
        assert!(matches!(err, Error::LengthMismatch { len: 5, .. }), "{err}");
    }

    #[test]
    fn cross_entropy_hand_computed() {
        // Sample 0: logits [0, ln 3], label 1: -ln(3/4) = ln 4 - ln 3 = 0.2876820724517809.
        // Sample 1: logits [2, 2], label 0: -ln(1/2) = ln 2 = 0.6931471805599453.
        let logits = [0.0, 3f64.ln(), 2.0, 2.0];
        let loss = cross_entropy(&logits, &[1, 0], 2).unwrap();
        assert_close(loss[0], 0.2876820724517809);
        assert_close(loss[1], 2f64.ln());
    }

    #[test]
    fn cross_entropy_non_finite_logits() {
        // A NaN logit gives a NaN loss; a -inf logit on the label gives +inf.
        let logits = [f32::NAN, 0.0, f32::NEG_INFINITY, 0.0];
        let loss = cross_entropy(&logits, &[1, 0], 2).unwrap();
        assert!(loss[0].is_nan());
        assert_eq!(loss[1], f64::INFINITY);
    }

    #[test]
    fn cross_entropy_rejects_bad_label() {
        let err = cross_entropy(&[0.0_f32, 1.0], &[2], 2).unwrap_err();
        assert!(
            matches!(err, Error::LabelOutOfRange { label: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn cross_entropy_rejects_count_mismatch() {
        // Two labels but one row of two logits.
        let err = cross_entropy(&[0.0_f32, 1.0], &[0, 1], 2).unwrap_err();
        assert!(
            matches!(err, Error::LengthMismatch { expected: 4, .. }),
            "{err}"
        );
    }

    #[test]
    fn cross_entropy_smoothed_hand_computed() {
        // Logits [0, ln 3], label 1, epsilon 0.2, K = 2; p = [1/4, 3/4].
        // -ln p = [ln 4, ln 4 - ln 3] = [1.3862943611198906, 0.2876820724517809].
        // Targets: 0.8 on the label plus 0.2 / 2 = 0.1 on each class, so
        // loss = 0.8 * 0.2876820724517809 + 0.1 * (1.3862943611198906 + 0.2876820724517809)
        //      = 0.23014565796142464 + 0.16739764335716714 = 0.3975433013185918.
        let loss = cross_entropy_smoothed(&[0.0, 3f64.ln()], &[1], 2, 0.2).unwrap();
        assert_close(loss[0], 0.3975433013185918);
    }

    #[test]
    fn cross_entropy_smoothed_zero_is_plain() {
        let logits = [0.3, -1.2, 2.0, 0.5, 0.5, 0.1];
        let plain = cross_entropy(&logits, &[2, 0], 3).unwrap();
        let smoothed = cross_entropy_smoothed(&logits, &[2, 0], 3, 0.0).unwrap();
        assert_close(plain[0], smoothed[0]);
        assert_close(plain[1], smoothed[1]);
    }

    #[test]
    fn cross_entropy_smoothed_rejects_epsilon() {
        let err = cross_entropy_smoothed(&[0.0_f32, 1.0], &[0], 2, 1.5).unwrap_err();
        assert!(matches!(err, Error::InvalidParameter { .. }), "{err}");
    }

    #[test]
    fn margins_hand_computed() {
        // Sample 0: logits [1, 4, 2], label 1: 4 - max(1, 2) = 2.
        // Sample 1: logits [1, 4, 2], label 0: 1 - max(4, 2) = -3.
        let logits = [1.0_f32, 4.0, 2.0, 1.0, 4.0, 2.0];
        assert_eq!(margins(&logits, &[1, 0], 3).unwrap(), vec![2.0, -3.0]);
    }

    #[test]
    fn margins_rejects_single_class() {
        let err = margins(&[1.0_f32], &[0], 1).unwrap_err();
        assert!(
            matches!(err, Error::TooFewClasses { needed: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn probabilities_detected_where_logits_expected() {
        assert!(looks_like_probabilities(&[0.2_f32, 0.8, 0.5, 0.5], 2));
        // A negative value or a row sum of 1.5 is a logit row.
        assert!(!looks_like_probabilities(&[-0.2_f32, 1.2], 2));
        assert!(!looks_like_probabilities(&[0.7_f32, 0.8], 2));
        assert!(!looks_like_probabilities::<f32>(&[], 2));
    }

    #[test]
    fn double_softmax_detected_on_squeezed_rows() {
        // 20 rows of softmax(softmax(logits)) for 3 classes lie in
        // [1 / (1 + 2e), e / (e + 2)] = [0.1554, 0.5761].
        let mut probs = Vec::new();
        for i in 0..DOUBLE_SOFTMAX_MIN_SAMPLES {
            let logits = [10.0 + i as f64, 0.0, -3.0];
            probs.extend(softmax(&softmax(&logits, 3).unwrap(), 3).unwrap());
        }
        assert!(looks_like_double_softmax(&probs, 3));

        // One confident row (p = 0.9 > 0.5761) is enough to rule it out.
        probs[0..3].copy_from_slice(&[0.9, 0.05, 0.05]);
        assert!(!looks_like_double_softmax(&probs, 3));
    }

    #[test]
    fn double_softmax_needs_enough_rows() {
        // Three squeezed rows are too few to tell from an uncertain model.
        let probs = [0.4_f32, 0.3, 0.3, 0.3, 0.4, 0.3, 0.3, 0.3, 0.4];
        assert!(!looks_like_double_softmax(&probs, 3));
        assert!(!looks_like_double_softmax(&probs, 1));
        assert!(!looks_like_double_softmax(&probs[..8], 3));
    }

    #[test]
    fn double_softmax_squeezes_losses() {
        // Softmax applied twice to confident 10-class logits: the loss can no longer fall
        // below ln(1 + 9/e) = 1.4611 or rise above ln(9 + e) = 2.4611.
        let mut logits = vec![0.0_f64; 10];
        logits[0] = 50.0;
        let probs = softmax(&logits, 10).unwrap();
        let right = cross_entropy(&probs, &[0], 10).unwrap()[0];
        let wrong = cross_entropy(&probs, &[1], 10).unwrap()[0];
        assert_close(right, (1.0 + 9.0 / std::f64::consts::E).ln());
        assert!((wrong - (9.0 + std::f64::consts::E).ln()).abs() < 1e-9);
    }
}
