//! The crate's error type.

use std::path::PathBuf;

/// Errors from rendering grids and plots and from writing PNG files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `render_grid` or `write_grid_png` received no tiles.
    #[error("no tiles to render: pass at least one tile (k must be at least 1)")]
    NoTiles,

    /// A tile's pixel buffer length differs from channels x height x width.
    #[error(
        "tile id {id}: the pixel buffer has {actual} bytes but channels x height x width is \
         {channels} x {height} x {width} = {expected}; pass the image as channel-first u8 \
         (C x H x W) with these dimensions"
    )]
    PixelLength {
        /// Sample id of the tile.
        id: u32,
        /// Bytes expected from the stated dimensions.
        expected: usize,
        /// Bytes in the buffer.
        actual: usize,
        /// Stated channel count.
        channels: usize,
        /// Stated height in pixels.
        height: usize,
        /// Stated width in pixels.
        width: usize,
    },

    /// A tile's image has a channel count other than 1 or 3.
    #[error(
        "tile id {id}: {channels} channels are not supported; convert the image to 1 channel \
         (grayscale) or 3 channels (RGB)"
    )]
    Channels {
        /// Sample id of the tile.
        id: u32,
        /// Stated channel count.
        channels: usize,
    },

    /// A tile's image has zero height or zero width.
    #[error("tile id {id}: the image is {height} x {width} pixels; both sides must be at least 1")]
    EmptyImage {
        /// Sample id of the tile.
        id: u32,
        /// Stated height in pixels.
        height: usize,
        /// Stated width in pixels.
        width: usize,
    },

    /// The canvas would exceed the size that an image buffer can address.
    #[error(
        "the canvas would be {width} x {height} pixels, which is too large to allocate; \
         show fewer tiles (lower k) or smaller images"
    )]
    CanvasTooLarge {
        /// Canvas width in pixels.
        width: usize,
        /// Canvas height in pixels.
        height: usize,
    },

    /// A confusion matrix whose counts do not match its class names.
    #[error(
        "the confusion matrix has {counts} counts for {classes} class names; pass K x K counts \
         (row = actual class, column = predicted class) and at least one class name"
    )]
    ConfusionShape {
        /// Number of counts passed.
        counts: usize,
        /// Number of class names passed.
        classes: usize,
    },

    /// `write_curves_png` received no epoch points.
    #[error("no epochs to plot: pass at least one epoch point")]
    NoEpochs,

    /// A test accuracy is outside [0, 1].
    #[error(
        "epoch {epoch}: test_accuracy {value} is outside [0, 1]; pass accuracy as a fraction \
         (divide a percentage by 100)"
    )]
    AccuracyRange {
        /// Epoch of the point.
        epoch: u32,
        /// The value given.
        value: f64,
    },

    /// Creating, writing or renaming the output file failed.
    #[error("failed to write {path}: {source}; check that the folder exists and is writable")]
    Write {
        /// The requested output path.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// PNG encoding failed.
    #[error("failed to encode the PNG for {path}: {source}")]
    Encode {
        /// The requested output path.
        path: PathBuf,
        /// The underlying encoder error.
        source: image::ImageError,
    },

    /// plotters failed to draw the curves.
    #[error("failed to draw the curves for {path}: {message}")]
    Plot {
        /// The requested output path.
        path: PathBuf,
        /// plotters' error message.
        message: String,
    },

    /// Images for the report's sprite sheets differ in size.
    #[error(
        "sprite image {index} is {width}x{height} pixels, but the first is {first_width}x{first_height}; \
         the report needs images of one size"
    )]
    SpriteSize {
        /// Index of the first image whose size differs.
        index: usize,
        /// Its width in pixels.
        width: usize,
        /// Its height in pixels.
        height: usize,
        /// Width of the first image.
        first_width: usize,
        /// Height of the first image.
        first_height: usize,
    },

    /// A sprite sheet failed to encode as PNG.
    #[error("failed to encode a sprite sheet of the report: {source}")]
    Sprite {
        /// The underlying encoder error.
        source: image::ImageError,
    },

    /// An embedded font failed to parse, which means the binary was built from damaged assets.
    #[error("the embedded font {name} could not be parsed; rebuild toploss from a clean checkout")]
    Font {
        /// File name of the font under `crates/report/assets/`.
        name: &'static str,
    },
}
