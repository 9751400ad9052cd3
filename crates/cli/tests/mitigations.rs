//! `train --relabel`, `--discard`, `--label-noise` and `--seeds` on the bundled MNIST.

use std::path::Path;

use assert_cmd::Command;
use toploss_data::run::{DYNAMICS_PARQUET, Dynamics, RunInfo, SplitName};

fn bundled_mnist() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    format!("mnist:{}", dir.display())
}

/// Flags of a run small enough for a test: 1 epoch, 500 train and 50 test images, the MLP.
const SMALL: [&str; 8] = [
    "--epochs",
    "1",
    "--train-limit",
    "500",
    "--test-limit",
    "50",
    "--model",
    "mlp",
];

fn train(out: &Path, extra: &[&str]) -> (i32, String) {
    let output = Command::cargo_bin("toploss")
        .unwrap()
        .args(["-q", "train", "--data", &bundled_mnist(), "--out"])
        .arg(out)
        .args(SMALL)
        .args(extra)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn train_rows(out: &Path) -> toploss_data::run::SplitDynamics {
    let dynamics =
        Dynamics::read(&out.join(DYNAMICS_PARQUET), Some(1), Some(SplitName::Train)).unwrap();
    dynamics.get(1, SplitName::Train).unwrap().clone()
}

#[test]
fn relabel_and_discard_from_one_file() {
    let dir = tempfile::tempdir().unwrap();
    // MNIST train ids 0..3 are labelled 5, 0, 4, 1.
    let corrections = dir.path().join("corrections.csv");
    std::fs::write(
        &corrections,
        "id,action,new_label,note\n0,relabel,3,looks like a 3\n1,relabel,7,\n2,discard,,smudge\n3,discard,,\n4,keep,,\n",
    )
    .unwrap();
    let out = dir.path().join("run");
    let file = corrections.display().to_string();
    let (code, stderr) = train(&out, &["--relabel", &file, "--discard", &file]);
    assert_eq!(code, 0, "{stderr}");

    let rows = train_rows(&out);
    assert_eq!(&rows.label[..5], &[3, 7, 4, 1, 9]);
    // Discarded ids never trained (no in-loop margin) but are still scored.
    assert_eq!(rows.train_margin[2], None);
    assert_eq!(rows.train_margin[3], None);
    assert!(rows.train_margin[0].is_some());
    assert!(rows.loss[2].is_finite());
    assert_eq!(rows.len(), 500);

    let info = RunInfo::read(&out).unwrap();
    assert_eq!(info.config["relabelled"], 2);
    assert_eq!(info.config["discarded"], 2);
}

#[test]
fn bad_correction_lines_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "id,action,new_label,note\n1,keep,,\n900,discard,,\n",
            "line 3",
            "900",
        ),
        (
            "id,action,new_label,note\n1,relabel,eleven,\n",
            "line 2",
            "eleven",
        ),
        (
            "id,action,new_label,note\n5,discard,,\n5,keep,,\n",
            "line 3",
            "line 2",
        ),
    ];
    for (index, (text, line, value)) in cases.into_iter().enumerate() {
        let file = dir.path().join(format!("bad{index}.csv"));
        std::fs::write(&file, text).unwrap();
        let out = dir.path().join(format!("run{index}"));
        let (code, stderr) = train(&out, &["--discard", &file.display().to_string()]);
        assert_eq!(code, 1, "{text}");
        assert!(stderr.contains(&file.display().to_string()), "{stderr}");
        assert!(stderr.contains(line), "{text}: {stderr}");
        assert!(stderr.contains(value), "{text}: {stderr}");
        assert!(!out.join("run.json").exists(), "nothing trained for {text}");
    }
}

#[test]
fn corrections_from_other_dataset_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("old-run");
    let (code, stderr) = train(&run, &[]);
    assert_eq!(code, 0, "{stderr}");

    // Pretend the old run was trained on other files.
    let mut info = RunInfo::read(&run).unwrap();
    info.dataset.fingerprint = "sha256:0000".into();
    info.write(&run).unwrap();
    let corrections = run.join("corrections.csv");
    std::fs::write(&corrections, "id,action,new_label,note\n1,discard,,\n").unwrap();

    let (code, stderr) = train(
        &dir.path().join("new-run"),
        &["--discard", &corrections.display().to_string()],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("fingerprint"), "{stderr}");
    assert!(stderr.contains("sha256:0000"), "{stderr}");
}

#[test]
fn label_noise_flips_and_records_exact_count() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (code, stderr) = train(
        &out,
        &[
            "--label-noise",
            "0.1",
            "--noise-kind",
            "pair",
            "--noise-seed",
            "4",
        ],
    );
    assert_eq!(code, 0, "{stderr}");

    let noise: toploss_data::LabelNoise =
        serde_json::from_slice(&std::fs::read(out.join("noise.json")).unwrap()).unwrap();
    assert_eq!(noise.flipped.len(), 50); // 10% of 500
    let rows = train_rows(&out);
    for ((&id, &old), &new) in noise
        .flipped
        .iter()
        .zip(&noise.original_labels)
        .zip(&noise.noisy_labels)
    {
        assert_eq!(new, (old + 1) % 10);
        assert_eq!(
            rows.label[id as usize], new,
            "id {id} trained with the noisy label"
        );
    }
    let info = RunInfo::read(&out).unwrap();
    assert_eq!(info.config["label_noise"], 0.1);
    assert_eq!(info.config["noise_kind"], "pair");
}

#[test]
fn seeds_make_one_run_per_seed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("group");
    let (code, stderr) = train(&out, &["--seeds", "2", "--seed", "10"]);
    assert_eq!(code, 0, "{stderr}");
    let first = RunInfo::read(&out.join("seed-10")).unwrap();
    let second = RunInfo::read(&out.join("seed-11")).unwrap();
    assert_eq!(first.config["seed"], 10);
    assert_eq!(second.config["seed"], 11);
    assert_ne!(
        train_rows(&out.join("seed-10")).loss,
        train_rows(&out.join("seed-11")).loss
    );

    // A group of other seeds over the same folder warns about the runs it does not replace.
    let (code, stderr) = train(&out, &["--seeds", "2", "--seed", "11", "--overwrite"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("also contains seed-10, from"), "{stderr}");
    assert!(stderr.contains("toploss compare"), "{stderr}");

    // compare warns when a copy of a run makes one seed count twice.
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    std::fs::copy(out.join("seed-11/run.json"), copy.join("run.json")).unwrap();
    let output = Command::cargo_bin("toploss")
        .unwrap()
        .arg("compare")
        .arg(out.join("seed-11"))
        .arg(&copy)
        .arg("--out")
        .arg(dir.path().join("compare.png"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("has 2 runs with seed 11"), "{stderr}");
}

#[test]
fn invalid_noise_rate_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = train(&dir.path().join("run"), &["--label-noise", "1.5"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--label-noise 1.5"), "{stderr}");
}

#[test]
fn overwrite_removes_files_of_the_old_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (code, stderr) = train(&out, &["--label-noise", "0.1"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.join("noise.json").exists());
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    // A file of the user's in probs/, and one named like the probabilities of an epoch this
    // run will not reach.
    std::fs::write(out.join("probs/my-analysis.npy"), "mine").unwrap();
    std::fs::write(out.join("probs/test-e07.npy"), "stale").unwrap();
    std::fs::write(out.join("report.html"), "earlier").unwrap();

    let (code, stderr) = train(&out, &["--overwrite"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("keeps report.html from the earlier run"),
        "{stderr}"
    );
    assert!(
        !out.join("noise.json").exists(),
        "stale noise.json left behind"
    );
    assert!(!out.join("probs/test-e07.npy").exists());
    for mine in ["notes.txt", "probs/my-analysis.npy"] {
        assert_eq!(std::fs::read_to_string(out.join(mine)).unwrap(), "mine");
    }
    assert!(RunInfo::read(&out).unwrap().config["label_noise"].is_null());
}

#[test]
fn invalid_folds_rejected_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (code, stderr) = train(&out, &["--folds", "1"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--folds 1"), "{stderr}");
    assert!(!out.join("run.json").exists(), "nothing trained");

    // The warning about --test-limit comes before the check of --folds, and shows despite -q,
    // which hides only progress and status lines.
    let output = Command::cargo_bin("toploss")
        .unwrap()
        .args(["-q", "train", "--data", &bundled_mnist(), "--out"])
        .arg(&out)
        .args(["--test-limit", "999999", "--folds", "1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--test-limit 999999 is more than the 10000 samples"),
        "{stderr}"
    );
}

#[test]
fn relabel_beyond_train_limit_names_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let fixes = dir.path().join("fixes.csv");
    std::fs::write(&fixes, "id,action,new_label,note\n1500,relabel,3,\n").unwrap();
    let out = dir.path().join("run");
    // SMALL keeps the first 500 train images, so id 1500 is beyond the limit.
    let (code, stderr) = train(&out, &["--relabel", fixes.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--train-limit 500 keeps only"), "{stderr}");
    assert!(stderr.contains("id 1500 is out of range"), "{stderr}");
    assert!(!out.join("run.json").exists());
}

#[test]
fn failed_run_is_marked_failed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (code, stderr) = train(&out, &["--lr", "1e12"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("training loss became"), "{stderr}");
    let info = RunInfo::read(&out).unwrap();
    assert_eq!(info.status, toploss_data::run::RunStatus::Failed);

    // The run failed in its first epoch: top reports that instead of asking to wait.
    let output = Command::cargo_bin("toploss")
        .unwrap()
        .arg("top")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stopped (failed)"), "{stderr}");
    assert!(!stderr.contains("wait"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn interrupted_run_is_marked_interrupted() {
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("toploss"))
        .args(["-q", "train", "--data", &bundled_mnist(), "--out"])
        .arg(&out)
        .args([
            "--epochs",
            "200",
            "--train-limit",
            "2000",
            "--test-limit",
            "50",
        ])
        .args(["--model", "mlp"])
        .spawn()
        .unwrap();

    // Wait for the first finished epoch, then send SIGINT as Ctrl-C would.
    let started = Instant::now();
    while RunInfo::read(&out)
        .map(|info| info.epochs.is_empty())
        .unwrap_or(true)
    {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no epoch finished"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));

    let info = RunInfo::read(&out).unwrap();
    assert_eq!(info.status, toploss_data::run::RunStatus::Interrupted);
    assert!(!info.epochs.is_empty());
    assert!(info.epochs.len() < 200);
    let dynamics = Dynamics::read(&out.join(DYNAMICS_PARQUET), None, None).unwrap();
    assert_eq!(dynamics.rows(), info.epochs.len() * (2000 + 50));
    // The weights after the last finished epoch are kept. The MLP for 28x28 images has
    // 784 x 256 + 256 + 256 x 128 + 128 + 128 x 10 + 10 = 235,146 f32 parameters, 940,584
    // bytes of tensor data plus the header.
    assert_eq!(info.model.weights.as_deref(), Some("model.safetensors"));
    let weights = std::fs::metadata(out.join("model.safetensors"))
        .unwrap()
        .len();
    assert!(weights > 940_584, "{weights} bytes");
}
