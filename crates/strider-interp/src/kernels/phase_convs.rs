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
use super::{BLOCK_ELEMENTS, Ctx, KernelError, array_at, contiguous, grain};
use crate::gemm::{self, MatMut, MatRef};
use crate::streaming;

/// One phase Conv of a class, as the fusion finds it.
#[derive(Clone, Copy, Debug)]
pub struct Phase<'a> {
    /// Its block offset, row-major over the spatial axes (its position in the Concat).
    pub block: usize,
    /// Its Conv weight, C' × C × k… contiguous.
    pub weights: &'a [f32],
    /// Its bias (C'), if it has one.
    pub bias: Option<&'a [f32]>,
}

/// The phases of a class that share their offsets on every spatial axis but the last, and whose
/// last-axis offsets are consecutive. For one position of the phase grid they fill, per channel,
/// one contiguous run of output elements along the last axis.
#[derive(Debug)]
struct PhaseLine {
    /// Offsets on the three (padded) axes; the last one is 0.
    outer: [usize; RANK],
    /// The first offset on the last axis.
    first: usize,
    /// How many consecutive offsets on the last axis.
    len: usize,
    /// The line's first row in the stacked product.
    first_row: usize,
}

/// Phases that share their convolution attributes and input: one im2col and one GEMM.
///
/// The product's rows are ordered by line, then channel, then last-axis offset, so that what one
/// channel takes from one line is a band of adjacent rows: the copy out reads them side by side,
/// one position at a time, and writes each position's run of output elements whole.
#[derive(Debug)]
pub struct PhaseClass {
    /// Which of the fused step's inputs the phases read.
    pub input: usize,
    /// Their convolution attributes (group 1).
    pub attrs: ConvAttrs,
    /// The shape of the stacked weights as one Conv weight: (phases · C') × C × k….
    weight_shape: Vec<usize>,
    /// The stacked weights, rows × (C · k…), row-major: the GEMM's left operand.
    weights: Vec<f32>,
    /// The stacked biases, per row (zeros for phases without one), if any phase has one.
    bias: Option<Vec<f32>>,
    lines: Vec<PhaseLine>,
    /// Whether the product is stored position-major: when a line takes runs of at least
    /// [`LONG_RUN`] values per position, each run is then one contiguous copy; shorter runs are
    /// copied as strided rows of a row-major product instead.
    position_major: bool,
}

impl PhaseClass {
    /// Stacks `phases` (Convs of one input with the same `attrs` and weight shape `phase_weight`:
    /// C' × C × k…) of a DepthToSpace with `blocksize`; `None` if the phases sharing their leading
    /// offsets do not have consecutive last-axis offsets (the exact phase lowering's always do; any
    /// other pattern runs unfused).
    pub fn new(
        input: usize,
        attrs: ConvAttrs,
        phase_weight: &[usize],
        blocksize: usize,
        phases: &[Phase],
    ) -> Option<Self> {
        let channels = phase_weight[0];
        let taps: usize = phase_weight[1..].iter().product();
        let spatial = phase_weight.len().saturating_sub(2);
        let rows = channels * phases.len();
        let mut sorted: Vec<&Phase> = phases.iter().collect();
        sorted.sort_by_key(|p| p.block);
        let mut weights = vec![0.0; rows * taps];
        let mut bias = phases.iter().any(|p| p.bias.is_some()).then(|| vec![0.0; rows]);
        let mut lines = Vec::new();
        let mut first_row = 0;
        for line in sorted.chunk_by(|a, b| a.block / blocksize == b.block / blocksize) {
            let mut outer = [0; RANK];
            let mut rest = line[0].block / blocksize;
            for a in (RANK - spatial..RANK - 1).rev() {
                outer[a] = rest % blocksize;
                rest /= blocksize;
            }
            let inner: Vec<usize> = line.iter().map(|p| p.block % blocksize).collect();
            for channel in 0..channels {
                for (i, phase) in line.iter().enumerate() {
                    let row = first_row + channel * line.len() + i;
                    weights[row * taps..][..taps].copy_from_slice(&phase.weights[channel * taps..][..taps]);
                    if let (Some(stacked), Some(b)) = (&mut bias, phase.bias) {
                        stacked[row] = b[channel];
                    }
                }
            }
            if inner.windows(2).any(|w| w[1] != w[0] + 1) {
                return None;
            }
            lines.push(PhaseLine { outer, first: inner[0], len: inner.len(), first_row });
            first_row += channels * line.len();
        }
        let mut weight_shape = phase_weight.to_vec();
        weight_shape[0] = rows;
        let position_major = rows >= LONG_RUN * channels * lines.len();
        Some(PhaseClass { input, attrs, weight_shape, weights, bias, lines, position_major })
    }

    /// Rows of the stacked product (phases · C').
    fn rows(&self) -> usize {
        self.weight_shape[0]
    }

    /// Consecutive lines taken together, each group at most `max_rows` rows (or one line).
    fn line_groups(&self, max_rows: usize) -> Vec<LineGroup> {
        let mut groups: Vec<LineGroup> = Vec::new();
        for (i, l) in self.lines.iter().enumerate() {
            let end_row = self.lines.get(i + 1).map_or(self.rows(), |next| next.first_row);
            match groups.last_mut() {
                Some(group) if end_row - group.first_row <= max_rows => {
                    group.lines.end = i + 1;
                    group.end_row = end_row;
                }
                _ => groups.push(LineGroup { lines: i..i + 1, first_row: l.first_row, end_row }),
            }
        }
        groups
    }
}

/// Lines whose rows are one GEMM.
struct LineGroup {
    lines: std::ops::Range<usize>,
    first_row: usize,
    end_row: usize,
}

/// Elements of the product computed by one GEMM: small enough to be copied out from the cache.
const PRODUCT_BLOCK: usize = 1 << 16;

/// Runs per line at least, on average, for the product to be stored position-major.
const LONG_RUN: usize = 8;

/// Rows of the product computed by one GEMM (whole lines, at least one).
const PRODUCT_ROWS: usize = 256;

/// Positions per GEMM at least (if there are as many): every position block repacks the weights.
const MIN_WIDTH: usize = 256;

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
        // Line-aligned, so that each position's run fills whole cache lines when it is streamed.
        let len = n * channels * plane;
        let (mut y, offset) = ctx.output_line_aligned(len)?;
        for class in &self.classes {
            let x = inputs.get(class.input).ok_or(KernelError::Layout)?;
            self.run_class(ctx, class, x, out_shape, &mut y[offset..offset + len])?;
        }
        array_at(out_shape, y, offset)
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
        let taps = c * k_len;
        let plane: usize = out_shape[2..].iter().product();
        let xs = contiguous(x);
        let pointwise = k_len == 1 && g.iter().all(|a| a.stride == 1 && a.pad_begin == 0 && a.input == a.output);
        // The product is computed in tiles of about PRODUCT_ROWS rows (whole lines) by as many
        // positions as fit PRODUCT_BLOCK, so that each tile is copied out from the cache; square-ish
        // tiles keep the repacking of weights (once per position block) and of im2col columns (once
        // per line group) small.
        let groups = class.line_groups(PRODUCT_ROWS);
        let group_rows = groups.iter().map(|lines| lines.end_row - lines.first_row).max().unwrap_or(0);
        let widest =
            (PRODUCT_BLOCK / group_rows.max(1)).max(MIN_WIDTH).min(BLOCK_ELEMENTS / (taps + group_rows).max(1)).max(1);
        let block = out_len.div_ceil(out_len.div_ceil(widest).max(1)).max(1);
        let mut cols = if pointwise { Vec::new() } else { ctx.scratch(taps * block)? };
        // Up to one tile per thread at a time: tiles of the same block are independent GEMMs.
        let tiles_at_once = ctx.threads.clamp(1, groups.len().max(1));
        let mut product = ctx.scratch(tiles_at_once * group_rows * block)?;
        let scale: [usize; RANK] = std::array::from_fn(|a| if a >= RANK - spatial { self.blocksize } else { 1 });
        let out_dims: [usize; RANK] = std::array::from_fn(|a| g[a].output * scale[a]);
        // Position-major runs go to scattered places of the output: past the cache's size, write them
        // with streaming stores (see `streaming`).
        let stream = class.position_major && streaming::worth_streaming(y.len());
        for b in 0..n {
            let xb = &xs[b * c * in_len..][..c * in_len];
            let yb = &mut y[b * self.channels * plane..][..self.channels * plane];
            for p0 in (0..out_len).step_by(block) {
                let width = block.min(out_len - p0);
                let positions = if pointwise {
                    MatRef::new(&xb[p0..], taps, width, in_len, 1)?
                } else {
                    let cols = &mut cols[..taps * width];
                    im2col(&g, xb, in_len, p0..p0 + width, cols);
                    MatRef::row_major(cols, taps, width)?
                };
                // The block's phase-grid line segments: where each starts in the output plane (for
                // a line at offset 0) and in the block, and how long it is.
                let mut segments = Vec::new();
                let mut p = p0;
                while p < p0 + width {
                    let (line, q0) = (p / g[2].output, p % g[2].output);
                    let len = (g[2].output - q0).min(p0 + width - p);
                    let (qa, qb) = (line / g[1].output, line % g[1].output);
                    let start = (qa * scale[0] * out_dims[1] + qb * scale[1]) * out_dims[2] + q0 * scale[2];
                    segments.push((start, p - p0, len));
                    p += len;
                }
                for chunk in groups.chunks(tiles_at_once) {
                    let tile = group_rows * width;
                    let per_gemm = (ctx.threads / chunk.len()).max(1);
                    product.par_chunks_mut(tile).zip(chunk).try_for_each(
                        |(product, group)| -> Result<(), KernelError> {
                            let rows = group.end_row - group.first_row;
                            let w = MatRef::row_major(&class.weights[group.first_row * taps..], rows, taps)?;
                            let product = &mut product[..rows * width];
                            let dst = if class.position_major {
                                MatMut::col_major(product, rows, width)?
                            } else {
                                MatMut::row_major(product, rows, width)?
                            };
                            Ok(gemm::matmul(dst, w, positions, false, per_gemm)?)
                        },
                    )?;
                    let product = &*product;
                    let rows: usize = chunk.iter().map(|group| group.end_row - group.first_row).sum();
                    yb.par_chunks_mut(plane)
                        .enumerate()
                        .with_min_len(grain(rows / self.channels.max(1) * width))
                        .for_each(|(channel, y_plane)| {
                            for (group, product) in chunk.iter().zip(product.chunks(tile)) {
                                let rows = group.end_row - group.first_row;
                                for l in &class.lines[group.lines.clone()] {
                                    let first = l.first_row + channel * l.len;
                                    let bias = class.bias.as_ref().map(|b| &b[first..first + l.len]);
                                    let offset = (l.outer[0] * out_dims[1] + l.outer[1]) * out_dims[2] + l.first;
                                    let row = first - group.first_row;
                                    for &(start, j, len) in &segments {
                                        let out_row = &mut y_plane[start + offset..];
                                        if class.position_major {
                                            // Each position's run, contiguous in the product and the output.
                                            for q in 0..len {
                                                let values = &product[(j + q) * rows + row..][..l.len];
                                                let out = &mut out_row[q * scale[2]..][..l.len];
                                                match bias {
                                                    _ if stream => streaming::store(out, values, bias),
                                                    Some(b) => add_run(out, values, b),
                                                    None => copy_run(out, values),
                                                }
                                            }
                                        } else {
                                            // Each phase's row, strided in the output row (which stays
                                            // in the cache while the line's phases fill it).
                                            for i in 0..l.len {
                                                let values = &product[(row + i) * width + j..][..len];
                                                let out = out_row[i..].iter_mut().step_by(scale[2]).zip(values);
                                                match bias {
                                                    Some(b) => out.for_each(|(d, &v)| *d = v + b[i]),
                                                    None => out.for_each(|(d, &v)| *d = v),
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                            if stream {
                                streaming::fence();
                            }
                        });
                }
            }
        }
        if !pointwise {
            ctx.give_scratch(cols);
        }
        ctx.give_scratch(product);
        Ok(())
    }
}

/// Copies a short run (a line's phases at one position: 16 values for FCN-32s) in fixed-size
/// pieces, which compile to vector moves; `copy_from_slice` calls `memmove` for each run, and that
/// call costs more than the copy.
fn copy_run(out: &mut [f32], values: &[f32]) {
    let mut out_pieces = out.chunks_exact_mut(8);
    let mut value_pieces = values.chunks_exact(8);
    for (d, v) in (&mut out_pieces).zip(&mut value_pieces) {
        let v: &[f32; 8] = v.try_into().expect("pieces of 8");
        let d: &mut [f32; 8] = d.try_into().expect("pieces of 8");
        *d = *v;
    }
    out_pieces.into_remainder().iter_mut().zip(value_pieces.remainder()).for_each(|(d, &v)| *d = v);
}

/// `out = values + bias`, element by element, for a short run (see [`copy_run`]).
fn add_run(out: &mut [f32], values: &[f32], bias: &[f32]) {
    out.iter_mut().zip(values.iter().zip(bias)).for_each(|(d, (&v, &b))| *d = v + b);
}
