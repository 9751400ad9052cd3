//! `toploss score --onnx` end to end, on the ONNX fixtures that
//! scripts/onnx/export_mnist_cnn.py writes, and the bundled MNIST copy.
//!
//! The expected probabilities come from PyTorch (the shallow CNN) and NumPy (the linear
//! models), not from toploss.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use ndarray::Array2;
use ndarray_npy::ReadNpyExt;
use toploss_data::run::{DYNAMICS_PARQUET, Dynamics, RunInfo, SplitName, read_npy_f32};

/// Largest absolute difference allowed between toploss's and the reference probabilities.
const TOLERANCE: f32 = 1e-5;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx")
        .join(name)
}

fn bundled_mnist() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    format!("mnist:{}", dir.display())
}

fn toploss() -> Command {
    Command::cargo_bin("toploss").unwrap()
}

/// Runs `toploss score --onnx MODEL --data bundled MNIST --out OUT EXTRA...` and returns the
/// exit code and stderr.
fn score(model: &Path, out: &Path, extra: &[&str]) -> (i32, String) {
    let output = toploss()
        .args(["score", "--onnx"])
        .arg(model)
        .args(["--data", &bundled_mnist(), "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn read_expected(name: &str) -> Array2<f32> {
    let file = std::fs::File::open(fixture(name)).unwrap();
    Array2::<f32>::read_npy(file).unwrap()
}

/// Returns the largest absolute difference between two arrays of the same shape.
fn max_difference(actual: &Array2<f32>, expected: &Array2<f32>) -> f32 {
    assert_eq!(actual.shape(), expected.shape());
    actual
        .iter()
        .zip(expected)
        .map(|(a, e)| (a - e).abs())
        .fold(0.0, f32::max)
}

#[test]
fn cnn_probabilities_match_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (code, stderr) = score(
        &fixture("shallow_cnn.onnx"),
        &out,
        &["--train-limit", "100", "--test-limit", "1000"],
    );
    assert_eq!(code, 0, "{stderr}");

    let expected = read_expected("shallow_cnn_test1000_probs.npy");
    let actual = read_npy_f32(&out.join("probs/test-e01.npy")).unwrap();
    let difference = max_difference(&actual, &expected);
    eprintln!("shallow CNN, 1000 MNIST test images: max |toploss - PyTorch| = {difference:e}");
    assert!(difference <= TOLERANCE, "max difference {difference}");
    assert_eq!(
        read_npy_f32(&out.join("probs/train-e01.npy"))
            .unwrap()
            .shape(),
        &[100, 10]
    );

    // run.json: the model's file and hash, the dataset and one epoch.
    let info = RunInfo::read(&out).unwrap();
    assert_eq!(info.config["kind"], "logits");
    assert_eq!(info.config["input_name"], "images");
    assert_eq!(info.config["batch_size"], 256);
    let sha = info.config["onnx_sha256"].as_str().unwrap();
    assert!(sha.starts_with("sha256:"), "{sha}");
    assert_eq!(sha.len(), "sha256:".len() + 64, "{sha}");
    assert_eq!(info.dataset.train_count, 100);
    assert_eq!(info.dataset.test_count, 1000);
    assert!(info.dataset.fingerprint.starts_with("sha256:"));
    assert_eq!(info.classes.len(), 10);
    assert_eq!(info.epochs.len(), 1);

    // dynamics.parquet: epoch 1 of both splits, no training margin, and a test accuracy that
    // agrees with PyTorch's argmax.
    let dynamics = Dynamics::read(&out.join(DYNAMICS_PARQUET), None, None).unwrap();
    assert_eq!(dynamics.epochs(), vec![1]);
    assert_eq!(dynamics.get(1, SplitName::Train).unwrap().len(), 100);
    let test = dynamics.get(1, SplitName::Test).unwrap();
    assert_eq!(test.len(), 1000);
    assert!(test.train_margin.iter().all(Option::is_none));
    let correct = expected
        .rows()
        .into_iter()
        .zip(&test.label)
        .filter(|(row, label)| {
            let argmax = row
                .iter()
                .enumerate()
                .fold(0, |best, (j, &p)| if p > row[best] { j } else { best });
            argmax == **label as usize
        })
        .count();
    assert!((info.epochs[0].test_accuracy - correct as f64 / 1000.0).abs() < 1e-12);
    // A positive margin means the label wins, exactly when predicted == label.
    for id in 0..test.len() {
        assert_eq!(
            test.margin[id] > 0.0,
            test.predicted[id] == test.label[id],
            "test sample {id}"
        );
    }

    // The run folder works with the commands that read runs.
    for command in [
        vec!["top", "-k", "4", "--split", "test", "--no-table"],
        vec!["issues", "--method", "loss", "--split", "test", "-k", "5"],
        vec!["confusion"],
    ] {
        let output = toploss()
            .arg(command[0])
            .arg(&out)
            .args(&command[1..])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "toploss {command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn fixed_batch_of_one_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (code, stderr) = score(
        &fixture("linear_batch1.onnx"),
        &out,
        &["--train-limit", "3", "--test-limit", "50"],
    );
    assert_eq!(code, 0, "{stderr}");
    let expected = read_expected("linear_test50_probs.npy");
    let actual = read_npy_f32(&out.join("probs/test-e01.npy")).unwrap();
    let difference = max_difference(&actual, &expected);
    assert!(difference <= TOLERANCE, "max difference {difference}");
    let info = RunInfo::read(&out).unwrap();
    assert_eq!(info.config["batch_size"], 1);
    assert_eq!(info.config["input_name"], "pixels");
}

#[test]
fn softmax_output_read_as_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    // The same weights once with logits out, once with a Softmax node at the end. 50 test
    // images in runs of 7 leave a last, padded batch of 1.
    let logits_run = dir.path().join("logits");
    let (code, stderr) = score(
        &fixture("linear_batch1.onnx"),
        &logits_run,
        &["--train-limit", "3", "--test-limit", "50"],
    );
    assert_eq!(code, 0, "{stderr}");
    let probabilities_run = dir.path().join("probabilities");
    let (code, stderr) = score(
        &fixture("linear_softmax.onnx"),
        &probabilities_run,
        &[
            "--train-limit",
            "3",
            "--test-limit",
            "50",
            "--batch-size",
            "7",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");

    let info = RunInfo::read(&probabilities_run).unwrap();
    assert_eq!(info.config["kind"], "probabilities");
    assert_eq!(info.config["batch_size"], 7);
    let expected = read_expected("linear_test50_probs.npy");
    let actual = read_npy_f32(&probabilities_run.join("probs/test-e01.npy")).unwrap();
    let difference = max_difference(&actual, &expected);
    assert!(difference <= TOLERANCE, "max difference {difference}");

    // Loss and margin from probabilities equal those from logits.
    let read = |run: &Path| {
        Dynamics::read(&run.join(DYNAMICS_PARQUET), Some(1), Some(SplitName::Test)).unwrap()
    };
    let from_logits = read(&logits_run);
    let from_probabilities = read(&probabilities_run);
    let a = from_logits.get(1, SplitName::Test).unwrap();
    let b = from_probabilities.get(1, SplitName::Test).unwrap();
    for id in 0..50 {
        assert!(
            (a.loss[id] - b.loss[id]).abs() < 1e-4,
            "loss of sample {id}"
        );
        assert!(
            (a.margin[id] - b.margin[id]).abs() < 1e-4,
            "margin of sample {id}"
        );
        assert_eq!(
            a.predicted[id], b.predicted[id],
            "prediction of sample {id}"
        );
    }
}

#[test]
fn wrong_input_shape_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (code, stderr) = score(&fixture("rgb32.onnx"), &out, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("rgb32.onnx"), "{stderr}");
    assert!(stderr.contains("[batch, 3, 32, 32]"), "{stderr}");
    assert!(stderr.contains("3x32x32"), "{stderr}");
    assert!(stderr.contains("1x28x28"), "{stderr}");
    assert!(!out.join("run.json").exists());
}

#[test]
fn missing_model_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("absent.onnx");
    let (code, stderr) = score(&model, &dir.path().join("run"), &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("absent.onnx"), "{stderr}");
    assert!(stderr.contains("cannot read the ONNX model"), "{stderr}");
}

#[test]
fn corrupt_model_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("garbage.onnx");
    std::fs::write(&model, b"\x08\x07 this is not a protobuf model \xff\xff").unwrap();
    let (code, stderr) = score(&model, &dir.path().join("run"), &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("garbage.onnx"), "{stderr}");
    assert!(stderr.contains("not an ONNX model"), "{stderr}");

    // A truncated copy of the real model fails the same way.
    let bytes = std::fs::read(fixture("shallow_cnn.onnx")).unwrap();
    let truncated = dir.path().join("truncated.onnx");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let (code, stderr) = score(&truncated, &dir.path().join("run2"), &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("truncated.onnx"), "{stderr}");
}

#[test]
fn invalid_normalize_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture("linear_batch1.onnx");
    // Parse errors are usage errors (exit 2).
    for (value, expected) in [
        ("0.5", "expected MEAN,STD"),
        ("0.1,zero", "\"zero\" is not a number"),
        ("0.1,0", "standard deviation 0 is not above 0"),
    ] {
        let (code, stderr) = score(&model, &dir.path().join("run"), &["--normalize", value]);
        assert_eq!(code, 2, "--normalize {value}: {stderr}");
        assert!(stderr.contains(expected), "--normalize {value}: {stderr}");
    }

    // Three channel means for grayscale images fail once the images are known.
    let (code, stderr) = score(
        &model,
        &dir.path().join("run"),
        &[
            "--normalize",
            "0.4/0.5/0.6,0.2/0.2/0.2",
            "--test-limit",
            "5",
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("3 mean values"), "{stderr}");
    assert!(stderr.contains("1 channel"), "{stderr}");
}

#[test]
fn normalize_changes_the_input() {
    // (x - 0) / 0.5 doubles every pixel, so the linear model's logits change and the
    // probabilities no longer match the reference computed without normalization.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (code, stderr) = score(
        &fixture("linear_batch1.onnx"),
        &out,
        &[
            "--train-limit",
            "3",
            "--test-limit",
            "50",
            "--normalize",
            "0,0.5",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let expected = read_expected("linear_test50_probs.npy");
    let actual = read_npy_f32(&out.join("probs/test-e01.npy")).unwrap();
    assert!(max_difference(&actual, &expected) > 1e-3);
    let info = RunInfo::read(&out).unwrap();
    assert_eq!(info.config["normalize"], "0,0.5");
}

#[test]
fn unknown_input_name_lists_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = score(
        &fixture("linear_batch1.onnx"),
        &dir.path().join("run"),
        &["--input-name", "image"],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no input named \"image\""), "{stderr}");
    assert!(stderr.contains("\"pixels\""), "{stderr}");
}

#[test]
fn onnx_conflicts_with_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = score(
        &fixture("linear_batch1.onnx"),
        &dir.path().join("run"),
        &["--predictions", "p.npy"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--predictions"), "{stderr}");

    // --data alone belongs to --onnx.
    let (code, stderr) = {
        let output = toploss()
            .args(["score", "--data", &bundled_mnist(), "--out"])
            .arg(dir.path().join("run"))
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--onnx"), "{stderr}");
}
