//! Browser end-to-end tests: the gate on `TOPLOSS_E2E` and a runner for the scripts in `e2e/`.
//!
//! With `TOPLOSS_E2E` unset (or empty, or `0`), a browser test prints one line to stderr and
//! passes without checking anything. With `TOPLOSS_E2E=1`, node, `e2e/node_modules/playwright-core`
//! and chromium must be installed, and a missing one fails the test with the command that
//! installs it.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Returns the `e2e/` folder of the repository.
pub fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e")
}

/// Returns whether browser tests are requested, after checking that they can run. Prints a
/// skip note naming `test` when they are not requested.
pub fn enabled(test: &str) -> bool {
    let requested =
        std::env::var("TOPLOSS_E2E").is_ok_and(|value| !value.is_empty() && value != "0");
    if !requested {
        eprintln!(
            "note: {test} skipped: set TOPLOSS_E2E=1 to run the browser tests (needs node, chromium and `npm ci --prefix e2e`)"
        );
        return false;
    }
    check_prerequisites();
    true
}

/// Fails, naming each missing piece and how to install it, unless node, playwright-core and
/// chromium are all there.
fn check_prerequisites() {
    let mut missing = Vec::new();
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|output| output.status.success()) {
        missing.push("node: install Node.js 20 or newer (apt-get install nodejs npm)".to_string());
    }
    let playwright = e2e_dir().join("node_modules/playwright-core/package.json");
    if !playwright.is_file() {
        missing.push(format!(
            "{}: run `npm ci --prefix e2e` in the repository",
            playwright.display()
        ));
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
    if !Path::new(&chromium).is_file() {
        missing.push(format!(
            "chromium at {chromium}: apt-get install chromium, or set CHROMIUM to its path"
        ));
    }
    assert!(
        missing.is_empty(),
        "TOPLOSS_E2E is set, but the browser tests cannot run; missing:\n  {}",
        missing.join("\n  ")
    );
}

/// Runs `node e2e/SCRIPT` with `TOPLOSS_BIN` set to the binary under test plus `envs`,
/// asserts that it succeeds, and returns its stdout and stderr.
pub fn run_node_script(script: &str, envs: &[(&str, &OsStr)]) -> String {
    let path = e2e_dir().join(script);
    let output = Command::new("node")
        .arg(&path)
        .env("TOPLOSS_BIN", env!("CARGO_BIN_EXE_toploss"))
        .envs(envs.iter().copied())
        .output()
        .unwrap_or_else(|error| panic!("cannot run node {}: {error}", path.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "node e2e/{script} failed ({}):\n{text}",
        output.status
    );
    text
}
