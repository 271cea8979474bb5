//! Randomness and the few transcendental functions the model needs, written so that the same
//! seed gives the same bits on every machine.
//!
//! - The generator is xoshiro256++ (Blackman & Vigna), seeded through SplitMix64, written out
//!   here (20 lines) rather than taken from a crate, so that no dependency upgrade can change
//!   a data set; the tests check it against `rand_xoshiro`'s.
//! - `exp`, `ln` and `cos` are computed with `+ − × ÷` only (IEEE 754 makes those
//!   bit-identical everywhere), not with the platform's libm, whose last bits differ between
//!   glibc, musl and macOS.

/// SplitMix64: the seeding generator recommended by xoshiro's authors.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// Starts at `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// xoshiro256++ with the helpers the model draws with.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose state is four SplitMix64 outputs from `seed` (as `rand_xoshiro`'s
    /// `seed_from_u64` does).
    pub fn seed_from_u64(seed: u64) -> Self {
        let mut sm = SplitMix64::new(seed);
        Rng {
            s: [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()],
        }
    }

    /// The stream of one car: independent of every other car's and of how ticks are batched.
    pub fn for_stream(seed: u64, stream: u64) -> Self {
        let mut sm = SplitMix64::new(seed);
        let a = sm.next_u64();
        Rng::seed_from_u64(a ^ stream.wrapping_mul(0xd1b5_4a32_d192_ed03))
    }

    /// The next 64 bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    #[inline]
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Uniform integer in `[0, n)` (`n` > 0; multiply-shift, bias below 2⁻³²).
    #[inline]
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
    }

    /// Uniform integer in `[lo, hi]`.
    #[inline]
    pub fn int(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p`.
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Roughly standard normal (mean 0, variance 1): a scaled sum of four 16-bit uniforms
    /// (Irwin–Hall), one draw, bounded by ±3.46 — noise, not statistics.
    #[inline]
    pub fn noise(&mut self) -> f64 {
        let x = self.next_u64();
        let sum = (x & 0xffff) + ((x >> 16) & 0xffff) + ((x >> 32) & 0xffff) + (x >> 48);
        (sum as f64 / 65536.0 - 2.0) * 1.732_050_807_568_877_2
    }

    /// Exponentially distributed with this mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * ln(1.0 - self.f64())
    }

    /// Failures before the first success of a Bernoulli(`p`) trial (geometric).
    pub fn geometric(&mut self, p: f64) -> u64 {
        if p >= 1.0 {
            return 0;
        }
        if p <= 0.0 {
            return u64::MAX;
        }
        let u = 1.0 - self.f64(); // (0, 1]
        let g = ln(u) / ln(1.0 - p);
        if g >= 1.8e19 { u64::MAX } else { g as u64 }
    }
}

const LN2: f64 = std::f64::consts::LN_2;

/// `e^x` from `+ − × ÷` only (relative error ≈ 1e-15 on the range the model uses).
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 700.0 {
        return f64::INFINITY;
    }
    if x < -700.0 {
        return 0.0;
    }
    let k = (x / LN2).round();
    let r = x - k * LN2;
    // Taylor series of e^r for |r| ≤ ln2 / 2.
    let mut term = 1.0;
    let mut sum = 1.0;
    for i in 1..18 {
        term *= r / i as f64;
        sum += term;
    }
    sum * f64::from_bits(((k as i64 + 1023) as u64) << 52)
}

/// Natural logarithm from `+ − × ÷` only (`x` > 0; relative error ≈ 1e-15).
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    let mut x = x;
    let mut e = 0i64;
    if x < f64::MIN_POSITIVE {
        x *= (1u64 << 54) as f64;
        e -= 54;
    }
    let bits = x.to_bits();
    e += ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000); // [1, 2)
    if m > std::f64::consts::SQRT_2 {
        m /= 2.0;
        e += 1;
    }
    // ln m = 2 atanh z, z = (m-1)/(m+1), |z| ≤ 0.172.
    let z = (m - 1.0) / (m + 1.0);
    let z2 = z * z;
    let mut term = z;
    let mut sum = 0.0;
    for i in 0..20 {
        sum += term / (2 * i + 1) as f64;
        term *= z2;
    }
    2.0 * sum + e as f64 * LN2
}

/// `cos x` from `+ − × ÷` only, for |x| ≤ π (latitudes in radians; error ≈ 1e-16).
pub fn cos(x: f64) -> f64 {
    let x2 = x * x;
    let mut term = 1.0;
    let mut sum = 1.0;
    for i in 1..14 {
        term *= -x2 / ((2 * i - 1) * (2 * i)) as f64;
        sum += term;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro_matches_the_reference_implementation() {
        use rand_xoshiro::Xoshiro256PlusPlus;
        use rand_xoshiro::rand_core::{Rng as _, SeedableRng};
        for seed in [0u64, 1, 42, u64::MAX] {
            let mut ours = Rng::seed_from_u64(seed);
            let mut theirs = Xoshiro256PlusPlus::seed_from_u64(seed);
            for _ in 0..1000 {
                assert_eq!(ours.next_u64(), theirs.next_u64());
            }
        }
    }

    #[test]
    fn functions_agree_with_libm() {
        for i in 0..2000 {
            let x = -30.0 + i as f64 * 0.03;
            let (a, b) = (exp(x), x.exp());
            assert!(((a - b) / b).abs() < 1e-13, "exp({x}) {a} {b}");
        }
        for i in 1..4000 {
            let x = i as f64 * 0.000_37 + (i as f64).powi(3) * 1e-6;
            let (a, b) = (ln(x), x.ln());
            assert!((a - b).abs() < 1e-13 * b.abs().max(1.0), "ln({x}) {a} {b}");
        }
        assert!(ln(1e-310).is_finite());
        for i in 0..1000 {
            let x = -3.1 + i as f64 * 0.0062;
            assert!((cos(x) - x.cos()).abs() < 1e-13, "cos({x})");
        }
    }

    #[test]
    fn helpers_stay_in_range() {
        let mut r = Rng::seed_from_u64(7);
        let (mut lo, mut hi, mut sum) = (f64::MAX, f64::MIN, 0.0);
        for _ in 0..100_000 {
            let n = r.noise();
            lo = lo.min(n);
            hi = hi.max(n);
            sum += n * n;
            assert!(r.f64() < 1.0);
            assert!(r.below(10) < 10);
            let i = r.int(3, 5);
            assert!((3..=5).contains(&i));
        }
        assert!(lo > -3.5 && hi < 3.5);
        assert!(
            (sum / 100_000.0 - 1.0).abs() < 0.03,
            "variance {}",
            sum / 1e5
        );
        let mean: f64 = (0..100_000).map(|_| r.exp(2.0)).sum::<f64>() / 1e5;
        assert!((mean - 2.0).abs() < 0.05, "{mean}");
        let g: f64 = (0..100_000).map(|_| r.geometric(0.1) as f64).sum::<f64>() / 1e5;
        assert!((g - 9.0).abs() < 0.2, "{g}");
    }
}
