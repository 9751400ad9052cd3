//! `toploss score`: label-issue candidates from a user's own model outputs.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use toploss_core::loss::cross_entropy;
use toploss_core::scores::{
    cross_entropy_from_probs, normalized_margin, predicted_labels, self_confidence,
};
use toploss_data::run::{prepare_output_dir, write_atomic};
use toploss_data::{Dataset, load};

use crate::args::{PredictionFiles, ScoreArgs, ScoreMethodArg, SplitArg};
use crate::issues::{
    Candidates, Direction, GRID_MAX_TILES, ISSUES_CSV, LOSS_THRESHOLD, PROBABILITY_THRESHOLD,
    TileValues, print_candidates, print_found, value_name, write_candidates_grid, write_issues_csv,
};
use crate::output::Ui;
use crate::predictions::{
    Matrix, Probabilities, check_against_labels, read_classes, read_labels, read_predictions,
    resolve_kind,
};

/// Every sample's scores: `id,label,predicted,score,candidate,loss,self_confidence,
/// normalized_margin`.
const SCORES_CSV: &str = "scores.csv";

/// Predictions and labels read from files and checked against each other.
pub struct LoadedPredictions {
    /// The predictions as probabilities (and logits, when given).
    pub probabilities: Probabilities,
    /// Given labels, one per row.
    pub labels: Vec<u32>,
}

/// Reads `--predictions` and `--labels`, checks them against each other, resolves `--kind`
/// and prints its warnings.
pub fn load_predictions(files: &PredictionFiles, ui: &Ui) -> anyhow::Result<LoadedPredictions> {
    let (Some(predictions_path), Some(labels_path)) = (&files.predictions, &files.labels) else {
        bail!("pass both --predictions FILE and --labels FILE");
    };
    let matrix: Matrix = read_predictions(predictions_path)?;
    let labels = read_labels(labels_path)?;
    check_against_labels(&matrix, &labels, predictions_path, labels_path)?;
    let probabilities = resolve_kind(matrix, files.kind, predictions_path)?;
    for warning in &probabilities.warnings {
        ui.status(&format!("warning: {warning}"));
    }
    Ok(LoadedPredictions {
        probabilities,
        labels,
    })
}

/// Returns the class names: `--classes`, else the dataset's, else `0` to `K-1`.
pub fn class_names(
    classes_file: Option<&Path>,
    dataset: Option<&Dataset>,
    num_classes: usize,
) -> anyhow::Result<Vec<String>> {
    let (names, source) = match (classes_file, dataset) {
        (Some(path), _) => (read_classes(path)?, path.display().to_string()),
        (None, Some(dataset)) => (dataset.classes.clone(), dataset.path.display().to_string()),
        (None, None) => return Ok((0..num_classes).map(|c| c.to_string()).collect()),
    };
    if names.len() != num_classes {
        bail!(
            "{source} names {} classes, but the predictions have {num_classes} columns",
            names.len()
        );
    }
    Ok(names)
}

/// Runs `toploss score`.
pub fn run_score(args: &ScoreArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    if let Some(model) = &args.onnx.onnx {
        return crate::score_onnx::run_score_onnx(args, model, ui);
    }
    if args.files.predictions.is_none() && args.files.labels.is_none() {
        bail!(
            "pass --predictions FILE and --labels FILE (your model's outputs), or --onnx \
             MODEL.onnx and --data FORMAT:PATH (your model, run by toploss)"
        );
    }

    // Parse and check the input.
    if args.k == Some(0) {
        bail!("invalid -k 0: expected at least 1");
    }
    let LoadedPredictions {
        probabilities,
        labels,
    } = load_predictions(&args.files, ui)?;
    let predictions_path = args.files.predictions.as_deref().unwrap_or(Path::new(""));
    let num_classes = probabilities.num_classes;
    let probs = &probabilities.probs;
    let dataset = args
        .images
        .as_ref()
        .map(|spec| load(spec).with_context(|| format!("cannot load dataset {spec}")))
        .transpose()?;
    let classes = class_names(args.files.classes.as_deref(), dataset.as_ref(), num_classes)?;
    let images = dataset.as_ref().map(|dataset| match args.split {
        SplitArg::Train => &dataset.train,
        SplitArg::Test => &dataset.test,
    });
    if let Some(images) = images
        && images.len() != labels.len()
    {
        bail!(
            "{} has {} rows, but the {} split of --images has {} samples; row i must be \
             sample id i of that split",
            predictions_path.display(),
            labels.len(),
            value_name(&args.split),
            images.len()
        );
    }

    // Score every sample; the first call also checks the rows as probabilities.
    let in_file = || format!("{}", predictions_path.display());
    let self_confidence = self_confidence(probs, &labels, num_classes).with_context(in_file)?;
    let margin = normalized_margin(probs, &labels, num_classes).with_context(in_file)?;
    let loss = match &probabilities.logits {
        Some(logits) => cross_entropy(logits, &labels, num_classes),
        None => cross_entropy_from_probs(probs, &labels, num_classes),
    }
    .with_context(in_file)?;
    let predicted = predicted_labels(probs, num_classes).with_context(in_file)?;
    let candidates = match args.method {
        ScoreMethodArg::ConfidentLearning => Candidates::by_confident_learning(
            probs,
            &labels,
            num_classes,
            args.filter,
            args.rank_by,
            args.k,
        )
        .with_context(in_file)?,
        ScoreMethodArg::Loss => Candidates::by_threshold(
            loss.clone(),
            predicted.clone(),
            Direction::HigherIsWorse,
            |loss| loss > LOSS_THRESHOLD,
            args.k,
        )?,
        ScoreMethodArg::Margin => Candidates::by_threshold(
            margin.clone(),
            predicted.clone(),
            Direction::LowerIsWorse,
            |margin| margin < 0.0,
            args.k,
        )?,
        ScoreMethodArg::SelfConfidence => Candidates::by_threshold(
            self_confidence.clone(),
            predicted.clone(),
            Direction::LowerIsWorse,
            |confidence| confidence < PROBABILITY_THRESHOLD,
            args.k,
        )?,
    };

    // Write issues.csv, scores.csv and the grid.
    prepare_output_dir(&args.out, args.overwrite)?;
    let csv = args.out.join(ISSUES_CSV);
    write_issues_csv(&csv, &candidates, &labels)?;
    let scores_csv = args.out.join(SCORES_CSV);
    write_atomic(&scores_csv, |out| {
        writeln!(
            out,
            "id,label,predicted,score,candidate,loss,self_confidence,normalized_margin"
        )?;
        for id in 0..labels.len() {
            // `+ 0.0` turns the -0 loss of p = 1 into 0.
            writeln!(
                out,
                "{id},{},{},{},{},{},{},{}",
                labels[id],
                predicted[id],
                candidates.scores[id],
                u8::from(candidates.flagged[id]),
                loss[id] + 0.0,
                self_confidence[id],
                margin[id]
            )?;
        }
        Ok(())
    })?;
    let mut written = vec![csv, scores_csv];
    let method = value_name(&args.method);
    if let Some(images) = images
        && !candidates.ids.is_empty()
    {
        let shown = candidates.ids.len().min(GRID_MAX_TILES);
        let png = args.out.join(format!("{method}-{shown}.png"));
        let title = format!(
            "{method} · top {shown} of {} candidates · {}",
            candidates.found,
            value_name(&args.split)
        );
        write_candidates_grid(
            &png,
            &candidates.ids,
            images,
            &labels,
            &classes,
            |id| TileValues {
                predicted: predicted[id],
                loss: loss[id] as f32,
                p_predicted: probs[id * num_classes + predicted[id] as usize] as f32,
                p_actual: self_confidence[id] as f32,
            },
            &title,
        )?;
        written.push(png);
    }

    // Report.
    let rule = match args.method {
        ScoreMethodArg::ConfidentLearning => format!(
            "--filter {}, ranked by {}",
            value_name(&args.filter),
            value_name(&args.rank_by)
        ),
        ScoreMethodArg::Loss => "loss > ln 2".to_string(),
        ScoreMethodArg::Margin => "normalized margin < 0".to_string(),
        ScoreMethodArg::SelfConfidence => "self-confidence < 0.5".to_string(),
    };
    print_found(&candidates, &method, &rule, ui);
    if candidates.ids.is_empty() {
        println!("no candidates: try --method loss or --filter predicted-neq-given");
    } else {
        print_candidates(&candidates, &labels, &classes);
    }
    for path in &written {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
