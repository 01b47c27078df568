//! `strider dot`: the graph as Graphviz DOT, with value names and shapes on the edges.

use petgraph::dot::{Config, Dot};
use petgraph::graph::{DiGraph, NodeIndex};
use strider_ir::{Graph, Producer};
use strider_rewrite::{RunLimits, Strategy, saturate};

/// What a box in the drawing stands for.
#[derive(Debug)]
enum Vertex {
    Input(String),
    Weight(String),
    Op { name: String, op: &'static str },
    Output(String),
}

/// DOT text for `graph`.
pub fn render(graph: &Graph) -> String {
    let mut drawing: DiGraph<Vertex, String> = DiGraph::new();
    // One vertex per graph input and initializer, then per node, then per graph output.
    let mut source: Vec<Option<NodeIndex>> = vec![None; graph.values().len()];
    for (i, value) in graph.values().iter().enumerate() {
        source[i] = match value.producer {
            Producer::Input => Some(drawing.add_node(Vertex::Input(value.name.clone()))),
            Producer::Initializer => Some(drawing.add_node(Vertex::Weight(value.name.clone()))),
            Producer::Node { .. } => None,
        };
    }
    for (_, node) in graph.nodes() {
        let me = drawing.add_node(Vertex::Op { name: node.name.clone(), op: node.op.name() });
        for &v in &node.inputs {
            if let Some(from) = source[v.index()] {
                drawing.add_edge(from, me, label(graph, v));
            }
        }
        for &v in &node.outputs {
            source[v.index()] = Some(me);
        }
    }
    for &v in graph.outputs() {
        let sink = drawing.add_node(Vertex::Output(graph.value(v).name.clone()));
        if let Some(from) = source[v.index()] {
            drawing.add_edge(from, sink, label(graph, v));
        }
    }
    let edge = |_, e: petgraph::graph::EdgeReference<'_, String>| format!("label = \"{}\"", escape(e.weight()));
    let node = |_, (_, v): (NodeIndex, &Vertex)| match v {
        Vertex::Input(n) => format!("label = \"{}\", shape = invhouse", escape(n)),
        Vertex::Weight(n) => format!("label = \"{}\", shape = note, color = gray50, fontcolor = gray30", escape(n)),
        Vertex::Op { name, op } => format!("label = \"{}\\n{}\", shape = box", escape(op), escape(name)),
        Vertex::Output(n) => format!("label = \"{}\", shape = house", escape(n)),
    };
    let dot = Dot::with_attr_getters(&drawing, &[Config::NodeNoLabel, Config::EdgeNoLabel], &edge, &node);
    format!("{dot:?}")
}

fn label(graph: &Graph, v: strider_ir::ValueId) -> String {
    format!("{} {}", graph.value(v).name, graph.shape(v))
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// E-graphs larger than this are refused: Graphviz cannot lay them out usefully.
const EGRAPH_DOT_LIMIT: usize = 5_000;

/// DOT text of the e-graph of `graph` saturated with every rule (one cluster per e-class).
pub fn render_egraph(graph: &Graph, limits: &RunLimits) -> miette::Result<String> {
    let saturated = saturate(graph, &Strategy::Auto.rules(), limits);
    let nodes = saturated.egraph.total_number_of_nodes();
    if nodes > EGRAPH_DOT_LIMIT {
        return Err(miette::miette!(
            "the saturated e-graph has {nodes} e-nodes, more than the {EGRAPH_DOT_LIMIT} Graphviz can draw usefully; \
             lower --node-limit or --iter-limit, or use `strider explore`"
        ));
    }
    Ok(saturated.egraph.dot().to_string())
}
