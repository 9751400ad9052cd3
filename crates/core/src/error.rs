//! The error type of `toploss-core`.

/// Errors returned by the scorers and rankings.
///
/// Every message names the offending value and states how to fix the input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An array has the wrong number of values for the given `N` and `K`.
    #[error(
        "`{name}` has {len} values, but {expected} were expected ({shape}); check the array's shape"
    )]
    LengthMismatch {
        /// Name of the argument.
        name: &'static str,
        /// Number of values passed.
        len: usize,
        /// Number of values expected.
        expected: usize,
        /// The shape that the expected length comes from, e.g. `N x K = 4 x 3`.
        shape: String,
    },

    /// Fewer classes than the method needs.
    #[error(
        "{method} needs at least {needed} classes, but num_classes is {num_classes}; pass the class count K of the model's output"
    )]
    TooFewClasses {
        /// The method that was called.
        method: &'static str,
        /// The class count passed.
        num_classes: usize,
        /// The minimum class count.
        needed: usize,
    },

    /// A label is not below `K`.
    #[error(
        "{kind} {label} of sample {id} is out of range for {num_classes} classes; labels must lie in 0..{num_classes} (is the class count right?)"
    )]
    LabelOutOfRange {
        /// `given label` or `predicted label`.
        kind: &'static str,
        /// Sample id (row index).
        id: usize,
        /// The label found.
        label: u32,
        /// The class count `K`.
        num_classes: usize,
    },

    /// A probability is NaN, infinite, negative or above 1.
    #[error(
        "probability of class {class} for sample {id} is {value}, but probabilities must be finite and lie in [0, 1] (tolerance {tolerance:e}); pass softmax outputs, not logits"
    )]
    InvalidProbability {
        /// Sample id (row index).
        id: usize,
        /// Class index (column).
        class: usize,
        /// The value found.
        value: f64,
        /// How far outside [0, 1] a value may lie.
        tolerance: f64,
    },

    /// A row of probabilities does not sum to 1.
    #[error(
        "probabilities of sample {id} sum to {sum}, not 1 (tolerance {tolerance:e}); pass one softmax distribution per sample. Multi-label (one sigmoid per class) probabilities are not supported"
    )]
    RowSumNotOne {
        /// Sample id (row index).
        id: usize,
        /// The row sum found.
        sum: f64,
        /// Allowed absolute deviation from 1.
        tolerance: f64,
    },

    /// `k = 0` was requested from a top-k ranking.
    #[error(
        "k must be at least 1, but k is 0; pass k >= 1 (a k larger than the number of samples returns them all)"
    )]
    ZeroK,

    /// The method needs at least one sample.
    #[error("{method} needs at least one sample, but the input is empty")]
    NoSamples {
        /// The method that was called.
        method: &'static str,
    },

    /// Every given label is the same class.
    #[error(
        "every given label is class {class}, but confident learning needs at least two distinct given labels"
    )]
    SingleGivenClass {
        /// The only class present.
        class: u32,
    },

    /// No epochs were passed to a training-dynamics method.
    #[error("{method} needs at least one epoch of recorded dynamics, but none were passed")]
    NoEpochs {
        /// The method that was called.
        method: &'static str,
    },

    /// A parameter is outside its allowed range.
    #[error("{name} is {value}, but it must be {allowed}")]
    InvalidParameter {
        /// Name of the parameter.
        name: &'static str,
        /// The value passed, formatted.
        value: String,
        /// The allowed range, in words.
        allowed: &'static str,
    },
}
