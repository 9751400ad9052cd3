//! `toploss compare`: group runs into configurations and report test accuracy and test
//! cross-entropy as mean ± standard deviation over seeds, as a table, a CSV and a PNG.
//!
//! Configurations are compared by test metrics only. Training loss is never used, because
//! label smoothing raises it without making the model worse.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::Value;
use toploss_data::run::{RUN_JSON, RunInfo, RunStatus, write_atomic};
use toploss_report::{ConfigSeries, RunPoint, Spread, spread, write_compare_png};

use crate::args::CompareArgs;
use crate::output::Ui;

/// `config` keys that do not change the experiment, so runs that differ only in them belong to
/// one configuration. `noise_seed` is not among them: another noise draw is another dataset.
pub const IGNORED_KEYS: [&str; 7] = [
    "seed",
    "seeds",
    "threads",
    "eval_batch_size",
    "save_probs",
    "out",
    "overwrite",
];

/// The `config` key of the dataset. Grouping uses the dataset fingerprint in its place, so the
/// same files reached by two different paths count as one dataset.
const DATA_KEY: &str = "data";

/// Text printed for a standard deviation that one run cannot give.
const NOT_AVAILABLE: &str = "n/a";

/// One finished run.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run folder.
    pub dir: PathBuf,
    /// Its `run.json`.
    pub info: RunInfo,
}

/// Runs that share every `config` value except the [`IGNORED_KEYS`].
#[derive(Debug, Clone)]
pub struct Configuration {
    /// Short label made of the keys whose values differ between the configurations.
    pub label: String,
    /// The runs, in the order they were found.
    pub runs: Vec<Run>,
}

/// Whether a configuration's difference to the first one is larger than the seed-to-seed
/// spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The first configuration, which the others are compared with.
    Baseline,
    /// |difference| > sd of the first + sd of this one.
    ExceedsSpread,
    /// |difference| <= sd of the first + sd of this one.
    WithinSpread,
    /// One of the two has a single run, so its spread is unknown.
    SpreadUnknown,
}

impl Verdict {
    /// Returns the text shown in the table and the CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Baseline => "baseline",
            Verdict::ExceedsSpread => "exceeds spread",
            Verdict::WithinSpread => "within spread",
            Verdict::SpreadUnknown => "spread unknown (1 seed)",
        }
    }
}

/// The numbers of one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Final-epoch test accuracy over the runs, in percent.
    pub final_accuracy: Spread,
    /// Best test accuracy over the epochs of each run, in percent.
    pub best_accuracy: Spread,
    /// Final-epoch plain test cross-entropy over the runs, in nats.
    pub final_test_loss: Spread,
    /// Mean final accuracy minus that of the first configuration, in percentage points.
    pub difference: f64,
    /// Comparison of the difference with the spread.
    pub verdict: Verdict,
}

/// Runs `toploss compare`.
pub fn run_compare(args: &CompareArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    // Find the runs and keep the finished ones.
    let mut runs = Vec::new();
    let mut seen = HashSet::new();
    for argument in &args.runs {
        for dir in expand_argument(argument)? {
            let canonical = dir.canonicalize().unwrap_or_else(|_| dir.clone());
            if !seen.insert(canonical) {
                tracing::warn!(
                    "{} is listed more than once; counting it once",
                    dir.display()
                );
                continue;
            }
            let info = RunInfo::read(&dir)?;
            if info.status != RunStatus::Complete {
                tracing::warn!(
                    "{} is incomplete (status {}, {} finished); leaving it out",
                    dir.display(),
                    info.status,
                    crate::output::count(info.epochs.len(), "epoch")
                );
                continue;
            }
            if info.epochs.is_empty() {
                tracing::warn!("{} has no finished epoch; leaving it out", dir.display());
                continue;
            }
            runs.push(Run { dir, info });
        }
    }
    if runs.is_empty() {
        bail!("no finished run to compare; wait for training to end or pass other run folders");
    }
    if !args.allow_different_data {
        check_same_dataset(&runs)?;
    }

    // Group and summarize.
    let (configurations, differing) = group_runs(runs);
    warn_uneven_epochs(&configurations);
    warn_repeated_seeds(&configurations);
    let summaries = summarize(&configurations);

    // Report.
    let table = if args.markdown {
        markdown_table(&configurations, &summaries)
    } else {
        text_table(&configurations, &summaries)
    };
    print!("{table}");
    println!();
    for line in notes(&differing) {
        // A list keeps the notes on separate lines when the Markdown is rendered.
        if args.markdown {
            println!("- {line}");
        } else {
            println!("{line}");
        }
    }

    let mut written = Vec::new();
    if let Some(csv) = &args.csv {
        create_parent(csv)?;
        write_csv(csv, &configurations, &summaries)?;
        written.push(csv.clone());
    }
    let series = plot_series(&configurations);
    create_parent(&args.out)?;
    let run_count: usize = configurations.iter().map(|c| c.runs.len()).sum();
    let title = format!(
        "test metrics · {} configurations · {run_count} runs",
        configurations.len()
    );
    write_compare_png(&series, &title, &args.out)?;
    written.push(args.out.clone());

    // With --markdown, stdout holds only the table, so that it can go straight into a page.
    for path in written {
        let line = format!("wrote {}", path.display());
        if args.markdown {
            ui.status(&line);
        } else {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates the folder that `path` is to be written in, if it is missing.
fn create_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(())
}

/// Expands one RUN argument into run folders. A run folder is returned as it is. A folder
/// without `run.json` is a group, replaced by its direct subfolders that have one, in natural
/// name order (`seed-2` before `seed-10`).
pub fn expand_argument(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.join(RUN_JSON).is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.exists() {
        bail!("run folder {} not found", path.display());
    }
    if !path.is_dir() {
        bail!(
            "{} is not a folder; pass a run folder written by `toploss train` or a folder of runs",
            path.display()
        );
    }
    let entries =
        std::fs::read_dir(path).with_context(|| format!("cannot list {}", path.display()))?;
    let mut runs = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", path.display()))?;
        let child = entry.path();
        if child.join(RUN_JSON).is_file() {
            runs.push(child);
        }
    }
    if runs.is_empty() {
        bail!(
            "{} is neither a run folder (no {RUN_JSON}) nor a group of runs (no subfolder has \
             one); pass the --out folder of `toploss train`",
            path.display()
        );
    }
    runs.sort_by(|a, b| natural_order(&file_name(a), &file_name(b)));
    Ok(runs)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Compares names chunk by chunk, digits by numeric value and text by characters, so that
/// `seed-9` sorts before `seed-10`. Equal chunks fall back to plain string order.
fn natural_order(a: &str, b: &str) -> Ordering {
    fn chunks(name: &str) -> Vec<(bool, &str)> {
        let mut chunks = Vec::new();
        let mut start = 0;
        let bytes = name.as_bytes();
        for i in 1..=bytes.len() {
            let boundary =
                i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit();
            if boundary {
                chunks.push((bytes[start].is_ascii_digit(), &name[start..i]));
                start = i;
            }
        }
        chunks
    }
    let (left, right) = (chunks(a), chunks(b));
    for ((a_digits, a_chunk), (b_digits, b_chunk)) in left.iter().zip(&right) {
        let order = if *a_digits && *b_digits {
            // Compare numbers of any length without parsing: fewer significant digits is
            // smaller, then digit by digit.
            let a_trim = a_chunk.trim_start_matches('0');
            let b_trim = b_chunk.trim_start_matches('0');
            a_trim.len().cmp(&b_trim.len()).then(a_trim.cmp(b_trim))
        } else {
            a_chunk.cmp(b_chunk)
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    left.len().cmp(&right.len()).then(a.cmp(b))
}

/// Rejects runs trained on different datasets, naming the first pair found.
pub(crate) fn check_same_dataset(runs: &[Run]) -> anyhow::Result<()> {
    let Some(first) = runs.first() else {
        return Ok(());
    };
    for run in &runs[1..] {
        if run.info.dataset.fingerprint != first.info.dataset.fingerprint {
            bail!(
                "{} and {} were trained on different datasets ({} {} against {} {}), so their \
                 test accuracies are not comparable; pass --allow-different-data to compare \
                 them anyway",
                first.dir.display(),
                run.dir.display(),
                first.info.dataset.path,
                first.info.dataset.fingerprint,
                run.info.dataset.path,
                run.info.dataset.fingerprint
            );
        }
    }
    Ok(())
}

/// Builds the `config` of a run as used for grouping: every key but the [`IGNORED_KEYS`], with the
/// dataset fingerprint in place of the dataset path. A `config` that is not a JSON object
/// counts as empty.
fn grouping_key(info: &RunInfo) -> BTreeMap<String, Value> {
    let mut key = BTreeMap::new();
    if let Value::Object(config) = &info.config {
        for (name, value) in config {
            if !IGNORED_KEYS.contains(&name.as_str()) {
                key.insert(name.clone(), value.clone());
            }
        }
    }
    key.insert(
        DATA_KEY.to_string(),
        Value::String(info.dataset.fingerprint.clone()),
    );
    key
}

/// Groups runs with equal [`grouping_key`]s, in the order each configuration first appears,
/// and labels each by the keys that differ between them. Returns the configurations and those
/// keys, in key order.
pub fn group_runs(runs: Vec<Run>) -> (Vec<Configuration>, Vec<String>) {
    let mut keys: Vec<BTreeMap<String, Value>> = Vec::new();
    let mut groups: Vec<Vec<Run>> = Vec::new();
    for run in runs {
        let key = grouping_key(&run.info);
        match keys.iter().position(|existing| *existing == key) {
            Some(index) => groups[index].push(run),
            None => {
                keys.push(key);
                groups.push(vec![run]);
            }
        }
    }

    // Label keys: those whose value is not the same in every configuration, in key order.
    let names: std::collections::BTreeSet<&String> = keys.iter().flat_map(|k| k.keys()).collect();
    let differing: Vec<String> = names
        .into_iter()
        .filter(|name| keys.iter().any(|k| k.get(*name) != keys[0].get(*name)))
        .cloned()
        .collect();

    // Noise details that every noisy configuration shares only repeat `label_noise`.
    let shared_noise_details: Vec<&str> = NOISE_DETAILS
        .into_iter()
        .filter(|name| {
            let values: std::collections::BTreeSet<String> = groups
                .iter()
                .map(|runs| display_value(&runs[0].info, name))
                .filter(|value| value != "none")
                .collect();
            values.len() <= 1
        })
        .collect();

    let configurations = groups
        .into_iter()
        .map(|runs| {
            let parts: Vec<String> = differing
                .iter()
                .filter(|name| !LABEL_ONLY_DERIVED.contains(&name.as_str()))
                .filter(|name| !shared_noise_details.contains(&name.as_str()))
                .filter_map(|name| {
                    let value = display_value(&runs[0].info, name);
                    // Noise details and empty correction files add nothing to a label.
                    let redundant = value == "none" && name.as_str() != "label_noise";
                    (!redundant).then(|| format!("{name}={value}"))
                })
                .collect();
            let label = if differing.is_empty() {
                "all runs".to_string()
            } else if parts.is_empty() {
                "defaults".to_string()
            } else {
                parts.join(" ")
            };
            Configuration { label, runs }
        })
        .collect();
    (configurations, differing)
}

/// `config` keys that follow from other keys (the counts of a corrections file) and so are
/// left out of labels; they still take part in grouping.
const LABEL_ONLY_DERIVED: [&str; 2] = ["discarded", "relabelled"];

/// `config` keys that describe `label_noise` and are left out of labels when every noisy
/// configuration has the same value.
const NOISE_DETAILS: [&str; 2] = ["noise_kind", "noise_seed"];

/// Formats a `config` value for a label: strings without quotes (file paths as their file
/// name), `none` for a missing or null value, and whole-number floats without `.0`
/// (`label_smoothing=0`).
fn display_value(info: &RunInfo, name: &str) -> String {
    // The dataset is grouped by fingerprint but shown as the FORMAT:PATH the user gave.
    if name == DATA_KEY && !info.config.get(name).is_some_and(Value::is_string) {
        return format!("{}:{}", info.dataset.format, info.dataset.path);
    }
    match info.config.get(name) {
        None | Some(Value::Null) => "none".to_string(),
        Some(Value::String(text)) if name == "relabel" || name == "discard" => Path::new(text)
            .file_name()
            .map_or_else(|| text.clone(), |file| file.to_string_lossy().into_owned()),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => match number.as_f64() {
            Some(float) if number.is_f64() && float.fract() == 0.0 && float.abs() < 1e15 => {
                format!("{}", float as i64)
            }
            _ => number.to_string(),
        },
        Some(other) => other.to_string(),
    }
}

/// Warns about configurations whose runs finished different numbers of epochs.
fn warn_uneven_epochs(configurations: &[Configuration]) {
    for configuration in configurations {
        let counts: Vec<usize> = configuration
            .runs
            .iter()
            .map(|run| run.info.epochs.len())
            .collect();
        if counts.iter().any(|&count| count != counts[0]) {
            let listing = configuration
                .runs
                .iter()
                .map(|run| format!("{} ({})", run.dir.display(), run.info.epochs.len()))
                .collect::<Vec<_>>()
                .join(", ");
            tracing::warn!(
                "configuration {} has runs with different epoch counts: {listing}; final \
                 metrics come from each run's last epoch",
                configuration.label
            );
        }
    }
}

/// Warns about configurations with two runs of one seed. The same seed, data and build train
/// the same weights, so such copies shrink the spread without adding a measurement.
fn warn_repeated_seeds(configurations: &[Configuration]) {
    for configuration in configurations {
        let mut by_seed: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for run in &configuration.runs {
            if let Some(seed) = run.info.config.get("seed").and_then(Value::as_u64) {
                by_seed
                    .entry(seed)
                    .or_default()
                    .push(run.dir.display().to_string());
            }
        }
        for (seed, dirs) in by_seed.iter().filter(|(_, dirs)| dirs.len() > 1) {
            tracing::warn!(
                "configuration {} has {} runs with seed {seed} ({}). The same seed gives the \
                 same run, so the spread counts one measurement {} times; train other seeds \
                 with --seeds N",
                configuration.label,
                dirs.len(),
                dirs.join(", "),
                dirs.len()
            );
        }
    }
}

/// Computes each configuration's numbers and its difference to the first configuration.
pub fn summarize(configurations: &[Configuration]) -> Vec<Summary> {
    let mut summaries: Vec<Summary> = Vec::with_capacity(configurations.len());
    for configuration in configurations {
        let last = |run: &Run| run.info.epochs.last().cloned();
        let final_accuracy: Vec<f64> = configuration
            .runs
            .iter()
            .filter_map(last)
            .map(|metrics| metrics.test_accuracy * 100.0)
            .collect();
        let final_test_loss: Vec<f64> = configuration
            .runs
            .iter()
            .filter_map(last)
            .map(|metrics| metrics.test_loss)
            .collect();
        // Best epoch of each run; NaN epochs are skipped by f64::max.
        let best_accuracy: Vec<f64> = configuration
            .runs
            .iter()
            .map(|run| {
                run.info
                    .epochs
                    .iter()
                    .map(|metrics| metrics.test_accuracy * 100.0)
                    .fold(f64::NAN, f64::max)
            })
            .collect();

        // Every configuration has at least one run with at least one epoch, so the spreads
        // exist; the fallback only keeps this function total.
        let empty = Spread {
            n: 0,
            mean: f64::NAN,
            sd: None,
        };
        let final_accuracy = spread(&final_accuracy).unwrap_or(empty);
        let best_accuracy = spread(&best_accuracy).unwrap_or(empty);
        let final_test_loss = spread(&final_test_loss).unwrap_or(empty);

        // The first configuration is the baseline of every difference.
        let (difference, verdict) = match summaries.first() {
            None => (0.0, Verdict::Baseline),
            Some(first) => {
                let difference = final_accuracy.mean - first.final_accuracy.mean;
                let verdict =
                    compare_spread(difference, first.final_accuracy.sd, final_accuracy.sd);
                (difference, verdict)
            }
        };
        summaries.push(Summary {
            final_accuracy,
            best_accuracy,
            final_test_loss,
            difference,
            verdict,
        });
    }
    summaries
}

/// Judges whether `difference` exceeds the sum of the two standard deviations.
pub fn compare_spread(difference: f64, first_sd: Option<f64>, this_sd: Option<f64>) -> Verdict {
    match (first_sd, this_sd) {
        // A NaN accuracy (a diverged run) makes the comparison meaningless, not "within".
        (Some(a), Some(b)) if !(difference + a + b).is_finite() => Verdict::SpreadUnknown,
        (Some(a), Some(b)) if difference.abs() > a + b => Verdict::ExceedsSpread,
        (Some(_), Some(_)) => Verdict::WithinSpread,
        _ => Verdict::SpreadUnknown,
    }
}

/// Formats `mean ± sd` with `decimals` digits, or `mean ± n/a` for one run.
fn format_spread(stats: &Spread, decimals: usize) -> String {
    match stats.sd {
        Some(sd) => format!("{:.decimals$} ± {sd:.decimals$}", stats.mean),
        None => format!("{:.decimals$} ± {NOT_AVAILABLE}", stats.mean),
    }
}

/// Formats the difference column: `-` for the first configuration, signed points otherwise.
fn format_difference(summary: &Summary) -> String {
    match summary.verdict {
        Verdict::Baseline => "-".to_string(),
        _ => format!("{:+.2}", summary.difference),
    }
}

/// Column titles, shared by the text and Markdown tables.
pub(crate) const COLUMNS: [&str; 7] = [
    "configuration",
    "seeds",
    "final acc. (%)",
    "best acc. (%)",
    "final test CE (nats)",
    "diff. (points)",
    "vs spread",
];

/// Formats the cells of one table row.
pub(crate) fn row_cells(configuration: &Configuration, summary: &Summary) -> [String; 7] {
    [
        configuration.label.clone(),
        configuration.runs.len().to_string(),
        format_spread(&summary.final_accuracy, 2),
        format_spread(&summary.best_accuracy, 2),
        format_spread(&summary.final_test_loss, 4),
        format_difference(summary),
        summary.verdict.as_str().to_string(),
    ]
}

/// Formats the fixed-width table: text columns left-aligned, number columns right-aligned.
pub fn text_table(configurations: &[Configuration], summaries: &[Summary]) -> String {
    let rows: Vec<[String; 7]> = configurations
        .iter()
        .zip(summaries)
        .map(|(configuration, summary)| row_cells(configuration, summary))
        .collect();
    let widths: Vec<usize> = (0..COLUMNS.len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .chain([COLUMNS[column].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let format_row = |cells: &[String]| {
        let mut line = String::new();
        for (column, cell) in cells.iter().enumerate() {
            let width = widths[column];
            let left_aligned = column == 0 || column == COLUMNS.len() - 1;
            if column > 0 {
                line.push_str("  ");
            }
            // `{:>width$}` pads by chars, and ± is one char.
            if left_aligned {
                let _ = write!(line, "{cell:<width$}");
            } else {
                let _ = write!(line, "{cell:>width$}");
            }
        }
        line.trim_end().to_string()
    };
    let header: Vec<String> = COLUMNS.iter().map(|title| title.to_string()).collect();
    let mut table = format_row(&header);
    table.push('\n');
    for row in &rows {
        table.push_str(&format_row(row));
        table.push('\n');
    }
    table
}

/// Formats the same table in Markdown, numbers right-aligned.
pub fn markdown_table(configurations: &[Configuration], summaries: &[Summary]) -> String {
    let mut table = format!("| {} |\n", COLUMNS.join(" | "));
    table.push_str("|:--|--:|--:|--:|--:|--:|:--|\n");
    for (configuration, summary) in configurations.iter().zip(summaries) {
        let cells = row_cells(configuration, summary);
        // A `|` in a label would split the cell.
        let cells: Vec<String> = cells.iter().map(|cell| cell.replace('|', "\\|")).collect();
        let _ = writeln!(table, "| {} |", cells.join(" | "));
    }
    table
}

/// Lists the notes under the table: what differs, what is ignored and how the spread is judged.
pub(crate) fn notes(differing: &[String]) -> Vec<String> {
    let differing = if differing.is_empty() {
        "all runs share one configuration".to_string()
    } else {
        format!("configurations differ in: {}", differing.join(", "))
    };
    vec![
        differing,
        format!("ignored config keys: {}", IGNORED_KEYS.join(", ")),
        "mean ± sample standard deviation (ddof = 1) over seeds; a difference exceeds the \
         spread when |diff.| > sd(first) + sd(this)"
            .to_string(),
        "configurations keep the order given; training loss is not compared, because label \
         smoothing inflates it"
            .to_string(),
    ]
}

/// Writes one CSV row per configuration. Accuracies are percentages, cross-entropy is in
/// nats, an unknown sd is an empty field and `runs` lists the run folders separated by `;`.
pub fn write_csv(
    path: &Path,
    configurations: &[Configuration],
    summaries: &[Summary],
) -> anyhow::Result<()> {
    let sd = |stats: &Spread| stats.sd.map(|sd| sd.to_string()).unwrap_or_default();
    write_atomic(path, |out| {
        let mut writer = csv::Writer::from_writer(out);
        writer.write_record([
            "configuration",
            "seeds",
            "final_accuracy_pct_mean",
            "final_accuracy_pct_sd",
            "best_accuracy_pct_mean",
            "best_accuracy_pct_sd",
            "final_test_ce_mean",
            "final_test_ce_sd",
            "diff_points",
            "vs_spread",
            "runs",
        ])?;
        for (configuration, summary) in configurations.iter().zip(summaries) {
            let runs = configuration
                .runs
                .iter()
                .map(|run| run.dir.display().to_string())
                .collect::<Vec<_>>()
                .join(";");
            writer.write_record([
                configuration.label.clone(),
                configuration.runs.len().to_string(),
                summary.final_accuracy.mean.to_string(),
                sd(&summary.final_accuracy),
                summary.best_accuracy.mean.to_string(),
                sd(&summary.best_accuracy),
                summary.final_test_loss.mean.to_string(),
                sd(&summary.final_test_loss),
                summary.difference.to_string(),
                summary.verdict.as_str().to_string(),
                runs,
            ])?;
        }
        writer.flush()
    })?;
    Ok(())
}

/// Collects the per-epoch test metrics of every run, for the PNG.
fn plot_series(configurations: &[Configuration]) -> Vec<ConfigSeries> {
    configurations
        .iter()
        .map(|configuration| ConfigSeries {
            label: configuration.label.clone(),
            runs: configuration
                .runs
                .iter()
                .map(|run| {
                    run.info
                        .epochs
                        .iter()
                        .map(|metrics| RunPoint {
                            epoch: metrics.epoch,
                            test_accuracy: metrics.test_accuracy,
                            test_loss: metrics.test_loss,
                        })
                        .collect()
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use toploss_data::run::{DatasetInfo, EpochMetrics, ModelInfo};

    fn info(config: Value, fingerprint: &str, accuracies: &[f64]) -> RunInfo {
        RunInfo {
            toploss_version: "test".into(),
            status: RunStatus::Complete,
            classes: vec!["a".into(), "b".into()],
            config,
            dataset: DatasetInfo {
                format: "mnist".into(),
                path: "data/mnist".into(),
                resolved_path: None,
                fingerprint: fingerprint.into(),
                train_count: 10,
                test_count: 5,
            },
            model: ModelInfo {
                architecture: "mlp".into(),
                channels: 1,
                height: 2,
                width: 2,
                weights: None,
            },
            epochs: accuracies
                .iter()
                .enumerate()
                .map(|(i, &accuracy)| EpochMetrics {
                    epoch: i as u32 + 1,
                    train_loss: 0.1,
                    train_accuracy: 0.9,
                    train_objective: 0.2,
                    test_accuracy: accuracy,
                    test_loss: 0.3,
                    seconds: 1.0,
                })
                .collect(),
        }
    }

    fn run(name: &str, config: Value, accuracies: &[f64]) -> Run {
        Run {
            dir: PathBuf::from(name),
            info: info(config, "sha256:aa", accuracies),
        }
    }

    #[test]
    fn natural_order_sorts_numbers_by_value() {
        let mut names = vec!["seed-10", "seed-2", "seed-1", "notes", "seed-02b"];
        names.sort_by(|a, b| natural_order(a, b));
        // "seed-2" and "seed-02b" share the number 2; "seed-2" has fewer chunks.
        assert_eq!(names, ["notes", "seed-1", "seed-2", "seed-02b", "seed-10"]);
    }

    #[test]
    fn grouping_ignores_seed_and_threads() {
        let runs = vec![
            run(
                "a1",
                serde_json::json!({"seed": 1, "threads": 2, "label_smoothing": 0.0}),
                &[0.9],
            ),
            run(
                "b1",
                serde_json::json!({"seed": 1, "label_smoothing": 0.1}),
                &[0.9],
            ),
            run(
                "a2",
                serde_json::json!({"seed": 2, "threads": null, "label_smoothing": 0.0}),
                &[0.9],
            ),
        ];
        let (configurations, _) = group_runs(runs);
        assert_eq!(configurations.len(), 2);
        assert_eq!(configurations[0].label, "label_smoothing=0");
        assert_eq!(configurations[1].label, "label_smoothing=0.1");
        let dirs: Vec<&Path> = configurations[0]
            .runs
            .iter()
            .map(|r| r.dir.as_path())
            .collect();
        assert_eq!(dirs, [Path::new("a1"), Path::new("a2")]);
    }

    #[test]
    fn noise_seed_separates_configurations() {
        let runs = vec![
            run(
                "a",
                serde_json::json!({"label_noise": 0.2, "noise_seed": 0}),
                &[0.9],
            ),
            run(
                "b",
                serde_json::json!({"label_noise": 0.2, "noise_seed": 1}),
                &[0.9],
            ),
        ];
        let (configurations, _) = group_runs(runs);
        assert_eq!(configurations.len(), 2);
        assert_eq!(configurations[0].label, "noise_seed=0");
    }

    #[test]
    fn label_lists_every_differing_key() {
        let runs = vec![
            run(
                "a",
                serde_json::json!({"label_noise": null, "label_smoothing": 0.0, "epochs": 5}),
                &[0.9],
            ),
            run(
                "b",
                serde_json::json!({"label_noise": 0.2, "label_smoothing": 0.0, "epochs": 5}),
                &[0.9],
            ),
            run(
                "c",
                serde_json::json!({"label_noise": 0.2, "label_smoothing": 0.1, "epochs": 5}),
                &[0.9],
            ),
        ];
        let (configurations, differing) = group_runs(runs);
        assert_eq!(differing, ["label_noise", "label_smoothing"]);
        let labels: Vec<String> = configurations.into_iter().map(|c| c.label).collect();
        assert_eq!(
            labels,
            [
                "label_noise=none label_smoothing=0",
                "label_noise=0.2 label_smoothing=0",
                "label_noise=0.2 label_smoothing=0.1",
            ]
        );
    }

    #[test]
    fn data_path_groups_by_fingerprint() {
        // The same dataset reached by two paths is one configuration.
        let runs = vec![
            run("a", serde_json::json!({"data": "mnist:data/mnist"}), &[0.9]),
            run(
                "b",
                serde_json::json!({"data": "mnist:/abs/data/mnist"}),
                &[0.9],
            ),
        ];
        let (configurations, _) = group_runs(runs);
        assert_eq!(configurations.len(), 1);
        assert_eq!(configurations[0].label, "all runs");
    }

    #[test]
    fn verdict_compares_with_sum_of_sds() {
        assert_eq!(
            compare_spread(1.5, Some(1.0), Some(0.4)),
            Verdict::ExceedsSpread
        );
        assert_eq!(
            compare_spread(-1.5, Some(1.0), Some(0.4)),
            Verdict::ExceedsSpread
        );
        assert_eq!(
            compare_spread(1.4, Some(1.0), Some(0.5)),
            Verdict::WithinSpread
        );
        assert_eq!(compare_spread(9.0, None, Some(0.5)), Verdict::SpreadUnknown);
        assert_eq!(compare_spread(9.0, Some(0.5), None), Verdict::SpreadUnknown);
        assert_eq!(
            compare_spread(f64::NAN, Some(0.5), Some(0.5)),
            Verdict::SpreadUnknown
        );
    }

    #[test]
    fn best_accuracy_takes_each_runs_best_epoch() {
        // Run 1: best 0.97 (epoch 1), run 2: best 0.99 (epoch 2) -> best mean 98.0, sd
        // sqrt(2) = 1.414; final 96.0 and 99.0 -> mean 97.5.
        let runs = vec![
            run("a", serde_json::json!({}), &[0.97, 0.96]),
            run("b", serde_json::json!({}), &[0.95, 0.99]),
        ];
        let (configurations, _) = group_runs(runs);
        let summaries = summarize(&configurations);
        assert_eq!(summaries.len(), 1);
        assert!((summaries[0].best_accuracy.mean - 98.0).abs() < 1e-9);
        assert!((summaries[0].best_accuracy.sd.unwrap() - 2f64.sqrt()).abs() < 1e-9);
        assert!((summaries[0].final_accuracy.mean - 97.5).abs() < 1e-9);
        assert_eq!(summaries[0].verdict, Verdict::Baseline);
    }

    #[test]
    fn one_seed_prints_not_available() {
        let stats = spread(&[97.0]).unwrap();
        assert_eq!(format_spread(&stats, 2), "97.00 ± n/a");
    }
}
