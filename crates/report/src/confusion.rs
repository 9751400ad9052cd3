//! Confusion-matrix heat maps.
//!
//! Rows are the actual (given) classes, columns the predicted ones, both labelled with class
//! names. Each cell shows its count and is coloured by its share of its row, that is of the
//! samples of that actual class. Diagonal cells (right) are green by that share. Off-diagonal
//! cells (wrong) are red by their share relative to the largest off-diagonal share, so that
//! the worst confusion is full red even when every error is rare. Empty cells are white, and
//! diagonal cells get a dark outline, so they stand out even when empty.

use std::path::Path;

use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_hollow_rect_mut, draw_text_mut};
use imageproc::rect::Rect;

use crate::grid::{RIGHT_COLOR, WRONG_COLOR};
use crate::text::{fit, fit_two_lines, text_width};
use crate::{Error, font, png};

/// Smallest side of a cell, in pixels; cells grow to fit the widest count.
const CELL_MIN_SIDE: u32 = 44;
/// Space around text inside a cell or label, in pixels.
const PADDING: u32 = 6;
/// Font size of the counts, in px.
const COUNT_SIZE: f32 = 13.0;
/// Font size of class names, and the smallest size before names are cut, in px.
const LABEL_SIZE: f32 = 13.0;
const LABEL_MIN_SIZE: f32 = 10.0;
/// Widest row label before names are cut with an ellipsis, in pixels.
const ROW_LABEL_MAX_WIDTH: u32 = 160;
/// Height of the column-label row, in pixels.
const HEADER_HEIGHT: u32 = 28;
/// Title area and font sizes (one line, or two lines when it is too wide), in px.
const TITLE_HEIGHT: u32 = 36;
const TITLE_SIZE: f32 = 16.0;
const TITLE_TWO_LINE_SIZE: f32 = 12.0;
/// Text in the top-left corner that names the two axes.
const CORNER_TEXT: &str = "actual \\ predicted";

const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
const GRID_LINE: Rgb<u8> = Rgb([224, 224, 224]);
const TEXT: Rgb<u8> = Rgb([33, 33, 33]);
const MUTED: Rgb<u8> = Rgb([117, 117, 117]);
const DIAGONAL_OUTLINE: Rgb<u8> = Rgb([27, 94, 32]);
/// Row share above which a count is drawn in white, for contrast on a dark cell.
const LIGHT_TEXT_SHARE: f64 = 0.55;

/// Renders a `K x K` confusion matrix as a heat map.
///
/// # Shapes
/// `counts`: `K x K` row-major (row = actual class, column = predicted class); `classes`: `K`
/// names in label order.
///
/// # Errors
/// [`Error::ConfusionShape`] if `classes` is empty or `counts` does not have `K x K` entries,
/// [`Error::CanvasTooLarge`] if the image would be too large, [`Error::Font`] if an embedded
/// font fails to parse.
pub fn render_confusion(
    counts: &[u64],
    classes: &[String],
    title: Option<&str>,
) -> Result<RgbImage, Error> {
    let k = classes.len();
    if k == 0 || counts.len() != k.saturating_mul(k) {
        return Err(Error::ConfusionShape {
            counts: counts.len(),
            classes: k,
        });
    }
    let regular = font::load(font::REGULAR)?;
    let bold = font::load(font::BOLD)?;

    // Geometry: the cell fits the widest count, the row labels fit the widest name.
    let widest_count = counts
        .iter()
        .map(|c| text_width(&bold, COUNT_SIZE, &c.to_string()))
        .max()
        .unwrap_or(0);
    let cell = (widest_count + 2 * PADDING).max(CELL_MIN_SIDE);
    let widest_name = classes
        .iter()
        .map(|name| text_width(&regular, LABEL_SIZE, name))
        .chain(std::iter::once(text_width(
            &regular,
            LABEL_SIZE,
            CORNER_TEXT,
        )))
        .max()
        .unwrap_or(0);
    let label_width = widest_name.min(ROW_LABEL_MAX_WIDTH) + 2 * PADDING;
    let title_height = if title.is_some() { TITLE_HEIGHT } else { 0 };
    let too_large = || Error::CanvasTooLarge {
        width: usize::MAX,
        height: usize::MAX,
    };
    let grid_side = u32::try_from(k)
        .ok()
        .and_then(|k| k.checked_mul(cell))
        .ok_or_else(too_large)?;
    let width = label_width.checked_add(grid_side).ok_or_else(too_large)?;
    let height = (title_height + HEADER_HEIGHT)
        .checked_add(grid_side)
        .ok_or_else(too_large)?;
    if (width as usize)
        .checked_mul(height as usize)
        .and_then(|n| n.checked_mul(3))
        .is_none_or(|n| n > isize::MAX as usize)
    {
        return Err(Error::CanvasTooLarge {
            width: width as usize,
            height: height as usize,
        });
    }
    let mut canvas = RgbImage::from_pixel(width, height, BACKGROUND);
    let grid_x = label_width;
    let grid_y = title_height + HEADER_HEIGHT;

    // Title.
    if let Some(title) = title {
        let (size, lines) = fit_two_lines(
            &bold,
            TITLE_SIZE,
            TITLE_TWO_LINE_SIZE,
            title,
            width.saturating_sub(2 * PADDING),
        );
        let line_height = (size * 1.2).round() as u32;
        let mut y = title_height.saturating_sub(line_height * lines.len() as u32) / 2;
        for line in lines {
            draw_text_mut(
                &mut canvas,
                TEXT,
                PADDING as i32,
                y as i32,
                size,
                &bold,
                &line,
            );
            y += line_height;
        }
    }

    // Axis names in the corner, then the column and row labels.
    let (size, corner) = fit(
        &regular,
        LABEL_SIZE,
        LABEL_MIN_SIZE,
        CORNER_TEXT,
        label_width - 2 * PADDING,
    );
    let header_text_y = title_height + (HEADER_HEIGHT - size as u32) / 2;
    draw_text_mut(
        &mut canvas,
        MUTED,
        PADDING as i32,
        header_text_y as i32,
        size,
        &regular,
        &corner,
    );
    for (index, name) in classes.iter().enumerate() {
        let offset = index as u32 * cell;
        let (size, text) = fit(&regular, LABEL_SIZE, LABEL_MIN_SIZE, name, cell - 4);
        let text_x = grid_x + offset + (cell - text_width(&regular, size, &text).min(cell)) / 2;
        let text_y = title_height + (HEADER_HEIGHT - size as u32) / 2;
        draw_text_mut(
            &mut canvas,
            TEXT,
            text_x as i32,
            text_y as i32,
            size,
            &regular,
            &text,
        );

        let (size, text) = fit(
            &regular,
            LABEL_SIZE,
            LABEL_MIN_SIZE,
            name,
            label_width - 2 * PADDING,
        );
        let text_y = grid_y + offset + (cell - size as u32) / 2;
        draw_text_mut(
            &mut canvas,
            TEXT,
            PADDING as i32,
            text_y as i32,
            size,
            &regular,
            &text,
        );
    }

    // Cells, coloured by their share of the row; errors relative to the largest error share.
    let share_of = |actual: usize, predicted: usize| {
        let row_total: u64 = counts[actual * k..(actual + 1) * k].iter().sum();
        if row_total == 0 {
            0.0
        } else {
            counts[actual * k + predicted] as f64 / row_total as f64
        }
    };
    let max_error_share = (0..k * k)
        .filter(|cell| cell / k != cell % k)
        .map(|cell| share_of(cell / k, cell % k))
        .fold(0.0, f64::max);
    for actual in 0..k {
        for predicted in 0..k {
            let count = counts[actual * k + predicted];
            let (accent, share) = if actual == predicted {
                (RIGHT_COLOR, share_of(actual, predicted))
            } else if max_error_share > 0.0 {
                (WRONG_COLOR, share_of(actual, predicted) / max_error_share)
            } else {
                (WRONG_COLOR, 0.0)
            };
            let x = grid_x + predicted as u32 * cell;
            let y = grid_y + actual as u32 * cell;
            let rect = Rect::at(x as i32, y as i32).of_size(cell, cell);
            draw_filled_rect_mut(&mut canvas, rect, blend(BACKGROUND, accent, share));
            draw_hollow_rect_mut(&mut canvas, rect, GRID_LINE);
            if actual == predicted {
                draw_hollow_rect_mut(&mut canvas, rect, DIAGONAL_OUTLINE);
                let inner = Rect::at(x as i32 + 1, y as i32 + 1).of_size(cell - 2, cell - 2);
                draw_hollow_rect_mut(&mut canvas, inner, DIAGONAL_OUTLINE);
            }

            let text = count.to_string();
            let color = if share > LIGHT_TEXT_SHARE {
                BACKGROUND
            } else if count == 0 {
                MUTED
            } else {
                TEXT
            };
            let text_x = x + (cell - text_width(&bold, COUNT_SIZE, &text).min(cell)) / 2;
            let text_y = y + (cell - COUNT_SIZE as u32) / 2;
            draw_text_mut(
                &mut canvas,
                color,
                text_x as i32,
                text_y as i32,
                COUNT_SIZE,
                &bold,
                &text,
            );
        }
    }
    tracing::debug!(classes = k, width, height, "rendered confusion matrix");
    Ok(canvas)
}

/// Renders the heat map (see [`render_confusion`]) and writes it as a PNG at `path`,
/// atomically, replacing an existing file.
///
/// # Errors
/// As [`render_confusion`], plus [`Error::Write`] or [`Error::Encode`] naming `path`.
pub fn write_confusion_png(
    counts: &[u64],
    classes: &[String],
    title: Option<&str>,
    path: &Path,
) -> Result<(), Error> {
    let canvas = render_confusion(counts, classes, title)?;
    png::write_png_atomic(&canvas, path)
}

/// Mixes `from` towards `to` by `share` in `[0, 1]`.
fn blend(from: Rgb<u8>, to: Rgb<u8>, share: f64) -> Rgb<u8> {
    let share = share.clamp(0.0, 1.0);
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * share).round() as u8;
    Rgb([
        mix(from[0], to[0]),
        mix(from[1], to[1]),
        mix(from[2], to[2]),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(k: usize) -> Vec<String> {
        (0..k).map(|c| format!("class {c}")).collect()
    }

    #[test]
    fn diagonal_green_and_errors_red() {
        // Row 0: 9 right, 1 wrong (shares 0.9 and 0.1). Row 1: 0 right, 4 wrong (share 1.0,
        // the largest error share, so 0.1 stays 0.1 / 1.0 and 1.0 is full red).
        let counts = [9, 1, 4, 0];
        let image = render_confusion(&counts, &names(2), None).unwrap();
        let (width, height) = image.dimensions();
        let cell = (height - HEADER_HEIGHT) / 2;
        let grid_x = width - 2 * cell;
        let center = |row: u32, col: u32| {
            // A pixel near the cell's corner, inside the outlines and away from the text.
            *image.get_pixel(grid_x + col * cell + 4, HEADER_HEIGHT + row * cell + 4)
        };
        assert_eq!(center(0, 0), blend(BACKGROUND, RIGHT_COLOR, 0.9));
        assert_eq!(center(0, 1), blend(BACKGROUND, WRONG_COLOR, 0.1));
        assert_eq!(center(1, 0), WRONG_COLOR);
        // An empty diagonal cell stays white inside its outline.
        assert_eq!(center(1, 1), BACKGROUND);
    }

    #[test]
    fn errors_scaled_to_largest_error() {
        // Errors: row 0 has share 1/10, row 1 has 1/5, the largest. So the cell (0, 1) gets
        // (1/10) / (1/5) = 0.5 of full red and (1, 0) gets all of it.
        let counts = [9, 1, 1, 4];
        let image = render_confusion(&counts, &names(2), None).unwrap();
        let (width, height) = image.dimensions();
        let cell = (height - HEADER_HEIGHT) / 2;
        let grid_x = width - 2 * cell;
        let pixel = |row: u32, col: u32| {
            *image.get_pixel(grid_x + col * cell + 4, HEADER_HEIGHT + row * cell + 4)
        };
        assert_eq!(pixel(0, 1), blend(BACKGROUND, WRONG_COLOR, 0.5));
        assert_eq!(pixel(1, 0), WRONG_COLOR);
    }

    #[test]
    fn cells_grow_for_large_counts() {
        let small = render_confusion(&[1, 0, 0, 1], &names(2), None).unwrap();
        let large = render_confusion(&[123_456_789, 0, 0, 1], &names(2), None).unwrap();
        assert!(large.width() > small.width());
        assert_eq!(small.height(), HEADER_HEIGHT + 2 * CELL_MIN_SIDE);
    }

    #[test]
    fn title_adds_its_height() {
        let plain = render_confusion(&[1, 0, 0, 1], &names(2), None).unwrap();
        let titled = render_confusion(&[1, 0, 0, 1], &names(2), Some("confusion")).unwrap();
        assert_eq!(titled.height(), plain.height() + TITLE_HEIGHT);
    }

    #[test]
    fn shape_mismatch_rejected() {
        let error = render_confusion(&[1, 2, 3], &names(2), None).unwrap_err();
        assert!(
            matches!(
                error,
                Error::ConfusionShape {
                    counts: 3,
                    classes: 2
                }
            ),
            "{error}"
        );
        assert!(render_confusion(&[], &[], None).is_err());
    }

    #[test]
    fn blend_endpoints() {
        assert_eq!(blend(BACKGROUND, WRONG_COLOR, 0.0), BACKGROUND);
        assert_eq!(blend(BACKGROUND, WRONG_COLOR, 1.0), WRONG_COLOR);
    }

    #[test]
    fn png_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("confusion.png");
        write_confusion_png(&[5, 1, 0, 7], &names(2), Some("test"), &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"));
    }
}
