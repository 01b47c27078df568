//! Sub-pixel phase convolutions run together (what XNNPACK calls sub-convolutions): the exact phase
//! lowering of a ConvTranspose is s^d convolutions of the same input, concatenated and interleaved by
//! DepthToSpace. Run one by one, that is s^d small GEMMs plus two full copies of the output. Here the
//! phases with the same convolution attributes (the same input window) share one im2col matrix and
//! one GEMM over their stacked weights, and each product is written straight to its interleaved
//! output positions with its bias: one pass over the output, no concatenated intermediate.

use ndarray::{ArrayD, ArrayViewD};
use rayon::prelude::*;
use strider_ir::Shape;
use strider_ir::op::ConvAttrs;

use super::conv::im2col;
use super::geometry::{RANK, padded, volume};
use super::{BLOCK_ELEMENTS, Ctx, KernelError, array, contiguous, grain};
use crate::gemm::{self, MatMut, MatRef};

/// Phases that share their convolution attributes and input.
#[derive(Debug)]
pub struct PhaseClass {
    /// Which of the fused step's inputs the phases read.
    pub input: usize,
    /// Their convolution attributes (group 1).
    pub attrs: ConvAttrs,
    /// The stacked weights, one phase after another: (phases · C') × C × k….
    pub weights: Vec<f32>,
    /// Shape of `weights` as a Conv weight.
    pub weight_shape: Vec<usize>,
    /// The stacked biases, if the phases have them.
    pub bias: Option<Vec<f32>>,
    /// Each phase's block offset (row-major over the spatial axes), in weight order.
    pub blocks: Vec<usize>,
}

/// Every phase of one interleaved output.
#[derive(Debug)]
pub struct PhaseConvs {
    /// Output channels of each phase (the interleaved output's channels).
    pub channels: usize,
    /// DepthToSpace block size (the stride of every spatial axis).
    pub blocksize: usize,
    /// The phases, grouped.
    pub classes: Vec<PhaseClass>,
}

impl PhaseConvs {
    /// Elements held (weights and biases).
    pub fn stored_elements(&self) -> usize {
        self.classes.iter().map(|c| c.weights.len() + c.bias.as_ref().map_or(0, Vec::len)).sum()
    }

    /// Computes the interleaved output of shape `out_shape` from the step's `inputs`.
    pub fn run(
        &self,
        ctx: &mut Ctx,
        inputs: &[ArrayViewD<f32>],
        out_shape: &[usize],
    ) -> Result<ArrayD<f32>, KernelError> {
        let (n, channels) = (out_shape[0], self.channels);
        let plane: usize = out_shape[2..].iter().product();
        // Every output element belongs to exactly one phase, so every element is written below.
        let mut y = ctx.output(n * channels * plane)?;
        for class in &self.classes {
            let x = inputs.get(class.input).ok_or(KernelError::Layout)?;
            self.run_class(ctx, class, x, out_shape, &mut y)?;
        }
        array(out_shape, y)
    }

    fn run_class(
        &self,
        ctx: &mut Ctx,
        class: &PhaseClass,
        x: &ArrayViewD<f32>,
        out_shape: &[usize],
        y: &mut [f32],
    ) -> Result<(), KernelError> {
        let geometry = class.attrs.geometry(&Shape(x.shape().to_vec()), &Shape(class.weight_shape.clone()))?;
        let g = padded(&geometry)?;
        let spatial = geometry.len();
        let (n, c) = (x.shape()[0], x.shape()[1]);
        let (in_len, out_len, k_len) = (volume(&g, |a| a.input), volume(&g, |a| a.output), volume(&g, |a| a.kernel));
        let (rows, m) = (c * k_len, class.weight_shape[0]);
        let plane: usize = out_shape[2..].iter().product();
        let xs = contiguous(x);
        let w = MatRef::row_major(&class.weights, m, rows)?;
        let pointwise = k_len == 1 && g.iter().all(|a| a.stride == 1 && a.pad_begin == 0 && a.input == a.output);
        let block = (BLOCK_ELEMENTS / (rows + m).max(1)).clamp(1, out_len.max(1));
        let mut cols = if pointwise { Vec::new() } else { ctx.scratch(rows * block)? };
        let mut product = ctx.scratch(m * block)?;
        // Per phase: its block offset on each of the three (padded) axes.
        let offsets: Vec<[usize; RANK]> = class
            .blocks
            .iter()
            .map(|&flat| {
                let mut r = [0usize; RANK];
                let mut rest = flat;
                for a in (RANK - spatial..RANK).rev() {
                    r[a] = rest % self.blocksize;
                    rest /= self.blocksize;
                }
                r
            })
            .collect();
        let scale: [usize; RANK] = std::array::from_fn(|a| if a >= RANK - spatial { self.blocksize } else { 1 });
        let out_dims: [usize; RANK] = std::array::from_fn(|a| g[a].output * scale[a]);
        for b in 0..n {
            let xb = &xs[b * c * in_len..][..c * in_len];
            let yb = &mut y[b * self.channels * plane..][..self.channels * plane];
            for p0 in (0..out_len).step_by(block) {
                let width = block.min(out_len - p0);
                let product = &mut product[..m * width];
                let dst = MatMut::row_major(product, m, width)?;
                if pointwise {
                    gemm::matmul(dst, w, MatRef::new(&xb[p0..], rows, width, in_len, 1)?, false, ctx.threads)?;
                } else {
                    let cols = &mut cols[..rows * width];
                    im2col(&g, xb, in_len, p0..p0 + width, cols);
                    gemm::matmul(dst, w, MatRef::row_major(cols, rows, width)?, false, ctx.threads)?;
                }
                let product = &*product;
                yb.par_chunks_mut(plane).enumerate().with_min_len(grain(offsets.len() * width)).for_each(
                    |(channel, y_plane)| {
                        for (phase, r) in offsets.iter().enumerate() {
                            let row = phase * self.channels + channel;
                            let values = &product[row * width..][..width];
                            let bias = class.bias.as_ref().map_or(0.0, |bias| bias[row]);
                            // Walk the block one phase-grid line at a time.
                            let mut p = p0;
                            while p < p0 + width {
                                let (line, first) = (p / g[2].output, p % g[2].output);
                                let last = g[2].output.min(first + p0 + width - p);
                                let (oa, ob) = (line / g[1].output, line % g[1].output);
                                let start = ((oa * scale[0] + r[0]) * out_dims[1] + ob * scale[1] + r[1]) * out_dims[2]
                                    + first * scale[2]
                                    + r[2];
                                let run = &values[p - p0..][..last - first];
                                y_plane[start..]
                                    .iter_mut()
                                    .step_by(scale[2])
                                    .zip(run)
                                    .for_each(|(d, &v)| *d = v + bias);
                                p += last - first;
                            }
                        }
                    },
                );
            }
        }
        if !pointwise {
            ctx.give_scratch(cols);
        }
        ctx.give_scratch(product);
        Ok(())
    }
}
