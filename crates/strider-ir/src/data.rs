//! Initializer data: how a model file describes a constant tensor ([`DataSpec`]) and the data it
//! produces. Numbers written in the model text must be finite f32s; generated data is checked to be.

use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

use crate::shape::Shape;
use crate::{alloc, npy, seeded};

/// Where an initializer's numbers come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DataSpec {
    /// Listed in row-major order.
    Inline(Vec<f32>),
    /// A little-endian f32 `.npy` file, relative to the model file.
    Npy(String),
    /// Uniform in [low, high), from a value-stable generator.
    Uniform {
        /// Generator seed.
        seed: u64,
        /// Lower bound.
        low: f32,
        /// Upper bound (exclusive).
        high: f32,
    },
    /// Normal(mean, std), from a value-stable generator.
    Normal {
        /// Generator seed.
        seed: u64,
        /// Mean.
        #[serde(default, skip_serializing_if = "is_zero")]
        mean: f32,
        /// Standard deviation.
        std: f32,
    },
    /// Every element the same.
    Fill(f32),
    /// FCN's bilinear upsampling kernel for a (C, M/group, k…) weight: the separable bilinear filter on
    /// each channel pair i = j (every pair when M/group = 1), zero elsewhere.
    Bilinear,
}

impl DataSpec {
    /// Whether the data comes from a generator (`Uniform`, `Normal`, `Fill`, `Bilinear`): such data is
    /// produced on first use, so commands that need only shapes (`info`) never allocate it.
    pub fn is_generator(&self) -> bool {
        !matches!(self, DataSpec::Inline(_) | DataSpec::Npy(_))
    }

    /// Whether the data is produced on first use rather than when the model is loaded: generators,
    /// and `.npy` files (whose header and length are checked at load, the data read on first use).
    pub fn is_deferred(&self) -> bool {
        !matches!(self, DataSpec::Inline(_))
    }

    /// Produces the data for a tensor of `shape` (whose element count the caller has checked);
    /// relative `.npy` paths resolve against `base_dir`.
    /// Memory is reserved fallibly: a size the system refuses is an error.
    pub fn materialize(&self, shape: &[usize], base_dir: &Path) -> Result<ArrayD<f32>, String> {
        self.check(shape)?;
        match self {
            DataSpec::Inline(v) => {
                let data = alloc::try_collect(v.len(), v.iter().copied()).map_err(|e| e.to_string())?;
                ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| e.to_string())
            }
            DataSpec::Npy(file) => npy::read_f32(&base_dir.join(file), shape),
            _ => self.generate(shape).map_err(|e| e.to_string()),
        }
    }

    /// Checks what can be checked at load without reading or producing the data: [`DataSpec::check`],
    /// and for a `.npy` file its header (shape, element type) and its length.
    pub fn check_source(&self, shape: &[usize], base_dir: &Path) -> Result<(), String> {
        self.check(shape)?;
        match self {
            DataSpec::Npy(file) => npy::check_f32(&base_dir.join(file), shape),
            _ => Ok(()),
        }
    }

    /// Checks what can be checked without producing the data: an inline list's length, and that
    /// numbers written in the model text are finite f32s (RON reads `1e400` as infinity, which would
    /// otherwise slip silently into the weights; NaN or infinities belong in a `.npy` file) and that
    /// generators stay within f32. A generator that passes cannot fail when its data is produced.
    pub fn check(&self, shape: &[usize]) -> Result<(), String> {
        let finite = |what: &str, v: f32| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(format!(
                    "{what} is {v}: numbers in the model text must be finite and fit in f32 (|v| ≤ {:e}); \
                     NaN or infinities can be stored in a .npy file",
                    f32::MAX
                ))
            }
        };
        let within = |reach: f64| {
            if reach <= f32::MAX as f64 {
                Ok(())
            } else {
                Err(format!("the generated values would overflow f32 (they reach {reach:.3e}); choose a smaller range"))
            }
        };
        match self {
            DataSpec::Inline(values) => {
                let n = Shape(shape.to_vec()).numel();
                if values.len() != n {
                    return Err(format!("lists {} values, but shape {shape:?} holds {n}", values.len()));
                }
                values.iter().enumerate().try_for_each(|(i, &v)| finite(&format!("value {i} of Inline"), v))
            }
            DataSpec::Uniform { low, high, .. } => {
                finite("low", *low)?;
                finite("high", *high)?;
                within((*high as f64 - *low as f64).abs())
            }
            DataSpec::Normal { mean, std, .. } => {
                finite("mean", *mean)?;
                finite("std", *std)?;
                // Box–Muller with u1 ≥ 2⁻⁵³ gives |z| ≤ √(106 ln 2) < 8.6.
                within((*mean as f64).abs() + 8.6 * (*std as f64).abs())
            }
            DataSpec::Fill(v) => finite("the Fill value", *v),
            DataSpec::Bilinear if shape.len() < 3 => {
                Err(format!("Bilinear needs a (C, M/group, k…) weight shape, found {shape:?}"))
            }
            DataSpec::Npy(_) | DataSpec::Bilinear => Ok(()),
        }
    }

    /// A generator's data for `shape`, which [`DataSpec::check`] accepted, in memory reserved
    /// fallibly (`Inline` and `Npy` data is given, not generated: they give zeros here).
    fn generate(&self, shape: &[usize]) -> Result<ArrayD<f32>, alloc::OutOfMemory> {
        match self {
            DataSpec::Uniform { seed, low, high } => {
                alloc::try_array(shape, seeded::uniform_values(*seed, *low, *high))
            }
            DataSpec::Normal { seed, mean, std } => alloc::try_array(shape, seeded::normal_values(*seed, *mean, *std)),
            DataSpec::Fill(v) => alloc::try_array(shape, std::iter::repeat(*v)),
            DataSpec::Bilinear => bilinear(shape),
            DataSpec::Inline(_) | DataSpec::Npy(_) => alloc::try_array(shape, std::iter::empty()),
        }
    }
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

/// FCN's bilinear kernel; `shape` has rank 3 or more ([`DataSpec::check`]).
fn bilinear(shape: &[usize]) -> Result<ArrayD<f32>, alloc::OutOfMemory> {
    let taps: Vec<Vec<f32>> = shape.iter().skip(2).map(|&k| seeded::bilinear_1d(k)).collect();
    let value = |ix: ndarray::IxDyn| {
        if ix[0] == ix[1] || shape[1] == 1 { taps.iter().enumerate().map(|(a, t)| t[ix[2 + a]]).product() } else { 0.0 }
    };
    alloc::try_array(shape, ndarray::indices(IxDyn(shape)).into_iter().map(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_weight_is_diagonal() {
        let w = bilinear(&[2, 2, 4]).unwrap();
        assert_eq!(
            w.as_slice().unwrap(),
            &[0.25, 0.75, 0.75, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.25, 0.75, 0.75, 0.25]
        );
    }

    #[test]
    fn numbers_that_overflow_f32_are_refused() {
        let here = Path::new(".");
        let err = DataSpec::Inline(vec![1.0, f32::INFINITY]).materialize(&[2], here).unwrap_err();
        assert!(err.contains("value 1 of Inline is inf: numbers in the model text must be finite"), "{err}");
        let err = DataSpec::Fill(f32::NAN).materialize(&[2], here).unwrap_err();
        assert!(err.contains("the Fill value is NaN"), "{err}");
        let err = DataSpec::Uniform { seed: 0, low: -3e38, high: 3e38 }.materialize(&[64], here).unwrap_err();
        assert!(err.contains("the generated values would overflow f32 (they reach 6.000e38)"), "{err}");
        let err = DataSpec::Normal { seed: 0, mean: 0.0, std: 1e38 }.materialize(&[2], here).unwrap_err();
        assert!(err.contains("the generated values would overflow f32"), "{err}");
        let err = DataSpec::Bilinear.materialize(&[2, 2], here).unwrap_err();
        assert!(err.contains("Bilinear needs a (C, M/group, k…) weight shape, found [2, 2]"), "{err}");
        let err = DataSpec::Normal { seed: 0, mean: 0.0, std: f32::INFINITY }.materialize(&[2], here).unwrap_err();
        assert!(err.contains("std is inf"), "{err}");
        assert_eq!(DataSpec::Inline(vec![f32::MAX, -f32::MAX]).materialize(&[2], here).unwrap().len(), 2);
    }
}
