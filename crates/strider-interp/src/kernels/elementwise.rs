//! Element-wise kernels: activations, broadcasting arithmetic and inference batch normalization.

use ndarray::{ArrayD, ArrayViewD, Zip};
use rayon::prelude::*;

use super::{Arg, Ctx, KernelError, array, contiguous, grain};

/// Elements one task handles in element-wise loops.
const CHUNK: usize = 1 << 14;

/// Broadcasting `a ∘ b`; an owned `a` of the output's shape is overwritten in place.
pub fn binary(ctx: &mut Ctx, a: Arg, b: &ArrayViewD<f32>, f: fn(f32, f32) -> f32) -> Result<ArrayD<f32>, KernelError> {
    let a_shape = a.shape();
    let shape = strider_ir::shape::broadcast(&a_shape, b.shape()).ok_or_else(|| {
        KernelError::Unsupported(format!("shapes {:?} and {:?} do not broadcast", a_shape, b.shape()))
    })?;
    let b = b.broadcast(shape.0.clone()).ok_or(KernelError::Layout)?;
    match a {
        Arg::Owned(mut a) if a.shape() == shape.dims() => {
            Zip::from(&mut a).and(&b).for_each(|x, &y| *x = f(*x, y));
            Ok(a)
        }
        a => {
            let a = a.dense()?;
            let a = a.broadcast(shape.0.clone()).ok_or(KernelError::Layout)?;
            let mut out = array(shape.dims(), ctx.output(shape.numel())?)?;
            Zip::from(&mut out).and(&a).and(&b).for_each(|o, &x, &y| *o = f(x, y));
            Ok(out)
        }
    }
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
