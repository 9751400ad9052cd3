//! Synthetic label noise: flip a reproducible share of train labels and remember which, so
//! that label-issue detection can be scored against the truth.

use serde::{Deserialize, Serialize};

use crate::Shuffler;

/// Rule that picks the new label of a flipped sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoiseKind {
    /// The new label is drawn uniformly from the K - 1 other classes.
    Uniform,
    /// Every class flips to one fixed other class, `c -> (c + 1) mod K`, e.g. 7 -> 8 and
    /// 9 -> 0 (called pair flipping in the noisy-label literature).
    Pair,
}

/// The outcome of [`inject_label_noise`], written to `RUN/noise.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelNoise {
    /// Requested share of flipped train labels, in `[0, 1]`.
    pub rate: f64,
    /// Rule that picked the new labels.
    pub kind: NoiseKind,
    /// Seed of the draw.
    pub seed: u64,
    /// Flipped train ids, ascending.
    pub flipped: Vec<u32>,
    /// Label of each flipped id before the flip (same order as `flipped`).
    pub original_labels: Vec<u32>,
    /// Label of each flipped id after the flip.
    pub noisy_labels: Vec<u32>,
}

/// Errors of [`inject_label_noise`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum NoiseError {
    /// The rate is outside `[0, 1]` or not a number.
    #[error("invalid --label-noise {0}: expected a share between 0 and 1, e.g. 0.2 for 20%")]
    Rate(f64),
    /// Flipping needs another class to flip to.
    #[error("--label-noise needs at least 2 classes, the dataset has {0}")]
    TooFewClasses(usize),
}

/// Flips exactly `round(rate * N)` labels of `labels` in place and returns which.
///
/// The flipped ids are a uniform sample without replacement (a seeded shuffle of all ids,
/// then the first ones), so the same `(labels, rate, kind, seed)` always flips the same ids to
/// the same labels. Every flipped label differs from its original.
pub fn inject_label_noise(
    labels: &mut [u32],
    classes: usize,
    rate: f64,
    kind: NoiseKind,
    seed: u64,
) -> Result<LabelNoise, NoiseError> {
    if !(0.0..=1.0).contains(&rate) {
        return Err(NoiseError::Rate(rate));
    }
    if classes < 2 {
        return Err(NoiseError::TooFewClasses(classes));
    }
    let count = (rate * labels.len() as f64).round() as usize;

    // Choose the ids: the first `count` of a seeded permutation, then sort them.
    let mut shuffler = Shuffler::new(seed);
    let mut ids: Vec<u32> = (0..labels.len() as u32).collect();
    shuffler.shuffle(&mut ids);
    let mut flipped = ids[..count].to_vec();
    flipped.sort_unstable();

    let mut original_labels = Vec::with_capacity(count);
    let mut noisy_labels = Vec::with_capacity(count);
    for &id in &flipped {
        let old = labels[id as usize];
        let new = match kind {
            NoiseKind::Pair => (old + 1) % classes as u32,
            NoiseKind::Uniform => {
                // Draw among the K - 1 other classes: skip over the old label.
                let draw = shuffler.below(classes - 1) as u32;
                if draw >= old { draw + 1 } else { draw }
            }
        };
        labels[id as usize] = new;
        original_labels.push(old);
        noisy_labels.push(new);
    }
    Ok(LabelNoise {
        rate,
        kind,
        seed,
        flipped,
        original_labels,
        noisy_labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n: usize, classes: u32) -> Vec<u32> {
        (0..n as u32).map(|i| i % classes).collect()
    }

    #[test]
    fn flips_exactly_the_requested_count() {
        // 20% of 1,000 = 200; 0.1234 of 999 = 123.28 -> 123.
        for (n, rate, expected) in [
            (1000, 0.2, 200),
            (999, 0.1234, 123),
            (10, 0.0, 0),
            (10, 1.0, 10),
        ] {
            let mut noisy = labels(n, 10);
            let clean = noisy.clone();
            let noise = inject_label_noise(&mut noisy, 10, rate, NoiseKind::Uniform, 3).unwrap();
            assert_eq!(noise.flipped.len(), expected, "n {n}, rate {rate}");
            let changed = noisy.iter().zip(&clean).filter(|(a, b)| a != b).count();
            assert_eq!(changed, expected, "every flip changes the label");
        }
    }

    #[test]
    fn same_seed_same_flips() {
        let mut a = labels(500, 10);
        let mut b = labels(500, 10);
        let first = inject_label_noise(&mut a, 10, 0.3, NoiseKind::Uniform, 11).unwrap();
        let second = inject_label_noise(&mut b, 10, 0.3, NoiseKind::Uniform, 11).unwrap();
        assert_eq!(first, second);
        assert_eq!(a, b);

        let mut c = labels(500, 10);
        let other = inject_label_noise(&mut c, 10, 0.3, NoiseKind::Uniform, 12).unwrap();
        assert_ne!(first.flipped, other.flipped);
    }

    #[test]
    fn pair_noise_maps_each_class_to_the_next() {
        let mut noisy = labels(100, 10);
        let noise = inject_label_noise(&mut noisy, 10, 0.5, NoiseKind::Pair, 1).unwrap();
        for ((&id, &old), &new) in noise
            .flipped
            .iter()
            .zip(&noise.original_labels)
            .zip(&noise.noisy_labels)
        {
            assert_eq!(new, (old + 1) % 10, "id {id}");
            assert_eq!(noisy[id as usize], new);
        }
    }

    #[test]
    fn uniform_noise_reaches_every_other_class() {
        let mut noisy = vec![3u32; 2000];
        let noise = inject_label_noise(&mut noisy, 5, 1.0, NoiseKind::Uniform, 9).unwrap();
        let mut seen = [0usize; 5];
        for &new in &noise.noisy_labels {
            seen[new as usize] += 1;
        }
        assert_eq!(seen[3], 0);
        assert!(
            seen.iter().enumerate().all(|(c, &n)| c == 3 || n > 400),
            "{seen:?}"
        );
    }

    #[test]
    fn bad_rate_and_single_class_rejected() {
        let mut noisy = labels(10, 2);
        assert_eq!(
            inject_label_noise(&mut noisy, 2, 1.5, NoiseKind::Uniform, 0),
            Err(NoiseError::Rate(1.5))
        );
        assert!(inject_label_noise(&mut noisy, 2, f64::NAN, NoiseKind::Uniform, 0).is_err());
        assert_eq!(
            inject_label_noise(&mut noisy, 1, 0.1, NoiseKind::Pair, 0),
            Err(NoiseError::TooFewClasses(1))
        );
    }
}
