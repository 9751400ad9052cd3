//! Scoring label-issue candidates against known flipped labels, for runs trained with
//! synthetic label noise.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, bail};

/// File in a run folder that lists the train ids whose labels were flipped on purpose, as
/// `{"flipped": [id, ...]}`.
pub const NOISE_JSON: &str = "noise.json";

/// Precision, recall and precision at k of a method against the flipped labels.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseEvaluation {
    /// Number of flipped ids.
    pub flipped: usize,
    /// Number of candidates.
    pub candidates: usize,
    /// Candidates that are flipped ids.
    pub true_positives: usize,
    /// `true_positives / candidates`; `None` without candidates.
    pub precision: Option<f64>,
    /// `true_positives / flipped`; `None` without flipped ids.
    pub recall: Option<f64>,
    /// Harmonic mean of precision and recall; `None` when either is `None` or both are 0.
    pub f1: Option<f64>,
    /// `k` of [`NoiseEvaluation::precision_at_k`]: the number of flipped ids, or fewer when
    /// the ranking is shorter.
    pub k: usize,
    /// Share of flipped ids among the first `k` ids of the ranking; `None` when `k` is 0.
    pub precision_at_k: Option<f64>,
}

/// Compares `candidates` and the first ids of `ranking` (every sample, most suspicious first)
/// with the `flipped` ids.
///
/// Precision at k uses `k` = the number of flipped ids, so that a perfect ranking scores 1.
pub fn evaluate(candidates: &[usize], ranking: &[usize], flipped: &[usize]) -> NoiseEvaluation {
    let flipped_set: HashSet<usize> = flipped.iter().copied().collect();
    let true_positives = candidates
        .iter()
        .filter(|id| flipped_set.contains(id))
        .count();
    let precision =
        (!candidates.is_empty()).then(|| true_positives as f64 / candidates.len() as f64);
    let recall =
        (!flipped_set.is_empty()).then(|| true_positives as f64 / flipped_set.len() as f64);
    let f1 = match (precision, recall) {
        (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
        _ => None,
    };

    let k = flipped_set.len().min(ranking.len());
    let hits = ranking[..k]
        .iter()
        .filter(|id| flipped_set.contains(id))
        .count();
    NoiseEvaluation {
        flipped: flipped_set.len(),
        candidates: candidates.len(),
        true_positives,
        precision,
        recall,
        f1,
        k,
        precision_at_k: (k > 0).then(|| hits as f64 / k as f64),
    }
}

/// Reads the flipped train ids of a run: `RUN/noise.json`, else the `label_noise.flipped`
/// list in run.json's `config`. Returns `None` when the run has neither.
pub fn read_flipped(run: &Path, config: &serde_json::Value) -> anyhow::Result<Option<Vec<usize>>> {
    let path = run.join(NOISE_JSON);
    // A run trained without --label-noise has no flips, whatever files its folder contains.
    if config
        .get("label_noise")
        .is_some_and(|value| value.is_null())
    {
        return Ok(None);
    }
    let from_file;
    let value = if path.is_file() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        from_file = serde_json::from_str::<serde_json::Value>(&text)
            .with_context(|| format!("{}: invalid JSON", path.display()))?;
        &from_file["flipped"]
    } else {
        &config["label_noise"]["flipped"]
    };
    if value.is_null() {
        return Ok(None);
    }
    let Some(list) = value.as_array() else {
        bail!("{}: `flipped` must be a list of sample ids", path.display());
    };
    list.iter()
        .map(|id| {
            id.as_u64().map(|id| id as usize).with_context(|| {
                format!(
                    "{}: `flipped` holds {id}, which is not a sample id",
                    path.display()
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map(Some)
}

fn format_share(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"))
}

/// Formats the evaluation as two lines for stdout.
pub fn describe(evaluation: &NoiseEvaluation, method: &str) -> String {
    format!(
        "against {} flipped labels: {} of {} candidates are flipped · precision {} · recall {} \
         · F1 {}\n{method} ranking: precision at k = {}: {}",
        evaluation.flipped,
        evaluation.true_positives,
        evaluation.candidates,
        format_share(evaluation.precision),
        format_share(evaluation.recall),
        format_share(evaluation.f1),
        evaluation.k,
        format_share(evaluation.precision_at_k),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluate_hand_computed() {
        // Flipped {2, 5, 7, 9}. Candidates [5, 1, 2]: 2 hits, precision 2/3, recall 2/4,
        // F1 = 2 * (2/3) * (1/2) / (2/3 + 1/2) = (2/3) / (7/6) = 4/7.
        // Ranking [9, 5, 0, 1, 2, ...]: the first k = 4 hold 9 and 5, so 2/4.
        let result = evaluate(&[5, 1, 2], &[9, 5, 0, 1, 2, 3, 4, 6, 7, 8], &[2, 5, 7, 9]);
        assert_eq!(result.true_positives, 2);
        assert_eq!(result.precision, Some(2.0 / 3.0));
        assert_eq!(result.recall, Some(0.5));
        assert!((result.f1.unwrap() - 4.0 / 7.0).abs() < 1e-12);
        assert_eq!(result.k, 4);
        assert_eq!(result.precision_at_k, Some(0.5));
    }

    #[test]
    fn evaluate_without_candidates_or_hits() {
        let result = evaluate(&[], &[0, 1], &[1]);
        assert_eq!(result.precision, None);
        assert_eq!(result.recall, Some(0.0));
        assert_eq!(result.f1, None);
        assert_eq!(result.precision_at_k, Some(0.0));

        let result = evaluate(&[3], &[], &[]);
        assert_eq!(result.recall, None);
        assert_eq!(result.k, 0);
        assert_eq!(result.precision_at_k, None);
    }

    #[test]
    fn flipped_read_from_file_or_config() {
        let dir = tempfile::tempdir().unwrap();
        let config = serde_json::json!({"label_noise": {"rate": 0.1, "flipped": [4, 1]}});
        assert_eq!(read_flipped(dir.path(), &config).unwrap(), Some(vec![4, 1]));
        assert_eq!(
            read_flipped(dir.path(), &serde_json::json!({})).unwrap(),
            None
        );

        // noise.json wins over the config.
        std::fs::write(dir.path().join(NOISE_JSON), r#"{"flipped": [7]}"#).unwrap();
        assert_eq!(read_flipped(dir.path(), &config).unwrap(), Some(vec![7]));

        std::fs::write(dir.path().join(NOISE_JSON), r#"{"flipped": [-1]}"#).unwrap();
        let error = read_flipped(dir.path(), &config).unwrap_err().to_string();
        assert!(error.contains("-1"), "{error}");
    }
}
