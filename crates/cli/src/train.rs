//! `toploss train` and `toploss demo`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use toploss_data::run::{
    DYNAMICS_PARQUET, DatasetInfo, Dynamics, EpochMetrics, ModelInfo, NOISE_JSON, OOF_PROBS_NPY,
    RUN_JSON, RunInfo, RunStatus, SplitName, prepare_output_dir, write_atomic, write_npy_f32,
};
use toploss_data::{
    Corrections, Dataset, DatasetFormat, DatasetSpec, LabelNoise, inject_label_noise, load,
    read_corrections,
};
use toploss_report::EpochPoint;
use toploss_train::{
    Classifier, EpochResult, InputSpec, ModelKind, Observer, Phase, Recorder, ShallowCnn,
    SplitTensors, TrainConfig, TrainData, fit, out_of_fold_probs,
};

use crate::args::{DemoArgs, TrainArgs, TrainingOptions};
use crate::output::Ui;
use crate::progress::{EpochBars, clear_all};
use crate::top::{Ranking, TopRequest, print_table, render_top};

/// Rows of the table the demo prints.
const DEMO_TABLE_ROWS: usize = 10;

/// Runs `toploss train`.
pub fn run_train(args: &TrainArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    set_threads(args.training.threads)?;
    toploss_train::set_kernels(args.training.kernels.into());
    let spec = args.data.clone().with_options(args.dataset.options());
    let dataset = load(&spec).with_context(|| format!("cannot load dataset {spec}"))?;
    if args.seeds == 0 {
        bail!("invalid --seeds 0: expected at least 1");
    }
    if args.seeds == 1 {
        if args.overwrite {
            warn_about_earlier_outputs(&args.out);
        }
        let outcome = train_run(
            dataset,
            &spec,
            &args.out,
            args.overwrite,
            &args.training,
            ui,
        )?;
        println!(
            "wrote {} ({} epoch{}, test accuracy {:.2}%)",
            outcome.dir.display(),
            outcome.info.epochs.len(),
            if outcome.info.epochs.len() == 1 {
                ""
            } else {
                "s"
            },
            outcome.final_metrics().test_accuracy * 100.0
        );
        println!("next: toploss top {} -k 16", outcome.dir.display());
        return Ok(ExitCode::SUCCESS);
    }

    // A group of runs, one per seed, in OUT/seed-S/.
    prepare_output_dir(&args.out, args.overwrite)?;
    let first = args.training.seed;
    let seeds = first..first + u64::from(args.seeds);
    let others = other_seed_runs(&args.out, &seeds);
    if !others.is_empty() {
        let pronoun = if others.len() == 1 { "it" } else { "them" };
        tracing::warn!(
            "{} also contains {}, from an earlier run. `toploss compare {}` would count \
             {pronoun} with this group: remove {pronoun} or choose another --out",
            args.out.display(),
            others.join(", "),
            args.out.display(),
        );
    }
    for seed in seeds {
        let options = TrainingOptions {
            seed,
            ..args.training.clone()
        };
        let out = args.out.join(format!("seed-{seed}"));
        ui.status(&format!(
            "== seed {seed} ({} of {})",
            seed - first + 1,
            args.seeds
        ));
        let outcome = train_run(dataset.clone(), &spec, &out, args.overwrite, &options, ui)?;
        println!(
            "wrote {} (seed {seed}, test accuracy {:.2}%)",
            outcome.dir.display(),
            outcome.final_metrics().test_accuracy * 100.0
        );
    }
    println!("next: toploss compare {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// Warns that the outputs other commands wrote into the run folder `dir` (grids, candidates,
/// the report) belong to the run that `--overwrite` is about to replace.
fn warn_about_earlier_outputs(dir: &Path) {
    let earlier: Vec<&str> = ["report.html", "curves.png", "top", "issues"]
        .into_iter()
        .filter(|name| dir.join(name).exists())
        .collect();
    if !earlier.is_empty() {
        tracing::warn!(
            "{} keeps {} from the earlier run; they describe that run until you write them \
             again (toploss top, issues, report)",
            dir.display(),
            earlier.join(", ")
        );
    }
}

/// Returns the names of the `seed-S` run folders in `dir` whose seed is outside `seeds`.
fn other_seed_runs(dir: &Path, seeds: &std::ops::Range<u64>) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut others: Vec<String> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| {
            name.strip_prefix("seed-")
                .and_then(|seed| seed.parse::<u64>().ok())
                .is_some_and(|seed| !seeds.contains(&seed))
                && dir.join(name).join(RUN_JSON).is_file()
        })
        .collect();
    others.sort();
    others
}

/// Adds the dataset reader options and a generated test split to the run's config, so that
/// later commands load the same samples with the same ids. Default options are left out.
fn add_dataset_config(config: &mut serde_json::Value, spec: &DatasetSpec, dataset: &Dataset) {
    let Some(object) = config.as_object_mut() else {
        return;
    };
    if !spec.options.is_default() {
        object.insert("data_options".into(), serde_json::json!(spec.options));
    }
    if let Some(split) = dataset.generated_split {
        object.insert("test_split".into(), serde_json::json!(split));
    }
}

/// Sizes the global thread pool that burn's CPU backend and the scorers share.
fn set_threads(threads: Option<usize>) -> anyhow::Result<()> {
    let Some(threads) = threads else {
        return Ok(());
    };
    if threads == 0 {
        bail!("invalid --threads 0: expected at least 1");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .context("cannot set up the thread pool")
}

/// Runs `toploss demo`: train on bundled MNIST, a grid per epoch, a table of the top 10.
pub fn run_demo(args: &DemoArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    set_threads(args.training.threads)?;
    toploss_train::set_kernels(args.training.kernels.into());
    let data_dir = match &args.data {
        Some(dir) => dir.clone(),
        None => bundled_mnist()?,
    };
    let spec = DatasetSpec::new(DatasetFormat::Mnist, data_dir);
    let out = match &args.out {
        Some(out) => out.clone(),
        None => next_free_dir(Path::new("runs"), "demo"),
    };
    if args.k == 0 {
        bail!("invalid -k 0: a grid needs at least 1 tile");
    }

    let dataset = load(&spec).with_context(|| format!("cannot load dataset {spec}"))?;
    let outcome = train_run(
        dataset.clone(),
        &spec,
        &out,
        args.overwrite,
        &args.training,
        ui,
    )?;

    // One grid per epoch, from the recorded dynamics.
    let dynamics = Dynamics::read(&out.join(DYNAMICS_PARQUET), None, Some(SplitName::Train))
        .context("cannot read back the recorded dynamics")?;
    let mut written = vec![out.join("run.json"), out.join(DYNAMICS_PARQUET)];
    let mut last = None;
    for epoch in dynamics.epochs() {
        let request = TopRequest {
            k: args.k,
            epoch,
            epochs: outcome.info.epochs.len() as u32,
            split: SplitName::Train,
            class: None,
            smallest: false,
        };
        let rows = dynamics
            .get(epoch, SplitName::Train)
            .context("recorded dynamics lack an epoch")?;
        let png = out
            .join("top")
            .join(format!("train-e{epoch:02}-top-{}.png", args.k));
        let ranking = render_top(&request, rows, &dataset, &outcome.info.classes, &png)?;
        written.push(png);
        last = Some((ranking, rows));
    }
    let curves = out.join("curves.png");
    write_curves(&outcome.info, &curves)?;
    written.push(curves);
    written.push(out.join("model.safetensors"));
    written.push(crate::report::write_run_report(&out, ui)?);

    if let Some((ranking, rows)) = last {
        let shown = Ranking {
            ids: ranking.ids.iter().copied().take(DEMO_TABLE_ROWS).collect(),
            ..ranking
        };
        println!(
            "\nTop {} training losses after epoch {}:",
            shown.ids.len(),
            outcome.info.epochs.len()
        );
        print_table(&shown, rows, &outcome.info.classes);
    }
    println!(
        "\ntest accuracy after {}: {:.2}%",
        crate::output::count(outcome.info.epochs.len(), "epoch"),
        outcome.final_metrics().test_accuracy * 100.0
    );
    println!("wrote:");
    for path in &written {
        println!("  {}", path.display());
    }
    println!(
        "next: open {} in a browser, or run toploss top {} -k 25 --split test",
        outcome.dir.join(crate::report::REPORT_HTML).display(),
        outcome.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Finds the MNIST copy in the repository: `data/mnist` under the working folder, else next to
/// the sources this binary was built from.
fn bundled_mnist() -> anyhow::Result<PathBuf> {
    let candidates = [
        PathBuf::from("data/mnist"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist"),
    ];
    for candidate in &candidates {
        if candidate.is_dir() {
            return Ok(candidate.clone());
        }
    }
    bail!(
        "bundled MNIST not found at {} or {}; pass --data DIR with the four MNIST IDX files",
        candidates[0].display(),
        candidates[1].display()
    )
}

/// `parent/name`, or `parent/name-2`, `-3`, ... if it exists.
fn next_free_dir(parent: &Path, name: &str) -> PathBuf {
    let first = parent.join(name);
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|n| parent.join(format!("{name}-{n}")))
        .find(|dir| !dir.exists())
        .expect("some numbered folder is free")
}

/// A finished training run.
pub struct TrainOutcome {
    /// The run folder.
    pub dir: PathBuf,
    /// Its final `run.json`.
    pub info: RunInfo,
}

impl TrainOutcome {
    fn final_metrics(&self) -> &EpochMetrics {
        self.info
            .epochs
            .last()
            .expect("a complete run has at least one epoch")
    }
}

fn config_json(
    options: &TrainingOptions,
    config: &TrainConfig,
    spec: &DatasetSpec,
    overlays: &Overlays,
) -> serde_json::Value {
    serde_json::json!({
        "data": spec.to_string(),
        "model": config.model.name(),
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "eval_batch_size": config.eval_batch_size,
        "lr": config.learning_rate,
        "seed": config.seed,
        "label_smoothing": config.label_smoothing,
        "train_limit": options.train_limit,
        "test_limit": options.test_limit,
        "save_probs": toploss_train::SaveProbs::from(options.save_probs),
        "threads": options.threads,
        "folds": options.folds,
        "relabel": options.relabel.as_ref().map(|path| path.display().to_string()),
        "relabelled": overlays.relabelled,
        "discard": options.discard.as_ref().map(|path| path.display().to_string()),
        "discarded": overlays.excluded.iter().filter(|&&excluded| excluded).count(),
        "label_noise": options.label_noise,
        "noise_kind": options.label_noise.map(|_| toploss_data::NoiseKind::from(options.noise_kind)),
        "noise_seed": options.label_noise.map(|_| options.noise_seed),
    })
}

/// Trains one run into `out` and returns its description.
pub fn train_run(
    mut dataset: Dataset,
    spec: &DatasetSpec,
    out: &Path,
    overwrite: bool,
    options: &TrainingOptions,
    ui: &Ui,
) -> anyhow::Result<TrainOutcome> {
    // Config
    let config = TrainConfig {
        model: ModelKind::from(options.model),
        epochs: options.epochs,
        batch_size: options.batch_size,
        eval_batch_size: options.eval_batch_size,
        learning_rate: options.learning_rate,
        seed: options.seed,
        label_smoothing: options.label_smoothing,
    };
    config.validate()?;

    // Data
    if let Some(limit) = options.train_limit {
        check_limit("--train-limit", limit, dataset.train.len())?;
        dataset.train.truncate(limit);
    }
    if let Some(limit) = options.test_limit {
        check_limit("--test-limit", limit, dataset.test.len())?;
        dataset.test.truncate(limit);
    }
    let overlays = apply_overlays(&mut dataset, options)?;
    let shape = dataset.train.shape;
    let input = InputSpec {
        channels: shape.channels,
        height: shape.height,
        width: shape.width,
        classes: dataset.classes.len(),
    };
    if config.model == ModelKind::ShallowCnn
        && (input.height < ShallowCnn::MIN_SIDE || input.width < ShallowCnn::MIN_SIDE)
    {
        return Err(toploss_train::Error::ImageTooSmall {
            height: input.height,
            width: input.width,
            min: ShallowCnn::MIN_SIDE,
        }
        .into());
    }

    warn_if_model_is_large(config.model, input);

    if let Some(folds) = options.folds
        && (folds < 2 || folds > dataset.train.len())
    {
        bail!(
            "invalid --folds {folds}: expected at least 2 and at most the {} train samples",
            dataset.train.len()
        );
    }

    // Run folder
    prepare_output_dir(out, overwrite)?;
    if overwrite {
        remove_stale_run_files(out)?;
    }
    let mut run_config = config_json(options, &config, spec, &overlays);
    let kernels = toploss_train::Kernels::from(options.kernels);
    if kernels != toploss_train::Kernels::Fast {
        if config.model != ModelKind::ShallowCnn {
            // Only shallow-cnn has fast kernels, so the run is the same either way.
            tracing::warn!(
                "--kernels {} has no effect with --model {}: only shallow-cnn has fast kernels",
                kernels.name(),
                config.model.name()
            );
        } else if let Some(object) = run_config.as_object_mut() {
            // Left out by default, so that runs from before the choice existed group with
            // today's default runs in `compare`.
            object.insert("kernels".into(), kernels.name().into());
        }
    }
    add_dataset_config(&mut run_config, spec, &dataset);
    let info = RunInfo {
        toploss_version: env!("CARGO_PKG_VERSION").to_string(),
        status: RunStatus::Running,
        classes: dataset.classes.clone(),
        config: run_config,
        dataset: DatasetInfo {
            format: dataset.format.name().to_string(),
            path: spec.path.display().to_string(),
            resolved_path: std::fs::canonicalize(&spec.path)
                .ok()
                .map(|path| path.display().to_string()),
            fingerprint: dataset.fingerprint.clone(),
            train_count: dataset.train.len(),
            test_count: dataset.test.len(),
        },
        model: ModelInfo {
            architecture: config.model.name().to_string(),
            channels: input.channels,
            height: input.height,
            width: input.width,
            weights: None,
        },
        epochs: Vec::new(),
    };
    let recorder = Recorder::new(out, info, options.save_probs.into())?;
    crate::progress::set_run_folder(Some(out));
    if let Some(noise) = &overlays.noise {
        let path = out.join(NOISE_JSON);
        write_atomic(&path, |file| {
            serde_json::to_writer(&mut *file, noise).map_err(std::io::Error::other)
        })?;
    }

    // Training
    ui.status(&format!(
        "training {} on {} ({} train / {} test images, {} classes) for {} into {}",
        config.model.name(),
        spec,
        dataset.train.len(),
        dataset.test.len(),
        input.classes,
        crate::output::count(config.epochs as usize, "epoch"),
        out.display()
    ));
    let data = TrainData {
        train: SplitTensors::from_u8(&dataset.train.images, dataset.train.labels.clone()),
        test: SplitTensors::from_u8(&dataset.test.images, dataset.test.labels.clone()),
        excluded: overlays.excluded.clone(),
        input,
    };
    drop(dataset);
    let mut observer = CliObserver {
        recorder,
        bars: EpochBars::new(ui.interactive, config.epochs),
        ui: *ui,
        epochs: config.epochs,
    };
    let model = fit(&config, &data, &mut observer);
    clear_all();
    let model = match model {
        Ok(model) => model,
        Err(error) => {
            // Leave run.json saying why the run has fewer epochs than configured.
            let status = match error {
                toploss_train::Error::Interrupted { .. } => RunStatus::Interrupted,
                _ => RunStatus::Failed,
            };
            let stopped = observer.recorder.mark_stopped(status);
            crate::progress::set_run_folder(None);
            match stopped {
                // The write stopped training, so its error is the one to report.
                Err(write_error) if observer.recorder.write_failed() => {
                    return Err(write_error.into());
                }
                Err(mark_error) => {
                    tracing::warn!("cannot mark {} as {status}: {mark_error}", out.display());
                }
                Ok(()) => {}
            }
            return Err(error.into());
        }
    };
    let finished = observer.recorder.finish(&model);
    crate::progress::set_run_folder(None);
    finished?;

    // Cross-validation, after the main run so that its results are on disk first.
    if let Some(folds) = options.folds {
        ui.status(&format!(
            "training {folds} cross-validation models for out-of-fold probabilities"
        ));
        let (probs, _) = out_of_fold_probs(&config, &data, folds, &mut observer)?;
        clear_all();
        let path = out.join(OOF_PROBS_NPY);
        write_npy_f32(&path, &probs, data.train.len(), input.classes)?;
        ui.status(&format!("wrote {}", path.display()));
    }

    Ok(TrainOutcome {
        dir: out.to_path_buf(),
        info: observer.recorder.info().clone(),
    })
}

/// Removes the files of an earlier run that this run may not write again (noise.json without
/// --label-noise, oof_probs.npy without --folds, probabilities of other epochs), so that
/// `--overwrite` never leaves a mix of two runs. Only names that toploss writes are removed:
/// other files in probs/, and the grids and tables in top/ and issues/, stay.
pub(crate) fn remove_stale_run_files(out: &Path) -> anyhow::Result<()> {
    let mut stale = vec![
        out.join(NOISE_JSON),
        out.join(OOF_PROBS_NPY),
        out.join(toploss_data::run::MODEL_SAFETENSORS),
        out.join(DYNAMICS_PARQUET),
    ];
    if let Ok(entries) = std::fs::read_dir(out.join(toploss_data::run::PROBS_DIR)) {
        stale.extend(entries.flatten().map(|entry| entry.path()).filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(is_probs_file_name)
        }));
    }
    for path in stale {
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::debug!("--overwrite: removed {}", path.display()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(error).with_context(|| format!("cannot remove {}", path.display()));
            }
        }
    }
    Ok(())
}

/// Returns true for the names of the probabilities files that toploss writes into probs/:
/// `train-eNN.npy` and `test-eNN.npy`.
fn is_probs_file_name(name: &str) -> bool {
    ["train-e", "test-e"].iter().any(|prefix| {
        name.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(".npy"))
            .is_some_and(|epoch| !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// Label changes and exclusions applied to the train split before training.
struct Overlays {
    /// Synthetic noise, when --label-noise was given.
    noise: Option<LabelNoise>,
    /// Labels changed by --relabel.
    relabelled: usize,
    /// Train ids left out of training by --discard.
    excluded: Vec<bool>,
}

/// Applies --label-noise, then --relabel, then --discard to the train split. Noise comes first
/// because it simulates a dataset that arrived noisy; corrections are fixes made afterwards.
fn apply_overlays(dataset: &mut Dataset, options: &TrainingOptions) -> anyhow::Result<Overlays> {
    let classes = dataset.classes.len();
    let train_len = dataset.train.len();
    let noise = match options.label_noise {
        Some(rate) => Some(inject_label_noise(
            &mut dataset.train.labels,
            classes,
            rate,
            options.noise_kind.into(),
            options.noise_seed,
        )?),
        None => None,
    };

    // After --train-limit N only ids below N exist, so an id out of range may come from the
    // limit rather than from the file.
    let read = |path: &Path, dataset: &Dataset| match (
        read_checked_corrections(path, dataset),
        options.train_limit,
    ) {
        (Err(error), Some(limit))
            if matches!(
                error.downcast_ref::<toploss_data::Error>(),
                Some(toploss_data::Error::CorrectionIdOutOfRange { .. })
            ) =>
        {
            Err(error.context(format!(
                "--train-limit {limit} keeps only the train ids below {limit}"
            )))
        }
        (result, _) => result,
    };
    let mut relabelled = 0;
    if let Some(path) = &options.relabel {
        let corrections = read(path, dataset)?;
        relabelled = dataset
            .train
            .apply_relabels(&corrections.relabel)
            .with_context(|| format!("cannot apply {}", path.display()))?;
        if corrections.relabel.is_empty() {
            tracing::warn!(
                "{} has no relabel rows; --relabel changes nothing",
                path.display()
            );
        }
    }

    let mut excluded = vec![false; train_len];
    if let Some(path) = &options.discard {
        let corrections = read(path, dataset)?;
        for &id in &corrections.discard {
            excluded[id as usize] = true;
        }
        if corrections.discard.is_empty() {
            tracing::warn!(
                "{} has no discard rows; --discard changes nothing",
                path.display()
            );
        }
    }
    Ok(Overlays {
        noise,
        relabelled,
        excluded,
    })
}

/// Reads a corrections file and, when it sits in a run folder, checks that the run was trained
/// on the same dataset files.
fn read_checked_corrections(path: &Path, dataset: &Dataset) -> anyhow::Result<Corrections> {
    let run_dir = path.parent().unwrap_or(Path::new("."));
    if run_dir.join(RUN_JSON).is_file() {
        let info = RunInfo::read(run_dir)?;
        if info.dataset.fingerprint != dataset.fingerprint {
            bail!(
                "{} belongs to run {}, trained on {} (fingerprint {}), but --data is {} (fingerprint {}); its ids would point at other images",
                path.display(),
                run_dir.display(),
                info.dataset.path,
                info.dataset.fingerprint,
                dataset.path.display(),
                dataset.fingerprint
            );
        }
    }
    Ok(read_corrections(
        path,
        &dataset.classes,
        dataset.train.len(),
    )?)
}

/// Weights above this many bytes get a warning before training starts (256 MiB).
const LARGE_WEIGHTS_BYTES: usize = 256 << 20;

/// Warns when the model's weights for these images are large: the MLP and the shallow CNN
/// grow with the image area, and large folder images make weights files of gigabytes and runs
/// that run out of memory.
fn warn_if_model_is_large(model: ModelKind, input: InputSpec) {
    let parameters = Classifier::parameter_count(model, input);
    let bytes = parameters * std::mem::size_of::<f32>();
    if bytes > LARGE_WEIGHTS_BYTES {
        let gib = |bytes: usize| bytes as f64 / f64::from(1u32 << 30);
        tracing::warn!(
            "--model {} on {}x{}x{} images has {parameters} parameters: model.safetensors \
             will take {:.1} GiB, and training about {:.0} GiB of memory (weights, gradients, \
             Adam's two moments and the last epoch's copy); resize folder images with \
             --image-size HxW to shrink it",
            model.name(),
            input.channels,
            input.height,
            input.width,
            gib(bytes),
            gib(5 * bytes).ceil(),
        );
    }
}

fn check_limit(flag: &str, limit: usize, available: usize) -> anyhow::Result<()> {
    if limit == 0 {
        bail!("invalid {flag} 0: expected at least 1");
    }
    if limit > available {
        tracing::warn!("{flag} {limit} is more than the {available} samples available; using all");
    }
    Ok(())
}

/// Connects the training loop to the bars, the recorder and the per-epoch line.
struct CliObserver {
    recorder: Recorder,
    bars: EpochBars,
    ui: Ui,
    epochs: u32,
}

impl Observer for CliObserver {
    fn phase_started(&mut self, epoch: u32, phase: Phase, total: usize) {
        self.bars.start(epoch, phase, total);
    }

    fn progress(&mut self, done: usize) {
        self.bars.update(done);
    }

    fn stop_requested(&self) -> bool {
        // A failed write of the last epoch's files stops training too: the error is reported
        // when the recorder is next waited for.
        crate::progress::stop_requested() || self.recorder.write_failed()
    }

    fn epoch_finished(&mut self, result: EpochResult) -> Result<(), toploss_train::Error> {
        let images = result.train.rows.len() + result.test.rows.len();
        let metrics = self.recorder.record(result)?;
        clear_all();
        self.ui.status(&epoch_line(&metrics, self.epochs, images));
        Ok(())
    }
}

/// Formats the fixed-width line printed after each epoch.
pub fn epoch_line(metrics: &EpochMetrics, epochs: u32, images: usize) -> String {
    let width = epochs.to_string().len();
    format!(
        "epoch {:>width$}/{epochs}  train loss {:.4}  train acc {:6.2}%  test loss {:.4}  test acc {:6.2}%  {:6.1} s  ({} images scored)",
        metrics.epoch,
        metrics.train_loss,
        metrics.train_accuracy * 100.0,
        metrics.test_loss,
        metrics.test_accuracy * 100.0,
        metrics.seconds,
        images,
    )
}

fn write_curves(info: &RunInfo, path: &Path) -> anyhow::Result<()> {
    let points: Vec<EpochPoint> = info
        .epochs
        .iter()
        .map(|metrics| EpochPoint {
            epoch: metrics.epoch,
            train_loss: metrics.train_loss,
            test_loss: metrics.test_loss,
            test_accuracy: metrics.test_accuracy,
        })
        .collect();
    toploss_report::write_curves_png(&points, "toploss demo", path)?;
    Ok(())
}
