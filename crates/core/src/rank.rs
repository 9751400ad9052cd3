//! Top-k of per-sample losses with toploss's pinned ordering.
//!
//! [`Order::Largest`] (the default view): NaN losses first, then `+inf`, then descending loss,
//! then `-inf`. [`Order::Smallest`] (`--smallest`): NaN losses first, then `-inf`, then
//! ascending loss, then `+inf`. NaN leads in both orders because a NaN loss always needs a
//! look. In both orders equal losses rank by lower id, and `-0.0` equals `0.0`.
//!
//! The selection never sorts all `N` losses: each parallel chunk keeps a buffer of at most
//! `2k` candidates, partitions it with `select_nth_unstable` whenever it fills, and then skips
//! every loss that ranks behind the current k-th candidate. That is `O(N)` for any input order
//! and `k` much smaller than `N`. Only the final `k` winners are sorted.

use rayon::prelude::*;

use crate::{Error, Real, Result};

/// Chunk length for the parallel scan. Large enough that the per-chunk candidate buffers
/// stay small against the scan itself.
const CHUNK_LEN: usize = 1 << 20;

/// Direction of a ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Highest loss first (after NaN and `+inf`).
    #[default]
    Largest,
    /// Lowest loss first (after NaN and `-inf`).
    Smallest,
}

/// The ranked ids returned by [`top_k`] and its variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopK {
    /// Sample ids (indices into the losses), best-ranked first.
    pub ids: Vec<usize>,
    /// How many of `ids` have a NaN loss. They come first.
    pub nan_count: usize,
    /// How many of `ids` have an infinite loss (either sign).
    pub inf_count: usize,
    /// The `k` that was requested.
    pub requested: usize,
    /// How many samples were eligible (all `N`, or those passing the filter).
    pub available: usize,
    /// Whether `k` exceeded `available`, so that `ids` contains every eligible sample.
    pub clamped: bool,
}

/// Returns the ids of the `k` highest (or lowest) losses in the pinned ordering.
///
/// # Shapes
/// `losses`: `N`, one per sample, indexed by id.
///
/// # Errors
/// [`Error::ZeroK`] if `k` is 0. A `k` larger than `N` is not an error: all `N` ids come back
/// and [`TopK::clamped`] is set.
///
/// # Example
/// ```
/// use toploss_core::rank::{top_k, Order};
/// let top = top_k(&[0.5_f64, 2.0, 1.0], 2, Order::Smallest)?;
/// assert_eq!(top.ids, vec![0, 2]);
/// # Ok::<(), toploss_core::Error>(())
/// ```
pub fn top_k<T: Real>(losses: &[T], k: usize, order: Order) -> Result<TopK> {
    top_k_where(losses, k, order, |_| true)
}

/// Like [`top_k`], but only among ids whose given label is `class`.
///
/// # Shapes
/// `losses` and `labels`: `N` each.
///
/// # Errors
/// As [`top_k`], plus [`Error::LengthMismatch`] if the two lengths differ.
pub fn top_k_in_class<T: Real>(
    losses: &[T],
    labels: &[u32],
    class: u32,
    k: usize,
    order: Order,
) -> Result<TopK> {
    crate::check::same_len("labels", labels.len(), "losses", losses.len())?;
    top_k_where(losses, k, order, |id| labels[id] == class)
}

/// Like [`top_k`], but only among ids for which `keep(id)` is true (for example a mask, or a
/// class filter). `keep` is called once per id, from several threads.
///
/// # Errors
/// As [`top_k`]. A `k` larger than the number of kept ids returns them all and sets
/// [`TopK::clamped`].
pub fn top_k_where<T, F>(losses: &[T], k: usize, order: Order, keep: F) -> Result<TopK>
where
    T: Real,
    F: Fn(usize) -> bool + Sync,
{
    if k == 0 {
        return Err(Error::ZeroK);
    }

    // Each chunk returns its own best k candidates and its count of kept ids.
    let (mut candidates, available) = losses
        .par_chunks(CHUNK_LEN)
        .enumerate()
        .map(|(chunk, values)| best_in_chunk(values, chunk * CHUNK_LEN, k, order, &keep))
        .reduce(
            || (Vec::new(), 0),
            |(mut a, count_a), (b, count_b)| {
                a.extend(b);
                (a, count_a + count_b)
            },
        );

    // Merge: keep the overall best k, then sort only those.
    if candidates.len() > k {
        candidates.select_nth_unstable(k - 1);
        candidates.truncate(k);
    }
    candidates.par_sort_unstable();
    let ids: Vec<usize> = candidates.into_iter().map(|(_, id)| id).collect();

    let nan_count = ids
        .iter()
        .filter(|&&id| losses[id].to_f64().is_nan())
        .count();
    let inf_count = ids
        .iter()
        .filter(|&&id| losses[id].to_f64().is_infinite())
        .count();
    let clamped = k > available;
    if clamped {
        tracing::debug!(
            requested = k,
            available,
            "top-k clamped to every eligible sample"
        );
    }
    Ok(TopK {
        ids,
        nan_count,
        inf_count,
        requested: k,
        available,
        clamped,
    })
}

/// Returns the rank key of one loss: smaller keys rank first. NaN maps to 0, and every other
/// value to a key above 0 that follows the requested order.
#[inline]
fn rank_key(loss: f64, order: Order) -> u64 {
    if loss.is_nan() {
        return 0;
    }
    // Map -0.0 to 0.0 so that both tie and fall back to the id.
    let loss = if loss == 0.0 { 0.0 } else { loss };

    // Standard order-preserving map of IEEE-754 bits onto u64: ascending floats give
    // ascending integers. -inf maps to 0x000F_FFFF_FFFF_FFFF, +inf to 0xFFF0_0000_0000_0000,
    // so neither order produces 0.
    let bits = loss.to_bits();
    let ascending = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    match order {
        Order::Smallest => ascending,
        Order::Largest => u64::MAX - ascending,
    }
}

/// Returns the best `k` `(key, id)` pairs of one chunk, unsorted, and the number of kept ids.
fn best_in_chunk<T: Real>(
    values: &[T],
    first_id: usize,
    k: usize,
    order: Order,
    keep: &(impl Fn(usize) -> bool + Sync),
) -> (Vec<(u64, usize)>, usize) {
    let capacity = k.saturating_mul(2).min(values.len()).max(1);
    let mut buffer: Vec<(u64, usize)> = Vec::with_capacity(capacity);
    let mut kept = 0;

    // Key of the current k-th best candidate. Ids grow within the chunk, so a later loss with
    // an equal key ranks behind it and can be skipped too.
    let mut cutoff = u64::MAX;
    let mut have_cutoff = false;

    for (offset, value) in values.iter().enumerate() {
        let id = first_id + offset;
        if !keep(id) {
            continue;
        }
        kept += 1;
        let key = rank_key(value.to_f64(), order);
        if have_cutoff && key >= cutoff {
            continue;
        }
        buffer.push((key, id));

        // When the buffer is full, keep the best k and tighten the cutoff.
        if buffer.len() >= 2 * k {
            buffer.select_nth_unstable(k - 1);
            buffer.truncate(k);
            cutoff = buffer[k - 1].0;
            have_cutoff = true;
        }
    }

    if buffer.len() > k {
        buffer.select_nth_unstable(k - 1);
        buffer.truncate(k);
    }
    (buffer, kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference ranking: a full sort with the pinned comparison.
    fn sorted_reference(losses: &[f32], order: Order) -> Vec<usize> {
        let class = |x: f32| u8::from(!x.is_nan());
        let mut ids: Vec<usize> = (0..losses.len()).collect();
        ids.sort_by(|&a, &b| {
            let (x, y) = (losses[a], losses[b]);
            class(x).cmp(&class(y)).then_with(|| {
                if x.is_nan() {
                    return std::cmp::Ordering::Equal;
                }
                let by_value = x.partial_cmp(&y).unwrap();
                match order {
                    Order::Largest => by_value.reverse(),
                    Order::Smallest => by_value,
                }
            })
        });
        ids
    }

    /// Deterministic pseudo-random losses with many ties, NaNs and infinities.
    fn noisy_losses(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                // xorshift64
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                match state % 50 {
                    0 => f32::NAN,
                    1 => f32::INFINITY,
                    2 => f32::NEG_INFINITY,
                    3 => -0.0,
                    _ => (state % 1000) as f32 / 100.0,
                }
            })
            .collect()
    }

    #[test]
    fn largest_pins_nan_inf_ties() {
        // ids:     0    1    2    3     4    5
        // losses: 1.0  NaN  3.0  +inf  3.0  NaN
        // NaN ids 1, 5; then +inf id 3; then 3.0 at ids 2, 4 (lower id first); then 1.0.
        let losses = [1.0_f32, f32::NAN, 3.0, f32::INFINITY, 3.0, f32::NAN];
        let top = top_k(&losses, 6, Order::Largest).unwrap();
        assert_eq!(top.ids, vec![1, 5, 3, 2, 4, 0]);
        assert_eq!(top.nan_count, 2);
        assert_eq!(top.inf_count, 1);
        assert!(!top.clamped);
    }

    #[test]
    fn smallest_puts_nan_then_neg_inf() {
        // ascending: NaN (id 2), -inf (id 3), 0.0 and -0.0 tie (ids 0, 4), 5.0, +inf.
        let losses = [
            0.0_f64,
            5.0,
            f64::NAN,
            f64::NEG_INFINITY,
            -0.0,
            f64::INFINITY,
        ];
        let top = top_k(&losses, 6, Order::Smallest).unwrap();
        assert_eq!(top.ids, vec![2, 3, 0, 4, 1, 5]);
        assert_eq!(top.nan_count, 1);
        assert_eq!(top.inf_count, 2);
    }

    #[test]
    fn zero_k_is_error() {
        assert_eq!(top_k(&[1.0_f32], 0, Order::Largest), Err(Error::ZeroK));
    }

    #[test]
    fn k_above_n_is_clamped() {
        let top = top_k(&[1.0_f32, 2.0], 5, Order::Largest).unwrap();
        assert_eq!(top.ids, vec![1, 0]);
        assert!(top.clamped);
        assert_eq!((top.requested, top.available), (5, 2));
    }

    #[test]
    fn empty_losses_clamped_to_nothing() {
        let top = top_k::<f32>(&[], 3, Order::Largest).unwrap();
        assert!(top.ids.is_empty());
        assert!(top.clamped);
    }

    #[test]
    fn in_class_filters_ids() {
        // Only ids 1 and 3 have label 2; their losses 0.5 and 0.9 rank 3 before 1.
        let losses = [9.0_f32, 0.5, 8.0, 0.9];
        let labels = [0, 2, 1, 2];
        let top = top_k_in_class(&losses, &labels, 2, 1, Order::Largest).unwrap();
        assert_eq!(top.ids, vec![3]);
        assert_eq!(top.available, 2);
        let all = top_k_in_class(&losses, &labels, 2, 10, Order::Largest).unwrap();
        assert_eq!(all.ids, vec![3, 1]);
        assert!(all.clamped);
    }

    #[test]
    fn in_class_rejects_length_mismatch() {
        let err = top_k_in_class(&[1.0_f32, 2.0], &[0], 0, 1, Order::Largest).unwrap_err();
        assert!(matches!(err, Error::LengthMismatch { .. }), "{err}");
    }

    #[test]
    fn matches_full_sort_on_noisy_data() {
        // Several chunks (CHUNK_LEN = 2^20), many ties, and k below, near and above the buffer.
        let losses = noisy_losses(2_500_000, 42);
        for order in [Order::Largest, Order::Smallest] {
            let reference = sorted_reference(&losses, order);
            for k in [1, 7, 1000, 100_000] {
                let top = top_k(&losses, k, order).unwrap();
                assert_eq!(top.ids, reference[..k], "order {order:?}, k {k}");
            }
        }
    }

    #[test]
    fn matches_full_sort_on_ascending_input() {
        // Ascending input is the worst case for a threshold scan: every loss beats the cutoff.
        let losses: Vec<f32> = (0..300_000).map(|i| i as f32).collect();
        let top = top_k(&losses, 100, Order::Largest).unwrap();
        let expected: Vec<usize> = (299_900..300_000).rev().collect();
        assert_eq!(top.ids, expected);
    }

    #[test]
    #[ignore = "timing check on 100 million losses (400 MB); run with --ignored --release"]
    fn hundred_million_under_two_seconds() {
        let losses = noisy_losses(100_000_000, 7);
        let start = std::time::Instant::now();
        let top = top_k(&losses, 100, Order::Largest).unwrap();
        let elapsed = start.elapsed();
        eprintln!("top-100 of 100 million f32 losses: {elapsed:?}");
        assert_eq!(top.ids.len(), 100);
        assert!(elapsed.as_secs_f64() < 2.0, "took {elapsed:?}");
    }
}
