//! `ConvTranspose` as onnxruntime computes it: per batch element and group, cols = Wᵀ · x (one GEMM
//! over the input channels, in blocks of input positions so the column buffer stays bounded), then
//! col2im adds each column into the output. Groups with few channels go to the direct kernel.

use ndarray::{ArrayD, ArrayViewD};
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
    let mut cols = ctx.scratch(rows * block)?;
    for b in 0..n {
        for grp in 0..groups {
            // W for this group is (C/g) × (M/g·k) row-major: its packed transpose, or the transpose read in place.
            let w_g = MatRef::row_major(&ws[grp * cg * rows..], cg, rows)?;
            let wt = match packed {
                Some(p) => MatRef::row_major(&p[grp * cg * rows..], rows, cg)?,
                None => w_g.t(),
            };
            let xg = &xs[(b * c + grp * cg) * in_len..][..cg * in_len];
            let yg = &mut y[(b * m + grp * mg) * out_len..][..mg * out_len];
            for q0 in (0..in_len).step_by(block) {
                let width = block.min(in_len - q0);
                let cols = &mut cols[..rows * width];
                let x_block = MatRef::new(&xg[q0..], cg, width, in_len, 1)?;
                if width == 1 {
                    // One input position (a 1×1 input): colsᵀ = xᵀ · W, streaming W's rows as they are.
                    gemm::matmul(MatMut::row_major(cols, 1, rows)?, x_block.t(), w_g, false, ctx.threads)?;
                } else {
                    gemm::matmul(MatMut::row_major(cols, rows, width)?, wt, x_block, false, ctx.threads)?;
                }
                scatter_add(&g, cols, q0..q0 + width, yg);
            }
        }
    }
    ctx.give_scratch(cols);
    array(&shape, y)
}
