//! Column-to-image scatter: the second half of ConvTranspose as GEMM + col2im (what onnxruntime and
//! PyTorch do), and the ONNX `Col2Im` op. Each column row (output channel, tap) adds its values into
//! the output at i·stride + tap·dilation − pad; output channels are independent, so they run in
//! parallel and the sum order per element never depends on the thread count.

use ndarray::{ArrayD, ArrayViewD};
use rayon::prelude::*;
use strider_ir::op::{AxisGeometry, Col2ImAttrs};

use super::geometry::{RANK, padded, transpose_inputs_inside, transpose_target, volume};
use super::{Ctx, KernelError, array, contiguous, grain};

/// Adds a block of columns into the output planes. `cols` has one row per (plane, tap) — planes
/// outermost — and one column per input position in `positions`; `planes` holds one output plane of
/// ∏output elements per row group.
pub(crate) fn scatter_add(
    g: &[AxisGeometry; RANK],
    cols: &[f32],
    positions: std::ops::Range<usize>,
    planes: &mut [f32],
) {
    let (width, k_len, out_len) = (positions.len(), volume(g, |a| a.kernel), volume(g, |a| a.output));
    if width == 0 || out_len == 0 {
        return;
    }
    let in2 = g[2].input;
    planes.par_chunks_mut(out_len).zip(cols.par_chunks(k_len * width)).with_min_len(grain(k_len * width)).for_each(
        |(plane, rows)| {
            for (k, row) in rows.chunks(width).enumerate() {
                let tap = [k / (g[1].kernel * g[2].kernel), (k / g[2].kernel) % g[1].kernel, k % g[2].kernel];
                let inside = transpose_inputs_inside(&g[2], tap[2]);
                let (s, e) = (g[2].stride, (tap[2] * g[2].dilation) as i64 - g[2].pad_begin);
                let mut p = positions.start;
                while p < positions.end {
                    let (line, i_start) = (p / in2, p % in2);
                    let i_end = in2.min(i_start + positions.end - p);
                    let target = transpose_target(&g[0], line / g[1].input, tap[0]).zip(transpose_target(
                        &g[1],
                        line % g[1].input,
                        tap[1],
                    ));
                    if let Some((oa, ob)) = target {
                        let y_line = &mut plane[(oa * g[1].output + ob) * g[2].output..][..g[2].output];
                        let lo = inside.start.clamp(i_start, i_end);
                        let hi = inside.end.clamp(lo, i_end);
                        let src = &row[p - positions.start + lo - i_start..][..hi - lo];
                        let first = (lo as i64 * s as i64 + e) as usize;
                        if src.is_empty() {
                            // No input on this line reaches the output through this tap.
                        } else if s == 1 {
                            y_line[first..first + src.len()].iter_mut().zip(src).for_each(|(d, &v)| *d += v);
                        } else {
                            y_line[first..].iter_mut().step_by(s).zip(src).for_each(|(d, &v)| *d += v);
                        }
                    }
                    p += i_end - i_start;
                }
            }
        },
    );
}

/// ONNX Col2Im: out[n, c, p·s − pad + b·d] += x[n, c·∏block + b, p] over block offsets b and
/// positions p (multi-indices, row-major).
pub fn col2im(
    ctx: &mut Ctx,
    x: &ArrayViewD<f32>,
    attrs: &Col2ImAttrs,
    out_shape: &[usize],
) -> Result<ArrayD<f32>, KernelError> {
    let axes = attrs.axes()?;
    let geometry: Vec<AxisGeometry> = axes
        .iter()
        .map(|a| AxisGeometry {
            input: a.positions,
            output: a.image,
            kernel: a.block,
            stride: a.stride,
            dilation: a.dilation,
            pad_begin: a.pad_begin as i64,
            pad_end: a.pad_end as i64,
            output_padding: 0,
        })
        .collect();
    let g = padded(&geometry)?;
    let (n, c) = (out_shape[0], out_shape[1]);
    let (positions, plane) = (volume(&g, |a| a.input), volume(&g, |a| a.output));
    let xs = contiguous(x);
    let mut y = ctx.output_zeros(n * c * plane);
    for b in 0..n {
        let cols = &xs[b * c * volume(&g, |a| a.kernel) * positions..];
        scatter_add(&g, cols, 0..positions, &mut y[b * c * plane..][..c * plane]);
    }
    array(out_shape, y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn col2im_matches_onnx_example() {
        // ONNX Col2Im docs: (1, 5, 5) columns, image [5, 5], block [1, 5].
        let cols = [
            1., 6., 11., 16., 21., 2., 7., 12., 17., 22., 3., 8., 13., 18., 23., 4., 9., 14., 19., 24., 5., 0., 15.,
            20., 25.,
        ];
        let x = ArrayD::from_shape_vec(IxDyn(&[1, 5, 5]), cols.to_vec()).unwrap();
        let attrs = Col2ImAttrs {
            image_shape: vec![5, 5],
            block_shape: vec![1, 5],
            dilations: vec![],
            pads: vec![],
            strides: vec![],
        };
        let ctx = &mut Ctx::new(2);
        let y = col2im(ctx, &x.view(), &attrs, &[1, 1, 5, 5]).unwrap();
        let expected: Vec<f32> = (1..=25).map(|v| if v == 10 { 0. } else { v as f32 }).collect();
        assert_eq!(y.as_slice().unwrap(), expected.as_slice());
        // Overlapping blocks add up: a 3-long image from two 2-long blocks with stride 1.
        let x = ArrayD::from_shape_vec(IxDyn(&[1, 2, 2]), vec![1., 10., 100., 1000.]).unwrap();
        let attrs = Col2ImAttrs {
            image_shape: vec![3],
            block_shape: vec![2],
            dilations: vec![],
            pads: vec![],
            strides: vec![],
        };
        let y = col2im(ctx, &x.view(), &attrs, &[1, 1, 3]).unwrap();
        assert_eq!(y.as_slice().unwrap(), &[1., 110., 1000.]);
    }
}
