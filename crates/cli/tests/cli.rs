//! End-to-end tests of the `toploss` binary on the bundled MNIST copy (and on Fashion-MNIST
//! when `TOPLOSS_SHARED_DATA` names the shared data folder).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use toploss_data::run::{DYNAMICS_PARQUET, Dynamics, RunInfo, RunStatus, SplitName};

fn bundled_mnist() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    format!("mnist:{}", dir.display())
}

fn toploss() -> Command {
    Command::cargo_bin("toploss").unwrap()
}

/// Trains into `out` and returns the command's stdout.
fn train(out: &Path, data: &str, extra: &[&str]) -> String {
    let output = toploss()
        .args(["-q", "train", "--data", data, "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "train failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn stderr_of(command: &mut Command) -> (i32, String) {
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn train_two_epochs_writes_complete_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let stdout = train(
        &out,
        &bundled_mnist(),
        &[
            "--epochs",
            "2",
            "--train-limit",
            "3000",
            "--test-limit",
            "500",
        ],
    );
    assert!(stdout.contains("2 epochs"), "{stdout}");

    let info = RunInfo::read(&out).unwrap();
    assert_eq!(info.status, RunStatus::Complete);
    assert_eq!(info.epochs.len(), 2);
    assert_eq!(info.classes.len(), 10);
    assert_eq!(info.dataset.train_count, 3000);
    assert_eq!(info.dataset.test_count, 500);
    assert!(info.dataset.fingerprint.starts_with("sha256:"));
    assert_eq!(info.config["seed"], 42);
    assert_eq!(info.model.architecture, "shallow-cnn");
    assert_eq!(info.model.weights.as_deref(), Some("model.safetensors"));

    // Training loss falls from the first epoch to the second.
    assert!(
        info.epochs[1].train_loss < info.epochs[0].train_loss,
        "train loss {} then {}",
        info.epochs[0].train_loss,
        info.epochs[1].train_loss
    );

    // One row per (epoch, split, id): 2 x (3000 + 500).
    let dynamics = Dynamics::read(&out.join(DYNAMICS_PARQUET), None, None).unwrap();
    assert_eq!(dynamics.rows(), 2 * (3000 + 500));
    let train_rows = dynamics.get(2, SplitName::Train).unwrap();
    assert_eq!(train_rows.len(), 3000);
    assert!(train_rows.train_margin.iter().all(Option::is_some));
    let test_rows = dynamics.get(2, SplitName::Test).unwrap();
    assert!(test_rows.train_margin.iter().all(Option::is_none));

    // Mean of the recorded losses equals the epoch's train_loss in run.json.
    let mean = train_rows.loss.iter().map(|&l| f64::from(l)).sum::<f64>() / 3000.0;
    assert!((mean - info.epochs[1].train_loss).abs() < 1e-4);

    // The last epoch's probabilities are kept, the first epoch's removed.
    let probs = toploss_data::run::read_npy_f32(&out.join("probs/train-e02.npy")).unwrap();
    assert_eq!(probs.shape(), &[3000, 10]);
    assert!(!out.join("probs/train-e01.npy").exists());
    assert!(out.join("probs/test-e02.npy").exists());
    assert!(out.join("model.safetensors").metadata().unwrap().len() > 100_000);
}

#[test]
fn same_seed_gives_identical_losses() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--epochs",
        "1",
        "--train-limit",
        "1000",
        "--test-limit",
        "200",
        "--seed",
        "7",
    ];
    let read = |name: &str| {
        let out = dir.path().join(name);
        train(&out, &bundled_mnist(), &args);
        Dynamics::read(&out.join(DYNAMICS_PARQUET), None, None).unwrap()
    };
    let first = read("a");
    let second = read("b");
    for split in [SplitName::Train, SplitName::Test] {
        let a = &first.get(1, split).unwrap().loss;
        let b = &second.get(1, split).unwrap().loss;
        assert_eq!(a.len(), b.len());
        let identical = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(
            identical,
            "{split} losses differ between two runs with seed 7"
        );
    }
}

/// `--kernels burn` trains through burn's own convolution, ReLU and max-pool. Over four Adam
/// steps on real MNIST batches the per-sample losses agree with the fast kernels' up to f32
/// rounding, and differ in some bits, which shows that the flag changes the code that runs.
#[test]
fn burn_kernels_agree_with_fast_kernels() {
    let dir = tempfile::tempdir().unwrap();
    // 512 train images at batch 128: four steps.
    let args = [
        "--epochs",
        "1",
        "--train-limit",
        "512",
        "--test-limit",
        "200",
    ];
    let fast = dir.path().join("fast");
    train(&fast, &bundled_mnist(), &args);
    let burn = dir.path().join("burn");
    train(
        &burn,
        &bundled_mnist(),
        &[&args[..], &["--kernels", "burn"]].concat(),
    );

    // run.json names the kernels only when they are not the default.
    assert_eq!(RunInfo::read(&burn).unwrap().config["kernels"], "burn");
    assert!(
        RunInfo::read(&fast)
            .unwrap()
            .config
            .get("kernels")
            .is_none()
    );

    // The MLP has no fast kernels: the flag gives a warning and is not recorded.
    let mlp = dir.path().join("mlp");
    let (code, stderr) = stderr_of(
        toploss()
            .args(["train", "--data", &bundled_mnist(), "--model", "mlp"])
            .args(["--kernels", "burn", "--out"])
            .arg(&mlp)
            .args(args),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("--kernels burn has no effect with --model mlp"),
        "{stderr}"
    );
    assert!(RunInfo::read(&mlp).unwrap().config.get("kernels").is_none());

    let losses = |out: &Path| {
        let dynamics = Dynamics::read(&out.join(DYNAMICS_PARQUET), None, None).unwrap();
        let mut all = dynamics.get(1, SplitName::Train).unwrap().loss.clone();
        all.extend(&dynamics.get(1, SplitName::Test).unwrap().loss);
        all
    };
    let (fast, burn) = (losses(&fast), losses(&burn));
    assert_eq!(fast.len(), 712);
    assert!(
        fast.iter()
            .zip(&burn)
            .any(|(a, b)| a.to_bits() != b.to_bits()),
        "--kernels burn gave the same bits as the fast kernels: the flag had no effect"
    );
    // Measured: at most 2.3e-7 of max(1, loss). The bound leaves 40x room for another
    // order of f32 sums, and a wrong gradient moves the weights by far more in four steps.
    // Longer runs part further (see docs/benchmarks.md, "Accuracy with the fast kernels").
    let worst = fast
        .iter()
        .zip(&burn)
        .map(|(a, b)| (a - b).abs() / a.abs().max(1.0))
        .fold(0f32, f32::max);
    assert!(
        worst < 1e-5,
        "losses differ by up to {worst} of max(1, loss)"
    );
}

/// A run.json whose class list is shorter than the labels in dynamics.parquet (files of two
/// runs mixed) gives an error naming the file, not a panic, and `issues` writes nothing.
#[test]
fn short_class_list_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train(
        &run,
        &bundled_mnist(),
        &[
            "--epochs",
            "1",
            "--train-limit",
            "300",
            "--test-limit",
            "100",
        ],
    );
    let run_json = run.join("run.json");
    let mut info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&run_json).unwrap()).unwrap();
    info["classes"] = serde_json::json!(["0", "1", "2", "3", "4"]);
    std::fs::write(&run_json, serde_json::to_string(&info).unwrap()).unwrap();

    for command in [
        vec!["top", "-k", "3", "--no-table"],
        vec!["issues", "--method", "loss"],
        vec!["confusion"],
    ] {
        let (code, stderr) = stderr_of(toploss().args(&command[..1]).arg(&run).args(&command[1..]));
        assert_eq!(code, 1, "{command:?}: {stderr}");
        assert!(stderr.contains("dynamics.parquet"), "{command:?}: {stderr}");
        assert!(
            stderr.contains("run.json lists 5 classes"),
            "{command:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{command:?}: {stderr}");
    }
    assert!(!run.join("issues").exists());
}

#[test]
fn existing_output_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let (code, stderr) = stderr_of(
        toploss()
            .args(["train", "--data", &bundled_mnist(), "--out"])
            .arg(dir.path()),
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("--overwrite"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn truncated_dataset_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    for name in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        std::fs::copy(source.join(name), dir.path().join(name)).unwrap();
    }
    // Keep the gzip header and a little of the stream: the file is truncated.
    let labels = dir.path().join("t10k-labels-idx1-ubyte.gz");
    let bytes = std::fs::read(&labels).unwrap();
    std::fs::write(&labels, &bytes[..100]).unwrap();

    let (code, stderr) = stderr_of(toploss().args([
        "train",
        "--data",
        &format!("mnist:{}", dir.path().display()),
        "--out",
        &dir.path().join("run").display().to_string(),
    ]));
    assert_eq!(code, 1);
    assert!(stderr.contains("t10k-labels-idx1-ubyte.gz"), "{stderr}");
    assert!(!dir.path().join("run").exists());
}

#[test]
fn invalid_options_exit_with_usage_or_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (code, stderr) = stderr_of(toploss().args([
        "train",
        "--data",
        &bundled_mnist(),
        "--label-smoothing",
        "1.5",
        "--out",
        &out.display().to_string(),
    ]));
    assert_eq!(code, 1);
    assert!(stderr.contains("--label-smoothing 1.5"), "{stderr}");

    let (code, _) = stderr_of(toploss().args(["train", "--no-such-flag"]));
    assert_eq!(code, 2);
}

/// Trains the tiny run shared by the `top` tests.
fn small_run(dir: &Path) -> PathBuf {
    let out = dir.join("run");
    train(
        &out,
        &bundled_mnist(),
        &[
            "--epochs",
            "1",
            "--train-limit",
            "600",
            "--test-limit",
            "100",
            "--model",
            "mlp",
        ],
    );
    out
}

#[test]
fn top_writes_grid_and_csv_in_rank_order() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path());
    let png = dir.path().join("grid.png");
    let csv = dir.path().join("top.csv");
    let output = toploss()
        .arg("top")
        .arg(&run)
        .args(["-k", "7", "--out"])
        .arg(&png)
        .arg("--csv")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(output.status.success());

    let image = image::open(&png).unwrap();
    assert!(image.width() > 0);
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "rank,id,label,predicted,loss,p_label,p_predicted");
    assert_eq!(lines.len(), 8);

    // The CSV ranks the 7 largest losses of the last epoch, highest first.
    let dynamics =
        Dynamics::read(&run.join(DYNAMICS_PARQUET), Some(1), Some(SplitName::Train)).unwrap();
    let rows = dynamics.get(1, SplitName::Train).unwrap();
    let mut expected: Vec<usize> = (0..rows.len()).collect();
    expected.sort_by(|&a, &b| rows.loss[b].total_cmp(&rows.loss[a]).then(a.cmp(&b)));
    for (line, &id) in lines[1..].iter().zip(&expected) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields[1].parse::<usize>().unwrap(), id, "{line}");
    }
}

#[test]
fn top_k_beyond_split_shows_all() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path());
    let csv = dir.path().join("all.csv");
    let output = toploss()
        .arg("top")
        .arg(&run)
        .args(["-k", "1000", "--split", "test", "--no-table", "--csv"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("-k 1000 is more than the 100"), "{stderr}");
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count() - 1;
    assert_eq!(rows, 100);
}

#[test]
fn top_rejects_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path());
    let cases: [(&[&str], &str); 4] = [
        (&["-k", "0"], "-k 0"),
        (&["--class", "Seven"], "unknown class \"Seven\""),
        (&["--epoch", "3"], "epochs 1 to 1"),
        (&["--epoch", "first"], "--epoch \"first\""),
    ];
    for (args, message) in cases {
        let (code, stderr) = stderr_of(toploss().arg("top").arg(&run).args(args));
        assert_eq!(code, 1, "{args:?}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let (code, stderr) = stderr_of(toploss().arg("top").arg(dir.path()));
    assert_eq!(code, 1);
    assert!(stderr.contains("run.json"), "{stderr}");
}

#[test]
fn top_class_filter_keeps_only_that_label() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path());
    let csv = dir.path().join("sevens.csv");
    let status = toploss()
        .arg("top")
        .arg(&run)
        .args([
            "-k",
            "20",
            "--class",
            "7",
            "--smallest",
            "--no-table",
            "--csv",
        ])
        .arg(&csv)
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut previous = f32::NEG_INFINITY;
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields[2], "7", "{line}");
        let loss: f32 = fields[4].parse().unwrap();
        assert!(loss >= previous, "--smallest must rank ascending: {line}");
        previous = loss;
    }
}

/// Fashion-MNIST from the shared data folder: class names with spaces and slashes.
#[test]
fn fashion_mnist_trains_and_filters_by_name() {
    let Some(root) = std::env::var_os("TOPLOSS_SHARED_DATA") else {
        eprintln!("note: TOPLOSS_SHARED_DATA is unset; skipping the Fashion-MNIST test");
        return;
    };
    let fashion = PathBuf::from(root).join("fashion-mnist");
    assert!(
        fashion.join("train-images-idx3-ubyte.gz").is_file(),
        "TOPLOSS_SHARED_DATA is set but {} has no Fashion-MNIST files",
        fashion.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    train(
        &out,
        &format!("fashion-mnist:{}", fashion.display()),
        &[
            "--epochs",
            "1",
            "--train-limit",
            "2000",
            "--test-limit",
            "300",
        ],
    );
    let info = RunInfo::read(&out).unwrap();
    assert_eq!(info.classes[0], "T-shirt/top");
    assert_eq!(info.classes[9], "Ankle boot");

    let output = toploss()
        .arg("top")
        .arg(&out)
        .args(["-k", "4", "--class", "Ankle boot"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Ankle boot"), "{stdout}");
}

#[test]
fn folds_write_out_of_fold_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    train(
        &out,
        &bundled_mnist(),
        &[
            "--epochs",
            "1",
            "--train-limit",
            "600",
            "--test-limit",
            "50",
            "--model",
            "mlp",
            "--folds",
            "3",
        ],
    );
    let probs = toploss_data::run::read_npy_f32(&out.join("oof_probs.npy")).unwrap();
    assert_eq!(probs.shape(), &[600, 10]);
    for (id, row) in probs.rows().into_iter().enumerate() {
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "row {id} sums to {sum}");
    }

    // Out-of-fold rows differ from the in-sample probabilities of the full model.
    let in_sample = toploss_data::run::read_npy_f32(&out.join("probs/train-e01.npy")).unwrap();
    assert_ne!(probs, in_sample);
    assert_eq!(RunInfo::read(&out).unwrap().config["folds"], 3);
}

#[test]
fn top_grid_is_capped_but_csv_lists_all() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path());
    let csv = dir.path().join("all.csv");
    let output = toploss()
        .arg("top")
        .arg(&run)
        .args(["-k", "100000", "--no-table", "--csv"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the grid shows the first 400 of 600"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("train-e01-top-400.png"), "{stdout}");
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count() - 1;
    assert_eq!(rows, 600);
}

#[test]
fn top_checks_csv_folder_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path());
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let png = dir.path().join("grid.png");
    let (code, stderr) = stderr_of(
        toploss()
            .arg("top")
            .arg(&run)
            .arg("--out")
            .arg(&png)
            .arg("--csv")
            .arg(file.join("x.csv")),
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("is a file, not a folder"), "{stderr}");
    assert!(!png.exists(), "grid written before the CSV check");
}

#[test]
fn resnet_small_trains_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("resnet");
    train(
        &out,
        &bundled_mnist(),
        &[
            "--model",
            "resnet-small",
            "--epochs",
            "1",
            "--train-limit",
            "256",
            "--test-limit",
            "64",
            "--batch-size",
            "32",
        ],
    );
    let info = RunInfo::read(&out).unwrap();
    assert_eq!(info.status, RunStatus::Complete);
    assert_eq!(info.model.architecture, "resnet-small");
    let dynamics = Dynamics::read(&out.join(DYNAMICS_PARQUET), None, None).unwrap();
    assert_eq!(dynamics.rows(), 256 + 64);
    let rows = dynamics.get(1, SplitName::Train).unwrap();
    assert!(rows.loss.iter().all(|loss| loss.is_finite()));
}
