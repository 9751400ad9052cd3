//! End-to-end tests of `toploss issues`, `toploss score` and `toploss confusion`: on a tiny
//! real run of the bundled MNIST, and on small hand-made prediction files in .npy, CSV and
//! Parquet with known answers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, ListBuilder};
use arrow_array::{ArrayRef, Float64Array, RecordBatch, UInt8Array};
use assert_cmd::Command;
use ndarray::{Array1, Array2, Array3};
use parquet::arrow::ArrowWriter;
use toploss_core::confident::{Filter, LabelIssueOptions, Ranking, find_label_issues_ranked};
use toploss_data::run::{DYNAMICS_PARQUET, Dynamics, SplitName, probs_path, read_npy_f32};

fn toploss() -> Command {
    Command::cargo_bin("toploss").unwrap()
}

fn bundled_mnist() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    format!("mnist:{}", dir.display())
}

/// Runs the command and returns (exit code, stdout, stderr).
fn run(command: &mut Command) -> (i32, String, String) {
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Trains 2 epochs of the MLP on 600 train and 100 test images into `dir/run`.
fn small_run(dir: &Path) -> PathBuf {
    let out = dir.join("run");
    let (code, _, stderr) = run(toploss()
        .args(["-q", "train", "--data", &bundled_mnist(), "--out"])
        .arg(&out)
        .args([
            "--epochs",
            "2",
            "--train-limit",
            "600",
            "--test-limit",
            "100",
            "--model",
            "mlp",
        ]));
    assert_eq!(code, 0, "train failed: {stderr}");
    out
}

/// One row of issues.csv.
#[derive(Debug, Clone, PartialEq)]
struct IssueRow {
    rank: usize,
    id: usize,
    label: u32,
    suggested: u32,
    score: f64,
}

fn read_issues(path: &Path) -> Vec<IssueRow> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("rank,id,label,suggested,score"));
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 5, "{line}");
            IssueRow {
                rank: fields[0].parse().unwrap(),
                id: fields[1].parse().unwrap(),
                label: fields[2].parse().unwrap(),
                suggested: fields[3].parse().unwrap(),
                score: fields[4].parse().unwrap(),
            }
        })
        .collect()
}

fn ids(rows: &[IssueRow]) -> Vec<usize> {
    rows.iter().map(|row| row.id).collect()
}

// ---------------------------------------------------------------------------------------------
// toploss issues on a real run

#[test]
fn issues_every_method_writes_ranked_csv_and_grid() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = small_run(dir.path());
    let dynamics = Dynamics::read(
        &run_dir.join(DYNAMICS_PARQUET),
        Some(2),
        Some(SplitName::Train),
    )
    .unwrap();
    let rows = dynamics.get(2, SplitName::Train).unwrap();

    for (method, higher_is_worse) in [
        ("confident-learning", false),
        ("aum", false),
        ("cartography", false),
        ("loss", true),
        ("margin", false),
    ] {
        let out = dir.path().join(method);
        let (code, stdout, stderr) = run(toploss()
            .arg("issues")
            .arg(&run_dir)
            .args(["--method", method, "-k", "25", "--out"])
            .arg(&out));
        assert_eq!(code, 0, "{method}: {stderr}");
        assert!(stdout.contains("candidates found by"), "{method}: {stdout}");

        let issues = read_issues(&out.join("issues.csv"));
        assert!(
            !issues.is_empty(),
            "{method}: no candidates on a 2-epoch run"
        );
        assert!(issues.len() <= 25, "{method}: -k 25 gave {}", issues.len());
        for (index, row) in issues.iter().enumerate() {
            assert_eq!(row.rank, index + 1, "{method}");
            assert_eq!(row.label, rows.label[row.id], "{method}: id {}", row.id);
            assert!(row.suggested < 10, "{method}");
        }
        for pair in issues.windows(2) {
            let ordered = if higher_is_worse {
                pair[0].score >= pair[1].score
            } else {
                pair[0].score <= pair[1].score
            };
            assert!(ordered, "{method}: {:?} then {:?}", pair[0], pair[1]);
        }
        let pngs: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
            .collect();
        assert_eq!(pngs.len(), 1, "{method}: one grid PNG");
        assert!(image::open(pngs[0].path()).unwrap().width() > 0);
    }

    // cartography.csv has every train sample.
    let cartography =
        std::fs::read_to_string(dir.path().join("cartography/cartography.csv")).unwrap();
    let mut lines = cartography.lines();
    assert_eq!(
        lines.next(),
        Some("id,label,confidence,variability,correctness")
    );
    assert_eq!(lines.count(), 600);
}

#[test]
fn issues_loss_and_aum_match_dynamics() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = small_run(dir.path());
    let dynamics = Dynamics::read(
        &run_dir.join(DYNAMICS_PARQUET),
        None,
        Some(SplitName::Train),
    )
    .unwrap();
    let last = dynamics.get(2, SplitName::Train).unwrap();

    // loss: the 10 highest losses of epoch 2, ties by lower id.
    let out = dir.path().join("loss");
    let (code, _, stderr) = run(toploss()
        .arg("issues")
        .arg(&run_dir)
        .args(["--method", "loss", "-k", "10", "--out"])
        .arg(&out));
    assert_eq!(code, 0, "{stderr}");
    let mut by_loss: Vec<usize> = (0..last.len()).collect();
    by_loss.sort_by(|&a, &b| last.loss[b].total_cmp(&last.loss[a]).then(a.cmp(&b)));
    let issues = read_issues(&out.join("issues.csv"));
    assert_eq!(ids(&issues), by_loss[..10]);
    assert_eq!(issues[0].suggested, last.predicted[issues[0].id]);

    // aum with 2 epochs: epoch 1 is skipped, so AUM is epoch 2's training margin; candidates
    // have AUM < 0, lowest first.
    let out = dir.path().join("aum");
    let (code, stdout, stderr) = run(toploss()
        .arg("issues")
        .arg(&run_dir)
        .args(["--method", "aum", "--out"])
        .arg(&out));
    assert_eq!(code, 0, "{stderr}");
    let margins: Vec<f32> = last.train_margin.iter().map(|m| m.unwrap()).collect();
    let mut expected: Vec<usize> = (0..margins.len()).filter(|&id| margins[id] < 0.0).collect();
    expected.sort_by(|&a, &b| margins[a].total_cmp(&margins[b]).then(a.cmp(&b)));
    let issues = read_issues(&out.join("issues.csv"));
    assert_eq!(ids(&issues), expected);
    assert!(
        stdout.contains(&format!("{} candidates found by aum", expected.len())),
        "{stdout}"
    );
    for row in &issues {
        assert!(
            (row.score - f64::from(margins[row.id])).abs() < 1e-6,
            "{row:?}"
        );
    }
}

#[test]
fn issues_confident_learning_prefers_out_of_fold() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = small_run(dir.path());

    // Without oof_probs.npy: in-sample probabilities and a warning.
    let (code, _, stderr) = run(toploss().arg("issues").arg(&run_dir).args([
        "--method",
        "confident-learning",
        "--filter",
        "predicted-neq-given",
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("--folds 5"), "{stderr}");
    assert!(
        run_dir
            .join("issues/confident-learning/issues.csv")
            .is_file()
    );

    // With oof_probs.npy (here the epoch-2 probabilities under that name): no warning, and
    // the result equals the core function on that file.
    let probs = read_npy_f32(&probs_path(&run_dir, SplitName::Train, 2)).unwrap();
    let oof = run_dir.join("oof_probs.npy");
    ndarray_npy::write_npy(&oof, &probs).unwrap();
    let out = dir.path().join("cl");
    let (code, _, stderr) = run(toploss()
        .arg("issues")
        .arg(&run_dir)
        .args([
            "--method",
            "confident-learning",
            "--filter",
            "predicted-neq-given",
            "--out",
        ])
        .arg(&out));
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("--folds"), "{stderr}");

    let dynamics = Dynamics::read(
        &run_dir.join(DYNAMICS_PARQUET),
        Some(2),
        Some(SplitName::Train),
    )
    .unwrap();
    let labels = &dynamics.get(2, SplitName::Train).unwrap().label;
    let flat: Vec<f32> = probs.iter().copied().collect();
    let options = LabelIssueOptions {
        filter: Filter::PredictedNeqGiven,
        ..LabelIssueOptions::default()
    };
    let expected =
        find_label_issues_ranked(&flat, labels, 10, &options, Ranking::SelfConfidence).unwrap();
    assert!(!expected.is_empty());
    assert_eq!(ids(&read_issues(&out.join("issues.csv"))), expected);
}

#[test]
fn issues_scored_against_flipped_labels() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = small_run(dir.path());
    let dynamics = Dynamics::read(
        &run_dir.join(DYNAMICS_PARQUET),
        Some(2),
        Some(SplitName::Train),
    )
    .unwrap();
    let rows = dynamics.get(2, SplitName::Train).unwrap();
    let mut by_loss: Vec<usize> = (0..rows.len()).collect();
    by_loss.sort_by(|&a, &b| rows.loss[b].total_cmp(&rows.loss[a]).then(a.cmp(&b)));

    // Flipped: 5 of the 10 highest losses and the 5 lowest. With -k 10 the candidates are the
    // 10 highest: 5 hits, precision 5/10, recall 5/10, F1 0.5; precision at k = 10 is 0.5.
    let mut flipped: Vec<usize> = by_loss[..5].to_vec();
    flipped.extend(&by_loss[by_loss.len() - 5..]);
    std::fs::write(
        run_dir.join("noise.json"),
        serde_json::json!({ "flipped": flipped }).to_string(),
    )
    .unwrap();
    // noise.json counts only for a run that was trained with --label-noise.
    let mut info = toploss_data::run::RunInfo::read(&run_dir).unwrap();
    info.config["label_noise"] = serde_json::json!(0.1);
    info.write(&run_dir).unwrap();
    let (code, stdout, stderr) = run(toploss()
        .arg("issues")
        .arg(&run_dir)
        .args(["--method", "loss", "-k", "10"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout
            .contains("5 of 10 candidates are flipped · precision 0.500 · recall 0.500 · F1 0.500"),
        "{stdout}"
    );
    assert!(stdout.contains("precision at k = 10: 0.500"), "{stdout}");
}

#[test]
fn issues_rejects_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = small_run(dir.path());
    let cases: [(&[&str], &str); 4] = [
        (&["--method", "aum", "--split", "test"], "--split train"),
        (&["--method", "loss", "-k", "0"], "-k 0"),
        (&["--method", "loss", "--epoch", "9"], "epochs 1 to 2"),
        (
            &["--method", "confident-learning", "--epoch", "1"],
            "--save-probs all",
        ),
    ];
    for (args, message) in cases {
        let (code, _, stderr) = run(toploss().arg("issues").arg(&run_dir).args(args));
        assert_eq!(code, 1, "{args:?}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }

    // An existing output folder is refused without --overwrite, accepted with it.
    let out = dir.path().join("taken");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("mine.txt"), "keep").unwrap();
    let (code, _, stderr) = run(toploss()
        .arg("issues")
        .arg(&run_dir)
        .args(["--method", "margin", "--out"])
        .arg(&out));
    assert_eq!(code, 1);
    assert!(stderr.contains("--overwrite"), "{stderr}");
    let (code, _, stderr) = run(toploss()
        .arg("issues")
        .arg(&run_dir)
        .args(["--method", "margin", "--overwrite", "--out"])
        .arg(&out));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        std::fs::read_to_string(out.join("mine.txt")).unwrap(),
        "keep"
    );
}

#[test]
fn confusion_of_run_counts_every_test_sample() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = small_run(dir.path());
    let (code, stdout, stderr) = run(toploss().arg("confusion").arg(&run_dir));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("actual \\ predicted"), "{stdout}");
    assert!(stdout.contains("(100 samples)"), "{stdout}");

    // Table rows 1..=10 hold the counts; they add up to the 100 test samples.
    let total: u64 = stdout
        .lines()
        .skip(1)
        .take(10)
        .flat_map(|line| {
            line.split_whitespace()
                .skip(1)
                .map(|v| v.parse::<u64>().unwrap())
        })
        .sum();
    assert_eq!(total, 100);
    let png = run_dir.join("confusion/test-e02.png");
    assert!(image::open(&png).unwrap().width() > 0);
}

// ---------------------------------------------------------------------------------------------
// toploss score on hand-made files

/// Six samples, three classes. Sample 1 is given label 0 but confidently class 1; sample 5 is
/// given 2 but predicted 1 without confidence.
///
/// Thresholds (mean p of each given class): t0 = (0.8 + 0.1) / 2 = 0.45, t1 = (0.7 + 0.7) / 2
/// = 0.7, t2 = (0.8 + 0.3) / 2 = 0.55. Confident classes (p_j >= t_j): s0 {0}, s1 {1}, s2 {1},
/// s3 {1}, s4 {2}, s5 none. So the confident joint is [[1, 1, 0], [0, 2, 0], [0, 0, 1]], only
/// sample 1 lies off its diagonal, and every pruning filter flags [1] alone. The argmax differs
/// from the given label for samples 1 (p_y 0.1) and 5 (p_y 0.3).
const PROBS: [[f64; 3]; 6] = [
    [0.8, 0.1, 0.1],
    [0.1, 0.8, 0.1],
    [0.1, 0.7, 0.2],
    [0.2, 0.7, 0.1],
    [0.1, 0.1, 0.8],
    [0.3, 0.4, 0.3],
];
const LABELS: [u8; 6] = [0, 0, 1, 1, 2, 2];

fn probs_array() -> Array2<f64> {
    Array2::from_shape_fn((6, 3), |(i, j)| PROBS[i][j])
}

fn write_npy_inputs(dir: &Path) -> (PathBuf, PathBuf) {
    let predictions = dir.join("probs.npy");
    let labels = dir.join("labels.npy");
    ndarray_npy::write_npy(&predictions, &probs_array()).unwrap();
    ndarray_npy::write_npy(&labels, &Array1::from(LABELS.to_vec())).unwrap();
    (predictions, labels)
}

fn score(predictions: &Path, labels: &Path, out: &Path, extra: &[&str]) -> (i32, String, String) {
    run(toploss()
        .arg("score")
        .arg("--predictions")
        .arg(predictions)
        .arg("--labels")
        .arg(labels)
        .arg("--out")
        .arg(out)
        .args(extra))
}

#[test]
fn score_filters_match_hand_computation_and_core() {
    let dir = tempfile::tempdir().unwrap();
    let (predictions, labels) = write_npy_inputs(dir.path());
    let flat: Vec<f64> = PROBS.iter().flatten().copied().collect();
    let given: Vec<u32> = LABELS.iter().map(|&l| u32::from(l)).collect();

    let cases = [
        ("prune-by-noise-rate", Filter::PruneByNoiseRate, vec![1]),
        ("prune-by-class", Filter::PruneByClass, vec![1]),
        ("both", Filter::Both, vec![1]),
        ("confident-learning", Filter::ConfidentLearning, vec![1]),
        ("predicted-neq-given", Filter::PredictedNeqGiven, vec![1, 5]),
    ];
    for (name, filter, expected) in cases {
        let out = dir.path().join(name);
        let (code, stdout, stderr) = score(&predictions, &labels, &out, &["--filter", name]);
        assert_eq!(code, 0, "{name}: {stderr}");
        let issues = read_issues(&out.join("issues.csv"));
        assert_eq!(ids(&issues), expected, "{name}");

        let options = LabelIssueOptions {
            filter,
            ..LabelIssueOptions::default()
        };
        let core =
            find_label_issues_ranked(&flat, &given, 3, &options, Ranking::SelfConfidence).unwrap();
        assert_eq!(ids(&issues), core, "{name}");
        assert!(
            stdout.contains(&format!("{} candidates found", expected.len())),
            "{stdout}"
        );
    }

    // Sample 1: given 0, suggested 1 (the argmax), score = self-confidence 0.1.
    let issues = read_issues(&dir.path().join("predicted-neq-given/issues.csv"));
    assert_eq!(
        issues[0],
        IssueRow {
            rank: 1,
            id: 1,
            label: 0,
            suggested: 1,
            score: 0.1
        }
    );
    assert_eq!(issues[1].suggested, 1);
    assert_eq!(issues[1].score, 0.3);
}

#[test]
fn score_writes_every_sample() {
    let dir = tempfile::tempdir().unwrap();
    let (predictions, labels) = write_npy_inputs(dir.path());
    let out = dir.path().join("out");
    let (code, _, stderr) = score(&predictions, &labels, &out, &["--method", "margin"]);
    assert_eq!(code, 0, "{stderr}");

    // Normalized margins: s1 0.1 - 0.8 = -0.7 and s5 0.3 - 0.4 = -0.1 are the negative ones.
    let issues = read_issues(&out.join("issues.csv"));
    assert_eq!(ids(&issues), vec![1, 5]);
    assert!((issues[0].score + 0.7).abs() < 1e-12);

    let scores = std::fs::read_to_string(out.join("scores.csv")).unwrap();
    let lines: Vec<&str> = scores.lines().collect();
    assert_eq!(
        lines[0],
        "id,label,predicted,score,candidate,loss,self_confidence,normalized_margin"
    );
    assert_eq!(lines.len(), 7);
    // Sample 0: p_y = 0.8, loss -ln 0.8, margin 0.8 - 0.1 = 0.7, not a candidate.
    let fields: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(&fields[..3], ["0", "0", "0"]);
    assert_eq!(fields[4], "0");
    assert!((fields[5].parse::<f64>().unwrap() + 0.8f64.ln()).abs() < 1e-12);
    assert!((fields[7].parse::<f64>().unwrap() - 0.7).abs() < 1e-12);
    assert_eq!(lines[2].split(',').nth(4), Some("1"));
}

#[test]
fn score_reads_csv_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let (npy_predictions, npy_labels) = write_npy_inputs(dir.path());

    // CSV with headers.
    let csv_predictions = dir.path().join("probs.csv");
    let mut text = String::from("p0,p1,p2\n");
    for row in PROBS {
        text.push_str(&format!("{},{},{}\n", row[0], row[1], row[2]));
    }
    std::fs::write(&csv_predictions, text).unwrap();
    let csv_labels = dir.path().join("labels.csv");
    let mut text = String::from("label\n");
    for label in LABELS {
        text.push_str(&format!("{label}\n"));
    }
    std::fs::write(&csv_labels, text).unwrap();

    // Parquet: K float columns, then one list<float> column; labels as one u8 column.
    let columns_predictions = dir.path().join("columns.parquet");
    let columns: Vec<(String, ArrayRef)> = (0..3)
        .map(|j| {
            let values: Vec<f64> = PROBS.iter().map(|row| row[j]).collect();
            (
                format!("p{j}"),
                Arc::new(Float64Array::from(values)) as ArrayRef,
            )
        })
        .collect();
    write_parquet(&columns_predictions, columns);
    let list_predictions = dir.path().join("list.parquet");
    let mut builder = ListBuilder::new(Float64Builder::new());
    for row in PROBS {
        builder.values().append_slice(&row);
        builder.append(true);
    }
    write_parquet(
        &list_predictions,
        vec![("probs".to_string(), Arc::new(builder.finish()) as ArrayRef)],
    );
    let parquet_labels = dir.path().join("labels.parquet");
    write_parquet(
        &parquet_labels,
        vec![(
            "label".to_string(),
            Arc::new(UInt8Array::from(LABELS.to_vec())) as ArrayRef,
        )],
    );

    let reference = dir.path().join("npy");
    let (code, _, stderr) = score(&npy_predictions, &npy_labels, &reference, &[]);
    assert_eq!(code, 0, "{stderr}");
    let expected = std::fs::read_to_string(reference.join("scores.csv")).unwrap();
    for (name, predictions, labels) in [
        ("csv", &csv_predictions, &csv_labels),
        ("columns", &columns_predictions, &parquet_labels),
        ("list", &list_predictions, &parquet_labels),
    ] {
        let out = dir.path().join(name);
        let (code, _, stderr) = score(
            predictions,
            labels,
            &out,
            &["--filter", "predicted-neq-given"],
        );
        assert_eq!(code, 0, "{name}: {stderr}");
        assert_eq!(
            ids(&read_issues(&out.join("issues.csv"))),
            vec![1, 5],
            "{name}"
        );
        let scores = std::fs::read_to_string(out.join("scores.csv")).unwrap();
        // Same per-sample scores as the .npy input, except the candidate column of the
        // different filter (sample 5).
        assert_eq!(scores.lines().count(), expected.lines().count(), "{name}");
        assert_eq!(scores.lines().nth(1), expected.lines().nth(1), "{name}");
    }
}

fn write_parquet(path: &Path, columns: Vec<(String, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[test]
fn score_detects_logits_and_warns_on_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.npy");
    ndarray_npy::write_npy(&labels, &Array1::from(LABELS.to_vec())).unwrap();

    // ln p are logits whose softmax is p again, so the result equals the probabilities'.
    let logits = dir.path().join("logits.npy");
    ndarray_npy::write_npy(&logits, &probs_array().mapv(f64::ln)).unwrap();
    let (code, _, stderr) = score(&logits, &labels, &dir.path().join("a"), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    assert_eq!(ids(&read_issues(&dir.path().join("a/issues.csv"))), vec![1]);

    // Probabilities declared as logits.
    let (predictions, _) = write_npy_inputs(dir.path());
    let (code, _, stderr) = score(
        &predictions,
        &labels,
        &dir.path().join("b"),
        &["--kind", "logits"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("--kind logits was given"), "{stderr}");

    // Softmax applied twice: 30 rows of softmax(softmax(x)), all inside [0.155, 0.576].
    let twice = dir.path().join("twice.npy");
    let squeezed = Array2::from_shape_fn((30, 3), |(i, j)| {
        let logits = [4.0 + i as f64 * 0.1, 0.0, -2.0];
        softmax(&softmax(&logits))[j]
    });
    ndarray_npy::write_npy(&twice, &squeezed).unwrap();
    let labels30 = dir.path().join("labels30.npy");
    ndarray_npy::write_npy(&labels30, &Array1::from_shape_fn(30, |i| (i % 3) as i64)).unwrap();
    let (code, _, stderr) = score(&twice, &labels30, &dir.path().join("c"), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("softmax applied twice"), "{stderr}");
}

fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = logits.iter().map(|x| (x - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

#[test]
fn score_rejects_bad_input_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (predictions, labels) = write_npy_inputs(dir.path());
    let path = |name: &str| dir.path().join(name);

    // Five labels for six rows.
    ndarray_npy::write_npy(path("five.npy"), &Array1::from(vec![0u16, 1, 2, 0, 1])).unwrap();
    // A label 3 with 3 classes.
    ndarray_npy::write_npy(path("label3.npy"), &Array1::from(vec![0i32, 0, 1, 1, 2, 3])).unwrap();
    // A NaN prediction.
    let mut with_nan = probs_array();
    with_nan[[2, 1]] = f64::NAN;
    ndarray_npy::write_npy(path("nan.npy"), &with_nan).unwrap();
    // A 3-D array.
    ndarray_npy::write_npy(path("cube.npy"), &Array3::<f32>::zeros((6, 3, 2))).unwrap();
    // One-hot labels.
    let one_hot = Array2::from_shape_fn((6, 3), |(i, j)| u8::from(LABELS[i] as usize == j));
    ndarray_npy::write_npy(path("onehot.npy"), &one_hot).unwrap();
    // Two labels on a line.
    std::fs::write(path("pairs.csv"), "0\n0,1\n1\n1\n2\n2\n").unwrap();
    // Per-class sigmoid outputs: values in [0, 1], rows not summing to 1.
    ndarray_npy::write_npy(
        path("sigmoid.npy"),
        &probs_array().mapv(|p| (p * 1.5).min(1.0)),
    )
    .unwrap();

    let cases: [(&Path, &Path, &[&str]); 7] = [
        (
            &predictions,
            &path("five.npy"),
            &["6 rows", "5 labels", "five.npy"],
        ),
        (
            &predictions,
            &path("label3.npy"),
            &["label3.npy", "label 3 of sample 5"],
        ),
        (
            &path("nan.npy"),
            &labels,
            &["nan.npy", "row 2, column 1 is NaN"],
        ),
        (&path("cube.npy"), &labels, &["cube.npy", "3-D"]),
        (
            &predictions,
            &path("onehot.npy"),
            &["onehot.npy", "multi-label"],
        ),
        (
            &predictions,
            &path("pairs.csv"),
            &["pairs.csv", "line 2", "multi-label"],
        ),
        (
            &path("sigmoid.npy"),
            &labels,
            &["sigmoid.npy", "multi-label"],
        ),
    ];
    for (index, (predictions, labels, messages)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("out{index}"));
        let (code, _, stderr) = score(predictions, labels, &out, &[]);
        assert_eq!(code, 1, "case {index}: {stderr}");
        for message in *messages {
            assert!(
                stderr.contains(message),
                "case {index}: {message:?} in {stderr}"
            );
        }
        assert!(!out.exists(), "case {index}: no output folder on bad input");
    }
}

#[test]
fn confusion_of_predictions_file() {
    let dir = tempfile::tempdir().unwrap();
    let (predictions, labels) = write_npy_inputs(dir.path());
    let classes = dir.path().join("classes.txt");
    std::fs::write(&classes, "cat\ndog\nbird\n").unwrap();
    let png = dir.path().join("confusion.png");
    let (code, stdout, stderr) = run(toploss()
        .arg("confusion")
        .arg("--predictions")
        .arg(&predictions)
        .arg("--labels")
        .arg(&labels)
        .arg("--classes")
        .arg(&classes)
        .arg("--out")
        .arg(&png));
    assert_eq!(code, 0, "{stderr}");

    // Argmax: [0, 1, 1, 1, 2, 1]. Rows (actual): cat [1, 1, 0], dog [0, 2, 0], bird [0, 1, 1].
    let lines: Vec<&str> = stdout.lines().collect();
    let counts = |line: &str| -> Vec<u64> {
        line.split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap())
            .collect()
    };
    assert!(
        lines[0].contains("cat") && lines[0].contains("bird"),
        "{stdout}"
    );
    assert_eq!(counts(lines[1]), vec![1, 1, 0]);
    assert_eq!(counts(lines[2]), vec![0, 2, 0]);
    assert_eq!(counts(lines[3]), vec![0, 1, 1]);
    assert!(stdout.contains("accuracy 66.67% (6 samples)"), "{stdout}");
    assert!(stdout.contains("  bird -> dog: 1\n"), "{stdout}");
    assert!(stdout.contains("  cat -> dog: 1\n"), "{stdout}");
    assert!(image::open(&png).unwrap().width() > 0);

    // Without --out there is nowhere to write.
    let (code, _, stderr) = run(toploss()
        .arg("confusion")
        .arg("--predictions")
        .arg(&predictions)
        .arg("--labels")
        .arg(&labels));
    assert_eq!(code, 1);
    assert!(stderr.contains("--out"), "{stderr}");
}

/// cleanlab 2.9.0's own ranked list for the MNIST test set, end to end through `score`.
#[test]
fn score_reproduces_cleanlab_oracle() {
    let Some(root) = std::env::var_os("TOPLOSS_SHARED_DATA") else {
        eprintln!("note: TOPLOSS_SHARED_DATA is unset; skipping the cleanlab oracle test");
        return;
    };
    let oracle = PathBuf::from(root).join("mnist/cleanlab-test-oracle");
    for name in ["pred_probs.npy", "labels.npy", "expected_cleanlab.json"] {
        assert!(
            oracle.join(name).is_file(),
            "TOPLOSS_SHARED_DATA is set but {} is missing",
            oracle.join(name).display()
        );
    }
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(oracle.join("expected_cleanlab.json")).unwrap(),
    )
    .unwrap();
    let expected: Vec<usize> = expected["results"]["prune_by_noise_rate|self_confidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_u64().unwrap() as usize)
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("oracle");
    let (code, stdout, stderr) = score(
        &oracle.join("pred_probs.npy"),
        &oracle.join("labels.npy"),
        &out,
        &[
            "--method",
            "confident-learning",
            "--filter",
            "prune-by-noise-rate",
            "--rank-by",
            "self-confidence",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    assert_eq!(ids(&read_issues(&out.join("issues.csv"))), expected);
    assert!(
        stdout.contains(&format!("{} candidates found", expected.len())),
        "{stdout}"
    );
}
