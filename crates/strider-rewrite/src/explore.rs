//! Exploration for research: for every ConvTranspose (and Upsample) of a model, every lowering the
//! e-graph holds for it, its FLOPs, bytes and cost under each cost model, and which one each model
//! picks. Each node is studied alone (a one-node graph with the same shapes, attributes and weights),
//! so a variant's numbers are its own, not its neighbours'. The whole model is extracted too, once per
//! cost model, with the extractor asked for (the exact one shows the greedy cost beside its own).

use serde::Serialize;
use strider_ir::format::op_to_ron;
use strider_ir::{Graph, Limits, Op};

use crate::analysis::Declined;
use crate::cost::{CostModel, Feasible, instances, price};
use crate::extract::Extractor;
use crate::isolate::{Form, in_form_noting_declined, isolate};
use crate::pipeline::{ExtractionSummary, IterationSize, RunLimits, extract_with, saturate};
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
    /// The node as it is, or the lowering.
    pub lowering: Form,
    /// Op kinds of the variant, with counts, in first-use order.
    pub ops: Vec<OpCount>,
    /// FLOPs at run time (weight-only work included).
    pub flops: u64,
    /// Bytes of intermediates and constants.
    pub bytes: u64,
    /// Cost under each model, in the order of the models.
    pub costs: Vec<ModelCost>,
    /// Why the variant cannot run within the limits (then no model picks it).
    pub excluded: Option<String>,
}

/// How many nodes of one op type a variant has.
#[derive(Clone, Debug, Serialize)]
pub struct OpCount {
    /// Op type.
    pub op: String,
    /// How many nodes of it the variant has.
    pub count: usize,
}

/// A variant's cost under one cost model.
#[derive(Clone, Debug, Serialize)]
pub struct ModelCost {
    /// The cost model.
    pub model: String,
    /// The cost (`None`: the model cannot execute one of its ops).
    pub cost: Option<f64>,
}

/// What a cost model picks for a node.
#[derive(Clone, Debug, Serialize)]
pub struct ModelPick {
    /// The cost model.
    pub model: String,
    /// The form it prices cheapest among those that fit the limits (`None`: it supports none).
    pub lowering: Option<Form>,
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
    /// Per model, the form it picks.
    pub picks: Vec<ModelPick>,
    /// Rule applications declined for this node (too many e-nodes), with the reason.
    pub declined: Vec<Declined>,
}

/// The whole model extracted under one cost model.
#[derive(Clone, Debug, Serialize)]
pub struct WholeModel {
    /// The cost model.
    pub model: String,
    /// How extraction went (`None`: the model supports no form of some value).
    pub extraction: Option<ExtractionSummary>,
    /// Why nothing could be extracted, if nothing could.
    pub unsupported: Option<String>,
}

/// The whole exploration.
#[derive(Clone, Debug, Serialize)]
pub struct Exploration {
    /// Model name.
    pub model: String,
    /// Names of the cost models, in column order.
    pub models: Vec<String>,
    /// E-graph size per iteration with every rule, on the whole model.
    pub sizes: Vec<IterationSize>,
    /// Why saturation stopped.
    pub stop_reason: String,
    /// The extractor of the whole-model extractions.
    pub extractor: Extractor,
    /// The whole model extracted under each cost model, in the order of the models.
    pub whole: Vec<WholeModel>,
    /// One report per ConvTranspose or Upsample.
    pub nodes: Vec<NodeReport>,
}

/// Explores every ConvTranspose and Upsample of `graph` under `models`; variants that would not fit
/// `limits` are listed as excluded. The whole model is extracted with `extractor` under each model.
pub fn explore(
    graph: &Graph,
    models: &[NamedModel],
    run_limits: &RunLimits,
    limits: &Limits,
    extractor: Extractor,
) -> Exploration {
    let whole = saturate(graph, &Strategy::Auto.rules(), run_limits);
    let sizes = whole.sizes.clone();
    let extracted = models
        .iter()
        .map(|m| {
            let feasible = Feasible { inner: m.model, max_elements: limits.max_elements };
            let (extraction, unsupported) = match extract_with(&whole, &feasible, whole.deadline, extractor) {
                Ok((_, summary)) => (Some(summary), None),
                Err(e) => (None, Some(e.to_string())),
            };
            WholeModel { model: m.name.clone(), extraction, unsupported }
        })
        .collect();
    let nodes = graph
        .nodes()
        .filter(|(_, n)| matches!(n.op, Op::ConvTranspose(_) | Op::Upsample(_)))
        .map(|(_, n)| explore_node(graph, n, models, run_limits, limits))
        .collect();
    Exploration {
        model: graph.name().to_string(),
        models: models.iter().map(|m| m.name.clone()).collect(),
        sizes,
        stop_reason: whole.stop_reason,
        extractor,
        whole: extracted,
        nodes,
    }
}

fn describe(form: Form, g: &Graph, models: &[NamedModel], limits: &Limits) -> Variant {
    let mut ops: Vec<OpCount> = Vec::new();
    let (mut flops, mut bytes) = (0u64, 0u64);
    for (_, n) in g.nodes() {
        match ops.iter_mut().find(|o| o.op == n.op.name()) {
            Some(o) => o.count += 1,
            None => ops.push(OpCount { op: n.op.name().to_string(), count: 1 }),
        }
        flops += g.node_flops(n);
        bytes += n.outputs.iter().map(|&v| g.value(v).ty.size_bytes() as u64).sum::<u64>();
    }
    bytes += g.initializers().iter().map(|i| 4 * g.shape(i.value).numel() as u64).sum::<u64>();
    let costs = models.iter().map(|m| ModelCost { model: m.name.clone(), cost: price(g, m.model) }).collect();
    let fits = Feasible { inner: &crate::cost::Flops::default(), max_elements: limits.max_elements };
    let excluded = instances(g).iter().find_map(|(_, op)| fits.excess(op));
    Variant { lowering: form, ops, flops, bytes, costs, excluded }
}

fn explore_node(
    graph: &Graph,
    node: &strider_ir::Node,
    models: &[NamedModel],
    run_limits: &RunLimits,
    limits: &Limits,
) -> NodeReport {
    let alone = isolate(graph, node);
    let mut variants: Vec<Variant> = Vec::new();
    let mut declined: Vec<Declined> = Vec::new();
    for form in Form::ALL {
        let (lowered, refusals) = in_form_noting_declined(&alone, form, run_limits);
        for d in refusals {
            if !declined.contains(&d) {
                declined.push(d);
            }
        }
        variants.extend(lowered.map(|g| describe(form, &g, models, limits)));
    }
    let picks = models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let lowering = variants
                .iter()
                .filter(|v| v.excluded.is_none())
                .filter_map(|v| v.costs[i].cost.map(|c| (c, v.lowering)))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, l)| l);
            ModelPick { model: m.name.clone(), lowering }
        })
        .collect();
    let output = graph.shape(node.outputs[0]).0.clone();
    NodeReport { node: node.name.clone(), op: op_to_ron(&node.op), output, variants, picks, declined }
}
