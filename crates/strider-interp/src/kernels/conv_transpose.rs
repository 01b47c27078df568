//! `ConvTranspose` as onnxruntime computes it: per batch element and group, cols = Wᵀ · x (a GEMM
//! over the input channels, in blocks of input positions so the column buffer stays bounded), then
//! col2im adds each column into the output. Unlike onnxruntime, the output channels are cut into
//! tasks that each compute their own columns and scatter them at once (cache-sized, one per thread
//! at least). Groups with few channels go to the direct kernel.

use ndarray::{ArrayD, ArrayViewD};
use rayon::prelude::*;
use strider_ir::Shape;
use strider_ir::op::ConvTransposeAttrs;

use super::col2im::scatter_add;
use super::geometry::{padded, volume};
use super::{BLOCK_ELEMENTS, Ctx, KernelError, array, contiguous, direct};
use crate::gemm::{self, MatMut, MatRef};

/// The weight as the GEMM reads it, W_gᵀ per group ((M/g·k) × C/g, row-major, groups one after
/// another), when the GEMM path runs for this weight shape; prepared once per plan, since reading the
/// transpose in place makes the product several times slower.
pub fn pack_weight(attrs: &ConvTransposeAttrs, w: &ArrayViewD<f32>) -> Option<Vec<f32>> {
    let groups = attrs.group.max(1);
    let (cg, mg) = (w.shape().first()? / groups, *w.shape().get(1)?);
    if direct::prefers_direct(cg, mg) {
        return None;
    }
    let rows = mg * w.shape()[2..].iter().product::<usize>();
    let ws = contiguous(w);
    let mut packed = vec![0f32; ws.len()];
    for grp in 0..groups {
        let (src, dst) = (&ws[grp * cg * rows..][..cg * rows], &mut packed[grp * cg * rows..][..cg * rows]);
        for (r, dst_row) in dst.chunks_mut(cg).enumerate() {
            dst_row.iter_mut().zip(src[r..].iter().step_by(rows)).for_each(|(d, &v)| *d = v);
        }
    }
    Some(packed)
}

/// Column elements a task computes and scatters at once: about half this machine's L2 cache.
const COLUMNS_IN_CACHE: usize = 1 << 16;

/// ConvTranspose: `y[n, g·M/g + m, o] = B[·] + Σ x[n, g·C/g + c, i] · W[g·C/g + c, m, k]` over every
/// (i, k) with o = i·stride + k·dilation − pad_begin; positions nothing reaches hold the bias.
/// `packed` is [`pack_weight`] of `w`, if prepared.
pub fn conv_transpose(
    ctx: &mut Ctx,
    attrs: &ConvTransposeAttrs,
    x: &ArrayViewD<f32>,
    w: &ArrayViewD<f32>,
    bias: Option<ArrayViewD<f32>>,
    packed: Option<&[f32]>,
) -> Result<ArrayD<f32>, KernelError> {
    let geometry = attrs.geometry(&Shape(x.shape().to_vec()), &Shape(w.shape().to_vec()))?;
    let g = padded(&geometry)?;
    let (n, c, groups) = (x.shape()[0], x.shape()[1], attrs.group);
    let (cg, mg) = (c / groups, w.shape()[1]);
    let m = mg * groups;
    let (in_len, out_len, k_len) = (volume(&g, |a| a.input), volume(&g, |a| a.output), volume(&g, |a| a.kernel));
    let mut shape = vec![n, m];
    shape.extend(geometry.iter().map(|a| a.output));
    let (xs, ws) = (contiguous(x), contiguous(w));
    let bias = bias.as_ref().map(contiguous);
    if direct::prefers_direct(cg, mg) {
        let y = direct::conv_transpose(ctx, &g, &xs, &ws, bias.as_deref(), [n, c, m, groups])?;
        return array(&shape, y);
    }
    // The output starts as the bias (or zero); the columns are added onto it.
    let mut y = ctx.output(n * m * out_len)?;
    match &bias {
        Some(bias) => y.chunks_mut(out_len.max(1)).enumerate().for_each(|(i, p)| p.fill(bias[i % m])),
        None => y.fill(0.0),
    }
    let rows = mg * k_len;
    let block = (BLOCK_ELEMENTS / rows.max(1)).clamp(1, in_len.max(1));
    // Output channels per task: each task computes its channels' columns (one GEMM) and adds them
    // into its own output planes at once, so the columns are read back from the cache they were
    // written to, and the threads split the work once instead of twice (GEMM, then scatter). At
    // least one task per thread.
    let chunk = (COLUMNS_IN_CACHE / (k_len * block).max(1)).min(mg.div_ceil(ctx.threads)).clamp(1, mg.max(1));
    // Fewer tasks than threads (very few channels): each GEMM uses the threads instead.
    let gemm_threads = if mg.div_ceil(chunk) < ctx.threads { ctx.threads } else { 1 };
    let mut cols = ctx.scratch(rows * block)?;
    for b in 0..n {
        for grp in 0..groups {
            // W for this group is (C/g) × (M/g·k) row-major; rows r.. of its transpose (a task's
            // channels): the packed transpose, or the transpose read in place.
            let w_g = &ws[grp * cg * rows..][..cg * rows];
            let wt_rows = |first: usize, count: usize| match packed {
                Some(p) => MatRef::row_major(&p[(grp * cg * rows + first * cg)..], count, cg),
                None => MatRef::new(&w_g[first..], count, cg, 1, rows),
            };
            let xg = &xs[(b * c + grp * cg) * in_len..][..cg * in_len];
            let yg = &mut y[(b * m + grp * mg) * out_len..][..mg * out_len];
            for q0 in (0..in_len).step_by(block) {
                let width = block.min(in_len - q0);
                let x_block = MatRef::new(&xg[q0..], cg, width, in_len, 1)?;
                yg.par_chunks_mut((chunk * out_len).max(1))
                    .zip(cols[..rows * width].par_chunks_mut((chunk * k_len * width).max(1)))
                    .enumerate()
                    .try_for_each(|(task, (planes, cols))| -> Result<(), KernelError> {
                        let (first, count) = (task * chunk * k_len, cols.len() / width);
                        if width == 1 {
                            // One input position (a 1×1 input): colsᵀ = xᵀ · W, streaming W's rows.
                            let w = MatRef::new(&w_g[first..], cg, count, rows, 1)?;
                            gemm::matmul(MatMut::row_major(cols, 1, count)?, x_block.t(), w, false, gemm_threads)?;
                        } else {
                            gemm::matmul(
                                MatMut::row_major(cols, count, width)?,
                                wt_rows(first, count)?,
                                x_block,
                                false,
                                gemm_threads,
                            )?;
                        }
                        scatter_add(&g, cols, q0..q0 + width, planes);
                        Ok(())
                    })?;
            }
        }
    }
    ctx.give_scratch(cols);
    array(&shape, y)
}
