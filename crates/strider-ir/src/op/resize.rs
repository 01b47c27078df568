//! `Upsample`: ONNX `Upsample` with the modes of ONNX `Resize`. Output size is floor(in · scale) per axis.
//! The defaults (nearest, asymmetric, floor) are exactly ONNX `Upsample`'s semantics.

use serde::{Deserialize, Serialize};

use super::{OpError, OpRule};
use crate::shape::Shape;

/// Interpolation mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMode {
    /// Nearest neighbour, rounded per [`NearestMode`].
    #[default]
    Nearest,
    /// N-linear interpolation (separable, edge values beyond the border).
    Linear,
}

/// How an output coordinate maps back to an input coordinate (ONNX `coordinate_transformation_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoordinateTransform {
    /// x_in = (x_out + 0.5) / scale − 0.5.
    HalfPixel,
    /// x_in = x_out / scale (ONNX `Upsample`).
    #[default]
    Asymmetric,
    /// x_in = x_out · (in − 1) / (out − 1), 0 when out = 1.
    AlignCorners,
    /// As `half_pixel`, but 0 when out = 1.
    PytorchHalfPixel,
    /// As `half_pixel`, symmetric about the centre when in · scale is not whole.
    HalfPixelSymmetric,
}

/// Rounding of a fractional input coordinate in nearest mode (ONNX `nearest_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NearestMode {
    /// Round half down.
    RoundPreferFloor,
    /// Round half up.
    RoundPreferCeil,
    /// Floor (ONNX `Upsample`).
    #[default]
    Floor,
    /// Ceiling.
    Ceil,
}

impl CoordinateTransform {
    /// Input coordinate for output index `x` on an axis resized from `input` to `output` by `scale`.
    pub fn source(self, x: usize, input: usize, output: usize, scale: f32) -> f32 {
        let (x, scale) = (x as f32, scale);
        match self {
            CoordinateTransform::HalfPixel => (x + 0.5) / scale - 0.5,
            CoordinateTransform::Asymmetric => x / scale,
            CoordinateTransform::AlignCorners if output == 1 => 0.0,
            CoordinateTransform::AlignCorners => x * (input as f32 - 1.0) / (output as f32 - 1.0),
            CoordinateTransform::PytorchHalfPixel if output == 1 => 0.0,
            CoordinateTransform::PytorchHalfPixel => (x + 0.5) / scale - 0.5,
            CoordinateTransform::HalfPixelSymmetric => {
                let adjustment = output as f32 / (scale * input as f32);
                let center = input as f32 / 2.0;
                let offset = center * (1.0 - adjustment);
                offset + (x + 0.5) / scale - 0.5
            }
        }
    }
}

impl NearestMode {
    /// Rounds a source coordinate to an index (before clamping to the input).
    pub fn round(self, x: f32) -> i64 {
        let floor = x.floor();
        let is_half = x - floor == 0.5;
        (match self {
            NearestMode::RoundPreferFloor if is_half => floor,
            NearestMode::RoundPreferCeil if is_half => floor + 1.0,
            NearestMode::RoundPreferFloor | NearestMode::RoundPreferCeil => x.round(),
            NearestMode::Floor => floor,
            NearestMode::Ceil => x.ceil(),
        }) as i64
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// `Upsample` attributes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpsampleAttrs {
    /// Scale per axis (N and C included, as ONNX); every value > 0.
    pub scales: Vec<f32>,
    /// Interpolation mode.
    #[serde(skip_serializing_if = "is_default")]
    pub mode: ResizeMode,
    /// Coordinate mapping.
    #[serde(skip_serializing_if = "is_default")]
    pub coordinate_transformation_mode: CoordinateTransform,
    /// Rounding in nearest mode.
    #[serde(skip_serializing_if = "is_default")]
    pub nearest_mode: NearestMode,
}

impl UpsampleAttrs {
    /// The integer factor of every axis, when each scale is a whole number.
    pub fn integer_factors(&self) -> Option<Vec<usize>> {
        self.scales.iter().map(|&s| (s >= 1.0 && s.fract() == 0.0).then_some(s as usize)).collect()
    }
}

impl OpRule for UpsampleAttrs {
    fn input_names(&self) -> &'static [&'static str] {
        &["X"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        let x = inputs[0];
        if self.scales.len() != x.rank() {
            return Err(OpError::attr(
                "scales",
                format!(
                    "has {} values, expected {} (one per axis of X, N and C included)",
                    self.scales.len(),
                    x.rank()
                ),
            ));
        }
        if let Some(s) = self.scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(OpError::attr("scales", format!("contains {s}; every scale must be finite and > 0")));
        }
        let out = x.dims().iter().zip(&self.scales).map(|(&d, &s)| (d as f64 * s as f64).floor());
        let out: Vec<usize> = out.map(|v| if v > 1e15 { usize::MAX } else { v as usize }).collect();
        if let Some(axis) = out.iter().position(|&d| d == 0) {
            return Err(OpError::attr("scales", format!("make axis {axis} empty (floor(in · scale) = 0)")));
        }
        Ok(vec![Shape(out)])
    }
    fn flops(&self, _: &[&Shape], outputs: &[Shape]) -> u64 {
        let per_element = match self.mode {
            ResizeMode::Nearest => 0,
            // Two multiplies and one add per resized axis.
            ResizeMode::Linear => 3 * self.scales.iter().filter(|&&s| s != 1.0).count() as u64,
        };
        outputs[0].numel() as u64 * per_element
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rounding_modes() {
        assert_eq!(NearestMode::RoundPreferFloor.round(1.5), 1);
        assert_eq!(NearestMode::RoundPreferCeil.round(1.5), 2);
        assert_eq!(NearestMode::RoundPreferFloor.round(1.6), 2);
        assert_eq!(NearestMode::Floor.round(1.9), 1);
        assert_eq!(NearestMode::Ceil.round(1.1), 2);
        assert_eq!(NearestMode::RoundPreferFloor.round(-0.5), -1);
    }

    #[test]
    fn output_is_floor_of_in_times_scale() {
        let a = UpsampleAttrs { scales: vec![1.0, 1.0, 1.5, 2.0], ..Default::default() };
        assert_eq!(a.infer(&[&Shape(vec![1, 2, 3, 3])]).unwrap()[0].0, vec![1, 2, 4, 6]);
        let bad = UpsampleAttrs { scales: vec![1.0, 0.0], ..Default::default() };
        assert!(bad.infer(&[&Shape(vec![1, 2])]).is_err());
    }
}
