//! Label-issue filters and rankings: cleanlab 2.9.0's `find_label_issues`,
//! `order_label_issues` and `num_label_issues`.

use std::cmp::Ordering;

use rayon::prelude::*;

use super::{check_input, confident_joint_unchecked, ids_by_class};
use crate::numpy::argmax_first;
use crate::scores::{confidence_weighted_entropy_unchecked, margin_of_row, per_row};
use crate::{Error, Real, Result};

/// How much the given label's probability is raised before the final argmax check: cleanlab
/// 2.9.0's `FLOATING_POINT_COMPARISON`. A flagged sample whose given label is within 1e-6 of
/// the top probability is unflagged again.
const NEAR_ARGMAX_TOLERANCE: f64 = 1e-6;

/// Rows per parallel block of the final near-argmax step of [`find_label_issues`].
const UNFLAG_BLOCK_ROWS: usize = 1 << 14;

/// Label-issue filter of [`find_label_issues`]. The names follow cleanlab's `filter_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Filter {
    /// `prune_by_noise_rate` (cleanlab's default): for each given class `i` and other class
    /// `j`, flag the `C'[i][j]` samples of class `i` with the largest margin `p_j - p_i`,
    /// where `C'` is the calibrated joint after the per-class minimum (see
    /// [`LabelIssueOptions::min_examples_per_class`]).
    #[default]
    PruneByNoiseRate,
    /// `prune_by_class`: for each given class `i`, flag the `n_i - C'[i][i]` samples with the
    /// lowest `p_i`.
    PruneByClass,
    /// `both`: flagged by both [`Filter::PruneByNoiseRate`] and [`Filter::PruneByClass`].
    Both,
    /// `confident_learning`: the samples counted off the diagonal of the uncalibrated confident
    /// joint.
    ConfidentLearning,
    /// `predicted_neq_given`: the first argmax differs from the given label.
    PredictedNeqGiven,
    /// `low_normalized_margin`: the [`num_label_issues`] samples with the lowest normalized
    /// margin. Skips the final near-argmax step.
    LowNormalizedMargin,
    /// `low_self_confidence`: the [`num_label_issues`] samples with the lowest
    /// self-confidence. Skips the final near-argmax step.
    LowSelfConfidence,
}

/// Label-quality score by which flagged ids are ranked. The names follow cleanlab's
/// `return_indices_ranked_by`; every score is lower for more suspicious samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ranking {
    /// `p_y`, see [`crate::scores::self_confidence`].
    #[default]
    SelfConfidence,
    /// cleanlab's `(p_y - max_{k != y} p_k + 1) / 2`, in `[0, 1]`; the same order as
    /// [`crate::scores::normalized_margin`].
    NormalizedMargin,
    /// See [`crate::scores::confidence_weighted_entropy`].
    ConfidenceWeightedEntropy,
}

impl Ranking {
    /// Computes this score for every sample, exactly as cleanlab 2.9.0's
    /// `get_label_quality_scores(labels, pred_probs, method=...)` with its defaults.
    ///
    /// # Shapes
    /// `probs`: `N x K`, `labels`: `N`. Returns `N` scores in `[0, 1]`.
    ///
    /// # Errors
    /// As described in the [module docs](super).
    pub fn scores<T: Real>(
        self,
        probs: &[T],
        labels: &[u32],
        num_classes: usize,
    ) -> Result<Vec<f64>> {
        check_input(probs, labels, num_classes)?;
        Ok(self.scores_unchecked(probs, labels, num_classes))
    }

    fn scores_unchecked<T: Real>(
        self,
        probs: &[T],
        labels: &[u32],
        num_classes: usize,
    ) -> Vec<f64> {
        match self {
            Ranking::SelfConfidence => {
                per_row(probs, labels, num_classes, |row, label| row[label].to_f64())
            }
            Ranking::NormalizedMargin => per_row(probs, labels, num_classes, |row, label| {
                (margin_of_row(row, label) + 1.0) / 2.0
            }),
            Ranking::ConfidenceWeightedEntropy => {
                confidence_weighted_entropy_unchecked(probs, labels, num_classes)
            }
        }
    }
}

/// Options of [`find_label_issues`]. The defaults are cleanlab 2.9.0's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelIssueOptions {
    /// The filter. Default [`Filter::PruneByNoiseRate`].
    pub filter: Filter,
    /// Classes with at most this many samples are never pruned, and the pruning filters leave
    /// at least this many samples on each diagonal entry. Default 1.
    pub min_examples_per_class: usize,
    /// Share of the estimated off-diagonal counts that the pruning filters remove, in
    /// `(0, 1]`; the remainder is moved to the diagonal. Ignored by the other filters.
    /// Default 1.0.
    pub frac_noise: f64,
}

impl Default for LabelIssueOptions {
    fn default() -> Self {
        Self {
            filter: Filter::default(),
            min_examples_per_class: 1,
            frac_noise: 1.0,
        }
    }
}

/// Flags likely label errors by confident learning, as cleanlab 2.9.0's
/// `find_label_issues(labels, pred_probs, filter_by=...)`, and returns a mask of `N`.
///
/// Steps:
/// 1. Compute the confident joint `C` (see [`super::compute_confident_joint`]), calibrated.
/// 2. For the pruning filters, derive per-class prune counts `C'` from `C^T`. Each diagonal
///    entry is raised to at least `min_examples_per_class`, and the raise is subtracted evenly
///    from the non-zero entries of its column (clipping at 0). Off-diagonal entries are then
///    scaled by `frac_noise`, the rest moves to the diagonal, and all are truncated to
///    integers.
/// 3. Apply the [`Filter`]. Classes with at most `min_examples_per_class` samples, or with a
///    single sample, are never pruned (cleanlab logs a warning for the former; so does this
///    function, through `tracing`).
/// 4. Except for the `Low*` filters: unflag every sample whose given label's probability plus
///    1e-6 makes it the first argmax.
///
/// # Shapes
/// `probs`: `N x K` out-of-sample probabilities, `labels`: `N`. Returns `N` flags.
///
/// # Errors
/// As described in the [module docs](super), plus [`Error::InvalidParameter`] if
/// `frac_noise` is not in `(0, 1]`.
pub fn find_label_issues<T: Real>(
    probs: &[T],
    labels: &[u32],
    num_classes: usize,
    options: &LabelIssueOptions,
) -> Result<Vec<bool>> {
    if !(options.frac_noise > 0.0 && options.frac_noise <= 1.0) {
        return Err(Error::InvalidParameter {
            name: "frac_noise",
            value: options.frac_noise.to_string(),
            allowed: "in (0, 1]",
        });
    }
    check_input(probs, labels, num_classes)?;
    let k = num_classes;
    let n = labels.len();
    let joint = confident_joint_unchecked(probs, labels, k);

    let mut mask = vec![false; n];
    match options.filter {
        Filter::LowNormalizedMargin | Filter::LowSelfConfidence => {
            // The lowest-scoring samples, as many as the off-diagonal estimate.
            let ranking = if options.filter == Filter::LowNormalizedMargin {
                Ranking::NormalizedMargin
            } else {
                Ranking::SelfConfidence
            };
            let scores = ranking.scores_unchecked(probs, labels, k);
            let count = count_off_diagonal_issues(probs, labels, k, &joint.off_diagonal_ids);
            let all_ids: Vec<usize> = (0..n).collect();
            for id in lowest(&all_ids, count, |id| scores[id]) {
                mask[id] = true;
            }
            // cleanlab skips the near-argmax step for these two filters.
            return Ok(mask);
        }
        Filter::PruneByNoiseRate | Filter::PruneByClass | Filter::Both => {
            let prune_counts = prune_count_matrix(&joint.calibrated, k, options);
            let ids_by_class = ids_by_class(labels, k);
            // Each class's rows, copied into a contiguous buffer (ascending id) by one sequential
            // pass, so that prune_class reads them in order. Gathering the rows of one class at
            // a time instead would read most cache lines of `probs` once per class.
            let mut rows_by_class: Vec<Vec<T>> = ids_by_class
                .iter()
                .map(|ids| Vec::with_capacity(ids.len() * k))
                .collect();
            for (row, &label) in probs.chunks_exact(k).zip(labels) {
                rows_by_class[label as usize].extend(row.iter().copied());
            }
            let flagged_by = |by_class: bool| -> Vec<bool> {
                let per_class: Vec<Vec<usize>> = ids_by_class
                    .par_iter()
                    .zip(&rows_by_class)
                    .enumerate()
                    .map(|(class, (ids, rows))| {
                        prune_class(rows, k, class, ids, &prune_counts, options, by_class)
                    })
                    .collect();
                let mut flags = vec![false; n];
                for id in per_class.into_iter().flatten() {
                    flags[id] = true;
                }
                flags
            };
            mask = match options.filter {
                Filter::PruneByClass => flagged_by(true),
                Filter::PruneByNoiseRate => flagged_by(false),
                _ => {
                    let by_class = flagged_by(true);
                    let by_noise_rate = flagged_by(false);
                    by_class
                        .iter()
                        .zip(&by_noise_rate)
                        .map(|(a, b)| *a && *b)
                        .collect()
                }
            };
        }
        Filter::ConfidentLearning => {
            for &id in &joint.off_diagonal_ids {
                mask[id] = true;
            }
        }
        Filter::PredictedNeqGiven => {
            mask = probs
                .par_chunks(k)
                .zip(labels.par_iter())
                .map(|(row, &label)| argmax_first(row.iter().map(|p| p.to_f64())) != label as usize)
                .collect();
        }
    }

    // Unflag samples whose given label is (within 1e-6 of) the prediction. Blocks of rows keep
    // rayon's per-item overhead off the mostly unflagged samples.
    mask.par_chunks_mut(UNFLAG_BLOCK_ROWS)
        .zip(probs.par_chunks(k * UNFLAG_BLOCK_ROWS))
        .zip(labels.par_chunks(UNFLAG_BLOCK_ROWS))
        .for_each(|((flags, rows), block_labels)| {
            for ((flag, row), &label) in
                flags.iter_mut().zip(rows.chunks_exact(k)).zip(block_labels)
            {
                if *flag && label_is_near_argmax(row, label as usize) {
                    *flag = false;
                }
            }
        });
    Ok(mask)
}

/// Runs [`find_label_issues`] and returns the flagged ids ranked by `ranking`, as cleanlab
/// 2.9.0's `find_label_issues(..., return_indices_ranked_by=...)`.
///
/// # Errors
/// As [`find_label_issues`].
pub fn find_label_issues_ranked<T: Real>(
    probs: &[T],
    labels: &[u32],
    num_classes: usize,
    options: &LabelIssueOptions,
    ranking: Ranking,
) -> Result<Vec<usize>> {
    let mask = find_label_issues(probs, labels, num_classes, options)?;
    // find_label_issues has checked the input already.
    Ok(order_unchecked(&mask, probs, labels, num_classes, ranking))
}

/// Returns the ids flagged in `mask`, ascending by the `ranking` score (most suspicious first),
/// ties by lower id. This is cleanlab 2.9.0's `order_label_issues` with a stable sort.
///
/// # Shapes
/// `mask`: `N`, `probs`: `N x K`, `labels`: `N`.
///
/// # Errors
/// As described in the [module docs](super), and [`Error::LengthMismatch`] if `mask` does not
/// have `N` entries.
pub fn order_label_issues<T: Real>(
    mask: &[bool],
    probs: &[T],
    labels: &[u32],
    num_classes: usize,
    ranking: Ranking,
) -> Result<Vec<usize>> {
    crate::check::same_len("mask", mask.len(), "labels", labels.len())?;
    check_input(probs, labels, num_classes)?;
    Ok(order_unchecked(mask, probs, labels, num_classes, ranking))
}

/// [`order_label_issues`] on checked input.
fn order_unchecked<T: Real>(
    mask: &[bool],
    probs: &[T],
    labels: &[u32],
    num_classes: usize,
    ranking: Ranking,
) -> Vec<usize> {
    let k = num_classes;
    let flagged: Vec<usize> = (0..mask.len()).filter(|&id| mask[id]).collect();
    let scores: Vec<f64> = match ranking {
        Ranking::SelfConfidence => flagged
            .par_iter()
            .map(|&id| probs[id * k + labels[id] as usize].to_f64())
            .collect(),
        Ranking::NormalizedMargin => flagged
            .par_iter()
            .map(|&id| {
                (margin_of_row(&probs[id * k..(id + 1) * k], labels[id] as usize) + 1.0) / 2.0
            })
            .collect(),
        Ranking::ConfidenceWeightedEntropy => {
            // This score depends on the flagged rows only, so they are copied and scored as a
            // dataset of their own.
            let flagged_probs: Vec<T> = flagged
                .iter()
                .flat_map(|&id| probs[id * k..(id + 1) * k].iter().copied())
                .collect();
            let flagged_labels: Vec<u32> = flagged.iter().map(|&id| labels[id]).collect();
            ranking.scores_unchecked(&flagged_probs, &flagged_labels, k)
        }
    };

    // Sorting (key, id) pairs orders by score, ties by lower id, like a stable sort by score.
    let mut keyed: Vec<(u64, usize)> = scores
        .iter()
        .zip(&flagged)
        .map(|(&score, &id)| (sort_key(score), id))
        .collect();
    keyed.par_sort_unstable();
    keyed.into_iter().map(|(_, id)| id).collect()
}

/// Estimates the number of label issues as cleanlab 2.9.0's `num_label_issues` with its
/// default `estimation_method="off_diagonal"`: the samples off the diagonal of the
/// uncalibrated confident joint, less those whose given label is within 1e-6 of the top
/// probability.
///
/// # Errors
/// As described in the [module docs](super).
pub fn num_label_issues<T: Real>(probs: &[T], labels: &[u32], num_classes: usize) -> Result<usize> {
    check_input(probs, labels, num_classes)?;
    let joint = confident_joint_unchecked(probs, labels, num_classes);
    Ok(count_off_diagonal_issues(
        probs,
        labels,
        num_classes,
        &joint.off_diagonal_ids,
    ))
}

fn count_off_diagonal_issues<T: Real>(
    probs: &[T],
    labels: &[u32],
    num_classes: usize,
    off_diagonal_ids: &[usize],
) -> usize {
    off_diagonal_ids
        .iter()
        .filter(|&&id| {
            let row = &probs[id * num_classes..(id + 1) * num_classes];
            !label_is_near_argmax(row, labels[id] as usize)
        })
        .count()
}

/// Returns whether the label becomes the first argmax once its probability is raised by
/// 1e-6.
fn label_is_near_argmax<T: Real>(row: &[T], label: usize) -> bool {
    let raised = row.iter().enumerate().map(|(class, p)| {
        let p = p.to_f64();
        if class == label {
            p + NEAR_ARGMAX_TOLERANCE
        } else {
            p
        }
    });
    argmax_first(raised) == label
}

/// Per-class prune counts from the calibrated joint: cleanlab 2.9.0's
/// `_keep_at_least_n_per_class` followed by `_reduce_prune_counts`, applied to `C^T`.
///
/// Returns `P`, `K x K` row-major, where `P[j][i]` is the number of samples with given label
/// `i` to prune towards class `j` (`j != i`), and `P[i][i]` the number of class-`i` samples
/// to keep.
fn prune_count_matrix(calibrated: &[u64], k: usize, options: &LabelIssueOptions) -> Vec<i64> {
    let minimum = options.min_examples_per_class as f64;
    let transposed: Vec<f64> = (0..k * k)
        .map(|cell| calibrated[(cell % k) * k + cell / k] as f64)
        .collect();

    // Raise each diagonal entry to the minimum and take the raise from the column's non-zero
    // noise entries. At least one entry shares it, to avoid dividing by zero.
    let mut matrix = transposed.clone();
    for j in 0..k {
        let diagonal = transposed[j * k + j];
        let raised = diagonal.max(minimum);
        let raise = raised - diagonal;
        let non_zero = (0..k).filter(|&i| transposed[i * k + j] != 0.0).count() as f64;
        let sharers = (non_zero - 1.0).max(1.0);
        for i in 0..k {
            let value = transposed[i * k + j] - raise / sharers;
            matrix[i * k + j] = if value < 0.0 { 0.0 } else { value };
        }
        matrix[j * k + j] = raised;
    }

    // Keep frac_noise of each noise entry and move the rest of the column to the diagonal.
    let mut reduced = matrix.clone();
    for j in 0..k {
        let mut moved = 0.0;
        for i in 0..k {
            if i != j {
                reduced[i * k + j] = matrix[i * k + j] * options.frac_noise;
                moved += matrix[i * k + j] - reduced[i * k + j];
            }
        }
        reduced[j * k + j] = matrix[j * k + j] + moved;
    }

    // cleanlab truncates (astype(int)); its later row rounding is a no-op on integers.
    reduced.iter().map(|&v| v as i64).collect()
}

/// Flags of one given class under `prune_by_class` (`by_class`) or `prune_by_noise_rate`.
/// `rows` contains the probabilities of the class's samples `ids`, `ids.len() x K` row-major.
fn prune_class<T: Real>(
    rows: &[T],
    k: usize,
    class: usize,
    ids: &[usize],
    prune_counts: &[i64],
    options: &LabelIssueOptions,
    by_class: bool,
) -> Vec<usize> {
    let count = ids.len();
    if count <= options.min_examples_per_class {
        tracing::warn!(
            class,
            samples = count,
            min_examples_per_class = options.min_examples_per_class,
            "class has too few samples to prune; its label issues may be missed"
        );
        return Vec::new();
    }
    // cleanlab writes a class's flags back only when it has more than one sample.
    if count <= 1 {
        return Vec::new();
    }
    let mut keys = vec![0_u64; count];

    if by_class {
        // The count - P[i][i] samples with the lowest p_i.
        let to_prune = count as i64 - prune_counts[class * k + class];
        if to_prune < 1 {
            return Vec::new();
        }
        for (key, row) in keys.iter_mut().zip(rows.chunks_exact(k)) {
            *key = sort_key(row[class].to_f64());
        }
        return lowest_keyed(ids, to_prune as usize, &keys, &mut Vec::new());
    }

    // For each other class j, the P[j][i] samples with the largest p_j - p_i.
    let mut flagged = Vec::new();
    let mut scratch = Vec::with_capacity(count);
    for other in (0..k).filter(|&j| j != class) {
        let to_prune = prune_counts[other * k + class];
        if to_prune > 0 {
            for (key, row) in keys.iter_mut().zip(rows.chunks_exact(k)) {
                *key = sort_key(-(row[other].to_f64() - row[class].to_f64()));
            }
            flagged.extend(lowest_keyed(ids, to_prune as usize, &keys, &mut scratch));
        }
    }
    flagged
}

/// Returns the `count` ids with the lowest `key`, ties by lower id, in no particular order
/// (a partial selection, not a sort). All ids if `count >= ids.len()`. Keys must not be NaN.
fn lowest(ids: &[usize], count: usize, key: impl Fn(usize) -> f64) -> Vec<usize> {
    if count >= ids.len() {
        return ids.to_vec();
    }
    let keys: Vec<u64> = ids.iter().map(|&id| sort_key(key(id))).collect();
    lowest_keyed(ids, count, &keys, &mut Vec::new())
}

/// [`lowest`] with precomputed [`sort_key`]s: `keys[i]` belongs to `ids[i]`. `scratch` is
/// working memory, reused across calls.
fn lowest_keyed(ids: &[usize], count: usize, keys: &[u64], scratch: &mut Vec<u64>) -> Vec<usize> {
    if count >= ids.len() {
        return ids.to_vec();
    }
    if count == 0 {
        return Vec::new();
    }
    // The count-th lowest key is the cutoff: every id below it is picked, and the ids at it
    // fill the remaining places in ascending id order.
    scratch.clear();
    scratch.extend_from_slice(keys);
    let cutoff = *scratch.select_nth_unstable(count - 1).1;
    let mut picked = Vec::with_capacity(count);
    let mut tied = Vec::new();
    for (&id, &key) in ids.iter().zip(keys) {
        match key.cmp(&cutoff) {
            Ordering::Less => picked.push(id),
            Ordering::Equal => tied.push(id),
            Ordering::Greater => {}
        }
    }
    tied.sort_unstable();
    let missing = count - picked.len();
    picked.extend_from_slice(&tied[..missing]);
    picked
}

/// Maps a NaN-free float onto `u64` so that integer order is float order, with `-0.0` equal to
/// `0.0` as in `numpy::cmp_f64`.
fn sort_key(value: f64) -> u64 {
    let value = if value == 0.0 { 0.0 } else { value };
    let bits = value.to_bits();
    // Negative floats: flip all bits, so a larger magnitude sorts lower. Positive floats: set
    // the sign bit, so they sort above every negative one.
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The six-sample case of the joint's tests: only id 3 (given 1, p = [0.75, 0.2, 0.05])
    // is counted off the diagonal.
    const PROBS: [f64; 18] = [
        0.8, 0.2, 0.0, 0.6, 0.3, 0.1, 0.2, 0.7, 0.1, 0.75, 0.2, 0.05, 0.1, 0.1, 0.8, 0.1, 0.2, 0.7,
    ];
    const LABELS: [u32; 6] = [0, 0, 1, 1, 2, 2];

    fn flagged(filter: Filter) -> Vec<usize> {
        let options = LabelIssueOptions {
            filter,
            ..LabelIssueOptions::default()
        };
        let mask = find_label_issues(&PROBS, &LABELS, 3, &options).unwrap();
        (0..mask.len()).filter(|&id| mask[id]).collect()
    }

    #[test]
    fn every_filter_flags_id_three() {
        // prune_by_noise_rate: P = C_cal^T = [[2, 1, 0], [0, 1, 0], [0, 0, 2]]; for given
        //   class 1, P[0][1] = 1 sample with the largest p0 - p1: id 3 (0.55 against -0.5).
        // prune_by_class: class 1 prunes 2 - P[1][1] = 1 sample with the lowest p1: id 3.
        // confident_learning: off-diagonal id 3. predicted_neq_given: argmax 0 != 1 for id 3.
        // Low*: one off-diagonal issue, and id 3 has the lowest self-confidence (0.2) and
        //   margin (0.2 - 0.75).
        for filter in [
            Filter::PruneByNoiseRate,
            Filter::PruneByClass,
            Filter::Both,
            Filter::ConfidentLearning,
            Filter::PredictedNeqGiven,
            Filter::LowNormalizedMargin,
            Filter::LowSelfConfidence,
        ] {
            assert_eq!(flagged(filter), vec![3], "{filter:?}");
        }
    }

    #[test]
    fn num_label_issues_counts_off_diagonal() {
        assert_eq!(num_label_issues(&PROBS, &LABELS, 3), Ok(1));
    }

    #[test]
    fn binary_tie_at_half_not_flagged() {
        // id 4 is [0.5, 0.5] with given label 1: the first argmax is 0, but p1 + 1e-6 wins,
        // so no filter keeps it. id 1 ([0.9, 0.1], given 1) is a clear error.
        let probs = [0.9, 0.1, 0.9, 0.1, 0.2, 0.8, 0.1, 0.9, 0.5, 0.5, 0.8, 0.2];
        let labels = [0, 1, 1, 1, 1, 0];
        for filter in [
            Filter::PruneByNoiseRate,
            Filter::PruneByClass,
            Filter::Both,
            Filter::ConfidentLearning,
            Filter::PredictedNeqGiven,
        ] {
            let options = LabelIssueOptions {
                filter,
                ..LabelIssueOptions::default()
            };
            let mask = find_label_issues(&probs, &labels, 2, &options).unwrap();
            assert!(!mask[4], "{filter:?} flagged the tie");
            assert!(mask[1], "{filter:?} missed id 1");
        }
    }

    #[test]
    fn ranked_by_each_score() {
        // Flag everything predicted_neq_given finds in a 4-sample case and rank it.
        //   id 0: [0.1, 0.9] given 0: self-confidence 0.1, margin (0.1 - 0.9 + 1) / 2 = 0.1
        //   id 1: [0.3, 0.7] given 0: self-confidence 0.3, margin 0.3
        //   id 2: [0.8, 0.2] given 1: self-confidence 0.2, margin 0.2
        //   id 3: [0.9, 0.1] given 0: not flagged.
        let probs = [0.1, 0.9, 0.3, 0.7, 0.8, 0.2, 0.9, 0.1];
        let labels = [0, 0, 1, 0];
        let mask = [true, true, true, false];
        for ranking in [Ranking::SelfConfidence, Ranking::NormalizedMargin] {
            let order = order_label_issues(&mask, &probs, &labels, 2, ranking).unwrap();
            assert_eq!(order, vec![0, 2, 1], "{ranking:?}");
        }
    }

    #[test]
    fn ranking_ties_break_by_id() {
        // ids 0 and 2 both have self-confidence 0.3.
        let probs = [0.3, 0.7, 0.9, 0.1, 0.3, 0.7];
        let labels = [0, 0, 0];
        let mask = [true, true, true];
        let order = order_label_issues(&mask, &probs, &labels, 2, Ranking::SelfConfidence);
        // Single given class is rejected before ranking.
        assert!(order.is_err());
        let labels = [0, 1, 0];
        let order = order_label_issues(&mask, &probs, &labels, 2, Ranking::SelfConfidence).unwrap();
        // Self-confidence: [0.3, 0.1, 0.3] -> id 1, then ids 0 and 2 in id order.
        assert_eq!(order, vec![1, 0, 2]);
    }

    #[test]
    fn rejects_bad_frac_noise() {
        let options = LabelIssueOptions {
            frac_noise: 0.0,
            ..LabelIssueOptions::default()
        };
        let err = find_label_issues(&PROBS, &LABELS, 3, &options).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidParameter {
                    name: "frac_noise",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn prune_counts_keep_minimum_per_class() {
        // C_cal = [[1, 2], [0, 3]] -> C^T = [[1, 0], [2, 3]]. With a minimum of 2, column 0's
        // diagonal rises 1 -> 2, taken from its one non-zero noise entry: 2 - 1 = 1.
        // Result P = [[2, 0], [1, 3]].
        let options = LabelIssueOptions {
            min_examples_per_class: 2,
            ..LabelIssueOptions::default()
        };
        assert_eq!(
            prune_count_matrix(&[1, 2, 0, 3], 2, &options),
            vec![2, 0, 1, 3]
        );
    }

    #[test]
    fn prune_counts_scale_by_frac_noise() {
        // C^T = [[1, 0], [2, 3]] with frac_noise 0.5: noise 2 -> 1, the other 1 moves to the
        // diagonal of column 0: P = [[2, 0], [1, 3]].
        let options = LabelIssueOptions {
            frac_noise: 0.5,
            ..LabelIssueOptions::default()
        };
        assert_eq!(
            prune_count_matrix(&[1, 2, 0, 3], 2, &options),
            vec![2, 0, 1, 3]
        );
    }

    #[test]
    fn lowest_breaks_ties_by_id() {
        // Keys [1, 0, 1, 1] for ids 10..13: the lowest two are id 11 (0) and id 10 (1, lower id).
        let keys = [1.0, 0.0, 1.0, 1.0];
        let mut picked = lowest(&[10, 11, 12, 13], 2, |id| keys[id - 10]);
        picked.sort_unstable();
        assert_eq!(picked, vec![10, 11]);
    }

    #[test]
    fn lowest_fills_ties_at_the_cutoff_by_id() {
        // Keys [2, 1, 1, 0, 1] for ids 0..5; the lowest three: id 3 (0), then two of the
        // three ids at key 1 (1, 2, 4), lowest ids first: 1 and 2.
        let keys = [2.0, 1.0, 1.0, 0.0, 1.0];
        let mut picked = lowest(&[0, 1, 2, 3, 4], 3, |id| keys[id]);
        picked.sort_unstable();
        assert_eq!(picked, vec![1, 2, 3]);
        // Unsorted ids: ids [4, 2, 1] all at key 1, one place left: id 1.
        assert_eq!(lowest(&[4, 2, 1], 1, |_| 1.0), vec![1]);
    }

    #[test]
    fn sort_key_follows_float_order() {
        // Ascending floats must give ascending keys, and -0.0 must equal 0.0.
        let ascending = [
            f64::NEG_INFINITY,
            -2.5,
            -1e-300,
            0.0,
            1e-300,
            0.5,
            1.0,
            f64::INFINITY,
        ];
        for pair in ascending.windows(2) {
            assert!(sort_key(pair[0]) < sort_key(pair[1]), "{pair:?}");
        }
        assert_eq!(sort_key(-0.0), sort_key(0.0));
    }

    #[test]
    #[ignore = "timing check on 1 million x 10 probabilities; run with --ignored --release"]
    fn million_rows_under_five_seconds() {
        // Pseudo-random rows: a peaked class plus uniform noise, 20 % of labels shifted.
        let (n, k) = (1_000_000, 10);
        let mut state = 7_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut probs = Vec::with_capacity(n * k);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let peak = i % k;
            let row: Vec<f64> = (0..k)
                .map(|c| next() + if c == peak { 5.0 } else { 0.0 })
                .collect();
            let sum: f64 = row.iter().sum();
            probs.extend(row.iter().map(|v| v / sum));
            let shifted = next() < 0.2;
            labels.push(((peak + usize::from(shifted)) % k) as u32);
        }
        let start = std::time::Instant::now();
        let ranked = find_label_issues_ranked(
            &probs,
            &labels,
            k,
            &LabelIssueOptions::default(),
            Ranking::SelfConfidence,
        )
        .unwrap();
        let elapsed = start.elapsed();
        eprintln!(
            "prune_by_noise_rate on 1 million x 10: {elapsed:?}, {} flagged",
            ranked.len()
        );
        assert!(!ranked.is_empty());
        assert!(elapsed.as_secs_f64() < 5.0, "took {elapsed:?}");
    }
}
