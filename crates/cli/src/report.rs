//! `toploss report`: one self-contained HTML page of a run, and of several runs compared.
//!
//! Everything the page can show is computed here and embedded as JSON. For every recorded
//! epoch and split, that is the `--max-k` highest losses overall and per given class, the
//! loss histogram and the confusion matrix. For every sample in one of those lists or among
//! the label-issue candidates, it is the image and the per-epoch history. The page itself only
//! draws, so moving the epoch slider redraws at most `--max-k` tiles whatever the dataset size.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use toploss_core::rank::{Order, top_k_where};
use toploss_data::run::{DYNAMICS_PARQUET, Dynamics, RunInfo, RunStatus, SplitName, probs_path};
use toploss_data::{DatasetSpec, Split};
use toploss_report::{TileImage, sprite_sheets, write_report_html};

use crate::args::{FilterArg, RankByArg, ReportArgs};
use crate::compare::{self, COLUMNS, Run};
use crate::issues::{
    Candidates, Direction, LOSS_THRESHOLD, OOF_PROBS, aum_candidates, cartography_candidates,
    epochs_up_to,
};
use crate::output::Ui;
use crate::predictions::read_predictions;
use crate::top::{check_output_parent, load_run_dataset};

/// Default file name inside the first run folder.
pub const REPORT_HTML: &str = "report.html";
/// Lower end of the loss histogram, as log10 of the loss; smaller losses fall in the first bin.
const HIST_LOG_MIN: f64 = -5.0;
/// Upper end of the loss histogram, as log10 of the loss; larger losses fall in the last bin.
const HIST_LOG_MAX: f64 = 1.5;
/// Histogram bins per factor of ten.
const HIST_BINS_PER_DECADE: usize = 4;
/// Default of `--max-k`.
pub const DEFAULT_MAX_K: usize = 64;
/// Default of `--candidates`.
pub const DEFAULT_CANDIDATES: usize = 100;
/// Tiles the grid shows when the page opens.
const DEFAULT_K: usize = 16;
/// Significant digits kept for losses, probabilities and scores in the page's data. Five
/// digits show every value the page prints (four decimals) and keep the file small.
const SIGNIFICANT_DIGITS: usize = 5;

/// Converts a float to JSON with [`SIGNIFICANT_DIGITS`], or to the strings `NaN`, `Infinity` and
/// `-Infinity`, which JavaScript's `Number()` reads back (JSON has no literal for them).
fn number(value: f64) -> Value {
    if value.is_nan() {
        Value::from("NaN")
    } else if value.is_infinite() {
        Value::from(if value > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        let rounded: f64 = format!("{value:.prec$e}", prec = SIGNIFICANT_DIGITS - 1)
            .parse()
            .unwrap_or(value);
        Value::from(rounded)
    }
}

/// Edges of the histogram bins, as log10 of the loss.
fn histogram_edges() -> Vec<f64> {
    let bins = ((HIST_LOG_MAX - HIST_LOG_MIN) * HIST_BINS_PER_DECADE as f64).round() as usize;
    (0..=bins)
        .map(|i| HIST_LOG_MIN + i as f64 / HIST_BINS_PER_DECADE as f64)
        .collect()
}

/// Counts `losses` into the bins of [`histogram_edges`]: losses below the first edge (zero
/// included) go in the first bin, losses above the last edge in the last. Returns the counts
/// and the number of NaN or infinite losses, which are left out.
fn loss_histogram(losses: &[f32]) -> (Vec<u64>, u64) {
    let bins = histogram_edges().len() - 1;
    let mut counts = vec![0u64; bins];
    let mut nonfinite = 0;
    for &loss in losses {
        if !loss.is_finite() {
            nonfinite += 1;
            continue;
        }
        let position = if loss > 0.0 {
            (f64::from(loss).log10() - HIST_LOG_MIN) * HIST_BINS_PER_DECADE as f64
        } else {
            0.0
        };
        let bin = (position.floor().max(0.0) as usize).min(bins - 1);
        counts[bin] += 1;
    }
    (counts, nonfinite)
}

/// Row-major K x K counts: row = given label, column = predicted class. Labels outside the
/// class list are skipped (the reader has already refused them).
fn confusion_counts(labels: &[u32], predicted: &[u32], classes: usize) -> Vec<u64> {
    let mut counts = vec![0u64; classes * classes];
    for (&label, &prediction) in labels.iter().zip(predicted) {
        let (label, prediction) = (label as usize, prediction as usize);
        if label < classes && prediction < classes {
            counts[label * classes + prediction] += 1;
        }
    }
    counts
}

/// The ranked lists and summaries of one split at one epoch.
struct EpochLists {
    /// The `max_k` highest losses.
    all: Vec<usize>,
    /// The `max_k` highest losses among each given class.
    classes: Vec<Vec<usize>>,
    /// 1-based loss rank of every sample.
    rank: Vec<u32>,
}

/// Ranks every sample of one epoch in the order of `toploss top` (NaN first, then infinite,
/// then by loss, ties by lower id) and cuts the lists.
fn epoch_lists(
    losses: &[f32],
    labels: &[u32],
    classes: usize,
    max_k: usize,
) -> anyhow::Result<EpochLists> {
    let order = top_k_where(losses, losses.len().max(1), Order::Largest, |_| true)?.ids;
    let mut rank = vec![0u32; losses.len()];
    for (position, &id) in order.iter().enumerate() {
        rank[id] = position as u32 + 1;
    }
    // The order restricted to one class is that class's own top-k order.
    let mut per_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for &id in &order {
        let label = labels[id] as usize;
        if label < classes && per_class[label].len() < max_k {
            per_class[label].push(id);
        }
    }
    Ok(EpochLists {
        all: order.iter().take(max_k).copied().collect(),
        classes: per_class,
        rank,
    })
}

/// One method's candidates, as the page lists them.
struct MethodCandidates {
    method: &'static str,
    rule: String,
    source: String,
    candidates: Candidates,
}

/// Computes the label-issue candidates of the train split that the run's files allow, each
/// with the default settings of `toploss issues`.
fn train_candidates(
    run: &Path,
    dynamics: &Dynamics,
    epoch: u32,
    classes: usize,
    k: usize,
    ui: &Ui,
) -> anyhow::Result<Vec<MethodCandidates>> {
    let Some(rows) = dynamics.get(epoch, SplitName::Train) else {
        return Ok(Vec::new());
    };
    let mut methods = Vec::new();
    let epochs = epochs_up_to(dynamics, epoch, SplitName::Train);

    // Confident learning expects out-of-fold probabilities. Without them the page warns that
    // the in-sample ones hide most errors.
    let oof = run.join(OOF_PROBS);
    let last_probs = probs_path(run, SplitName::Train, epoch);
    let probabilities = if oof.is_file() {
        Some((oof, "out-of-fold probabilities"))
    } else if last_probs.is_file() {
        Some((
            last_probs,
            "in-sample probabilities, which hide most label errors (train with --folds 5)",
        ))
    } else {
        ui.status(&format!(
            "note: {} and {} are missing, so the report has no confident-learning candidates",
            oof.display(),
            last_probs.display()
        ));
        None
    };
    if let Some((path, what)) = probabilities {
        let matrix = read_predictions(&path)?;
        if matrix.rows != rows.len() || matrix.cols != classes {
            bail!(
                "{} is {} x {}, but the run has {} train samples and {classes} classes",
                path.display(),
                matrix.rows,
                matrix.cols,
                rows.len()
            );
        }
        let candidates = Candidates::by_confident_learning(
            &matrix.values,
            &rows.label,
            classes,
            FilterArg::PruneByNoiseRate,
            RankByArg::SelfConfidence,
            Some(k),
        )
        .with_context(|| format!("confident learning on {}", path.display()))?;
        methods.push(MethodCandidates {
            method: "confident-learning",
            rule: "prune by noise rate, ranked by self-confidence".to_string(),
            source: format!("{} ({what})", path.display()),
            candidates,
        });
    }

    if epochs.len() >= 2 && rows.train_margin.iter().any(Option::is_some) {
        methods.push(MethodCandidates {
            method: "aum",
            rule: "AUM < 0".to_string(),
            source: format!("training margins of epochs 2-{epoch}"),
            candidates: aum_candidates(&epochs, classes, Some(k), ui)?,
        });
    }
    if epochs.len() >= 2 {
        methods.push(MethodCandidates {
            method: "cartography",
            rule: "confidence < 0.5".to_string(),
            source: format!("p(given label) of epochs 1-{epoch}"),
            candidates: cartography_candidates(&epochs, &rows.label, classes, Some(k))?.candidates,
        });
    }
    methods.push(MethodCandidates {
        method: "loss",
        rule: "loss > ln 2".to_string(),
        source: format!("losses of epoch {epoch}"),
        candidates: Candidates::by_threshold(
            rows.loss.iter().map(|&loss| f64::from(loss)).collect(),
            rows.predicted.clone(),
            Direction::HigherIsWorse,
            |loss| loss > LOSS_THRESHOLD,
            Some(k),
        )?,
    });
    Ok(methods)
}

/// Finds the finished runs named on the command line, the first one first.
fn find_runs(arguments: &[PathBuf]) -> anyhow::Result<Vec<Run>> {
    let mut runs = Vec::new();
    let mut seen = HashSet::new();
    for argument in arguments {
        if !argument.exists() {
            bail!(
                "run folder {} does not exist; pass the --out folder of `toploss train`",
                argument.display()
            );
        }
        for dir in compare::expand_argument(argument)? {
            let canonical = dir.canonicalize().unwrap_or_else(|_| dir.clone());
            if !seen.insert(canonical) {
                continue;
            }
            let info = RunInfo::read(&dir)?;
            if info.epochs.is_empty() {
                tracing::warn!("{} has no finished epoch; leaving it out", dir.display());
                continue;
            }
            if info.status != RunStatus::Complete {
                tracing::warn!(
                    "{} is {} after {}; the report shows what finished",
                    dir.display(),
                    info.status,
                    crate::output::count(info.epochs.len(), "epoch")
                );
            }
            runs.push(Run { dir, info });
        }
    }
    if runs.is_empty() {
        bail!("no run with a finished epoch among the folders given");
    }
    Ok(runs)
}

/// Builds the `compare` table and per-run curves, for two runs or more.
fn compare_section(runs: &[Run]) -> Value {
    let (configurations, differing) = compare::group_runs(runs.to_vec());
    let summaries = compare::summarize(&configurations);
    let rows: Vec<Vec<String>> = configurations
        .iter()
        .zip(&summaries)
        .map(|(configuration, summary)| compare::row_cells(configuration, summary).to_vec())
        .collect();
    let mut series = Vec::new();
    for (index, configuration) in configurations.iter().enumerate() {
        for run in &configuration.runs {
            series.push(json!({
                "label": format!("{} · {}", configuration.label, folder_name(&run.dir)),
                "config": index,
                "epochs": run.info.epochs.iter().map(|m| m.epoch).collect::<Vec<_>>(),
                "test_accuracy": run.info.epochs.iter().map(|m| number(m.test_accuracy)).collect::<Vec<_>>(),
                "test_loss": run.info.epochs.iter().map(|m| number(m.test_loss)).collect::<Vec<_>>(),
            }));
        }
    }
    let mut notes = compare::notes(&differing);
    let fingerprints: BTreeSet<&str> = runs
        .iter()
        .map(|run| run.info.dataset.fingerprint.as_str())
        .collect();
    if fingerprints.len() > 1 {
        notes.insert(
            0,
            "warning: these runs were trained on different datasets".to_string(),
        );
    }
    json!({ "columns": COLUMNS, "rows": rows, "notes": notes, "series": series })
}

/// Returns the last component of a folder, for labels.
fn folder_name(dir: &Path) -> String {
    dir.file_name().map_or_else(
        || dir.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// Runs `toploss report`.
pub fn run_report(args: &ReportArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    if args.max_k == 0 {
        bail!("invalid --max-k 0: expected at least 1");
    }
    if args.candidates == 0 {
        bail!("invalid --candidates 0: expected at least 1");
    }
    let runs = find_runs(&args.runs)?;
    if !args.allow_different_data {
        compare::check_same_dataset(&runs)?;
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| runs[0].dir.join(REPORT_HTML));
    if out.is_dir() {
        bail!("{} is a folder; pass --out FILE.html", out.display());
    }
    if out.exists() && !args.overwrite {
        bail!(
            "{} exists; pass --overwrite to replace it, or --out another file",
            out.display()
        );
    }
    check_output_parent(&out)?;
    let written = write_report(
        &runs,
        args.data.as_ref(),
        args.max_k,
        args.candidates,
        &out,
        ui,
    )?;
    println!(
        "wrote {} ({:.1} MB, {}, {})",
        out.display(),
        written.bytes as f64 / 1e6,
        crate::output::count(written.images, "image"),
        crate::output::count(written.epochs as usize, "epoch")
    );
    Ok(ExitCode::SUCCESS)
}

/// Summary of the page that [`write_report`] wrote.
pub struct ReportWritten {
    /// Size of the page in bytes.
    pub bytes: u64,
    /// Sample images embedded.
    pub images: usize,
    /// Epochs the page covers.
    pub epochs: usize,
}

/// Writes the report of `runs` (the first shown in detail) to `out`, replacing it.
pub fn write_report(
    runs: &[Run],
    data: Option<&DatasetSpec>,
    max_k: usize,
    candidate_rows: usize,
    out: &Path,
    ui: &Ui,
) -> anyhow::Result<ReportWritten> {
    let main = &runs[0];
    let info = &main.info;
    let classes = info.classes.len();
    let dynamics_path = main.dir.join(DYNAMICS_PARQUET);
    let dynamics = Dynamics::read(&dynamics_path, None, None)?;
    dynamics.check_classes(classes, &dynamics_path)?;
    let epochs = dynamics.epochs();
    let Some(&last_epoch) = epochs.last() else {
        bail!(
            "{} has no rows; the run recorded no epoch",
            dynamics_path.display()
        );
    };
    let mut dataset = load_run_dataset(info, &main.dir, data)?;
    dataset.train.truncate(info.dataset.train_count);
    dataset.test.truncate(info.dataset.test_count);

    // Label-issue candidates of the train split, at the last epoch.
    let methods = train_candidates(
        &main.dir,
        &dynamics,
        last_epoch,
        classes,
        candidate_rows,
        ui,
    )?;

    // Per split: ranked lists, histograms and confusion matrices of every epoch, then the
    // histories of every sample that the page can show.
    let mut images: Vec<TileImage<'_>> = Vec::new();
    let mut splits_json = Vec::new();
    for split_name in [SplitName::Train, SplitName::Test] {
        let parts: Vec<_> = epochs
            .iter()
            .filter_map(|&epoch| dynamics.get(epoch, split_name))
            .collect();
        if parts.len() != epochs.len() {
            if parts.is_empty() {
                continue;
            }
            bail!(
                "{}: the {split_name} split has rows for {} of the {} epochs; the run folder is \
                 damaged",
                dynamics_path.display(),
                parts.len(),
                epochs.len()
            );
        }
        let samples: &Split = match split_name {
            SplitName::Train => &dataset.train,
            SplitName::Test => &dataset.test,
        };
        let count = parts[0].len();
        if samples.len() != count {
            bail!(
                "{}: the {split_name} split has {count} rows, but the dataset has {} samples",
                dynamics_path.display(),
                samples.len()
            );
        }
        let labels = &parts[parts.len() - 1].label;

        let mut top = Vec::with_capacity(parts.len());
        let mut hist = Vec::with_capacity(parts.len());
        let mut nonfinite = Vec::with_capacity(parts.len());
        let mut confusion = Vec::with_capacity(parts.len());
        let mut ranks = Vec::with_capacity(parts.len());
        // Every sample the page can show: the ranked lists, then the candidates.
        let mut embedded: BTreeSet<usize> = BTreeSet::new();
        for rows in &parts {
            let lists = epoch_lists(&rows.loss, &rows.label, classes, max_k)?;
            embedded.extend(lists.all.iter().copied());
            for list in &lists.classes {
                embedded.extend(list.iter().copied());
            }
            top.push(json!({ "all": lists.all, "classes": lists.classes }));
            let (counts, bad) = loss_histogram(&rows.loss);
            hist.push(counts);
            nonfinite.push(bad);
            confusion.push(confusion_counts(&rows.label, &rows.predicted, classes));
            ranks.push(lists.rank);
        }
        if split_name == SplitName::Train {
            for method in &methods {
                embedded.extend(method.candidates.ids.iter().copied());
            }
        }

        let mut samples_json = BTreeMap::new();
        for &id in &embedded {
            let sprite = images.len();
            images.push(TileImage {
                pixels: samples.image(id),
                channels: samples.shape.channels,
                height: samples.shape.height,
                width: samples.shape.width,
            });
            let mut sample = json!({
                "s": sprite,
                "label": labels[id],
                "loss": parts.iter().map(|rows| number(f64::from(rows.loss[id]))).collect::<Vec<_>>(),
                "p_label": parts.iter().map(|rows| number(f64::from(rows.p_label[id]))).collect::<Vec<_>>(),
                "pred": parts.iter().map(|rows| rows.predicted[id]).collect::<Vec<_>>(),
                "p_pred": parts.iter().map(|rows| number(f64::from(rows.p_predicted[id]))).collect::<Vec<_>>(),
                "rank": ranks.iter().map(|rank| rank[id]).collect::<Vec<_>>(),
            });
            if let Some(path) = samples.path(id) {
                sample["path"] = Value::from(path);
            }
            samples_json.insert(id.to_string(), sample);
        }
        splits_json.push(json!({
            "name": split_name.as_str(),
            "count": count,
            "top": top,
            "hist": hist,
            "nonfinite": nonfinite,
            "confusion": confusion,
            "samples": samples_json,
        }));
    }
    if splits_json.is_empty() {
        bail!("{} has no train or test rows", dynamics_path.display());
    }

    let train_labels: &[u32] = dynamics
        .get(last_epoch, SplitName::Train)
        .map_or(&[], |rows| rows.label.as_slice());
    let candidates_json: Vec<Value> = methods
        .iter()
        .map(|method| {
            let rows: Vec<Value> = method
                .candidates
                .ids
                .iter()
                .enumerate()
                .map(|(rank, &id)| {
                    json!([
                        rank + 1,
                        id,
                        train_labels.get(id),
                        method.candidates.suggested[id],
                        number(method.candidates.scores[id])
                    ])
                })
                .collect();
            json!({
                "method": method.method,
                "split": "train",
                "rule": method.rule,
                "source": method.source,
                "found": method.candidates.found,
                "direction": match method.candidates.direction {
                    Direction::LowerIsWorse => "lower scores are more suspicious",
                    Direction::HigherIsWorse => "higher scores are more suspicious",
                },
                "rows": rows,
            })
        })
        .collect();

    let sprites = sprite_sheets(&images)?;
    let runs_json: Vec<Value> = runs
        .iter()
        .map(|run| {
            json!({
                "name": folder_name(&run.dir),
                "dir": run.dir.display().to_string(),
                "model": run.info.model.architecture,
                "dataset": format!("{}:{}", run.info.dataset.format, run.info.dataset.path),
                "epochs": run.info.epochs.iter().map(|m| json!({
                    "epoch": m.epoch,
                    "train_loss": number(m.train_loss),
                    "test_loss": number(m.test_loss),
                    "test_accuracy": number(m.test_accuracy),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let title = if runs.len() > 1 {
        format!(
            "toploss report: {} and {} more runs",
            folder_name(&main.dir),
            runs.len() - 1
        )
    } else {
        format!("toploss report: {}", folder_name(&main.dir))
    };
    let data = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "classes": info.classes,
        "epochs": epochs,
        "kmax": max_k,
        "default_k": DEFAULT_K.min(max_k),
        "image_count": images.len(),
        "sprites": sprites,
        "hist_edges": histogram_edges(),
        "splits": splits_json,
        "candidates": candidates_json,
        "candidates_note": "Computed for this page on the train split at the last epoch, with the default settings of `toploss issues`; run that command for other settings.",
        "runs": runs_json,
        "compare": if runs.len() > 1 { compare_section(runs) } else { Value::Null },
    });
    let text = serde_json::to_string(&data).context("cannot serialize the report data")?;
    write_report_html(&title, &text, out)?;
    Ok(ReportWritten {
        bytes: std::fs::metadata(out).map(|m| m.len()).unwrap_or(0),
        images: images.len(),
        epochs: epochs.len(),
    })
}

/// Writes `RUN/report.html` for one run with the default settings, as `toploss demo` does.
pub fn write_run_report(dir: &Path, ui: &Ui) -> anyhow::Result<PathBuf> {
    let info = RunInfo::read(dir)?;
    let out = dir.join(REPORT_HTML);
    let runs = [Run {
        dir: dir.to_path_buf(),
        info,
    }];
    write_report(&runs, None, DEFAULT_MAX_K, DEFAULT_CANDIDATES, &out, ui)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_rounding_and_non_finite() {
        assert_eq!(number(0.123456789), json!(0.12346));
        assert_eq!(number(12345.678), json!(12346.0));
        assert_eq!(number(0.0), json!(0.0));
        assert_eq!(number(f64::NAN), json!("NaN"));
        assert_eq!(number(f64::INFINITY), json!("Infinity"));
        assert_eq!(number(f64::NEG_INFINITY), json!("-Infinity"));
    }

    #[test]
    fn histogram_bins_by_decade_quarters() {
        // Edges run from 1e-5 to 10^1.5 in steps of 10^0.25: 26 bins.
        assert_eq!(histogram_edges().len(), 27);
        // 0 and 1e-7 go in bin 0; 1.0 is log10 = 0, (0 + 5) * 4 = bin 20; 2.0 is
        // log10 = 0.301, (5.301) * 4 = 21.2, bin 21; 1e6 clamps into the last bin 25.
        let (counts, nonfinite) =
            loss_histogram(&[0.0, 1e-7, 1.0, 2.0, 1e6, f32::NAN, f32::INFINITY]);
        assert_eq!(nonfinite, 2);
        assert_eq!(counts.iter().sum::<u64>(), 5);
        assert_eq!(counts[0], 2);
        assert_eq!(counts[20], 1);
        assert_eq!(counts[21], 1);
        assert_eq!(counts[25], 1);
    }

    #[test]
    fn epoch_lists_follow_the_pinned_order() {
        // Losses by id: NaN at 3 ranks first, then inf at 1, then 0.9 (id 0) and 0.9 (id 4)
        // tie and keep id order, then 0.5 (id 2).
        let losses = [0.9f32, f32::INFINITY, 0.5, f32::NAN, 0.9];
        let labels = [0u32, 1, 0, 1, 0];
        let lists = epoch_lists(&losses, &labels, 2, 2).unwrap();
        assert_eq!(lists.all, vec![3, 1]);
        assert_eq!(lists.classes, vec![vec![0, 4], vec![3, 1]]);
        assert_eq!(lists.rank, vec![3, 2, 5, 1, 4]);
    }

    #[test]
    fn confusion_rows_are_given_labels() {
        // Given 0 predicted 1 twice, given 1 predicted 1 once.
        let counts = confusion_counts(&[0, 0, 1], &[1, 1, 1], 2);
        assert_eq!(counts, vec![0, 2, 0, 1]);
    }
}
