//! Cross-checks of confident learning against cleanlab 2.9.0 on three small arrays.
//!
//! The expected values were produced with cleanlab 2.9.0 (PyPI, NumPy 2.4) by:
//!
//! ```python
//! rs = np.random.RandomState(seed)
//! true = rs.choice(present_classes, n)
//! probs = np.stack([rs.dirichlet(np.where(np.arange(k) == t, 2.5, 0.8)) for t in true])
//! labels = true.copy(); flip = rs.rand(n) < 0.4
//! labels[flip] = rs.choice(present_classes, flip.sum())
//! # seeds, n, k, present classes: (3, 12, 3, [0, 1, 2]), (1, 15, 4, [0, 1, 2]) with class 3
//! # never given, (15, 10, 2, [0, 1])
//!
//! cleanlab.count.get_confident_thresholds(labels, probs)
//! cleanlab.count.compute_confident_joint(labels, probs, calibrate=False)
//! cal = cleanlab.count.compute_confident_joint(labels, probs)
//! cleanlab.count.estimate_latent(cal, labels)          # prior, noise, inverse noise
//! cleanlab.count.num_label_issues(labels, probs)
//! cleanlab.filter.find_label_issues(labels, probs, filter_by=F, return_indices_ranked_by=R)
//! cleanlab.filter.find_label_issues(labels, probs, filter_by=F,
//!     return_indices_ranked_by="self_confidence", min_examples_per_class=3, frac_noise=0.5)
//! ```
//!
//! The probabilities below are the generated float64 values, printed with Python's `repr`
//! (shortest round-trip form), so they parse to the same bits. No two scores tie, so the
//! order does not depend on NumPy's unstable `argsort`.

use toploss_core::confident::{
    Filter, LabelIssueOptions, Ranking, compute_confident_joint, confident_thresholds,
    estimate_latent, find_label_issues_ranked, num_label_issues,
};

struct Case {
    name: &'static str,
    probs: &'static [f64],
    labels: &'static [u32],
    num_classes: usize,
    thresholds: &'static [f64],
    uncalibrated: &'static [u64],
    calibrated: &'static [u64],
    prior: &'static [f64],
    noise_matrix: &'static [f64],
    inverse_noise_matrix: &'static [f64],
    num_label_issues: usize,
    /// `(filter|ranking[|min3|frac0.5], ranked ids)`.
    ranked: &'static [(&'static str, &'static [usize])],
}

const TWELVE_BY_THREE: Case = Case {
    name: "twelve_by_three",
    probs: &[
        0.2838711110806087,
        0.12518710374678738,
        0.5909417851726039,
        0.057073416512265364,
        0.8151920770197708,
        0.1277345064679639,
        0.10684546752084834,
        0.8636989449045192,
        0.029455587574632684,
        0.8709541380372385,
        0.0038197179269531143,
        0.12522614403580823,
        0.33873132755808694,
        0.6568298023586779,
        0.0044388700832352305,
        0.24009022165517976,
        0.6797567683474772,
        0.08015300999734304,
        0.2392233491490866,
        0.42620547672170717,
        0.3345711741292062,
        0.2604337481134306,
        0.6922515590765336,
        0.04731469281003574,
        0.23278399017147303,
        0.1327138324133789,
        0.6345021774151481,
        0.043642964870078134,
        0.7015650854669201,
        0.2547919496630018,
        0.03277431024622527,
        0.9404548596167225,
        0.026770830137052143,
        0.5220057110358807,
        0.03701960735449372,
        0.44097468160962555,
    ],
    labels: &[2, 0, 1, 0, 0, 0, 1, 1, 2, 1, 2, 2],
    num_classes: 3,
    thresholds: &[0.3767122759406926, 0.67093026654242, 0.42329736858360745],
    uncalibrated: &[1, 2, 0, 0, 3, 0, 1, 1, 2],
    calibrated: &[1, 3, 0, 0, 4, 0, 1, 1, 2],
    prior: &[0.16666666666666669, 0.6666666666666667, 0.16666666666666669],
    noise_matrix: &[0.5, 0.375, 0.0, 0.0, 0.5, 0.0, 0.5, 0.125, 1.0],
    inverse_noise_matrix: &[0.25, 0.0, 0.25, 0.75, 1.0, 0.25, 0.0, 0.0, 0.5],
    num_label_issues: 4,
    ranked: &[
        ("prune_by_noise_rate|self_confidence", &[10, 1, 5, 4, 11]),
        ("prune_by_noise_rate|normalized_margin", &[10, 1, 5, 4, 11]),
        (
            "prune_by_noise_rate|confidence_weighted_entropy",
            &[1, 10, 5, 4, 11],
        ),
        ("prune_by_class|self_confidence", &[10, 1, 5, 4, 11]),
        ("prune_by_class|normalized_margin", &[10, 1, 5, 4, 11]),
        (
            "prune_by_class|confidence_weighted_entropy",
            &[1, 10, 5, 4, 11],
        ),
        ("both|self_confidence", &[10, 1, 5, 4, 11]),
        ("both|normalized_margin", &[10, 1, 5, 4, 11]),
        ("both|confidence_weighted_entropy", &[1, 10, 5, 4, 11]),
        ("confident_learning|self_confidence", &[10, 1, 5, 11]),
        ("confident_learning|normalized_margin", &[10, 1, 5, 11]),
        (
            "confident_learning|confidence_weighted_entropy",
            &[1, 10, 5, 11],
        ),
        ("predicted_neq_given|self_confidence", &[10, 1, 5, 4, 11]),
        ("predicted_neq_given|normalized_margin", &[10, 1, 5, 4, 11]),
        (
            "predicted_neq_given|confidence_weighted_entropy",
            &[1, 10, 5, 4, 11],
        ),
        ("low_normalized_margin|self_confidence", &[10, 1, 5, 4]),
        ("low_normalized_margin|normalized_margin", &[10, 1, 5, 4]),
        (
            "low_normalized_margin|confidence_weighted_entropy",
            &[1, 10, 5, 4],
        ),
        ("low_self_confidence|self_confidence", &[10, 1, 5, 4]),
        ("low_self_confidence|normalized_margin", &[10, 1, 5, 4]),
        (
            "low_self_confidence|confidence_weighted_entropy",
            &[1, 10, 5, 4],
        ),
        ("prune_by_noise_rate|self_confidence|min3|frac0.5", &[]),
        ("prune_by_class|self_confidence|min3|frac0.5", &[10, 1]),
        ("both|self_confidence|min3|frac0.5", &[]),
    ],
};

const MISSING_CLASS: Case = Case {
    name: "missing_class",
    probs: &[
        0.08244581719571993,
        0.5874272645327403,
        0.1953480066796326,
        0.1347789115919071,
        0.33705392863602723,
        0.2600561887264941,
        0.04497739714012785,
        0.3579124854973508,
        0.4934386187446923,
        0.1443090439445541,
        0.06291912993811329,
        0.29933320737264024,
        0.2510226683900799,
        0.2415195455591373,
        0.012681391583166687,
        0.4947763944676161,
        0.13171748228958197,
        0.7971151334628425,
        0.015672977423121084,
        0.05549440682445457,
        0.5231827156611848,
        0.026435621359400585,
        0.439595443145185,
        0.010786219834229564,
        0.5282564555674181,
        0.14441889835231111,
        0.017975716097156424,
        0.3093489299831143,
        0.010302593015160386,
        0.6802022033377199,
        0.11422840834739832,
        0.19526679529972132,
        0.1629091816100556,
        0.28098583250489906,
        0.45644828793319986,
        0.09965669795184542,
        0.2954440071964389,
        0.4509922119792062,
        0.03536717678511281,
        0.21819660403924215,
        0.42234506743757855,
        0.04651829221880457,
        0.12038974372978085,
        0.4107468966138362,
        0.03233607830689334,
        0.37599787140627217,
        0.13371712304713504,
        0.4579489272396994,
        0.19486109992456524,
        0.4491123274577073,
        0.3165288457726765,
        0.03949772684505095,
        0.38871639196001034,
        0.0007342723347342247,
        0.4572123666951779,
        0.15333696901007754,
        0.7208112979354785,
        0.01575219072267547,
        0.26236085558582944,
        0.001075655756016653,
    ],
    labels: &[1, 0, 2, 1, 1, 1, 0, 1, 0, 0, 0, 2, 1, 2, 2],
    num_classes: 4,
    thresholds: &[
        0.34920172808950367,
        0.4636353492849246,
        0.22905236881656393,
        2.0,
    ],
    uncalibrated: &[2, 0, 1, 0, 1, 3, 1, 0, 2, 0, 1, 0, 0, 0, 0, 1],
    calibrated: &[3, 0, 2, 0, 1, 4, 1, 0, 3, 0, 1, 0, 0, 0, 0, 0],
    prior: &[
        0.4666662000004667,
        0.2666664000002667,
        0.2666664000002667,
        9.99999000001e-07,
    ],
    noise_matrix: &[
        0.42857142857142855,
        0.0,
        0.5,
        0.0,
        0.14285714285714285,
        1.0,
        0.25,
        0.0,
        0.42857142857142855,
        0.0,
        0.25,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    inverse_noise_matrix: &[
        0.6,
        0.16666666666666669,
        0.75,
        0.0,
        0.0,
        0.6666666666666667,
        0.0,
        0.0,
        0.4,
        0.16666666666666669,
        0.25,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    num_label_issues: 4,
    ranked: &[
        ("prune_by_noise_rate|self_confidence", &[5, 2, 8, 14, 9]),
        ("prune_by_noise_rate|normalized_margin", &[5, 14, 2, 8, 9]),
        (
            "prune_by_noise_rate|confidence_weighted_entropy",
            &[5, 2, 8, 9, 14],
        ),
        ("prune_by_class|self_confidence", &[5, 2, 11, 8, 3, 14, 9]),
        ("prune_by_class|normalized_margin", &[5, 14, 2, 11, 8, 3, 9]),
        (
            "prune_by_class|confidence_weighted_entropy",
            &[5, 2, 11, 8, 3, 9, 14],
        ),
        ("both|self_confidence", &[5, 2, 8, 14, 9]),
        ("both|normalized_margin", &[5, 14, 2, 8, 9]),
        ("both|confidence_weighted_entropy", &[5, 2, 8, 9, 14]),
        ("confident_learning|self_confidence", &[5, 2, 8, 14]),
        ("confident_learning|normalized_margin", &[5, 14, 2, 8]),
        (
            "confident_learning|confidence_weighted_entropy",
            &[5, 2, 8, 14],
        ),
        (
            "predicted_neq_given|self_confidence",
            &[5, 2, 11, 8, 3, 14, 9, 1],
        ),
        (
            "predicted_neq_given|normalized_margin",
            &[5, 14, 2, 11, 8, 3, 9, 1],
        ),
        (
            "predicted_neq_given|confidence_weighted_entropy",
            &[5, 2, 11, 8, 3, 9, 1, 14],
        ),
        ("low_normalized_margin|self_confidence", &[5, 2, 11, 14]),
        ("low_normalized_margin|normalized_margin", &[5, 14, 2, 11]),
        (
            "low_normalized_margin|confidence_weighted_entropy",
            &[5, 2, 11, 14],
        ),
        ("low_self_confidence|self_confidence", &[5, 2, 11, 8]),
        ("low_self_confidence|normalized_margin", &[5, 2, 11, 8]),
        (
            "low_self_confidence|confidence_weighted_entropy",
            &[5, 2, 11, 8],
        ),
        ("prune_by_noise_rate|self_confidence|min3|frac0.5", &[8]),
        ("prune_by_class|self_confidence|min3|frac0.5", &[5, 2, 8]),
        ("both|self_confidence|min3|frac0.5", &[8]),
    ],
};

const BINARY: Case = Case {
    name: "binary",
    probs: &[
        0.8596132958757748,
        0.1403867041242252,
        0.47767924140451523,
        0.5223207585954845,
        0.9932849225542144,
        0.006715077445785656,
        0.3105421853157182,
        0.6894578146842819,
        0.5127621469922501,
        0.48723785300774997,
        0.9003644296230853,
        0.09963557037691485,
        0.7436518214509238,
        0.25634817854907616,
        0.006811296758554103,
        0.9931887032414458,
        0.5154344804761791,
        0.4845655195238208,
        0.2702099367003052,
        0.7297900632996949,
    ],
    labels: &[0, 0, 0, 1, 1, 0, 0, 0, 0, 0],
    num_classes: 2,
    thresholds: &[0.595881178105444, 0.588347833846016],
    uncalibrated: &[4, 2, 0, 1],
    calibrated: &[5, 3, 0, 2],
    prior: &[0.5, 0.5],
    noise_matrix: &[1.0, 0.6, 0.0, 0.4],
    inverse_noise_matrix: &[0.625, 0.0, 0.375, 1.0],
    num_label_issues: 2,
    ranked: &[
        ("prune_by_noise_rate|self_confidence", &[7, 9, 1]),
        ("prune_by_noise_rate|normalized_margin", &[7, 9, 1]),
        (
            "prune_by_noise_rate|confidence_weighted_entropy",
            &[7, 9, 1],
        ),
        ("prune_by_class|self_confidence", &[7, 9, 1]),
        ("prune_by_class|normalized_margin", &[7, 9, 1]),
        ("prune_by_class|confidence_weighted_entropy", &[7, 9, 1]),
        ("both|self_confidence", &[7, 9, 1]),
        ("both|normalized_margin", &[7, 9, 1]),
        ("both|confidence_weighted_entropy", &[7, 9, 1]),
        ("confident_learning|self_confidence", &[7, 9]),
        ("confident_learning|normalized_margin", &[7, 9]),
        ("confident_learning|confidence_weighted_entropy", &[7, 9]),
        ("predicted_neq_given|self_confidence", &[7, 9, 1, 4]),
        ("predicted_neq_given|normalized_margin", &[7, 9, 1, 4]),
        (
            "predicted_neq_given|confidence_weighted_entropy",
            &[7, 9, 1, 4],
        ),
        ("low_normalized_margin|self_confidence", &[7, 9]),
        ("low_normalized_margin|normalized_margin", &[7, 9]),
        ("low_normalized_margin|confidence_weighted_entropy", &[7, 9]),
        ("low_self_confidence|self_confidence", &[7, 9]),
        ("low_self_confidence|normalized_margin", &[7, 9]),
        ("low_self_confidence|confidence_weighted_entropy", &[7, 9]),
        ("prune_by_noise_rate|self_confidence|min3|frac0.5", &[7]),
        ("prune_by_class|self_confidence|min3|frac0.5", &[7, 9]),
        ("both|self_confidence|min3|frac0.5", &[7]),
    ],
};

const CASES: [&Case; 3] = [&TWELVE_BY_THREE, &MISSING_CLASS, &BINARY];

fn filter_named(name: &str) -> Filter {
    match name {
        "prune_by_noise_rate" => Filter::PruneByNoiseRate,
        "prune_by_class" => Filter::PruneByClass,
        "both" => Filter::Both,
        "confident_learning" => Filter::ConfidentLearning,
        "predicted_neq_given" => Filter::PredictedNeqGiven,
        "low_normalized_margin" => Filter::LowNormalizedMargin,
        "low_self_confidence" => Filter::LowSelfConfidence,
        other => panic!("unknown filter {other}"),
    }
}

fn ranking_named(name: &str) -> Ranking {
    match name {
        "self_confidence" => Ranking::SelfConfidence,
        "normalized_margin" => Ranking::NormalizedMargin,
        "confidence_weighted_entropy" => Ranking::ConfidenceWeightedEntropy,
        other => panic!("unknown ranking {other}"),
    }
}

fn assert_close(actual: &[f64], expected: &[f64], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!((a - e).abs() < 1e-12, "{what}[{i}]: {a} != {e}");
    }
}

#[test]
fn thresholds_equal_cleanlab_bits() {
    for case in CASES {
        let thresholds = confident_thresholds(case.probs, case.labels, case.num_classes).unwrap();
        assert_eq!(thresholds, case.thresholds, "{}", case.name);
    }
}

#[test]
fn confident_joints_equal_cleanlab() {
    for case in CASES {
        let joint = compute_confident_joint(case.probs, case.labels, case.num_classes).unwrap();
        assert_eq!(
            joint.uncalibrated, case.uncalibrated,
            "{} uncalibrated",
            case.name
        );
        assert_eq!(
            joint.calibrated, case.calibrated,
            "{} calibrated",
            case.name
        );
    }
}

#[test]
fn latent_estimates_equal_cleanlab() {
    for case in CASES {
        let joint = compute_confident_joint(case.probs, case.labels, case.num_classes).unwrap();
        let latent = estimate_latent(&joint);
        assert_close(&latent.prior, case.prior, &format!("{} prior", case.name));
        assert_close(
            &latent.noise_matrix,
            case.noise_matrix,
            &format!("{} noise", case.name),
        );
        assert_close(
            &latent.inverse_noise_matrix,
            case.inverse_noise_matrix,
            &format!("{} inverse noise", case.name),
        );
    }
}

#[test]
fn num_label_issues_equals_cleanlab() {
    for case in CASES {
        let count = num_label_issues(case.probs, case.labels, case.num_classes).unwrap();
        assert_eq!(count, case.num_label_issues, "{}", case.name);
    }
}

#[test]
fn ranked_issues_equal_cleanlab() {
    for case in CASES {
        for &(key, expected) in case.ranked {
            let mut parts = key.split('|');
            let filter = filter_named(parts.next().unwrap());
            let ranking = ranking_named(parts.next().unwrap());
            let options = if parts.next() == Some("min3") {
                LabelIssueOptions {
                    filter,
                    min_examples_per_class: 3,
                    frac_noise: 0.5,
                }
            } else {
                LabelIssueOptions {
                    filter,
                    ..LabelIssueOptions::default()
                }
            };
            let actual = find_label_issues_ranked(
                case.probs,
                case.labels,
                case.num_classes,
                &options,
                ranking,
            )
            .unwrap();
            assert_eq!(actual, expected, "{} {key}", case.name);
        }
    }
}
