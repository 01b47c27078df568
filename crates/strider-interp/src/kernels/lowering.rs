//! Kernels of the ops that lowerings introduce: `ZeroInsert` and the weight rearrangements
//! (`SubpixelKernel`, `PhaseKernel`, `ResizeConvKernel`), which a prepared plan evaluates once.

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rayon::prelude::*;
use strider_ir::op::{PhaseKernelAttrs, ResizeConvKernelAttrs, SubpixelKernelAttrs, ZeroInsertAttrs};

use super::{Ctx, KernelError, array, cartesian, contiguous, grain};

/// Places x[…, i, …] at out[…, i·stride, …]; everything else is zero. Each input row (last axis) is
/// written with the last axis' stride into its output row; output rows no input reaches stay zero.
pub fn zero_insert(
    ctx: &mut Ctx,
    x: &ArrayViewD<f32>,
    attrs: &ZeroInsertAttrs,
    out_shape: &[usize],
) -> Result<ArrayD<f32>, KernelError> {
    let mut out = ctx.output_zeros(out_shape.iter().product())?;
    let (rank, spatial) = (x.ndim(), x.ndim().saturating_sub(2));
    let (Some(&row_len), Some(&out_row)) = (x.shape().last(), out_shape.last()) else {
        return array(out_shape, out);
    };
    if row_len == 0 || out_row == 0 || x.is_empty() {
        return array(out_shape, out);
    }
    let stride = |a: usize| if a >= 2 { attrs.strides[a - 2] } else { 1 };
    let s = if spatial > 0 { attrs.strides[spatial - 1] } else { 1 };
    let data = contiguous(x);
    // Output row → the input row landing in it, if every leading index is a multiple of its stride.
    out.par_chunks_mut(out_row).enumerate().with_min_len(grain(out_row)).for_each(|(row, dst)| {
        let (mut rest, mut source, mut scale) = (row, 0, 1);
        for a in (0..rank - 1).rev() {
            let (o, st) = (rest % out_shape[a], stride(a));
            rest /= out_shape[a];
            if o % st != 0 {
                return;
            }
            source += (o / st) * scale;
            scale *= x.shape()[a];
        }
        let src = &data[source * row_len..][..row_len];
        dst.iter_mut().step_by(s).zip(src).for_each(|(d, &v)| *d = v);
    });
    array(out_shape, out)
}

/// See [`SubpixelKernelAttrs`]: out[m·P + r, c, t] = W[g·C/g + c, m mod M/g, k(r, t)] or 0.
pub fn subpixel_kernel(w: &ArrayViewD<f32>, attrs: &SubpixelKernelAttrs, out_shape: &[usize]) -> ArrayD<f32> {
    let dilations = attrs.dilations_or_ones();
    let kernel = &w.shape()[2..];
    let taps = &out_shape[2..];
    // lookup[a][r][t] = the kernel index k on axis a serving phase r at tap t.
    let lookup: Vec<Vec<Vec<Option<usize>>>> = (0..kernel.len())
        .map(|a| {
            let (s, d, l) = (attrs.strides[a], dilations[a], taps[a]);
            let mut table = vec![vec![None; l]; s];
            for k in 0..kernel[a] {
                let (r, j) = ((k * d) % s, (k * d) / s);
                table[r][l - 1 - j] = Some(k);
            }
            table
        })
        .collect();
    let phases: usize = attrs.strides.iter().product();
    let (c_per_group, m_per_group) = (w.shape()[0] / attrs.group, w.shape()[1]);
    let mut src = vec![0usize; w.ndim()];
    ArrayD::from_shape_fn(IxDyn(out_shape), |ix| {
        let (m, mut r) = (ix[0] / phases, ix[0] % phases);
        src[0] = (m / m_per_group) * c_per_group + ix[1];
        src[1] = m % m_per_group;
        for a in (0..kernel.len()).rev() {
            let s = attrs.strides[a];
            match lookup[a][r % s][ix[2 + a]] {
                Some(k) => src[2 + a] = k,
                None => return 0.0,
            }
            r /= s;
        }
        w[IxDyn(&src)]
    })
}

/// See [`PhaseKernelAttrs`]: out[g·M/g + m, c, t] = W[g·C/g + c, m, k] for the tap k of this phase
/// whose offset ⌊k·d/s⌋ is J − t on every axis (zero where no tap has that offset).
pub fn phase_kernel(w: &ArrayViewD<f32>, attrs: &PhaseKernelAttrs, out_shape: &[usize]) -> ArrayD<f32> {
    let kernel = &w.shape()[2..];
    let highest: Vec<usize> = attrs.offsets(kernel).map(|o| o.iter().map(|(_, hi)| *hi).collect()).unwrap_or_default();
    // lookup[a][t] = the tap k on axis a at position t of the phase window.
    let lookup: Vec<Vec<Option<usize>>> = (0..kernel.len())
        .map(|a| {
            let (s, d, r) = (attrs.strides[a], attrs.dilations[a], attrs.phase[a]);
            let mut table = vec![None; out_shape[2 + a]];
            for k in (0..kernel[a]).filter(|k| (k * d) % s == r) {
                table[highest[a] - k * d / s] = Some(k);
            }
            table
        })
        .collect();
    let (c_per_group, m_per_group) = (w.shape()[0] / attrs.group, w.shape()[1]);
    let mut src = vec![0usize; w.ndim()];
    ArrayD::from_shape_fn(IxDyn(out_shape), |ix| {
        src[0] = (ix[0] / m_per_group) * c_per_group + ix[1];
        src[1] = ix[0] % m_per_group;
        for a in 0..kernel.len() {
            match lookup[a][ix[2 + a]] {
                Some(k) => src[2 + a] = k,
                None => return 0.0,
            }
        }
        w[IxDyn(&src)]
    })
}

/// See [`ResizeConvKernelAttrs`]: out[m·P + r, c, e] = Σ W[m, c, t] over the taps t whose
/// low-resolution offset ⌊(r + t·d − p)/f⌋ is e + ⌊−p/f⌋ on every axis.
pub fn resize_conv_kernel(w: &ArrayViewD<f32>, attrs: &ResizeConvKernelAttrs, out_shape: &[usize]) -> ArrayD<f32> {
    let kernel = &w.shape()[2..];
    let first = attrs.first_offset();
    // Per axis: for each phase r, the (tap t, fused tap e) pairs.
    let per_axis: Vec<Vec<Vec<(usize, usize)>>> = (0..kernel.len())
        .map(|a| {
            let (f, d, p) = (attrs.factors[a] as i64, attrs.dilations[a] as i64, attrs.pads_begin[a] as i64);
            (0..f)
                .map(|r| {
                    (0..kernel[a]).map(|t| (t, ((r + t as i64 * d - p).div_euclid(f) - first[a]) as usize)).collect()
                })
                .collect()
        })
        .collect();
    let phases: usize = attrs.factors.iter().product();
    let (m_count, c_count) = (w.shape()[0], w.shape()[1]);
    let mut out = ArrayD::<f32>::zeros(IxDyn(out_shape));
    for r_flat in 0..phases {
        // Row-major phase multi-index.
        let mut r = vec![0usize; kernel.len()];
        let mut rest = r_flat;
        for a in (0..kernel.len()).rev() {
            r[a] = rest % attrs.factors[a];
            rest /= attrs.factors[a];
        }
        let pairs: Vec<Vec<(usize, usize)>> = (0..kernel.len()).map(|a| per_axis[a][r[a]].clone()).collect();
        for combo in cartesian(&pairs) {
            let (t, e): (Vec<usize>, Vec<usize>) = combo.into_iter().unzip();
            for m in 0..m_count {
                for c in 0..c_count {
                    let src: Vec<usize> = [&[m, c][..], &t].concat();
                    let dst: Vec<usize> = [&[m * phases + r_flat, c][..], &e].concat();
                    out[IxDyn(&dst)] += w[IxDyn(&src)];
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_insert_spaces_elements() {
        let x = ArrayD::from_shape_vec(IxDyn(&[1, 1, 2, 2]), vec![1., 2., 3., 4.]).unwrap();
        let y =
            zero_insert(&mut Ctx::new(2), &x.view(), &ZeroInsertAttrs { strides: vec![2, 3] }, &[1, 1, 3, 4]).unwrap();
        assert_eq!(y.as_slice().unwrap(), &[1., 0., 0., 2., 0., 0., 0., 0., 3., 0., 0., 4.]);
    }

    #[test]
    fn subpixel_kernel_splits_phases() {
        // 1-D, k = 4, s = 2: phase 0 takes taps k = 2, 0 (flipped order), phase 1 takes k = 3, 1.
        let w = ArrayD::from_shape_vec(IxDyn(&[1, 1, 4]), vec![1., 2., 3., 4.]).unwrap();
        let attrs = SubpixelKernelAttrs { strides: vec![2], dilations: vec![], group: 1 };
        let y = subpixel_kernel(&w.view(), &attrs, &[2, 1, 2]);
        assert_eq!(y.as_slice().unwrap(), &[3., 1., 4., 2.]);
    }
}
