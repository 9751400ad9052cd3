//! `toploss score --onnx`: runs a user's ONNX classifier over both splits of a dataset and
//! writes the files of a run's evaluation pass (`run.json`, `dynamics.parquet` and
//! `probs/SPLIT-e01.npy`), so that `toploss top`, `issues` and `confusion` read it as a run
//! with one epoch.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use rayon::prelude::*;
use toploss_data::run::{
    DYNAMICS_PARQUET, DatasetInfo, Dynamics, EpochMetrics, ModelInfo, RunInfo, RunStatus,
    SplitName, prepare_output_dir, probs_path, write_npy_f32,
};
use toploss_data::{DatasetFormat, DatasetOptions, ImageSize, Split, load};
use toploss_train::{Phase, SampleResult, SplitEval, sample_from_logits};

use crate::args::{OnnxArgs, ScoreArgs};
use crate::onnx::{Classifier, load_model};
use crate::output::Ui;
use crate::predictions::{Matrix, resolve_kind};
use crate::progress::{EpochBars, clear_all, stop_requested};
use crate::score::class_names;
use crate::train::remove_stale_run_files;

/// The epoch number that the scores are recorded under: a scored model is a run of one epoch.
const EPOCH: u32 = 1;

/// Architecture name recorded in `run.json` for a model read from an ONNX file.
const ARCHITECTURE: &str = "onnx";

/// Runs `toploss score --onnx`.
pub fn run_score_onnx(args: &ScoreArgs, model_path: &Path, ui: &Ui) -> anyhow::Result<ExitCode> {
    let options: &OnnxArgs = &args.onnx;
    let Some(spec) = &options.data else {
        bail!("--onnx needs --data FORMAT:PATH, the dataset to score");
    };
    if options.batch_size == 0 {
        bail!("invalid --batch-size 0: expected at least 1");
    }
    for (flag, limit) in [
        ("--train-limit", options.train_limit),
        ("--test-limit", options.test_limit),
    ] {
        if limit == Some(0) {
            bail!("invalid {flag} 0: expected at least 1");
        }
    }

    // Model, then the dataset: a folder: dataset is resized to the model's fixed input size.
    let model = load_model(model_path, options.input_name.as_deref())?;
    let mut spec = spec.clone();
    if spec.format == DatasetFormat::Folder
        && let Some(shape) = model.input.fixed_image_shape()
    {
        spec = spec.with_options(DatasetOptions {
            image_size: Some(ImageSize {
                height: shape.height,
                width: shape.width,
            }),
            channels: Some(shape.channels),
            ..DatasetOptions::default()
        });
    }
    let mut dataset = load(&spec).with_context(|| format!("cannot load dataset {spec}"))?;
    truncate(&mut dataset.train, options.train_limit, "--train-limit");
    truncate(&mut dataset.test, options.test_limit, "--test-limit");
    let image = dataset.train.shape;
    let sha256 = model.sha256.clone();
    let input_name = model.input.name.clone();
    let input_shape = model.input.shape_text();
    let classifier = model.prepare(image, options.batch_size, &options.normalize)?;
    if classifier.fixed_batch && classifier.batch != options.batch_size {
        tracing::info!(
            "{} has a fixed batch of {}; --batch-size {} does not apply",
            model_path.display(),
            classifier.batch,
            options.batch_size
        );
    }
    let classes = class_names(
        args.files.classes.as_deref(),
        Some(&dataset),
        classifier.classes,
    )?;
    for (name, split) in [("train", &dataset.train), ("test", &dataset.test)] {
        if let Some(id) = split
            .labels
            .iter()
            .position(|&label| label as usize >= classifier.classes)
        {
            bail!(
                "{name} sample {id} of {spec} has label {}, but {} outputs {} classes; the \
                 model's output columns must be the dataset's classes, in label order",
                split.labels[id],
                model_path.display(),
                classifier.classes
            );
        }
    }

    // Run the model over both splits.
    prepare_output_dir(&args.out, args.overwrite)?;
    if args.overwrite {
        remove_stale_run_files(&args.out)?;
    }
    ui.status(&format!(
        "scoring {} on {spec} ({} train / {} test images, input {input_name:?} {input_shape}, \
         {} images per run) into {}",
        model_path.display(),
        dataset.train.len(),
        dataset.test.len(),
        classifier.batch,
        args.out.display()
    ));
    let started = Instant::now();
    let bars = EpochBars::new(ui.interactive, EPOCH);
    bars.start(EPOCH, Phase::EvaluatingTrain, dataset.train.len());
    let train_outputs = run_split(&classifier, &dataset.train, SplitName::Train, &bars)?;
    // The pixels are no longer needed; only the labels are.
    dataset.train.images = Vec::new();
    bars.start(EPOCH, Phase::EvaluatingTest, dataset.test.len());
    let test_outputs = run_split(&classifier, &dataset.test, SplitName::Test, &bars)?;
    clear_all();
    let seconds = started.elapsed().as_secs_f64();

    // Logits or probabilities: decided once over both splits, as `score --predictions` does.
    let classes_count = classifier.classes;
    let matrix = Matrix {
        values: train_outputs
            .iter()
            .chain(&test_outputs)
            .map(|&v| f64::from(v))
            .collect(),
        rows: dataset.train.len() + dataset.test.len(),
        cols: classes_count,
    };
    let resolved = resolve_kind(matrix, args.files.kind, model_path)?;
    for warning in &resolved.warnings {
        ui.status(&format!("warning: {warning}"));
    }
    let kind = if resolved.logits.is_some() {
        OutputKind::Logits
    } else {
        OutputKind::Probabilities
    };
    drop(resolved);

    // Per-sample results, then the run files: probabilities first and run.json last, so that
    // a run.json always describes files that exist.
    let train = evaluate(&train_outputs, &dataset.train.labels, classes_count, kind);
    let test = evaluate(&test_outputs, &dataset.test.labels, classes_count, kind);
    drop((train_outputs, test_outputs));
    let capped = train.capped + test.capped;
    if capped > 0 {
        ui.status(&format!(
            "warning: {capped} samples have p(label) = 0 in the model's probabilities; their \
             loss is capped at {MAX_LOSS:.2} (-ln of the smallest normal float32). Pass logits \
             (the output before softmax) for exact losses"
        ));
    }
    for (split, eval) in [
        (SplitName::Train, &train.eval),
        (SplitName::Test, &test.eval),
    ] {
        let path = probs_path(&args.out, split, EPOCH);
        write_npy_f32(&path, &eval.probs, eval.rows.len(), classes_count)?;
    }
    let metrics = EpochMetrics {
        epoch: EPOCH,
        train_loss: train.eval.mean_loss(),
        train_accuracy: train.eval.accuracy(),
        // Nothing was trained, so the objective is the plain cross-entropy.
        train_objective: train.eval.mean_loss(),
        test_accuracy: test.eval.accuracy(),
        test_loss: test.eval.mean_loss(),
        seconds,
    };
    let train_count = train.eval.rows.len();
    let test_count = test.eval.rows.len();
    let dynamics = Dynamics {
        parts: vec![
            (EPOCH, SplitName::Train, train.eval.rows),
            (EPOCH, SplitName::Test, test.eval.rows),
        ],
    };
    dynamics.write(&args.out.join(DYNAMICS_PARQUET))?;

    let mut config = serde_json::json!({
        "command": "score",
        "onnx": model_path.display().to_string(),
        "onnx_sha256": sha256,
        "input_name": input_name,
        "input_shape": input_shape,
        "normalize": options.normalize.to_string(),
        "batch_size": classifier.batch,
        "kind": kind.name(),
        "data": spec.to_string(),
        "train_limit": options.train_limit,
        "test_limit": options.test_limit,
    });
    if !spec.options.is_default()
        && let Some(object) = config.as_object_mut()
    {
        object.insert("data_options".into(), serde_json::json!(spec.options));
    }
    let info = RunInfo {
        toploss_version: env!("CARGO_PKG_VERSION").to_string(),
        status: RunStatus::Complete,
        classes,
        config,
        dataset: DatasetInfo {
            format: dataset.format.name().to_string(),
            path: spec.path.display().to_string(),
            resolved_path: std::fs::canonicalize(&spec.path)
                .ok()
                .map(|path| path.display().to_string()),
            fingerprint: dataset.fingerprint.clone(),
            train_count,
            test_count,
        },
        model: ModelInfo {
            architecture: ARCHITECTURE.to_string(),
            channels: image.channels,
            height: image.height,
            width: image.width,
            weights: None,
        },
        epochs: vec![metrics.clone()],
    };
    info.write(&args.out)?;

    // Report.
    ui.status(&format!(
        "scored {} images in {seconds:.1} s: train loss {:.4}  train acc {:6.2}%  test loss \
         {:.4}  test acc {:6.2}%  (the model outputs {})",
        train_count + test_count,
        metrics.train_loss,
        metrics.train_accuracy * 100.0,
        metrics.test_loss,
        metrics.test_accuracy * 100.0,
        kind.name()
    ));
    println!("wrote {}", args.out.display());
    println!("next: toploss top {} -k 16", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// Keeps the first `limit` samples of `split`, warning when the limit exceeds the split.
fn truncate(split: &mut Split, limit: Option<usize>, flag: &str) {
    let Some(limit) = limit else {
        return;
    };
    if limit > split.len() {
        tracing::warn!(
            "{flag} {limit} is more than the {} samples available; using all",
            split.len()
        );
    }
    split.truncate(limit);
}

/// Runs the model over every sample of `split` in id order and returns the `N x K` outputs.
///
/// Batches run a few at a time on the rayon pool, each with its own input buffer, so memory
/// grows with the batch size and the thread count, not with the split.
fn run_split(
    classifier: &Classifier,
    split: &Split,
    name: SplitName,
    bars: &EpochBars,
) -> anyhow::Result<Vec<f32>> {
    let n = split.len();
    let per_image = split.shape.len();
    let batch = classifier.batch;
    let batches: Vec<(usize, usize)> = (0..n)
        .step_by(batch)
        .map(|start| (start, (start + batch).min(n)))
        .collect();
    let group = rayon::current_num_threads().max(1);
    let mut outputs = Vec::with_capacity(n * classifier.classes);
    for window in batches.chunks(group) {
        if stop_requested() {
            bail!("scoring interrupted during the {name} split; no run.json was written");
        }
        let results: Vec<anyhow::Result<Vec<f32>>> = window
            .par_iter()
            .map(|&(start, end)| {
                classifier
                    .run(&split.images[start * per_image..end * per_image])
                    .with_context(|| format!("{name} samples {start} to {}", end - 1))
            })
            .collect();
        for result in results {
            outputs.extend(result?);
        }
        if let Some(&(_, end)) = window.last() {
            bars.update(end);
        }
    }

    // NaN or infinite scores would make every loss and mean meaningless.
    if let Some(index) = outputs.iter().position(|v| !v.is_finite()) {
        bail!(
            "the model's output for {name} sample {} is {} in column {}; check --normalize \
             and that the model runs in inference mode",
            index / classifier.classes,
            outputs[index],
            index % classifier.classes
        );
    }
    Ok(outputs)
}

/// Kind of values in the model's output rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutputKind {
    Logits,
    Probabilities,
}

impl OutputKind {
    fn name(self) -> &'static str {
        match self {
            OutputKind::Logits => "logits",
            OutputKind::Probabilities => "probabilities",
        }
    }
}

/// Largest loss recorded from probabilities: `-ln` of the smallest positive normal float32,
/// about 87.34 nats, for a p(label) of exactly 0 (a softmax that underflowed).
const MAX_LOSS: f32 = 87.336_55;

/// Per-sample results of one split and the number of losses capped at [`MAX_LOSS`].
struct Evaluated {
    eval: SplitEval,
    capped: usize,
}

/// Turns `N x K` outputs into per-sample rows and softmax probabilities.
fn evaluate(outputs: &[f32], labels: &[u32], classes: usize, kind: OutputKind) -> Evaluated {
    let mut eval = SplitEval::for_labels(labels, classes);
    let mut capped = 0;
    // The probabilities are filled row by row while the other columns are pushed.
    let mut all_probs = std::mem::take(&mut eval.probs);
    let rows = outputs
        .chunks_exact(classes)
        .zip(all_probs.chunks_exact_mut(classes));
    for ((row, probs), &label) in rows.zip(labels) {
        let result = match kind {
            OutputKind::Logits => sample_from_logits(row, label as usize, probs),
            OutputKind::Probabilities => {
                let result = sample_from_probabilities(row, label as usize, probs);
                capped += usize::from(result.p_label < f32::MIN_POSITIVE);
                result
            }
        };
        eval.push(&result);
    }
    eval.probs = all_probs;
    Evaluated { eval, capped }
}

/// Computes the results of one sample from its probabilities `p`, copied into `probs`.
///
/// The loss is `-ln p[label]`, capped at [`MAX_LOSS`]. The margin is
/// `ln p[label] - ln max_{j != label} p[j]`, which equals the logit margin because
/// `ln softmax(z)_j = z_j - logsumexp(z)` and the log-sum-exp cancels.
fn sample_from_probabilities(p: &[f32], label: usize, probs: &mut [f32]) -> SampleResult {
    probs.copy_from_slice(p);
    let mut predicted = 0;
    for (j, &value) in p.iter().enumerate() {
        if value > p[predicted] {
            predicted = j;
        }
    }
    let best_other = p
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != label)
        .map(|(_, &value)| value)
        .fold(f32::NEG_INFINITY, f32::max);
    let loss = if p[label] >= f32::MIN_POSITIVE {
        -p[label].ln()
    } else {
        MAX_LOSS
    };
    SampleResult {
        predicted: predicted as u32,
        loss,
        p_label: p[label],
        p_predicted: p[predicted],
        margin: p[label].ln() - best_other.ln(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_loss_is_log_of_min_positive() {
        // -ln(2^-126) = 126 ln 2 = 87.336544...
        assert!((MAX_LOSS - -f32::MIN_POSITIVE.ln()).abs() < 1e-4);
    }

    #[test]
    fn probabilities_give_loss_and_log_margin() {
        // p = [0.2, 0.5, 0.3], label 2: loss = -ln 0.3 = 1.203973, predicted 1,
        // margin = ln 0.3 - ln 0.5 = -0.510826.
        let mut probs = [0.0; 3];
        let result = sample_from_probabilities(&[0.2, 0.5, 0.3], 2, &mut probs);
        assert_eq!(result.predicted, 1);
        assert!((result.loss - 1.203_973).abs() < 1e-5, "{}", result.loss);
        assert!(
            (result.margin - -0.510_826).abs() < 1e-5,
            "{}",
            result.margin
        );
        assert_eq!(result.p_label, 0.3);
        assert_eq!(result.p_predicted, 0.5);
        assert_eq!(probs, [0.2, 0.5, 0.3]);
    }

    #[test]
    fn probability_margin_matches_logit_margin() {
        // Logits [1, 3, 0], label 0: logit margin = 1 - 3 = -2. The same from softmax.
        let logits = [1.0f32, 3.0, 0.0];
        let mut from_logits = [0.0; 3];
        let expected = sample_from_logits(&logits, 0, &mut from_logits);
        let mut copied = [0.0; 3];
        let result = sample_from_probabilities(&from_logits, 0, &mut copied);
        assert!((expected.margin - -2.0).abs() < 1e-6);
        assert!(
            (result.margin - expected.margin).abs() < 1e-5,
            "{}",
            result.margin
        );
        assert!(
            (result.loss - expected.loss).abs() < 1e-5,
            "{}",
            result.loss
        );
    }

    #[test]
    fn zero_probability_loss_capped() {
        let mut probs = [0.0; 2];
        let result = sample_from_probabilities(&[0.0, 1.0], 0, &mut probs);
        assert_eq!(result.loss, MAX_LOSS);
        assert_eq!(result.margin, f32::NEG_INFINITY);
        let evaluated = evaluate(&[0.0, 1.0, 0.5, 0.5], &[0, 1], 2, OutputKind::Probabilities);
        assert_eq!(evaluated.capped, 1);
        // Losses MAX_LOSS and -ln 0.5 = 0.693147; mean (87.336545 + 0.693147) / 2 = 44.014846.
        assert!((evaluated.eval.mean_loss() - 44.014_846).abs() < 1e-4);
    }
}
