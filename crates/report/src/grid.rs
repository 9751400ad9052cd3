//! Top-loss grid PNGs in the style of fastai's `plot_top_losses`.
//!
//! Each tile shows the sample's image, upscaled with nearest-neighbour sampling so that a
//! 28 x 28 digit is drawn at 112 x 112 px, and a caption with labelled lines:
//!
//! ```text
//! pred / actual
//! Sneaker / Sandal        (red when the two differ, green when they match)
//! loss            4.21
//! p(pred)         0.98
//! p(actual)       0.01
//! id             12345
//! ```
//!
//! Tiles are laid out row by row in `ceil(sqrt(k))` columns and `ceil(k / columns)` rows, so
//! the last row may be partly filled but no row is empty. An optional title line sits above
//! the tiles.

use std::path::Path;

use ab_glyph::FontRef;
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_text_mut};
use imageproc::rect::Rect;

use crate::text::{fit, fit_pair, fit_two_lines, text_width};
use crate::{Error, font, png};

/// Minimum length in pixels of an upscaled image's longer side (4 x 28 px for MNIST).
const IMAGE_MIN_SIDE: usize = 112;
/// Space between a tile's border and its content, in pixels.
const TILE_PADDING: u32 = 8;
/// Minimum width of a tile's content (image and caption), in pixels, so that
/// "p(actual)  0.01" fits beside a small image.
const CONTENT_MIN_WIDTH: usize = 136;
/// Space between the image and the caption, in pixels.
const IMAGE_CAPTION_GAP: u32 = 6;

/// The muted "pred / actual" line above the class names: font size and line height in px.
const HEADER_SIZE: f32 = 11.0;
const HEADER_LINE_HEIGHT: u32 = 14;
/// The class names line (bold): font size, smallest size before cutting, line height in px.
const NAMES_SIZE: f32 = 14.0;
const NAMES_MIN_SIZE: f32 = 11.0;
const NAMES_LINE_HEIGHT: u32 = 18;
/// The "key  value" lines: font size, smallest size before cutting, line height in px.
const VALUE_SIZE: f32 = 12.0;
const VALUE_MIN_SIZE: f32 = 9.0;
const VALUE_LINE_HEIGHT: u32 = 16;
/// Number of "key  value" lines: loss, p(pred), p(actual), id.
const VALUE_LINES: u32 = 4;
/// Minimum gap between a key and its right-aligned value, in pixels.
const KEY_VALUE_GAP: u32 = 8;
/// Caption height: 14 + 18 + 4 x 16 = 96 px.
const CAPTION_HEIGHT: u32 =
    HEADER_LINE_HEIGHT + NAMES_LINE_HEIGHT + VALUE_LINES * VALUE_LINE_HEIGHT;

/// Title area above the tiles: height, font size on one line, and font size when a title too
/// wide for one line is broken into two (2 x 1.2 x 12 px fits in 36 px), in px.
const TITLE_HEIGHT: u32 = 36;
const TITLE_SIZE: f32 = 16.0;
const TITLE_TWO_LINE_SIZE: f32 = 12.0;

/// Canvas background, visible as the 2 px lines between tiles.
const BACKGROUND: Rgb<u8> = Rgb([228, 228, 228]);
const TILE_BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
const TEXT: Rgb<u8> = Rgb([33, 33, 33]);
const MUTED: Rgb<u8> = Rgb([117, 117, 117]);
/// Caption colour of a misclassified tile (predicted differs from actual).
pub const WRONG_COLOR: Rgb<u8> = Rgb([198, 40, 40]);
/// Caption colour of a correctly classified tile.
pub const RIGHT_COLOR: Rgb<u8> = Rgb([46, 125, 50]);
/// Height of the coloured strip along a tile's top edge, in pixels.
const STRIP_HEIGHT: u32 = 3;

/// A sample's image: channel-first u8 pixels (C x H x W), with 1 (grayscale) or 3 (RGB)
/// channels.
#[derive(Debug, Clone, Copy)]
pub struct TileImage<'a> {
    /// Pixels in channel-first order: all of channel 0 row by row, then channel 1, and so on.
    pub pixels: &'a [u8],
    /// Number of channels: 1 or 3.
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

/// One tile of the grid: a sample, its image and what the model made of it.
#[derive(Debug, Clone, Copy)]
pub struct Tile<'a> {
    /// Sample id (its 0-based index in the dataset).
    pub id: u32,
    /// The sample's image.
    pub image: TileImage<'a>,
    /// Name of the predicted class.
    pub predicted: &'a str,
    /// Name of the given (actual) class.
    pub actual: &'a str,
    /// Cross-entropy against the given label, in nats. NaN and infinities are drawn as text.
    pub loss: f32,
    /// Probability of the predicted class.
    pub p_predicted: f32,
    /// Probability of the given class.
    pub p_actual: f32,
}

/// Pixel geometry of a grid, shared by every tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridGeometry {
    /// Number of tile columns: `ceil(sqrt(k))`.
    pub cols: u32,
    /// Number of tile rows: `ceil(k / cols)`.
    pub rows: u32,
    /// Integer factor by which every image is upscaled.
    pub image_scale: u32,
    /// Width of the area reserved for the upscaled image in each tile.
    pub image_box_width: u32,
    /// Height of the area reserved for the upscaled image in each tile.
    pub image_box_height: u32,
    /// Width of one tile.
    pub tile_width: u32,
    /// Height of one tile.
    pub tile_height: u32,
    /// Height of the title line: 0 without a title.
    pub title_height: u32,
    /// Canvas width: `cols * tile_width`.
    pub width: u32,
    /// Canvas height: `title_height + rows * tile_height`.
    pub height: u32,
}

impl GridGeometry {
    /// Returns the top-left corner of tile `index` (0-based, row by row) on the canvas.
    pub fn tile_origin(&self, index: usize) -> (u32, u32) {
        let cols = self.cols.max(1) as usize;
        let col = (index % cols) as u32;
        let row = (index / cols) as u32;
        (
            col * self.tile_width,
            self.title_height + row * self.tile_height,
        )
    }

    /// Returns the top-left corner of the upscaled `image` of tile `index` on the canvas.
    ///
    /// The image is centred horizontally in the tile and vertically in the image area.
    pub fn image_origin(&self, index: usize, image: &TileImage<'_>) -> (u32, u32) {
        let (tile_x, tile_y) = self.tile_origin(index);
        let scaled_width = image.width as u32 * self.image_scale;
        let scaled_height = image.height as u32 * self.image_scale;
        let content_width = self.tile_width - 2 * TILE_PADDING;
        (
            tile_x + TILE_PADDING + (content_width - scaled_width) / 2,
            tile_y + TILE_PADDING + (self.image_box_height - scaled_height) / 2,
        )
    }
}

/// Returns `(cols, rows)` for `k` tiles: `cols = ceil(sqrt(k))`, `rows = ceil(k / cols)`.
///
/// The last row contains between 1 and `cols` tiles, so no row is empty. `k = 0` gives `(0, 0)`.
pub fn grid_layout(k: usize) -> (usize, usize) {
    if k == 0 {
        return (0, 0);
    }

    // Integer ceil(sqrt(k)): the smallest cols with cols * cols >= k. Starting from the float
    // estimate and correcting avoids rounding errors for large k.
    let mut cols = (k as f64).sqrt().ceil() as usize;
    while cols > 1 && (cols - 1) * (cols - 1) >= k {
        cols -= 1;
    }
    while cols * cols < k {
        cols += 1;
    }
    let rows = k.div_ceil(cols);
    (cols, rows)
}

/// Checks every tile's image and computes the grid's pixel geometry.
///
/// # Errors
/// - [`Error::NoTiles`] for an empty slice.
/// - [`Error::Channels`], [`Error::EmptyImage`] or [`Error::PixelLength`] for the first
///   invalid tile, naming its id.
/// - [`Error::CanvasTooLarge`] when the canvas size overflows.
pub fn grid_geometry(tiles: &[Tile<'_>], title: Option<&str>) -> Result<GridGeometry, Error> {
    if tiles.is_empty() {
        return Err(Error::NoTiles);
    }
    for tile in tiles {
        check_image(tile)?;
    }

    // One scale for all tiles keeps their relative sizes. It is the smallest integer factor
    // that brings the longest side to at least IMAGE_MIN_SIDE, and 1 for larger images.
    let max_height = tiles.iter().map(|t| t.image.height).max().unwrap_or(1);
    let max_width = tiles.iter().map(|t| t.image.width).max().unwrap_or(1);
    let image_scale = IMAGE_MIN_SIDE.div_ceil(max_height.max(max_width)).max(1);
    let image_box_width = max_width * image_scale;
    let image_box_height = max_height * image_scale;

    // Tile size: padding around the image area and the fixed-height caption.
    let padding = TILE_PADDING as usize;
    let tile_width = 2 * padding + image_box_width.max(CONTENT_MIN_WIDTH);
    let tile_height =
        2 * padding + image_box_height + IMAGE_CAPTION_GAP as usize + CAPTION_HEIGHT as usize;
    let title_height = if title.is_some() { TITLE_HEIGHT } else { 0 };

    // Canvas size, checked so that the RGB buffer can be allocated and indexed with u32.
    let (cols, rows) = grid_layout(tiles.len());
    let width = cols.checked_mul(tile_width);
    let height = rows
        .checked_mul(tile_height)
        .and_then(|h| h.checked_add(title_height as usize));
    let too_large = || Error::CanvasTooLarge {
        width: width.unwrap_or(usize::MAX),
        height: height.unwrap_or(usize::MAX),
    };
    let (Some(width), Some(height)) = (width, height) else {
        return Err(too_large());
    };
    let bytes = width.checked_mul(height).and_then(|n| n.checked_mul(3));
    if bytes.is_none_or(|n| n > isize::MAX as usize) {
        return Err(too_large());
    }
    let to_u32 = |value: usize| u32::try_from(value).map_err(|_| too_large());

    Ok(GridGeometry {
        cols: to_u32(cols)?,
        rows: to_u32(rows)?,
        image_scale: to_u32(image_scale)?,
        image_box_width: to_u32(image_box_width)?,
        image_box_height: to_u32(image_box_height)?,
        tile_width: to_u32(tile_width)?,
        tile_height: to_u32(tile_height)?,
        title_height,
        width: to_u32(width)?,
        height: to_u32(height)?,
    })
}

/// Renders the tiles into one RGB image, with an optional title line on top.
///
/// The canvas is [`GridGeometry::width`] x [`GridGeometry::height`] pixels as returned by
/// [`grid_geometry`]. Class names and the title shrink, and are cut with an ellipsis if
/// needed, so that text never crosses into the neighbouring tile.
///
/// # Errors
/// As [`grid_geometry`], plus [`Error::Font`] if an embedded font fails to parse.
pub fn render_grid(tiles: &[Tile<'_>], title: Option<&str>) -> Result<RgbImage, Error> {
    let geometry = grid_geometry(tiles, title)?;
    let fonts = Fonts {
        regular: font::load(font::REGULAR)?,
        bold: font::load(font::BOLD)?,
    };
    let mut canvas = RgbImage::from_pixel(geometry.width, geometry.height, BACKGROUND);

    // Title line.
    if let Some(title) = title {
        draw_filled_rect_mut(
            &mut canvas,
            Rect::at(0, 0).of_size(geometry.width, geometry.title_height),
            TILE_BACKGROUND,
        );
        let max_width = geometry.width.saturating_sub(2 * TILE_PADDING);
        let (size, lines) = fit_two_lines(
            &fonts.bold,
            TITLE_SIZE,
            TITLE_TWO_LINE_SIZE,
            title,
            max_width,
        );
        // Centre the block of lines vertically; a line takes about 1.2 x the font size.
        let line_height = (size * 1.2).round() as u32;
        let block_height = line_height * lines.len() as u32;
        let mut y = geometry.title_height.saturating_sub(block_height) / 2;
        for line in lines {
            draw_text_mut(
                &mut canvas,
                TEXT,
                TILE_PADDING as i32,
                y as i32,
                size,
                &fonts.bold,
                &line,
            );
            y += line_height;
        }
    }

    // Tiles, row by row.
    for (index, tile) in tiles.iter().enumerate() {
        draw_tile(&mut canvas, &geometry, &fonts, index, tile);
    }
    tracing::debug!(
        tiles = tiles.len(),
        width = geometry.width,
        height = geometry.height,
        "rendered top-loss grid"
    );
    Ok(canvas)
}

/// Renders the grid (see [`render_grid`]) and writes it as a PNG at `path`.
///
/// The PNG is written to a temporary file in the same folder and renamed to `path`, so a
/// reader never sees a partial file. An existing file at `path` is replaced.
///
/// # Errors
/// - As [`render_grid`].
/// - [`Error::Write`] naming `path` when the folder is missing or not writable or the rename
///   fails. No temporary file is left behind.
/// - [`Error::Encode`] when PNG encoding fails.
pub fn write_grid_png(tiles: &[Tile<'_>], title: Option<&str>, path: &Path) -> Result<(), Error> {
    let canvas = render_grid(tiles, title)?;
    png::write_png_atomic(&canvas, path)
}

/// The two embedded fonts used for captions and the title.
struct Fonts {
    regular: FontRef<'static>,
    bold: FontRef<'static>,
}

/// Checks a tile's channel count, dimensions and pixel buffer length.
fn check_image(tile: &Tile<'_>) -> Result<(), Error> {
    let image = &tile.image;
    if image.channels != 1 && image.channels != 3 {
        return Err(Error::Channels {
            id: tile.id,
            channels: image.channels,
        });
    }
    if image.height == 0 || image.width == 0 {
        return Err(Error::EmptyImage {
            id: tile.id,
            height: image.height,
            width: image.width,
        });
    }
    let expected = image
        .channels
        .saturating_mul(image.height)
        .saturating_mul(image.width);
    if image.pixels.len() != expected {
        return Err(Error::PixelLength {
            id: tile.id,
            expected,
            actual: image.pixels.len(),
            channels: image.channels,
            height: image.height,
            width: image.width,
        });
    }
    Ok(())
}

/// Draws tile `index`: background, colour strip, upscaled image and caption.
fn draw_tile(
    canvas: &mut RgbImage,
    geometry: &GridGeometry,
    fonts: &Fonts,
    index: usize,
    tile: &Tile<'_>,
) {
    let (tile_x, tile_y) = geometry.tile_origin(index);
    let accent = if tile.predicted == tile.actual {
        RIGHT_COLOR
    } else {
        WRONG_COLOR
    };

    // White card inset by 1 px on each side, so neighbours are separated by a 2 px line, and a
    // strip in the caption colour along its top edge.
    draw_filled_rect_mut(
        canvas,
        Rect::at(tile_x as i32 + 1, tile_y as i32 + 1)
            .of_size(geometry.tile_width - 2, geometry.tile_height - 2),
        TILE_BACKGROUND,
    );
    draw_filled_rect_mut(
        canvas,
        Rect::at(tile_x as i32 + 1, tile_y as i32 + 1)
            .of_size(geometry.tile_width - 2, STRIP_HEIGHT),
        accent,
    );

    // Image.
    let (image_x, image_y) = geometry.image_origin(index, &tile.image);
    blit_upscaled(canvas, &tile.image, geometry.image_scale, image_x, image_y);

    // Caption.
    let content_x = tile_x + TILE_PADDING;
    let content_width = geometry.tile_width - 2 * TILE_PADDING;
    let mut y = tile_y + TILE_PADDING + geometry.image_box_height + IMAGE_CAPTION_GAP;
    draw_text_mut(
        canvas,
        MUTED,
        content_x as i32,
        y as i32,
        HEADER_SIZE,
        &fonts.regular,
        "pred / actual",
    );
    y += HEADER_LINE_HEIGHT;

    let (size, names) = fit_pair(
        &fonts.bold,
        NAMES_SIZE,
        NAMES_MIN_SIZE,
        (tile.predicted, " / ", tile.actual),
        content_width,
    );
    draw_text_mut(
        canvas,
        accent,
        content_x as i32,
        y as i32,
        size,
        &fonts.bold,
        &names,
    );
    y += NAMES_LINE_HEIGHT;

    let values = [
        ("loss", format_number(tile.loss)),
        ("p(pred)", format_probability(tile.p_predicted)),
        ("p(actual)", format_probability(tile.p_actual)),
        ("id", tile.id.to_string()),
    ];
    for (key, value) in values {
        draw_text_mut(
            canvas,
            MUTED,
            content_x as i32,
            y as i32,
            VALUE_SIZE,
            &fonts.regular,
            key,
        );
        let key_width = text_width(&fonts.regular, VALUE_SIZE, key);
        let max_width = content_width.saturating_sub(key_width + KEY_VALUE_GAP);
        let (size, value) = fit(
            &fonts.regular,
            VALUE_SIZE,
            VALUE_MIN_SIZE,
            &value,
            max_width,
        );
        let value_width = text_width(&fonts.regular, size, &value);
        let value_x = (content_x + content_width).saturating_sub(value_width);
        draw_text_mut(
            canvas,
            TEXT,
            value_x as i32,
            y as i32,
            size,
            &fonts.regular,
            &value,
        );
        y += VALUE_LINE_HEIGHT;
    }
}

/// Copies `image` onto `canvas` at `(x, y)`, each source pixel becoming a `scale` x `scale`
/// block (nearest-neighbour upscaling).
fn blit_upscaled(canvas: &mut RgbImage, image: &TileImage<'_>, scale: u32, x: u32, y: u32) {
    let plane = image.height * image.width;
    for row in 0..image.height {
        for col in 0..image.width {
            let offset = row * image.width + col;
            // Channel-first: channel c of this pixel is at c * H * W + offset.
            let pixel = if image.channels == 1 {
                let gray = image.pixels[offset];
                Rgb([gray, gray, gray])
            } else {
                Rgb([
                    image.pixels[offset],
                    image.pixels[plane + offset],
                    image.pixels[2 * plane + offset],
                ])
            };
            let block_x = x + col as u32 * scale;
            let block_y = y + row as u32 * scale;
            for dy in 0..scale {
                for dx in 0..scale {
                    canvas.put_pixel(block_x + dx, block_y + dy, pixel);
                }
            }
        }
    }
}

/// Formats a loss with two decimals, large values in scientific notation, and NaN and
/// infinities as "NaN", "inf" and "-inf".
fn format_number(value: f32) -> String {
    /// From this magnitude on, scientific notation is shorter than fixed-point.
    const SCIENTIFIC_FROM: f32 = 1e4;
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "inf" } else { "-inf" }.to_string()
    } else if value.abs() >= SCIENTIFIC_FROM {
        format!("{value:.2e}")
    } else {
        format!("{value:.2}")
    }
}

/// Formats a probability with two decimals, or in scientific notation (for example "3.2e-4")
/// when a positive value would print as "0.00". The size of a small p(actual) distinguishes a
/// confident mistake from a borderline one.
fn format_probability(value: f32) -> String {
    let fixed = format_number(value);
    if value > 0.0 && fixed == "0.00" {
        format!("{value:.1e}")
    } else {
        fixed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns 28 x 28 grayscale pixels where pixel (row, col) is (row * 28 + col) % 256.
    fn gray_pixels() -> Vec<u8> {
        (0..28 * 28).map(|i| (i % 256) as u8).collect()
    }

    fn tile<'a>(id: u32, pixels: &'a [u8], channels: usize, side: usize) -> Tile<'a> {
        Tile {
            id,
            image: TileImage {
                pixels,
                channels,
                height: side,
                width: side,
            },
            predicted: "7",
            actual: "1",
            loss: 4.21,
            p_predicted: 0.98,
            p_actual: 0.01,
        }
    }

    #[test]
    fn layout_small_k_by_hand() {
        // k: cols = ceil(sqrt(k)), rows = ceil(k / cols).
        let cases = [
            (1, (1, 1)),
            (2, (2, 1)),
            (3, (2, 2)),
            (4, (2, 2)),
            (5, (3, 2)),  // 3 + 2
            (7, (3, 3)),  // 3 + 3 + 1
            (10, (4, 3)), // 4 + 4 + 2
            (16, (4, 4)),
            (17, (5, 4)), // 5 * 4 = 20 >= 17, 5 * 3 = 15 < 17
            (26, (6, 5)), // 6 * 5 = 30 >= 26, 6 * 4 = 24 < 26
        ];
        for (k, expected) in cases {
            assert_eq!(grid_layout(k), expected, "k = {k}");
        }
    }

    #[test]
    fn layout_zero_is_empty() {
        assert_eq!(grid_layout(0), (0, 0));
    }

    #[test]
    fn layout_large_k_exact() {
        // 10^12 = (10^6)^2 exactly, and one more needs one more column.
        assert_eq!(grid_layout(1_000_000_000_000).0, 1_000_000);
        assert_eq!(grid_layout(1_000_000_000_001).0, 1_000_001);
    }

    #[test]
    fn geometry_mnist_by_hand() {
        let pixels = gray_pixels();
        let geometry = grid_geometry(&[tile(0, &pixels, 1, 28)], None).expect("valid tile");
        // scale = ceil(112 / 28) = 4, image area 112 x 112.
        // tile width = 8 + max(112, 136) + 8 = 152.
        // tile height = 8 + 112 + 6 + 96 + 8 = 230.
        assert_eq!(geometry.image_scale, 4);
        assert_eq!(geometry.tile_width, 152);
        assert_eq!(geometry.tile_height, 230);
        assert_eq!((geometry.width, geometry.height), (152, 230));
        // Image x = 8 + (136 - 112) / 2 = 20, y = 8.
        assert_eq!(
            geometry.image_origin(0, &tile(0, &pixels, 1, 28).image),
            (20, 8)
        );
    }

    #[test]
    fn geometry_title_adds_height() {
        let pixels = gray_pixels();
        let geometry = grid_geometry(&[tile(0, &pixels, 1, 28)], Some("t")).expect("valid tile");
        assert_eq!(geometry.title_height, TITLE_HEIGHT);
        assert_eq!(geometry.height, TITLE_HEIGHT + 230);
        assert_eq!(geometry.tile_origin(0), (0, TITLE_HEIGHT));
    }

    #[test]
    fn geometry_cifar_scale() {
        let pixels = vec![0u8; 3 * 32 * 32];
        let geometry = grid_geometry(&[tile(0, &pixels, 3, 32)], None).expect("valid tile");
        // scale = ceil(112 / 32) = ceil(3.5) = 4, image 128 px; width = 8 + 136 + 8 = 152.
        assert_eq!(geometry.image_scale, 4);
        assert_eq!(geometry.image_box_width, 128);
        assert_eq!(geometry.tile_width, 152);
    }

    #[test]
    fn geometry_large_image_not_upscaled() {
        let pixels = vec![0u8; 200 * 300];
        let mut big = tile(0, &pixels, 1, 0);
        big.image.height = 200;
        big.image.width = 300;
        let geometry = grid_geometry(&[big], None).expect("valid tile");
        // 300 >= 112, so scale 1 and width = 8 + 300 + 8.
        assert_eq!(geometry.image_scale, 1);
        assert_eq!(geometry.tile_width, 316);
    }

    #[test]
    fn empty_tiles_rejected() {
        assert!(matches!(render_grid(&[], None), Err(Error::NoTiles)));
    }

    #[test]
    fn pixel_length_error_names_id() {
        let pixels = vec![0u8; 28 * 27];
        let error = render_grid(&[tile(12345, &pixels, 1, 28)], None).expect_err("short buffer");
        assert!(matches!(
            error,
            Error::PixelLength {
                id: 12345,
                expected: 784,
                actual: 756,
                ..
            }
        ));
        assert!(error.to_string().contains("12345"), "{error}");
    }

    #[test]
    fn four_channels_rejected() {
        let pixels = vec![0u8; 4 * 28 * 28];
        let error = render_grid(&[tile(9, &pixels, 4, 28)], None).expect_err("RGBA");
        assert!(matches!(error, Error::Channels { id: 9, channels: 4 }));
    }

    #[test]
    fn zero_sized_image_rejected() {
        let error = render_grid(&[tile(3, &[], 1, 0)], None).expect_err("0 x 0 image");
        assert!(matches!(error, Error::EmptyImage { id: 3, .. }));
    }

    #[test]
    fn format_number_special_values() {
        assert_eq!(format_number(f32::NAN), "NaN");
        assert_eq!(format_number(f32::INFINITY), "inf");
        assert_eq!(format_number(f32::NEG_INFINITY), "-inf");
        assert_eq!(format_number(4.2149), "4.21");
        assert_eq!(format_number(0.0), "0.00");
        // 123456.7 = 1.234567e5, rounded to 2 decimals.
        assert_eq!(format_number(123_456.7), "1.23e5");
    }

    #[test]
    fn format_probability_small_values() {
        assert_eq!(format_probability(0.98), "0.98");
        assert_eq!(format_probability(0.0), "0.00");
        // 0.00032 would print as 0.00 with two decimals.
        assert_eq!(format_probability(0.00032), "3.2e-4");
        // 0.005_f32 is 0.00499999989, which two decimals round to "0.00"; 0.0051 rounds up.
        assert_eq!(format_probability(0.005), "5.0e-3");
        assert_eq!(format_probability(0.0051), "0.01");
        assert_eq!(format_probability(f32::NAN), "NaN");
    }

    #[test]
    fn misclassified_tile_has_red_strip() {
        let pixels = gray_pixels();
        let wrong = render_grid(&[tile(0, &pixels, 1, 28)], None).expect("render");
        let mut right_tile = tile(0, &pixels, 1, 28);
        right_tile.actual = "7";
        let right = render_grid(&[right_tile], None).expect("render");
        // The strip starts 1 px inside the tile's top-left corner.
        assert_eq!(wrong.get_pixel(10, 2), &WRONG_COLOR);
        assert_eq!(right.get_pixel(10, 2), &RIGHT_COLOR);
    }

    #[test]
    fn caption_stays_inside_tile() {
        // Two tiles side by side with very long names: nothing may be drawn on the tile's
        // right padding column, which stays white.
        let pixels = gray_pixels();
        let mut long = tile(0, &pixels, 1, 28);
        long.predicted = "An extremely long class name";
        long.actual = "Another extremely long class name";
        long.loss = 123_456_789.0;
        let canvas = render_grid(&[long, long], None).expect("render");
        // Tile 0 spans x = 0..152; its content ends at 152 - 8 = 144. Caption rows start at
        // y = 8 + 112 + 6 = 126 and end at 126 + 96 = 222.
        for y in 126..222 {
            for x in 145..150 {
                assert_eq!(canvas.get_pixel(x, y), &TILE_BACKGROUND, "pixel ({x}, {y})");
            }
        }
    }
}
