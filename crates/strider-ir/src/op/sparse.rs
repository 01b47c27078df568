//! The explicit-matrix view of transposed convolution. `ConvMatrix` builds, from a ConvTranspose
//! weight, the sparse matrix C of the forward convolution (rows: the ConvTranspose's input positions ×
//! channels; columns: its output positions × channels), so that ConvTranspose(x) = Cᵀ·vec(x).
//! `SparseMatMul` computes X·A for dense rows X and a CSR matrix A — per batch row, Cᵀ·x.

use serde::{Deserialize, Serialize};

use super::{ConvTransposeAttrs, OpError, OpRule};
use crate::shape::{Layout, Shape};

/// `ConvMatrix` attributes: the ConvTranspose it describes and its input's spatial shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvMatrixAttrs {
    /// Spatial shape of the ConvTranspose input.
    pub input_shape: Vec<usize>,
    /// The ConvTranspose's attributes.
    pub conv_transpose: ConvTransposeAttrs,
}

impl ConvMatrixAttrs {
    /// The ConvTranspose input shape (batch 1) this matrix serves, for weight `w`.
    pub fn x_shape(&self, w: &Shape) -> Shape {
        Shape([&[1, w.dims().first().copied().unwrap_or(0)][..], &self.input_shape].concat())
    }

    /// Stored elements: every (input channel, output channel in its group, input position, tap) that
    /// lands inside the output.
    pub fn nnz(&self, w: &Shape) -> Result<usize, OpError> {
        let geometry = self.conv_transpose.geometry(&self.x_shape(w), w)?;
        // Per axis and tap k, the inputs i with 0 ≤ i·s + k·d − pad_begin < out form one interval.
        let pairs = geometry.iter().try_fold(1usize, |acc, a| {
            let (s, pb, out, last) = (a.stride as i128, a.pad_begin as i128, a.output as i128, a.input as i128 - 1);
            let count: i128 = (0..a.kernel as i128)
                .map(|k| {
                    let shift = k * a.dilation as i128 - pb;
                    let lo = (-shift).div_euclid(s) + i128::from((-shift).rem_euclid(s) != 0);
                    let hi = (out - 1 - shift).div_euclid(s);
                    (hi.min(last) - lo.max(0) + 1).max(0)
                })
                .sum();
            acc.checked_mul(usize::try_from(count).ok()?)
        });
        pairs
            .and_then(|p| p.checked_mul(w.dims()[0])?.checked_mul(w.dims()[1]))
            .ok_or_else(|| OpError::attr("input_shape", "the matrix would have more entries than can be counted"))
    }
}

impl OpRule for ConvMatrixAttrs {
    fn input_names(&self) -> &'static [&'static str] {
        &["W"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        let w = inputs[0];
        if w.rank() != self.input_shape.len() + 2 {
            return Err(OpError::shape(
                "W",
                format!("(C, M/group, k…) with {} spatial axes", self.input_shape.len()),
                w,
            ));
        }
        let x = self.x_shape(w);
        let geometry = self.conv_transpose.geometry(&x, w)?;
        // A model can state any input_shape: every derived size is checked, never wrapped or saturated.
        let overflow =
            |what: &str| OpError::attr("input_shape", format!("the matrix would have more {what} than can be counted"));
        let rows = self
            .input_shape
            .iter()
            .try_fold(w.dims()[0], |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| overflow("rows"))?;
        let m = w.dims()[1].checked_mul(self.conv_transpose.group).ok_or_else(|| overflow("columns"))?;
        let cols =
            geometry.iter().try_fold(m, |acc, a| acc.checked_mul(a.output)).ok_or_else(|| overflow("columns"))?;
        self.nnz(w)?;
        Ok(vec![Shape(vec![rows, cols])])
    }
    fn flops(&self, _: &[&Shape], _: &[Shape]) -> u64 {
        0
    }
    fn output_layout(&self, inputs: &[&Shape]) -> Layout {
        // `infer` has refused a count that overflows, so this never falls back.
        Layout::Csr { nnz: self.nnz(inputs[0]).unwrap_or(usize::MAX) }
    }
}

/// `SparseMatMul`: Y = X · A for a dense X (N, r) and a CSR matrix A (r, c).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparseMatMulAttrs {}

impl OpRule for SparseMatMulAttrs {
    fn input_names(&self) -> &'static [&'static str] {
        &["X", "A"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        let (x, a) = (inputs[0], inputs[1]);
        if x.rank() != 2 {
            return Err(OpError::shape("X", "rank 2 (N, r)", x));
        }
        if a.rank() != 2 || a.dims()[0] != x.dims()[1] {
            return Err(OpError::shape("A", format!("({}, c)", x.dims()[1]), a));
        }
        Ok(vec![Shape(vec![x.dims()[0], a.dims()[1]])])
    }
    fn flops(&self, _: &[&Shape], _: &[Shape]) -> u64 {
        // Counted from the matrix's nnz by `Op::flops_with_layouts`; shapes alone do not know it.
        0
    }
    fn sparse_input(&self) -> Option<usize> {
        Some(1)
    }
}
