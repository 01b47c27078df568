//! Strider's reference interpreter: executes a validated [`Graph`] with ndarray, in topological order,
//! freeing each intermediate after its last reader. Every lowering is checked against this.

pub mod feeds;
pub mod fold;
pub mod kernels;

use std::collections::HashMap;

use ndarray::{ArrayD, ArrayViewD, CowArray, IxDyn};
use strider_ir::{Graph, Producer};

pub use kernels::KernelError;

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
    let mut env: Vec<Option<CowArray<f32, IxDyn>>> = vec![None; graph.values().len()];
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
        env[v.index()] = Some(CowArray::from(data.view()));
    }
    for init in graph.initializers() {
        env[init.value.index()] = Some(CowArray::from(init.data.view()));
    }
    let mut uses = graph.use_counts();
    for (_, node) in graph.nodes() {
        let args: Vec<ArrayViewD<f32>> = node
            .inputs
            .iter()
            .map(|v| env[v.index()].as_ref().expect("inputs precede readers in topological order").view())
            .collect();
        let outs = kernels::eval(&node.op, &args, &graph.output_shapes(node)).map_err(|source| ExecError::Kernel {
            node: node.name.clone(),
            op: node.op.name(),
            source,
        })?;
        for (&v, out) in node.outputs.iter().zip(outs) {
            env[v.index()] = Some(CowArray::from(out));
        }
        for v in &node.inputs {
            uses[v.index()] -= 1;
            if uses[v.index()] == 0 && graph.value(*v).producer != Producer::Initializer {
                env[v.index()] = None;
            }
        }
    }
    Ok(graph
        .outputs()
        .iter()
        .map(|&v| {
            let data = env[v.index()].as_ref().expect("every output is defined").to_owned();
            (graph.value(v).name.clone(), data)
        })
        .collect())
}
