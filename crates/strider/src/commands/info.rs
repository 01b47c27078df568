//! `strider info`: per node op, attributes, output shape, parameters and FLOPs, with totals; as a
//! table or as JSON, both from one [`ModelInfo`].

use serde::Serialize;
use strider_check::numbers::{bytes, count, grouped, si};
use strider_check::table::{Align, Table};
use strider_ir::{Graph, Shape, ValueId};

/// A named value and its shape.
#[derive(Debug, Serialize)]
pub struct NamedShape {
    /// The value's name.
    pub name: String,
    /// Its shape.
    pub shape: Shape,
}

/// One node of the model.
#[derive(Debug, Serialize)]
pub struct NodeInfo {
    /// Node name.
    pub name: String,
    /// Op type (ONNX name).
    pub op: String,
    /// The op's attributes (ONNX names; those left out take ONNX's defaults), as the RON format writes
    /// them.
    pub attributes: serde_json::Value,
    /// Outputs and their shapes.
    pub outputs: Vec<NamedShape>,
    /// Elements of the initializers it reads.
    pub parameters: usize,
    /// Floating-point operations of one run.
    pub flops: u64,
}

/// What `strider info` reports about a model.
#[derive(Debug, Serialize)]
pub struct ModelInfo {
    /// Model name.
    pub model: String,
    /// Graph inputs.
    pub inputs: Vec<NamedShape>,
    /// Graph outputs.
    pub outputs: Vec<NamedShape>,
    /// Number of initializers (weights).
    pub initializers: usize,
    /// Estimated peak memory of a run, in bytes (inputs, weights, intermediates, workspaces).
    pub estimated_peak_bytes: u128,
    /// The node running at the peak, if the peak is not the inputs and weights alone.
    pub peak_node: Option<String>,
    /// Nodes in topological order.
    pub nodes: Vec<NodeInfo>,
    /// Sum of the nodes' parameters.
    pub total_parameters: usize,
    /// Sum of the nodes' FLOPs.
    pub total_flops: u64,
}

/// An op's attributes as an object: `{}` for ops without any.
fn attributes(op: &strider_ir::Op) -> serde_json::Value {
    match serde_json::to_value(op) {
        Ok(serde_json::Value::Object(map)) if map.len() == 1 => {
            map.into_iter().next().map(|(_, v)| v).unwrap_or_default()
        }
        _ => serde_json::Value::Object(Default::default()),
    }
}

impl ModelInfo {
    /// Everything `info` says about `graph`.
    pub fn of(graph: &Graph) -> ModelInfo {
        let named = |ids: &[ValueId]| {
            ids.iter()
                .map(|&v| NamedShape { name: graph.value(v).name.clone(), shape: graph.shape(v).clone() })
                .collect()
        };
        let nodes: Vec<NodeInfo> = graph
            .nodes()
            .map(|(_, node)| NodeInfo {
                name: node.name.clone(),
                op: node.op.name().to_string(),
                attributes: attributes(&node.op),
                outputs: named(&node.outputs),
                parameters: graph.node_parameters(node),
                flops: graph.node_flops(node),
            })
            .collect();
        let peak = strider_interp::memory::estimate_peak(graph);
        ModelInfo {
            model: graph.name().to_string(),
            inputs: named(graph.inputs()),
            outputs: named(graph.outputs()),
            initializers: graph.initializers().len(),
            estimated_peak_bytes: peak.bytes,
            peak_node: peak.node,
            total_parameters: nodes.iter().map(|n| n.parameters).sum(),
            total_flops: nodes.iter().map(|n| n.flops).sum(),
            nodes,
        }
    }
}

/// The info table as text: the node's attributes as the RON format writes them.
pub fn render(graph: &Graph, info: &ModelInfo) -> String {
    let mut table = Table::new([
        ("node", Align::Left),
        ("op", Align::Left),
        ("attributes", Align::Left),
        ("output", Align::Left),
        ("params", Align::Right),
        ("FLOPs", Align::Right),
    ]);
    for ((_, node), n) in graph.nodes().zip(&info.nodes) {
        let outputs: Vec<String> = n.outputs.iter().map(|o| o.shape.to_string()).collect();
        table.row([
            n.name.clone(),
            n.op.clone(),
            node.op.attributes_summary(),
            outputs.join(" "),
            grouped(n.parameters as u128),
            si(n.flops as f64),
        ]);
    }
    table.row([
        "total".into(),
        String::new(),
        String::new(),
        String::new(),
        grouped(info.total_parameters as u128),
        si(info.total_flops as f64),
    ]);
    let shape_list =
        |values: &[NamedShape]| values.iter().map(|v| format!("{} {}", v.name, v.shape)).collect::<Vec<_>>().join(", ");
    let at = info.peak_node.as_ref().map_or_else(|| "inputs and weights".to_string(), |n| format!("while `{n}` runs"));
    format!(
        "graph `{}`: {}, {}\ninputs:  {}\noutputs: {}\nestimated peak memory: {} ({at})\n\n{}",
        info.model,
        count(info.nodes.len() as u128, "node"),
        count(info.initializers as u128, "initializer"),
        shape_list(&info.inputs),
        shape_list(&info.outputs),
        bytes(info.estimated_peak_bytes),
        table.text()
    )
}
