//! `toploss top`: rank one epoch's losses and show the top as a grid, a table and a CSV.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use toploss_core::rank::{Order, TopK, top_k_where};
use toploss_data::run::{
    DYNAMICS_PARQUET, Dynamics, RunInfo, RunStatus, SplitDynamics, SplitName, write_atomic,
};
use toploss_data::{Dataset, DatasetFormat, DatasetOptions, DatasetSpec, load};
use toploss_report::{Tile, TileImage, write_grid_png};

use crate::args::{SplitArg, TopArgs};
use crate::output::Ui;

/// Most tiles a grid draws (20 x 20); the table and CSV list every ranked sample. A grid of a
/// whole 60,000-image split would need gigabytes of memory and be unreadable.
pub const MAX_GRID_TILES: usize = 400;

/// Ranking request: epoch, split, class filter and direction.
#[derive(Debug, Clone)]
pub struct TopRequest {
    /// Tiles wanted.
    pub k: usize,
    /// Epoch ranked (1-based).
    pub epoch: u32,
    /// Epochs in the run, for the title.
    pub epochs: u32,
    /// Split ranked.
    pub split: SplitName,
    /// Only this given label, when set.
    pub class: Option<u32>,
    /// Lowest losses instead of highest.
    pub smallest: bool,
}

/// The ranked ids and what the ranking had to say about them.
#[derive(Debug, Clone)]
pub struct Ranking {
    /// Ranked sample ids, best first.
    pub ids: Vec<usize>,
    /// The full top-k result.
    pub top: TopK,
}

/// Ranks `rows`, draws the grid into `png` and returns the ranking.
pub fn render_top(
    request: &TopRequest,
    rows: &SplitDynamics,
    dataset: &Dataset,
    classes: &[String],
    png: &Path,
) -> anyhow::Result<Ranking> {
    let order = if request.smallest {
        Order::Smallest
    } else {
        Order::Largest
    };
    let top = match request.class {
        Some(class) => top_k_where(&rows.loss, request.k, order, |id| rows.label[id] == class)?,
        None => top_k_where(&rows.loss, request.k, order, |_| true)?,
    };
    if top.ids.is_empty() {
        bail!(
            "no {} samples with the given label {} to rank; drop --class or pick another class",
            request.split,
            classes[request.class.unwrap_or(0) as usize]
        );
    }

    let split = match request.split {
        SplitName::Train => &dataset.train,
        SplitName::Test => &dataset.test,
    };
    let shape = split.shape;
    let tiles: Vec<Tile> = top
        .ids
        .iter()
        .take(MAX_GRID_TILES)
        .map(|&id| Tile {
            id: id as u32,
            image: TileImage {
                pixels: split.image(id),
                channels: shape.channels,
                height: shape.height,
                width: shape.width,
            },
            predicted: &classes[rows.predicted[id] as usize],
            actual: &classes[rows.label[id] as usize],
            loss: rows.loss[id],
            p_predicted: rows.p_predicted[id],
            p_actual: rows.p_label[id],
        })
        .collect();
    let what = if request.smallest { "lowest" } else { "top" };
    let class_note = request
        .class
        .map(|class| format!(" · class {}", classes[class as usize]))
        .unwrap_or_default();
    let title = format!(
        "{what} {} losses · {} · epoch {}/{}{class_note}",
        tiles.len(),
        request.split,
        request.epoch,
        request.epochs
    );
    if let Some(dir) = png.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_grid_png(&tiles, Some(&title), png)?;
    Ok(Ranking {
        ids: top.ids.clone(),
        top,
    })
}

pub(crate) fn format_value(value: f32) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{value:.4}")
    }
}

/// Prints the ranking as a fixed-width table on stdout.
pub fn print_table(ranking: &Ranking, rows: &SplitDynamics, classes: &[String]) {
    let name_width = classes
        .iter()
        .map(|name| name.chars().count())
        .max()
        .unwrap_or(5)
        .max(9);
    println!(
        "{:>4}  {:>6}  {:<name_width$}  {:<name_width$}  {:>8}  {:>8}  {:>8}",
        "rank", "id", "actual", "predicted", "loss", "p_actual", "p_pred"
    );
    for (rank, &id) in ranking.ids.iter().enumerate() {
        println!(
            "{:>4}  {:>6}  {:<name_width$}  {:<name_width$}  {:>8}  {:>8}  {:>8}",
            rank + 1,
            id,
            classes[rows.label[id] as usize],
            classes[rows.predicted[id] as usize],
            format_value(rows.loss[id]),
            format_value(rows.p_label[id]),
            format_value(rows.p_predicted[id]),
        );
    }
}

/// Writes the ranking as CSV: `rank,id,label,predicted,loss,p_label,p_predicted`, with labels
/// as class indices (the class names are in run.json). When `paths` is given (datasets of
/// image files), a last `path` column contains each sample's path relative to the dataset folder.
pub fn write_csv(
    path: &Path,
    ranking: &Ranking,
    rows: &SplitDynamics,
    paths: Option<&[String]>,
) -> anyhow::Result<()> {
    write_atomic(path, |out| {
        write!(out, "rank,id,label,predicted,loss,p_label,p_predicted")?;
        if paths.is_some() {
            write!(out, ",path")?;
        }
        writeln!(out)?;
        for (rank, &id) in ranking.ids.iter().enumerate() {
            write!(
                out,
                "{},{},{},{},{},{},{}",
                rank + 1,
                id,
                rows.label[id],
                rows.predicted[id],
                rows.loss[id],
                rows.p_label[id],
                rows.p_predicted[id]
            )?;
            if let Some(paths) = paths {
                let sample_path = paths.get(id).map_or("", String::as_str);
                write!(out, ",{}", csv_field(sample_path))?;
            }
            writeln!(out)?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Quotes a CSV field when it contains a comma, a quote or a line break (RFC 4180).
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// Checks that `path` can be created: its folder exists (or can be made) and is a folder.
pub(crate) fn check_output_parent(path: &Path) -> anyhow::Result<()> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if parent.exists() && !parent.is_dir() {
        bail!(
            "cannot write {}: {} is a file, not a folder; choose another output path",
            path.display(),
            parent.display()
        );
    }
    if path.is_dir() {
        bail!(
            "cannot write {}: it is a folder; give a file name",
            path.display()
        );
    }
    Ok(())
}

/// Parses `--epoch N|last` against the epochs the run finished.
pub(crate) fn resolve_epoch(value: &str, info: &RunInfo, run: &Path) -> anyhow::Result<u32> {
    let Some(last) = info.last_epoch() else {
        match info.status {
            RunStatus::Running => bail!(
                "{} has no finished epoch yet; wait for the first epoch of training to end",
                run.display()
            ),
            RunStatus::Failed | RunStatus::Interrupted | RunStatus::Complete => bail!(
                "{} has no finished epoch: its training stopped ({}) before the first epoch \
                 ended. Train it again",
                run.display(),
                info.status.as_str()
            ),
        }
    };
    if value.eq_ignore_ascii_case("last") {
        return Ok(last);
    }
    let epoch: u32 = value
        .parse()
        .with_context(|| format!("invalid --epoch {value:?}: expected a number or `last`"))?;
    if epoch == 0 || epoch > last {
        bail!(
            "invalid --epoch {epoch}: {} has epochs 1 to {last}",
            run.display()
        );
    }
    Ok(epoch)
}

/// Parses `--class NAME` (or an index) against the run's classes.
pub fn resolve_class(value: &str, classes: &[String]) -> anyhow::Result<u32> {
    if let Some(index) = classes.iter().position(|name| name == value) {
        return Ok(index as u32);
    }
    if let Ok(index) = value.parse::<usize>()
        && index < classes.len()
    {
        return Ok(index as u32);
    }
    bail!(
        "unknown class {value:?}; the classes are: {}",
        classes
            .iter()
            .map(|name| format!("{name:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Loads the run's dataset, from `--data` or the path in run.json, and checks its fingerprint.
pub(crate) fn load_run_dataset(
    info: &RunInfo,
    run: &Path,
    data: Option<&DatasetSpec>,
) -> anyhow::Result<Dataset> {
    let spec = match data {
        Some(spec) => spec.clone(),
        None => {
            let format: DatasetFormat = info.dataset.format.parse().with_context(|| {
                format!("{}: unknown dataset format in run.json", run.display())
            })?;
            // The recorded path may be relative to the folder training ran in.
            let given = PathBuf::from(&info.dataset.path);
            let path = match &info.dataset.resolved_path {
                Some(resolved) if !given.exists() => PathBuf::from(resolved),
                _ => given,
            };
            DatasetSpec::new(format, path)
        }
    };
    // --data names FORMAT:PATH only; the reader options (test split, image size, ...) that
    // decide the ids come from run.json.
    let spec = match info.config.get("data_options") {
        Some(recorded) => {
            let options: DatasetOptions = serde_json::from_value(recorded.clone())
                .with_context(|| format!("{}: invalid data_options in run.json", run.display()))?;
            spec.with_options(options)
        }
        None => spec,
    };
    let dataset = load(&spec).with_context(|| {
        format!(
            "cannot load the images of run {} from {spec}; pass --data FORMAT:PATH if the dataset moved",
            run.display()
        )
    })?;
    if dataset.fingerprint != info.dataset.fingerprint {
        bail!(
            "{spec} is not the dataset run {} was trained on (fingerprint {} != {}); pass the right --data",
            run.display(),
            dataset.fingerprint,
            info.dataset.fingerprint
        );
    }
    Ok(dataset)
}

/// Runs `toploss top`.
pub fn run_top(args: &TopArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    if !args.run.exists() {
        bail!(
            "run folder {} does not exist; pass the --out folder of `toploss train`",
            args.run.display()
        );
    }
    let info = RunInfo::read(&args.run)?;
    if args.k == 0 {
        bail!("invalid -k 0: expected at least 1");
    }
    let epoch = resolve_epoch(&args.epoch, &info, &args.run)?;
    let split = match args.split {
        SplitArg::Train => SplitName::Train,
        SplitArg::Test => SplitName::Test,
    };
    let class = args
        .class
        .as_deref()
        .map(|name| resolve_class(name, &info.classes))
        .transpose()?;

    let dynamics_path = args.run.join(DYNAMICS_PARQUET);
    let dynamics = Dynamics::read(&dynamics_path, Some(epoch), Some(split))?;
    dynamics.check_classes(info.classes.len(), &dynamics_path)?;
    let rows = dynamics.get(epoch, split).with_context(|| {
        format!(
            "{}: no {split} rows for epoch {epoch}",
            args.run.join(DYNAMICS_PARQUET).display()
        )
    })?;
    let mut dataset = load_run_dataset(&info, &args.run, args.data.as_ref())?;
    dataset.train.truncate(info.dataset.train_count);
    dataset.test.truncate(info.dataset.test_count);

    let request = TopRequest {
        k: args.k,
        epoch,
        epochs: info.epochs.len() as u32,
        split,
        class,
        smallest: args.smallest,
    };
    // Name the default file after the tiles it can hold, not the k requested.
    let split_len = rows.len();
    let tiles = args.k.min(split_len).min(MAX_GRID_TILES);
    let png = args.out.clone().unwrap_or_else(|| {
        let what = if args.smallest { "lowest" } else { "top" };
        let class_part = class.map(|c| format!("-class{c}")).unwrap_or_default();
        args.run.join("top").join(format!(
            "{split}-e{epoch:02}-{what}-{tiles}{class_part}.png"
        ))
    });
    // Check every output folder before writing anything, so that a bad --csv does not fail
    // after the grid is written.
    for path in std::iter::once(&png).chain(args.csv.as_ref()) {
        check_output_parent(path)?;
    }
    let ranking = render_top(&request, rows, &dataset, &info.classes, &png)?;

    if ranking.ids.len() > MAX_GRID_TILES {
        ui.status(&format!(
            "note: the grid shows the first {MAX_GRID_TILES} of {} ranked samples; the table{} lists them all",
            ranking.ids.len(),
            if args.csv.is_some() { " and the CSV" } else { "" }
        ));
    }
    if ranking.top.clamped {
        ui.status(&format!(
            "note: -k {} is more than the {} eligible {split} samples; showing all of them",
            args.k, ranking.top.available
        ));
    }
    if ranking.top.nan_count > 0 || ranking.top.inf_count > 0 {
        ui.status(&format!(
            "note: {} NaN and {} infinite losses among those shown (ranked first)",
            ranking.top.nan_count, ranking.top.inf_count
        ));
    }
    if !args.no_table {
        print_table(&ranking, rows, &info.classes);
    }
    println!("wrote {}", png.display());
    if let Some(csv) = &args.csv {
        let samples = match split {
            SplitName::Train => &dataset.train,
            SplitName::Test => &dataset.test,
        };
        write_csv(csv, &ranking, rows, samples.paths.as_deref())?;
        println!("wrote {}", csv.display());
    }
    Ok(ExitCode::SUCCESS)
}
