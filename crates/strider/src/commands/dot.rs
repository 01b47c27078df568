//! `strider dot`: the graph as Graphviz DOT — each op with its key attributes, value names and shapes
//! on the edges — or the saturated e-graph, one box per e-class.

use std::fmt::Write as _;

use egg::Language as _;
use petgraph::dot::{Config, Dot};
use petgraph::graph::{DiGraph, NodeIndex};
use strider_check::numbers::grouped;
use strider_ir::{Graph, Op, Producer, Shape};
use strider_rewrite::lang::Node;
use strider_rewrite::{RunLimits, Strategy, TensorGraph, saturate};

use crate::exit::Usage;

/// What a box in the drawing stands for.
#[derive(Debug)]
enum Vertex {
    Input(String),
    Weight(String),
    Op { name: String, op: &'static str, attributes: Vec<String> },
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
        let shapes: Vec<Option<&Shape>> = node.inputs.iter().map(|&v| Some(graph.shape(v))).collect();
        let attributes = key_attributes(&node.op, &shapes);
        let me = drawing.add_node(Vertex::Op { name: node.name.clone(), op: node.op.name(), attributes });
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
        Vertex::Op { name, op, attributes } => {
            let lines: Vec<String> =
                [op.to_string(), name.clone()].into_iter().chain(attributes.iter().cloned()).collect();
            format!("label = \"{}\", shape = box", lines.iter().map(|l| escape(l)).collect::<Vec<_>>().join("\\n"))
        }
        Vertex::Output(n) => format!("label = \"{}\", shape = house", escape(n)),
    };
    let dot = Dot::with_attr_getters(&drawing, &[Config::NodeNoLabel, Config::EdgeNoLabel], &edge, &node);
    format!("{dot:?}")
}

/// A list of sizes as `4×4`.
fn by(values: &[usize]) -> String {
    values.iter().map(usize::to_string).collect::<Vec<_>>().join("×")
}

/// The attributes that say what an op does, one short line each: for a convolution its kernel,
/// strides, pads and, when not 1, dilations and group (kernel and pads resolved from the weight's
/// shape and auto_pad); for Upsample its scales and mode; for other ops their written attributes.
/// `inputs` are the shapes of the op's inputs where known.
fn key_attributes(op: &Op, inputs: &[Option<&Shape>]) -> Vec<String> {
    let shapes = (inputs.first().copied().flatten(), inputs.get(1).copied().flatten());
    let geometry = match (op, shapes) {
        (Op::Conv(a), (Some(x), Some(w))) => a.geometry(x, w).ok().map(|g| (g, a.group)),
        (Op::ConvTranspose(a), (Some(x), Some(w))) => a.geometry(x, w).ok().map(|g| (g, a.group)),
        _ => None,
    };
    if let Some((axes, group)) = geometry {
        let kernel: Vec<usize> = axes.iter().map(|a| a.kernel).collect();
        let strides: Vec<usize> = axes.iter().map(|a| a.stride).collect();
        let dilations: Vec<usize> = axes.iter().map(|a| a.dilation).collect();
        let output_padding: Vec<usize> = axes.iter().map(|a| a.output_padding).collect();
        let pads: Vec<String> =
            axes.iter().map(|a| a.pad_begin).chain(axes.iter().map(|a| a.pad_end)).map(|p| p.to_string()).collect();
        let mut lines =
            vec![format!("kernel {} stride {}", by(&kernel), by(&strides)), format!("pads {}", pads.join(","))];
        if dilations.iter().any(|&d| d != 1) {
            lines.push(format!("dilations {}", by(&dilations)));
        }
        if output_padding.iter().any(|&p| p != 0) {
            lines.push(format!("output_padding {}", by(&output_padding)));
        }
        if group != 1 {
            lines.push(format!("group {group}"));
        }
        return lines;
    }
    match op {
        Op::Upsample(a) => {
            let scales: Vec<String> = a.scales.iter().map(|s| s.to_string()).collect();
            vec![format!("scales {}", scales.join(",")), format!("{:?}", a.mode).to_lowercase()]
        }
        _ => attribute_lines(&op.attributes_summary()),
    }
}

/// Labels wider than this many characters are cut (with `…`), so that no box widens the drawing.
const LABEL_WIDTH: usize = 32;

/// A written attribute list (`axis: 1, perm: [1, 0]`) as one line per attribute, each cut to
/// [`LABEL_WIDTH`].
fn attribute_lines(summary: &str) -> Vec<String> {
    let (mut lines, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in summary.char_indices() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            ',' if depth == 0 => {
                lines.push(summary[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    lines.push(summary[start..].trim());
    lines
        .into_iter()
        .filter(|l| !l.is_empty())
        .map(|l| match l.char_indices().nth(LABEL_WIDTH - 1) {
            Some((cut, _)) => format!("{}…", &l[..cut]),
            None => l.to_string(),
        })
        .collect()
}

fn label(graph: &Graph, v: strider_ir::ValueId) -> String {
    format!("{} {}", graph.value(v).name, graph.shape(v))
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Saturated e-graphs with more e-nodes (attribute leaves not counted) than this are refused: beyond
/// it Graphviz draws a picture too large to read. The textbook example draws 19 e-nodes (about
/// 950×650 pt), a stride-2 DCGAN layer 30, the U-Net decoder example 83.
pub const EGRAPH_DOT_LIMIT: usize = 60;

/// DOT text of the e-graph of `graph` saturated with every rule: one box per e-class (named after its
/// value, with its shape) holding its e-nodes, each an op with its key attributes; data flows left to
/// right, so the alternatives of a class stack up instead of widening the drawing. An e-graph over
/// [`EGRAPH_DOT_LIMIT`] e-nodes is refused with advice.
pub fn render_egraph(graph: &Graph, limits: &RunLimits) -> miette::Result<String> {
    // Saturation stops early once the e-graph is certainly too large to draw, so a large model is
    // refused quickly.
    let cap = 4 * EGRAPH_DOT_LIMIT;
    let capped = RunLimits { nodes: limits.nodes.min(cap), ..*limits };
    let saturated = saturate(graph, &Strategy::Auto.rules(), &capped);
    let egraph = &saturated.egraph;
    let boxes: Vec<&egg::EClass<Node, _>> = egraph.classes().filter(|c| drawn(c)).collect();
    let nodes: usize = boxes.iter().map(|c| c.nodes.len()).sum();
    let stopped_at_cap = limits.nodes > cap && egraph.total_number_of_nodes() >= cap;
    if nodes > EGRAPH_DOT_LIMIT || stopped_at_cap {
        let size = if stopped_at_cap {
            format!("grows past {} e-nodes", grouped(cap as u128))
        } else {
            format!("has {} e-nodes in {} e-classes", grouped(nodes as u128), grouped(boxes.len() as u128))
        };
        return Err(Usage(format!(
            "the saturated e-graph of `{}` {size}, more than the {EGRAPH_DOT_LIMIT} e-nodes a drawing stays readable \
             with; `strider explore` lists every lowering of each node with its cost, and `dot --egraph` on a model of \
             one or two layers shows how the lowerings share the e-graph",
            graph.name(),
        ))
        .into());
    }
    Ok(egraph_dot(egraph, &saturated.roots))
}

/// Whether an e-class gets a box: attribute leaves are drawn inside the ops that use them instead.
fn drawn<D>(class: &egg::EClass<Node, D>) -> bool {
    !class.nodes.iter().all(|n| matches!(n, Node::Attrs(_)))
}

/// The drawing of an e-graph; `roots` (the graph outputs' classes) drawn bold.
fn egraph_dot(egraph: &TensorGraph, roots: &[egg::Id]) -> String {
    let mut classes: Vec<&egg::EClass<Node, _>> = egraph.classes().filter(|c| drawn(c)).collect();
    classes.sort_by_key(|c| c.id);
    let mut out = String::from("digraph egraph {\n");
    for setting in ["compound = true", "newrank = true", "rankdir = LR", "nodesep = 0.15", "ranksep = 0.3"] {
        let _ = writeln!(out, "    {setting}");
    }
    out.push_str("    node [shape = box, style = rounded, fontsize = 11]\n");
    let mut edges = String::new();
    for class in &classes {
        let id = class.id;
        let name = egraph.analysis.names.get(&id).cloned().unwrap_or_else(|| format!("e-class {id}"));
        let shape = class.data.shape.as_ref().map_or_else(String::new, |s| format!(" {s}"));
        let pen = if roots.iter().any(|&r| egraph.find(r) == id) { "penwidth = 2, " } else { "" };
        let _ = writeln!(out, "    subgraph cluster_{id} {{");
        let title = escape(&format!("{name}{shape}"));
        let _ = writeln!(out, "        graph [{pen}style = \"dashed,rounded\", color = gray50, label = \"{title}\"]");
        for (i, node) in class.nodes.iter().enumerate() {
            let lines = match node {
                Node::Input(s) => vec![format!("input {s}")],
                Node::Const(s) => vec![format!("weight {s}")],
                Node::Attrs(a) => vec![a.op.name().to_string()],
                Node::Apply(op, children) => {
                    let attrs = children.first().and_then(|&a| egraph[a].data.attrs.clone());
                    let shapes: Vec<Option<&Shape>> =
                        children[1..].iter().map(|&c| egraph[c].data.shape.as_ref()).collect();
                    let mut lines = vec![op.to_string()];
                    lines.extend(attrs.map(|a| key_attributes(&a, &shapes)).unwrap_or_default());
                    lines
                }
            };
            let label: Vec<String> = lines.iter().map(|l| escape(l)).collect();
            let _ = writeln!(out, "        c{id}_{i} [label = \"{}\"]", label.join("\\n"));
            for &child in node.children().iter().skip(1) {
                let child = egraph.find(child);
                // An e-node reading its own class (an identity) gets a plain edge: Graphviz cannot clip
                // an edge at a cluster that holds both ends.
                let clip = if child == id { String::new() } else { format!(" [ltail = cluster_{child}]") };
                let _ = writeln!(edges, "    c{child}_0 -> c{id}_{i}{clip}");
            }
        }
        let _ = writeln!(out, "    }}");
    }
    out.push_str(&edges);
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_get_a_line_each_and_long_ones_are_cut() {
        assert_eq!(attribute_lines(""), Vec::<String>::new());
        assert_eq!(attribute_lines("axis: 1"), ["axis: 1"]);
        assert_eq!(attribute_lines("perm: [1, 0], axis: 2"), ["perm: [1, 0]", "axis: 2"]);
        let cut = attribute_lines("ends: [-9223372036854775808, -9223372036854775808]");
        assert_eq!(cut, ["ends: [-9223372036854775808, -9…"]);
        assert_eq!(cut[0].chars().count(), LABEL_WIDTH);
    }
}
