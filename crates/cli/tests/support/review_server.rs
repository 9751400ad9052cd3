//! Helpers for the review tests: a small trained run, a `toploss review` child process on a
//! free port, and a raw HTTP/1.1 client over `TcpStream`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Maximum wait for the server to print its address or to stop.
const SERVER_TIMEOUT: Duration = Duration::from_secs(60);

/// Returns the MNIST copy in the repository as a `--data` value.
pub fn bundled_mnist() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    format!("mnist:{}", dir.display())
}

/// Returns a command for the `toploss` binary under test.
pub fn toploss() -> Command {
    Command::new(env!("CARGO_BIN_EXE_toploss"))
}

/// Trains the small run of the review tests into `dir/run`: 1 epoch on the first 300 MNIST
/// training images and the first 100 test images. Returns the run folder.
pub fn small_run(dir: &Path) -> PathBuf {
    let run = dir.join("run");
    let output = toploss()
        .args(["-q", "train", "--data", &bundled_mnist()])
        .args([
            "--train-limit",
            "300",
            "--test-limit",
            "100",
            "--epochs",
            "1",
        ])
        .arg("--out")
        .arg(&run)
        .output()
        .expect("cannot run toploss train");
    assert!(
        output.status.success(),
        "toploss train failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    run
}

/// A running `toploss review`; killed on drop if a test fails before [`ReviewServer::stop`].
pub struct ReviewServer {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl ReviewServer {
    /// Starts `toploss review RUN --port 0 EXTRA...` and waits for its address line.
    pub fn start(run: &Path, extra: &[&str]) -> Self {
        let mut child = toploss()
            .arg("review")
            .arg(run)
            .args(["--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start toploss review");

        // Collect stderr in the background, so that a full pipe never blocks the server.
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut text = String::new();
            let mut buffer = [0u8; 4096];
            while let Ok(read) = pipe.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                text.push_str(&String::from_utf8_lossy(&buffer[..read]));
                *sink.lock().unwrap() = text.clone();
            }
        });

        let stdout = child.stdout.take().unwrap();
        let port = match read_port(stdout) {
            Some(port) => port,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "toploss review printed no address; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Self {
            port,
            child,
            stderr,
        }
    }

    /// Stops the server with SIGINT (as Ctrl-C does), checks that it exits with status 0,
    /// and returns its stderr.
    pub fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("cannot run kill");
        assert!(sent.success(), "kill -INT {pid} failed");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < SERVER_TIMEOUT,
                "toploss review did not stop after SIGINT"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        // Let the stderr thread read the last lines.
        std::thread::sleep(Duration::from_millis(200));
        let stderr = self.stderr.lock().unwrap().clone();
        assert!(
            status.success(),
            "toploss review exited with {status}: {stderr}"
        );
        stderr
    }
}

impl Drop for ReviewServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads the first stdout line, `Review page: http://127.0.0.1:PORT/`, and returns PORT. The
/// rest of stdout is drained in the background.
fn read_port(stdout: ChildStdout) -> Option<u16> {
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let address = line.trim().strip_prefix("Review page: http://127.0.0.1:")?;
    address.strip_suffix('/')?.parse().ok()
}

/// A parsed HTTP response.
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// Returns the first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Returns the body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses the body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text()))
    }
}

/// Sends one request on a new connection and reads the whole response. `headers` may
/// replace the default `Host: 127.0.0.1:PORT`.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("cannot connect");
    stream.set_read_timeout(Some(SERVER_TIMEOUT)).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    stream.write_all(&message).expect("cannot send the request");

    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .expect("cannot read the response");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

/// Decodes a chunked body (tiny_http chunks large responses).
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|window| window == b"\r\n")
            .expect("chunk size line");
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// GETs `path` and parses the JSON body, asserting status 200.
pub fn get_json(port: u16, path: &str) -> Value {
    let reply = request(port, "GET", path, &[], b"");
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.text());
    reply.json()
}

/// POSTs `body` as JSON.
pub fn post_json(port: u16, path: &str, body: &Value) -> Reply {
    request(
        port,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}
