//! Initializer data: how a model file describes a constant tensor ([`DataSpec`]) and the data it
//! produces. Numbers written in the model text must be finite f32s; generated data is checked to be.

use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

use crate::shape::Shape;
use crate::{npy, seeded};

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
    /// Produces the data for a tensor of `shape` (whose element count the caller has checked);
    /// relative `.npy` paths resolve against `base_dir`.
    pub fn materialize(&self, shape: &[usize], base_dir: &Path) -> Result<ArrayD<f32>, String> {
        let n = Shape(shape.to_vec()).numel();
        self.check_parameters()?;
        let data = match self {
            DataSpec::Inline(v) if v.len() != n => {
                return Err(format!("lists {} values, but shape {shape:?} holds {n}", v.len()));
            }
            DataSpec::Inline(v) => v.clone(),
            DataSpec::Npy(file) => return npy::read_f32(&base_dir.join(file), shape),
            DataSpec::Uniform { seed, low, high } => seeded::uniform(*seed, n, *low, *high),
            DataSpec::Normal { seed, mean, std } => seeded::normal(*seed, n, *mean, *std),
            DataSpec::Fill(v) => vec![*v; n],
            DataSpec::Bilinear => return bilinear(shape),
        };
        if let Some(v) = data.iter().find(|v| !v.is_finite()) {
            return Err(format!("the generated values overflow f32 (found {v}); choose a smaller range"));
        }
        ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| e.to_string())
    }

    /// Numbers written in the model text must be finite f32s: RON reads `1e400` as infinity, which
    /// would otherwise slip silently into the weights. NaN or infinities belong in a `.npy` file.
    fn check_parameters(&self) -> Result<(), String> {
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
        match self {
            DataSpec::Inline(values) => {
                values.iter().enumerate().try_for_each(|(i, &v)| finite(&format!("value {i} of Inline"), v))
            }
            DataSpec::Uniform { low, high, .. } => finite("low", *low).and_then(|()| finite("high", *high)),
            DataSpec::Normal { mean, std, .. } => finite("mean", *mean).and_then(|()| finite("std", *std)),
            DataSpec::Fill(v) => finite("the Fill value", *v),
            DataSpec::Npy(_) | DataSpec::Bilinear => Ok(()),
        }
    }
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

fn bilinear(shape: &[usize]) -> Result<ArrayD<f32>, String> {
    if shape.len() < 3 {
        return Err(format!("Bilinear needs a (C, M/group, k…) weight shape, found {shape:?}"));
    }
    let taps: Vec<Vec<f32>> = shape[2..].iter().map(|&k| seeded::bilinear_1d(k)).collect();
    Ok(ArrayD::from_shape_fn(IxDyn(shape), |ix| {
        if ix[0] == ix[1] || shape[1] == 1 { taps.iter().enumerate().map(|(a, t)| t[ix[2 + a]]).product() } else { 0.0 }
    }))
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
        assert!(err.contains("the generated values overflow f32"), "{err}");
        let err = DataSpec::Normal { seed: 0, mean: 0.0, std: f32::INFINITY }.materialize(&[2], here).unwrap_err();
        assert!(err.contains("std is inf"), "{err}");
        assert_eq!(DataSpec::Inline(vec![f32::MAX, -f32::MAX]).materialize(&[2], here).unwrap().len(), 2);
    }
}
