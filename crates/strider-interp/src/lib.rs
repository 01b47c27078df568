//! Strider's reference interpreter: executes a validated [`Graph`] with ndarray, in topological order,
//! freeing each intermediate after its last reader. Every lowering is checked against this.

pub mod feeds;
pub mod fold;
pub mod kernels;

use std::collections::HashMap;

use ndarray::{ArrayD, ArrayViewD};
use strider_ir::{Graph, Producer};

pub use kernels::{KernelError, Operand, Tensor};

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
}

/// Runs `graph` on `inputs` (by input name) and returns its outputs in declaration order.
pub fn run(graph: &Graph, inputs: &HashMap<String, ArrayD<f32>>) -> Result<Vec<(String, ArrayD<f32>)>, ExecError> {
    if let Some(extra) = inputs.keys().find(|k| graph.value_id(k).is_none_or(|v| !graph.inputs().contains(&v))) {
        return Err(ExecError::UnknownInput(extra.clone()));
    }
    let mut env: Vec<Option<Slot>> = vec![None; graph.values().len()];
    for &v in graph.inputs() {
        let value = graph.value(v);
        let data = inputs.get(&value.name).ok_or_else(|| ExecError::MissingInput(value.name.clone()))?;
        if data.shape() != value.ty.shape.dims() {
            return Err(ExecError::InputShape {
                name: value.name.clone(),
                expected: value.ty.shape.0.clone(),
                found: data.shape().to_vec(),
            });
        }
        env[v.index()] = Some(Slot::View(data.view()));
    }
    for init in graph.initializers() {
        env[init.value.index()] = Some(Slot::View(init.data.view()));
    }
    let mut uses = graph.use_counts();
    for (_, node) in graph.nodes() {
        let args: Vec<Operand> = node
            .inputs
            .iter()
            .map(|v| env[v.index()].as_ref().expect("inputs precede readers in topological order").operand())
            .collect();
        let outs = kernels::eval(&node.op, &args, &graph.output_shapes(node)).map_err(|source| ExecError::Kernel {
            node: node.name.clone(),
            op: node.op.name(),
            source,
        })?;
        for (&v, out) in node.outputs.iter().zip(outs) {
            env[v.index()] = Some(Slot::Owned(out));
        }
        for v in &node.inputs {
            uses[v.index()] -= 1;
            if uses[v.index()] == 0 && graph.value(*v).producer != Producer::Initializer {
                env[v.index()] = None;
            }
        }
    }
    graph
        .outputs()
        .iter()
        .map(|&v| {
            let name = graph.value(v).name.clone();
            match env[v.index()].as_ref().expect("every output is defined").operand() {
                Operand::Dense(a) => Ok((name, a.to_owned())),
                Operand::Sparse(_) => Err(ExecError::SparseOutput(name)),
            }
        })
        .collect()
}

/// A value during a run: borrowed from the inputs or initializers, or computed.
#[derive(Clone)]
enum Slot<'a> {
    View(ArrayViewD<'a, f32>),
    Owned(Tensor),
}

impl Slot<'_> {
    fn operand(&self) -> Operand<'_> {
        match self {
            Slot::View(a) => Operand::Dense(a.view()),
            Slot::Owned(t) => t.operand(),
        }
    }
}
