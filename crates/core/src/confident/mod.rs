//! Confident learning: per-class thresholds, the confident joint, noise-matrix estimates and
//! label-issue filters, reproducing cleanlab 2.9.0.
//!
//! Reference: Northcutt, Jiang, Chuang, "Confident Learning: Estimating Uncertainty in
//! Dataset Labels", JAIR 70, 2021 (Sect. 3.1 for the thresholds and the confident joint,
//! Eq. 2 and 3; Sect. 3.2 for the pruning filters). The behaviour follows cleanlab 2.9.0's
//! `cleanlab/count.py`, `cleanlab/filter.py` and `cleanlab/rank.py`.
//!
//! Quantities, with `y~` the given (noisy) label and `y*` the unknown true label:
//! - threshold `t_j`: the mean of `p_j` over samples whose given label is `j`;
//! - confident joint `C[i][j]`: the number of samples with `y~ = i` whose confidently
//!   predicted class is `j` (row = given label, column = estimated true label);
//! - calibrated joint: `C` rescaled so that row `i` sums to the count of given label `i`;
//! - `p(y*)`, the noise matrix `P(y~ = i | y* = j)` and its inverse `P(y* = i | y~ = j)`.
//!
//! # Input and assumptions
//! `probs` is `N x K`, row-major, out-of-sample predicted probabilities (cross-validated, or
//! from a model that never trained on the sample). In-sample probabilities are overconfident
//! and hide most errors. Every function runs these checks in order and returns the first
//! failure:
//! 1. `K >= 2`, else [`Error::TooFewClasses`].
//! 2. `probs.len() == labels.len() * K`, else [`Error::LengthMismatch`]. This also catches a
//!    prediction count that differs from the label count.
//! 3. Every label below `K`, else [`Error::LabelOutOfRange`].
//! 4. Every probability finite and in `[0, 1]` within 1e-6, else
//!    [`Error::InvalidProbability`]. This catches NaN, negative values and logits.
//! 5. Every row summing to 1 within 1e-3, else [`Error::RowSumNotOne`]. This catches
//!    unnormalised scores and multi-label (per-class sigmoid) outputs, because multi-label
//!    data is not supported.
//! 6. `N >= 1`, else [`Error::NoSamples`].
//! 7. At least two distinct given labels, else [`Error::SingleGivenClass`]. cleanlab accepts
//!    a dataset whose labels are all 0, but toploss rejects it like any single-class dataset.
//!
//! A class with no samples is valid: its threshold is 2, so no sample is confidently counted
//! into it, its diagonal entry is raised to 1 as every diagonal entry is, and its calibrated
//! row is all zeros.
//!
//! # Precision and ties
//! Values are widened to `f64`. On `f64` input the thresholds equal cleanlab's bit for bit
//! (NumPy's pairwise summation order is reproduced), and so do the counts that follow from
//! them. Scores agree to rounding: NumPy's vectorised `log` may differ from Rust's in the last
//! bit. On `f32` input cleanlab would compute in `f32`, so a value lying within rounding error
//! of a threshold may land on the other side.
//!
//! NOTE: cleanlab sorts with NumPy's default `argsort`, which is not stable: with the SIMD
//! sorts of NumPy 2.x, the order of exactly equal scores depends on the CPU. toploss always
//! breaks such ties by lower id. Only exactly equal scores can differ; on the MNIST test-set
//! oracle every filter and ranking matches cleanlab 2.9.0 exactly.

mod issues;

pub use issues::{
    Filter, LabelIssueOptions, Ranking, find_label_issues, find_label_issues_ranked,
    num_label_issues, order_label_issues,
};

use rayon::prelude::*;

use crate::numpy::{argmax_first, pairwise_sum, round_preserving_sum};
use crate::{Error, Real, Result, check};

/// Tolerance subtracted from each threshold before comparing: cleanlab 2.9.0's
/// `FLOATING_POINT_COMPARISON`. A probability counts as confident for class `j` when
/// `p_j >= t_j - 1e-6`.
const THRESHOLD_TOLERANCE: f64 = 1e-6;

/// Threshold of a class without samples. No probability reaches it (cleanlab's `BIG_VALUE`).
const MISSING_CLASS_THRESHOLD: f64 = 2.0;

/// Lower clip of the thresholds: cleanlab's `CONFIDENT_THRESHOLDS_LOWER_BOUND`, twice the
/// threshold tolerance, so that `t_j - 1e-6` stays positive.
const THRESHOLD_LOWER_BOUND: f64 = 2.0 * THRESHOLD_TOLERANCE;

/// Denominator clip that avoids division by zero: cleanlab's `TINY_VALUE`.
const TINY_VALUE: f64 = 1e-100;

/// Lower clip of `p(y*)` in [`estimate_latent`]: cleanlab's `CLIPPING_LOWER_BOUND`.
const PRIOR_LOWER_BOUND: f64 = 1e-6;

/// Upper clip of off-diagonal noise rates in [`estimate_latent`] (cleanlab's
/// `clip_noise_rates`).
const MAX_NOISE_RATE: f64 = 0.9999;

/// The confident joint and what it was computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfidentJoint {
    /// The class count `K`.
    pub num_classes: usize,
    /// Per-class thresholds `t_j` (`K`), see [`confident_thresholds`].
    pub thresholds: Vec<f64>,
    /// Count of each given label (`K`).
    pub label_counts: Vec<u64>,
    /// The confident joint `C` before calibration, `K x K` row-major: row = given label,
    /// column = estimated true label. Diagonal entries are at least 1.
    pub uncalibrated: Vec<u64>,
    /// `C` calibrated so that row `i` sums to `label_counts[i]` and the whole to `N`, then
    /// rounded row by row preserving the row totals. `K x K` row-major.
    pub calibrated: Vec<u64>,
    /// Ids counted off the diagonal of `C` (confidently predicted class differs from the given
    /// label), ascending. This is the `confident_learning` filter before its final step.
    pub off_diagonal_ids: Vec<usize>,
}

/// Computes the per-class thresholds `t_j = mean { p_ij : y~_i = j }` (JAIR 2021, Eq. 2).
///
/// A class without samples gets 2, which no probability reaches. Every threshold is clipped
/// below at 2e-6. Range `[2e-6, 1]`, or 2.
///
/// # Shapes
/// `probs`: `N x K`, `labels`: `N`. Returns `K` thresholds.
///
/// # Errors
/// As described in the [module docs](self).
pub fn confident_thresholds<T: Real>(
    probs: &[T],
    labels: &[u32],
    num_classes: usize,
) -> Result<Vec<f64>> {
    check_input(probs, labels, num_classes)?;
    let label_counts = label_counts(labels, num_classes);
    Ok(thresholds_of(probs, labels, &label_counts, num_classes))
}

/// Computes the confident joint, uncalibrated and calibrated (JAIR 2021, Eq. 3 and Sect. 3.1).
///
/// For each sample `i`, the classes `j` with `p_ij >= t_j - 1e-6` are its confident classes.
/// A sample with no confident class is not counted. With one confident class, that class is
/// its estimated true label. With several, the estimate is the first argmax of the whole row,
/// as in cleanlab, so it can be a class below its own threshold. The sample then adds 1 to
/// `C[y~_i][estimate]`. Afterwards every diagonal entry below 1 is raised to 1.
///
/// Calibration scales row `i` to sum to the number of samples given label `i`, rescales the
/// whole matrix to sum to `N`, and rounds each row to integers that keep its rounded total.
///
/// # Shapes
/// `probs`: `N x K`, `labels`: `N`.
///
/// # Errors
/// As described in the [module docs](self).
pub fn compute_confident_joint<T: Real>(
    probs: &[T],
    labels: &[u32],
    num_classes: usize,
) -> Result<ConfidentJoint> {
    check_input(probs, labels, num_classes)?;
    Ok(confident_joint_unchecked(probs, labels, num_classes))
}

/// Calibrates a confident joint (`K x K` row-major, row = given label) to the given label
/// counts (`K`), as cleanlab 2.9.0's `calibrate_confident_joint`.
///
/// `Q[i][j] = C[i][j] / max(sum_j C[i][j], 1e-100) * n_i`, then `Q * N / sum(Q)` with
/// `N = sum_i n_i`, then each row rounded half to even and corrected so that it sums to its
/// rounded float total.
///
/// # Errors
/// [`Error::LengthMismatch`] if `joint` is not `K x K` for `K = label_counts.len()`.
pub fn calibrate_confident_joint(joint: &[u64], label_counts: &[u64]) -> Result<Vec<u64>> {
    let k = label_counts.len();
    check::matrix_len("joint", joint.len(), k, k)?;
    Ok(calibrate_unchecked(joint, label_counts))
}

/// [`calibrate_confident_joint`] on a `K x K` joint.
fn calibrate_unchecked(joint: &[u64], label_counts: &[u64]) -> Vec<u64> {
    let k = label_counts.len();

    // Scale each row to its given-label count.
    let mut scaled = vec![0.0; k * k];
    for i in 0..k {
        let row = &joint[i * k..(i + 1) * k];
        let row_sum = row.iter().sum::<u64>() as f64;
        for j in 0..k {
            scaled[i * k + j] = row[j] as f64 / row_sum.max(TINY_VALUE) * label_counts[i] as f64;
        }
    }

    // Rescale to sum to N. cleanlab's intermediate is a transposed view, so NumPy sums it in
    // column-major order; the same order keeps the total bit-identical.
    let column_major: Vec<f64> = (0..k * k).map(|c| scaled[(c % k) * k + c / k]).collect();
    let total = pairwise_sum(&column_major).max(TINY_VALUE);
    let n = label_counts.iter().sum::<u64>() as f64;
    for value in &mut scaled {
        *value = *value / total * n;
    }

    // Round each row, keeping its total.
    let mut calibrated = Vec::with_capacity(k * k);
    for row in scaled.chunks(k) {
        calibrated.extend(
            round_preserving_sum(row)
                .into_iter()
                .map(|v| v.max(0) as u64),
        );
    }
    calibrated
}

/// Noise estimates derived from a confident joint by [`estimate_latent`].
#[derive(Debug, Clone, PartialEq)]
pub struct LatentEstimates {
    /// Estimated prior of the true labels `p(y* = j)` (`K`), summing to 1.
    pub prior: Vec<f64>,
    /// Noise matrix `P(y~ = i | y* = j)`, `K x K` row-major; each column sums to 1.
    pub noise_matrix: Vec<f64>,
    /// Inverse noise matrix `P(y* = i | y~ = j)`, `K x K` row-major; each column sums to 1.
    pub inverse_noise_matrix: Vec<f64>,
    /// Joint `p(y~ = i, y* = j)`: the calibrated joint divided by its total, `K x K`.
    pub joint: Vec<f64>,
}

/// Estimates `p(y*)`, the noise matrix and the inverse noise matrix from the calibrated
/// confident joint, as cleanlab 2.9.0's `estimate_latent` with its defaults
/// (`py_method="cnt"`, `converge_latent_estimates=False`).
///
/// With `C` the calibrated joint and `p(y~ = i) = n_i / N`:
/// - noise matrix `P(y~ = i | y* = j) = C[i][j] / sum_i C[i][j]`;
/// - inverse `P(y* = i | y~ = j) = C[j][i] / sum_i C[j][i]`;
/// - `p(y* = j) = inverse[j][j] / noise[j][j] * p(y~ = j)`, clipped to `[1e-6, 1]` and
///   renormalised to sum to 1;
/// - off-diagonal noise rates are clipped to `[0, 0.9999]` and each column renormalised.
///
/// Denominators are clipped below at 1e-100, as cleanlab does.
pub fn estimate_latent(joint: &ConfidentJoint) -> LatentEstimates {
    let k = joint.num_classes;
    let c = &joint.calibrated;
    let n: u64 = joint.label_counts.iter().sum();
    let row_sums: Vec<f64> = (0..k)
        .map(|i| c[i * k..(i + 1) * k].iter().sum::<u64>() as f64)
        .collect();
    let column_sums: Vec<f64> = (0..k)
        .map(|j| (0..k).map(|i| c[i * k + j]).sum::<u64>() as f64)
        .collect();

    // Raw noise matrix and inverse.
    let mut noise = vec![0.0; k * k];
    let mut inverse = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..k {
            noise[i * k + j] = c[i * k + j] as f64 / column_sums[j].max(TINY_VALUE);
            inverse[i * k + j] = c[j * k + i] as f64 / row_sums[j].max(TINY_VALUE);
        }
    }

    // Prior by the "cnt" method, before the noise rates are clipped.
    let prior: Vec<f64> = (0..k)
        .map(|j| {
            let given_prior = joint.label_counts[j] as f64 / n as f64;
            inverse[j * k + j] / noise[j * k + j].max(TINY_VALUE) * given_prior
        })
        .collect();
    let prior = clip_and_renormalise(&prior);

    let total = c.iter().sum::<u64>() as f64;
    LatentEstimates {
        prior,
        noise_matrix: clip_noise_rates(noise, k),
        inverse_noise_matrix: clip_noise_rates(inverse, k),
        joint: c
            .iter()
            .map(|&v| v as f64 / total.max(TINY_VALUE))
            .collect(),
    }
}

/// Clips to `[1e-6, 1]` and rescales to sum to 1 (cleanlab's `clip_values` with `new_sum=1`).
fn clip_and_renormalise(values: &[f64]) -> Vec<f64> {
    let clipped: Vec<f64> = values
        .iter()
        .map(|v| v.clamp(PRIOR_LOWER_BOUND, 1.0))
        .collect();
    let sum = pairwise_sum(&clipped).max(TINY_VALUE);
    clipped.iter().map(|v| v * 1.0 / sum).collect()
}

/// Clips off-diagonal entries to `[0, 0.9999]`, keeps the diagonal, and rescales each column
/// to sum to 1 (cleanlab's `clip_noise_rates`).
fn clip_noise_rates(mut matrix: Vec<f64>, k: usize) -> Vec<f64> {
    for i in 0..k {
        for j in 0..k {
            if i != j {
                matrix[i * k + j] = matrix[i * k + j].clamp(0.0, MAX_NOISE_RATE);
            }
        }
    }
    // NumPy sums axis 0 of a row-major matrix row by row, i.e. sequentially.
    let column_sums: Vec<f64> = (0..k)
        .map(|j| (0..k).fold(0.0, |sum, i| sum + matrix[i * k + j]))
        .collect();
    for i in 0..k {
        for j in 0..k {
            matrix[i * k + j] /= column_sums[j].max(TINY_VALUE);
        }
    }
    matrix
}

/// Runs the full input check of this module.
pub(crate) fn check_input<T: Real>(probs: &[T], labels: &[u32], num_classes: usize) -> Result<()> {
    check::probs_and_labels("confident learning", probs, labels, num_classes, 2)?;
    let Some(&first) = labels.first() else {
        return Err(Error::NoSamples {
            method: "confident learning",
        });
    };
    if labels.par_iter().all(|&label| label == first) {
        return Err(Error::SingleGivenClass { class: first });
    }
    Ok(())
}

/// Count of each given label (`K`).
pub(crate) fn label_counts(labels: &[u32], num_classes: usize) -> Vec<u64> {
    let mut counts = vec![0_u64; num_classes];
    for &label in labels {
        counts[label as usize] += 1;
    }
    counts
}

/// Ids of each given label, ascending.
pub(crate) fn ids_by_class(labels: &[u32], num_classes: usize) -> Vec<Vec<usize>> {
    // Count first so that each list is allocated once.
    let mut ids: Vec<Vec<usize>> = label_counts(labels, num_classes)
        .iter()
        .map(|&count| Vec::with_capacity(count as usize))
        .collect();
    for (id, &label) in labels.iter().enumerate() {
        ids[label as usize].push(id);
    }
    ids
}

/// Thresholds from checked input, with NumPy's `np.mean` summation order.
///
/// One sequential pass over the rows gathers `p[id][y~_id]` into per-class lists in ascending
/// id order, which is the order NumPy sums `pred_probs[labels == j, j]` in. The pairwise sums
/// then run per class in parallel.
fn thresholds_of<T: Real>(
    probs: &[T],
    labels: &[u32],
    label_counts: &[u64],
    num_classes: usize,
) -> Vec<f64> {
    let mut values: Vec<Vec<T>> = label_counts
        .iter()
        .map(|&count| Vec::with_capacity(count as usize))
        .collect();
    for (row, &label) in probs.chunks_exact(num_classes).zip(labels) {
        let label = label as usize;
        values[label].push(row[label]);
    }
    values
        .par_iter()
        .map(|values| {
            // A class without samples: no probability can reach 2.
            if values.is_empty() {
                return MISSING_CLASS_THRESHOLD;
            }
            let mean = pairwise_sum(values) / values.len() as f64;
            mean.max(THRESHOLD_LOWER_BOUND)
        })
        .collect()
}

/// Rows per parallel block of the confident-joint count.
const JOINT_BLOCK_ROWS: usize = 1 << 14;

/// Marks a sample with no confident class.
const NOT_CONFIDENT: u32 = u32::MAX;

/// [`compute_confident_joint`] on checked input.
pub(crate) fn confident_joint_unchecked<T: Real>(
    probs: &[T],
    labels: &[u32],
    num_classes: usize,
) -> ConfidentJoint {
    let k = num_classes;
    let label_counts = label_counts(labels, k);
    let thresholds = thresholds_of(probs, labels, &label_counts, k);
    let cutoffs: Vec<f64> = thresholds.iter().map(|t| t - THRESHOLD_TOLERANCE).collect();

    // Estimated true label of one row, or NOT_CONFIDENT.
    let estimate_of = |row: &[T]| -> u32 {
        let mut confident_count = 0;
        let mut first_confident = 0;
        for (class, (p, cutoff)) in row.iter().zip(&cutoffs).enumerate() {
            if p.to_f64() >= *cutoff {
                if confident_count == 0 {
                    first_confident = class;
                }
                confident_count += 1;
            }
        }
        match confident_count {
            0 => NOT_CONFIDENT,
            1 => first_confident as u32,
            _ => argmax_first(row.iter().map(|p| p.to_f64())) as u32,
        }
    };

    // Count each block of rows into its own joint and off-diagonal ids, in parallel, then
    // merge the blocks in id order. Counts are integers, so the totals do not depend on the
    // order, and the id lists concatenate in ascending order.
    let blocks: Vec<(Vec<u64>, Vec<usize>)> = probs
        .par_chunks(k * JOINT_BLOCK_ROWS)
        .zip(labels.par_chunks(JOINT_BLOCK_ROWS))
        .enumerate()
        .map(|(block, (rows, block_labels))| {
            let first_id = block * JOINT_BLOCK_ROWS;
            let mut counts = vec![0_u64; k * k];
            let mut off_diagonal = Vec::new();
            for (offset, (row, &label)) in rows.chunks_exact(k).zip(block_labels).enumerate() {
                let estimate = estimate_of(row);
                if estimate == NOT_CONFIDENT {
                    continue;
                }
                counts[label as usize * k + estimate as usize] += 1;
                if estimate != label {
                    off_diagonal.push(first_id + offset);
                }
            }
            (counts, off_diagonal)
        })
        .collect();
    let mut uncalibrated = vec![0_u64; k * k];
    let mut off_diagonal_ids = Vec::with_capacity(blocks.iter().map(|(_, ids)| ids.len()).sum());
    for (counts, ids) in blocks {
        for (total, count) in uncalibrated.iter_mut().zip(counts) {
            *total += count;
        }
        off_diagonal_ids.extend(ids);
    }

    // Guarantee at least one correctly labelled sample per class, as cleanlab does.
    for class in 0..k {
        let diagonal = &mut uncalibrated[class * k + class];
        *diagonal = (*diagonal).max(1);
    }

    let calibrated = calibrate_unchecked(&uncalibrated, &label_counts);
    ConfidentJoint {
        num_classes: k,
        thresholds,
        label_counts,
        uncalibrated,
        calibrated,
        off_diagonal_ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Six samples, K = 3, two per given class:
    //   id 0: [0.80, 0.20, 0.00] label 0
    //   id 1: [0.60, 0.30, 0.10] label 0
    //   id 2: [0.20, 0.70, 0.10] label 1
    //   id 3: [0.75, 0.20, 0.05] label 1   (looks like class 0)
    //   id 4: [0.10, 0.10, 0.80] label 2
    //   id 5: [0.10, 0.20, 0.70] label 2
    pub(crate) const PROBS: [f64; 18] = [
        0.8, 0.2, 0.0, 0.6, 0.3, 0.1, 0.2, 0.7, 0.1, 0.75, 0.2, 0.05, 0.1, 0.1, 0.8, 0.1, 0.2, 0.7,
    ];
    pub(crate) const LABELS: [u32; 6] = [0, 0, 1, 1, 2, 2];

    #[test]
    fn thresholds_hand_computed() {
        // t0 = (0.8 + 0.6) / 2 = 0.7, t1 = (0.7 + 0.2) / 2 = 0.45, t2 = (0.8 + 0.7) / 2 = 0.75.
        let t = confident_thresholds(&PROBS, &LABELS, 3).unwrap();
        assert!((t[0] - 0.7).abs() < 1e-15);
        assert!((t[1] - 0.45).abs() < 1e-15);
        assert!((t[2] - 0.75).abs() < 1e-15);
    }

    #[test]
    fn confident_joint_hand_computed() {
        // Confident classes (p_j >= t_j - 1e-6): id 0 -> {0}; id 1 -> none (0.6 < 0.7);
        // id 2 -> {1}; id 3 -> {0} (0.75 >= 0.7, 0.2 < 0.45); id 4 -> {2}; id 5 -> none.
        // C = [[1, 0, 0], [1, 1, 0], [0, 0, 1]], off-diagonal id 3.
        // Calibrated: rows scaled to 2 each: [[2, 0, 0], [1, 1, 0], [0, 0, 2]], total 6 = N.
        let joint = compute_confident_joint(&PROBS, &LABELS, 3).unwrap();
        assert_eq!(joint.uncalibrated, vec![1, 0, 0, 1, 1, 0, 0, 0, 1]);
        assert_eq!(joint.calibrated, vec![2, 0, 0, 1, 1, 0, 0, 0, 2]);
        assert_eq!(joint.off_diagonal_ids, vec![3]);
        assert_eq!(joint.label_counts, vec![2, 2, 2]);
    }

    #[test]
    fn calibrate_hand_computed() {
        // C = [[3, 1], [1, 1]], counts [2, 6]: rows become [1.5, 0.5] and [3, 3] (total 8 = N),
        // rounded half to even: [2, 0] (1.5 -> 2, 0.5 -> 0, sum 2 = round(2.0)) and [3, 3].
        assert_eq!(
            calibrate_confident_joint(&[3, 1, 1, 1], &[2, 6]).unwrap(),
            vec![2, 0, 3, 3]
        );
        assert!(calibrate_confident_joint(&[1, 2, 3], &[2, 6]).is_err());
    }

    #[test]
    fn latent_hand_computed() {
        // Calibrated C = [[2, 0, 0], [1, 1, 0], [0, 0, 2]]; column sums [3, 1, 2], rows [2, 2, 2].
        // noise P(y~=i | y*=j) = C[i][j] / col_j: [[2/3, 0, 0], [1/3, 1, 0], [0, 0, 1]].
        // inverse P(y*=i | y~=j) = C[j][i] / row_j: [[1, 1/2, 0], [0, 1/2, 0], [0, 0, 1]].
        // prior: inverse[j][j] / noise[j][j] * 1/3 = [1/2, 1/6, 1/3] (already sums to 1).
        let joint = compute_confident_joint(&PROBS, &LABELS, 3).unwrap();
        let latent = estimate_latent(&joint);
        let expect = |actual: &[f64], expected: &[f64]| {
            for (a, e) in actual.iter().zip(expected) {
                assert!((a - e).abs() < 1e-12, "{actual:?} != {expected:?}");
            }
        };
        expect(
            &latent.noise_matrix,
            &[2. / 3., 0., 0., 1. / 3., 1., 0., 0., 0., 1.],
        );
        expect(
            &latent.inverse_noise_matrix,
            &[1., 0.5, 0., 0., 0.5, 0., 0., 0., 1.],
        );
        expect(&latent.prior, &[0.5, 1. / 6., 1. / 3.]);
        expect(
            &latent.joint,
            &[2. / 6., 0., 0., 1. / 6., 1. / 6., 0., 0., 0., 2. / 6.],
        );
    }

    #[test]
    fn empty_class_gets_threshold_two() {
        // K = 4 but no sample has label 3: threshold 2, diagonal raised to 1, calibrated row 0.
        let probs: Vec<f64> = PROBS
            .chunks(3)
            .flat_map(|row| [row[0], row[1], row[2], 0.0])
            .collect();
        let joint = compute_confident_joint(&probs, &LABELS, 4).unwrap();
        assert_eq!(joint.thresholds[3], 2.0);
        assert_eq!(joint.uncalibrated[3 * 4 + 3], 1);
        assert_eq!(&joint.calibrated[12..16], &[0, 0, 0, 0]);
        assert_eq!(joint.off_diagonal_ids, vec![3]);
    }

    #[test]
    fn rejects_single_given_class() {
        let err = compute_confident_joint(&[0.9, 0.1, 0.8, 0.2], &[1, 1], 2).unwrap_err();
        assert_eq!(err, Error::SingleGivenClass { class: 1 });
    }

    #[test]
    fn rejects_single_class_count() {
        let err = compute_confident_joint(&[1.0, 1.0], &[0, 0], 1).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooFewClasses {
                    num_classes: 1,
                    needed: 2,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn rejects_empty_input() {
        let err = compute_confident_joint::<f64>(&[], &[], 2).unwrap_err();
        assert!(matches!(err, Error::NoSamples { .. }), "{err}");
    }

    #[test]
    fn rejects_label_out_of_range() {
        let mut labels = LABELS;
        labels[4] = 3;
        let err = compute_confident_joint(&PROBS, &labels, 3).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LabelOutOfRange {
                    id: 4,
                    label: 3,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn rejects_count_mismatch() {
        // Six rows of probabilities but five labels.
        let err = compute_confident_joint(&PROBS, &LABELS[..5], 3).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LengthMismatch {
                    len: 18,
                    expected: 15,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn rejects_nan_and_negative() {
        let mut probs = PROBS;
        probs[7] = f64::NAN;
        let err = compute_confident_joint(&probs, &LABELS, 3).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidProbability {
                    id: 2,
                    class: 1,
                    ..
                }
            ),
            "{err}"
        );

        let mut probs = PROBS;
        probs[9] = -0.25;
        probs[10] = 1.0;
        let err = compute_confident_joint(&probs, &LABELS, 3).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidProbability {
                    id: 3,
                    class: 0,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn rejects_unnormalised_rows() {
        // Row 1 sums to 0.6 + 0.3 + 0.2 = 1.1.
        let mut probs = PROBS;
        probs[5] = 0.2;
        let err = compute_confident_joint(&probs, &LABELS, 3).unwrap_err();
        assert!(matches!(err, Error::RowSumNotOne { id: 1, .. }), "{err}");
    }

    #[test]
    fn rejects_multi_label_probabilities() {
        // Independent per-class sigmoids: sample 0 belongs to classes 0 and 1 at once.
        let sigmoids = [0.9, 0.8, 0.1, 0.2, 0.9, 0.1];
        let err = compute_confident_joint(&sigmoids, &[0, 1], 3).unwrap_err();
        assert!(err.to_string().contains("Multi-label"), "{err}");
    }
}
