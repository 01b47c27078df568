//! Constant folding: every node whose inputs are all constants (a weight-only subgraph such as a
//! flipped kernel or a sub-pixel kernel) is evaluated once and replaced by an initializer.

use std::borrow::Cow;
use std::collections::HashMap;

use ndarray::ArrayD;
use strider_ir::format::DataSpec;
use strider_ir::{Graph, GraphBuilder, Layout, Limits, Producer};

use crate::{ExecError, kernels};

/// The graph with every weight-only node evaluated into an initializer. Folded data is written
/// `Inline`; savers may move large tensors to files. Initializers are read in place, not copied, and
/// every buffer whose size the model decides is reserved fallibly: memory the system refuses is an
/// error, not an abort.
pub fn fold_constants(graph: &Graph, limits: &Limits) -> Result<Graph, FoldError> {
    let mut constant: HashMap<usize, Cow<ArrayD<f32>>> = HashMap::new();
    for init in graph.initializers() {
        constant.insert(init.value.index(), Cow::Borrowed(init.data()?));
    }
    let mut b = GraphBuilder::new(graph.name(), *limits);
    for &v in graph.inputs() {
        b.input(graph.value(v).name.clone(), graph.shape(v).clone());
    }
    let mut folded = Vec::new();
    for (_, node) in graph.nodes() {
        // Sparse results stay ops: initializers are dense.
        let dense_result = node.outputs.iter().all(|&v| graph.value(v).ty.layout == Layout::Dense);
        if dense_result && node.inputs.iter().all(|v| constant.contains_key(&v.index())) {
            let args: Vec<_> = node.inputs.iter().map(|v| constant[&v.index()].view()).collect();
            let data = kernels::eval_dense(&node.op, &args, &graph.output_shapes(node))
                .map_err(|source| ExecError::Kernel { node: node.name.clone(), op: node.op.name(), source })?;
            constant.insert(node.outputs[0].index(), Cow::Owned(data));
            folded.push(node.outputs[0]);
        } else {
            let names =
                |ids: &[strider_ir::ValueId]| ids.iter().map(|&v| graph.value(v).name.clone()).collect::<Vec<_>>();
            b.node(node.name.clone(), node.op.clone(), names(&node.inputs), names(&node.outputs));
        }
    }
    // Keep the constants something still reads (or that are outputs).
    let mut needed: Vec<bool> = vec![false; graph.values().len()];
    for (_, node) in graph.nodes() {
        if !node.outputs.iter().all(|v| constant.contains_key(&v.index())) {
            for v in &node.inputs {
                needed[v.index()] = true;
            }
        }
    }
    for v in graph.outputs() {
        needed[v.index()] = true;
    }
    for init in graph.initializers() {
        if needed[init.value.index()] {
            b.copy_initializer(graph.value(init.value).name.clone(), init);
        }
    }
    for v in folded {
        if needed[v.index()] && graph.value(v).producer != Producer::Initializer {
            let name = &graph.value(v).name;
            let data = constant.remove(&v.index()).expect("folded above").into_owned();
            let values = strider_ir::alloc::try_collect(data.len(), data.iter().copied())
                .map_err(|e| strider_ir::Error::Initializer { name: name.clone(), problem: e.to_string() })?;
            b.initializer(name.clone(), data, DataSpec::Inline(values));
        }
    }
    for &v in graph.outputs() {
        b.output(graph.value(v).name.clone());
    }
    Ok(b.finish()?)
}

/// Why folding failed.
#[derive(Debug, thiserror::Error)]
pub enum FoldError {
    /// A kernel failed on constant inputs.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// An initializer's data could not be produced, or the folded graph is invalid (a bug).
    #[error(transparent)]
    Graph(#[from] strider_ir::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use strider_ir::Op;
    use strider_ir::op::TransposeAttrs;

    #[test]
    fn weight_only_nodes_become_initializers_with_the_same_result() {
        let mut b = GraphBuilder::new("g", Limits::default());
        b.input("x", [2, 3]);
        let w = ArrayD::from_shape_vec(vec![2, 3], vec![1., 2., 3., 4., 5., 6.]).unwrap();
        b.initializer("w", w, DataSpec::Fill(0.0));
        b.node("t", Op::Transpose(TransposeAttrs::default()), ["w"], ["wt"]);
        b.node("mm", Op::MatMul, ["x", "wt"], ["y"]);
        b.output("y");
        let g = b.finish().unwrap();
        let folded = fold_constants(&g, &Limits::default()).unwrap();
        assert_eq!(folded.nodes().count(), 1);
        let names: Vec<&str> = folded.initializers().iter().map(|i| folded.value(i.value).name.as_str()).collect();
        assert_eq!(names, ["wt"]);
        let x = ArrayD::from_shape_vec(vec![2, 3], vec![1., 0., 0., 0., 1., 0.]).unwrap();
        let inputs = HashMap::from([("x".to_string(), x)]);
        assert_eq!(crate::run(&g, &inputs).unwrap(), crate::run(&folded, &inputs).unwrap());
    }
}
