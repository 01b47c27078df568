//! One kernel per op, dispatched by an exhaustive match on [`Op`]: a new op does not compile until it
//! has a kernel here. Kernels take a [`Ctx`] (threads, reusable buffers, memory accounting) and
//! borrowed or owned inputs ([`Arg`]); an op that can work in place takes over an owned input.

mod col2im;
mod conv;
mod conv_transpose;
pub(crate) mod direct;
mod elementwise;
mod geometry;
mod layout;
mod lowering;
mod matmul;
mod phase_convs;
pub mod reference;
mod resize;
mod sparse;
mod work;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use strider_ir::op::OpError;
use strider_ir::{Op, Shape};

use crate::buffers::{Buffers, Usage};

pub use conv::conv;
pub use conv_transpose::{conv_transpose, pack_weight};
pub use phase_convs::{Phase, PhaseClass, PhaseConvs};
pub use sparse::{SparseOperand, conv_matrix};
pub use work::{Kernel, KernelWork, kernel_work};

/// A value the interpreter holds: a dense tensor or a sparse (CSR) matrix.
#[derive(Clone, Debug, PartialEq)]
pub enum Tensor {
    /// A dense tensor.
    Dense(ArrayD<f32>),
    /// A sparse matrix.
    Sparse(SparseOperand),
}

impl Tensor {
    /// A borrowed view.
    pub fn operand(&self) -> Operand<'_> {
        match self {
            Tensor::Dense(a) => Operand::Dense(a.view()),
            Tensor::Sparse(m) => Operand::Sparse(m),
        }
    }

    /// Elements stored (for a sparse matrix: stored values and their indices, in `f32`-sized units).
    pub fn stored_elements(&self) -> usize {
        match self {
            Tensor::Dense(a) => a.len(),
            Tensor::Sparse(m) => m.stored_elements(),
        }
    }
}

/// A borrowed kernel input.
#[derive(Clone, Debug)]
pub enum Operand<'a> {
    /// A dense tensor.
    Dense(ArrayViewD<'a, f32>),
    /// A sparse matrix.
    Sparse(&'a SparseOperand),
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
    pub fn sparse(&self) -> Result<&'a SparseOperand, KernelError> {
        match self {
            Operand::Sparse(m) => Ok(m),
            Operand::Dense(_) => Err(KernelError::Unsupported("a dense tensor where a sparse matrix is needed".into())),
        }
    }
}

/// A kernel input: borrowed, or owned and handed over because this node is its last reader.
#[derive(Debug)]
pub enum Arg<'a> {
    /// Borrowed from the inputs, the constants or a value other nodes still read.
    View(Operand<'a>),
    /// A dense intermediate nobody reads after this node: the kernel may reuse its buffer.
    Owned(ArrayD<f32>),
}

impl Arg<'_> {
    /// The input as a borrowed operand.
    pub fn operand(&self) -> Operand<'_> {
        match self {
            Arg::View(Operand::Dense(a)) => Operand::Dense(a.view()),
            Arg::View(Operand::Sparse(m)) => Operand::Sparse(m),
            Arg::Owned(a) => Operand::Dense(a.view()),
        }
    }

    /// The dense view, or an error for a sparse matrix.
    pub fn dense(&self) -> Result<ArrayViewD<'_, f32>, KernelError> {
        self.operand().dense()
    }

    fn shape(&self) -> Vec<usize> {
        match self {
            Arg::View(Operand::Dense(a)) => a.shape().to_vec(),
            Arg::View(Operand::Sparse(m)) => vec![m.rows(), m.cols()],
            Arg::Owned(a) => a.shape().to_vec(),
        }
    }
}

/// What a kernel runs with: the thread count, reusable buffers and the count of memory in use.
#[derive(Debug)]
pub struct Ctx {
    /// Threads of the pool the kernels run in (the matrix products split over at most this many).
    pub threads: usize,
    buffers: Buffers,
    usage: Usage,
    /// Elements of output buffers handed out (and counted) since the last [`Ctx::settle_output`].
    outputs_counted: usize,
}

/// Elements a parallel task should at least handle: below this, splitting costs more than it saves
/// (with one thread, rayon's task splitting alone would dominate small layers).
const GRAIN: usize = 1 << 14;

/// The fewest items of `item_len` elements each that one parallel task takes.
pub(crate) fn grain(item_len: usize) -> usize {
    (GRAIN / item_len.max(1)).max(1)
}

/// Elements of one im2col or column block: workspaces are cut into blocks of this size (or of one
/// column, when a column is larger), so their memory does not grow with the image.
pub const BLOCK_ELEMENTS: usize = 1 << 22;

impl Ctx {
    /// A context for `threads` threads with no buffers yet.
    pub fn new(threads: usize) -> Self {
        Ctx { threads: threads.max(1), buffers: Buffers::default(), usage: Usage::default(), outputs_counted: 0 }
    }

    /// A buffer for an output of `len` elements, contents unspecified: the kernel writes every element.
    /// It counts as in use from now on, so a kernel's output and its workspaces add up in the peak.
    pub(crate) fn output(&mut self, len: usize) -> Result<Vec<f32>, KernelError> {
        let buffer = self.buffers.take(len).map_err(|_| KernelError::OutOfMemory { elements: len })?;
        self.usage.hold(len);
        self.outputs_counted += len;
        Ok(buffer)
    }

    /// A buffer for an output of `len` elements that starts on a cache line: the output is
    /// `buffer[offset..offset + len]` (see [`array_at`]). Streaming stores only write whole lines when
    /// their runs are line-aligned, and allocators align large buffers to 16 bytes only.
    pub(crate) fn output_line_aligned(&mut self, len: usize) -> Result<(Vec<f32>, usize), KernelError> {
        let buffer = self.output(len.checked_add(LINE - 1).ok_or(KernelError::OutOfMemory { elements: len })?)?;
        let offset = buffer.as_ptr().align_offset(LINE * size_of::<f32>());
        Ok((buffer, if offset < LINE { offset } else { 0 }))
    }

    /// A zeroed output buffer.
    pub(crate) fn output_zeros(&mut self, len: usize) -> Result<Vec<f32>, KernelError> {
        let mut buffer = self.output(len)?;
        buffer.fill(0.0);
        Ok(buffer)
    }

    /// A workspace of `len` elements (contents unspecified), counted as in use until given back.
    pub(crate) fn scratch(&mut self, len: usize) -> Result<Vec<f32>, KernelError> {
        let buffer = self.buffers.take(len).map_err(|_| KernelError::OutOfMemory { elements: len })?;
        self.usage.hold(len);
        Ok(buffer)
    }

    /// Gives back a workspace.
    pub(crate) fn give_scratch(&mut self, buffer: Vec<f32>) {
        self.usage.release(buffer.len());
        self.buffers.give(buffer);
    }

    /// Counts a kernel's result of `len` elements as alive: what its output buffer counted already
    /// is settled, the rest (a reused input, an array the kernel built itself) is added.
    pub(crate) fn settle_output(&mut self, len: usize) {
        let counted = std::mem::take(&mut self.outputs_counted);
        if len >= counted {
            self.usage.hold(len - counted);
        } else {
            self.usage.release(counted - len);
        }
    }

    /// `len` elements handed to a kernel that reuses them: no longer counted as a live tensor.
    pub(crate) fn release(&mut self, len: usize) {
        self.usage.release(len);
    }

    /// Keeps the buffer of an array that was not counted (an output the caller gives back).
    pub(crate) fn recycle_unaccounted(&mut self, a: ArrayD<f32>) {
        // The whole allocation comes back, wherever the array started in it.
        self.buffers.give(a.into_raw_vec_and_offset().0);
    }

    /// A tensor that died: no longer counted, its buffer kept for reuse.
    pub(crate) fn recycle(&mut self, tensor: Tensor) {
        self.usage.release(tensor.stored_elements());
        if let Tensor::Dense(a) = tensor {
            self.recycle_unaccounted(a);
        }
    }

    /// Starts counting a new run.
    pub(crate) fn reset_usage(&mut self) {
        self.usage = Usage::default();
        self.outputs_counted = 0;
    }

    /// The most elements in use at once since the run started.
    pub fn peak_elements(&self) -> usize {
        self.usage.peak
    }
}

/// A dense array of `shape` over `data` (whose length the caller made the element count).
pub(crate) fn array(shape: &[usize], data: Vec<f32>) -> Result<ArrayD<f32>, KernelError> {
    ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|_| KernelError::Layout)
}

/// Elements per cache line (64 bytes).
const LINE: usize = 16;

/// A dense array of `shape` over `data[offset..]` (the caller made `data` long enough).
pub(crate) fn array_at(shape: &[usize], data: Vec<f32>, offset: usize) -> Result<ArrayD<f32>, KernelError> {
    let len: usize = shape.iter().product();
    if offset.checked_add(len).is_none_or(|end| end > data.len()) {
        return Err(KernelError::Layout);
    }
    let flat = ndarray::Array1::from_vec(data).slice_move(ndarray::s![offset..offset + len]);
    flat.into_shape_with_order(IxDyn(shape)).map_err(|_| KernelError::Layout)
}

/// The contiguous elements of a view: borrowed when it is already in standard layout.
pub fn contiguous<'a>(a: &'a ArrayViewD<f32>) -> std::borrow::Cow<'a, [f32]> {
    match a.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(a.iter().copied().collect()),
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
    /// The system refused memory for a buffer.
    #[error("cannot allocate {elements} elements ({} bytes)", *elements as u128 * 4)]
    OutOfMemory {
        /// Elements asked for.
        elements: usize,
    },
}

impl From<crate::gemm::OutOfBounds> for KernelError {
    fn from(_: crate::gemm::OutOfBounds) -> Self {
        KernelError::Layout
    }
}

impl From<crate::gemm::ShapeMismatch> for KernelError {
    fn from(_: crate::gemm::ShapeMismatch) -> Self {
        KernelError::Layout
    }
}

/// Whether `op` may take over its first input's buffer for its output (element-wise and reshaping
/// ops whose output has the first input's element count).
pub fn reuses_first_input(op: &Op) -> bool {
    matches!(
        op,
        Op::Relu
            | Op::LeakyRelu(_)
            | Op::Sigmoid
            | Op::Tanh
            | Op::Sqrt
            | Op::Identity
            | Op::Reshape(_)
            | Op::Flatten(_)
            | Op::Add
            | Op::Mul
            | Op::Sub
            | Op::Div
            | Op::BatchNormalization(_)
    )
}

/// Work a plan does once for a node whose weights are constant, so that each run does not.
#[derive(Debug)]
pub enum Packed {
    /// A ConvTranspose weight transposed for its GEMM ([`conv_transpose::pack_weight`]).
    TransposedWeight(Vec<f32>),
}

impl Packed {
    /// Elements held.
    pub fn stored_elements(&self) -> usize {
        match self {
            Packed::TransposedWeight(w) => w.len(),
        }
    }
}

/// Prepares `op` given which of its inputs are constant (`None` for values computed at run time).
pub fn pack(op: &Op, constants: &[Option<Operand>]) -> Option<Packed> {
    match (op, constants.get(1)) {
        (Op::ConvTranspose(a), Some(Some(Operand::Dense(w)))) => {
            conv_transpose::pack_weight(a, w).map(Packed::TransposedWeight)
        }
        _ => None,
    }
}

/// Evaluates `op` on `args`. `output_shapes` are the shapes inferred for the node; `packed` is what
/// [`pack`] prepared for it, if anything.
pub fn eval(
    ctx: &mut Ctx,
    op: &Op,
    args: Vec<Arg>,
    output_shapes: &[Shape],
    packed: Option<&Packed>,
) -> Result<Tensor, KernelError> {
    let out = output_shapes[0].dims();
    let dense = |i: usize| args[i].dense();
    let dense_out = match op {
        Op::ConvMatrix(a) => return Ok(Tensor::Sparse(SparseOperand::new(sparse::conv_matrix(a, &dense(0)?)?))),
        Op::SparseMatMul(_) => sparse::matmul(ctx, &dense(0)?, args[1].operand().sparse()?)?,
        Op::Conv(a) => conv::conv(ctx, a, &dense(0)?, &dense(1)?, args.get(2).map(Arg::dense).transpose()?)?,
        Op::ConvTranspose(a) => {
            let packed = packed.map(|Packed::TransposedWeight(w)| w.as_slice());
            let bias = args.get(2).map(Arg::dense).transpose()?;
            conv_transpose::conv_transpose(ctx, a, &dense(0)?, &dense(1)?, bias, packed)?
        }
        Op::Upsample(a) => resize::upsample(&dense(0)?, a, out),
        Op::MatMul => matmul::matmul(ctx, &dense(0)?, &dense(1)?)?,
        Op::Add | Op::Mul | Op::Sub | Op::Div => {
            let mut args = args.into_iter();
            let (a, b) = (args.next().ok_or(KernelError::Layout)?, args.next().ok_or(KernelError::Layout)?);
            let b = b.dense()?;
            // One call per operator, so that each loop is compiled with its arithmetic inlined.
            match op {
                Op::Add => elementwise::binary(ctx, a, &b, |a, b| a + b)?,
                Op::Mul => elementwise::binary(ctx, a, &b, |a, b| a * b)?,
                Op::Sub => elementwise::binary(ctx, a, &b, |a, b| a - b)?,
                _ => elementwise::binary(ctx, a, &b, |a, b| a / b)?,
            }
        }
        Op::Sqrt => elementwise::unary(ctx, first(args)?, f32::sqrt)?,
        Op::Relu => elementwise::unary(ctx, first(args)?, |v| v.max(0.0))?,
        Op::LeakyRelu(a) => {
            let alpha = a.alpha;
            elementwise::unary(ctx, first(args)?, move |v| if v >= 0.0 { v } else { alpha * v })?
        }
        Op::Sigmoid => elementwise::unary(ctx, first(args)?, elementwise::sigmoid)?,
        Op::Tanh => elementwise::unary(ctx, first(args)?, elementwise::tanh)?,
        Op::Identity | Op::Reshape(_) | Op::Flatten(_) => layout::reshape(ctx, first(args)?, out)?,
        Op::BatchNormalization(a) => {
            let mut args = args;
            let rest = args.split_off(1.min(args.len()));
            let views = rest.iter().map(Arg::dense).collect::<Result<Vec<_>, _>>()?;
            let params: [ArrayViewD<f32>; 4] = views.try_into().map_err(|_| KernelError::Layout)?;
            elementwise::batch_norm(ctx, first(args)?, &params, a.epsilon)?
        }
        Op::Concat(a) => {
            let views = args.iter().map(Arg::dense).collect::<Result<Vec<_>, _>>()?;
            let axis = strider_ir::shape::normalize_axis(a.axis, out.len())
                .ok_or_else(|| KernelError::Unsupported(format!("Concat axis {} for rank {}", a.axis, out.len())))?;
            layout::concat(ctx, &views, axis, out)?
        }
        Op::Transpose(a) => {
            let x = dense(0)?;
            layout::transpose(ctx, &x, &a.resolved(x.ndim()))?
        }
        Op::Pad(a) => layout::pad(ctx, &dense(0)?, a, out)?,
        Op::Slice(a) => layout::slice(ctx, &dense(0)?, a)?,
        Op::DepthToSpace(a) => layout::depth_to_space(ctx, &dense(0)?, a)?,
        Op::ZeroInsert(a) => lowering::zero_insert(ctx, &dense(0)?, a, out)?,
        Op::Col2Im(a) => col2im::col2im(ctx, &dense(0)?, a, out)?,
        Op::SubpixelKernel(a) => lowering::subpixel_kernel(&dense(0)?, a, out),
        Op::ResizeConvKernel(a) => lowering::resize_conv_kernel(&dense(0)?, a, out),
        Op::PhaseKernel(a) => lowering::phase_kernel(&dense(0)?, a, out),
    };
    Ok(Tensor::Dense(dense_out))
}

fn first(args: Vec<Arg>) -> Result<Arg, KernelError> {
    args.into_iter().next().ok_or(KernelError::Layout)
}

/// Evaluates an op whose inputs and output are dense, once, on one thread (constant folding, tests).
pub fn eval_dense(op: &Op, inputs: &[ArrayViewD<f32>], output_shapes: &[Shape]) -> Result<ArrayD<f32>, KernelError> {
    let args = inputs.iter().map(|a| Arg::View(Operand::Dense(a.view()))).collect();
    match eval(&mut Ctx::new(1), op, args, output_shapes, None)? {
        Tensor::Dense(a) => Ok(a),
        Tensor::Sparse(_) => Err(KernelError::Unsupported(format!("{} has a sparse result; use `eval`", op.name()))),
    }
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
        // The same op with its first input handed over (as the last reader of it) gives the same values.
        if reuses_first_input(&op) && inputs[0].shape() == out.shape() {
            let mut args = vec![Arg::Owned(inputs[0].clone())];
            args.extend(inputs[1..].iter().map(|a| Arg::View(Operand::Dense(a.view()))));
            let Tensor::Dense(owned) = eval(&mut Ctx::new(2), &op, args, &out_shapes, None).unwrap() else { panic!() };
            assert_eq!(owned.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), values_bits(&out));
        }
        out
    }

    fn values_bits(a: &ArrayD<f32>) -> Vec<u32> {
        a.iter().map(|v| v.to_bits()).collect()
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
        assert_eq!(values(&eval1(Op::Div, &[a.clone(), b.clone()])), [2., 4.5, -0.5]);
        // The broadcast operand first: the output is larger than it, so it is not reused.
        assert_eq!(values(&eval1(Op::Sub, &[b, a.clone()])), [-2., -7., 3.]);
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
