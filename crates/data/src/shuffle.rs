//! Seeded shuffling of training ids.

/// A small seeded generator (SplitMix64) for the per-epoch shuffle, fold assignment and
/// synthetic label noise.
///
/// Kept in-crate so that the order of samples, and with it every recorded loss, does not
/// change when a dependency's random number generator changes its algorithm.
#[derive(Debug, Clone)]
pub struct Shuffler {
    state: u64,
}

impl Shuffler {
    /// Starts the sequence for `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// Next 64 random bits (SplitMix64, Steele, Lea and Flood, OOPSLA 2014).
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform integer in `0..bound` by Lemire's multiply-shift (bias below 2^-32 for the
    /// sizes of image datasets).
    pub fn below(&mut self, bound: usize) -> usize {
        ((u128::from(self.next_u64()) * bound as u128) >> 64) as usize
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_reproducible_permutation() {
        let mut a: Vec<u32> = (0..1000).collect();
        let mut b = a.clone();
        Shuffler::new(7).shuffle(&mut a);
        Shuffler::new(7).shuffle(&mut b);
        assert_eq!(a, b);
        assert_ne!(a, (0..1000).collect::<Vec<_>>());
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn shuffle_differs_by_seed() {
        let mut a: Vec<u32> = (0..100).collect();
        let mut b = a.clone();
        Shuffler::new(1).shuffle(&mut a);
        Shuffler::new(2).shuffle(&mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn splitmix_reference_value() {
        // First output of SplitMix64 seeded with 0, as in the reference C implementation
        // (Vigna, prng.di.unimi.it/splitmix64.c): 0xE220A8397B1DCDAF.
        assert_eq!(Shuffler::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }
}
