//! `toploss issues`: rank a run's samples by how likely their given label is wrong, and the
//! ranking, CSV, table and grid pieces that `toploss score` shares.
//!
//! Every method gives each sample a score and a suggested label. Candidates are the samples
//! that a method flags: confident learning's filter, or a score on the suspicious side of a
//! fixed threshold (AUM < 0, margin < 0, cartography confidence < 0.5, loss > ln 2). NaN scores
//! are always candidates and rank first, as in `toploss top`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::ValueEnum;
use toploss_core::confident::{Filter, LabelIssueOptions, Ranking, find_label_issues_ranked};
use toploss_core::dynamics::{aum, cartography, most_frequent_class};
use toploss_core::rank::{Order, top_k_where};
use toploss_core::scores::predicted_labels;
use toploss_data::Split;
use toploss_data::run::{
    DYNAMICS_PARQUET, Dynamics, RunInfo, SplitDynamics, SplitName, prepare_output_dir, probs_path,
    write_atomic,
};
use toploss_report::{Tile, TileImage, write_grid_png};

use crate::args::{FilterArg, IssueMethodArg, IssuesArgs, RankByArg, SplitArg};
use crate::noise;
use crate::output::Ui;
use crate::predictions::read_predictions;
use crate::top::{format_value, load_run_dataset, resolve_epoch};

/// Most tiles drawn in a grid; a larger grid is hard to read and slow to draw.
pub const GRID_MAX_TILES: usize = 64;
/// Rows of the table printed on stdout; issues.csv has them all.
const TABLE_ROWS: usize = 20;
/// Ranked candidates: `rank,id,label,suggested,score`.
pub const ISSUES_CSV: &str = "issues.csv";
/// Per-sample cartography coordinates: `id,label,confidence,variability,correctness`.
const CARTOGRAPHY_CSV: &str = "cartography.csv";
/// Out-of-fold probabilities of the train split, written by `toploss train --folds K`.
pub(crate) const OOF_PROBS: &str = "oof_probs.npy";
/// Candidate threshold of cross-entropy: `ln 2`, the loss at p(given label) = 0.5.
pub const LOSS_THRESHOLD: f64 = std::f64::consts::LN_2;
/// Candidate threshold of probability-like scores (cartography confidence, self-confidence).
pub const PROBABILITY_THRESHOLD: f64 = 0.5;

/// Whether a method's low or high scores are suspicious.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Lower = more suspicious.
    LowerIsWorse,
    /// Higher = more suspicious (loss).
    HigherIsWorse,
}

impl Direction {
    fn order(self) -> Order {
        match self {
            Direction::LowerIsWorse => Order::Smallest,
            Direction::HigherIsWorse => Order::Largest,
        }
    }
}

/// The ranked candidates of one method.
#[derive(Debug, Clone)]
pub struct Candidates {
    /// Candidate ids kept (at most `-k`), most suspicious first.
    pub ids: Vec<usize>,
    /// Number of candidates before the `-k` cut.
    pub found: usize,
    /// The method's score of every sample.
    pub scores: Vec<f64>,
    /// The suggested (most likely true) label of every sample.
    pub suggested: Vec<u32>,
    /// Direction in which scores are suspicious.
    pub direction: Direction,
    /// How many kept candidates have a NaN score.
    pub nan_count: usize,
    /// Whether each sample is a candidate, before the `-k` cut.
    pub flagged: Vec<bool>,
}

impl Candidates {
    /// Ranks the samples whose score passes `is_candidate`, plus every NaN score, in the order
    /// of `toploss top`: NaN first, then by score, ties by lower id.
    pub fn by_threshold(
        scores: Vec<f64>,
        suggested: Vec<u32>,
        direction: Direction,
        is_candidate: impl Fn(f64) -> bool + Sync,
        k: Option<usize>,
    ) -> anyhow::Result<Self> {
        let n = scores.len();
        let requested = k.unwrap_or(n).min(n).max(1);
        let flagged: Vec<bool> = scores
            .iter()
            .map(|&score| score.is_nan() || is_candidate(score))
            .collect();
        let top = top_k_where(&scores, requested, direction.order(), |id| flagged[id])?;
        Ok(Self {
            ids: top.ids,
            found: top.available,
            scores,
            suggested,
            direction,
            nan_count: top.nan_count,
            flagged,
        })
    }

    /// Runs confident learning: the ids that `filter` flags, ranked by `rank_by` (ascending,
    /// ties by lower id). Suggested labels are the argmax of each row.
    pub fn by_confident_learning(
        probs: &[f64],
        labels: &[u32],
        num_classes: usize,
        filter: FilterArg,
        rank_by: RankByArg,
        k: Option<usize>,
    ) -> anyhow::Result<Self> {
        let options = LabelIssueOptions {
            filter: filter.into(),
            ..LabelIssueOptions::default()
        };
        let ranking: Ranking = rank_by.into();
        let mut ids = find_label_issues_ranked(probs, labels, num_classes, &options, ranking)?;
        let found = ids.len();
        let mut flagged = vec![false; labels.len()];
        for &id in &ids {
            flagged[id] = true;
        }
        if let Some(k) = k {
            ids.truncate(k);
        }
        Ok(Self {
            ids,
            found,
            scores: ranking.scores(probs, labels, num_classes)?,
            suggested: predicted_labels(probs, num_classes)?,
            direction: Direction::LowerIsWorse,
            nan_count: 0,
            flagged,
        })
    }

    /// Returns the first `k` ids of every sample ranked by score, for precision at k.
    pub fn ranking(&self, k: usize) -> anyhow::Result<Vec<usize>> {
        Ok(top_k_where(&self.scores, k.max(1), self.direction.order(), |_| true)?.ids)
    }
}

impl From<FilterArg> for Filter {
    fn from(filter: FilterArg) -> Self {
        match filter {
            FilterArg::PruneByNoiseRate => Filter::PruneByNoiseRate,
            FilterArg::PruneByClass => Filter::PruneByClass,
            FilterArg::Both => Filter::Both,
            FilterArg::ConfidentLearning => Filter::ConfidentLearning,
            FilterArg::PredictedNeqGiven => Filter::PredictedNeqGiven,
            FilterArg::LowNormalizedMargin => Filter::LowNormalizedMargin,
            FilterArg::LowSelfConfidence => Filter::LowSelfConfidence,
        }
    }
}

impl From<RankByArg> for Ranking {
    fn from(rank_by: RankByArg) -> Self {
        match rank_by {
            RankByArg::SelfConfidence => Ranking::SelfConfidence,
            RankByArg::NormalizedMargin => Ranking::NormalizedMargin,
            RankByArg::ConfidenceWeightedEntropy => Ranking::ConfidenceWeightedEntropy,
        }
    }
}

/// Returns the command-line name of a `ValueEnum` value, for titles and folder names.
pub fn value_name(value: &impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// Writes `rank,id,label,suggested,score` for the kept candidates.
pub fn write_issues_csv(
    path: &Path,
    candidates: &Candidates,
    labels: &[u32],
) -> anyhow::Result<()> {
    write_atomic(path, |out| {
        writeln!(out, "rank,id,label,suggested,score")?;
        for (rank, &id) in candidates.ids.iter().enumerate() {
            writeln!(
                out,
                "{},{id},{},{},{}",
                rank + 1,
                labels[id],
                candidates.suggested[id],
                candidates.scores[id]
            )?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Prints the first candidates as a fixed-width table on stdout.
pub fn print_candidates(candidates: &Candidates, labels: &[u32], classes: &[String]) {
    let name_width = classes
        .iter()
        .map(|name| name.chars().count())
        .max()
        .unwrap_or(5)
        .max(9);
    println!(
        "{:>4}  {:>7}  {:<name_width$}  {:<name_width$}  {:>10}",
        "rank", "id", "given", "suggested", "score"
    );
    for (rank, &id) in candidates.ids.iter().take(TABLE_ROWS).enumerate() {
        println!(
            "{:>4}  {:>7}  {:<name_width$}  {:<name_width$}  {:>10}",
            rank + 1,
            id,
            classes[labels[id] as usize],
            classes[candidates.suggested[id] as usize],
            format_score(candidates.scores[id]),
        );
    }
    if candidates.ids.len() > TABLE_ROWS {
        println!(
            "... and {} more in {ISSUES_CSV}",
            candidates.ids.len() - TABLE_ROWS
        );
    }
}

/// Formats a score for the table: 4 decimals, or 3 significant digits below 1e-3 so that
/// tiny confident-learning scores stay distinguishable.
fn format_score(score: f64) -> String {
    if score != 0.0 && score.abs() < 1e-3 {
        format!("{score:.2e}")
    } else {
        format_value(score as f32)
    }
}

/// Values that a grid tile shows besides the image and the given label.
#[derive(Debug, Clone, Copy)]
pub struct TileValues {
    /// Predicted class.
    pub predicted: u32,
    /// Cross-entropy against the given label (nats).
    pub loss: f32,
    /// Probability of the predicted class.
    pub p_predicted: f32,
    /// Probability of the given label.
    pub p_actual: f32,
}

/// Draws the first [`GRID_MAX_TILES`] candidates into `png`.
pub fn write_candidates_grid(
    png: &Path,
    ids: &[usize],
    split: &Split,
    labels: &[u32],
    classes: &[String],
    values: impl Fn(usize) -> TileValues,
    title: &str,
) -> anyhow::Result<()> {
    let shape = split.shape;
    let tiles: Vec<Tile> = ids
        .iter()
        .take(GRID_MAX_TILES)
        .map(|&id| {
            let value = values(id);
            Tile {
                id: id as u32,
                image: TileImage {
                    pixels: split.image(id),
                    channels: shape.channels,
                    height: shape.height,
                    width: shape.width,
                },
                predicted: &classes[value.predicted as usize],
                actual: &classes[labels[id] as usize],
                loss: value.loss,
                p_predicted: value.p_predicted,
                p_actual: value.p_actual,
            }
        })
        .collect();
    write_grid_png(&tiles, Some(title), png)?;
    Ok(())
}

/// Prints how many candidates were found and how many were kept.
pub fn print_found(candidates: &Candidates, method: &str, rule: &str, ui: &Ui) {
    println!(
        "{} candidates found by {method} ({rule}); {} listed",
        candidates.found,
        candidates.ids.len()
    );
    if candidates.nan_count > 0 {
        ui.status(&format!(
            "note: {} candidates have a NaN score (ranked first)",
            candidates.nan_count
        ));
    }
}

/// Returns the rule that makes a sample a candidate, for the summary line.
fn rule_of(args: &IssuesArgs) -> String {
    match args.method {
        IssueMethodArg::ConfidentLearning => format!(
            "--filter {}, ranked by {}",
            value_name(&args.filter),
            value_name(&args.rank_by)
        ),
        IssueMethodArg::Aum => "AUM < 0".to_string(),
        IssueMethodArg::Cartography => "confidence < 0.5".to_string(),
        IssueMethodArg::Loss => "loss > ln 2".to_string(),
        IssueMethodArg::Margin => "margin < 0".to_string(),
    }
}

/// Reads the rows of every recorded epoch up to `epoch`, in epoch order.
pub(crate) fn epochs_up_to(
    dynamics: &Dynamics,
    epoch: u32,
    split: SplitName,
) -> Vec<(u32, &SplitDynamics)> {
    dynamics
        .epochs()
        .into_iter()
        .filter(|&e| e <= epoch)
        .filter_map(|e| dynamics.get(e, split).map(|rows| (e, rows)))
        .collect()
}

/// Computes AUM over epochs 1..=N of the train split (epoch 1 skipped by the core).
pub(crate) fn aum_candidates(
    epochs: &[(u32, &SplitDynamics)],
    num_classes: usize,
    k: Option<usize>,
    ui: &Ui,
) -> anyhow::Result<Candidates> {
    // A sample without a training margin (discarded from training) gets NaN here.
    let margins: Vec<Vec<f64>> = epochs
        .iter()
        .map(|(_, rows)| {
            rows.train_margin
                .iter()
                .map(|m| m.map_or(f64::NAN, f64::from))
                .collect()
        })
        .collect();
    let margin_slices: Vec<&[f64]> = margins.iter().map(Vec::as_slice).collect();
    let result = aum(&margin_slices)?;
    if !result.first_epoch_skipped {
        ui.status(
            "warning: AUM from a single epoch uses epoch 1, whose margins come from a nearly \
             untrained model; train for more epochs",
        );
    }
    let used = &epochs[epochs.len() - result.epochs_used..];

    // Samples with no margin in the epochs used were not trained on: rank them last and never
    // list them, instead of as NaN first.
    let missing: Vec<bool> = (0..result.scores.len())
        .map(|id| used.iter().all(|(_, rows)| rows.train_margin[id].is_none()))
        .collect();
    let missing_count = missing.iter().filter(|&&m| m).count();
    if missing_count > 0 {
        ui.status(&format!(
            "note: {missing_count} samples have no training margin (discarded from training) and \
             are not scored"
        ));
    }
    let scores: Vec<f64> = result
        .scores
        .iter()
        .zip(&missing)
        .map(|(&score, &missing)| if missing { f64::INFINITY } else { score })
        .collect();

    let predicted: Vec<&[u32]> = used
        .iter()
        .map(|(_, rows)| rows.predicted.as_slice())
        .collect();
    let suggested = most_frequent_class(&predicted, num_classes)?;
    Candidates::by_threshold(scores, suggested, Direction::LowerIsWorse, |s| s < 0.0, k)
}

/// Cartography candidates, plus the two columns that only cartography.csv needs.
pub(crate) struct CartographyResult {
    /// The candidates, scored by confidence.
    pub candidates: Candidates,
    variability: Vec<f64>,
    correctness: Vec<f64>,
}

/// Computes cartography over epochs 1..=N; the score is the confidence.
pub(crate) fn cartography_candidates(
    epochs: &[(u32, &SplitDynamics)],
    labels: &[u32],
    num_classes: usize,
    k: Option<usize>,
) -> anyhow::Result<CartographyResult> {
    let p_label: Vec<&[f32]> = epochs
        .iter()
        .map(|(_, rows)| rows.p_label.as_slice())
        .collect();
    let predicted: Vec<&[u32]> = epochs
        .iter()
        .map(|(_, rows)| rows.predicted.as_slice())
        .collect();
    let map = cartography(&p_label, &predicted, labels)?;
    let suggested = most_frequent_class(&predicted, num_classes)?;
    let candidates = Candidates::by_threshold(
        map.confidence,
        suggested,
        Direction::LowerIsWorse,
        |confidence| confidence < PROBABILITY_THRESHOLD,
        k,
    )?;
    Ok(CartographyResult {
        candidates,
        variability: map.variability,
        correctness: map.correctness,
    })
}

/// Reads the probabilities that confident learning uses: `oof_probs.npy` for the train split
/// when the run has it, else the epoch's `probs/SPLIT-eNN.npy`.
fn run_probabilities(
    args: &IssuesArgs,
    split: SplitName,
    epoch: u32,
    ui: &Ui,
) -> anyhow::Result<(crate::predictions::Matrix, PathBuf)> {
    let oof = args.run.join(OOF_PROBS);
    if split == SplitName::Train && oof.is_file() {
        if !args.epoch.eq_ignore_ascii_case("last") {
            ui.status(&format!(
                "note: --epoch {} is ignored: confident learning reads the out-of-fold \
                 probabilities in {}",
                args.epoch,
                oof.display()
            ));
        }
        return Ok((read_predictions(&oof)?, oof));
    }

    let path = probs_path(&args.run, split, epoch);
    if !path.is_file() {
        bail!(
            "{} not found: the run has no probabilities of epoch {epoch} (training keeps only \
             the last epoch's unless --save-probs all, and the file may have been removed); \
             pass an --epoch whose file exists in probs/, or retrain",
            path.display()
        );
    }
    if split == SplitName::Train {
        ui.status(&format!(
            "warning: {} has no {OOF_PROBS}, so confident learning uses the in-sample \
             probabilities of epoch {epoch}. A model is overconfident on the samples it \
             trained on, which hides most label errors; train with --folds 5 for out-of-fold \
             probabilities",
            args.run.display()
        ));
    }
    Ok((read_predictions(&path)?, path))
}

/// Runs `toploss issues`.
pub fn run_issues(args: &IssuesArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    // Parse and check the request.
    let info = RunInfo::read(&args.run)?;
    if args.k == Some(0) {
        bail!("invalid -k 0: expected at least 1");
    }
    let epoch = resolve_epoch(&args.epoch, &info, &args.run)?;
    let split = match args.split {
        SplitArg::Train => SplitName::Train,
        SplitArg::Test => SplitName::Test,
    };
    if args.method == IssueMethodArg::Aum && split == SplitName::Test {
        bail!(
            "--method aum needs --split train: the test split has no training margin; use \
             --method cartography, loss or margin for the test split"
        );
    }
    let method = value_name(&args.method);
    let classes = &info.classes;
    let num_classes = classes.len();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.run.join("issues").join(&method));

    // Data: one epoch for loss, margin and confident learning; epochs 1..=N for the dynamics.
    let dynamics_path = args.run.join(DYNAMICS_PARQUET);
    let one_epoch = matches!(
        args.method,
        IssueMethodArg::Loss | IssueMethodArg::Margin | IssueMethodArg::ConfidentLearning
    );
    let dynamics = Dynamics::read(&dynamics_path, one_epoch.then_some(epoch), Some(split))?;
    dynamics.check_classes(info.classes.len(), &dynamics_path)?;
    let rows = dynamics.get(epoch, split).with_context(|| {
        format!(
            "{}: no {split} rows for epoch {epoch}",
            dynamics_path.display()
        )
    })?;
    let labels = &rows.label;

    // Score.
    let mut cartography_columns = None;
    let candidates = match args.method {
        IssueMethodArg::Loss => Candidates::by_threshold(
            rows.loss.iter().map(|&l| f64::from(l)).collect(),
            rows.predicted.clone(),
            Direction::HigherIsWorse,
            |loss| loss > LOSS_THRESHOLD,
            args.k,
        )?,
        IssueMethodArg::Margin => Candidates::by_threshold(
            rows.margin.iter().map(|&m| f64::from(m)).collect(),
            rows.predicted.clone(),
            Direction::LowerIsWorse,
            |margin| margin < 0.0,
            args.k,
        )?,
        IssueMethodArg::Aum => aum_candidates(
            &epochs_up_to(&dynamics, epoch, split),
            num_classes,
            args.k,
            ui,
        )?,
        IssueMethodArg::Cartography => {
            let result = cartography_candidates(
                &epochs_up_to(&dynamics, epoch, split),
                labels,
                num_classes,
                args.k,
            )?;
            cartography_columns = Some((result.variability, result.correctness));
            result.candidates
        }
        IssueMethodArg::ConfidentLearning => {
            let (matrix, path) = run_probabilities(args, split, epoch, ui)?;
            if matrix.rows != labels.len() || matrix.cols != num_classes {
                bail!(
                    "{} is {} x {}, but the run has {} {split} samples and {num_classes} classes",
                    path.display(),
                    matrix.rows,
                    matrix.cols,
                    labels.len()
                );
            }
            Candidates::by_confident_learning(
                &matrix.values,
                labels,
                num_classes,
                args.filter,
                args.rank_by,
                args.k,
            )
            .with_context(|| format!("confident learning on {}", path.display()))?
        }
    };

    // Load the images before writing anything, so that a dataset that moved leaves no
    // half-written output folder behind.
    let dataset = if candidates.ids.is_empty() {
        None
    } else {
        let mut dataset = load_run_dataset(&info, &args.run, args.data.as_ref())?;
        dataset.train.truncate(info.dataset.train_count);
        dataset.test.truncate(info.dataset.test_count);
        Some(dataset)
    };

    // Write issues.csv, cartography.csv and the grid.
    prepare_output_dir(&out, args.overwrite)?;
    let csv = out.join(ISSUES_CSV);
    write_issues_csv(&csv, &candidates, labels)?;
    let mut written = vec![csv];
    if let Some((variability, correctness)) = &cartography_columns {
        let path = out.join(CARTOGRAPHY_CSV);
        write_atomic(&path, |file| {
            writeln!(file, "id,label,confidence,variability,correctness")?;
            for id in 0..labels.len() {
                writeln!(
                    file,
                    "{id},{},{},{},{}",
                    labels[id], candidates.scores[id], variability[id], correctness[id]
                )?;
            }
            Ok(())
        })?;
        written.push(path);
    }
    if let Some(dataset) = &dataset {
        let images = match split {
            SplitName::Train => &dataset.train,
            SplitName::Test => &dataset.test,
        };
        let shown = candidates.ids.len().min(GRID_MAX_TILES);
        let png = out.join(format!("{split}-e{epoch:02}-{method}-{shown}.png"));
        let title = format!(
            "{method} · top {shown} of {} candidates · {split} · epoch {epoch}/{}",
            candidates.found,
            info.epochs.len()
        );
        write_candidates_grid(
            &png,
            &candidates.ids,
            images,
            labels,
            classes,
            |id| TileValues {
                predicted: rows.predicted[id],
                loss: rows.loss[id],
                p_predicted: rows.p_predicted[id],
                p_actual: rows.p_label[id],
            },
            &title,
        )?;
        written.push(png);
    }

    // Report.
    print_found(&candidates, &method, &rule_of(args), ui);
    if candidates.ids.is_empty() {
        println!(
            "no candidates: try --method loss, or `toploss top {}` for the highest losses",
            args.run.display()
        );
    } else {
        print_candidates(&candidates, labels, classes);
    }
    if split == SplitName::Train
        && let Some(flipped) = noise::read_flipped(&args.run, &info.config)?
    {
        let ranking = candidates.ranking(flipped.len())?;
        let evaluation = noise::evaluate(&candidates.ids, &ranking, &flipped);
        println!("{}", noise::describe(&evaluation, &method));
        if args.method != IssueMethodArg::Loss {
            // The plain top-loss ranking of the same epoch, as a baseline.
            let losses: Vec<f32> = rows.loss.clone();
            let top = top_k_where(&losses, flipped.len().max(1), Order::Largest, |_| true)?;
            let baseline = noise::evaluate(&[], &top.ids, &flipped);
            println!(
                "loss ranking of epoch {epoch}: precision at k = {}: {}",
                baseline.k,
                baseline
                    .precision_at_k
                    .map_or_else(|| "n/a".to_string(), |p| format!("{p:.3}"))
            );
        }
    }
    for path in &written {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
