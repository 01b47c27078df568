//! Element-wise kernels: activations, broadcasting arithmetic and inference batch normalization.

use ndarray::{ArrayD, ArrayViewD, Zip};
use rayon::prelude::*;

use super::{Arg, Ctx, KernelError, array, contiguous, grain};

/// Elements one task handles in element-wise loops.
const CHUNK: usize = 1 << 14;

/// Broadcasting `a ∘ b`; an owned `a` of the output's shape is overwritten in place.
pub fn binary(
    ctx: &mut Ctx,
    a: Arg,
    b: &ArrayViewD<f32>,
    f: impl Fn(f32, f32) -> f32 + Copy,
) -> Result<ArrayD<f32>, KernelError> {
    let a_shape = a.shape();
    let shape = strider_ir::shape::broadcast(&a_shape, b.shape()).ok_or_else(|| {
        KernelError::Unsupported(format!("shapes {:?} and {:?} do not broadcast", a_shape, b.shape()))
    })?;
    let b = b.broadcast(shape.0.clone()).ok_or(KernelError::Layout)?;
    let mut out = match a {
        Arg::Owned(a) if a.shape() == shape.dims() && a.is_standard_layout() => a,
        a => {
            let a = a.dense()?;
            if a.shape() != shape.dims() {
                let a = a.broadcast(shape.0.clone()).ok_or(KernelError::Layout)?;
                let mut out = array(shape.dims(), ctx.output(shape.numel())?)?;
                Zip::from(&mut out).and(&a).and(&b).for_each(|o, &x, &y| *o = f(x, y));
                return Ok(out);
            }
            let mut out = ctx.output(a.len())?;
            out.copy_from_slice(&contiguous(&a));
            array(a.shape(), out)?
        }
    };
    apply_in_place(&mut out, &b, f)?;
    Ok(out)
}

/// `out[i] = f(out[i], b[i])` for a standard-layout `out` and a `b` broadcast to its shape, in runs:
/// where `b` is constant over trailing axes (a per-channel bias) one value per run, where its last
/// axis is contiguous one slice per row, otherwise element by element.
fn apply_in_place(out: &mut ArrayD<f32>, b: &ArrayViewD<f32>, f: impl Fn(f32, f32) -> f32) -> Result<(), KernelError> {
    let constant_axes =
        b.shape().iter().zip(b.strides()).rev().take_while(|&(&dim, &stride)| dim == 1 || stride == 0).count();
    let lead = b.ndim() - constant_axes;
    let run: usize = b.shape()[lead..].iter().product();
    let data = out.as_slice_mut().ok_or(KernelError::Layout)?;
    if run > 1 || lead == 0 {
        let heads = b.slice_each_axis(|axis| {
            if axis.axis.index() < lead { ndarray::Slice::from(..) } else { ndarray::Slice::from(0..1) }
        });
        for (chunk, &v) in data.chunks_exact_mut(run.max(1)).zip(heads.iter()) {
            chunk.iter_mut().for_each(|x| *x = f(*x, v));
        }
    } else if b.strides().last() == Some(&1) {
        let width = b.shape()[b.ndim() - 1];
        for (chunk, row) in data.chunks_exact_mut(width).zip(b.rows()) {
            let row = row.to_slice().ok_or(KernelError::Layout)?;
            chunk.iter_mut().zip(row).for_each(|(x, &y)| *x = f(*x, y));
        }
    } else {
        for (x, &y) in data.iter_mut().zip(b.iter()) {
            *x = f(*x, y);
        }
    }
    Ok(())
}

/// Applies `f` to every element, in place when the input is owned, in parallel chunks.
pub fn unary(ctx: &mut Ctx, x: Arg, f: impl Fn(f32) -> f32 + Sync) -> Result<ArrayD<f32>, KernelError> {
    match x {
        Arg::Owned(mut a) if a.is_standard_layout() => {
            let data = a.as_slice_mut().ok_or(KernelError::Layout)?;
            data.par_chunks_mut(CHUNK).for_each(|c| c.iter_mut().for_each(|v| *v = f(*v)));
            Ok(a)
        }
        x => {
            let x = x.dense()?;
            let src = contiguous(&x);
            let mut out = ctx.output(src.len())?;
            out.par_chunks_mut(CHUNK).zip(src.par_chunks(CHUNK)).for_each(|(o, s)| {
                o.iter_mut().zip(s).for_each(|(o, &v)| *o = f(v));
            });
            array(x.shape(), out)
        }
    }
}

/// The logistic function, in the form that does not overflow for large |x|.
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// tanh as the rational approximation onnxruntime (MLAS), Eigen and PyTorch use: an odd degree-13
/// numerator over an even degree-6 denominator on [−9, 9], beyond which tanh rounds to ±1 in f32.
/// Unlike libm's `tanhf` it has no branches, so a loop over a tensor is vectorised; the test bounds
/// its error. NaN stays NaN (`clamp` passes it through).
// The coefficients are written as published.
#[allow(clippy::excessive_precision)]
pub fn tanh(x: f32) -> f32 {
    const ALPHA: [f32; 7] = [
        4.89352455891786e-03,
        6.37261928875436e-04,
        1.48572235717979e-05,
        5.12229709037114e-08,
        -8.60467152213735e-11,
        2.00018790482477e-13,
        -2.76076847742355e-16,
    ];
    const BETA: [f32; 4] = [4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06];
    let x = x.clamp(-9.0, 9.0);
    let x2 = x * x;
    let p = ALPHA.iter().rev().fold(0.0, |acc, &a| acc * x2 + a);
    let q = BETA.iter().rev().fold(0.0, |acc, &b| acc * x2 + b);
    x * p / q
}

/// y = scale · (x − mean) / sqrt(var + epsilon) + B, per channel (axis 1).
pub fn batch_norm(
    ctx: &mut Ctx,
    x: Arg,
    [scale, bias, mean, var]: &[ArrayViewD<f32>; 4],
    epsilon: f32,
) -> Result<ArrayD<f32>, KernelError> {
    let mut y = match x {
        Arg::Owned(a) if a.is_standard_layout() => a,
        x => {
            let x = x.dense()?;
            let mut out = ctx.output(x.len())?;
            out.copy_from_slice(&contiguous(&x));
            array(x.shape(), out)?
        }
    };
    let channels = y.shape().get(1).copied().unwrap_or(1);
    let plane: usize = y.shape().iter().skip(2).product();
    let affine: Vec<(f32, f32)> = (0..channels)
        .map(|c| {
            let factor = scale[c] / (var[c] + epsilon).sqrt();
            (factor, bias[c] - mean[c] * factor)
        })
        .collect();
    if plane > 0 {
        let data = y.as_slice_mut().ok_or(KernelError::Layout)?;
        data.par_chunks_mut(plane).enumerate().with_min_len(grain(plane)).for_each(|(i, p)| {
            let (factor, shift) = affine[i % channels];
            p.iter_mut().for_each(|v| *v = *v * factor + shift);
        });
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn, arr1};

    #[test]
    fn broadcast_add_and_mul() {
        let a = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1., 2., 3., 4., 5., 6.]).unwrap();
        let b = arr1(&[10., 20., 30.]).into_dyn();
        let ctx = &mut Ctx::new(2);
        let s = binary(ctx, Arg::Owned(a.clone()), &b.view(), |x, y| x + y).unwrap();
        assert_eq!(s.as_slice().unwrap(), &[11., 22., 33., 14., 25., 36.]);
        let p = binary(ctx, Arg::View(super::super::Operand::Dense(b.view())), &a.view(), |x, y| x * y).unwrap();
        assert_eq!(p.as_slice().unwrap(), &[10., 40., 90., 40., 100., 180.]);
    }

    #[test]
    fn sigmoid_is_stable_and_symmetric() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!((sigmoid(2.0) + sigmoid(-2.0) - 1.0).abs() < 1e-7);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
    }

    #[test]
    fn tanh_is_within_a_few_ulp_of_the_exact_value() {
        let mut worst = 0.0f64;
        for i in -120_000..=120_000 {
            let x = i as f32 * 1e-4;
            let exact = (x as f64).tanh();
            worst = worst.max((tanh(x) as f64 - exact).abs() / exact.abs().max(1e-30));
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(tanh(0.0), 0.0);
        assert!(tanh(-0.0).is_sign_negative());
        assert_eq!(tanh(f32::INFINITY), tanh(9.0));
        assert!((tanh(f32::NEG_INFINITY) + 1.0).abs() < 1e-7);
        assert!(tanh(f32::NAN).is_nan());
    }

    #[test]
    fn broadcast_runs_match_elementwise_arithmetic() {
        let a = ArrayD::from_shape_fn(IxDyn(&[2, 3, 2, 4]), |i| (i[0] * 100 + i[1] * 10 + i[2] * 4 + i[3]) as f32);
        let operands = [
            ArrayD::from_shape_fn(IxDyn(&[3, 1, 1]), |i| (i[0] + 1) as f32 * 1000.0), // per channel
            ArrayD::from_shape_fn(IxDyn(&[2, 4]), |i| (i[0] * 4 + i[1]) as f32 * 0.5), // trailing rows
            ArrayD::from_shape_fn(IxDyn(&[1, 3, 2, 1]), |i| (i[1] * 2 + i[2]) as f32), // constant last axis
            ArrayD::from_elem(IxDyn(&[]), 7.0),                                       // scalar
            a.mapv(|v| v * 2.0),                                                      // same shape
        ];
        for b in operands {
            let expected = &a - &b.broadcast(a.shape()).unwrap();
            let got = binary(&mut Ctx::new(1), Arg::Owned(a.clone()), &b.view(), |x, y| x - y).unwrap();
            assert_eq!(got, expected, "b of shape {:?}", b.shape());
            let view = Arg::View(super::super::Operand::Dense(a.view()));
            let got = binary(&mut Ctx::new(1), view, &b.view(), |x, y| x - y).unwrap();
            assert_eq!(got, expected, "b of shape {:?}, borrowed a", b.shape());
        }
    }

    #[test]
    fn batch_norm_matches_onnx_example() {
        // ONNX BatchNormalization docs: x = [[[[-1, 0, 1]], [[2, 3, 4]]]], s = [1, 1.5], bias = [0, 1],
        // mean = [0, 3], var = [1, 1.5] → [[[[-0.999995, 0, 0.999995]], [[-0.22474074, 1, 2.2247407]]]]
        let x = ArrayD::from_shape_vec(IxDyn(&[1, 2, 1, 3]), vec![-1., 0., 1., 2., 3., 4.]).unwrap();
        let v = |a: [f32; 2]| arr1(&a).into_dyn();
        let (s, b, m, var) = (v([1., 1.5]), v([0., 1.]), v([0., 3.]), v([1., 1.5]));
        let x = Arg::View(super::super::Operand::Dense(x.view()));
        let y = batch_norm(&mut Ctx::new(1), x, &[s.view(), b.view(), m.view(), var.view()], 1e-5).unwrap();
        let expected = [-0.999995, 0., 0.999995, -0.22474074, 1., 2.2247407];
        for (got, want) in y.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }
}
