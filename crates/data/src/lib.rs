//! Dataset readers, fingerprints and correction files for toploss.
//!
//! - [`load`] reads a dataset named by a [`DatasetSpec`] (`FORMAT:PATH`, for example
//!   `mnist:data/mnist`) into a [`Dataset`]: class names, a train and a test [`Split`] with
//!   raw `u8` pixels in `N x C x H x W` order, and a fingerprint of the files.
//! - [`idx`] decodes the IDX files of MNIST and Fashion-MNIST, gzipped or raw.
//! - [`cifar`], [`folder`] and [`csv_images`] read the CIFAR-10 binary batches, ImageFolder
//!   trees of PNG and JPEG files, and CSV files of pixel columns; [`DatasetOptions`] carries
//!   their options inside the spec.
//! - [`fingerprint`] computes the `sha256:...` string that ties a run to its data.
//! - [`fetch`] downloads the published MNIST, Fashion-MNIST and CIFAR-10 files, resumably and
//!   checked against their published MD5.
//! - [`corrections`] reads and writes `corrections.csv`, the keep / relabel / discard
//!   decisions that a retraining run applies by sample id.
//!
//! A sample's id is its 0-based position in the files, so ids are stable across runs.
//!
//! # Example
//!
//! Load the MNIST copy bundled with the repository and look at the first training image:
//!
//! ```
//! use toploss_data::{DatasetSpec, load};
//!
//! let spec: DatasetSpec =
//!     format!("mnist:{}/../../data/mnist", env!("CARGO_MANIFEST_DIR")).parse()?;
//! let data = load(&spec)?;
//!
//! assert_eq!(data.train.len(), 60_000);
//! assert_eq!(data.test.len(), 10_000);
//! assert_eq!(data.classes[7], "7");
//!
//! // One image is C x H x W = 1 x 28 x 28 bytes; sample 0 of MNIST is labelled 5.
//! assert_eq!(data.train.image(0).len(), 28 * 28);
//! assert_eq!(data.train.labels[0], 5);
//! # Ok::<(), toploss_data::Error>(())
//! ```
#![deny(missing_docs)]

pub mod cifar;
pub mod corrections;
pub mod csv_images;
pub mod dataset;
mod error;
pub mod fetch;
pub mod fingerprint;
pub mod folder;
pub mod idx;
pub mod options;

pub use corrections::{Action, Correction, Corrections, read_corrections, write_corrections};
pub use dataset::{Dataset, DatasetFormat, DatasetSpec, ImageShape, Split, load};
pub use error::Error;
pub use folder::{ConvertedFile, LoadReport, SkippedFile};
pub use options::{
    DatasetOptions, GeneratedSplit, ImageShapeOption, ImageSize, LabelColumn, stratified_split,
};
pub mod noise;
pub mod run;
mod shuffle;

pub use noise::{LabelNoise, NoiseError, NoiseKind, inject_label_noise};
pub use shuffle::Shuffler;
