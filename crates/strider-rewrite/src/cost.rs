//! Cost models: FLOPs actually performed (multiplications by inserted zeros included), bytes of
//! intermediates and constants, and target profiles read from RON (supported ops and per-op factors).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strider_ir::{Layout, Shape};

use crate::analysis::TensorGraph;
use crate::lang::Node;

/// Assigns a cost to each e-node; `None` means the target cannot execute it.
pub trait CostModel {
    /// Cost of one e-node (its own work, not its inputs').
    fn node_cost(&self, egraph: &TensorGraph, node: &Node) -> Option<f64>;
}

/// Shapes of an op node's inputs and output, and whether it depends only on constants.
struct OpView<'a> {
    op: &'a strider_ir::Op,
    inputs: Vec<&'a Shape>,
    layouts: Vec<Layout>,
    output: &'a Shape,
    output_layout: Layout,
    constant: bool,
}

fn view<'a>(egraph: &'a TensorGraph, node: &Node) -> Option<OpView<'a>> {
    let Node::Apply(_, children) = node else { return None };
    let op = egraph[children[0]].data.attrs.as_ref()?;
    let inputs = children[1..].iter().map(|&c| egraph[c].data.shape.as_ref()).collect::<Option<Vec<_>>>()?;
    let layouts = children[1..].iter().map(|&c| egraph[c].data.layout).collect();
    let class = egraph.lookup(node.clone())?;
    let output = egraph[class].data.shape.as_ref()?;
    let output_layout = egraph[class].data.layout;
    let constant = children[1..].iter().all(|&c| egraph[c].data.constant);
    Some(OpView { op, inputs, layouts, output, output_layout, constant })
}

fn flops(v: &OpView) -> f64 {
    v.op.flops_with_layouts(&v.inputs, &v.layouts, std::slice::from_ref(v.output)) as f64
}

/// Bytes of the op's output in its storage (a sparse matrix counts its stored elements).
fn bytes(v: &OpView) -> f64 {
    v.output_layout.size_bytes(v.output, 4) as f64
}

/// Floating-point operations performed at run time. With `fold_constants`, weight-only subgraphs are
/// computed once at compile time and cost nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flops {
    /// Treat weight-only subgraphs as folded.
    pub fold_constants: bool,
}

impl CostModel for Flops {
    fn node_cost(&self, egraph: &TensorGraph, node: &Node) -> Option<f64> {
        Some(match view(egraph, node) {
            Some(v) if v.constant && self.fold_constants => 0.0,
            Some(v) => flops(&v),
            None => 0.0,
        })
    }
}

/// Bytes of every intermediate value and constant (an explicit sparse matrix or a zero-inserted
/// input shows up here).
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory;

impl CostModel for Memory {
    fn node_cost(&self, egraph: &TensorGraph, node: &Node) -> Option<f64> {
        Some(match node {
            Node::Const(name) => egraph.analysis.constants.get(name).map_or(0.0, |c| 4.0 * c.data.len() as f64),
            Node::Apply(..) => view(egraph, node).map_or(0.0, |v| bytes(&v)),
            Node::Input(_) | Node::Attrs(_) => 0.0,
        })
    }
}

/// A target profile, read from RON (see `examples/targets/`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Name shown in reports.
    pub name: String,
    /// Ops the target executes (ONNX names). Weight-only subgraphs are folded at compile time and need
    /// no support.
    pub supported: Vec<String>,
    /// Cost per FLOP of each op (default 1).
    #[serde(default)]
    pub flop_factor: BTreeMap<String, f64>,
    /// Cost per byte of each value produced (memory traffic).
    #[serde(default)]
    pub byte_cost: f64,
}

impl Target {
    /// Parses a target profile.
    pub fn from_ron(text: &str) -> Result<Target, ron::error::SpannedError> {
        ron::from_str(text)
    }
}

impl CostModel for Target {
    fn node_cost(&self, egraph: &TensorGraph, node: &Node) -> Option<f64> {
        let Some(v) = view(egraph, node) else { return Some(0.0) };
        if v.constant {
            return Some(0.0);
        }
        let name = v.op.name();
        if !self.supported.iter().any(|s| s == name) {
            return None;
        }
        let factor = self.flop_factor.get(name).copied().unwrap_or(1.0);
        Some(factor * flops(&v) + self.byte_cost * bytes(&v))
    }
}

/// Wraps a model and makes some ops prohibitively expensive (not impossible), so that a lowering is
/// chosen wherever one exists.
pub struct Avoiding<'a> {
    /// The model for everything else.
    pub inner: &'a dyn CostModel,
    /// Ops to avoid.
    pub ops: &'a [&'a str],
}

impl CostModel for Avoiding<'_> {
    fn node_cost(&self, egraph: &TensorGraph, node: &Node) -> Option<f64> {
        let base = self.inner.node_cost(egraph, node)?;
        match node.op_name() {
            Some(op) if self.ops.contains(&op.as_str()) => Some(base + 1e18),
            _ => Some(base),
        }
    }
}
