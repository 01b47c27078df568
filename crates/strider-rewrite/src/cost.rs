//! Cost models: FLOPs actually performed (multiplications by inserted zeros included), bytes of
//! intermediates and constants, and target profiles read from RON (supported ops and per-op factors).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use strider_interp::kernels::{Kernel, KernelWork, kernel_work};
use strider_ir::{Graph, Layout, Producer, Shape};

use crate::analysis::TensorGraph;
use crate::fused_phases::{self, Fused, GraphFusion};
use crate::lang::Node;

/// Prices ops. A model prices one op on its shapes ([`CostModel::op_cost`]); the same model then
/// prices e-nodes during extraction ([`CostModel::node_cost`]) and plain graphs ([`price`]), so a
/// graph's cost is the same whichever way it is reached.
pub trait CostModel {
    /// Cost of one op's own work (not its inputs'); `None` when the target cannot execute it.
    fn op_cost(&self, op: &OpInstance) -> Option<f64>;

    /// Cost of holding a constant of `elements` values (weights); free by default.
    fn constant_cost(&self, _elements: usize) -> f64 {
        0.0
    }

    /// Cost of one e-node: [`CostModel::op_cost`] of an op whose shapes are known, free for the rest.
    /// Models that look at the e-graph itself (tests steering extraction) override it.
    fn node_cost(&self, egraph: &TensorGraph, node: &Node) -> Option<f64> {
        match node {
            Node::Apply(..) => instance(egraph, node).map_or(Some(0.0), |v| self.op_cost(&v)),
            Node::Const(name) => Some(
                egraph.analysis.constants.get(name).map_or(0.0, |c| self.constant_cost(c.shape().iter().product())),
            ),
            Node::Input(_) | Node::Attrs(_) => Some(0.0),
        }
    }
}

/// One op with the shapes and storage it runs on: what every cost model prices.
#[derive(Clone, Debug)]
pub struct OpInstance<'a> {
    /// The op and its attributes.
    pub op: &'a strider_ir::Op,
    /// Input shapes.
    pub inputs: Vec<&'a Shape>,
    /// Input storage (a sparse matrix operand is [`Layout::Csr`]).
    pub layouts: Vec<Layout>,
    /// Output shape.
    pub output: &'a Shape,
    /// Output storage.
    pub output_layout: Layout,
    /// Every input is a constant, so the op can be evaluated once at compile time.
    pub constant: bool,
    /// Its part in a step the engine fuses (the exact sub-pixel lowering), if any.
    pub fused: Fused,
}

impl OpInstance<'_> {
    /// Floating-point operations of one execution (a sparse operand counts its stored elements).
    pub fn flops(&self) -> f64 {
        self.op.flops_with_layouts(&self.inputs, &self.layouts, std::slice::from_ref(self.output)) as f64
    }

    /// Bytes of the output in its storage (a sparse matrix counts its stored elements).
    pub fn output_bytes(&self) -> f64 {
        self.output_layout.size_bytes(self.output, 4) as f64
    }

    /// Elements the output stores (a sparse matrix: its stored elements).
    pub fn output_elements(&self) -> usize {
        match self.output_layout {
            Layout::Dense => self.output.numel(),
            Layout::Csr { nnz } => nnz,
        }
    }
}

fn instance<'a>(egraph: &'a TensorGraph, node: &Node) -> Option<OpInstance<'a>> {
    let Node::Apply(_, children) = node else { return None };
    let op = egraph[children[0]].data.attrs.as_ref()?;
    let inputs = children[1..].iter().map(|&c| egraph[c].data.shape.as_ref()).collect::<Option<Vec<_>>>()?;
    let layouts = children[1..].iter().map(|&c| egraph[c].data.layout).collect();
    let class = egraph.lookup(node.clone())?;
    let output = egraph[class].data.shape.as_ref()?;
    let output_layout = egraph[class].data.layout;
    let constant = children[1..].iter().all(|&c| egraph[c].data.constant);
    let fused = fused_phases::in_egraph(egraph, node, op, output);
    Some(OpInstance { op, inputs, layouts, output, output_layout, constant, fused })
}

/// The ops of a plain graph as [`OpInstance`]s, in topological order, each with its node.
pub fn instances(graph: &Graph) -> Vec<(&strider_ir::Node, OpInstance<'_>)> {
    let mut constant: Vec<bool> = graph.values().iter().map(|v| v.producer == Producer::Initializer).collect();
    for (_, node) in graph.nodes() {
        let is_constant = node.inputs.iter().all(|&v| constant[v.index()]);
        for &v in &node.outputs {
            constant[v.index()] = is_constant;
        }
    }
    let fusion = GraphFusion::new(graph, &constant);
    let mut out = Vec::new();
    for (id, node) in graph.nodes() {
        let Some(&first) = node.outputs.first() else { continue };
        out.push((
            node,
            OpInstance {
                op: &node.op,
                inputs: graph.input_shapes(node),
                layouts: node.inputs.iter().map(|&v| graph.value(v).ty.layout).collect(),
                output: graph.shape(first),
                output_layout: graph.value(first).ty.layout,
                constant: node.inputs.iter().all(|&v| constant[v.index()]),
                fused: fusion.part(id),
            },
        ));
    }
    out
}

/// What the engine does for `op`, fused steps included: the kernel with the FLOPs and bytes it is
/// charged, and how many calls (a phase Conv shares its window's call; see [`fused_phases`]).
pub fn engine_work(op: &OpInstance) -> (KernelWork, f64) {
    let im2col = |flops, bytes: usize| KernelWork { kernel: Kernel::ConvIm2col, flops, bytes: bytes as f64 };
    match op.fused {
        Fused::No => (kernel_work(op.op, &op.inputs, &op.layouts, op.output), 1.0),
        Fused::PhaseConv => {
            let weights: usize = op.inputs.iter().skip(1).map(|s| s.numel() * 4).sum();
            (im2col(op.flops(), weights + op.output.numel() * 4), 0.0)
        }
        Fused::PhaseConcat { windows, column_elements, input_bytes } => {
            (im2col(0.0, 8 * column_elements + input_bytes), windows as f64)
        }
        Fused::Absorbed => (KernelWork { kernel: Kernel::Memory, flops: 0.0, bytes: 0.0 }, 0.0),
    }
}

/// The cost of a plain graph under `model`, without building an e-graph: every op priced once, plus
/// its constants; `None` when the model cannot execute one of its ops.
pub fn price(graph: &Graph, model: &dyn CostModel) -> Option<f64> {
    let mut total: f64 = graph.initializers().iter().map(|i| model.constant_cost(graph.shape(i.value).numel())).sum();
    for (_, op) in instances(graph) {
        total += model.op_cost(&op)?;
    }
    Some(total)
}

/// Floating-point operations performed at run time. With `fold_constants`, weight-only subgraphs are
/// computed once at compile time and cost nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flops {
    /// Treat weight-only subgraphs as folded.
    pub fold_constants: bool,
}

impl CostModel for Flops {
    fn op_cost(&self, op: &OpInstance) -> Option<f64> {
        Some(if op.constant && self.fold_constants { 0.0 } else { op.flops() })
    }
}

/// Bytes of every intermediate value and constant (an explicit sparse matrix or a zero-inserted
/// input shows up here).
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory;

impl CostModel for Memory {
    fn op_cost(&self, op: &OpInstance) -> Option<f64> {
        Some(op.output_bytes())
    }

    fn constant_cost(&self, elements: usize) -> f64 {
        4.0 * elements as f64
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
    /// Cost of each engine kernel per FLOP, per byte moved and per call (what `strider calibrate`
    /// fits, in nanoseconds). When given, it prices every op by the kernel the engine runs it on
    /// ([`kernel_work`]) instead of `flop_factor` and `byte_cost`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kernels: BTreeMap<Kernel, KernelCost>,
    /// Kernel costs fitted at several thread counts (`strider calibrate --threads 1,2`): kernels
    /// scale differently with threads (a large GEMM halves, a small copy does not), so one table
    /// cannot price every count. [`Target::for_threads`] picks one into `kernels`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kernels_by_threads: BTreeMap<usize, BTreeMap<Kernel, KernelCost>>,
}

/// The cost of one engine kernel: `per_flop · FLOPs + per_byte · bytes moved + per_call`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelCost {
    /// Per floating-point operation.
    pub per_flop: f64,
    /// Per byte read or written (operands, result, workspace).
    pub per_byte: f64,
    /// Per execution.
    pub per_call: f64,
}

impl Target {
    /// Parses a target profile.
    pub fn from_ron(text: &str) -> Result<Target, ron::error::SpannedError> {
        ron::from_str(text)
    }

    /// The profile for runs on `threads` threads (0: one per core): `kernels` becomes the table of
    /// `kernels_by_threads` fitted at the largest count not above `threads` (the smallest count if
    /// all are above). A profile without per-thread tables is returned as it is.
    pub fn for_threads(&self, threads: usize) -> Target {
        let threads = if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads };
        let table =
            self.kernels_by_threads.range(..=threads).next_back().or_else(|| self.kernels_by_threads.iter().next());
        let mut target = self.clone();
        if let Some((_, kernels)) = table {
            target.kernels = kernels.clone();
        }
        target
    }
}

impl CostModel for Target {
    fn op_cost(&self, op: &OpInstance) -> Option<f64> {
        if op.constant {
            return Some(0.0);
        }
        let name = op.op.name();
        if !self.supported.iter().any(|s| s == name) {
            return None;
        }
        if !self.kernels.is_empty() {
            let (work, calls) = engine_work(op);
            let k = self.kernels.get(&work.kernel).copied().unwrap_or_default();
            return Some(k.per_flop * work.flops + k.per_byte * work.bytes + k.per_call * calls);
        }
        let factor = self.flop_factor.get(name).copied().unwrap_or(1.0);
        Some(factor * op.flops() + self.byte_cost * op.output_bytes())
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
    fn op_cost(&self, op: &OpInstance) -> Option<f64> {
        let base = self.inner.op_cost(op)?;
        Some(if self.ops.contains(&op.op.name()) { base + 1e18 } else { base })
    }

    fn constant_cost(&self, elements: usize) -> f64 {
        self.inner.constant_cost(elements)
    }

    fn node_cost(&self, egraph: &TensorGraph, node: &Node) -> Option<f64> {
        let base = self.inner.node_cost(egraph, node)?;
        match node.op_name() {
            Some(op) if self.ops.contains(&op.as_str()) => Some(base + 1e18),
            _ => Some(base),
        }
    }
}

/// Wraps a model and prices as infeasible (`None`) every op whose output would not fit the limits —
/// a dense value or a sparse matrix storing more than `max_elements` values — so that extraction
/// never picks a variant that cannot run.
pub struct Feasible<'a> {
    /// The model for everything that fits.
    pub inner: &'a dyn CostModel,
    /// The largest value allowed, in stored elements.
    pub max_elements: usize,
}

impl Feasible<'_> {
    /// Why `op` cannot run within the limits, if it cannot.
    pub fn excess(&self, op: &OpInstance) -> Option<String> {
        let stored = op.output_elements();
        (stored > self.max_elements).then(|| {
            let what = if matches!(op.output_layout, Layout::Csr { .. }) { "sparse matrix" } else { "value" };
            format!("its {} {what} stores {stored} elements, more than the limit {}", op.op.name(), self.max_elements)
        })
    }
}

impl CostModel for Feasible<'_> {
    fn op_cost(&self, op: &OpInstance) -> Option<f64> {
        if self.excess(op).is_some() { None } else { self.inner.op_cost(op) }
    }

    fn constant_cost(&self, elements: usize) -> f64 {
        self.inner.constant_cost(elements)
    }

    fn node_cost(&self, egraph: &TensorGraph, node: &Node) -> Option<f64> {
        if instance(egraph, node).is_some_and(|op| self.excess(&op).is_some()) {
            return None;
        }
        self.inner.node_cost(egraph, node)
    }
}

/// A key naming an op instance exactly — the op with its attributes, input shapes and storage — so
/// that a time measured for it on one graph prices the same op in any other (the key of a tuning log).
pub fn op_key(op: &OpInstance) -> String {
    let inputs: Vec<String> = op
        .inputs
        .iter()
        .zip(&op.layouts)
        .map(|(shape, layout)| match layout {
            Layout::Dense => format!("{:?}", shape.0),
            Layout::Csr { nnz } => format!("{:?} csr {nnz}", shape.0),
        })
        .collect();
    format!("{} on {}", strider_ir::format::op_to_ron(op.op), inputs.join(", "))
}

/// Measured times where there are some, a model's estimate elsewhere: ops whose [`op_key`] is in
/// `times_ns` cost that many nanoseconds, the rest what `fallback` says (a calibrated CPU profile,
/// whose unit is the nanosecond too). Weight-only ops are folded at preparation and cost nothing.
pub struct Measured<'a> {
    /// Nanoseconds per run, by [`op_key`].
    pub times_ns: HashMap<String, f64>,
    /// Prices the ops nothing was measured for.
    pub fallback: &'a dyn CostModel,
}

impl CostModel for Measured<'_> {
    fn op_cost(&self, op: &OpInstance) -> Option<f64> {
        if op.constant {
            return Some(0.0);
        }
        match self.times_ns.get(&op_key(op)) {
            Some(&t) => Some(t),
            None => self.fallback.op_cost(op),
        }
    }

    fn constant_cost(&self, elements: usize) -> f64 {
        self.fallback.constant_cost(elements)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(per_flop: f64) -> BTreeMap<Kernel, KernelCost> {
        [(Kernel::MatMul, KernelCost { per_flop, per_byte: 0.0, per_call: 0.0 })].into()
    }

    /// A run on N threads is priced with the table fitted at the largest count not above N (the
    /// smallest count below all of them), and survives RON.
    #[test]
    fn each_thread_count_is_priced_with_its_nearest_table_below() {
        let text = "(name: \"t\", supported: [\"MatMul\"], kernels: {MatMul: (per_flop: 9.0, per_byte: 0.0, per_call: 0.0)}, \
                    kernels_by_threads: {1: {MatMul: (per_flop: 1.0, per_byte: 0.0, per_call: 0.0)}, \
                    4: {MatMul: (per_flop: 0.25, per_byte: 0.0, per_call: 0.0)}})";
        let target = Target::from_ron(text).unwrap();
        for (threads, per_flop) in [(1, 1.0), (2, 1.0), (3, 1.0), (4, 0.25), (64, 0.25)] {
            assert_eq!(target.for_threads(threads).kernels, table(per_flop), "{threads} threads");
        }
        let from_two = Target { kernels_by_threads: [(2, table(0.5)), (4, table(0.25))].into(), ..target.clone() };
        assert_eq!(from_two.for_threads(1).kernels, table(0.5));
        // Without per-thread tables the profile prices every count alike.
        let single = Target { kernels_by_threads: BTreeMap::new(), ..target.clone() };
        assert_eq!(single.for_threads(8).kernels, table(9.0));
        let back = Target::from_ron(&ron::to_string(&target).unwrap()).unwrap();
        assert_eq!(back.kernels_by_threads, target.kernels_by_threads);
    }
}
