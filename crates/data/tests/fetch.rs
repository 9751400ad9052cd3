//! `fetch` against HTTP servers that each test starts on 127.0.0.1: a good file, a corrupt
//! one, a connection dropped halfway, a server that ignores ranges, a 404, a wrong size and
//! a `.tar.gz` archive.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;

use md5::{Digest, Md5};
use toploss_data::Error;
use toploss_data::fetch::{
    ArchiveMember, FetchEvent, FetchStatus, Manifest, RemoteFile, fetch, file_url,
};

/// Connections a test server accepts before its thread ends, so that no server outlives
/// its test by much.
const MAX_CONNECTIONS: usize = 16;

/// How the test server responds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// 200 with the whole file, or 206 for a `Range: bytes=N-` request.
    Normal,
    /// Like `Normal`, but the first request of each path gets a 200 whose body stops after
    /// half the announced `Content-Length`, then the connection closes.
    DropFirstHalfway,
    /// Always 200 with the whole file, whatever the `Range` header requests.
    IgnoreRange,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    range: Option<String>,
}

struct Server {
    base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// Serves `files` (URL path without the leading slash to bytes) on a free port.
    fn start(files: HashMap<String, Vec<u8>>, behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        thread::spawn(move || {
            for stream in listener.incoming().take(MAX_CONNECTIONS) {
                let Ok(stream) = stream else { continue };
                respond(stream, &files, behaviour, &log);
            }
        });
        Server { base_url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Reads one request and writes the response, then closes the connection.
fn respond(
    mut stream: TcpStream,
    files: &HashMap<String, Vec<u8>>,
    behaviour: Behaviour,
    log: &Mutex<Vec<Seen>>,
) {
    // Request line and headers, up to the blank line.
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_string());
        }
    }
    let first_for_path = {
        let mut log = log.lock().unwrap();
        let first = !log.iter().any(|seen| seen.path == path);
        log.push(Seen {
            path: path.clone(),
            range: range.clone(),
        });
        first
    };

    let Some(body) = files.get(&path) else {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let offset = range
        .as_deref()
        .and_then(|value| value.strip_prefix("bytes="))
        .and_then(|value| value.strip_suffix('-'))
        .and_then(|value| value.parse::<usize>().ok())
        .filter(|_| behaviour != Behaviour::IgnoreRange);

    let _ = match offset {
        Some(offset) => {
            let head = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\n\
                 Content-Range: bytes {}-{}/{}\r\nConnection: close\r\n\r\n",
                body.len() - offset,
                offset,
                body.len() - 1,
                body.len()
            );
            stream
                .write_all(head.as_bytes())
                .and_then(|()| stream.write_all(&body[offset..]))
        }
        None => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let sent = if behaviour == Behaviour::DropFirstHalfway && first_for_path {
                &body[..body.len() / 2]
            } else {
                &body[..]
            };
            stream
                .write_all(head.as_bytes())
                .and_then(|()| stream.write_all(sent))
        }
    };
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Both);
}

/// `len` bytes from a 32-bit linear congruential generator (Numerical Recipes constants), so
/// that files are not runs of one byte and a shifted resume would change the MD5.
fn bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect()
}

fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Builds a manifest named `test` whose files carry the size and MD5 of `files`.
fn manifest(files: &[(&str, &[u8])]) -> Manifest {
    Manifest {
        name: "test".to_string(),
        files: files
            .iter()
            .map(|(name, data)| RemoteFile {
                name: name.to_string(),
                url: format!("https://official.invalid/{name}"),
                size: Some(data.len() as u64),
                md5: md5_hex(data),
                extract: Vec::new(),
            })
            .collect(),
    }
}

fn served(files: &[(&str, &[u8])]) -> HashMap<String, Vec<u8>> {
    files
        .iter()
        .map(|(name, data)| (format!("test/{name}"), data.to_vec()))
        .collect()
}

/// Runs `fetch` and collects the events as short strings.
fn fetch_logged(
    manifest: &Manifest,
    dir: &Path,
    server: &Server,
) -> (
    Result<Vec<toploss_data::fetch::FetchOutcome>, Error>,
    Vec<String>,
) {
    let mut events = Vec::new();
    let result = fetch(manifest, dir, Some(&server.base_url), &mut |event| {
        let text = match event {
            FetchEvent::AlreadyPresent { file } => format!("present {}", file.name),
            FetchEvent::Started {
                file,
                offset,
                restarted,
                ..
            } => format!("started {} at {offset} restarted={restarted}", file.name),
            FetchEvent::Received { .. } => return ControlFlow::Continue(()),
            FetchEvent::Verified { file, bytes } => format!("verified {} {bytes}", file.name),
            FetchEvent::Extracting { file } => format!("extracting {}", file.name),
            FetchEvent::Extracted { file, members } => {
                format!("extracted {} {members}", file.name)
            }
        };
        events.push(text);
        ControlFlow::Continue(())
    });
    (result, events)
}

fn part_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".part"))
        .collect()
}

#[test]
fn good_files_download_then_skip() {
    let big = bytes(300_000, 1);
    let small = bytes(1_000, 2);
    let files = [("big.bin", &big[..]), ("small.bin", &small[..])];
    let server = Server::start(served(&files), Behaviour::Normal);
    let manifest = manifest(&files);
    let dir = tempfile::tempdir().unwrap();

    let (result, events) = fetch_logged(&manifest, dir.path(), &server);
    let outcomes = result.unwrap();
    assert_eq!(
        outcomes[0].status,
        FetchStatus::Downloaded {
            bytes: 300_000,
            resumed_from: 0
        }
    );
    assert_eq!(fs::read(dir.path().join("big.bin")).unwrap(), big);
    assert_eq!(fs::read(dir.path().join("small.bin")).unwrap(), small);
    assert!(part_files(dir.path()).is_empty());
    assert_eq!(
        events,
        [
            "started big.bin at 0 restarted=false",
            "verified big.bin 300000",
            "started small.bin at 0 restarted=false",
            "verified small.bin 1000",
        ]
    );
    let paths: Vec<String> = server.seen().into_iter().map(|seen| seen.path).collect();
    assert_eq!(paths, ["test/big.bin", "test/small.bin"]);

    // A second call finds both verified and sends no request.
    let (result, events) = fetch_logged(&manifest, dir.path(), &server);
    let outcomes = result.unwrap();
    assert_eq!(outcomes[0].status, FetchStatus::AlreadyPresent);
    assert_eq!(outcomes[1].status, FetchStatus::AlreadyPresent);
    assert_eq!(events, ["present big.bin", "present small.bin"]);
    assert_eq!(server.seen().len(), 2);
}

#[test]
fn corrupt_file_is_rejected() {
    let published = bytes(50_000, 3);
    let mut corrupt = published.clone();
    corrupt[25_000] ^= 0xff;
    let manifest = manifest(&[("data.bin", &published[..])]);
    let server = Server::start(served(&[("data.bin", &corrupt[..])]), Behaviour::Normal);
    let dir = tempfile::tempdir().unwrap();

    let (result, _) = fetch_logged(&manifest, dir.path(), &server);
    let error = result.unwrap_err();
    assert!(matches!(error, Error::ChecksumMismatch { .. }), "{error:?}");
    let message = error.to_string();
    let url = file_url(&manifest, &manifest.files[0], Some(&server.base_url));
    assert!(message.contains(&url), "{message}");
    assert!(message.contains(&md5_hex(&published)), "{message}");
    assert!(message.contains(&md5_hex(&corrupt)), "{message}");
    assert!(!dir.path().join("data.bin").exists());
    assert!(part_files(dir.path()).is_empty());
}

#[test]
fn dropped_connection_resumes_with_range() {
    let data = bytes(200_000, 4);
    let files = [("data.bin", &data[..])];
    let server = Server::start(served(&files), Behaviour::DropFirstHalfway);
    let manifest = manifest(&files);
    let dir = tempfile::tempdir().unwrap();

    // The first attempt gets half of the announced body and keeps it in the `.part`.
    let (result, _) = fetch_logged(&manifest, dir.path(), &server);
    let error = result.unwrap_err();
    assert!(
        matches!(
            error,
            Error::DownloadStopped { .. } | Error::DownloadIncomplete { .. }
        ),
        "{error:?}"
    );
    assert!(!dir.path().join("data.bin").exists());
    let part = fs::read(dir.path().join("data.bin.part")).unwrap();
    assert_eq!(part, data[..100_000]);

    // The second resumes at byte 100,000 and ends verified.
    let (result, events) = fetch_logged(&manifest, dir.path(), &server);
    let outcomes = result.unwrap();
    assert_eq!(
        outcomes[0].status,
        FetchStatus::Downloaded {
            bytes: 200_000,
            resumed_from: 100_000
        }
    );
    assert_eq!(events[0], "started data.bin at 100000 restarted=false");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].range, None);
    assert_eq!(seen[1].range.as_deref(), Some("bytes=100000-"));
    assert_eq!(fs::read(dir.path().join("data.bin")).unwrap(), data);
    assert!(part_files(dir.path()).is_empty());
}

#[test]
fn ignored_range_restarts_from_zero() {
    let data = bytes(80_000, 5);
    let files = [("data.bin", &data[..])];
    let server = Server::start(served(&files), Behaviour::IgnoreRange);
    let manifest = manifest(&files);
    let dir = tempfile::tempdir().unwrap();
    // A `.part` of other bytes: appending the whole file to it would fail the MD5.
    fs::write(dir.path().join("data.bin.part"), vec![0xeeu8; 1_000]).unwrap();

    let (result, events) = fetch_logged(&manifest, dir.path(), &server);
    let outcomes = result.unwrap();
    assert_eq!(
        outcomes[0].status,
        FetchStatus::Downloaded {
            bytes: 80_000,
            resumed_from: 0
        }
    );
    assert_eq!(events[0], "started data.bin at 0 restarted=true");
    assert_eq!(server.seen()[0].range.as_deref(), Some("bytes=1000-"));
    assert_eq!(fs::read(dir.path().join("data.bin")).unwrap(), data);
    assert!(part_files(dir.path()).is_empty());
}

#[test]
fn not_found_names_url() {
    let data = bytes(100, 6);
    let manifest = manifest(&[("missing.bin", &data[..])]);
    let server = Server::start(HashMap::new(), Behaviour::Normal);
    let dir = tempfile::tempdir().unwrap();

    let (result, _) = fetch_logged(&manifest, dir.path(), &server);
    let error = result.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, Error::HttpStatus { status: 404, .. }),
        "{error:?}"
    );
    assert!(
        message.contains(&format!("{}/test/missing.bin", server.base_url)),
        "{message}"
    );
    assert!(message.contains("404 Not Found"), "{message}");
    assert!(!dir.path().join("missing.bin").exists());
    assert!(part_files(dir.path()).is_empty());
}

#[test]
fn wrong_size_is_rejected() {
    let published = bytes(1_000, 7);
    let longer = bytes(1_500, 7);
    let manifest = manifest(&[("data.bin", &published[..])]);
    let server = Server::start(served(&[("data.bin", &longer[..])]), Behaviour::Normal);
    let dir = tempfile::tempdir().unwrap();

    let (result, _) = fetch_logged(&manifest, dir.path(), &server);
    let error = result.unwrap_err();
    assert!(
        matches!(
            error,
            Error::DownloadSize {
                expected: 1_000,
                found: 1_500,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!dir.path().join("data.bin").exists());
    assert!(part_files(dir.path()).is_empty());
}

/// Builds a `.tar.gz` with the given (path, bytes) entries.
fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    for (path, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        // `append_data` rejects `..`, so the traversal entry is named through the raw header.
        let name = &mut header.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

#[test]
fn archive_members_are_extracted() {
    let batch = bytes(3_073, 8);
    let archive = tar_gz(&[
        ("batches/batch.bin", &batch[..]),
        ("batches/meta.txt", b"cat\ndog\n"),
        ("batches/readme.html", b"<p>not needed</p>"),
        ("../escape.bin", b"must not leave the folder"),
    ]);
    let mut manifest = manifest(&[("archive.tar.gz", &archive[..])]);
    manifest.files[0].extract = vec![
        ArchiveMember {
            name: "batch.bin".to_string(),
            size: Some(3_073),
        },
        ArchiveMember {
            name: "meta.txt".to_string(),
            size: None,
        },
    ];
    let server = Server::start(
        served(&[("archive.tar.gz", &archive[..])]),
        Behaviour::Normal,
    );
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("test");

    let (result, events) = fetch_logged(&manifest, &dir, &server);
    let outcomes = result.unwrap();
    assert_eq!(outcomes[0].extracted, 2);
    assert_eq!(
        events[2..],
        ["extracting archive.tar.gz", "extracted archive.tar.gz 2"]
    );
    assert_eq!(fs::read(dir.join("batch.bin")).unwrap(), batch);
    assert_eq!(fs::read(dir.join("meta.txt")).unwrap(), b"cat\ndog\n");
    assert!(!dir.join("readme.html").exists());
    assert!(!dir.join("escape.bin").exists());
    assert!(!root.path().join("escape.bin").exists());
    assert!(part_files(&dir).is_empty());

    // A member that went missing is extracted again from the verified archive.
    fs::remove_file(dir.join("batch.bin")).unwrap();
    let (result, _) = fetch_logged(&manifest, &dir, &server);
    let outcomes = result.unwrap();
    assert_eq!(outcomes[0].status, FetchStatus::AlreadyPresent);
    assert_eq!(outcomes[0].extracted, 2);
    assert_eq!(fs::read(dir.join("batch.bin")).unwrap(), batch);
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn archive_without_member_fails() {
    let archive = tar_gz(&[("batches/meta.txt", b"cat\n")]);
    let mut manifest = manifest(&[("archive.tar.gz", &archive[..])]);
    manifest.files[0].extract = vec![ArchiveMember {
        name: "batch.bin".to_string(),
        size: Some(3_073),
    }];
    let server = Server::start(
        served(&[("archive.tar.gz", &archive[..])]),
        Behaviour::Normal,
    );
    let dir = tempfile::tempdir().unwrap();

    let (result, _) = fetch_logged(&manifest, dir.path(), &server);
    let message = result.unwrap_err().to_string();
    assert!(message.contains("archive.tar.gz"), "{message}");
    assert!(message.contains("does not contain batch.bin"), "{message}");
}

#[test]
fn break_from_callback_keeps_part() {
    let data = bytes(300_000, 9);
    let files = [("data.bin", &data[..])];
    let server = Server::start(served(&files), Behaviour::Normal);
    let manifest = manifest(&files);
    let dir = tempfile::tempdir().unwrap();

    let result = fetch(
        &manifest,
        dir.path(),
        Some(&server.base_url),
        &mut |event| match event {
            FetchEvent::Received { .. } => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        },
    );
    let error = result.unwrap_err();
    let Error::Interrupted { received, .. } = error else {
        panic!("expected Interrupted, got {error:?}");
    };
    assert!(received > 0, "{received}");
    assert!(received < 300_000, "{received}");
    assert!(!dir.path().join("data.bin").exists());
    let part = fs::read(dir.path().join("data.bin.part")).unwrap();
    assert_eq!(part, data[..received as usize]);
}

#[test]
fn cifar10_members_load_as_dataset() {
    // The published CIFAR-10 manifest with a small archive in the same layout: each batch
    // has 2 records of 3,073 bytes, the first byte of a record being its label.
    let mut manifest =
        toploss_data::fetch::published(toploss_data::DatasetFormat::Cifar10).unwrap();
    let batch = |label: u8| -> Vec<u8> {
        let mut data = bytes(2 * 3_073, u32::from(label));
        data[0] = label;
        data[3_073] = label + 1;
        data
    };
    let batches: Vec<(String, Vec<u8>)> = (1..=5u8)
        .map(|number| (format!("data_batch_{number}.bin"), batch(number)))
        .chain([("test_batch.bin".to_string(), batch(7))])
        .collect();
    let meta = b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
    let mut entries: Vec<(String, Vec<u8>)> = batches
        .iter()
        .map(|(name, data)| (format!("cifar-10-batches-bin/{name}"), data.clone()))
        .collect();
    entries.push((
        "cifar-10-batches-bin/batches.meta.txt".to_string(),
        meta.to_vec(),
    ));
    let entry_refs: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(path, data)| (path.as_str(), data.as_slice()))
        .collect();
    let archive = tar_gz(&entry_refs);

    let file = &mut manifest.files[0];
    file.size = Some(archive.len() as u64);
    file.md5 = md5_hex(&archive);
    for member in &mut file.extract {
        if member.size.is_some() {
            member.size = Some(2 * 3_073);
        }
    }
    let served: HashMap<String, Vec<u8>> =
        HashMap::from([("cifar10/cifar-10-binary.tar.gz".to_string(), archive)]);
    let server = Server::start(served, Behaviour::Normal);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cifar10");

    let (result, _) = fetch_logged(&manifest, &dir, &server);
    assert_eq!(result.unwrap()[0].extracted, 7);

    let spec: toploss_data::DatasetSpec = format!("cifar10:{}", dir.display()).parse().unwrap();
    let dataset = toploss_data::load(&spec).unwrap();
    assert_eq!(dataset.train.len(), 10);
    assert_eq!(dataset.test.len(), 2);
    assert_eq!(dataset.classes[9], "truck");
    // Batch n has labels n and n+1, so the train labels are 1 2 2 3 3 4 4 5 5 6.
    assert_eq!(dataset.train.labels, [1, 2, 2, 3, 3, 4, 4, 5, 5, 6]);
    assert_eq!(dataset.test.labels, [7, 8]);
}
