//! `MatMul` with numpy promotion and batch broadcasting: one 2-D product per broadcast batch element.

use ndarray::{ArrayD, ArrayViewD};
use strider_ir::Shape;
use strider_ir::op::MatMulDims;

use super::{Ctx, KernelError, array, contiguous};
use crate::gemm::{self, MatMut, MatRef};

/// A · B: one product per broadcast batch element, each operand read in place (a broadcast operand
/// is addressed with stride 0 on its broadcast axes, never copied).
pub fn matmul(ctx: &mut Ctx, a: &ArrayViewD<f32>, b: &ArrayViewD<f32>) -> Result<ArrayD<f32>, KernelError> {
    let dims = MatMulDims::new(&Shape(a.shape().to_vec()), &Shape(b.shape().to_vec()))?;
    let (n, k, m) = (dims.n, dims.k, dims.m);
    let batch: usize = dims.batch.iter().product();
    let (a_data, b_data) = (contiguous(a), contiguous(b));
    // Element offsets of each operand's matrices along the broadcast batch axes (0 where broadcast).
    let batch_offsets = |shape: &[usize], matrix: usize| -> Vec<usize> {
        let own = &shape[..shape.len().saturating_sub(2)];
        let lead = dims.batch.len() - own.len();
        let mut strides = vec![0usize; dims.batch.len()];
        let mut stride = matrix;
        for (i, &d) in own.iter().enumerate().rev() {
            strides[lead + i] = if d == 1 { 0 } else { stride };
            stride *= d;
        }
        (0..batch)
            .map(|mut flat| {
                let mut offset = 0;
                for (a, &d) in dims.batch.iter().enumerate().rev() {
                    offset += (flat % d) * strides[a];
                    flat /= d;
                }
                offset
            })
            .collect()
    };
    let a_offsets = if a.ndim() == 1 { vec![0; batch] } else { batch_offsets(a.shape(), n * k) };
    let b_offsets = if b.ndim() == 1 { vec![0; batch] } else { batch_offsets(b.shape(), k * m) };
    let mut out = ctx.output(batch * n * m)?;
    for ((dst, &ao), &bo) in out.chunks_mut((n * m).max(1)).zip(&a_offsets).zip(&b_offsets) {
        let a_mat = MatRef::row_major(&a_data[ao..], n, k)?;
        let b_mat = MatRef::row_major(&b_data[bo..], k, m)?;
        gemm::matmul(MatMut::row_major(dst, n, m)?, a_mat, b_mat, false, ctx.threads)?;
    }
    array(dims.output().dims(), out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    fn arr(shape: &[usize], v: Vec<f32>) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
    }

    #[test]
    fn products_with_promotion_and_broadcast() {
        let ctx = &mut Ctx::new(2);
        let a = arr(&[2, 3], vec![1., 2., 3., 4., 5., 6.]);
        let b = arr(&[3, 2], vec![1., 0., 0., 1., 1., 1.]);
        assert_eq!(matmul(ctx, &a.view(), &b.view()).unwrap().as_slice().unwrap(), &[4., 5., 10., 11.]);
        let v = arr(&[3], vec![1., 1., 1.]);
        let av = matmul(ctx, &a.view(), &v.view()).unwrap();
        assert_eq!((av.shape(), av.as_slice().unwrap()), (&[2][..], &[6., 15.][..]));
        let va = matmul(ctx, &v.view(), &b.view()).unwrap();
        assert_eq!((va.shape(), va.as_slice().unwrap()), (&[2][..], &[2., 2.][..]));
        // Batch broadcast: (2, 1, 2, 3) · (3, 2) → (2, 1, 2, 2), each batch the same product.
        let a4 = arr(&[2, 1, 2, 3], [a.as_slice().unwrap(), a.as_slice().unwrap()].concat());
        let out = matmul(ctx, &a4.view(), &b.view()).unwrap();
        assert_eq!(out.shape(), &[2, 1, 2, 2]);
        assert_eq!(out.as_slice().unwrap(), &[4., 5., 10., 11., 4., 5., 10., 11.]);
    }
}
