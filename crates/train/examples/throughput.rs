//! Measures how fast toploss trains and evaluates the shallow CNN on real MNIST, for the
//! side-by-side benchmark in `bench/run.sh`.
//!
//! One run loads MNIST, warms up on a throwaway model, trains one epoch over the first
//! `--images` train images with [`fit`] (batch 128, Adam, lr 1e-3, as the CLI does), then
//! times [`evaluate`] over the same images (batch 500). It prints one JSON line on stdout.
//! Training seconds run from the `Training` phase start to the `EvaluatingTrain` phase start,
//! as reported through [`Observer::phase_started`], so the evaluation pass that `fit` runs
//! after the epoch is not counted as training.
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo run --release -p toploss-train --example throughput -- --images 20000
//! ```
//!
//! The thread count is rayon's global pool, which burn's flex backend and its matrix
//! multiplication use; set it with `RAYON_NUM_THREADS` or `--threads`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use burn::prelude::Device;
use clap::Parser;
use toploss_data::{DatasetFormat, DatasetSpec};
use toploss_train::{
    EpochResult, Error, InputSpec, ModelKind, Observer, Phase, SplitTensors, TrainConfig,
    TrainData, evaluate, fit,
};

// The CLI binary uses mimalloc, so the example does too: with glibc malloc, burn-flex spent
// much of its time in page faults when the CLI was measured on 2 cores.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Train images used by the warm-up fit: two batches of 128.
const WARMUP_IMAGES: usize = 256;
/// Test images evaluated by `fit` after the epoch; untimed, so kept to one evaluation batch.
const TEST_IMAGES: usize = 500;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "Time shallow-CNN training and evaluation on MNIST; prints one JSON line")]
struct Args {
    /// Number of train images (ids 0..N) to train on for one epoch and then evaluate.
    #[arg(long, default_value_t = 20_000)]
    images: usize,
    /// Threads of rayon's global pool; default: RAYON_NUM_THREADS, else one per CPU.
    #[arg(long)]
    threads: Option<usize>,
    /// MNIST folder with the four IDX files.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/mnist"))]
    data: PathBuf,
    /// Seed of weight initialisation and shuffling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// Records when each phase of the single epoch starts.
#[derive(Default)]
struct PhaseClock {
    training: Option<Instant>,
    evaluating_train: Option<Instant>,
    evaluating_test: Option<Instant>,
    finished: Option<Instant>,
    train_objective: f64,
}

impl Observer for PhaseClock {
    fn phase_started(&mut self, _epoch: u32, phase: Phase, _total: usize) {
        let now = Some(Instant::now());
        match phase {
            Phase::Training => self.training = now,
            Phase::EvaluatingTrain => self.evaluating_train = now,
            Phase::EvaluatingTest => self.evaluating_test = now,
            // `fit` never runs cross-validation folds.
            Phase::TrainingFold(..) | Phase::PredictingFold(..) => {}
        }
    }

    fn epoch_finished(&mut self, result: EpochResult) -> Result<(), Error> {
        self.finished = Some(Instant::now());
        self.train_objective = result.train_objective;
        Ok(())
    }
}

/// Seconds between two recorded instants, or an error naming the phase that never started.
fn seconds_between(
    start: Option<Instant>,
    end: Option<Instant>,
    interval: &str,
) -> anyhow::Result<f64> {
    match (start, end) {
        (Some(start), Some(end)) => Ok(end.duration_since(start).as_secs_f64()),
        _ => bail!(
            "fit did not report the start and end of {interval}: update PhaseClock to the phases that fit reports"
        ),
    }
}

/// Reads the peak resident set size of this process so far (`VmHWM`, KiB) from
/// `/proc/self/status`; `None` where that file or line is missing (not Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Builds a `TrainData` from the first `train` train images and first `test` test images.
fn subset(dataset: &toploss_data::Dataset, train: usize, test: usize) -> TrainData {
    let train_pixels = train * dataset.train.shape.len();
    let test_pixels = test * dataset.test.shape.len();
    let shape = dataset.train.shape;
    TrainData {
        train: SplitTensors::from_u8(
            &dataset.train.images[..train_pixels],
            dataset.train.labels[..train].to_vec(),
        ),
        test: SplitTensors::from_u8(
            &dataset.test.images[..test_pixels],
            dataset.test.labels[..test].to_vec(),
        ),
        excluded: vec![false; train],
        input: InputSpec {
            channels: shape.channels,
            height: shape.height,
            width: shape.width,
            classes: dataset.classes.len(),
        },
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();

    // Threads: an explicit --threads wins over RAYON_NUM_THREADS.
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .with_context(|| format!("failed to start a rayon pool of {threads} threads"))?;
    }

    // Data
    let spec = DatasetSpec::new(DatasetFormat::Mnist, &args.data);
    let dataset = toploss_data::load(&spec)
        .with_context(|| format!("failed to load MNIST from {}", args.data.display()))?;
    let available = dataset.train.len();
    if args.images == 0 || args.images > available {
        bail!(
            "invalid --images {}: expected 1 to {available}, the size of the train split in {}",
            args.images,
            args.data.display()
        );
    }
    let config = TrainConfig {
        model: ModelKind::ShallowCnn,
        epochs: 1,
        seed: args.seed,
        ..TrainConfig::default()
    };
    let test_images = TEST_IMAGES.min(dataset.test.len());
    let warmup = subset(&dataset, WARMUP_IMAGES.min(available), test_images);
    let data = subset(&dataset, args.images, test_images);
    drop(dataset);
    let rss_after_setup_kib = peak_rss_kib();

    // Warm-up: rayon's threads, the allocator's pages and the first-call paths, on a model
    // that is thrown away.
    let mut warmup_clock = PhaseClock::default();
    black_box(fit(&config, &warmup, &mut warmup_clock).context("warm-up fit failed")?);

    // Training: one epoch over the subset.
    let mut clock = PhaseClock::default();
    let model = fit(&config, &data, &mut clock).context("fit failed")?;
    let train_seconds = seconds_between(clock.training, clock.evaluating_train, "training")?;
    let eval_in_fit_seconds = seconds_between(
        clock.evaluating_train,
        clock.evaluating_test,
        "the train evaluation pass",
    )?;

    // Evaluation: forward pass, per-sample loss and softmax over the same images.
    let device = Device::flex();
    let started = Instant::now();
    let eval = evaluate(
        &model,
        &data.train,
        data.input,
        config.eval_batch_size,
        &device,
        |_| {},
    );
    let eval_seconds = started.elapsed().as_secs_f64();
    let eval = black_box(eval);

    let record = serde_json::json!({
        "side": "toploss",
        "images": args.images,
        "threads": rayon::current_num_threads(),
        "batch_size": config.batch_size,
        "eval_batch_size": config.eval_batch_size,
        "train_seconds": train_seconds,
        "train_img_per_s": args.images as f64 / train_seconds,
        "eval_seconds": eval_seconds,
        "eval_img_per_s": args.images as f64 / eval_seconds,
        "eval_in_fit_img_per_s": args.images as f64 / eval_in_fit_seconds,
        "train_objective": clock.train_objective,
        "eval_mean_loss": eval.mean_loss(),
        "eval_accuracy": eval.accuracy(),
        "rss_after_setup_kib": rss_after_setup_kib,
        "peak_rss_kib": peak_rss_kib(),
    });
    println!("{record}");
    Ok(())
}
