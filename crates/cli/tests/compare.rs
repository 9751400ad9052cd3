//! End-to-end tests of `toploss compare` on run folders written by hand, so that no training is
//! needed and every expected number can be worked out on paper.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::json;
use toploss_data::run::{DatasetInfo, EpochMetrics, ModelInfo, RunInfo, RunStatus};

const FINGERPRINT: &str = "sha256:1111";

fn toploss(dir: &Path) -> Command {
    let mut command = Command::cargo_bin("toploss").unwrap();
    command.current_dir(dir).env_remove("RUST_LOG");
    command
}

/// Writes `dir/run.json` with one epoch per `(test_accuracy, test_loss)` pair.
fn write_run(
    dir: &Path,
    config: serde_json::Value,
    fingerprint: &str,
    epochs: &[(f64, f64)],
    status: RunStatus,
) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let info = RunInfo {
        toploss_version: "0.1.0".into(),
        status,
        classes: (0..10).map(|c| c.to_string()).collect(),
        config,
        dataset: DatasetInfo {
            format: "mnist".into(),
            path: "data/mnist".into(),
            resolved_path: None,
            fingerprint: fingerprint.into(),
            train_count: 100,
            test_count: 50,
        },
        model: ModelInfo {
            architecture: "shallow-cnn".into(),
            channels: 1,
            height: 28,
            width: 28,
            weights: Some("model.safetensors".into()),
        },
        epochs: epochs
            .iter()
            .enumerate()
            .map(|(i, &(test_accuracy, test_loss))| EpochMetrics {
                epoch: i as u32 + 1,
                // Training loss is deliberately the reverse of test quality, so that a
                // comparison ranked by it would come out wrong.
                train_loss: test_accuracy,
                train_accuracy: 0.9,
                train_objective: test_accuracy,
                test_accuracy,
                test_loss,
                seconds: 1.0,
            })
            .collect(),
    };
    info.write(dir).unwrap();
    dir.to_path_buf()
}

/// Builds the `config` that `toploss train` records, trimmed to the keys that matter here.
fn config(seed: u64, label_smoothing: f64) -> serde_json::Value {
    json!({
        "data": "mnist:data/mnist",
        "model": "shallow-cnn",
        "epochs": 2,
        "batch_size": 128,
        "eval_batch_size": 500,
        "lr": 0.001,
        "seed": seed,
        "label_smoothing": label_smoothing,
        "threads": null,
        "label_noise": null,
    })
}

fn complete(dir: &Path, seed: u64, smoothing: f64, epochs: &[(f64, f64)]) -> PathBuf {
    write_run(
        dir,
        config(seed, smoothing),
        FINGERPRINT,
        epochs,
        RunStatus::Complete,
    )
}

/// Splits a fixed-width table line into its cells (columns are two or more spaces apart).
fn cells(line: &str) -> Vec<String> {
    line.split("  ")
        .map(str::trim)
        .filter(|cell| !cell.is_empty())
        .map(str::to_string)
        .collect()
}

/// Finds the table row whose first cell is `label`.
fn row(stdout: &str, label: &str) -> Vec<String> {
    stdout
        .lines()
        .map(cells)
        .find(|cells| cells.first().map(String::as_str) == Some(label))
        .unwrap_or_else(|| panic!("no row {label:?} in:\n{stdout}"))
}

/// Four configurations, run folders given interleaved:
///
/// - A, label_smoothing 0, seeds 1-3: final accuracy 97, 98, 99 % -> mean 98.00, sample sd
///   sqrt((1 + 0 + 1) / 2) = 1.00. Best accuracy 97, 98, 99.5 (seed 3 peaked at epoch 1) ->
///   mean 98.1667, sd sqrt((1.1667^2 + 0.1667^2 + 1.3333^2) / 2) = sqrt(3.1667 / 2) = 1.2583.
///   Final CE 0.10, 0.08, 0.06 -> 0.0800 ± 0.0200.
/// - B, 0.1, one seed: final 98.5 -> "98.50 ± n/a"; diff +0.50, spread unknown.
/// - C, 0.2, two seeds: final 99.0, 99.2 -> 99.10 ± 0.2 / sqrt(2) = 0.1414; CE 0.09, 0.11 ->
///   0.1000 ± 0.0141; diff +1.10 <= 1.00 + 0.14 -> within spread.
/// - D, 0.3, two seeds: final 99.5, 99.7 -> 99.60 ± 0.14; CE 0.05, 0.07 -> 0.0600 ± 0.0141;
///   diff +1.60 > 1.14 -> exceeds spread.
fn four_configurations(root: &Path) -> Vec<PathBuf> {
    let a1 = complete(&root.join("a1"), 1, 0.0, &[(0.95, 0.20), (0.97, 0.10)]);
    let b1 = complete(&root.join("b1"), 1, 0.1, &[(0.97, 0.12), (0.985, 0.07)]);
    let a2 = complete(&root.join("a2"), 2, 0.0, &[(0.96, 0.18), (0.98, 0.08)]);
    // Seed 3 ran with --threads 2, which must not split its configuration.
    let mut a3_config = config(3, 0.0);
    a3_config["threads"] = json!(2);
    let a3 = write_run(
        &root.join("a3"),
        a3_config,
        FINGERPRINT,
        &[(0.995, 0.15), (0.99, 0.06)],
        RunStatus::Complete,
    );
    let c1 = complete(&root.join("c1"), 1, 0.2, &[(0.96, 0.20), (0.990, 0.09)]);
    let c2 = complete(&root.join("c2"), 2, 0.2, &[(0.97, 0.20), (0.992, 0.11)]);
    let d1 = complete(&root.join("d1"), 1, 0.3, &[(0.96, 0.20), (0.995, 0.05)]);
    let d2 = complete(&root.join("d2"), 2, 0.3, &[(0.97, 0.20), (0.997, 0.07)]);
    vec![a1, b1, a2, a3, c1, c2, d1, d2]
}

#[test]
fn table_has_hand_computed_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let runs = four_configurations(dir.path());
    let output = toploss(dir.path())
        .arg("compare")
        .args(&runs)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");

    // Configurations in first-appearance order: A (a1), B (b1), C, D.
    let labels: Vec<String> = stdout
        .lines()
        .skip(1)
        .take(4)
        .map(|line| cells(line)[0].clone())
        .collect();
    assert_eq!(
        labels,
        [
            "label_smoothing=0",
            "label_smoothing=0.1",
            "label_smoothing=0.2",
            "label_smoothing=0.3"
        ]
    );

    let a = row(&stdout, "label_smoothing=0");
    assert_eq!(a[1], "3");
    assert_eq!(a[2], "98.00 ± 1.00");
    assert_eq!(a[3], "98.17 ± 1.26");
    assert_eq!(a[4], "0.0800 ± 0.0200");
    assert_eq!(a[5], "-");
    assert_eq!(a[6], "baseline");

    let b = row(&stdout, "label_smoothing=0.1");
    assert_eq!(b[1], "1");
    assert_eq!(b[2], "98.50 ± n/a");
    assert_eq!(b[3], "98.50 ± n/a");
    assert_eq!(b[4], "0.0700 ± n/a");
    assert_eq!(b[5], "+0.50");
    assert_eq!(b[6], "spread unknown (1 seed)");

    let c = row(&stdout, "label_smoothing=0.2");
    assert_eq!(c[1], "2");
    assert_eq!(c[2], "99.10 ± 0.14");
    assert_eq!(c[4], "0.1000 ± 0.0141");
    assert_eq!(c[5], "+1.10");
    assert_eq!(c[6], "within spread");

    let d = row(&stdout, "label_smoothing=0.3");
    assert_eq!(d[2], "99.60 ± 0.14");
    assert_eq!(d[4], "0.0600 ± 0.0141");
    assert_eq!(d[5], "+1.60");
    assert_eq!(d[6], "exceeds spread");

    assert!(
        stdout.contains("configurations differ in: label_smoothing\n"),
        "{stdout}"
    );
    assert!(stdout.contains("ignored config keys: seed, seeds, threads"));

    // The PNG goes to compare.png in the current folder by default and decodes.
    assert!(stdout.contains("wrote compare.png"), "{stdout}");
    let png = image::open(dir.path().join("compare.png")).unwrap();
    assert_eq!((png.width(), png.height()), (1300, 520));
}

#[test]
fn csv_holds_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let runs = four_configurations(dir.path());
    let csv_path = dir.path().join("out/compare.csv");
    let png_path = dir.path().join("out/curves.png");
    let output = toploss(dir.path())
        .arg("compare")
        .args(&runs)
        .arg("--csv")
        .arg(&csv_path)
        .arg("--out")
        .arg(&png_path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(image::open(&png_path).is_ok());
    assert!(!dir.path().join("compare.png").exists());

    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "configuration",
            "seeds",
            "final_accuracy_pct_mean",
            "final_accuracy_pct_sd",
            "best_accuracy_pct_mean",
            "best_accuracy_pct_sd",
            "final_test_ce_mean",
            "final_test_ce_sd",
            "diff_points",
            "vs_spread",
            "runs"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 4);
    let number =
        |record: &csv::StringRecord, column: usize| -> f64 { record[column].parse().unwrap() };
    let close = |a: f64, b: f64| (a - b).abs() < 1e-6;

    // Configuration A, worked out above `four_configurations`.
    let a = &records[0];
    assert_eq!(&a[0], "label_smoothing=0");
    assert_eq!(&a[1], "3");
    assert!(close(number(a, 2), 98.0), "{:?}", a);
    assert!(close(number(a, 3), 1.0), "{:?}", a);
    assert!(close(number(a, 4), 98.0 + 1.0 / 6.0), "{:?}", a);
    assert!(close(number(a, 5), (19.0f64 / 12.0).sqrt()), "{:?}", a);
    assert!(close(number(a, 6), 0.08));
    assert!(close(number(a, 7), 0.02));
    assert!(close(number(a, 8), 0.0));
    assert_eq!(&a[9], "baseline");
    let expected_runs = ["a1", "a2", "a3"]
        .map(|name| dir.path().join(name).display().to_string())
        .join(";");
    assert_eq!(&a[10], expected_runs);

    // B has one seed: its sd fields are empty.
    let b = &records[1];
    assert_eq!(&b[3], "");
    assert_eq!(&b[5], "");
    assert_eq!(&b[7], "");
    assert!(close(number(b, 8), 0.5));
    assert_eq!(&b[9], "spread unknown (1 seed)");

    assert_eq!(&records[2][9], "within spread");
    assert!(close(number(&records[2], 3), 0.2 / 2f64.sqrt()));
    assert_eq!(&records[3][9], "exceeds spread");
    assert!(close(number(&records[3], 8), 1.6));
}

#[test]
fn markdown_table_keeps_stdout_clean() {
    let dir = tempfile::tempdir().unwrap();
    let runs = four_configurations(dir.path());
    let output = toploss(dir.path())
        .arg("compare")
        .args(&runs)
        .arg("--markdown")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "| configuration | seeds | final acc. (%) | best acc. (%) | final test CE (nats) | \
         diff. (points) | vs spread |"
    );
    assert_eq!(lines[1], "|:--|--:|--:|--:|--:|--:|:--|");
    assert_eq!(
        lines[2],
        "| label_smoothing=0 | 3 | 98.00 ± 1.00 | 98.17 ± 1.26 | 0.0800 ± 0.0200 | - | baseline |"
    );
    assert!(stdout.contains("\n- configurations differ in: label_smoothing\n"));
    assert!(!stdout.contains("wrote"), "{stdout}");
    assert!(stderr.contains("wrote compare.png"), "{stderr}");
}

#[test]
fn group_folder_expands_and_skips_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let group = dir.path().join("ls0");
    // Seeds 1, 2 and 10 finished; seed 3 is still training; notes/ is not a run.
    complete(&group.join("seed-10"), 10, 0.0, &[(0.90, 0.3), (0.96, 0.1)]);
    complete(&group.join("seed-2"), 2, 0.0, &[(0.90, 0.3), (0.97, 0.1)]);
    complete(&group.join("seed-1"), 1, 0.0, &[(0.90, 0.3), (0.98, 0.1)]);
    write_run(
        &group.join("seed-3"),
        config(3, 0.0),
        FINGERPRINT,
        &[(0.5, 1.0)],
        RunStatus::Running,
    );
    std::fs::create_dir_all(group.join("notes")).unwrap();
    let single = complete(&dir.path().join("ls1"), 1, 0.1, &[(0.9, 0.3), (0.95, 0.2)]);

    let csv_path = dir.path().join("compare.csv");
    let output = toploss(dir.path())
        .args(["compare", "ls0"])
        .arg(&single)
        .arg("--csv")
        .arg(&csv_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");

    // The running seed is named in a warning and left out.
    assert!(stderr.contains("seed-3"), "{stderr}");
    assert!(stderr.contains("incomplete"), "{stderr}");

    // Finals 98, 97, 96 -> 97.00 ± 1.00 over 3 seeds, in natural folder order.
    let row = row(&stdout, "label_smoothing=0");
    assert_eq!(row[1], "3");
    assert_eq!(row[2], "97.00 ± 1.00");
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let first = reader.records().next().unwrap().unwrap();
    let expected = ["seed-1", "seed-2", "seed-10"]
        .map(|name| Path::new("ls0").join(name).display().to_string())
        .join(";");
    assert_eq!(&first[10], expected);
}

#[test]
fn run_listed_twice_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let group = dir.path().join("group");
    complete(&group.join("seed-1"), 1, 0.0, &[(0.97, 0.1)]);
    complete(&group.join("seed-2"), 2, 0.0, &[(0.99, 0.1)]);
    let output = toploss(dir.path())
        .args(["compare", "group", "group/seed-1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("more than once"), "{stderr}");
    // Finals 97 and 99 -> 98.00 ± 1.41 over 2 runs, one configuration.
    let row = row(&stdout, "all runs");
    assert_eq!(row[1], "2");
    assert_eq!(row[2], "98.00 ± 1.41");
}

#[test]
fn uneven_epoch_counts_warn() {
    let dir = tempfile::tempdir().unwrap();
    let short = complete(
        &dir.path().join("short"),
        1,
        0.0,
        &[(0.9, 0.3), (0.95, 0.2)],
    );
    let long = complete(
        &dir.path().join("long"),
        2,
        0.0,
        &[(0.9, 0.3), (0.95, 0.2), (0.97, 0.1)],
    );
    let output = toploss(dir.path())
        .arg("compare")
        .arg(&short)
        .arg(&long)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("different epoch counts"), "{stderr}");
    assert!(
        stderr.contains("short (2)") && stderr.contains("long (3)"),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = complete(&dir.path().join("run"), 1, 0.0, &[(0.9, 0.3)]);
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();

    // No RUN: a command-line error.
    let output = toploss(dir.path()).arg("compare").output().unwrap();
    assert_eq!(output.status.code(), Some(2));

    // A folder that is neither a run nor a group of runs is named.
    let output = toploss(dir.path())
        .arg("compare")
        .arg(&run)
        .arg("empty")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("empty is neither a run folder"), "{stderr}");

    // A missing folder is named.
    let output = toploss(dir.path())
        .args(["compare", "missing"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("run folder missing not found"), "{stderr}");

    // Only unfinished runs: nothing to compare.
    write_run(
        &dir.path().join("running"),
        config(1, 0.0),
        FINGERPRINT,
        &[(0.5, 1.0)],
        RunStatus::Running,
    );
    let output = toploss(dir.path())
        .args(["compare", "running"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no finished run"), "{stderr}");
}

#[test]
fn different_datasets_need_flag() {
    let dir = tempfile::tempdir().unwrap();
    let mnist = complete(&dir.path().join("mnist"), 1, 0.0, &[(0.97, 0.1)]);
    let mut fashion_config = config(1, 0.0);
    fashion_config["data"] = json!("fashion-mnist:data/fashion");
    let fashion = write_run(
        &dir.path().join("fashion"),
        fashion_config,
        "sha256:2222",
        &[(0.88, 0.4)],
        RunStatus::Complete,
    );

    let output = toploss(dir.path())
        .arg("compare")
        .arg(&mnist)
        .arg(&fashion)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&mnist.display().to_string()), "{stderr}");
    assert!(stderr.contains(&fashion.display().to_string()), "{stderr}");
    assert!(stderr.contains("--allow-different-data"), "{stderr}");

    // With the flag, each dataset is its own configuration, labelled by its data path.
    let output = toploss(dir.path())
        .arg("compare")
        .arg(&mnist)
        .arg(&fashion)
        .arg("--allow-different-data")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let fashion_row = row(&stdout, "data=fashion-mnist:data/fashion");
    // 88 - 97 = -9 points; both single runs, so the spread is unknown.
    assert_eq!(fashion_row[5], "-9.00");
    assert_eq!(fashion_row[6], "spread unknown (1 seed)");
}
