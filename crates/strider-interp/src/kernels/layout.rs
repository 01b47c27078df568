//! Layout kernels: they only move or copy elements.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice};
use strider_ir::Shape;
use strider_ir::op::{DepthToSpaceAttrs, DepthToSpaceMode, PadAttrs, PadMode, SliceAttrs};

use super::KernelError;

/// Reshapes to `shape` in row-major order.
pub fn reshape(x: &ArrayViewD<f32>, shape: &[usize]) -> Result<ArrayD<f32>, KernelError> {
    x.to_shape(IxDyn(shape)).map(|v| v.into_owned()).map_err(|_| KernelError::Layout)
}

/// Joins along `axis`.
pub fn concat(inputs: &[ArrayViewD<f32>], axis: usize) -> Result<ArrayD<f32>, KernelError> {
    ndarray::concatenate(Axis(axis), inputs).map_err(|_| KernelError::Layout)
}

/// Output axis i = input axis `perm[i]`.
pub fn transpose(x: &ArrayViewD<f32>, perm: &[usize]) -> ArrayD<f32> {
    x.clone().permuted_axes(IxDyn(perm)).as_standard_layout().into_owned()
}

/// Strided slice with ONNX semantics (already resolved per axis).
pub fn slice(x: &ArrayViewD<f32>, attrs: &SliceAttrs) -> Result<ArrayD<f32>, KernelError> {
    let axes = attrs.resolve(&Shape(x.shape().to_vec()))?;
    let view = x.slice_each_axis(|ax| {
        let a = axes[ax.axis.index()];
        let (start, len) = (a.start as isize, a.len as isize);
        if a.len == 0 {
            Slice::new(0, Some(0), 1)
        } else if a.step > 0 {
            Slice::new(start, Some(start + (len - 1) * a.step as isize + 1), a.step as isize)
        } else {
            // ndarray walks a negative step from the end of [lo, hi).
            let lo = start + (len - 1) * a.step as isize;
            Slice::new(lo, Some(start + 1), a.step as isize)
        }
    });
    Ok(view.to_owned())
}

/// Source index on an axis of size `d` for padded position `p` (`pad` elements before), or `None` for
/// the fill value.
fn pad_source(mode: PadMode, p: i64, pad: i64, d: i64) -> Option<usize> {
    let i = p - pad;
    let i = match mode {
        PadMode::Constant => return (0..d).contains(&i).then_some(i as usize),
        PadMode::Edge => i.clamp(0, d - 1),
        PadMode::Wrap => i.rem_euclid(d),
        PadMode::Reflect if d == 1 => 0,
        PadMode::Reflect => {
            let period = 2 * (d - 1);
            let r = i.rem_euclid(period);
            if r < d { r } else { period - r }
        }
    };
    Some(i as usize)
}

/// Pads (or crops, with negative pads) each axis.
pub fn pad(x: &ArrayViewD<f32>, attrs: &PadAttrs, out_shape: &[usize]) -> ArrayD<f32> {
    let rank = x.ndim();
    let maps: Vec<Vec<Option<usize>>> = (0..rank)
        .map(|a| {
            let d = x.shape()[a] as i64;
            (0..out_shape[a] as i64).map(|p| pad_source(attrs.mode, p, attrs.pads[a], d)).collect()
        })
        .collect();
    let mut src = vec![0usize; rank];
    ArrayD::from_shape_fn(IxDyn(out_shape), |ix| {
        for a in 0..rank {
            match maps[a][ix[a]] {
                Some(i) => src[a] = i,
                None => return attrs.value,
            }
        }
        x[IxDyn(&src)]
    })
}

/// Moves blocks of channels into spatial blocks (any spatial rank).
pub fn depth_to_space(x: &ArrayViewD<f32>, attrs: &DepthToSpaceAttrs) -> Result<ArrayD<f32>, KernelError> {
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let spatial = &x.shape()[2..];
    let d = spatial.len();
    let b = attrs.blocksize;
    let cout = c / b.checked_pow(d as u32).filter(|&p| p > 0).ok_or(KernelError::Layout)?;
    // Split the channel axis into (block offsets…, c') for DCR or (c', block offsets…) for CRD.
    let mut split = vec![n];
    match attrs.mode {
        DepthToSpaceMode::DCR => split.extend(std::iter::repeat_n(b, d).chain([cout])),
        DepthToSpaceMode::CRD => split.extend(std::iter::once(cout).chain(std::iter::repeat_n(b, d))),
    }
    split.extend_from_slice(spatial);
    let (c_axis, first_block) = match attrs.mode {
        DepthToSpaceMode::DCR => (1 + d, 1),
        DepthToSpaceMode::CRD => (1, 2),
    };
    // Target order: N, c', then for each spatial axis (spatial, its block offset).
    let mut perm = vec![0, c_axis];
    for a in 0..d {
        perm.extend([2 + d + a, first_block + a]);
    }
    let mut out_shape = vec![n, cout];
    out_shape.extend(spatial.iter().map(|&s| s * b));
    let split = reshape(x, &split)?;
    reshape(&transpose(&split.view(), &perm).view(), &out_shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strider_ir::op::SliceAttrs;

    fn arr(shape: &[usize], v: Vec<f32>) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
    }

    #[test]
    fn depth_to_space_matches_onnx_examples() {
        // ONNX DepthToSpace docs: x = arange(48).reshape(1, 8, 2, 3), blocksize 2.
        let x = arr(&[1, 8, 2, 3], (0..48).map(|v| v as f32).collect());
        let dcr = depth_to_space(&x.view(), &DepthToSpaceAttrs { blocksize: 2, mode: DepthToSpaceMode::DCR }).unwrap();
        let first_row_dcr = [0., 12., 1., 13., 2., 14.];
        assert_eq!(&dcr.as_slice().unwrap()[..6], &first_row_dcr);
        assert_eq!(&dcr.as_slice().unwrap()[6..12], &[24., 36., 25., 37., 26., 38.]);
        let crd = depth_to_space(&x.view(), &DepthToSpaceAttrs { blocksize: 2, mode: DepthToSpaceMode::CRD }).unwrap();
        assert_eq!(&crd.as_slice().unwrap()[..12], &[0., 6., 1., 7., 2., 8., 12., 18., 13., 19., 14., 20.]);
        assert_eq!(crd.shape(), &[1, 2, 4, 6]);
    }

    #[test]
    fn slices_forward_and_backward() {
        let x = arr(&[2, 4], (1..=8).map(|v| v as f32).collect());
        let a = SliceAttrs { starts: vec![1, 0], ends: vec![2, 3], axes: vec![0, 1], steps: vec![1, 2] };
        assert_eq!(slice(&x.view(), &a).unwrap().as_slice().unwrap(), &[5., 7.]);
        let rev = SliceAttrs { starts: vec![-1], ends: vec![-1000], axes: vec![1], steps: vec![-2] };
        assert_eq!(slice(&x.view(), &rev).unwrap().as_slice().unwrap(), &[4., 2., 8., 6.]);
    }

    #[test]
    fn pad_modes_match_numpy() {
        let x = arr(&[4], vec![1., 2., 3., 4.]);
        let with = |mode, pads: Vec<i64>| {
            let out = [(4 + pads[0] + pads[1]) as usize];
            pad(&x.view(), &PadAttrs { pads, mode, value: 9.0 }, &out).into_raw_vec_and_offset().0
        };
        assert_eq!(with(PadMode::Constant, vec![2, 1]), vec![9., 9., 1., 2., 3., 4., 9.]);
        assert_eq!(with(PadMode::Reflect, vec![2, 2]), vec![3., 2., 1., 2., 3., 4., 3., 2.]);
        assert_eq!(with(PadMode::Edge, vec![2, 1]), vec![1., 1., 1., 2., 3., 4., 4.]);
        assert_eq!(with(PadMode::Wrap, vec![2, 1]), vec![3., 4., 1., 2., 3., 4., 1.]);
        assert_eq!(with(PadMode::Constant, vec![-1, -2]), vec![2.]);
    }
}
