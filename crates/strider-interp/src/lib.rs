//! Strider's execution engine: a validated [`Graph`] prepared once into a [`Plan`] (weight-only
//! subgraphs evaluated, a thread pool started, buffers reused from run to run) and run with kernels
//! built on a multi-threaded, SIMD-dispatched GEMM. Every lowering is checked against it, and
//! [`kernels::reference`] keeps the definitions the fast kernels are tested against.

pub mod buffers;
pub mod feeds;
pub mod fold;
mod fusion;
pub mod gemm;
pub mod kernels;
pub mod memory;
pub mod plan;
pub mod streaming;

use std::collections::HashMap;

use ndarray::ArrayD;
use strider_ir::{Graph, Node};

pub use kernels::{KernelError, Operand, Tensor};
pub use plan::{Outputs, Plan, PlanOptions, RunStats};

/// Why a graph could not be executed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A graph input was not supplied.
    #[error("graph input `{0}` was not given a value")]
    MissingInput(String),
    /// A supplied input has the wrong shape.
    #[error("graph input `{name}` has shape {expected:?}, but the value given has shape {found:?}")]
    InputShape {
        /// The input.
        name: String,
        /// Declared shape.
        expected: Vec<usize>,
        /// Shape supplied.
        found: Vec<usize>,
    },
    /// A value was supplied for a name that is not a graph input.
    #[error("`{0}` is not an input of this graph")]
    UnknownInput(String),
    /// A graph output is a sparse matrix, which `run` does not densify.
    #[error("graph output `{0}` is a sparse matrix; run returns dense tensors only")]
    SparseOutput(String),
    /// A kernel failed.
    #[error("node `{node}` ({op}): {source}")]
    Kernel {
        /// The node.
        node: String,
        /// Its op.
        op: &'static str,
        /// The kernel's error.
        source: KernelError,
    },
    /// An initializer's or a seeded input's data could not be produced (memory refused, or a weight file
    /// changed since loading).
    #[error(transparent)]
    Initializer(#[from] strider_ir::Error),
    /// The thread pool could not be started.
    #[error("cannot start the thread pool: {0}")]
    Threads(String),
    /// A value was missing when a node needed it (a bug: please report it).
    #[error("internal error: a value was read before it was computed")]
    Internal,
}

impl ExecError {
    fn kernel(node: &Node, source: KernelError) -> Self {
        ExecError::Kernel { node: node.name.clone(), op: node.op.name(), source }
    }
}

/// Runs `graph` on `inputs` (by input name) once and returns its outputs in declaration order: a
/// plan prepared for this one run, on every core. Prepare a [`Plan`] to run a graph many times.
pub fn run(graph: &Graph, inputs: &HashMap<String, ArrayD<f32>>) -> Result<Vec<(String, ArrayD<f32>)>, ExecError> {
    Plan::new(graph, &PlanOptions::default())?.run(inputs)
}
