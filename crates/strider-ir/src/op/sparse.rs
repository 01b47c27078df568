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
        let pairs: usize = geometry
            .iter()
            .map(|a| {
                (0..a.input)
                    .flat_map(|i| (0..a.kernel).map(move |k| (i * a.stride + k * a.dilation) as i64 - a.pad_begin))
                    .filter(|&o| (0..a.output as i64).contains(&o))
                    .count()
            })
            .product();
        Ok(w.dims()[0] * w.dims()[1] * pairs)
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
        let m = w.dims()[1] * self.conv_transpose.group;
        let rows = w.dims()[0] * self.input_shape.iter().product::<usize>();
        let cols = geometry.iter().fold(m, |acc, a| acc.saturating_mul(a.output));
        Ok(vec![Shape(vec![rows, cols])])
    }
    fn flops(&self, _: &[&Shape], _: &[Shape]) -> u64 {
        0
    }
    fn output_layout(&self, inputs: &[&Shape]) -> Layout {
        Layout::Csr { nnz: self.nnz(inputs[0]).unwrap_or(0) }
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
