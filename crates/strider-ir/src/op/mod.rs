//! The operator set. Every op is declared here once: its attributes (with ONNX names and defaults), its
//! shape rule and its FLOP count. The interpreter and the rewrite engine match on [`Op`] exhaustively, so
//! adding a variant makes the compiler point at every place that must learn it.

mod conv;
mod elementwise;
mod layout;
mod lowering;
mod matmul;
mod norm;
mod resize;
mod sparse;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::shape::{Layout, Shape};

pub use conv::{AutoPad, AxisGeometry, ConvAttrs, ConvTransposeAttrs};
pub use elementwise::LeakyReluAttrs;
pub use layout::{
    ConcatAttrs, DepthToSpaceAttrs, DepthToSpaceMode, FlattenAttrs, PadAttrs, PadMode, ReshapeAttrs, SliceAttrs,
    SliceAxis, TransposeAttrs,
};
pub use lowering::{
    Col2ImAttrs, Col2ImAxis, PhaseKernelAttrs, ResizeConvKernelAttrs, SubpixelKernelAttrs, ZeroInsertAttrs,
};
pub use matmul::MatMulDims;
pub use norm::BatchNormAttrs;
pub use resize::{CoordinateTransform, NearestMode, ResizeMode, UpsampleAttrs};
pub use sparse::{ConvMatrixAttrs, SparseMatMulAttrs};

/// Why an op refuses its inputs or attributes. The graph layer adds which node it was.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum OpError {
    /// Wrong number of inputs.
    #[error("expected {expected} inputs, found {found}")]
    Arity {
        /// Accepted input counts, e.g. "2 or 3".
        expected: String,
        /// Inputs given.
        found: usize,
    },
    /// An input's shape does not fit.
    #[error("input `{input}` has shape {found}, expected {expected}")]
    Shape {
        /// Which input (ONNX name, e.g. `W`).
        input: &'static str,
        /// What the op needs, in words.
        expected: String,
        /// What it got.
        found: Shape,
    },
    /// An attribute is invalid on its own or for these inputs.
    #[error("attribute `{name}`: {message}")]
    Attribute {
        /// ONNX attribute name.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl OpError {
    pub(crate) fn attr(name: &'static str, message: impl Into<String>) -> Self {
        OpError::Attribute { name, message: message.into() }
    }

    pub(crate) fn shape(input: &'static str, expected: impl Into<String>, found: &Shape) -> Self {
        OpError::Shape { input, expected: expected.into(), found: found.clone() }
    }
}

/// What each op family provides. Implemented once per op; [`Op`] dispatches to it.
pub(crate) trait OpRule {
    /// ONNX names of the inputs, required ones first.
    fn input_names(&self) -> &'static [&'static str];
    /// How many of [`OpRule::input_names`] are required (the rest are optional and trailing).
    fn required_inputs(&self) -> usize {
        self.input_names().len()
    }
    /// Output shapes from input shapes, or why the inputs or attributes are invalid.
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError>;
    /// Floating-point operations performed (a multiply-add counts as two).
    fn flops(&self, inputs: &[&Shape], outputs: &[Shape]) -> u64;
    /// Storage of the output.
    fn output_layout(&self, _inputs: &[&Shape]) -> Layout {
        Layout::Dense
    }
    /// The input that must be a sparse matrix, if any (every other input must be dense).
    fn sparse_input(&self) -> Option<usize> {
        None
    }
}

/// One operator with its attributes. The variant names are the ONNX op types and the names used in the
/// RON format; attribute fields keep ONNX names, and an attribute left out takes ONNX's default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// N-d convolution (ONNX `Conv`). Inputs: X, W, optional B.
    Conv(ConvAttrs),
    /// N-d transposed convolution (ONNX `ConvTranspose`). Inputs: X, W, optional B.
    ConvTranspose(ConvTransposeAttrs),
    /// Resize by scale factors (ONNX `Upsample`, with ONNX `Resize`'s modes). Input: X.
    Upsample(UpsampleAttrs),
    /// Numpy matrix product with batch broadcasting. Inputs: A, B.
    MatMul,
    /// Broadcasting addition. Inputs: A, B.
    Add,
    /// Broadcasting multiplication. Inputs: A, B.
    Mul,
    /// Broadcasting subtraction. Inputs: A, B.
    Sub,
    /// Broadcasting division. Inputs: A, B.
    Div,
    /// Square root (NaN for negative inputs, as ONNX).
    Sqrt,
    /// max(x, 0).
    Relu,
    /// x if x ≥ 0, alpha·x otherwise.
    LeakyRelu(LeakyReluAttrs),
    /// 1 / (1 + e^−x).
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Inference-form batch normalization. Inputs: X, scale, B, mean, var.
    BatchNormalization(BatchNormAttrs),
    /// Joins inputs along an axis.
    Concat(ConcatAttrs),
    /// Reshape to a static target (ONNX's `shape` input is an attribute here).
    Reshape(ReshapeAttrs),
    /// Reshape to 2-D around an axis.
    Flatten(FlattenAttrs),
    /// Permutes axes.
    Transpose(TransposeAttrs),
    /// Pads (or, with negative pads, crops) each axis.
    Pad(PadAttrs),
    /// Strided slice (ONNX's starts/ends/axes/steps inputs are attributes here).
    Slice(SliceAttrs),
    /// Moves channel blocks into spatial blocks.
    DepthToSpace(DepthToSpaceAttrs),
    /// Passes its input through.
    Identity,
    /// Inserts stride − 1 zeros between spatial elements (lowering op).
    ZeroInsert(ZeroInsertAttrs),
    /// Scatter-adds columns into an image (ONNX `Col2Im`; lowering op).
    Col2Im(Col2ImAttrs),
    /// Rearranges a ConvTranspose weight into sub-pixel convolution weights (lowering op).
    SubpixelKernel(SubpixelKernelAttrs),
    /// The taps of one output phase of a ConvTranspose weight, as Conv weights (lowering op).
    PhaseKernel(PhaseKernelAttrs),
    /// Fuses a Conv weight with the nearest Upsample before it into phase-convolution weights
    /// (lowering op).
    ResizeConvKernel(ResizeConvKernelAttrs),
    /// The sparse matrix C of the convolution a ConvTranspose transposes (lowering op).
    ConvMatrix(ConvMatrixAttrs),
    /// Dense rows times a sparse matrix (lowering op).
    SparseMatMul(SparseMatMulAttrs),
}

/// Unit-attribute ops share these rules.
struct Unary;
struct Binary;

impl Op {
    fn rule(&self) -> &dyn OpRule {
        match self {
            Op::Conv(a) => a,
            Op::ConvTranspose(a) => a,
            Op::Upsample(a) => a,
            Op::MatMul => &matmul::MatMulRule,
            Op::Add | Op::Mul | Op::Sub | Op::Div => &Binary,
            Op::Relu | Op::Sigmoid | Op::Tanh | Op::Sqrt | Op::Identity => &Unary,
            Op::LeakyRelu(a) => a,
            Op::BatchNormalization(a) => a,
            Op::Concat(a) => a,
            Op::Reshape(a) => a,
            Op::Flatten(a) => a,
            Op::Transpose(a) => a,
            Op::Pad(a) => a,
            Op::Slice(a) => a,
            Op::DepthToSpace(a) => a,
            Op::ZeroInsert(a) => a,
            Op::Col2Im(a) => a,
            Op::SubpixelKernel(a) => a,
            Op::PhaseKernel(a) => a,
            Op::ResizeConvKernel(a) => a,
            Op::ConvMatrix(a) => a,
            Op::SparseMatMul(a) => a,
        }
    }

    /// The op type name (ONNX's, and the RON variant name).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv(_) => "Conv",
            Op::ConvTranspose(_) => "ConvTranspose",
            Op::Upsample(_) => "Upsample",
            Op::MatMul => "MatMul",
            Op::Add => "Add",
            Op::Mul => "Mul",
            Op::Sub => "Sub",
            Op::Div => "Div",
            Op::Sqrt => "Sqrt",
            Op::Relu => "Relu",
            Op::LeakyRelu(_) => "LeakyRelu",
            Op::Sigmoid => "Sigmoid",
            Op::Tanh => "Tanh",
            Op::BatchNormalization(_) => "BatchNormalization",
            Op::Concat(_) => "Concat",
            Op::Reshape(_) => "Reshape",
            Op::Flatten(_) => "Flatten",
            Op::Transpose(_) => "Transpose",
            Op::Pad(_) => "Pad",
            Op::Slice(_) => "Slice",
            Op::DepthToSpace(_) => "DepthToSpace",
            Op::Identity => "Identity",
            Op::ZeroInsert(_) => "ZeroInsert",
            Op::Col2Im(_) => "Col2Im",
            Op::SubpixelKernel(_) => "SubpixelKernel",
            Op::PhaseKernel(_) => "PhaseKernel",
            Op::ResizeConvKernel(_) => "ResizeConvKernel",
            Op::ConvMatrix(_) => "ConvMatrix",
            Op::SparseMatMul(_) => "SparseMatMul",
        }
    }

    /// ONNX names of this op's inputs, required ones first.
    pub fn input_names(&self) -> &'static [&'static str] {
        self.rule().input_names()
    }

    /// Infers output shapes, checking input count, input shapes and attributes.
    pub fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        let rule = self.rule();
        let (min, max) = (rule.required_inputs(), rule.input_names().len());
        let variadic = matches!(self, Op::Concat(_));
        if inputs.len() < min || (!variadic && inputs.len() > max) {
            let expected = match (variadic, min == max) {
                (true, _) => format!("at least {min}"),
                (false, true) => min.to_string(),
                (false, false) => format!("{min} to {max}"),
            };
            return Err(OpError::Arity { expected, found: inputs.len() });
        }
        rule.infer(inputs)
    }

    /// Floating-point operations (a multiply-add counts as two) for these input and output shapes.
    /// Ops whose work depends on a sparse input's stored elements need [`Op::flops_with_layouts`].
    pub fn flops(&self, inputs: &[&Shape], outputs: &[Shape]) -> u64 {
        self.rule().flops(inputs, outputs)
    }

    /// FLOPs knowing the inputs' storage: a product with a sparse matrix costs two per stored element
    /// and row of X.
    pub fn flops_with_layouts(&self, inputs: &[&Shape], layouts: &[Layout], outputs: &[Shape]) -> u64 {
        match (self, layouts.get(1)) {
            (Op::SparseMatMul(_), Some(Layout::Csr { nnz })) => 2 * inputs[0].dims()[0] as u64 * *nnz as u64,
            _ => self.flops(inputs, outputs),
        }
    }

    /// Storage of the output for these inputs.
    pub fn output_layout(&self, inputs: &[&Shape]) -> Layout {
        self.rule().output_layout(inputs)
    }

    /// Checks that sparse matrices go only where an op takes one: input `index` has `layout`.
    pub fn check_layout(&self, index: usize, layout: Layout) -> Result<(), OpError> {
        let name = self.input_names().get(index).copied().unwrap_or("input");
        match (self.rule().sparse_input() == Some(index), layout) {
            (true, Layout::Csr { .. }) | (false, Layout::Dense) => Ok(()),
            (true, Layout::Dense) => Err(OpError::attr(name, "must be a sparse matrix (the output of ConvMatrix)")),
            (false, Layout::Csr { .. }) => Err(OpError::attr(name, "is a sparse matrix, which this op cannot read")),
        }
    }

    /// A one-line summary of the attributes that differ from ONNX's defaults, in RON syntax.
    pub fn attributes_summary(&self) -> String {
        let text = crate::format::op_to_ron(self);
        match text.find('(') {
            Some(i) if text.ends_with(')') => text[i + 1..text.len() - 1].to_string(),
            _ => String::new(),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl OpRule for Unary {
    fn input_names(&self) -> &'static [&'static str] {
        &["X"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        Ok(vec![inputs[0].clone()])
    }
    fn flops(&self, _: &[&Shape], outputs: &[Shape]) -> u64 {
        outputs[0].numel() as u64
    }
}

impl OpRule for Binary {
    fn input_names(&self) -> &'static [&'static str] {
        &["A", "B"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        crate::shape::broadcast(inputs[0].dims(), inputs[1].dims())
            .map(|s| vec![s])
            .ok_or_else(|| OpError::shape("B", format!("a shape that broadcasts with {}", inputs[0]), inputs[1]))
    }
    fn flops(&self, _: &[&Shape], outputs: &[Shape]) -> u64 {
        outputs[0].numel() as u64
    }
}

/// Largest stride, dilation, factor or |pad| accepted: far beyond any real model, small enough that
/// every size derived from it is exact in 64-bit arithmetic.
pub(crate) const ATTRIBUTE_MAX: i64 = i32::MAX as i64;

/// Product of a slice of sizes as `u64` (FLOP counts).
pub(crate) fn product(dims: &[usize]) -> u64 {
    dims.iter().map(|&d| d as u64).product()
}
