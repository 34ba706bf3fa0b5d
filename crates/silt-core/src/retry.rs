//! Retry timing: capped exponential backoff with full jitter (as the AWS SDKs
//! use), so many workers failing together do not retry together. Pure: the
//! caller supplies the random bits and does the sleeping.

/// How often and how patiently to retry a retryable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Calls in all, the first included.
    pub max_attempts: u32,
    /// Ceiling of the first retry's delay, milliseconds.
    pub base_ms: u64,
    /// Ceiling of any delay, milliseconds.
    pub max_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_ms: 25,
            max_ms: 2_000,
        }
    }
}

impl Backoff {
    /// Delay before retry number `retry` (1 for the first retry): uniform in
    /// `[0, min(max, base * 2^(retry-1))]`, chosen by `random`.
    pub fn delay_ms(&self, retry: u32, random: u64) -> u64 {
        let ceiling = self
            .base_ms
            .saturating_mul(1u64 << retry.saturating_sub(1).min(32))
            .min(self.max_ms);
        random % (ceiling + 1)
    }
}

/// A cheap, non-cryptographic random number for jitter (xorshift64*), seeded
/// by the caller (a counter, the clock): jitter needs spread, not secrecy.
pub fn jitter_random(seed: u64) -> u64 {
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_stay_within_it() {
        let b = Backoff::default();
        for retry in 1..=12 {
            let ceiling = (25u64 << (retry - 1)).min(2_000);
            for seed in 0..200 {
                assert!(b.delay_ms(retry, jitter_random(seed)) <= ceiling);
            }
        }
        // Full jitter reaches both ends of the range.
        let delays: Vec<u64> = (0..2_000)
            .map(|s| b.delay_ms(3, jitter_random(s)))
            .collect();
        assert_eq!(delays.iter().min(), Some(&0));
        assert_eq!(delays.iter().max(), Some(&100));
        assert_eq!(b.delay_ms(1, u64::MAX), u64::MAX % 26);
    }
}
