//! Value-stable pseudo-random data: the same seed gives the same numbers on every machine and in every
//! version of Strider. ChaCha8 is documented value-stable by rand_chacha; the float conversions below are
//! fixed here, and uniform values use only exact arithmetic.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

/// `n` values uniform in [low, high).
pub fn uniform(seed: u64, n: usize, low: f32, high: f32) -> Vec<f32> {
    uniform_values(seed, low, high).take(n).collect()
}

/// The endless sequence [`uniform`] takes its values from (for callers that reserve memory first).
pub fn uniform_values(seed: u64, low: f32, high: f32) -> impl Iterator<Item = f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    std::iter::repeat_with(move || low + (high - low) * unit_f32(&mut rng))
}

/// `n` values from a normal distribution (Box–Muller in f64, rounded to f32).
pub fn normal(seed: u64, n: usize, mean: f32, std: f32) -> Vec<f32> {
    normal_values(seed, mean, std).take(n).collect()
}

/// The endless sequence [`normal`] takes its values from (for callers that reserve memory first).
pub fn normal_values(seed: u64, mean: f32, std: f32) -> impl Iterator<Item = f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    std::iter::repeat_with(move || {
        // u1 in (0, 1] keeps ln finite.
        let u1 = ((rng.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64;
        let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        [r * theta.cos(), r * theta.sin()].map(|z| (mean as f64 + std as f64 * z) as f32)
    })
    .flatten()
}

/// A uniform value in [0, 1) with 24 random bits (exact in f32).
fn unit_f32(rng: &mut ChaCha8Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32
}

/// Seed for a graph input: mixes the run's seed with the input's name and shape (FNV-1a), so an input of
/// the same name and shape gets the same values in any graph.
pub fn input_seed(seed: u64, name: &str, shape: &[usize]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes =
        seed.to_le_bytes().into_iter().chain(name.bytes()).chain(shape.iter().flat_map(|d| (*d as u64).to_le_bytes()));
    for b in bytes {
        h = (h ^ b as u64).wrapping_mul(PRIME);
    }
    h
}

/// The bilinear upsampling kernel of FCN (`get_upsampling_weight`) for one spatial axis of size `k`.
pub fn bilinear_1d(k: usize) -> Vec<f32> {
    let factor = k.div_ceil(2) as f64;
    let center = if k % 2 == 1 { factor - 1.0 } else { factor - 0.5 };
    (0..k).map(|i| (1.0 - (i as f64 - center).abs() / factor) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_values() {
        assert_eq!(uniform(7, 5, -1.0, 1.0), uniform(7, 5, -1.0, 1.0));
        assert_ne!(uniform(7, 5, -1.0, 1.0), uniform(8, 5, -1.0, 1.0));
        assert!(uniform(1, 1000, -1.0, 1.0).iter().all(|v| (-1.0..1.0).contains(v)));
    }

    #[test]
    fn normal_has_the_requested_moments() {
        let v = normal(3, 20_000, 1.0, 0.5);
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!((mean - 1.0).abs() < 0.02, "{mean}");
        assert!((var.sqrt() - 0.5).abs() < 0.02, "{var}");
    }

    #[test]
    fn input_seed_depends_on_name_and_shape() {
        assert_eq!(input_seed(0, "x", &[1, 2]), input_seed(0, "x", &[1, 2]));
        assert_ne!(input_seed(0, "x", &[1, 2]), input_seed(0, "x", &[2, 1]));
        assert_ne!(input_seed(0, "x", &[1, 2]), input_seed(0, "y", &[1, 2]));
    }

    #[test]
    fn bilinear_kernel_matches_fcn() {
        // FCN's 4-tap kernel (stride 2): [0.25, 0.75, 0.75, 0.25].
        assert_eq!(bilinear_1d(4), vec![0.25, 0.75, 0.75, 0.25]);
        assert_eq!(bilinear_1d(3), vec![0.5, 1.0, 0.5]);
    }
}
