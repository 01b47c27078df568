//! One kernel per op, dispatched by an exhaustive match on [`Op`]: a new op does not compile until it
//! has a kernel here.

mod conv;
mod elementwise;
mod layout;
mod matmul;
mod resize;

use ndarray::{ArrayD, ArrayViewD};
use strider_ir::op::OpError;
use strider_ir::{Op, Shape};

pub use conv::{conv, conv_transpose};

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
pub fn eval(op: &Op, inputs: &[ArrayViewD<f32>], output_shapes: &[Shape]) -> Result<Vec<ArrayD<f32>>, KernelError> {
    let x = || &inputs[0];
    let out = match op {
        Op::Conv(a) => conv::conv(a, inputs)?,
        Op::ConvTranspose(a) => conv::conv_transpose(a, inputs)?,
        Op::Upsample(a) => resize::upsample(x(), a, output_shapes[0].dims()),
        Op::MatMul => matmul::matmul(&inputs[0], &inputs[1])?,
        Op::Add => elementwise::binary(&inputs[0], &inputs[1], |a, b| a + b)?,
        Op::Mul => elementwise::binary(&inputs[0], &inputs[1], |a, b| a * b)?,
        Op::Relu => elementwise::unary(x(), |v| v.max(0.0)),
        Op::LeakyRelu(a) => elementwise::unary(x(), |v| if v >= 0.0 { v } else { a.alpha * v }),
        Op::Sigmoid => elementwise::unary(x(), elementwise::sigmoid),
        Op::Tanh => elementwise::unary(x(), f32::tanh),
        Op::Identity => x().to_owned(),
        Op::BatchNormalization(a) => elementwise::batch_norm(inputs, a.epsilon),
        Op::Concat(_) => {
            let axis = concat_axis(output_shapes, inputs)?;
            layout::concat(inputs, axis)?
        }
        Op::Reshape(_) | Op::Flatten(_) => layout::reshape(x(), output_shapes[0].dims())?,
        Op::Transpose(a) => layout::transpose(x(), &a.resolved(x().ndim())),
        Op::Pad(a) => layout::pad(x(), a),
        Op::Slice(a) => layout::slice(x(), a)?,
        Op::DepthToSpace(a) => layout::depth_to_space(x(), a)?,
    };
    Ok(vec![out])
}

/// The axis along which a Concat's inferred output differs from its first input.
fn concat_axis(output_shapes: &[Shape], inputs: &[ArrayViewD<f32>]) -> Result<usize, KernelError> {
    let out = output_shapes[0].dims();
    let first = inputs[0].shape();
    Ok(out.iter().zip(first).position(|(o, i)| o != i).unwrap_or(0))
}
