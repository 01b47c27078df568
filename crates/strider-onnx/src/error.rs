//! The ONNX crate's error type: why a file cannot be read as a Strider graph, or a graph cannot be
//! written as ONNX. Every variant names the file, node or tensor it is about.

use std::fmt;
use std::path::PathBuf;

/// One unsupported op type and the nodes that use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsupportedOp {
    /// `op_type`, with its domain when it is not the default one.
    pub op_type: String,
    /// Names of the nodes of this type, in file order.
    pub nodes: Vec<String>,
}

impl fmt::Display for UnsupportedOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes: Vec<String> = self.nodes.iter().map(|n| format!("`{n}`")).collect();
        let noun = if nodes.len() == 1 { "node" } else { "nodes" };
        write!(f, "{} ({noun} {})", self.op_type, nodes.join(", "))
    }
}

/// Why an ONNX file or tensor could not be read, or a graph could not be written as ONNX.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes are not a valid protobuf message of the expected kind (truncated, corrupt, or another
    /// kind of file).
    #[error("{path} is not a valid ONNX {what}: {message}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// "model" or "tensor".
        what: &'static str,
        /// What the decoder found.
        message: String,
    },
    /// A protobuf that decodes but is no usable model (no graph, no ONNX operator set).
    #[error("{path} is not an ONNX model: {problem}")]
    NotAModel {
        /// The file.
        path: PathBuf,
        /// What is missing.
        problem: String,
    },
    /// Ops Strider does not have; every one is listed with its nodes.
    #[error("unsupported ops: {}", list(.0))]
    Unsupported(Vec<UnsupportedOp>),
    /// A tensor whose element type is not float32.
    #[error("`{tensor}` has element type {found}; Strider computes in float32 only")]
    ElementType {
        /// The tensor or value.
        tensor: String,
        /// ONNX's name of its type.
        found: String,
    },
    /// A graph input with a dimension that is not a fixed number.
    #[error("input `{input}` has dynamic dimension {axis} ({dim}); bind it with --shape {input}=D0,D1,…")]
    DynamicDimension {
        /// The graph input.
        input: String,
        /// Which axis.
        axis: usize,
        /// Its symbolic name, or "unknown".
        dim: String,
    },
    /// A graph input whose type has no shape.
    #[error("input `{input}` has no declared shape; give one with --shape {input}=D0,D1,…")]
    UnknownShape {
        /// The graph input.
        input: String,
    },
    /// A `--shape` binding that does not fit the model.
    #[error("--shape {input}: {problem}")]
    Binding {
        /// The name given.
        input: String,
        /// What is wrong.
        problem: String,
    },
    /// A tensor's data is missing, mis-sized or unreadable.
    #[error("tensor `{tensor}`: {problem}")]
    Tensor {
        /// The tensor.
        tensor: String,
        /// What is wrong.
        problem: String,
    },
    /// A node whose attributes or constant inputs Strider cannot take.
    #[error("node `{node}` ({op_type}): {problem}")]
    Node {
        /// The node.
        node: String,
        /// Its op type.
        op_type: String,
        /// What is wrong.
        problem: String,
    },
    /// The imported graph is invalid (duplicates, cycles, shapes).
    #[error(transparent)]
    Graph(#[from] strider_ir::Error),
    /// A node cannot be written as standard ONNX.
    #[error("cannot export node `{node}` ({op}): {problem}")]
    Export {
        /// The node.
        node: String,
        /// Its op.
        op: &'static str,
        /// Why.
        problem: String,
    },
    /// The system refused memory for the bytes of a file being written.
    #[error("cannot write {path}: cannot allocate {bytes} bytes for the encoded {what}: the system refused the memory")]
    Encode {
        /// The file.
        path: PathBuf,
        /// "ONNX model" or "tensor".
        what: &'static str,
        /// Bytes asked for.
        bytes: usize,
    },
    /// An export option out of range.
    #[error("{0}")]
    Options(String),
}

fn list(ops: &[UnsupportedOp]) -> String {
    ops.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl Error {
    pub(crate) fn node(node: &str, op_type: &str, problem: impl Into<String>) -> Self {
        Error::Node { node: node.to_string(), op_type: op_type.to_string(), problem: problem.into() }
    }

    pub(crate) fn tensor(tensor: &str, problem: impl Into<String>) -> Self {
        Error::Tensor { tensor: tensor.to_string(), problem: problem.into() }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
