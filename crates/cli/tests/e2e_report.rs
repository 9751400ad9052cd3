//! The report page in headless chromium (`e2e/report.mjs`): the grid's order after moving the
//! epoch slider, the class filter and the split, a tile's history, and no request to any
//! host. Runs only with `TOPLOSS_E2E=1`.

use std::path::Path;

use assert_cmd::Command;

#[path = "support/e2e.rs"]
mod e2e;

#[test]
fn report_page_slider_and_order() {
    if !e2e::enabled("report_page_slider_and_order") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mnist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    let output = Command::cargo_bin("toploss")
        .unwrap()
        .args(["-q", "train", "--data"])
        .arg(format!("mnist:{}", mnist.display()))
        .args([
            "--model",
            "mlp",
            "--train-limit",
            "1000",
            "--test-limit",
            "300",
        ])
        .args(["--epochs", "3", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "train failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = e2e::run_node_script("report.mjs", &[("E2E_RUN", run.as_os_str())]);
    assert!(
        output.contains("grid order matches toploss top"),
        "{output}"
    );
}
