//! Attributes of the element-wise ops that have any (the others share the unary and binary rules in
//! [`super`]).

use serde::{Deserialize, Serialize};

use super::{OpError, OpRule};
use crate::shape::Shape;

fn default_alpha() -> f32 {
    0.01
}

fn is_default_alpha(v: &f32) -> bool {
    *v == default_alpha()
}

/// `LeakyRelu` attributes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeakyReluAttrs {
    /// Slope for negative inputs (ONNX default 0.01).
    #[serde(default = "default_alpha", skip_serializing_if = "is_default_alpha")]
    pub alpha: f32,
}

impl Default for LeakyReluAttrs {
    fn default() -> Self {
        LeakyReluAttrs { alpha: default_alpha() }
    }
}

impl OpRule for LeakyReluAttrs {
    fn input_names(&self) -> &'static [&'static str] {
        &["X"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        if !self.alpha.is_finite() {
            return Err(OpError::attr("alpha", format!("must be finite, found {}", self.alpha)));
        }
        Ok(vec![inputs[0].clone()])
    }
    fn flops(&self, _: &[&Shape], outputs: &[Shape]) -> u64 {
        outputs[0].numel() as u64
    }
}
