//! Input checks shared by the scorers. Each returns the first problem in id order.

use rayon::prelude::*;

use crate::{Error, Real, Result};

/// How far below 0 or above 1 a probability may lie: cleanlab 2.9.0's
/// `FLOATING_POINT_COMPARISON` (`cleanlab/internal/constants.py`), which its input check uses.
pub(crate) const PROBABILITY_RANGE_TOLERANCE: f64 = 1e-6;

/// Allowed absolute deviation of a probability row's sum from 1. An `f32` softmax over
/// thousands of classes sums to 1 within about 1e-5, while logits and per-class sigmoid
/// (multi-label) outputs miss by far more. cleanlab does not check row sums at all.
pub(crate) const ROW_SUM_TOLERANCE: f64 = 1e-3;

/// Rows per parallel block of [`probabilities`].
const CHECK_BLOCK_ROWS: usize = 4096;

/// Checks that there are at least `needed` classes.
pub(crate) fn classes(method: &'static str, num_classes: usize, needed: usize) -> Result<()> {
    if num_classes < needed {
        return Err(Error::TooFewClasses {
            method,
            num_classes,
            needed,
        });
    }
    Ok(())
}

/// Checks that a matrix argument contains `n * k` values, where `n` is `labels.len()`.
pub(crate) fn matrix_len(name: &'static str, len: usize, n: usize, k: usize) -> Result<()> {
    let expected = n.saturating_mul(k);
    if len != expected {
        return Err(Error::LengthMismatch {
            name,
            len,
            expected,
            shape: format!("N x K = {n} x {k}, with N = labels.len()"),
        });
    }
    Ok(())
}

/// Checks that two per-sample arrays have the same length.
pub(crate) fn same_len(
    name: &'static str,
    len: usize,
    other: &'static str,
    n: usize,
) -> Result<()> {
    if len != n {
        return Err(Error::LengthMismatch {
            name,
            len,
            expected: n,
            shape: format!("one value per sample, N = {other}.len() = {n}"),
        });
    }
    Ok(())
}

/// Checks that every label is below `num_classes`.
pub(crate) fn labels(kind: &'static str, labels: &[u32], num_classes: usize) -> Result<()> {
    let bad = labels
        .par_iter()
        .position_first(|&label| label as usize >= num_classes);
    match bad {
        Some(id) => Err(Error::LabelOutOfRange {
            kind,
            id,
            label: labels[id],
            num_classes,
        }),
        None => Ok(()),
    }
}

/// Checks that every row of `probs` (`N x K`, `K >= 1`) is a probability distribution: finite
/// values in [0, 1] within [`PROBABILITY_RANGE_TOLERANCE`], summing to 1 within
/// [`ROW_SUM_TOLERANCE`].
pub(crate) fn probabilities<T: Real>(probs: &[T], num_classes: usize) -> Result<()> {
    // No early exit inside a row, so that the compiler can vectorise the loop.
    let row_is_valid = |row: &[T]| {
        let mut sum = 0.0;
        let mut all_in_range = true;
        for &value in row {
            let value = value.to_f64();
            all_in_range &= value_in_range(value);
            sum += value;
        }
        all_in_range && (sum - 1.0).abs() <= ROW_SUM_TOLERANCE
    };
    // Find the first block with an invalid row in parallel, then the row within it.
    let block_len = num_classes * CHECK_BLOCK_ROWS;
    let Some(block) = probs
        .par_chunks(block_len)
        .position_first(|rows| !rows.chunks(num_classes).all(row_is_valid))
    else {
        return Ok(());
    };
    let first_row = block * CHECK_BLOCK_ROWS;
    let id = first_row
        + probs[first_row * num_classes..]
            .chunks(num_classes)
            .position(|row| !row_is_valid(row))
            .unwrap_or(0);

    // Build the error for the first invalid row.
    let row = &probs[id * num_classes..(id + 1) * num_classes];
    if let Some(class) = row.iter().position(|v| !value_in_range(v.to_f64())) {
        return Err(Error::InvalidProbability {
            id,
            class,
            value: row[class].to_f64(),
            tolerance: PROBABILITY_RANGE_TOLERANCE,
        });
    }
    Err(Error::RowSumNotOne {
        id,
        sum: row.iter().map(|v| v.to_f64()).sum(),
        tolerance: ROW_SUM_TOLERANCE,
    })
}

#[inline]
fn value_in_range(value: f64) -> bool {
    // NaN lies in no range, so it is rejected too.
    (-PROBABILITY_RANGE_TOLERANCE..=1.0 + PROBABILITY_RANGE_TOLERANCE).contains(&value)
}

/// Runs the checks every probability-based scorer needs: `K >= needed`, `probs` is `N x K`
/// with `N = labels.len()`, labels below `K`, rows are distributions.
pub(crate) fn probs_and_labels<T: Real>(
    method: &'static str,
    probs: &[T],
    labels: &[u32],
    num_classes: usize,
    needed_classes: usize,
) -> Result<()> {
    classes(method, num_classes, needed_classes)?;
    matrix_len("probs", probs.len(), labels.len(), num_classes)?;
    self::labels("given label", labels, num_classes)?;
    probabilities(probs, num_classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_accepts_valid_rows() {
        assert_eq!(probabilities(&[0.2_f32, 0.8, 1.0, 0.0], 2), Ok(()));
    }

    #[test]
    fn probabilities_names_first_bad_value() {
        // Row 1 has a NaN in class 0; row 2 is negative. The first problem is reported.
        let probs = [0.5, 0.5, f64::NAN, 1.0, -0.5, 1.5];
        match probabilities(&probs, 2) {
            Err(Error::InvalidProbability {
                id, class, value, ..
            }) => {
                assert_eq!((id, class), (1, 0));
                assert!(value.is_nan());
            }
            other => panic!("expected InvalidProbability, got {other:?}"),
        }
    }

    #[test]
    fn probabilities_tolerates_tiny_negative() {
        // -1e-7 lies within cleanlab's 1e-6 tolerance; the row sums to 1 - 1e-7.
        assert_eq!(probabilities(&[-1e-7, 1.0], 2), Ok(()));
    }

    #[test]
    fn probabilities_rejects_row_sum() {
        // 0.6 + 0.6 = 1.2, off by 0.2 > 1e-3.
        match probabilities(&[0.5, 0.5, 0.6, 0.6], 2) {
            Err(Error::RowSumNotOne { id, sum, .. }) => {
                assert_eq!(id, 1);
                assert!((sum - 1.2).abs() < 1e-12);
            }
            other => panic!("expected RowSumNotOne, got {other:?}"),
        }
    }

    #[test]
    fn labels_reports_first_out_of_range() {
        let err = labels("given label", &[0, 3, 5], 3).unwrap_err();
        assert_eq!(
            err,
            Error::LabelOutOfRange {
                kind: "given label",
                id: 1,
                label: 3,
                num_classes: 3
            }
        );
    }

    #[test]
    fn matrix_len_names_shape() {
        let err = matrix_len("probs", 5, 2, 3).unwrap_err();
        assert!(err.to_string().contains("N x K = 2 x 3"), "{err}");
    }
}
