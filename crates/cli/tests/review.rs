//! Tests of the `toploss review` server: the binary runs on port 0 over a small MNIST run, and
//! the tests talk raw HTTP/1.1 to it over `std::net::TcpStream`.

#[path = "support/review_server.rs"]
mod review_server;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use review_server::{ReviewServer, get_json, post_json, request, small_run, toploss};
use serde_json::{Value, json};
use toploss_data::corrections::parse_corrections;
use toploss_data::run::{DYNAMICS_PARQUET, Dynamics, RunInfo, SplitName, read_npy_f32};
use toploss_data::{Action, DatasetSpec, load};

/// Train samples of the small run (ids 0 to 299).
const TRAIN_LEN: usize = 300;

fn mnist_classes() -> Vec<String> {
    (0..10).map(|digit| digit.to_string()).collect()
}

fn corrections(run: &Path) -> Option<String> {
    std::fs::read_to_string(run.join("corrections.csv")).ok()
}

fn candidate_ids(state: &Value) -> Vec<u64> {
    state["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|candidate| candidate["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn review_serves_page_state_and_images() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path());
    let server = ReviewServer::start(&run, &["-k", "16"]);

    // The page, with a policy that keeps it on this server.
    let page = request(server.port, "GET", "/", &[], b"");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );
    let html = page.text();
    assert!(html.contains("<title>toploss review</title>"), "{html}");
    assert!(html.contains("Keyboard shortcuts"));

    // The candidates are the 16 highest losses of epoch 1, ties by lower id: sorted here
    // independently of toploss_core::rank.
    let state = get_json(server.port, "/api/state");
    let dynamics =
        Dynamics::read(&run.join(DYNAMICS_PARQUET), Some(1), Some(SplitName::Train)).unwrap();
    let rows = dynamics.get(1, SplitName::Train).unwrap();
    let mut expected: Vec<usize> = (0..rows.len()).collect();
    expected.sort_by(|&a, &b| rows.loss[b].total_cmp(&rows.loss[a]).then(a.cmp(&b)));
    expected.truncate(16);
    let expected: Vec<u64> = expected.iter().map(|&id| id as u64).collect();
    assert_eq!(candidate_ids(&state), expected);
    assert_eq!(state["split"], "train");
    assert_eq!(state["epoch"], 1);
    assert_eq!(state["editable"], true);
    assert_eq!(state["classes"], json!(mnist_classes()));
    assert_eq!(state["decided"], 0);

    // Scores and top classes of the first candidate, against the run's own files.
    let first = &state["candidates"][0];
    let id = first["id"].as_u64().unwrap() as usize;
    assert_eq!(first["rank"], 1);
    assert_eq!(first["label"], rows.label[id]);
    assert_eq!(first["predicted"], rows.predicted[id]);
    assert_eq!(first["loss"], format!("{:.4}", rows.loss[id]));
    let probs = read_npy_f32(&run.join("probs/train-e01.npy")).unwrap();
    let mut classes: Vec<usize> = (0..10).collect();
    classes.sort_by(|&a, &b| probs[[id, b]].total_cmp(&probs[[id, a]]).then(a.cmp(&b)));
    let top = first["top"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    for (entry, &class) in top.iter().zip(&classes) {
        assert_eq!(entry["class"], class);
        assert!((entry["p"].as_f64().unwrap() - f64::from(probs[[id, class]])).abs() < 1e-6);
    }
    // The most probable class is the predicted one.
    assert_eq!(top[0]["class"], first["predicted"]);

    // The image is the dataset's own pixels, 28 x 28 grayscale.
    let spec: DatasetSpec = review_server::bundled_mnist().parse().unwrap();
    let dataset = load(&spec).unwrap();
    for id in [id, TRAIN_LEN - 1] {
        let reply = request(
            server.port,
            "GET",
            &format!("/api/image/{id}.png"),
            &[],
            b"",
        );
        assert_eq!(reply.status, 200, "image {id}");
        assert_eq!(reply.header("content-type"), Some("image/png"));
        let image = image::load_from_memory(&reply.body).unwrap().to_luma8();
        assert_eq!(image.dimensions(), (28, 28));
        assert_eq!(
            image.as_raw().as_slice(),
            dataset.train.image(id),
            "image {id}"
        );
    }
    server.stop();
}

/// A request the server must reject: what is sent, and the status and part of the message
/// that must come back.
struct BadRequest {
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
    status: u16,
    message: &'static str,
}

fn post(path: &'static str, body: &str, status: u16, message: &'static str) -> BadRequest {
    BadRequest {
        method: "POST",
        path,
        headers: vec![("Content-Type", "application/json")],
        body: body.to_string(),
        status,
        message,
    }
}

fn get(path: &'static str, status: u16, message: &'static str) -> BadRequest {
    BadRequest {
        method: "GET",
        path,
        headers: Vec::new(),
        body: String::new(),
        status,
        message,
    }
}

#[test]
fn review_rejects_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path());
    let server = ReviewServer::start(&run, &["-k", "5"]);
    let oversize = format!(
        "{{\"id\": 1, \"action\": \"keep\", \"note\": \"{}\"}}",
        "x".repeat(20_000)
    );
    let plain_text = vec![("Content-Type", "text/plain")];
    let foreign_origin = vec![
        ("Content-Type", "application/json"),
        ("Origin", "http://evil.example"),
    ];
    let keep = r#"{"id": 1, "action": "keep"}"#;

    #[rustfmt::skip]
    let cases = vec![
        post("/api/decision", r#"{"id": 300, "action": "keep"}"#, 400, "unknown id 300"),
        post("/api/decision", r#"{"id": -1, "action": "keep"}"#, 400, "invalid id -1"),
        post("/api/decision", r#"{"id": "1", "action": "keep"}"#, 400, "invalid id \"1\""),
        post("/api/decision", r#"{"action": "keep"}"#, 400, "missing key \"id\""),
        post("/api/decision", r#"{"id": 1, "action": "relabel", "new_label": 10}"#, 400, "new_label 10 is not a class"),
        post("/api/decision", r#"{"id": 1, "action": "relabel", "new_label": "ten"}"#, 400, "not a class"),
        post("/api/decision", r#"{"id": 1, "action": "relabel"}"#, 400, "relabel needs \"new_label\""),
        post("/api/decision", r#"{"id": 1, "action": "keep", "new_label": 3}"#, 400, "takes no new_label"),
        post("/api/decision", r#"{"id": 1, "action": "delete"}"#, 400, "unknown action \"delete\""),
        post("/api/decision", r#"{"id": 1, "action": "keep", "reason": "x"}"#, 400, "unknown key \"reason\""),
        post("/api/decision", r#"{"id": 1, "action": "keep", "note": 5}"#, 400, "invalid note 5"),
        post("/api/decision", "{\"id\": 1, \"action\"", 400, "malformed JSON"),
        post("/api/decision", "[1, \"keep\"]", 400, "expected a JSON object"),
        post("/api/decision", &oversize, 413, "too large"),
        BadRequest { headers: plain_text, ..post("/api/decision", keep, 415, "application/json") },
        BadRequest { headers: foreign_origin, ..post("/api/decision", keep, 403, "not allowed") },
        post("/api/undo", r#"{"id": 1}"#, 409, "no decision to undo"),
        post("/api/undo", r#"{"id": 300}"#, 400, "unknown id 300"),
        get("/api/decision", 405, "POST only"),
        post("/api/state", "{}", 405, "GET only"),
        get("/nothing-here", 404, "not found"),
        get("/run.json", 404, "not found"),
        get("/api/image/300.png", 404, "ids 0 to 299"),
        get("/api/image/-1.png", 404, "no image"),
        get("/api/image/1", 404, "no image"),
        get("/api/image/..%2Frun.json", 404, "no image"),
        get("/api/image/99999999999999999999.png", 404, "no image"),
        BadRequest { headers: vec![("Host", "evil.example")], ..get("/api/state", 403, "unexpected Host") },
    ];
    let check = |case: &BadRequest| {
        let reply = request(
            server.port,
            case.method,
            case.path,
            &case.headers,
            case.body.as_bytes(),
        );
        let text = reply.text();
        let request_line = format!("{} {} {:.80}", case.method, case.path, case.body);
        assert_eq!(reply.status, case.status, "{request_line}: {text}");
        let error: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{request_line}: not JSON: {text}"));
        let error = error["error"].as_str().unwrap();
        assert!(error.contains(case.message), "{request_line}: {error}");
    };
    for case in &cases {
        check(case);
    }
    assert_eq!(
        corrections(&run),
        None,
        "a rejected request wrote corrections.csv"
    );

    // With a file in place, rejected requests leave it byte for byte as it was.
    let reply = post_json(
        server.port,
        "/api/decision",
        &json!({"id": 2, "action": "discard"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let before = corrections(&run).unwrap();
    assert_eq!(before, "id,action,new_label,note\n2,discard,,\n");
    for case in &cases {
        check(case);
    }
    assert_eq!(corrections(&run).unwrap(), before);
    server.stop();
}

#[test]
fn review_concurrent_writes_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path());
    let server = ReviewServer::start(&run, &["-k", "5"]);
    let port = server.port;
    let classes = mnist_classes();

    // Writer w decides ids w*40 .. w*40+39; the action depends on the id.
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 40;
    let expected_action = |id: usize| match id % 3 {
        0 => Action::Keep,
        1 => Action::Discard,
        _ => Action::Relabel((id % 10) as u32),
    };
    let writing = AtomicBool::new(true);
    let path = run.join("corrections.csv");
    let reads = std::thread::scope(|scope| {
        // A reader parses the file in a loop while the writers run: never a torn file.
        let reader = scope.spawn(|| {
            let mut reads = 0;
            while writing.load(Ordering::SeqCst) {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    if let Err(error) = parse_corrections(&path, &text, &classes, TRAIN_LEN) {
                        panic!("read {reads}: {error}\n{text}");
                    }
                    reads += 1;
                }
            }
            reads
        });
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                scope.spawn(move || {
                    for id in writer * PER_WRITER..(writer + 1) * PER_WRITER {
                        let body = match expected_action(id) {
                            Action::Relabel(label) => {
                                json!({"id": id, "action": "relabel", "new_label": label})
                            }
                            action => json!({"id": id, "action": action.name()}),
                        };
                        let reply = post_json(port, "/api/decision", &body);
                        assert_eq!(reply.status, 200, "id {id}: {}", reply.text());
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        writing.store(false, Ordering::SeqCst);
        reader.join().unwrap()
    });
    assert!(reads > 0, "the reader never saw the file");

    // Every decision is in the file, once, with its action.
    let text = std::fs::read_to_string(&path).unwrap();
    let parsed = parse_corrections(&path, &text, &classes, TRAIN_LEN).unwrap();
    assert_eq!(parsed.len(), WRITERS * PER_WRITER);
    for entry in &parsed.entries {
        assert_eq!(
            entry.action,
            expected_action(entry.id as usize),
            "id {}",
            entry.id
        );
    }
    assert_eq!(
        get_json(port, "/api/state")["decided"],
        WRITERS * PER_WRITER
    );
    server.stop();
}

#[test]
fn review_undo_restart_and_retrain() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path());
    let server = ReviewServer::start(&run, &["-k", "10"]);
    let state = get_json(server.port, "/api/state");
    let candidate = |position: usize| state["candidates"][position].clone();
    let (a, b, c) = (candidate(0), candidate(1), candidate(2));
    let id = |sample: &Value| sample["id"].as_u64().unwrap();
    // A class other than the given label of sample a.
    let new_label = (a["label"].as_u64().unwrap() + 1) % 10;

    // Undo restores the decision the id had before, then removes it.
    let decide = |body: Value| {
        let reply = post_json(server.port, "/api/decision", &body);
        assert_eq!(reply.status, 200, "{body}: {}", reply.text());
        reply.json()
    };
    let undo = |sample: &Value| {
        let reply = post_json(server.port, "/api/undo", &json!({"id": id(sample)}));
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    };
    decide(json!({"id": id(&a), "action": "keep"}));
    let reply = decide(json!({"id": id(&a), "action": "relabel", "new_label": 3}));
    assert_eq!(reply["decision"]["action"], "relabel");
    let reply = undo(&a);
    assert_eq!(reply["result"], "restored");
    assert_eq!(reply["decision"]["action"], "keep");
    let reply = undo(&a);
    assert_eq!(reply["result"], "removed");
    assert_eq!(reply["decision"], Value::Null);
    assert_eq!(
        corrections(&run).unwrap(),
        "id,action,new_label,note\n",
        "undo of every change leaves the header only"
    );

    // Three decisions; the note has a comma and a quote.
    decide(json!({"id": id(&a), "action": "relabel", "new_label": new_label}));
    decide(json!({"id": id(&b), "action": "discard"}));
    decide(json!({"id": id(&c), "action": "keep", "note": "a \"7\", surely"}));
    let expected = format!(
        "id,action,new_label,note\n{},relabel,{new_label},\n{},discard,,\n{},keep,,\"a \"\"7\"\", surely\"\n",
        id(&a),
        id(&b),
        id(&c)
    );
    assert_eq!(corrections(&run).unwrap(), expected);
    let stderr = server.stop();
    assert!(stderr.contains("review server stopped"), "{stderr}");

    // A new server reloads the decisions; undo then removes (no history survives a restart).
    let server = ReviewServer::start(&run, &["-k", "10"]);
    let state = get_json(server.port, "/api/state");
    assert_eq!(state["decided"], 3);
    let decisions: Vec<Value> = (0..3)
        .map(|position| state["candidates"][position]["decision"].clone())
        .collect();
    assert_eq!(decisions[0]["action"], "relabel");
    assert_eq!(decisions[0]["new_label"], new_label);
    assert_eq!(decisions[1]["action"], "discard");
    assert_eq!(decisions[2]["note"], "a \"7\", surely");
    let reply = post_json(server.port, "/api/undo", &json!({"id": id(&c)}));
    assert_eq!(reply.json()["result"], "removed");
    server.stop();

    // `train --relabel --discard` accepts the file as it is.
    let fixed = dir.path().join("fixed");
    let corrections_csv = run.join("corrections.csv");
    let output = review_server::toploss()
        .args(["-q", "train", "--data", &review_server::bundled_mnist()])
        .args([
            "--train-limit",
            "300",
            "--test-limit",
            "100",
            "--epochs",
            "1",
        ])
        .arg("--relabel")
        .arg(&corrections_csv)
        .arg("--discard")
        .arg(&corrections_csv)
        .arg("--out")
        .arg(&fixed)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let info = RunInfo::read(&fixed).unwrap();
    assert_eq!(info.config["relabelled"], 1);
    assert_eq!(info.config["discarded"], 1);
    let rows = Dynamics::read(&fixed.join(DYNAMICS_PARQUET), None, Some(SplitName::Train)).unwrap();
    assert_eq!(
        rows.get(1, SplitName::Train).unwrap().label[id(&a) as usize] as u64,
        new_label
    );
}

#[test]
fn review_candidates_file_and_test_split() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path());

    // An issues.csv picks the candidates and their order; -k keeps the first rows.
    let issues = dir.path().join("issues.csv");
    std::fs::write(
        &issues,
        "rank,id,label,suggested,score\n1,42,7,1,-3.5\n2,7,3,5,-1.25\n3,250,0,6,-0.5\n",
    )
    .unwrap();
    let server = ReviewServer::start(&run, &["--candidates", issues.to_str().unwrap()]);
    let state = get_json(server.port, "/api/state");
    assert_eq!(candidate_ids(&state), vec![42, 7, 250]);
    assert_eq!(state["candidates"][1]["rank"], 2);
    assert!(state["source"].as_str().unwrap().contains("issues.csv"));
    server.stop();
    let server = ReviewServer::start(&run, &["--candidates", issues.to_str().unwrap(), "-k", "1"]);
    assert_eq!(
        candidate_ids(&get_json(server.port, "/api/state")),
        vec![42]
    );
    server.stop();

    // An id outside the split stops the command before it listens, naming the line.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "rank,id\n1,5\n2,300\n").unwrap();
    let output = review_server::toploss()
        .args(["review", "--port", "0", "--candidates"])
        .arg(&bad)
        .arg(&run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("bad.csv, line 3: id 300 is out of range"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());

    // The test split can be viewed but not changed.
    let server = ReviewServer::start(&run, &["--split", "test", "-k", "200"]);
    let state = get_json(server.port, "/api/state");
    assert_eq!(state["editable"], false);
    assert_eq!(state["candidates"].as_array().unwrap().len(), 100);
    let reply = post_json(
        server.port,
        "/api/decision",
        &json!({"id": 1, "action": "keep"}),
    );
    assert_eq!(reply.status, 409, "{}", reply.text());
    assert!(reply.text().contains("read-only"));
    assert_eq!(
        request(server.port, "GET", "/api/image/99.png", &[], b"").status,
        200
    );
    assert_eq!(
        request(server.port, "GET", "/api/image/100.png", &[], b"").status,
        404
    );
    server.stop();
    assert_eq!(corrections(&run), None);
}

/// Reads one response from `stream` without waiting for the server to close: the headers, then
/// Content-Length bytes of body. Returns the status (0 when no complete response came within
/// the read timeout) and whether the server sent `Connection: close`.
fn read_one_response(stream: &mut std::net::TcpStream) -> (u16, bool) {
    use std::io::Read;
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => raw.push(byte[0]),
            _ => return (0, false),
        }
    }
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap_or(0));
    let mut body = vec![0u8; length];
    if stream.read_exact(&mut body).is_err() {
        return (0, false);
    }
    (status, head.contains("connection: close"))
}

#[test]
fn review_answers_a_burst_of_connections() {
    // A browser opens several connections at once and keeps each open for reuse unless the
    // server sends `Connection: close`. The clients here do the same, so a server that keeps
    // connections alive and serves them from too few threads leaves some requests unanswered
    // (status 0 after the read timeout).
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path());
    let server = ReviewServer::start(&run, &["-k", "5"]);
    const CLIENTS: usize = 12;
    let port = server.port;

    let answers: Vec<(u16, Option<std::net::TcpStream>)> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|id| {
                scope.spawn(move || {
                    use std::io::Write;
                    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                    stream
                        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                        .unwrap();
                    let request = format!(
                        "GET /api/image/{id}.png HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
                         Connection: keep-alive\r\n\r\n"
                    );
                    stream.write_all(request.as_bytes()).unwrap();
                    let (status, close) = read_one_response(&mut stream);
                    // Keep a kept-alive connection open until every client is done.
                    (status, (!close).then_some(stream))
                })
            })
            .collect();
        clients
            .into_iter()
            .map(|client| client.join().unwrap())
            .collect()
    });

    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, vec![200; CLIENTS]);
    drop(answers);
    server.stop();
}

/// Writes 6 8x8 grayscale PNGs per class for two classes with non-ASCII names: "Täsche" dark
/// with a bright row, "靴" bright with a dark column.
fn write_folder_dataset(root: &Path) {
    use image::{GrayImage, Luma};
    for (class, base) in [("Täsche", 30u8), ("靴", 220u8)] {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for n in 0..6u32 {
            let image = GrayImage::from_fn(8, 8, |x, y| {
                let stripe = if class == "Täsche" { y == n } else { x == n };
                Luma([if stripe { 255 - base } else { base }])
            });
            image.save(dir.join(format!("{n:02}.png"))).unwrap();
        }
    }
}

#[test]
fn review_folder_dataset_writes_paths() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    write_folder_dataset(&images);
    let data = format!("folder:{}", images.display());
    let run = dir.path().join("run");
    let output = review_server::toploss()
        .args([
            "-q", "train", "--data", &data, "--epochs", "1", "--model", "mlp",
        ])
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Relabel one candidate by class index and one by class name.
    let server = ReviewServer::start(&run, &["-k", "20"]);
    let state = get_json(server.port, "/api/state");
    assert_eq!(state["classes"], json!(["Täsche", "靴"]));
    let a = state["candidates"][0].clone();
    let b = state["candidates"][1].clone();
    let other = |sample: &Value| 1 - sample["label"].as_u64().unwrap();
    let reply = post_json(
        server.port,
        "/api/decision",
        &json!({"id": a["id"], "action": "relabel", "new_label": other(&a)}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let name_b = ["Täsche", "靴"][other(&b) as usize];
    let reply = post_json(
        server.port,
        "/api/decision",
        &json!({"id": b["id"], "action": "relabel", "new_label": name_b}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    server.stop();

    // The file names the classes and each sample's path, as the page showed it.
    let path_of = |sample: &Value| sample["path"].as_str().unwrap().to_string();
    assert!(path_of(&a).ends_with(".png"), "{a}");
    let name_a = ["Täsche", "靴"][other(&a) as usize];
    let expected = format!(
        "id,action,new_label,note,path\n{},relabel,{name_a},,{}\n{},relabel,{name_b},,{}\n",
        a["id"],
        path_of(&a),
        b["id"],
        path_of(&b)
    );
    assert_eq!(corrections(&run).unwrap(), expected);

    // `train --relabel` accepts the file.
    let corrections_csv = run.join("corrections.csv");
    let output = review_server::toploss()
        .args([
            "-q", "train", "--data", &data, "--epochs", "1", "--model", "mlp",
        ])
        .arg("--relabel")
        .arg(&corrections_csv)
        .arg("--out")
        .arg(dir.path().join("fixed"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // A path that does not match its id stops the next server before it listens.
    let wrong = expected.replace(&path_of(&a), "Täsche/elsewhere.png");
    std::fs::write(&corrections_csv, wrong).unwrap();
    let output = review_server::toploss()
        .args(["review", "--port", "0"])
        .arg(&run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("another dataset"), "{stderr}");
}

#[test]
fn review_second_server_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path());
    let first = ReviewServer::start(&run, &[]);

    // A second writer on the same run would overwrite the first one's decisions.
    let output = toploss()
        .arg("review")
        .arg(&run)
        .args(["--port", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("another toploss review"), "{stderr}");

    // A read-only page of the test split needs no lock.
    let reader = ReviewServer::start(&run, &["--split", "test"]);
    reader.stop();

    // Once the first server stops, the lock is free again.
    first.stop();
    let again = ReviewServer::start(&run, &[]);
    again.stop();
}
