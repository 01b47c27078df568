//! `Conv`: per batch element and group, Y = W · cols, where cols is the im2col matrix (one row per
//! input channel and tap, one column per output position) built in blocks of output positions so its
//! memory stays bounded for every rank. A pointwise conv (1×1, stride 1, no padding) multiplies the
//! input directly; groups with few channels go to the direct kernel, where a GEMM would be tiny.

use ndarray::{ArrayD, ArrayViewD};
use rayon::prelude::*;
use strider_ir::Shape;
use strider_ir::op::{AxisGeometry, ConvAttrs};

use super::geometry::{RANK, conv_outputs_inside, conv_source, padded, tap_of, volume};
use super::{BLOCK_ELEMENTS, Ctx, KernelError, array, contiguous, direct, grain};
use crate::gemm::{self, MatMut, MatRef};

/// Conv: y = W ⋆ x (+ B).
pub fn conv(
    ctx: &mut Ctx,
    attrs: &ConvAttrs,
    x: &ArrayViewD<f32>,
    w: &ArrayViewD<f32>,
    bias: Option<ArrayViewD<f32>>,
) -> Result<ArrayD<f32>, KernelError> {
    let geometry = attrs.geometry(&Shape(x.shape().to_vec()), &Shape(w.shape().to_vec()))?;
    let g = padded(&geometry)?;
    let (n, c, m) = (x.shape()[0], x.shape()[1], w.shape()[0]);
    let groups = attrs.group;
    let (cg, mg) = (c / groups, m / groups);
    let (in_len, out_len, k_len) = (volume(&g, |a| a.input), volume(&g, |a| a.output), volume(&g, |a| a.kernel));
    let mut shape = vec![n, m];
    shape.extend(geometry.iter().map(|a| a.output));
    let (xs, ws) = (contiguous(x), contiguous(w));
    let bias = bias.as_ref().map(contiguous);
    if direct::prefers_direct(cg, mg) {
        let y = direct::conv(ctx, &g, &xs, &ws, bias.as_deref(), [n, c, m, groups])?;
        return array(&shape, y);
    }
    let rows = cg * k_len;
    let pointwise = k_len == 1 && g.iter().all(|a| a.stride == 1 && a.pad_begin == 0 && a.input == a.output);
    let mut y = ctx.output(n * m * out_len)?;
    let block = (BLOCK_ELEMENTS / rows.max(1)).clamp(1, out_len.max(1));
    let mut cols = if pointwise { Vec::new() } else { ctx.scratch(rows * block)? };
    for b in 0..n {
        for grp in 0..groups {
            let wg = MatRef::row_major(&ws[grp * mg * rows..], mg, rows)?;
            let xg = &xs[(b * c + grp * cg) * in_len..][..cg * in_len];
            let yg = &mut y[(b * m + grp * mg) * out_len..][..mg * out_len];
            if pointwise {
                gemm::matmul(
                    MatMut::row_major(yg, mg, out_len)?,
                    wg,
                    MatRef::row_major(xg, cg, in_len)?,
                    false,
                    ctx.threads,
                )?;
                continue;
            }
            for p0 in (0..out_len).step_by(block) {
                let width = block.min(out_len - p0);
                let cols = &mut cols[..rows * width];
                im2col(&g, xg, in_len, p0..p0 + width, cols);
                let dst = MatMut::row_major_strided(&mut yg[p0..], mg, width, out_len)?;
                gemm::matmul(dst, wg, MatRef::row_major(cols, rows, width)?, false, ctx.threads)?;
            }
        }
    }
    if !pointwise {
        ctx.give_scratch(cols);
    }
    if let Some(bias) = bias {
        add_bias(&mut y, &bias, out_len);
    }
    array(&shape, y)
}

/// Adds `bias[channel]` to every plane of `y` (planes of `plane` elements, channels cycling).
pub(crate) fn add_bias(y: &mut [f32], bias: &[f32], plane: usize) {
    if plane == 0 || bias.is_empty() {
        return;
    }
    y.par_chunks_mut(plane).enumerate().with_min_len(grain(plane)).for_each(|(i, p)| {
        let b = bias[i % bias.len()];
        p.iter_mut().for_each(|v| *v += b);
    });
}

/// Fills `cols` (rows = channel × tap, columns = the output positions in `positions`) from the
/// channels of one group, `xg` holding `in_len` elements per channel. Rows are filled in parallel.
/// Short output lines go through an index map shared by all channels (per-line work would dominate);
/// long ones are copied a line segment at a time.
pub(crate) fn im2col(
    g: &[AxisGeometry; RANK],
    xg: &[f32],
    in_len: usize,
    positions: std::ops::Range<usize>,
    cols: &mut [f32],
) {
    if g[2].output < SHORT_LINE {
        im2col_indexed(g, xg, in_len, positions, cols)
    } else {
        im2col_lines(g, xg, in_len, positions, cols)
    }
}

/// im2col one output line segment at a time: a copy (stride 1) or a strided read per segment.
fn im2col_lines(
    g: &[AxisGeometry; RANK],
    xg: &[f32],
    in_len: usize,
    positions: std::ops::Range<usize>,
    cols: &mut [f32],
) {
    let width = positions.len();
    let k_len = volume(g, |a| a.kernel);
    let (out1, out2) = (g[1].output, g[2].output);
    cols.par_chunks_mut(width.max(1)).enumerate().with_min_len(grain(width)).for_each(|(row, dst)| {
        let (ci, k) = (row / k_len, row % k_len);
        let tap = tap_of(g, k);
        let xc = &xg[ci * in_len..][..in_len];
        let inside = conv_outputs_inside(&g[2], tap[2]);
        let (s, e) = (g[2].stride, (tap[2] * g[2].dilation) as i64 - g[2].pad_begin);
        // Walk the positions one output line (fixed leading indices) at a time.
        let mut p = positions.start;
        while p < positions.end {
            let (line, o_start) = (p / out2, p % out2);
            let o_end = out2.min(o_start + positions.end - p);
            let seg = &mut dst[p - positions.start..][..o_end - o_start];
            let source = conv_source(&g[0], line / out1, tap[0]).zip(conv_source(&g[1], line % out1, tap[1]));
            match source {
                Some((ia, ib)) => {
                    let x_line = &xc[(ia * g[1].input + ib) * g[2].input..][..g[2].input];
                    let lo = inside.start.clamp(o_start, o_end);
                    let hi = inside.end.clamp(lo, o_end);
                    seg[..lo - o_start].fill(0.0);
                    seg[hi - o_start..].fill(0.0);
                    let first = (lo as i64 * s as i64 + e) as usize;
                    let body = &mut seg[lo - o_start..hi - o_start];
                    if body.is_empty() {
                        // No tap position inside the input on this line.
                    } else if s == 1 {
                        body.copy_from_slice(&x_line[first..first + body.len()]);
                    } else {
                        body.iter_mut().zip(x_line[first..].iter().step_by(s)).for_each(|(d, &v)| *d = v);
                    }
                }
                None => seg.fill(0.0),
            }
            p += o_end - o_start;
        }
    });
}

/// Output lines shorter than this use [`im2col_indexed`].
const SHORT_LINE: usize = 32;

/// im2col through a map from (tap, position) to the input offset within a channel (or none, for
/// padding), built once and applied to every channel.
fn im2col_indexed(
    g: &[AxisGeometry; RANK],
    xg: &[f32],
    in_len: usize,
    positions: std::ops::Range<usize>,
    cols: &mut [f32],
) {
    let width = positions.len();
    let k_len = volume(g, |a| a.kernel);
    let (out1, out2) = (g[1].output, g[2].output);
    let map: Vec<Option<usize>> = (0..k_len)
        .flat_map(|k| {
            let tap = tap_of(g, k);
            positions.clone().map(move |p| {
                let (line, o) = (p / out2, p % out2);
                let (ia, ib, ic) = (
                    conv_source(&g[0], line / out1, tap[0])?,
                    conv_source(&g[1], line % out1, tap[1])?,
                    conv_source(&g[2], o, tap[2])?,
                );
                Some((ia * g[1].input + ib) * g[2].input + ic)
            })
        })
        .collect();
    cols.par_chunks_mut(width.max(1)).enumerate().with_min_len(grain(width)).for_each(|(row, dst)| {
        let (ci, k) = (row / k_len, row % k_len);
        let xc = &xg[ci * in_len..][..in_len];
        for (d, source) in dst.iter_mut().zip(&map[k * width..][..width]) {
            *d = source.map_or(0.0, |i| xc[i]);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn both_im2col_forms_agree() {
        let axis = |input: usize, output: usize, kernel, stride, dilation, pad_begin| AxisGeometry {
            input,
            output,
            kernel,
            stride,
            dilation,
            pad_begin,
            pad_end: 0,
            output_padding: 0,
        };
        let cases = [
            [axis(1, 1, 1, 1, 1, 0), axis(5, 4, 3, 1, 1, 0), axis(40, 40, 3, 1, 1, 1)],
            [axis(3, 2, 2, 2, 1, 1), axis(6, 3, 3, 2, 2, 2), axis(70, 34, 4, 2, 1, 1)],
            [axis(1, 1, 1, 1, 1, 0), axis(1, 1, 1, 1, 1, 0), axis(9, 5, 5, 3, 2, 4)],
        ];
        for g in cases {
            let (c, in_len, k_len, out_len) =
                (2, volume(&g, |a| a.input), volume(&g, |a| a.kernel), volume(&g, |a| a.output));
            let x: Vec<f32> = (0..c * in_len).map(|v| v as f32 + 1.0).collect();
            for positions in [0..out_len, out_len / 3..out_len - 1] {
                let len = c * k_len * positions.len();
                let (mut lines, mut indexed) = (vec![f32::NAN; len], vec![f32::NAN; len]);
                im2col_lines(&g, &x, in_len, positions.clone(), &mut lines);
                im2col_indexed(&g, &x, in_len, positions.clone(), &mut indexed);
                assert_eq!(lines, indexed, "{g:?} {positions:?}");
                // Every entry is an input element or padding.
                assert!(lines.iter().all(|&v| v == 0.0 || x.contains(&v)));
            }
        }
    }

    fn arr(shape: &[usize], v: Vec<f32>) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
    }

    #[test]
    fn onnx_conv_examples_with_and_without_padding() {
        // ONNX Conv docs: 5×5 input 0..25, 3×3 ones kernel.
        let x = arr(&[1, 1, 5, 5], (0..25).map(|v| v as f32).collect());
        // Two output channels, so the GEMM path runs (one channel pair would go to the direct kernel).
        let w = arr(&[2, 1, 3, 3], vec![1.; 18]);
        let ctx = &mut Ctx::new(2);
        let padded = ConvAttrs { pads: vec![1, 1, 1, 1], ..Default::default() };
        let y = conv(ctx, &padded, &x.view(), &w.view(), None).unwrap();
        let expected = [
            12., 21., 27., 33., 24., 33., 54., 63., 72., 51., 63., 99., 108., 117., 81., 93., 144., 153., 162., 111.,
            72., 111., 117., 123., 84.,
        ];
        assert_eq!(&y.as_slice().unwrap()[..25], &expected);
        let valid = conv(ctx, &ConvAttrs::default(), &x.view(), &w.view(), None).unwrap();
        assert_eq!(&valid.as_slice().unwrap()[..9], &[54., 63., 72., 99., 108., 117., 144., 153., 162.]);
        // conv_with_strides_and_asymmetric_padding: strides 2, pads [1, 0, 1, 0] on a 7×5 input.
        let x = arr(&[1, 1, 7, 5], (0..35).map(|v| v as f32).collect());
        let asym = ConvAttrs { strides: vec![2, 2], pads: vec![1, 0, 1, 0], ..Default::default() };
        let y = conv(ctx, &asym, &x.view(), &w.view(), None).unwrap();
        assert_eq!(y.shape(), &[1, 2, 4, 2]);
        assert_eq!(&y.as_slice().unwrap()[..8], &[21., 33., 99., 117., 189., 207., 171., 183.]);
    }
}
