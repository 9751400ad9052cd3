//! Tests of `toploss report` that read the page's embedded data; the browser test in
//! `e2e_report.rs` checks what the page draws from it.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;
use toploss_data::run::{DYNAMICS_PARQUET, Dynamics, SplitName};

fn bundled_mnist() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    format!("mnist:{}", dir.display())
}

fn toploss() -> Command {
    Command::cargo_bin("toploss").unwrap()
}

/// Trains a small MLP run of `epochs` epochs into `dir/name`.
fn small_run(dir: &Path, name: &str, epochs: u32, seed: u32) -> PathBuf {
    let out = dir.join(name);
    let output = toploss()
        .args(["-q", "train", "--data", &bundled_mnist(), "--out"])
        .arg(&out)
        .args([
            "--model",
            "mlp",
            "--train-limit",
            "500",
            "--test-limit",
            "200",
        ])
        .args(["--epochs", &epochs.to_string(), "--seed", &seed.to_string()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "train failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// Returns the JSON that the page embeds.
fn embedded_data(page: &str) -> Value {
    let start_tag = r#"<script type="application/json" id="report-data">"#;
    let start = page.find(start_tag).expect("the data element") + start_tag.len();
    let end = start + page[start..].find("</script>").expect("its end");
    serde_json::from_str(&page[start..end]).expect("valid JSON")
}

fn ids(value: &Value) -> Vec<usize> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn report_embeds_rankings_and_histories() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path(), "run", 2, 1);
    let output = toploss()
        .arg("report")
        .arg(&run)
        .args(["--max-k", "20"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("report.html"), "{stdout}");

    let page = std::fs::read_to_string(run.join("report.html")).unwrap();
    // Self-contained: nothing is loaded from another host.
    for pattern in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!page.contains(pattern), "the page loads {pattern}");
    }
    let data = embedded_data(&page);
    assert_eq!(data["epochs"], serde_json::json!([1, 2]));
    assert_eq!(data["kmax"], 20);
    let classes = data["classes"].as_array().unwrap().len();
    assert_eq!(classes, 10);

    let dynamics = Dynamics::read(&run.join(DYNAMICS_PARQUET), None, None).unwrap();
    for (index, split) in [SplitName::Train, SplitName::Test].into_iter().enumerate() {
        let part = &data["splits"][index];
        assert_eq!(part["name"], split.as_str());
        for (e, epoch) in [1u32, 2].into_iter().enumerate() {
            let rows = dynamics.get(epoch, split).unwrap();
            // Independent ranking: loss descending, ties by lower id (no NaN here).
            let mut expected: Vec<usize> = (0..rows.len()).collect();
            expected.sort_by(|&a, &b| rows.loss[b].total_cmp(&rows.loss[a]).then(a.cmp(&b)));
            assert_eq!(ids(&part["top"][e]["all"]), expected[..20].to_vec());
            let class3: Vec<usize> = expected
                .iter()
                .copied()
                .filter(|&id| rows.label[id] == 3)
                .take(20)
                .collect();
            assert_eq!(ids(&part["top"][e]["classes"][3]), class3);

            // The histogram counts every sample once; the confusion matrix too.
            let hist: u64 = part["hist"][e]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_u64().unwrap())
                .sum();
            assert_eq!(hist as usize, rows.len());
            let confusion = part["confusion"][e].as_array().unwrap();
            assert_eq!(confusion.len(), classes * classes);
            let wrong_3_as_5 = (0..rows.len())
                .filter(|&id| rows.label[id] == 3 && rows.predicted[id] == 5)
                .count();
            assert_eq!(
                confusion[3 * classes + 5].as_u64().unwrap() as usize,
                wrong_3_as_5
            );

            // The top sample's history contains its values of this epoch, rounded to 5 digits.
            let top_id = expected[0];
            let sample = &part["samples"][top_id.to_string()];
            let loss = sample["loss"][e].as_f64().unwrap();
            let recorded = f64::from(rows.loss[top_id]);
            assert!(
                (loss - recorded).abs() <= recorded * 1e-4,
                "{loss} vs {recorded}"
            );
            assert_eq!(sample["rank"][e], 1);
            assert_eq!(
                sample["pred"][e].as_u64().unwrap(),
                u64::from(rows.predicted[top_id])
            );
        }
    }

    // Two epochs give AUM, cartography and loss candidates; the run has the last epoch's
    // probabilities, so confident learning runs on them too.
    let methods: Vec<&str> = data["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        ["confident-learning", "aum", "cartography", "loss"].to_vec()
    );
    // Every candidate has a history to show.
    for method in data["candidates"].as_array().unwrap() {
        for row in method["rows"].as_array().unwrap() {
            let id = row[1].as_u64().unwrap();
            assert!(data["splits"][0]["samples"][id.to_string()].is_object());
        }
    }
    assert!(data["compare"].is_null());
}

#[test]
fn report_keeps_existing_file_without_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path(), "run", 1, 1);
    let out = dir.path().join("page.html");
    std::fs::write(&out, "keep me").unwrap();
    let output = toploss()
        .arg("report")
        .arg(&run)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--overwrite"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");

    let output = toploss()
        .arg("report")
        .arg(&run)
        .arg("--out")
        .arg(&out)
        .arg("--overwrite")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .starts_with("<!DOCTYPE html>")
    );
}

#[test]
fn report_of_several_runs_compares_them() {
    let dir = tempfile::tempdir().unwrap();
    let first = small_run(dir.path(), "a", 1, 1);
    let second = small_run(dir.path(), "b", 1, 2);
    let out = dir.path().join("both.html");
    let output = toploss()
        .arg("report")
        .arg(&first)
        .arg(&second)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let data = embedded_data(&std::fs::read_to_string(&out).unwrap());
    // Same configuration, two seeds: one table row over 2 runs, one curve per run.
    let compare = &data["compare"];
    assert_eq!(compare["rows"].as_array().unwrap().len(), 1);
    assert_eq!(compare["rows"][0][1], "2");
    assert_eq!(compare["series"].as_array().unwrap().len(), 2);
    // The first run is the one shown in detail.
    assert_eq!(data["runs"][0]["name"], "a");
    // One epoch: no AUM or cartography, which need two.
    let methods: Vec<&str> = data["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["confident-learning", "loss"].to_vec());
}

#[test]
fn report_rejects_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let output = toploss().arg("report").arg(&missing).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("nope") && stderr.contains("does not exist"),
        "{stderr}"
    );

    let run = small_run(dir.path(), "run", 1, 1);
    let output = toploss()
        .arg("report")
        .arg(&run)
        .args(["--max-k", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--max-k 0"));

    let output = toploss()
        .arg("report")
        .arg(&run)
        .arg("--out")
        .arg(dir.path().join("no/such/folder/r.html"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(!run.join("report.html").exists());
}

#[test]
fn demo_ends_with_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let output = toploss()
        .args(["-q", "demo", "--model", "mlp", "--epochs", "2"])
        .args(["--train-limit", "300", "--test-limit", "100", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let page = out.join("report.html");
    assert!(stdout.contains(&page.display().to_string()), "{stdout}");
    let data = embedded_data(&std::fs::read_to_string(&page).unwrap());
    assert_eq!(data["epochs"], serde_json::json!([1, 2]));
}

#[test]
fn report_refuses_runs_of_different_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let mnist = small_run(dir.path(), "mnist", 1, 1);

    // A 2x2-pixel CSV dataset: 40 rows, labels 0 and 1 alternating.
    let csv = dir.path().join("tiny.csv");
    let mut text = String::from("label,p0,p1,p2,p3\n");
    for row in 0..40 {
        let label = row % 2;
        let value = 200 * label + row;
        text.push_str(&format!("{label},{value},{value},0,0\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let tiny = dir.path().join("tiny");
    let output = toploss()
        .args(["-q", "train", "--data"])
        .arg(format!("csv:{}", csv.display()))
        .args(["--model", "mlp", "--epochs", "1", "--out"])
        .arg(&tiny)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let out = dir.path().join("mixed.html");
    let output = toploss()
        .arg("report")
        .arg(&mnist)
        .arg(&tiny)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("different datasets"), "{stderr}");
    assert!(!out.exists());

    let output = toploss()
        .arg("report")
        .arg(&mnist)
        .arg(&tiny)
        .arg("--out")
        .arg(&out)
        .arg("--allow-different-data")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
