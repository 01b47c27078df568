//! Layout kernels: they only move or copy elements.

use ndarray::{ArrayD, ArrayViewD};
use rayon::prelude::*;
use strider_ir::Shape;
use strider_ir::op::{DepthToSpaceAttrs, DepthToSpaceMode, PadAttrs, PadMode, SliceAttrs};

use super::{Arg, Ctx, KernelError, array, contiguous, grain};

/// Row-major strides of a shape.
fn strides_of(shape: &[usize]) -> Vec<isize> {
    let mut strides = vec![1isize; shape.len()];
    for a in (0..shape.len().saturating_sub(1)).rev() {
        strides[a] = strides[a + 1] * shape[a + 1] as isize;
    }
    strides
}

/// Fills `dst` (row-major, `shape`) with `src[base + Σ index[a] · strides[a]]`. Works on tiles of the
/// last two axes (in parallel when large): a tile whose rows are contiguous in `src` is copied row by
/// row; a tile whose columns are (a transpose, a depth-to-space interleave) is read column by column,
/// so reads stay contiguous and only the writes stride.
fn gather(src: &[f32], base: isize, strides: &[isize], shape: &[usize], dst: &mut [f32]) {
    let rank = shape.len();
    if dst.is_empty() {
        return;
    }
    if rank == 0 {
        dst[0] = src[base as usize];
        return;
    }
    let (rows, cols) = if rank == 1 { (1, shape[0]) } else { (shape[rank - 2], shape[rank - 1]) };
    let (row_step, col_step) = if rank == 1 { (0, strides[0]) } else { (strides[rank - 2], strides[rank - 1]) };
    let lead = &shape[..rank.saturating_sub(2)];
    let tile = rows * cols;
    if tile == 0 {
        return;
    }
    let copy_tile = |index: usize, out: &mut [f32]| {
        let (mut rest, mut at) = (index, base);
        for (a, &d) in lead.iter().enumerate().rev() {
            at += (rest % d) as isize * strides[a];
            rest /= d;
        }
        if col_step == 1 {
            for (r, out_row) in out.chunks_mut(cols).enumerate() {
                let from = (at + r as isize * row_step) as usize;
                out_row.copy_from_slice(&src[from..from + cols]);
            }
        } else if row_step == 1 {
            for c in 0..cols {
                let from = (at + c as isize * col_step) as usize;
                out.iter_mut().skip(c).step_by(cols).zip(&src[from..from + rows]).for_each(|(d, &v)| *d = v);
            }
        } else {
            for (r, out_row) in out.chunks_mut(cols).enumerate() {
                let row_at = at + r as isize * row_step;
                out_row.iter_mut().enumerate().for_each(|(c, d)| *d = src[(row_at + c as isize * col_step) as usize]);
            }
        }
    };
    if dst.len() >= 2 * tile {
        dst.par_chunks_mut(tile).with_min_len(grain(tile)).enumerate().for_each(|(i, out)| copy_tile(i, out));
    } else {
        dst.chunks_mut(tile).enumerate().for_each(|(i, out)| copy_tile(i, out));
    }
}

/// Reshapes to `shape` in row-major order: an owned input keeps its buffer, a borrowed one is copied.
pub fn reshape(ctx: &mut Ctx, x: Arg, shape: &[usize]) -> Result<ArrayD<f32>, KernelError> {
    match x {
        Arg::Owned(a) if a.is_standard_layout() => a.into_shape_with_order(shape).map_err(|_| KernelError::Layout),
        x => {
            let x = x.dense()?;
            let mut out = ctx.output(x.len())?;
            out.copy_from_slice(&contiguous(&x));
            array(shape, out)
        }
    }
}

/// Joins along `axis`: each input contributes a contiguous run per index of the axes before it.
pub fn concat(
    ctx: &mut Ctx,
    inputs: &[ArrayViewD<f32>],
    axis: usize,
    out_shape: &[usize],
) -> Result<ArrayD<f32>, KernelError> {
    let outer: usize = out_shape[..axis].iter().product();
    let runs: Vec<(std::borrow::Cow<[f32]>, usize)> =
        inputs.iter().map(|x| (contiguous(x), x.shape()[axis..].iter().product::<usize>())).collect();
    let row: usize = runs.iter().map(|(_, len)| len).sum();
    let mut out = ctx.output(outer * row)?;
    if row > 0 {
        out.par_chunks_mut(row).enumerate().with_min_len(grain(row)).for_each(|(o, dst)| {
            let mut at = 0;
            for (data, len) in &runs {
                dst[at..at + len].copy_from_slice(&data[o * len..][..*len]);
                at += len;
            }
        });
    }
    array(out_shape, out)
}

/// Output axis i = input axis `perm[i]`.
pub fn transpose(ctx: &mut Ctx, x: &ArrayViewD<f32>, perm: &[usize]) -> Result<ArrayD<f32>, KernelError> {
    let data = contiguous(x);
    let in_strides = strides_of(x.shape());
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape()[p]).collect();
    let strides: Vec<isize> = perm.iter().map(|&p| in_strides[p]).collect();
    let mut out = ctx.output(x.len())?;
    gather(&data, 0, &strides, &shape, &mut out);
    array(&shape, out)
}

/// Strided slice with ONNX semantics (already resolved per axis).
pub fn slice(ctx: &mut Ctx, x: &ArrayViewD<f32>, attrs: &SliceAttrs) -> Result<ArrayD<f32>, KernelError> {
    let axes = attrs.resolve(&Shape(x.shape().to_vec()))?;
    let data = contiguous(x);
    let in_strides = strides_of(x.shape());
    let shape: Vec<usize> = axes.iter().map(|a| a.len).collect();
    let base: isize =
        axes.iter().zip(&in_strides).map(|(a, &s)| if a.len == 0 { 0 } else { a.start as isize * s }).sum();
    let strides: Vec<isize> = axes.iter().zip(&in_strides).map(|(a, &s)| a.step as isize * s).collect();
    let mut out = ctx.output(shape.iter().product())?;
    gather(&data, base, &strides, &shape, &mut out);
    array(&shape, out)
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

/// Pads (or crops, with negative pads) each axis: one source-index map per axis (not per element),
/// then each output row is read through the maps.
pub fn pad(
    ctx: &mut Ctx,
    x: &ArrayViewD<f32>,
    attrs: &PadAttrs,
    out_shape: &[usize],
) -> Result<ArrayD<f32>, KernelError> {
    let rank = x.ndim();
    let data = contiguous(x);
    let in_strides = strides_of(x.shape());
    let maps: Vec<Vec<Option<usize>>> = (0..rank)
        .map(|a| {
            let d = x.shape()[a] as i64;
            (0..out_shape[a] as i64).map(|p| pad_source(attrs.mode, p, attrs.pads[a], d)).collect()
        })
        .collect();
    let mut out = ctx.output(out_shape.iter().product())?;
    let Some((&row_len, lead)) = out_shape.split_last() else {
        out.iter_mut().for_each(|v| *v = data.first().copied().unwrap_or(attrs.value));
        return array(out_shape, out);
    };
    if row_len > 0 {
        let last = &maps[rank - 1];
        // With a constant fill, the last axis is fill, then one contiguous run of the source, then
        // fill: copied as such rather than element by element through the map.
        let run = (attrs.mode == PadMode::Constant).then(|| {
            let start = last.iter().position(Option::is_some).unwrap_or(row_len);
            let len = last[start..].iter().take_while(|i| i.is_some()).count();
            (start, len, last.get(start).copied().flatten().unwrap_or(0))
        });
        out.par_chunks_mut(row_len).enumerate().with_min_len(grain(row_len)).for_each(|(row, dst)| {
            let (mut rest, mut at) = (row, Some(0isize));
            for (a, &d) in lead.iter().enumerate().rev() {
                at = at.zip(maps[a][rest % d]).map(|(at, i)| at + i as isize * in_strides[a]);
                rest /= d;
            }
            match (at, run) {
                (None, _) => dst.fill(attrs.value),
                (Some(at), Some((start, len, from))) => {
                    dst[..start].fill(attrs.value);
                    let from = at as usize + from;
                    dst[start..start + len].copy_from_slice(&data[from..from + len]);
                    dst[start + len..].fill(attrs.value);
                }
                (Some(at), None) => dst.iter_mut().zip(last).for_each(|(d, i)| {
                    *d = i.map_or(attrs.value, |i| data[at as usize + i]);
                }),
            }
        });
    }
    array(out_shape, out)
}

/// Moves blocks of channels into spatial blocks (any spatial rank): a reshape that splits the channel
/// axis, a transpose that interleaves each block offset after its spatial axis, read in one pass.
pub fn depth_to_space(
    ctx: &mut Ctx,
    x: &ArrayViewD<f32>,
    attrs: &DepthToSpaceAttrs,
) -> Result<ArrayD<f32>, KernelError> {
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
    let split_strides = strides_of(&split);
    let shape: Vec<usize> = perm.iter().map(|&p| split[p]).collect();
    let strides: Vec<isize> = perm.iter().map(|&p| split_strides[p]).collect();
    let data = contiguous(x);
    let mut out = ctx.output(x.len())?;
    gather(&data, 0, &strides, &shape, &mut out);
    let mut out_shape = vec![n, cout];
    out_shape.extend(spatial.iter().map(|&s| s * b));
    array(&out_shape, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;
    use strider_ir::op::SliceAttrs;

    fn arr(shape: &[usize], v: Vec<f32>) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
    }

    #[test]
    fn depth_to_space_matches_onnx_examples() {
        // ONNX DepthToSpace docs: x = arange(48).reshape(1, 8, 2, 3), blocksize 2.
        let x = arr(&[1, 8, 2, 3], (0..48).map(|v| v as f32).collect());
        let ctx = &mut Ctx::new(2);
        let dcr =
            depth_to_space(ctx, &x.view(), &DepthToSpaceAttrs { blocksize: 2, mode: DepthToSpaceMode::DCR }).unwrap();
        let first_row_dcr = [0., 12., 1., 13., 2., 14.];
        assert_eq!(&dcr.as_slice().unwrap()[..6], &first_row_dcr);
        assert_eq!(&dcr.as_slice().unwrap()[6..12], &[24., 36., 25., 37., 26., 38.]);
        let crd =
            depth_to_space(ctx, &x.view(), &DepthToSpaceAttrs { blocksize: 2, mode: DepthToSpaceMode::CRD }).unwrap();
        assert_eq!(&crd.as_slice().unwrap()[..12], &[0., 6., 1., 7., 2., 8., 12., 18., 13., 19., 14., 20.]);
        assert_eq!(crd.shape(), &[1, 2, 4, 6]);
    }

    #[test]
    fn slices_forward_and_backward() {
        let x = arr(&[2, 4], (1..=8).map(|v| v as f32).collect());
        let ctx = &mut Ctx::new(2);
        let a = SliceAttrs { starts: vec![1, 0], ends: vec![2, 3], axes: vec![0, 1], steps: vec![1, 2] };
        assert_eq!(slice(ctx, &x.view(), &a).unwrap().as_slice().unwrap(), &[5., 7.]);
        let rev = SliceAttrs { starts: vec![-1], ends: vec![-1000], axes: vec![1], steps: vec![-2] };
        assert_eq!(slice(ctx, &x.view(), &rev).unwrap().as_slice().unwrap(), &[4., 2., 8., 6.]);
    }

    #[test]
    fn pad_modes_match_numpy() {
        let x = arr(&[4], vec![1., 2., 3., 4.]);
        let with = |mode, pads: Vec<i64>| {
            let out = [(4 + pads[0] + pads[1]) as usize];
            pad(&mut Ctx::new(2), &x.view(), &PadAttrs { pads, mode, value: 9.0 }, &out)
                .unwrap()
                .into_raw_vec_and_offset()
                .0
        };
        assert_eq!(with(PadMode::Constant, vec![2, 1]), vec![9., 9., 1., 2., 3., 4., 9.]);
        assert_eq!(with(PadMode::Reflect, vec![2, 2]), vec![3., 2., 1., 2., 3., 4., 3., 2.]);
        assert_eq!(with(PadMode::Edge, vec![2, 1]), vec![1., 1., 1., 2., 3., 4., 4.]);
        assert_eq!(with(PadMode::Wrap, vec![2, 1]), vec![3., 4., 1., 2., 3., 4., 1.]);
        assert_eq!(with(PadMode::Constant, vec![-1, -2]), vec![2.]);
    }
}
