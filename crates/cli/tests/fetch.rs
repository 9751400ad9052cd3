//! `toploss fetch` against a server on 127.0.0.1 that serves the MNIST files bundled in
//! data/mnist/, so the real published MD5s are checked. Then `toploss train` reads the
//! folder that fetch wrote.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;

use assert_cmd::Command;

/// The four files of `toploss fetch mnist`.
const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// Connections a test server accepts before its thread ends.
const MAX_CONNECTIONS: usize = 16;

/// A server that responds to `GET /mnist/NAME` with the bundled file (200, whole body) and
/// anything else with 404, and records the paths requested.
struct MnistMirror {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl MnistMirror {
    fn start() -> MnistMirror {
        let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
        let files: HashMap<String, Vec<u8>> = MNIST_FILES
            .iter()
            .map(|name| {
                (
                    format!("/mnist/{name}"),
                    fs::read(bundled.join(name)).unwrap(),
                )
            })
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);

        thread::spawn(move || {
            for stream in listener.incoming().take(MAX_CONNECTIONS) {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .to_string();
                let written = match files.get(&path) {
                    Some(body) => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        stream
                            .write_all(head.as_bytes())
                            .and_then(|()| stream.write_all(body))
                    }
                    None => stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    ),
                };
                drop(written);
                let _ = stream.shutdown(Shutdown::Both);
                log.lock().unwrap().push(path);
            }
        });
        MnistMirror { url, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// `toploss` without the caller's TOPLOSS_DATA_DIR, so that only what a test sets counts.
fn toploss() -> Command {
    let mut command = Command::cargo_bin("toploss").unwrap();
    command.env_remove("TOPLOSS_DATA_DIR");
    command
}

/// Returns (stdout, stderr), failing with stderr when the command fails.
fn run_ok(command: &mut Command) -> (String, String) {
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{command:?} failed: {stderr}");
    (String::from_utf8(output.stdout).unwrap(), stderr)
}

/// Asserts that `dir` contains the four bundled files, byte for byte, and no `.part`.
fn assert_mnist_files(dir: &Path) {
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    for name in MNIST_FILES {
        assert_eq!(
            fs::read(dir.join(name)).unwrap(),
            fs::read(bundled.join(name)).unwrap(),
            "{name}"
        );
    }
    let parts: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().ends_with(".part"))
        .collect();
    assert!(parts.is_empty(), "{parts:?}");
}

#[test]
fn fetch_mnist_then_train() {
    let mirror = MnistMirror::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(tmp.path()).unwrap();
    let root_text = root.to_str().unwrap();

    let (stdout, stderr) = run_ok(toploss().args([
        "fetch",
        "mnist",
        "--mirror",
        &mirror.url,
        "--dir",
        root_text,
    ]));
    let dataset_dir = root.join("mnist");
    assert_mnist_files(&dataset_dir);
    assert_eq!(
        stderr.matches("MD5 verified").count(),
        4,
        "one line per file: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "downloaded from {}mnist/train-images-idx3-ubyte.gz",
            mirror.url
        )),
        "{stderr}"
    );
    let expected_next = format!(
        "next: toploss train --data mnist:{} --out runs/mnist",
        dataset_dir.display()
    );
    assert!(stdout.contains(&expected_next), "{stdout}");
    assert_eq!(mirror.requests().len(), 4);

    // A second run finds the files verified and sends no request.
    let (_, stderr) = run_ok(toploss().args([
        "fetch",
        "mnist",
        "--mirror",
        &mirror.url,
        "--dir",
        root_text,
    ]));
    assert_eq!(
        stderr
            .matches("already present, MD5 verified: skipped")
            .count(),
        4,
        "{stderr}"
    );
    assert_eq!(mirror.requests().len(), 4);

    // The --data value of the printed command trains as it is.
    let data = expected_next
        .split_whitespace()
        .skip_while(|word| *word != "--data")
        .nth(1)
        .unwrap();
    let out = root.join("run");
    run_ok(toploss().args([
        "-q",
        "train",
        "--data",
        data,
        "--train-limit",
        "200",
        "--test-limit",
        "100",
        "--epochs",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(out.join("run.json").is_file());
    assert!(out.join("dynamics.parquet").is_file());
}

#[test]
fn fetch_honours_data_dir_env() {
    let mirror = MnistMirror::start();
    let tmp = tempfile::tempdir().unwrap();

    run_ok(
        toploss()
            .args(["-q", "fetch", "mnist", "--mirror", &mirror.url])
            .env("TOPLOSS_DATA_DIR", tmp.path()),
    );
    assert_mnist_files(&tmp.path().join("mnist"));
    assert_eq!(mirror.requests().len(), 4);
}

#[test]
fn fetch_rejects_non_http_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let output = toploss()
        .args(["fetch", "mnist", "--mirror", "ftp://127.0.0.1/"])
        .arg("--dir")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid --mirror \"ftp://127.0.0.1/\""),
        "{stderr}"
    );
}
