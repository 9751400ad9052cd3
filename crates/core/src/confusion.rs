//! Confusion matrix of given against predicted labels, the most-confused pairs and accuracy.

use crate::{Result, check};

/// A `K x K` confusion matrix: rows are the given (actual) labels, columns the predicted ones.
///
/// It is sized by the class count, not by the classes observed, so a class that never occurs
/// still has its row and column of zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionMatrix {
    num_classes: usize,
    /// Row-major `K x K` counts.
    counts: Vec<u64>,
}

impl ConfusionMatrix {
    /// Counts `(given[i], predicted[i])` pairs into a `K x K` matrix.
    ///
    /// # Shapes
    /// `given` and `predicted`: `N` each.
    ///
    /// # Errors
    /// [`crate::Error::TooFewClasses`] if `num_classes` is 0, [`crate::Error::LengthMismatch`]
    /// if the lengths differ, [`crate::Error::LabelOutOfRange`] if a label is not below `K`.
    pub fn new(given: &[u32], predicted: &[u32], num_classes: usize) -> Result<Self> {
        check::classes("confusion matrix", num_classes, 1)?;
        check::same_len("predicted", predicted.len(), "given", given.len())?;
        check::labels("given label", given, num_classes)?;
        check::labels("predicted label", predicted, num_classes)?;

        let mut counts = vec![0; num_classes * num_classes];
        for (&actual, &guess) in given.iter().zip(predicted) {
            counts[actual as usize * num_classes + guess as usize] += 1;
        }
        Ok(Self {
            num_classes,
            counts,
        })
    }

    /// Returns the class count `K`.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Returns the number of samples with given label `actual` and prediction `predicted`.
    ///
    /// # Panics
    /// If either class is not below `K`.
    pub fn count(&self, actual: usize, predicted: usize) -> u64 {
        assert!(
            actual < self.num_classes,
            "actual class {actual} is not below K"
        );
        assert!(
            predicted < self.num_classes,
            "predicted class {predicted} is not below K"
        );
        self.counts[actual * self.num_classes + predicted]
    }

    /// Returns the row-major `K x K` counts (row = given label, column = predicted label).
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Returns the total number of samples counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Returns the share of samples on the diagonal, in `[0, 1]`, or `None` for an empty
    /// matrix.
    pub fn accuracy(&self) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let correct: u64 = (0..self.num_classes).map(|c| self.count(c, c)).sum();
        Some(correct as f64 / total as f64)
    }

    /// Returns the off-diagonal cells with at least `min_count` samples as
    /// `(actual, predicted, count)`, by descending count, ties by `(actual, predicted)`.
    ///
    /// A `min_count` of 0 behaves like 1: empty cells are never listed.
    pub fn most_confused(&self, min_count: u64) -> Vec<(usize, usize, u64)> {
        let k = self.num_classes;
        let mut pairs: Vec<(usize, usize, u64)> = (0..k * k)
            .map(|cell| (cell / k, cell % k, self.counts[cell]))
            .filter(|&(actual, predicted, count)| {
                actual != predicted && count > 0 && count >= min_count
            })
            .collect();
        pairs.sort_by(|a, b| b.2.cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
        pairs
    }
}

/// Returns the share of samples whose prediction equals the given label, in `[0, 1]`.
///
/// # Errors
/// [`crate::Error::LengthMismatch`] if the lengths differ, [`crate::Error::NoSamples`] if they
/// are empty.
pub fn accuracy(given: &[u32], predicted: &[u32]) -> Result<f64> {
    check::same_len("predicted", predicted.len(), "given", given.len())?;
    if given.is_empty() {
        return Err(crate::Error::NoSamples { method: "accuracy" });
    }
    let correct = given.iter().zip(predicted).filter(|(a, b)| a == b).count();
    Ok(correct as f64 / given.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    // given:     0 0 1 1 1 2 2 0
    // predicted: 0 1 1 0 0 2 1 1
    // Matrix (row = given): [[1, 2, 0], [2, 1, 0], [0, 1, 1]]; 3 of 8 on the diagonal.
    const GIVEN: [u32; 8] = [0, 0, 1, 1, 1, 2, 2, 0];
    const PREDICTED: [u32; 8] = [0, 1, 1, 0, 0, 2, 1, 1];

    #[test]
    fn counts_hand_computed() {
        let m = ConfusionMatrix::new(&GIVEN, &PREDICTED, 3).unwrap();
        assert_eq!(m.counts(), &[1, 2, 0, 2, 1, 0, 0, 1, 1]);
        assert_eq!(m.total(), 8);
    }

    #[test]
    fn sized_by_class_count() {
        // Class 3 never occurs but still gets a row and column.
        let m = ConfusionMatrix::new(&GIVEN, &PREDICTED, 4).unwrap();
        assert_eq!(m.num_classes(), 4);
        assert_eq!(m.counts().len(), 16);
        assert_eq!(m.count(3, 3), 0);
    }

    #[test]
    fn most_confused_sorted_with_ties() {
        // (0, 1) and (1, 0) both have 2: ties break by (actual, predicted). (2, 1) has 1.
        let m = ConfusionMatrix::new(&GIVEN, &PREDICTED, 3).unwrap();
        assert_eq!(m.most_confused(1), vec![(0, 1, 2), (1, 0, 2), (2, 1, 1)]);
        assert_eq!(m.most_confused(2), vec![(0, 1, 2), (1, 0, 2)]);
        assert_eq!(m.most_confused(0), m.most_confused(1));
    }

    #[test]
    fn accuracy_hand_computed() {
        let m = ConfusionMatrix::new(&GIVEN, &PREDICTED, 3).unwrap();
        assert_eq!(m.accuracy(), Some(3.0 / 8.0));
        assert_eq!(accuracy(&GIVEN, &PREDICTED), Ok(3.0 / 8.0));
    }

    #[test]
    fn empty_has_no_accuracy() {
        let m = ConfusionMatrix::new(&[], &[], 2).unwrap();
        assert_eq!(m.accuracy(), None);
        assert_eq!(
            accuracy(&[], &[]),
            Err(Error::NoSamples { method: "accuracy" })
        );
    }

    #[test]
    fn rejects_out_of_range_prediction() {
        let err = ConfusionMatrix::new(&[0, 1], &[0, 3], 3).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LabelOutOfRange {
                    kind: "predicted label",
                    id: 1,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn rejects_length_mismatch() {
        let err = ConfusionMatrix::new(&[0, 1], &[0], 3).unwrap_err();
        assert!(matches!(err, Error::LengthMismatch { .. }), "{err}");
    }
}
