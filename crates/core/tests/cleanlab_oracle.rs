//! Acceptance test against cleanlab 2.9.0 on the MNIST test set's out-of-fold probabilities.
//!
//! Reads `mnist/cleanlab-test-oracle/` under `TOPLOSS_SHARED_DATA`: `pred_probs.npy`
//! (10000 x 10 float64), `labels.npy` (10000 uint16), `expected_cleanlab.json` (cleanlab's
//! output of `find_label_issues(labels, pred_probs, filter_by=F, return_indices_ranked_by=R)`
//! for every filter and ranking, plus both confident joints) and `flagged_100.csv`.

use std::path::PathBuf;

use ndarray::{Array1, Array2};
use ndarray_npy::read_npy;
use toploss_core::confident::{
    Filter, LabelIssueOptions, Ranking, compute_confident_joint, find_label_issues_ranked,
};
use toploss_core::rank::{Order, top_k};
use toploss_core::scores::normalized_margin;

const NUM_CLASSES: usize = 10;

/// Returns the oracle folder, or `None` (after a note on stderr) if `TOPLOSS_SHARED_DATA` is unset.
fn oracle_dir() -> Option<PathBuf> {
    let Some(root) = std::env::var_os("TOPLOSS_SHARED_DATA") else {
        eprintln!("note: TOPLOSS_SHARED_DATA is unset; skipping the cleanlab oracle test");
        return None;
    };
    Some(PathBuf::from(root).join("mnist/cleanlab-test-oracle"))
}

struct Oracle {
    probs: Vec<f64>,
    labels: Vec<u32>,
    expected: serde_json::Value,
    flagged_csv: String,
}

fn load(dir: &std::path::Path) -> Oracle {
    let path = |name: &str| {
        let path = dir.join(name);
        assert!(path.is_file(), "missing oracle file {}", path.display());
        path
    };
    let probs: Array2<f64> = read_npy(path("pred_probs.npy"))
        .unwrap_or_else(|e| panic!("failed to read {}: {e}", path("pred_probs.npy").display()));
    let labels: Array1<u16> = read_npy(path("labels.npy"))
        .unwrap_or_else(|e| panic!("failed to read {}: {e}", path("labels.npy").display()));
    let json = std::fs::read_to_string(path("expected_cleanlab.json"))
        .unwrap_or_else(|e| panic!("failed to read expected_cleanlab.json: {e}"));
    let flagged_csv = std::fs::read_to_string(path("flagged_100.csv"))
        .unwrap_or_else(|e| panic!("failed to read flagged_100.csv: {e}"));
    assert_eq!(probs.dim(), (10_000, NUM_CLASSES), "pred_probs.npy shape");
    Oracle {
        probs: probs.iter().copied().collect(),
        labels: labels.iter().map(|&l| u32::from(l)).collect(),
        expected: serde_json::from_str(&json).expect("expected_cleanlab.json is valid JSON"),
        flagged_csv,
    }
}

fn filter_named(name: &str) -> Filter {
    match name {
        "prune_by_noise_rate" => Filter::PruneByNoiseRate,
        "prune_by_class" => Filter::PruneByClass,
        "both" => Filter::Both,
        "confident_learning" => Filter::ConfidentLearning,
        "predicted_neq_given" => Filter::PredictedNeqGiven,
        "low_normalized_margin" => Filter::LowNormalizedMargin,
        "low_self_confidence" => Filter::LowSelfConfidence,
        other => panic!("unknown filter {other} in expected_cleanlab.json"),
    }
}

fn ranking_named(name: &str) -> Ranking {
    match name {
        "self_confidence" => Ranking::SelfConfidence,
        "normalized_margin" => Ranking::NormalizedMargin,
        "confidence_weighted_entropy" => Ranking::ConfidenceWeightedEntropy,
        other => panic!("unknown ranking {other} in expected_cleanlab.json"),
    }
}

fn json_matrix(value: &serde_json::Value) -> Vec<u64> {
    value
        .as_array()
        .expect("a list of rows")
        .iter()
        .flat_map(|row| row.as_array().expect("a row").iter())
        .map(|v| v.as_u64().expect("a count"))
        .collect()
}

#[test]
fn every_filter_and_ranking_matches_cleanlab() {
    let Some(dir) = oracle_dir() else { return };
    let oracle = load(&dir);
    let results = oracle.expected["results"]
        .as_object()
        .expect("`results` is an object");
    assert_eq!(results.len(), 21, "7 filters x 3 rankings");

    for (key, expected) in results {
        let (filter, ranking) = key.split_once('|').expect("keys are `filter|ranking`");
        let options = LabelIssueOptions {
            filter: filter_named(filter),
            ..LabelIssueOptions::default()
        };
        let expected: Vec<usize> = expected
            .as_array()
            .expect("a list of ids")
            .iter()
            .map(|v| v.as_u64().expect("an id") as usize)
            .collect();
        let actual = find_label_issues_ranked(
            &oracle.probs,
            &oracle.labels,
            NUM_CLASSES,
            &options,
            ranking_named(ranking),
        )
        .unwrap();
        assert_eq!(actual, expected, "{key}");
    }
}

#[test]
fn confident_joints_match_cleanlab() {
    let Some(dir) = oracle_dir() else { return };
    let oracle = load(&dir);
    let joint = compute_confident_joint(&oracle.probs, &oracle.labels, NUM_CLASSES).unwrap();
    assert_eq!(
        joint.uncalibrated,
        json_matrix(&oracle.expected["confident_joint_uncalibrated"])
    );
    assert_eq!(
        joint.calibrated,
        json_matrix(&oracle.expected["confident_joint_calibrated"])
    );
}

#[test]
fn normalized_margin_ranks_flagged_100_first() {
    let Some(dir) = oracle_dir() else { return };
    let oracle = load(&dir);

    // Columns: rank,index,given_label,suggested_label,normalized_margin
    let rows: Vec<Vec<&str>> = oracle
        .flagged_csv
        .lines()
        .skip(1)
        .filter(|line| !line.is_empty())
        .map(|line| line.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 100);
    let expected_ids: Vec<usize> = rows.iter().map(|r| r[1].parse().unwrap()).collect();

    let margins = normalized_margin(&oracle.probs, &oracle.labels, NUM_CLASSES).unwrap();
    let top = top_k(&margins, oracle.labels.len(), Order::Smallest).unwrap();
    assert_eq!(top.ids[..100], expected_ids[..]);

    // The CSV's given labels and margins (6 decimals) agree too.
    for row in &rows {
        let id: usize = row[1].parse().unwrap();
        let given: u32 = row[2].parse().unwrap();
        let margin: f64 = row[4].parse().unwrap();
        assert_eq!(oracle.labels[id], given, "given label of id {id}");
        assert!((margins[id] - margin).abs() < 1e-6, "margin of id {id}");
    }
}
