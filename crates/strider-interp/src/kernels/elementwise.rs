//! Element-wise kernels: activations, broadcasting arithmetic and inference batch normalization.

use ndarray::{ArrayD, ArrayViewD, Axis};

use super::KernelError;

/// Broadcasting `a + b` or `a * b`.
pub fn binary(a: &ArrayViewD<f32>, b: &ArrayViewD<f32>, f: fn(f32, f32) -> f32) -> Result<ArrayD<f32>, KernelError> {
    let shape = strider_ir::shape::broadcast(a.shape(), b.shape()).ok_or_else(|| {
        KernelError::Unsupported(format!("shapes {:?} and {:?} do not broadcast", a.shape(), b.shape()))
    })?;
    let a = a.broadcast(shape.0.clone()).ok_or(KernelError::Layout)?;
    let b = b.broadcast(shape.0).ok_or(KernelError::Layout)?;
    Ok(ndarray::Zip::from(&a).and(&b).map_collect(|&x, &y| f(x, y)))
}

/// Applies `f` to every element.
pub fn unary(x: &ArrayViewD<f32>, f: impl Fn(f32) -> f32) -> ArrayD<f32> {
    x.map(|&v| f(v))
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
pub fn batch_norm(inputs: &[ArrayViewD<f32>], epsilon: f32) -> ArrayD<f32> {
    let [x, scale, bias, mean, var] = [&inputs[0], &inputs[1], &inputs[2], &inputs[3], &inputs[4]];
    let mut y = x.to_owned();
    for (c, mut channel) in y.axis_iter_mut(Axis(1)).enumerate() {
        let factor = scale[c] / (var[c] + epsilon).sqrt();
        let shift = bias[c] - mean[c] * factor;
        channel.mapv_inplace(|v| v * factor + shift);
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn, arr1};

    #[test]
    fn broadcast_add_and_mul() {
        let a = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1., 2., 3., 4., 5., 6.]).unwrap();
        let b = arr1(&[10., 20., 30.]).into_dyn();
        let s = binary(&a.view(), &b.view(), |x, y| x + y).unwrap();
        assert_eq!(s.as_slice().unwrap(), &[11., 22., 33., 14., 25., 36.]);
        let p = binary(&b.view(), &a.view(), |x, y| x * y).unwrap();
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
        let y = batch_norm(&[x.view(), s.view(), b.view(), m.view(), var.view()], 1e-5);
        let expected = [-0.999995, 0., 0.999995, -0.22474074, 1., 2.2247407];
        for (got, want) in y.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }
}
