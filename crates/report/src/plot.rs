//! Per-epoch training curves: train and test cross-entropy beside test accuracy.
//!
//! Drawn with plotters' bitmap backend. Text is drawn from the embedded DejaVu Sans by a
//! wrapper backend in this crate, so no system font is read. The fonts are also registered
//! as plotters' "sans-serif" family because plotters' `ab_glyph` feature looks up its font
//! handles there.

use std::path::Path;
use std::sync::OnceLock;

use image::RgbImage;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::plot_text::TextBackend;
use crate::{Error, font, png};

/// Width of the curves PNG in pixels (two panels of 600 px).
pub const CURVES_WIDTH: u32 = 1200;
/// Height of the curves PNG in pixels, including the title line.
pub const CURVES_HEIGHT: u32 = 450;

/// Font family name under which the embedded font is registered with plotters.
pub(crate) const FAMILY: &str = "sans-serif";
pub(crate) const TITLE_SIZE: u32 = 22;
pub(crate) const CAPTION_SIZE: u32 = 17;
pub(crate) const AXIS_DESC_SIZE: u32 = 15;
pub(crate) const LABEL_SIZE: u32 = 13;
/// Train and test series colours (matplotlib's default blue and orange).
const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
const TEST_COLOR: RGBColor = RGBColor(255, 127, 14);

/// Metrics of one epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochPoint {
    /// Epoch number, 1-based.
    pub epoch: u32,
    /// Mean cross-entropy over the training split, in nats.
    pub train_loss: f64,
    /// Mean cross-entropy over the test split, in nats.
    pub test_loss: f64,
    /// Fraction of the test split classified correctly, in [0, 1], plotted as a percentage.
    pub test_accuracy: f64,
}

/// Draws the curves of `points` under `title` and writes them as a PNG at `path`.
///
/// The image is [`CURVES_WIDTH`] x [`CURVES_HEIGHT`] px: on the left, train and test
/// cross-entropy (nats) per epoch; on the right, test accuracy (%) per epoch. Points are
/// drawn in epoch order. A NaN or infinite value is left out of its curve, and the
/// neighbouring points are joined. The PNG is written atomically like the grid.
///
/// # Errors
/// - [`Error::NoEpochs`] for empty `points`.
/// - [`Error::AccuracyRange`] for an accuracy outside [0, 1].
/// - [`Error::Plot`] if plotters fails.
/// - [`Error::Write`] or [`Error::Encode`] when writing fails.
/// - [`Error::Font`] if an embedded font fails to parse.
pub fn write_curves_png(points: &[EpochPoint], title: &str, path: &Path) -> Result<(), Error> {
    let image = render_curves(points, title, path)?;
    png::write_png_atomic(&image, path)
}

/// Draws the curves into an RGB image; `path` only names the output in errors.
fn render_curves(points: &[EpochPoint], title: &str, path: &Path) -> Result<RgbImage, Error> {
    // Validate.
    if points.is_empty() {
        return Err(Error::NoEpochs);
    }
    if let Some(bad) = points
        .iter()
        .find(|p| p.test_accuracy < 0.0 || p.test_accuracy > 1.0)
    {
        return Err(Error::AccuracyRange {
            epoch: bad.epoch,
            value: bad.test_accuracy,
        });
    }
    register_embedded_font()?;
    let regular = font::load(font::REGULAR)?;
    let bold = font::load(font::BOLD)?;
    let mut points = points.to_vec();
    points.sort_by_key(|p| p.epoch);

    // Draw into an RGB buffer, then wrap it as an image for the PNG encoder.
    let mut buffer = vec![255u8; CURVES_WIDTH as usize * CURVES_HEIGHT as usize * 3];
    let backend = TextBackend::new(
        BitMapBackend::with_buffer(&mut buffer, (CURVES_WIDTH, CURVES_HEIGHT)),
        regular,
        bold,
    );
    draw_curves(backend, &points, title).map_err(|message| Error::Plot {
        path: path.to_path_buf(),
        message,
    })?;
    let image =
        RgbImage::from_raw(CURVES_WIDTH, CURVES_HEIGHT, buffer).ok_or_else(|| Error::Plot {
            path: path.to_path_buf(),
            message: "the drawing buffer does not match the image size".to_string(),
        })?;
    Ok(image)
}

/// Registers the embedded regular and bold fonts with plotters, once per process.
pub(crate) fn register_embedded_font() -> Result<(), Error> {
    static REGISTERED: OnceLock<Result<(), &'static str>> = OnceLock::new();
    let result = REGISTERED.get_or_init(|| {
        let (regular_name, regular_bytes) = font::REGULAR;
        let (bold_name, bold_bytes) = font::BOLD;
        register_font(FAMILY, FontStyle::Normal, regular_bytes).map_err(|_| regular_name)?;
        register_font(FAMILY, FontStyle::Bold, bold_bytes).map_err(|_| bold_name)
    });
    result.map_err(|name| Error::Font { name })
}

/// Draws title and both panels onto `backend`.
fn draw_curves(backend: TextBackend<'_>, points: &[EpochPoint], title: &str) -> Result<(), String> {
    let root = backend.into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let title_style = (FAMILY, TITLE_SIZE, FontStyle::Bold).into_font();
    let body = root.titled(title, title_style).map_err(|e| e.to_string())?;
    let (left, right) = body.split_horizontally(CURVES_WIDTH / 2);

    // X axis: integer epochs; a single epoch gets one epoch of room on each side.
    let first = points.first().map_or(1, |p| p.epoch);
    let last = points.last().map_or(1, |p| p.epoch);
    let epochs = if first == last {
        first.saturating_sub(1)..last + 1
    } else {
        first..last
    };

    // Left panel: cross-entropy, from 0 to 10 % above the largest finite value.
    let train: Vec<(u32, f64)> = finite(points, |p| p.train_loss);
    let test: Vec<(u32, f64)> = finite(points, |p| p.test_loss);
    let max_loss = train
        .iter()
        .chain(&test)
        .map(|&(_, loss)| loss)
        .fold(0.0, f64::max);
    let loss_top = if max_loss > 0.0 { max_loss * 1.1 } else { 1.0 };
    let mut chart = panel(&left, "cross-entropy per epoch", 64)
        .build_cartesian_2d(epochs.clone(), 0.0..loss_top)
        .map_err(|e| e.to_string())?;
    style_mesh(&mut chart, "cross-entropy (nats)", 2, points.len())?;
    draw_line(&mut chart, &train, TRAIN_COLOR, "train")?;
    draw_line(&mut chart, &test, TEST_COLOR, "test")?;
    chart
        .configure_series_labels()
        .label_font((FAMILY, LABEL_SIZE))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(|e| e.to_string())?;

    // Right panel: accuracy in percent, padded by a tenth of its spread (at least 0.5 points)
    // and clamped to [0, 100].
    let accuracy: Vec<(u32, f64)> = finite(points, |p| p.test_accuracy * 100.0);
    let low = accuracy
        .iter()
        .map(|&(_, a)| a)
        .fold(f64::INFINITY, f64::min);
    let high = accuracy
        .iter()
        .map(|&(_, a)| a)
        .fold(f64::NEG_INFINITY, f64::max);
    let (low, high) = if accuracy.is_empty() {
        (0.0, 100.0)
    } else {
        let pad = ((high - low) * 0.1).max(0.5);
        ((low - pad).max(0.0), (high + pad).min(100.0))
    };
    let mut chart = panel(&right, "test accuracy per epoch", 64)
        .build_cartesian_2d(epochs, low..high)
        .map_err(|e| e.to_string())?;
    style_mesh(&mut chart, "test accuracy (%)", 1, points.len())?;
    draw_line(&mut chart, &accuracy, TEST_COLOR, "test")?;

    root.present().map_err(|e| e.to_string())
}

pub(crate) type Chart<'a, 'b> = ChartContext<
    'a,
    TextBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordu32, plotters::coord::types::RangedCoordf64>,
>;

/// Returns a chart builder for one panel with the shared margins and caption style, and
/// `y_label_area` pixels left of the axis for tick labels.
pub(crate) fn panel<'a, 'b>(
    area: &'a DrawingArea<TextBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    y_label_area: u32,
) -> ChartBuilder<'a, 'b, TextBackend<'b>> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(caption, (FAMILY, CAPTION_SIZE))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(y_label_area);
    builder
}

/// Draws grid lines, tick labels and axis descriptions.
pub(crate) fn style_mesh(
    chart: &mut Chart<'_, '_>,
    y_desc: &str,
    y_decimals: usize,
    epochs: usize,
) -> Result<(), String> {
    // At most 10 x labels, so that long runs stay readable.
    const MAX_X_LABELS: usize = 10;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .x_labels(epochs.clamp(2, MAX_X_LABELS))
        .y_label_formatter(&|y| format!("{y:.y_decimals$}"))
        .label_style((FAMILY, LABEL_SIZE))
        .axis_desc_style((FAMILY, AXIS_DESC_SIZE))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(|e| e.to_string())
}

/// Draws `series` as a line with a dot at each point, and adds it to the legend.
fn draw_line(
    chart: &mut Chart<'_, '_>,
    series: &[(u32, f64)],
    color: RGBColor,
    label: &str,
) -> Result<(), String> {
    /// Radius of the dot at each epoch, in pixels.
    const DOT_RADIUS: i32 = 3;
    chart
        .draw_series(LineSeries::new(
            series.iter().copied(),
            color.stroke_width(2),
        ))
        .map_err(|e| e.to_string())?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    chart
        .draw_series(
            series
                .iter()
                .map(|&point| Circle::new(point, DOT_RADIUS, color.filled())),
        )
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Returns `(epoch, value(point))` for the points whose value is finite.
fn finite(points: &[EpochPoint], value: impl Fn(&EpochPoint) -> f64) -> Vec<(u32, f64)> {
    points
        .iter()
        .map(|p| (p.epoch, value(p)))
        .filter(|(_, v)| v.is_finite())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(epoch: u32, train_loss: f64, test_loss: f64, test_accuracy: f64) -> EpochPoint {
        EpochPoint {
            epoch,
            train_loss,
            test_loss,
            test_accuracy,
        }
    }

    #[test]
    fn empty_points_rejected() {
        let error = render_curves(&[], "t", Path::new("c.png")).expect_err("no points");
        assert!(matches!(error, Error::NoEpochs));
    }

    #[test]
    fn percentage_accuracy_rejected() {
        let points = [point(1, 0.5, 0.4, 0.9), point(2, 0.3, 0.3, 97.5)];
        let error = render_curves(&points, "t", Path::new("c.png")).expect_err("97.5 > 1");
        assert!(matches!(error, Error::AccuracyRange { epoch: 2, .. }));
        assert!(error.to_string().contains("97.5"), "{error}");
    }

    #[test]
    fn render_has_stated_size() {
        let points = [point(1, 0.5, 0.4, 0.90), point(2, 0.3, 0.35, 0.93)];
        let image = render_curves(&points, "run", Path::new("c.png")).expect("render");
        assert_eq!(image.dimensions(), (CURVES_WIDTH, CURVES_HEIGHT));
        // The train curve colour appears somewhere in the left panel.
        let has_train = (0..CURVES_WIDTH / 2)
            .flat_map(|x| (0..CURVES_HEIGHT).map(move |y| (x, y)))
            .any(|(x, y)| image.get_pixel(x, y).0 == [31, 119, 180]);
        assert!(has_train);
    }

    #[test]
    fn single_epoch_and_nan_render() {
        let points = [point(1, f64::NAN, f64::INFINITY, 0.5)];
        let image = render_curves(&points, "one", Path::new("c.png")).expect("render");
        assert_eq!(image.dimensions(), (CURVES_WIDTH, CURVES_HEIGHT));
    }

    #[test]
    fn finite_drops_nan_and_inf() {
        let points = [
            point(1, 1.0, 0.0, 0.0),
            point(2, f64::NAN, 0.0, 0.0),
            point(3, f64::INFINITY, 0.0, 0.0),
            point(4, 0.5, 0.0, 0.0),
        ];
        assert_eq!(finite(&points, |p| p.train_loss), vec![(1, 1.0), (4, 0.5)]);
    }
}
