//! Replacing one node of a graph by an equivalent subgraph (a lowering of that node found alone), so
//! that the whole model can be checked with exactly one node lowered.

use std::collections::HashSet;

use strider_ir::{Graph, GraphBuilder, Limits, Node};

/// `graph` with `node` replaced by `replacement`, a graph whose inputs and outputs are named as the
/// node's inputs and outputs. Its constants join the graph's (shared names are the same tensors); its
/// intermediate values and nodes are prefixed with the node's name so nothing collides.
pub fn splice(graph: &Graph, node: &Node, replacement: &Graph, limits: &Limits) -> strider_ir::Result<Graph> {
    let mut b = GraphBuilder::new(graph.name(), *limits);
    for &v in graph.inputs() {
        b.input(graph.value(v).name.clone(), graph.shape(v).clone());
    }
    let mut constants: HashSet<String> = HashSet::new();
    for init in graph.initializers() {
        let name = graph.value(init.value).name.clone();
        constants.insert(name.clone());
        b.copy_initializer(name, init);
    }
    let names =
        |g: &Graph, ids: &[strider_ir::ValueId]| ids.iter().map(|&v| g.value(v).name.clone()).collect::<Vec<_>>();
    for (_, n) in graph.nodes() {
        if n.name != node.name {
            b.node(n.name.clone(), n.op.clone(), names(graph, &n.inputs), names(graph, &n.outputs));
        }
    }
    let boundary: HashSet<String> =
        names(replacement, replacement.inputs()).into_iter().chain(names(replacement, replacement.outputs())).collect();
    let rename = |name: &str| {
        if boundary.contains(name) || constants.contains(name) {
            name.to_string()
        } else {
            format!("{}/{name}", node.name)
        }
    };
    for init in replacement.initializers() {
        let name = replacement.value(init.value).name.clone();
        if !constants.contains(&name) {
            b.copy_initializer(rename(&name), init);
        }
    }
    for (_, n) in replacement.nodes() {
        let ins: Vec<String> = names(replacement, &n.inputs).iter().map(|v| rename(v)).collect();
        let outs: Vec<String> = names(replacement, &n.outputs).iter().map(|v| rename(v)).collect();
        b.node(format!("{}/{}", node.name, n.name), n.op.clone(), ins, outs);
    }
    for &v in graph.outputs() {
        b.output(graph.value(v).name.clone());
    }
    b.finish()
}
