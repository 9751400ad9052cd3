//! `toploss review`: a local web server that pages through a run's candidates and writes each
//! keep / relabel / discard decision to `RUN/corrections.csv` as it is made.
//!
//! The server loads everything it shows at start (scores of one epoch and split, that epoch's
//! probabilities, the split's images) and keeps the decisions in memory behind a mutex. Each
//! change rewrites the whole file atomically before the reply is sent, so the file always contains
//! every acknowledged decision and a reader never sees a partial file.

mod candidates;
mod http;
mod session;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use image::ExtendedColorType;
use image::ImageEncoder;
use image::codecs::png::PngEncoder;
use ndarray::Array2;
use toploss_data::run::{DYNAMICS_PARQUET, Dynamics, RunInfo, SplitName, probs_path, read_npy_f32};
use toploss_data::{Correction, Split, read_corrections};

use crate::args::{ReviewArgs, SplitArg};
use crate::output::Ui;
use crate::top::{load_run_dataset, resolve_epoch};
use candidates::{read_candidates, top_loss_candidates};
use http::App;
use session::{Decisions, ReviewData};

/// File in the run folder that the decisions go to (the corrections format of `train
/// --relabel` and `--discard`).
pub const CORRECTIONS_CSV: &str = "corrections.csv";

/// Threads that handle requests. Every request is short (a PNG of one image, a JSON reply, or
/// a small file write), so a few threads serve several open pages.
const WORKER_THREADS: usize = 4;

/// How often the worker threads check for Ctrl-C while no request arrives.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Candidates reviewed without `-k` or `--candidates`: the 100 highest losses.
const DEFAULT_K: usize = 100;

/// Lock file in the run folder, held by the `toploss review` that may write corrections.
const LOCK_FILE: &str = ".review.lock";

/// Takes the run's review lock, or fails when another `toploss review` holds it.
fn lock_run(run: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let path = run.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot create the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another toploss review is serving {} and writing its corrections.csv; stop it \
             first, or pass --split test for a read-only page",
            run.display()
        ),
        Err(std::fs::TryLockError::Error(error)) => {
            Err(error).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Runs `toploss review`.
pub fn run_review(args: &ReviewArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    // Everything the page shows, loaded before the server starts.
    let data = load_review_data(args, ui)?;
    // Two servers on one run would each overwrite the other's decisions; the lock lasts as
    // long as the server.
    let _lock = if data.editable() {
        Some(lock_run(&args.run)?)
    } else {
        None
    };
    let entries = match data.split {
        SplitName::Train => load_decisions(&data, ui)?,
        // Decisions are training-sample ids, so the test split has none to show.
        SplitName::Test => Vec::new(),
    };

    // Listen, then print the address as the first line on stdout for scripts to read.
    let address = SocketAddr::new(args.bind, args.port);
    let server = tiny_http::Server::http(address).map_err(|error| {
        anyhow!("cannot listen on {address}: {error}; pass another --port (0 picks a free one)")
    })?;
    let bound = server
        .server_addr()
        .to_ip()
        .with_context(|| format!("cannot read the address bound for {address}"))?;
    println!("Review page: http://{bound}/");
    std::io::stdout()
        .flush()
        .context("cannot write the page address to stdout")?;

    if !bound.ip().is_loopback() {
        tracing::warn!(
            "listening on {bound}: the page has no login, so anyone who can reach this address \
             can change {}",
            data.corrections_path().display()
        );
    }
    let access = if data.editable() {
        format!("decisions go to {}", data.corrections_path().display())
    } else {
        format!("the {} split is read-only", data.split)
    };
    ui.status(&format!(
        "reviewing {} candidates ({}) of the {} split at epoch {}/{}; {access}; press Ctrl-C to stop",
        data.candidates.len(),
        data.source,
        data.split,
        data.epoch,
        data.epochs
    ));

    // Serve until Ctrl-C.
    let app = App {
        allowed_hosts: allowed_hosts(bound),
        decisions: Mutex::new(Decisions::new(entries)),
        data,
    };
    std::thread::scope(|scope| {
        for _ in 0..WORKER_THREADS {
            scope.spawn(|| serve(&server, &app));
        }
    });

    let decided = app.decisions.lock().map_or(0, |decisions| decisions.len());
    ui.status(&format!(
        "review server stopped; {} holds {decided} decision{}",
        app.data.corrections_path().display(),
        if decided == 1 { "" } else { "s" }
    ));
    Ok(ExitCode::SUCCESS)
}

/// Handles requests until Ctrl-C (or SIGTERM) arrives.
fn serve(server: &tiny_http::Server, app: &App) {
    while !crate::progress::stop_requested() {
        match server.recv_timeout(POLL_INTERVAL) {
            Ok(Some(request)) => http::handle(app, request),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!("cannot receive a request: {error}");
                std::thread::sleep(POLL_INTERVAL);
            }
        }
    }
}

/// Returns the `Host` values a browser sends for a loopback address, or none (any host) for
/// another address, whose host names this server cannot know.
fn allowed_hosts(bound: SocketAddr) -> Vec<String> {
    if !bound.ip().is_loopback() {
        return Vec::new();
    }
    let port = bound.port();
    vec![
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ]
}

/// Loads the run's scores, probabilities, images and candidates.
fn load_review_data(args: &ReviewArgs, ui: &Ui) -> anyhow::Result<ReviewData> {
    if !args.run.exists() {
        bail!(
            "run folder {} does not exist; pass the --out folder of `toploss train`",
            args.run.display()
        );
    }
    let info = RunInfo::read(&args.run)?;
    if args.k == Some(0) {
        bail!("invalid -k 0: expected at least 1");
    }
    let epoch = resolve_epoch(&args.epoch, &info, &args.run)?;
    let split = match args.split {
        SplitArg::Train => SplitName::Train,
        SplitArg::Test => SplitName::Test,
    };

    // Scores and probabilities of the epoch.
    let dynamics_path = args.run.join(DYNAMICS_PARQUET);
    let rows = Dynamics::read(&dynamics_path, Some(epoch), Some(split))?
        .get(epoch, split)
        .cloned()
        .with_context(|| {
            format!(
                "{}: no {split} rows for epoch {epoch}",
                dynamics_path.display()
            )
        })?;
    let probs = read_probs(&args.run, split, epoch, rows.len(), info.classes.len(), ui)?;

    // Images, cut to the samples the run trained and scored.
    let dataset = load_run_dataset(&info, &args.run, args.data.as_ref())?;
    let (mut images, count) = match split {
        SplitName::Train => (dataset.train, info.dataset.train_count),
        SplitName::Test => (dataset.test, info.dataset.test_count),
    };
    images.truncate(count);
    if images.len() != rows.len() {
        bail!(
            "{} has {} {split} rows for epoch {epoch}, but the dataset has {} {split} samples; \
             the run folder is inconsistent",
            dynamics_path.display(),
            rows.len(),
            images.len()
        );
    }

    // Candidates.
    let (candidates, source) = match &args.candidates {
        Some(path) => {
            let mut candidates = read_candidates(path, &images)?;
            let total = candidates.len();
            if let Some(k) = args.k {
                candidates.truncate(k);
            }
            let source = if candidates.len() < total {
                format!(
                    "first {} of {total} ids in {}",
                    candidates.len(),
                    path.display()
                )
            } else {
                format!("ids in {}", path.display())
            };
            (candidates, source)
        }
        None => {
            let k = args.k.unwrap_or(DEFAULT_K);
            let candidates = top_loss_candidates(&rows.loss, k)?;
            if candidates.len() < k {
                ui.status(&format!(
                    "note: -k {k} is more than the {} {split} samples; reviewing all of them",
                    candidates.len()
                ));
            }
            let source = format!("top {} losses", candidates.len());
            (candidates, source)
        }
    };

    Ok(ReviewData {
        run: args.run.clone(),
        split,
        epoch,
        epochs: info.epochs.len() as u32,
        classes: info.classes,
        rows,
        probs,
        images,
        candidates,
        source,
    })
}

/// Reads the epoch's `N x K` probabilities; a missing file only hides the top classes.
fn read_probs(
    run: &Path,
    split: SplitName,
    epoch: u32,
    rows: usize,
    classes: usize,
    ui: &Ui,
) -> anyhow::Result<Option<Array2<f32>>> {
    let path = probs_path(run, split, epoch);
    if !path.exists() {
        ui.status(&format!(
            "note: {} not found, so the page shows no top classes; train with --save-probs all \
             to keep every epoch's probabilities",
            path.display()
        ));
        return Ok(None);
    }
    let probs = read_npy_f32(&path)?;
    if probs.shape() != [rows, classes] {
        bail!(
            "{} is {:?}, expected {rows} x {classes} (samples x classes); the run folder is \
             inconsistent",
            path.display(),
            probs.shape()
        );
    }
    Ok(Some(probs))
}

/// Reads the decisions of an earlier session from RUN/corrections.csv, when it exists, and
/// checks the `path` of each against the dataset (folder datasets).
fn load_decisions(data: &ReviewData, ui: &Ui) -> anyhow::Result<Vec<Correction>> {
    let path = data.corrections_path();
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut entries = read_corrections(&path, &data.classes, data.len())?.entries;
    for entry in &mut entries {
        let expected = data.images.path(entry.id as usize);
        match (&entry.path, expected) {
            (Some(found), Some(expected)) if found != expected => bail!(
                "{}: id {} has path {found:?}, but in this run's dataset id {} is {expected:?}; \
                 the file belongs to another dataset, so move it away to start afresh",
                path.display(),
                entry.id,
                entry.id
            ),
            // Fill in paths missing from a hand-written file, so that rewrites keep the column.
            (None, Some(expected)) => entry.path = Some(expected.to_string()),
            _ => {}
        }
    }
    ui.status(&format!(
        "loaded {} decision{} from {}",
        entries.len(),
        if entries.len() == 1 { "" } else { "s" },
        path.display()
    ));
    Ok(entries)
}

/// Encodes image `id` of `split` as PNG at its stored size: grayscale for one channel, RGB for
/// three (planes `C x H x W` become interleaved pixels).
pub fn encode_png(split: &Split, id: usize) -> Result<Vec<u8>, image::ImageError> {
    let shape = split.shape;
    let pixels = split.image(id);
    let plane = shape.height * shape.width;
    let (color, bytes) = if shape.channels == 1 {
        (ExtendedColorType::L8, pixels.to_vec())
    } else {
        let mut rgb = Vec::with_capacity(plane * 3);
        for position in 0..plane {
            for channel in 0..3 {
                rgb.push(pixels[channel.min(shape.channels - 1) * plane + position]);
            }
        }
        (ExtendedColorType::Rgb8, rgb)
    };
    let mut png = Vec::new();
    PngEncoder::new(&mut png).write_image(
        &bytes,
        shape.width as u32,
        shape.height as u32,
        color,
    )?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;
    use toploss_data::ImageShape;

    #[test]
    fn encode_png_interleaves_channels() {
        // One 1 x 2 RGB image stored as planes: R = [10, 11], G = [20, 21], B = [30, 31].
        let split = Split {
            images: vec![10, 11, 20, 21, 30, 31],
            labels: vec![0],
            shape: ImageShape {
                channels: 3,
                height: 1,
                width: 2,
            },
            paths: None,
        };
        let png = encode_png(&split, 0).unwrap();
        let decoded = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(decoded.dimensions(), (2, 1));
        assert_eq!(decoded.as_raw(), &vec![10, 20, 30, 11, 21, 31]);
    }

    #[test]
    fn allowed_hosts_only_for_loopback() {
        let loopback: SocketAddr = "127.0.0.1:8765".parse().unwrap();
        assert!(allowed_hosts(loopback).contains(&"localhost:8765".to_string()));
        let any: SocketAddr = "0.0.0.0:8765".parse().unwrap();
        assert!(allowed_hosts(any).is_empty());
    }
}
