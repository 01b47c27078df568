//! `BatchNormalization` in inference form: y = scale · (x − mean) / sqrt(var + epsilon) + B, per channel.

use serde::{Deserialize, Serialize};

use super::{OpError, OpRule};
use crate::shape::Shape;

fn default_epsilon() -> f32 {
    1e-5
}

fn is_default_epsilon(v: &f32) -> bool {
    *v == default_epsilon()
}

/// `BatchNormalization` attributes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchNormAttrs {
    /// Added to the variance before the square root (ONNX default 1e-5).
    #[serde(default = "default_epsilon", skip_serializing_if = "is_default_epsilon")]
    pub epsilon: f32,
}

impl Default for BatchNormAttrs {
    fn default() -> Self {
        BatchNormAttrs { epsilon: default_epsilon() }
    }
}

impl OpRule for BatchNormAttrs {
    fn input_names(&self) -> &'static [&'static str] {
        &["X", "scale", "B", "input_mean", "input_var"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        let x = inputs[0];
        if x.rank() < 2 {
            return Err(OpError::shape("X", "rank ≥ 2 (N, C, …)", x));
        }
        if !(self.epsilon.is_finite() && self.epsilon >= 0.0) {
            return Err(OpError::attr("epsilon", format!("must be finite and ≥ 0, found {}", self.epsilon)));
        }
        let c = x.dims()[1];
        for (name, s) in self.input_names().iter().zip(inputs).skip(1) {
            if s.dims() != [c] {
                return Err(OpError::shape(name, format!("[{c}] (one per channel)"), s));
            }
        }
        Ok(vec![x.clone()])
    }
    fn flops(&self, _: &[&Shape], outputs: &[Shape]) -> u64 {
        // Per element one multiply and one add once the per-channel factors are formed.
        2 * outputs[0].numel() as u64
    }
}
