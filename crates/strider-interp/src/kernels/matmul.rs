//! `MatMul` with numpy promotion and batch broadcasting: one 2-D product per broadcast batch element.

use ndarray::{ArrayD, ArrayViewD, Ix3, IxDyn};
use strider_ir::Shape;
use strider_ir::op::MatMulDims;

use super::KernelError;

/// A · B.
pub fn matmul(a: &ArrayViewD<f32>, b: &ArrayViewD<f32>) -> Result<ArrayD<f32>, KernelError> {
    let dims = MatMulDims::new(&Shape(a.shape().to_vec()), &Shape(b.shape().to_vec()))?;
    let (n, k, m) = (dims.n, dims.k, dims.m);
    let batch: usize = dims.batch.iter().product();
    let stacked = |x: &ArrayViewD<f32>, rows: usize, cols: usize, vector_shape: Vec<usize>| {
        let matrix = if x.ndim() == 1 {
            x.to_shape(IxDyn(&vector_shape)).map_err(|_| KernelError::Layout)?.to_owned()
        } else {
            x.to_owned()
        };
        let mut full = dims.batch.clone();
        full.extend([rows, cols]);
        let b = matrix.broadcast(IxDyn(&full)).ok_or(KernelError::Layout)?.to_owned();
        b.into_shape_with_order((batch, rows, cols)).map_err(|_| KernelError::Layout)
    };
    let a3 = stacked(a, n, k, vec![1, k])?;
    let b3 = stacked(b, k, m, vec![k, 1])?;
    let mut out = ndarray::Array::<f32, Ix3>::zeros((batch, n, m));
    for ((mut o, x), y) in out.outer_iter_mut().zip(a3.outer_iter()).zip(b3.outer_iter()) {
        o.assign(&x.dot(&y));
    }
    out.into_shape_with_order(IxDyn(&dims.output().0)).map_err(|_| KernelError::Layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(shape: &[usize], v: Vec<f32>) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
    }

    #[test]
    fn products_with_promotion_and_broadcast() {
        let a = arr(&[2, 3], vec![1., 2., 3., 4., 5., 6.]);
        let b = arr(&[3, 2], vec![1., 0., 0., 1., 1., 1.]);
        assert_eq!(matmul(&a.view(), &b.view()).unwrap().as_slice().unwrap(), &[4., 5., 10., 11.]);
        let v = arr(&[3], vec![1., 1., 1.]);
        let av = matmul(&a.view(), &v.view()).unwrap();
        assert_eq!((av.shape(), av.as_slice().unwrap()), (&[2][..], &[6., 15.][..]));
        let va = matmul(&v.view(), &b.view()).unwrap();
        assert_eq!((va.shape(), va.as_slice().unwrap()), (&[2][..], &[2., 2.][..]));
        // Batch broadcast: (2, 1, 2, 3) · (3, 2) → (2, 1, 2, 2), each batch the same product.
        let a4 = arr(&[2, 1, 2, 3], [a.as_slice().unwrap(), a.as_slice().unwrap()].concat());
        let out = matmul(&a4.view(), &b.view()).unwrap();
        assert_eq!(out.shape(), &[2, 1, 2, 2]);
        assert_eq!(out.as_slice().unwrap(), &[4., 5., 10., 11., 4., 5., 10., 11.]);
    }
}
