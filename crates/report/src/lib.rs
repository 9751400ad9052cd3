//! Pictures of a run: top-loss grid PNGs and per-epoch training curves.
//!
//! - [`grid`]: a grid of the highest-loss samples, each tile showing the image and its
//!   `predicted / actual` class names, loss, p(predicted), p(actual) and id.
//! - [`plot`]: per-epoch train and test cross-entropy and test accuracy.
//! - [`confusion`]: a confusion-matrix heat map with counts in the cells.
//! - [`html`]: the self-contained HTML report page and its image sprite sheets.
//! - [`compare`]: test accuracy and test cross-entropy of several configurations over seeds,
//!   with a mean ± sd band per configuration.
//!
//! Text is drawn with DejaVu Sans, which is embedded in the binary, so no system font is
//! needed. Every PNG is written atomically: encoded into a temporary file in the target folder,
//! then renamed.
//!
//! ```
//! use toploss_report::{Tile, TileImage, render_grid};
//!
//! let pixels = vec![0u8; 28 * 28]; // one black 28 x 28 grayscale image
//! let tile = Tile {
//!     id: 12345,
//!     image: TileImage { pixels: &pixels, channels: 1, height: 28, width: 28 },
//!     predicted: "7",
//!     actual: "1",
//!     loss: 4.21,
//!     p_predicted: 0.98,
//!     p_actual: 0.01,
//! };
//! let grid = render_grid(&[tile], Some("top 1 loss · train · epoch 3/5"))?;
//! // One tile of 152 x 230 px below a 36 px title line.
//! assert_eq!(grid.dimensions(), (152, 36 + 230));
//! # Ok::<(), toploss_report::Error>(())
//! ```

#![deny(missing_docs)]

pub mod compare;
pub mod confusion;
mod error;
mod font;
pub mod grid;
pub mod html;
pub mod plot;
mod plot_text;
mod png;
mod text;

pub use compare::{ConfigSeries, RunPoint, Spread, spread, write_compare_png};
pub use confusion::{render_confusion, write_confusion_png};
pub use error::Error;
pub use grid::{
    GridGeometry, Tile, TileImage, grid_geometry, grid_layout, render_grid, write_grid_png,
};
pub use html::{Sprites, render_report_html, sprite_sheets, write_report_html};
pub use plot::{CURVES_HEIGHT, CURVES_WIDTH, EpochPoint, write_curves_png};
