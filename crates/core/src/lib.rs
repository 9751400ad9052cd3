//! Scores and rankings on plain arrays: per-sample loss, margins, top-k, confident learning,
//! AUM, dataset cartography and the confusion matrix.
//!
//! Nothing here depends on a deep-learning engine. Every function works on plain slices:
//!
//! - `N` samples and `K` classes;
//! - logits or probabilities as one row-major slice of length `N * K` (row `i` is sample `i`);
//! - given labels as `&[u32]` of length `N`, each below `K`;
//! - a sample's id is its row index.
//!
//! # Precision
//!
//! Inputs may be `f32` or `f64` (any [`Real`]). Every computation widens the values to `f64`
//! and returns `f64`, so `f32` inputs lose nothing. [`rank`] reads the losses in place and
//! never copies them. Confident learning on `f64` input reproduces cleanlab 2.9.0's
//! results; [`confident`] documents where exactly equal scores may be ordered differently.
//!
//! # Example
//!
//! ```
//! use toploss_core::rank::{top_k, Order};
//!
//! // Per-sample losses of five samples: a NaN, an infinity and three finite values.
//! let losses = [0.3_f32, f32::NAN, 2.5, f32::INFINITY, 2.5];
//! let top = top_k(&losses, 4, Order::Largest)?;
//!
//! // NaN first, then +inf, then descending loss with ties broken by the lower id.
//! assert_eq!(top.ids, vec![1, 3, 2, 4]);
//! assert_eq!(top.nan_count, 1);
//! assert_eq!(top.inf_count, 1);
//! assert!(!top.clamped);
//! # Ok::<(), toploss_core::Error>(())
//! ```
#![deny(missing_docs)]

mod check;
pub mod confident;
pub mod confusion;
pub mod dynamics;
mod error;
pub mod loss;
mod numpy;
pub mod rank;
pub mod scores;

pub use error::Error;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A floating-point element type accepted by the scorers: `f32` or `f64`.
///
/// The trait is sealed. Scorers widen every value with [`Real::to_f64`] and compute in `f64`.
pub trait Real: Copy + PartialOrd + Send + Sync + private::Sealed + 'static {
    /// Widens the value to `f64` (exact for `f32`).
    fn to_f64(self) -> f64;
}

impl Real for f32 {
    #[inline]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Real for f64 {
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
}

mod private {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}
