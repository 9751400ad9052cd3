//! Comparison of training configurations over seeds: test accuracy and test cross-entropy per
//! epoch, one thin line per run and a shaded band of mean ± standard deviation per
//! configuration.
//!
//! Only test metrics are drawn. Training loss is left out on purpose: label smoothing raises
//! it without making the model worse, so it cannot rank configurations.
//!
//! [`spread`] computes the mean and sample standard deviation that the bands use. The
//! `compare` command uses it for its table too, so the table and the picture agree.

use std::collections::BTreeMap;
use std::path::Path;

use image::RgbImage;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::plot::register_embedded_font;
use crate::plot::{Chart, FAMILY, LABEL_SIZE, TITLE_SIZE, panel, style_mesh};
use crate::plot_text::TextBackend;
use crate::{Error, font, png};

/// Width of the comparison PNG in pixels (two panels of 650 px).
pub const COMPARE_WIDTH: u32 = 1300;
/// Height of the comparison PNG in pixels, including the title line.
pub const COMPARE_HEIGHT: u32 = 520;

/// Configuration colours: matplotlib's "tab10" palette, in its order. A configuration past
/// the tenth reuses the colours from the start.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// Opacity of the mean ± sd band, so that overlapping bands stay visible.
const BAND_ALPHA: f64 = 0.2;
/// Opacity of the per-run lines, so that the opaque mean line is easy to see.
const RUN_ALPHA: f64 = 0.55;

/// Test metrics of one run after one epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunPoint {
    /// Epoch number, 1-based.
    pub epoch: u32,
    /// Fraction of the test split classified correctly, in [0, 1], plotted as a percentage.
    pub test_accuracy: f64,
    /// Mean plain cross-entropy over the test split, in nats.
    pub test_loss: f64,
}

/// One configuration: its legend label and the per-epoch test metrics of each of its runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigSeries {
    /// Legend label, for example `label_smoothing=0.1`.
    pub label: String,
    /// One list of points per run (seed), each in any epoch order.
    pub runs: Vec<Vec<RunPoint>>,
}

/// Mean and sample standard deviation of a set of values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Number of values.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation, sqrt(sum((x - mean)^2) / (n - 1)); `None` for a single
    /// value, whose spread is unknown.
    pub sd: Option<f64>,
}

/// Computes the mean and the sample standard deviation (ddof = 1) of `values`.
///
/// Returns `None` for no values. A NaN among the values makes the mean and sd NaN, so a broken
/// run shows up instead of vanishing.
pub fn spread(values: &[f64]) -> Option<Spread> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;

    // One value: the sample standard deviation divides by n - 1 = 0, so it is undefined.
    if n == 1 {
        return Some(Spread { n, mean, sd: None });
    }
    let squares: f64 = values.iter().map(|x| (x - mean) * (x - mean)).sum();
    let sd = (squares / (n - 1) as f64).sqrt();
    Some(Spread {
        n,
        mean,
        sd: Some(sd),
    })
}

/// Draws the comparison of `series` under `title` and writes it as a PNG at `path`.
///
/// The image is [`COMPARE_WIDTH`] x [`COMPARE_HEIGHT`] px: on the left, test accuracy (%) per
/// epoch; on the right, test cross-entropy (nats) per epoch. Each configuration gets one
/// colour from [`PALETTE`] for a thin line per run, its mean as a thick line, and a shaded
/// band of mean ± sample sd over the runs that have that epoch. Epochs that only one run has
/// get no band.
/// The legend names each configuration and its number of runs. NaN and infinite values are
/// left out of lines and bands. The PNG is written atomically like the grid.
///
/// # Errors
/// - [`Error::NoEpochs`] when no run of any configuration has a point.
/// - [`Error::AccuracyRange`] for an accuracy outside [0, 1].
/// - [`Error::Plot`] if plotters fails.
/// - [`Error::Write`] or [`Error::Encode`] when writing fails.
/// - [`Error::Font`] if an embedded font fails to parse.
pub fn write_compare_png(series: &[ConfigSeries], title: &str, path: &Path) -> Result<(), Error> {
    let image = render_compare(series, title, path)?;
    png::write_png_atomic(&image, path)
}

/// Draws the comparison into an RGB image; `path` only names the output in errors.
pub fn render_compare(
    series: &[ConfigSeries],
    title: &str,
    path: &Path,
) -> Result<RgbImage, Error> {
    // Validate.
    let points = || {
        series
            .iter()
            .flat_map(|config| config.runs.iter().flatten())
    };
    if points().next().is_none() {
        return Err(Error::NoEpochs);
    }
    if let Some(bad) = points().find(|p| p.test_accuracy < 0.0 || p.test_accuracy > 1.0) {
        return Err(Error::AccuracyRange {
            epoch: bad.epoch,
            value: bad.test_accuracy,
        });
    }
    register_embedded_font()?;
    let regular = font::load(font::REGULAR)?;
    let bold = font::load(font::BOLD)?;
    let curves: Vec<ConfigCurves> = series.iter().map(ConfigCurves::new).collect();

    // Draw into an RGB buffer, then wrap it as an image for the PNG encoder.
    let mut buffer = vec![255u8; COMPARE_WIDTH as usize * COMPARE_HEIGHT as usize * 3];
    let backend = TextBackend::new(
        BitMapBackend::with_buffer(&mut buffer, (COMPARE_WIDTH, COMPARE_HEIGHT)),
        regular,
        bold,
    );
    draw_compare(backend, &curves, title).map_err(|message| Error::Plot {
        path: path.to_path_buf(),
        message,
    })?;
    RgbImage::from_raw(COMPARE_WIDTH, COMPARE_HEIGHT, buffer).ok_or_else(|| Error::Plot {
        path: path.to_path_buf(),
        message: "the drawing buffer does not match the image size".to_string(),
    })
}

/// One metric of one configuration, ready to draw.
#[derive(Debug, Default)]
struct MetricCurves {
    /// Finite `(epoch, value)` points of each run, in epoch order.
    runs: Vec<Vec<(u32, f64)>>,
    /// Mean over the runs at each epoch.
    mean: Vec<(u32, f64)>,
    /// `(epoch, mean - sd, mean + sd)` at each epoch that at least two runs have.
    band: Vec<(u32, f64, f64)>,
}

impl MetricCurves {
    fn new(runs: &[Vec<RunPoint>], value: impl Fn(&RunPoint) -> f64) -> Self {
        let mut curves = MetricCurves::default();
        let mut by_epoch: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
        for run in runs {
            let mut line: Vec<(u32, f64)> = run
                .iter()
                .map(|p| (p.epoch, value(p)))
                .filter(|(_, v)| v.is_finite())
                .collect();
            line.sort_by_key(|&(epoch, _)| epoch);
            for &(epoch, v) in &line {
                by_epoch.entry(epoch).or_default().push(v);
            }
            curves.runs.push(line);
        }
        for (epoch, values) in by_epoch {
            let Some(stats) = spread(&values) else {
                continue;
            };
            curves.mean.push((epoch, stats.mean));
            if let Some(sd) = stats.sd {
                curves.band.push((epoch, stats.mean - sd, stats.mean + sd));
            }
        }
        curves
    }

    /// Smallest and largest value drawn: run points and band edges.
    fn range(&self) -> Option<(f64, f64)> {
        let values = self
            .runs
            .iter()
            .flatten()
            .map(|&(_, v)| v)
            .chain(self.band.iter().flat_map(|&(_, low, high)| [low, high]));
        values.fold(None, |range, v| match range {
            None => Some((v, v)),
            Some((low, high)) => Some((f64::min(low, v), f64::max(high, v))),
        })
    }
}

/// Accuracy (%) and cross-entropy curves of one configuration.
#[derive(Debug)]
struct ConfigCurves {
    label: String,
    accuracy: MetricCurves,
    loss: MetricCurves,
}

impl ConfigCurves {
    fn new(config: &ConfigSeries) -> Self {
        let runs = config.runs.len();
        let noun = if runs == 1 { "run" } else { "runs" };
        Self {
            label: format!("{} ({runs} {noun})", config.label),
            accuracy: MetricCurves::new(&config.runs, |p| p.test_accuracy * 100.0),
            loss: MetricCurves::new(&config.runs, |p| p.test_loss),
        }
    }
}

/// Union of the value ranges of one metric over all configurations.
fn value_range(curves: &[ConfigCurves], metric: fn(&ConfigCurves) -> &MetricCurves) -> (f64, f64) {
    curves
        .iter()
        .filter_map(|config| metric(config).range())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), (l, h)| {
            (low.min(l), high.max(h))
        })
}

/// Draws title and both panels onto `backend`.
fn draw_compare(
    backend: TextBackend<'_>,
    curves: &[ConfigCurves],
    title: &str,
) -> Result<(), String> {
    let root = backend.into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let title_style = (FAMILY, TITLE_SIZE, FontStyle::Bold).into_font();
    let body = root.titled(title, title_style).map_err(|e| e.to_string())?;
    let (left, right) = body.split_horizontally(COMPARE_WIDTH / 2);

    // X axis: integer epochs over every run; a single epoch gets one epoch of room each side.
    let epochs = curves
        .iter()
        .flat_map(|config| config.accuracy.runs.iter().chain(&config.loss.runs))
        .flatten()
        .map(|&(epoch, _)| epoch);
    let first = epochs.clone().min().unwrap_or(1);
    let last = epochs.max().unwrap_or(1);
    let x_range = if first == last {
        first.saturating_sub(1)..last + 1
    } else {
        first..last
    };
    let x_labels = (last - first + 1) as usize;

    // Left panel: accuracy in percent, padded by a tenth of its spread (at least 0.5 points)
    // and clamped to [0, 100].
    let (low, high) = value_range(curves, |config| &config.accuracy);
    let (low, high) = if low > high {
        (0.0, 100.0)
    } else {
        let pad = ((high - low) * 0.1).max(0.5);
        ((low - pad).max(0.0), (high + pad).min(100.0))
    };
    let mut chart = panel(&left, "test accuracy per epoch", 72)
        .build_cartesian_2d(x_range.clone(), low..high)
        .map_err(|e| e.to_string())?;
    style_mesh(&mut chart, "test accuracy (%)", 1, x_labels)?;
    for (index, config) in curves.iter().enumerate() {
        let color = PALETTE[index % PALETTE.len()];
        draw_metric(&mut chart, &config.accuracy, color, &config.label)?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;

    // Right panel: cross-entropy, from 0 to 10 % above the largest finite value.
    let (_, max_loss) = value_range(curves, |config| &config.loss);
    let loss_top = if max_loss > 0.0 && max_loss.is_finite() {
        max_loss * 1.1
    } else {
        1.0
    };
    let mut chart = panel(&right, "test cross-entropy per epoch", 72)
        .build_cartesian_2d(x_range, 0.0..loss_top)
        .map_err(|e| e.to_string())?;
    style_mesh(&mut chart, "test cross-entropy (nats)", 3, x_labels)?;
    for (index, config) in curves.iter().enumerate() {
        let color = PALETTE[index % PALETTE.len()];
        draw_metric(&mut chart, &config.loss, color, &config.label)?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;

    root.present().map_err(|e| e.to_string())
}

/// Draws one configuration's band, run lines and mean line, and adds it to the legend.
fn draw_metric(
    chart: &mut Chart<'_, '_>,
    metric: &MetricCurves,
    color: RGBColor,
    label: &str,
) -> Result<(), String> {
    // Band first, so that the lines stay on top: the upper edge left to right, then the
    // lower edge back, as one polygon.
    if metric.band.len() >= 2 {
        let outline: Vec<(u32, f64)> = metric
            .band
            .iter()
            .map(|&(epoch, _, high)| (epoch, high))
            .chain(
                metric
                    .band
                    .iter()
                    .rev()
                    .map(|&(epoch, low, _)| (epoch, low)),
            )
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(
                outline,
                color.mix(BAND_ALPHA).filled(),
            )))
            .map_err(|e| e.to_string())?;
    }

    // One thin line per run; a run with a single epoch gets a dot.
    for run in &metric.runs {
        chart
            .draw_series(LineSeries::new(
                run.iter().copied(),
                color.mix(RUN_ALPHA).stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
        if run.len() == 1 {
            chart
                .draw_series(
                    run.iter()
                        .map(|&point| Circle::new(point, 2, color.filled())),
                )
                .map_err(|e| e.to_string())?;
        }
    }

    // The mean, thick, carries the legend entry.
    chart
        .draw_series(LineSeries::new(
            metric.mean.iter().copied(),
            color.stroke_width(3),
        ))
        .map_err(|e| e.to_string())?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
    Ok(())
}

/// Draws the legend box at `position`.
fn draw_legend<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FAMILY, LABEL_SIZE))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(epoch: u32, test_accuracy: f64, test_loss: f64) -> RunPoint {
        RunPoint {
            epoch,
            test_accuracy,
            test_loss,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn spread_uses_sample_sd() {
        // numpy: np.mean([97, 98, 99]) = 98.0, np.std([97, 98, 99], ddof=1) = 1.0
        let stats = spread(&[97.0, 98.0, 99.0]).expect("three values");
        assert_eq!(stats.n, 3);
        assert!(close(stats.mean, 98.0), "{stats:?}");
        assert!(close(stats.sd.expect("n = 3 has an sd"), 1.0), "{stats:?}");

        // np.std([1, 2, 3, 4], ddof=1) = sqrt(5/3) = 1.2909944487358056; ddof = 0 would give
        // sqrt(5/4) = 1.118.
        let stats = spread(&[1.0, 2.0, 3.0, 4.0]).expect("four values");
        assert!(close(stats.mean, 2.5));
        assert!(close(stats.sd.expect("n = 4"), 1.290_994_448_735_805_6));
    }

    #[test]
    fn spread_of_one_value_has_no_sd() {
        let stats = spread(&[0.42]).expect("one value");
        assert_eq!(stats.n, 1);
        assert!(close(stats.mean, 0.42));
        assert_eq!(stats.sd, None);
    }

    #[test]
    fn spread_of_nothing_is_none() {
        assert_eq!(spread(&[]), None);
    }

    #[test]
    fn spread_of_equal_values_is_zero() {
        let stats = spread(&[0.5, 0.5]).expect("two values");
        assert_eq!(stats.sd, Some(0.0));
    }

    #[test]
    fn band_covers_epochs_with_two_runs() {
        // Epoch 1: accuracies 90 and 94 -> mean 92, sd sqrt(8) = 2.828; epoch 2 only in run 1,
        // so it has a mean (95) but no band.
        let runs = vec![
            vec![point(1, 0.90, 0.3), point(2, 0.95, 0.2)],
            vec![point(1, 0.94, 0.25)],
        ];
        let curves = MetricCurves::new(&runs, |p| p.test_accuracy * 100.0);
        assert_eq!(curves.mean.len(), 2);
        assert!(close(curves.mean[0].1, 92.0));
        assert!(close(curves.mean[1].1, 95.0));
        assert_eq!(curves.band.len(), 1);
        let (epoch, low, high) = curves.band[0];
        assert_eq!(epoch, 1);
        assert!(close(low, 92.0 - 8f64.sqrt()), "{low}");
        assert!(close(high, 92.0 + 8f64.sqrt()), "{high}");
    }

    #[test]
    fn nan_points_are_left_out() {
        let runs = vec![vec![point(1, 0.9, f64::NAN), point(2, 0.9, 0.1)]];
        let curves = MetricCurves::new(&runs, |p| p.test_loss);
        assert_eq!(curves.runs[0], vec![(2, 0.1)]);
    }

    #[test]
    fn no_points_rejected() {
        let empty = [ConfigSeries {
            label: "a".into(),
            runs: vec![vec![]],
        }];
        let error = render_compare(&empty, "t", Path::new("c.png")).expect_err("no points");
        assert!(matches!(error, Error::NoEpochs));
        let error = render_compare(&[], "t", Path::new("c.png")).expect_err("no series");
        assert!(matches!(error, Error::NoEpochs));
    }

    #[test]
    fn percentage_accuracy_rejected() {
        let series = [ConfigSeries {
            label: "a".into(),
            runs: vec![vec![point(1, 0.9, 0.3), point(2, 97.5, 0.2)]],
        }];
        let error = render_compare(&series, "t", Path::new("c.png")).expect_err("97.5 > 1");
        assert!(matches!(error, Error::AccuracyRange { epoch: 2, .. }));
    }

    #[test]
    fn render_draws_each_config_colour() {
        let series = [
            ConfigSeries {
                label: "label_smoothing=0".into(),
                runs: vec![
                    vec![point(1, 0.95, 0.20), point(2, 0.97, 0.10)],
                    vec![point(1, 0.96, 0.18), point(2, 0.98, 0.08)],
                ],
            },
            ConfigSeries {
                label: "label_smoothing=0.1".into(),
                runs: vec![vec![point(1, 0.94, 0.22), point(2, 0.985, 0.07)]],
            },
        ];
        let image = render_compare(&series, "compare", Path::new("c.png")).expect("render");
        assert_eq!(image.dimensions(), (COMPARE_WIDTH, COMPARE_HEIGHT));

        // The mean lines are drawn opaque in the palette colours, in both panels.
        let has_colour = |color: RGBColor, xs: std::ops::Range<u32>| {
            xs.flat_map(|x| (0..COMPARE_HEIGHT).map(move |y| (x, y)))
                .any(|(x, y)| image.get_pixel(x, y).0 == [color.0, color.1, color.2])
        };
        let half = COMPARE_WIDTH / 2;
        for color in &PALETTE[..2] {
            assert!(
                has_colour(*color, 0..half),
                "{color:?} in the accuracy panel"
            );
            assert!(
                has_colour(*color, half..COMPARE_WIDTH),
                "{color:?} in the CE panel"
            );
        }
        // A third palette colour was not used.
        assert!(!has_colour(PALETTE[2], 0..COMPARE_WIDTH));

        // The band of the first configuration is a light blend of its colour over white:
        // 0.2 x (31, 119, 180) + 0.8 x 255 is about (210, 228, 240).
        let band = (0..COMPARE_WIDTH)
            .flat_map(|x| (0..COMPARE_HEIGHT).map(move |y| (x, y)))
            .any(|(x, y)| {
                let [r, g, b] = image.get_pixel(x, y).0;
                r.abs_diff(210) <= 2 && g.abs_diff(228) <= 2 && b.abs_diff(240) <= 2
            });
        assert!(band, "no shaded band found");
    }

    #[test]
    fn single_epoch_single_run_renders() {
        let series = [ConfigSeries {
            label: "one".into(),
            runs: vec![vec![point(1, 0.5, f64::INFINITY)]],
        }];
        let image = render_compare(&series, "one", Path::new("c.png")).expect("render");
        assert_eq!(image.dimensions(), (COMPARE_WIDTH, COMPARE_HEIGHT));
    }

    #[test]
    fn written_png_decodes() {
        let folder = tempfile::tempdir().expect("temp dir");
        let path = folder.path().join("compare.png");
        let series = [ConfigSeries {
            label: "a".into(),
            runs: vec![vec![point(1, 0.9, 0.3), point(2, 0.92, 0.25)]],
        }];
        write_compare_png(&series, "t", &path).expect("write");
        let decoded = image::open(&path).expect("decode").to_rgb8();
        assert_eq!(decoded.dimensions(), (COMPARE_WIDTH, COMPARE_HEIGHT));
    }
}
