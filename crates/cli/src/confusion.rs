//! `toploss confusion`: the confusion matrix of a run or of a predictions file, as a table, a
//! heat-map PNG and the most-confused pairs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use toploss_core::confusion::ConfusionMatrix;
use toploss_core::scores::predicted_labels;
use toploss_data::run::{DYNAMICS_PARQUET, Dynamics, RunInfo, SplitName};
use toploss_report::write_confusion_png;

use crate::args::{ConfusionArgs, SplitArg};
use crate::output::Ui;
use crate::score::{class_names, load_predictions};
use crate::top::resolve_epoch;

/// Prints the matrix as a fixed-width table: rows actual, columns predicted.
fn print_matrix(matrix: &ConfusionMatrix, classes: &[String]) {
    let k = matrix.num_classes();
    let corner = "actual \\ predicted";
    let label_width = classes
        .iter()
        .map(|name| name.chars().count())
        .chain(std::iter::once(corner.len()))
        .max()
        .unwrap_or(0);
    let count_width = matrix
        .counts()
        .iter()
        .map(|c| c.to_string().len())
        .chain(classes.iter().map(|name| name.chars().count()))
        .max()
        .unwrap_or(1);

    let mut header = format!("{corner:<label_width$}");
    for name in classes {
        header.push_str(&format!("  {name:>count_width$}"));
    }
    println!("{header}");
    for (actual, name) in classes.iter().enumerate() {
        let mut line = format!("{name:<label_width$}");
        for predicted in 0..k {
            line.push_str(&format!(
                "  {:>count_width$}",
                matrix.count(actual, predicted)
            ));
        }
        println!("{line}");
    }
}

/// Runs `toploss confusion`.
pub fn run_confusion(args: &ConfusionArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    // Data: a run's epoch and split, or a predictions file.
    let (matrix, classes, png, title) = match &args.run {
        Some(run) => {
            let info = RunInfo::read(run)?;
            let epoch = resolve_epoch(&args.epoch, &info, run)?;
            let split = match args.split {
                SplitArg::Train => SplitName::Train,
                SplitArg::Test => SplitName::Test,
            };
            let path = run.join(DYNAMICS_PARQUET);
            let dynamics = Dynamics::read(&path, Some(epoch), Some(split))?;
            dynamics.check_classes(info.classes.len(), &path)?;
            let rows = dynamics.get(epoch, split).with_context(|| {
                format!("{}: no {split} rows for epoch {epoch}", path.display())
            })?;
            let matrix = ConfusionMatrix::new(&rows.label, &rows.predicted, info.classes.len())
                .with_context(|| format!("{}", path.display()))?;
            let png = args.out.clone().unwrap_or_else(|| {
                run.join("confusion")
                    .join(format!("{split}-e{epoch:02}.png"))
            });
            let title = format!("confusion · {split} · epoch {epoch}/{}", info.epochs.len());
            (matrix, info.classes, png, title)
        }
        None => {
            if args.files.predictions.is_none() {
                bail!("pass a run folder, or --predictions FILE and --labels FILE");
            }
            let Some(png) = args.out.clone() else {
                bail!("pass --out FILE.png for the heat map of --predictions");
            };
            let loaded = load_predictions(&args.files, ui)?;
            let probabilities = &loaded.probabilities;
            let predictions_path: PathBuf = args.files.predictions.clone().unwrap_or_default();
            let predicted = predicted_labels(&probabilities.probs, probabilities.num_classes)
                .with_context(|| format!("{}", predictions_path.display()))?;
            let classes = class_names(
                args.files.classes.as_deref(),
                None,
                probabilities.num_classes,
            )?;
            let matrix = ConfusionMatrix::new(&loaded.labels, &predicted, classes.len())?;
            let title = format!(
                "confusion · {}",
                predictions_path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default()
            );
            (matrix, classes, png, title)
        }
    };

    // Write the heat map.
    if let Some(dir) = png.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_confusion_png(matrix.counts(), &classes, Some(&title), &png)?;

    // Report: the table, accuracy and the most-confused pairs.
    print_matrix(&matrix, &classes);
    if let Some(accuracy) = matrix.accuracy() {
        println!(
            "accuracy {:.2}% ({} samples)",
            accuracy * 100.0,
            matrix.total()
        );
    }
    let pairs = matrix.most_confused(1);
    if pairs.is_empty() {
        println!("no confused pairs: every sample is predicted as its given label");
    } else {
        println!("most confused (actual -> predicted: count):");
        for (actual, predicted, count) in pairs.iter().take(args.pairs) {
            println!("  {} -> {}: {count}", classes[*actual], classes[*predicted]);
        }
        if pairs.len() > args.pairs {
            println!(
                "  ... {} more pairs; raise --pairs to see them",
                pairs.len() - args.pairs
            );
        }
    }
    println!("wrote {}", png.display());
    Ok(ExitCode::SUCCESS)
}
