//! One kernel per op, dispatched by an exhaustive match on [`Op`]: a new op does not compile until it
//! has a kernel here.

mod conv;
mod elementwise;
mod layout;
mod lowering;
mod matmul;
mod resize;
mod sparse;

use ndarray::{ArrayD, ArrayViewD};
use sprs::CsMat;
use strider_ir::op::OpError;
use strider_ir::{Op, Shape};

pub use conv::{conv, conv_transpose};
pub use sparse::conv_matrix;

/// A value the interpreter holds: a dense tensor or a sparse (CSR) matrix.
#[derive(Clone, Debug, PartialEq)]
pub enum Tensor {
    /// A dense tensor.
    Dense(ArrayD<f32>),
    /// A sparse matrix.
    Sparse(CsMat<f32>),
}

impl Tensor {
    /// A borrowed view.
    pub fn operand(&self) -> Operand<'_> {
        match self {
            Tensor::Dense(a) => Operand::Dense(a.view()),
            Tensor::Sparse(m) => Operand::Sparse(m),
        }
    }
}

/// A borrowed kernel input.
#[derive(Clone, Debug)]
pub enum Operand<'a> {
    /// A dense tensor.
    Dense(ArrayViewD<'a, f32>),
    /// A sparse matrix.
    Sparse(&'a CsMat<f32>),
}

impl<'a> Operand<'a> {
    /// The dense view, or an error for a sparse matrix.
    pub fn dense(&self) -> Result<ArrayViewD<'a, f32>, KernelError> {
        match self {
            Operand::Dense(a) => Ok(a.clone()),
            Operand::Sparse(_) => {
                Err(KernelError::Unsupported("a sparse matrix where a dense tensor is needed".into()))
            }
        }
    }

    /// The sparse matrix, or an error for a dense tensor.
    pub fn sparse(&self) -> Result<&'a CsMat<f32>, KernelError> {
        match self {
            Operand::Sparse(m) => Ok(m),
            Operand::Dense(_) => Err(KernelError::Unsupported("a dense tensor where a sparse matrix is needed".into())),
        }
    }
}

/// Every combination of one element from each list (row-major: the last list varies fastest).
pub(crate) fn cartesian<T: Copy>(lists: &[Vec<T>]) -> Vec<Vec<T>> {
    lists.iter().fold(vec![Vec::new()], |acc, list| {
        acc.iter().flat_map(|prefix| list.iter().map(move |&x| [prefix.as_slice(), &[x]].concat())).collect()
    })
}

/// Why a kernel could not run. A validated graph does not produce these; they guard direct calls.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The op's own checks refused the inputs.
    #[error(transparent)]
    Op(#[from] OpError),
    /// A configuration the interpreter does not execute.
    #[error("not supported by the interpreter: {0}")]
    Unsupported(String),
    /// An internal layout conversion failed (a bug: please report it).
    #[error("internal layout error")]
    Layout,
}

/// Evaluates `op` on `inputs`. `output_shapes` are the shapes inferred for the node.
pub fn eval(op: &Op, inputs: &[Operand], output_shapes: &[Shape]) -> Result<Vec<Tensor>, KernelError> {
    let out = match op {
        Op::ConvMatrix(a) => Tensor::Sparse(sparse::conv_matrix(a, &inputs[0].dense()?)?),
        Op::SparseMatMul(_) => Tensor::Dense(sparse::matmul(&inputs[0].dense()?, inputs[1].sparse()?)?),
        _ => {
            let views = inputs.iter().map(Operand::dense).collect::<Result<Vec<_>, _>>()?;
            Tensor::Dense(eval_dense(op, &views, output_shapes)?)
        }
    };
    Ok(vec![out])
}

/// Evaluates an op whose inputs and output are dense.
pub fn eval_dense(op: &Op, inputs: &[ArrayViewD<f32>], output_shapes: &[Shape]) -> Result<ArrayD<f32>, KernelError> {
    let x = || &inputs[0];
    let out = match op {
        Op::Conv(a) => conv::conv(a, inputs)?,
        Op::ConvTranspose(a) => conv::conv_transpose(a, inputs)?,
        Op::Upsample(a) => resize::upsample(x(), a, output_shapes[0].dims()),
        Op::MatMul => matmul::matmul(&inputs[0], &inputs[1])?,
        Op::Add => elementwise::binary(&inputs[0], &inputs[1], |a, b| a + b)?,
        Op::Mul => elementwise::binary(&inputs[0], &inputs[1], |a, b| a * b)?,
        Op::Sub => elementwise::binary(&inputs[0], &inputs[1], |a, b| a - b)?,
        Op::Div => elementwise::binary(&inputs[0], &inputs[1], |a, b| a / b)?,
        Op::Sqrt => elementwise::unary(x(), f32::sqrt),
        Op::Relu => elementwise::unary(x(), |v| v.max(0.0)),
        Op::LeakyRelu(a) => elementwise::unary(x(), |v| if v >= 0.0 { v } else { a.alpha * v }),
        Op::Sigmoid => elementwise::unary(x(), elementwise::sigmoid),
        Op::Tanh => elementwise::unary(x(), f32::tanh),
        Op::Identity => x().to_owned(),
        Op::BatchNormalization(a) => elementwise::batch_norm(inputs, a.epsilon),
        Op::Concat(a) => {
            let axis = strider_ir::shape::normalize_axis(a.axis, x().ndim())
                .ok_or_else(|| KernelError::Unsupported(format!("Concat axis {} for rank {}", a.axis, x().ndim())))?;
            layout::concat(inputs, axis)?
        }
        Op::Reshape(_) | Op::Flatten(_) => layout::reshape(x(), output_shapes[0].dims())?,
        Op::Transpose(a) => layout::transpose(x(), &a.resolved(x().ndim())),
        Op::Pad(a) => layout::pad(x(), a, output_shapes[0].dims()),
        Op::Slice(a) => layout::slice(x(), a)?,
        Op::DepthToSpace(a) => layout::depth_to_space(x(), a)?,
        Op::ZeroInsert(a) => lowering::zero_insert(x(), a, output_shapes[0].dims()),
        Op::Col2Im(a) => lowering::col2im(x(), a, output_shapes[0].dims())?,
        Op::SubpixelKernel(a) => lowering::subpixel_kernel(x(), a, output_shapes[0].dims()),
        Op::ResizeConvKernel(a) => lowering::resize_conv_kernel(x(), a, output_shapes[0].dims()),
        Op::PhaseKernel(a) => lowering::phase_kernel(x(), a, output_shapes[0].dims()),
        Op::ConvMatrix(_) | Op::SparseMatMul(_) => {
            return Err(KernelError::Unsupported(format!("{} has sparse operands; use `eval`", op.name())));
        }
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;
    use strider_ir::op::{ConcatAttrs, FlattenAttrs, LeakyReluAttrs, ReshapeAttrs, TransposeAttrs};

    /// Runs `op` through shape inference and its kernel, as the interpreter does.
    fn eval1(op: Op, inputs: &[ArrayD<f32>]) -> ArrayD<f32> {
        let shapes: Vec<Shape> = inputs.iter().map(|a| Shape(a.shape().to_vec())).collect();
        let out_shapes = op.infer(&shapes.iter().collect::<Vec<_>>()).unwrap();
        let views: Vec<ArrayViewD<f32>> = inputs.iter().map(|a| a.view()).collect();
        let out = eval_dense(&op, &views, &out_shapes).unwrap();
        assert_eq!(out.shape(), out_shapes[0].dims());
        out
    }

    fn arr(shape: &[usize], v: &[f32]) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()).unwrap()
    }

    fn values(a: &ArrayD<f32>) -> Vec<f32> {
        a.iter().copied().collect()
    }

    #[test]
    fn activations() {
        let x = arr(&[4], &[-2., -0.5, 0., 3.]);
        assert_eq!(values(&eval1(Op::Relu, std::slice::from_ref(&x))), [0., 0., 0., 3.]);
        assert_eq!(
            values(&eval1(Op::LeakyRelu(LeakyReluAttrs { alpha: 0.1 }), std::slice::from_ref(&x))),
            [-0.2, -0.05, 0., 3.]
        );
        assert_eq!(values(&eval1(Op::Identity, std::slice::from_ref(&x))), values(&x));
        let t = eval1(Op::Tanh, &[x]);
        let expected = [-0.964_027_6, -0.462_117_16, 0., 0.995_054_7];
        assert!(t.iter().zip(expected).all(|(g, w)| (g - w).abs() < 1e-6), "{t}");
    }

    #[test]
    fn arithmetic() {
        let a = arr(&[3], &[4., 9., -1.]);
        let b = arr(&[1], &[2.]);
        assert_eq!(values(&eval1(Op::Sub, &[a.clone(), b.clone()])), [2., 7., -3.]);
        assert_eq!(values(&eval1(Op::Div, &[a.clone(), b])), [2., 4.5, -0.5]);
        let r = eval1(Op::Sqrt, &[a]);
        assert_eq!(&values(&r)[..2], &[2., 3.]);
        assert!(r[2].is_nan());
    }

    #[test]
    fn layout_ops_move_elements() {
        let x = arr(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let t = eval1(Op::Transpose(TransposeAttrs::default()), std::slice::from_ref(&x));
        assert_eq!(values(&t), [1., 4., 2., 5., 3., 6.]);
        let r = eval1(Op::Reshape(ReshapeAttrs { shape: vec![3, -1], allowzero: false }), std::slice::from_ref(&x));
        assert_eq!((r.shape(), values(&r)), (&[3, 2][..], vec![1., 2., 3., 4., 5., 6.]));
        let f = eval1(Op::Flatten(FlattenAttrs { axis: 0 }), std::slice::from_ref(&x));
        assert_eq!(f.shape(), &[1, 6]);
        let y = arr(&[2, 1], &[7., 8.]);
        let c = eval1(Op::Concat(ConcatAttrs { axis: -1 }), &[x.clone(), y]);
        assert_eq!(values(&c), [1., 2., 3., 7., 4., 5., 6., 8.]);
        // An empty input along the axis contributes nothing; the axis comes from the attribute.
        let empty = arr(&[2, 0], &[]);
        let c = eval1(Op::Concat(ConcatAttrs { axis: 1 }), &[x, empty.clone()]);
        assert_eq!(c.shape(), &[2, 3]);
        let c = eval1(Op::Concat(ConcatAttrs { axis: 1 }), &[empty.clone(), empty]);
        assert_eq!(c.shape(), &[2, 0]);
    }
}
