//! Kernels of the ops that lowerings introduce: `ZeroInsert`, `Col2Im` and `SubpixelKernel`.

use ndarray::{ArrayD, ArrayViewD, IxDyn, Slice};
use strider_ir::op::{Col2ImAttrs, PhaseKernelAttrs, ResizeConvKernelAttrs, SubpixelKernelAttrs, ZeroInsertAttrs};

use super::{KernelError, cartesian};

/// Places x[…, i, …] at out[…, i·stride, …]; everything else is zero.
pub fn zero_insert(x: &ArrayViewD<f32>, attrs: &ZeroInsertAttrs, out_shape: &[usize]) -> ArrayD<f32> {
    let mut out = ArrayD::<f32>::zeros(IxDyn(out_shape));
    out.slice_each_axis_mut(|ax| match ax.axis.index() {
        a if a >= 2 => Slice::new(0, None, attrs.strides[a - 2] as isize),
        _ => Slice::from(..),
    })
    .assign(x);
    out
}

/// ONNX Col2Im: out[n, c, p·s − pad + b·d] += x[n, c·∏block + b, p] over block offsets b and
/// positions p (multi-indices, row-major).
pub fn col2im(x: &ArrayViewD<f32>, attrs: &Col2ImAttrs, out_shape: &[usize]) -> Result<ArrayD<f32>, KernelError> {
    let axes = attrs.axes()?;
    let x = x.as_standard_layout();
    let xs = x.as_slice().ok_or(KernelError::Layout)?;
    let (n, c) = (out_shape[0], out_shape[1]);
    let block: usize = axes.iter().map(|a| a.block).product();
    let positions: usize = axes.iter().map(|a| a.positions).product();
    let image: usize = axes.iter().map(|a| a.image).product();
    // Per axis, every (position, block offset, image index) that lands inside the image.
    let triples: Vec<Vec<(usize, usize, usize)>> = axes
        .iter()
        .map(|a| {
            (0..a.positions)
                .flat_map(|p| {
                    (0..a.block).filter_map(move |b| {
                        let o = (p * a.stride + b * a.dilation) as i64 - a.pad_begin as i64;
                        (0..a.image as i64).contains(&o).then_some((p, b, o as usize))
                    })
                })
                .collect()
        })
        .collect();
    let mut out = vec![0f32; n * c * image];
    for combo in cartesian(&triples) {
        let (mut p, mut b, mut o) = (0, 0, 0);
        for (a, &(pa, ba, oa)) in axes.iter().zip(&combo) {
            p = p * a.positions + pa;
            b = b * a.block + ba;
            o = o * a.image + oa;
        }
        for nc in 0..n * c {
            let (ni, ci) = (nc / c, nc % c);
            out[nc * image + o] += xs[(ni * c * block + ci * block + b) * positions + p];
        }
    }
    ArrayD::from_shape_vec(IxDyn(out_shape), out).map_err(|_| KernelError::Layout)
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
        let y = zero_insert(&x.view(), &ZeroInsertAttrs { strides: vec![2, 3] }, &[1, 1, 3, 4]);
        assert_eq!(y.as_slice().unwrap(), &[1., 0., 0., 2., 0., 0., 0., 0., 3., 0., 0., 4.]);
    }

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
        let y = col2im(&x.view(), &attrs, &[1, 1, 5, 5]).unwrap();
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
        let y = col2im(&x.view(), &attrs, &[1, 1, 3]).unwrap();
        assert_eq!(y.as_slice().unwrap(), &[1., 110., 1000.]);
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
