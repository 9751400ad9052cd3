//! The review page in headless chromium (`e2e/review.mjs`): keyboard decisions, a server
//! restart, and the corrections file. Runs only with `TOPLOSS_E2E=1`.

#[path = "support/e2e.rs"]
mod e2e;
#[path = "support/review_server.rs"]
mod review_server;

#[test]
fn review_page_keyboard_and_restart() {
    if !e2e::enabled("review_page_keyboard_and_restart") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = review_server::small_run(dir.path());
    let output = e2e::run_node_script("review.mjs", &[("TOPLOSS_RUN", run.as_os_str())]);
    assert!(output.contains("kept across a restart"), "{output}");
}
