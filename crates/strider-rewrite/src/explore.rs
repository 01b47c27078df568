//! Exploration for research: for every ConvTranspose (and Upsample) of a model, every lowering the
//! e-graph holds for it, its FLOPs, bytes and cost under each cost model, and which one each model
//! picks. Each node is studied alone (a one-node graph with the same shapes, attributes and weights),
//! so a variant's numbers are its own, not its neighbours'.

use serde::Serialize;
use strider_ir::format::op_to_ron;
use strider_ir::{Graph, GraphBuilder, Limits, Op, Producer};

use crate::analysis::Declined;
use crate::cost::{Avoiding, CostModel};
use crate::pipeline::{IterationSize, RunLimits, extract_graph, saturate};
use crate::rules::Lowering;
use crate::strategy::Strategy;

/// A cost model with the name reports use.
pub struct NamedModel<'a> {
    /// Column name.
    pub name: String,
    /// The model.
    pub model: &'a dyn CostModel,
}

/// One way to compute a node.
#[derive(Clone, Debug, Serialize)]
pub struct Variant {
    /// `direct` (the node as it is) or a lowering name.
    pub lowering: String,
    /// Op kinds of the variant, with counts, in first-use order.
    pub ops: Vec<(String, usize)>,
    /// FLOPs at run time (weight-only work included).
    pub flops: u64,
    /// Bytes of intermediates and constants.
    pub bytes: u64,
    /// Cost under each model (`None`: unsupported), in the order of the models.
    pub costs: Vec<Option<f64>>,
}

/// Everything explored for one node.
#[derive(Clone, Debug, Serialize)]
pub struct NodeReport {
    /// Node name.
    pub node: String,
    /// Op with attributes, in RON.
    pub op: String,
    /// Output shape.
    pub output: Vec<usize>,
    /// The variants the e-graph holds.
    pub variants: Vec<Variant>,
    /// Per model, the lowering it picks.
    pub picks: Vec<(String, String)>,
    /// Rule applications declined for this node (too many e-nodes), with the reason.
    pub declined: Vec<Declined>,
}

/// The whole exploration.
#[derive(Clone, Debug, Serialize)]
pub struct Exploration {
    /// Model name.
    pub model: String,
    /// Names of the cost models, in column order.
    pub models: Vec<String>,
    /// E-graph size per iteration with every rule, on the whole model.
    pub sizes: Vec<(usize, usize)>,
    /// Why saturation stopped.
    pub stop_reason: String,
    /// One report per ConvTranspose or Upsample.
    pub nodes: Vec<NodeReport>,
}

/// Explores every ConvTranspose and Upsample of `graph` under `models`.
pub fn explore(graph: &Graph, models: &[NamedModel], limits: &RunLimits) -> Exploration {
    let whole = saturate(graph, &Strategy::Auto.rules(), limits);
    let sizes = whole.sizes.iter().map(|&IterationSize { nodes, classes }| (nodes, classes)).collect();
    let nodes = graph
        .nodes()
        .filter(|(_, n)| matches!(n.op, Op::ConvTranspose(_) | Op::Upsample(_)))
        .map(|(_, n)| explore_node(graph, n, models, limits))
        .collect();
    Exploration {
        model: graph.name().to_string(),
        models: models.iter().map(|m| m.name.clone()).collect(),
        sizes,
        stop_reason: whole.stop_reason,
        nodes,
    }
}

/// A graph holding only `node`: its non-constant inputs become graph inputs, constants stay constants.
pub fn isolate(graph: &Graph, node: &strider_ir::Node) -> Graph {
    let mut b = GraphBuilder::new(node.name.clone(), Limits { max_elements: usize::MAX });
    for &v in &node.inputs {
        let value = graph.value(v);
        match (value.producer, graph.initializer(v)) {
            (Producer::Initializer, Some(init)) => {
                b.copy_initializer(value.name.clone(), init);
            }
            _ => {
                b.input(value.name.clone(), value.ty.shape.clone());
            }
        }
    }
    let names = |ids: &[strider_ir::ValueId]| ids.iter().map(|&v| graph.value(v).name.clone()).collect::<Vec<_>>();
    b.node(node.name.clone(), node.op.clone(), names(&node.inputs), names(&node.outputs));
    for o in names(&node.outputs) {
        b.output(o);
    }
    b.finish().expect("a node of a valid graph is a valid graph")
}

fn describe(lowering: &str, g: &Graph, models: &[NamedModel], limits: &RunLimits) -> Variant {
    let mut ops: Vec<(String, usize)> = Vec::new();
    let (mut flops, mut bytes) = (0u64, 0u64);
    for (_, n) in g.nodes() {
        match ops.iter_mut().find(|(k, _)| k == n.op.name()) {
            Some((_, c)) => *c += 1,
            None => ops.push((n.op.name().to_string(), 1)),
        }
        flops += g.node_flops(n);
        bytes += n.outputs.iter().map(|&v| g.value(v).ty.size_bytes() as u64).sum::<u64>();
    }
    bytes += g.initializers().iter().map(|i| 4 * g.shape(i.value).numel() as u64).sum::<u64>();
    let plain = saturate(g, &[], limits);
    let costs = models
        .iter()
        .map(|m| extract_graph(&plain, g, m.model, &Limits::default(), plain.deadline).ok().map(|(_, c)| c))
        .collect();
    Variant { lowering: lowering.to_string(), ops, flops, bytes, costs }
}

/// Which lowering a graph is (`direct` when it still holds a ConvTranspose or Upsample): recognised by
/// the ops only that lowering introduces.
pub fn classify(g: &Graph) -> &'static str {
    let has = |name: &str| g.nodes().any(|(_, n)| n.op.name() == name);
    if has("ConvTranspose") || has("Upsample") {
        "direct"
    } else if has("ConvMatrix") {
        Lowering::SparseMatMul.name()
    } else if has("SubpixelKernel") {
        Lowering::Subpixel.name()
    } else if has("Col2Im") {
        Lowering::Col2Im.name()
    } else if has("ZeroInsert") || has("Conv") {
        Lowering::ZeroInsert.name()
    } else {
        Lowering::MatMul.name()
    }
}

fn explore_node(graph: &Graph, node: &strider_ir::Node, models: &[NamedModel], limits: &RunLimits) -> NodeReport {
    let alone = isolate(graph, node);
    let mut variants = vec![describe("direct", &alone, models, limits)];
    let mut declined: Vec<Declined> = Vec::new();
    for lowering in Lowering::ALL {
        let strategy = Strategy::Force(lowering);
        let saturated = saturate(&alone, &strategy.rules(), limits);
        for d in &saturated.egraph.analysis.declined {
            if !declined.contains(d) {
                declined.push(d.clone());
            }
        }
        let base = crate::cost::Flops::default();
        // Prefer the family's form over the node as it stands (an Upsample too).
        let model = Avoiding { inner: &base, ops: &["ConvTranspose", "Upsample"] };
        let Ok((lowered, _)) = extract_graph(&saturated, &alone, &model, &Limits::default(), saturated.deadline) else {
            continue;
        };
        // A family that does not apply leaves the node as it is.
        if classify(&lowered) != "direct" {
            variants.push(describe(lowering.name(), &lowered, models, limits));
        }
    }
    let picks = models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let best = variants
                .iter()
                .filter_map(|v| v.costs[i].map(|c| (c, &v.lowering)))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map_or_else(|| "none (unsupported)".to_string(), |(_, l)| l.clone());
            (m.name.clone(), best)
        })
        .collect();
    let output = graph.shape(node.outputs[0]).0.clone();
    NodeReport { node: node.name.clone(), op: op_to_ron(&node.op), output, variants, picks, declined }
}
