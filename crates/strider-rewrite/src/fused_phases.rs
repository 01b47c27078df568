//! The exact sub-pixel lowering as the engine runs it, for cost models. `strider_interp` fuses the
//! s^d phase Convs of one input, their Concat along channels and the DCR DepthToSpace after it into
//! one step (`PhaseConvs`): the phases that share a window run as one im2col and one GEMM, and the
//! interleaved output is written once, with no Concat or DepthToSpace copy. Priced node by node, the
//! pattern would pay an im2col, a call and two output copies per phase — 1,024 of each on FCN-32s,
//! about twice its measured time. So each node is told its part ([`Fused`]): a phase Conv pays its
//! FLOPs, weights and output; the Concat pays what the phases share (per window: the columns, the
//! input and one call); the DepthToSpace nothing. The nodes of the pattern then add up to the step.
//!
//! The pattern is found the same way in an e-graph (from the DepthToSpace or Concat down; a phase
//! Conv by its `PhaseKernel` weight) and in a plain graph (by producers and consumers, since folded
//! phase weights are plain initializers there), so a graph costs the same whichever way it is priced.

use egg::Id;
use strider_ir::op::{ConvAttrs, DepthToSpaceMode};
use strider_ir::{Graph, NodeId, Op, Producer, Shape, ValueId};

use crate::analysis::TensorGraph;
use crate::lang::Node;

/// An op's part in a fused sub-pixel step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Fused {
    /// Not part of one: priced alone.
    #[default]
    No,
    /// A phase Conv: its FLOPs, weights and output; its im2col, input and call are shared.
    PhaseConv,
    /// The Concat of the phases: the shared part, per window.
    PhaseConcat {
        /// Distinct windows (convolution attributes) among the phases: one im2col and GEMM call each.
        windows: usize,
        /// im2col elements over all windows (written once and read once).
        column_elements: usize,
        /// Bytes of the input, read once per window.
        input_bytes: usize,
    },
    /// The DepthToSpace: nothing (the phases write the interleaved output).
    Absorbed,
}

/// One phase Conv as the pattern sees it.
struct PhaseConv<'a> {
    attrs: &'a ConvAttrs,
    input: &'a Shape,
    weight: &'a Shape,
    output: &'a Shape,
}

/// The shared part of the phases' step.
fn shared_work(phases: &[PhaseConv]) -> Fused {
    let mut windows: Vec<&ConvAttrs> = Vec::new();
    let mut column_elements = 0;
    for p in phases {
        if windows.contains(&p.attrs) {
            continue;
        }
        windows.push(p.attrs);
        let batch_channels: usize = p.input.dims().iter().take(2).product();
        let taps: usize = p.weight.dims().iter().skip(2).product();
        let positions: usize = p.output.dims().iter().skip(2).product();
        column_elements += batch_channels * taps * positions;
    }
    let input_bytes = phases.first().map_or(0, |p| p.input.numel() * 4) * windows.len();
    Fused::PhaseConcat { windows: windows.len(), column_elements, input_bytes }
}

/// Whether a DepthToSpace with these attributes undoes a Concat of `inputs` phases of rank `rank`.
fn interleaves(op: &Op, inputs: usize, rank: usize) -> bool {
    match op {
        Op::DepthToSpace(d) => {
            d.mode == DepthToSpaceMode::DCR
                && rank >= 3
                && d.blocksize.checked_pow((rank - 2) as u32) == Some(inputs)
                && inputs > 1
        }
        _ => false,
    }
}

fn concatenates_channels(op: &Op, rank: usize) -> bool {
    matches!(op, Op::Concat(a) if strider_ir::shape::normalize_axis(a.axis, rank) == Some(1))
}

// ---------------------------------------------------------------------------------------------------
// In an e-graph

/// `node` (an e-node of `class`) as a phase Conv, with its input class: group 1, constant weights
/// computed by a `PhaseKernel`.
fn egraph_phase_conv_node<'a>(egraph: &'a TensorGraph, node: &Node, class: Id) -> Option<(Id, PhaseConv<'a>)> {
    let Node::Apply(_, children) = node else { return None };
    let Some(Op::Conv(attrs)) = egraph[children[0]].data.attrs.as_ref() else { return None };
    let (x, w) = (*children.get(1)?, *children.get(2)?);
    let phase_weight = egraph[w].nodes.iter().any(|n| match n {
        Node::Apply(_, c) => matches!(egraph[c[0]].data.attrs, Some(Op::PhaseKernel(_))),
        _ => false,
    });
    if attrs.group > 1 || !phase_weight || !egraph[w].data.constant {
        return None;
    }
    let conv = PhaseConv {
        attrs,
        input: egraph[x].data.shape.as_ref()?,
        weight: egraph[w].data.shape.as_ref()?,
        output: egraph[class].data.shape.as_ref()?,
    };
    Some((egraph.find(x), conv))
}

/// A phase Conv among `class`'s e-nodes.
fn egraph_phase_conv(egraph: &TensorGraph, class: Id) -> Option<(Id, PhaseConv<'_>)> {
    egraph[class].nodes.iter().find_map(|node| egraph_phase_conv_node(egraph, node, class))
}

/// The phases of a Concat e-node's inputs, if every input is a phase Conv of the same input.
fn egraph_phases<'a>(egraph: &'a TensorGraph, inputs: &[Id]) -> Option<Vec<PhaseConv<'a>>> {
    let mut x = None;
    let mut phases = Vec::with_capacity(inputs.len());
    for &class in inputs {
        let (input, conv) = egraph_phase_conv(egraph, class)?;
        if *x.get_or_insert(input) != input {
            return None;
        }
        phases.push(conv);
    }
    Some(phases)
}

/// The part an e-node with op `op` plays in a fused sub-pixel step.
pub(crate) fn in_egraph(egraph: &TensorGraph, node: &Node, op: &Op, output: &Shape) -> Fused {
    let Node::Apply(_, children) = node else { return Fused::No };
    let rank = output.rank();
    match op {
        Op::Conv(_) => {
            match egraph.lookup(node.clone()).and_then(|class| egraph_phase_conv_node(egraph, node, class)) {
                Some(_) => Fused::PhaseConv,
                None => Fused::No,
            }
        }
        Op::Concat(_) if concatenates_channels(op, rank) => {
            egraph_phases(egraph, &children[1..]).map_or(Fused::No, |phases| shared_work(&phases))
        }
        Op::DepthToSpace(_) => {
            let Some(&input) = children.get(1) else { return Fused::No };
            let fused = egraph[input].nodes.iter().any(|n| match n {
                Node::Apply(_, c) => egraph[c[0]].data.attrs.as_ref().is_some_and(|concat| {
                    concatenates_channels(concat, rank)
                        && interleaves(op, c.len() - 1, rank)
                        && egraph_phases(egraph, &c[1..]).is_some()
                }),
                _ => false,
            });
            if fused { Fused::Absorbed } else { Fused::No }
        }
        _ => Fused::No,
    }
}

// ---------------------------------------------------------------------------------------------------
// In a plain graph

/// Producers and readers of a plain graph's values, and which values are constant.
pub(crate) struct GraphFusion<'a> {
    graph: &'a Graph,
    readers: Vec<Vec<NodeId>>,
    constant: &'a [bool],
}

impl<'a> GraphFusion<'a> {
    /// `constant[v]`: value `v` depends on initializers only.
    pub(crate) fn new(graph: &'a Graph, constant: &'a [bool]) -> Self {
        let mut readers = vec![Vec::new(); graph.values().len()];
        for (id, node) in graph.nodes() {
            for &v in &node.inputs {
                readers[v.index()].push(id);
            }
        }
        GraphFusion { graph, readers, constant }
    }

    fn producer(&self, v: ValueId) -> Option<NodeId> {
        match self.graph.value(v).producer {
            Producer::Node { node, slot: 0 } => Some(node),
            _ => None,
        }
    }

    /// The only reader of `v`, if it has exactly one.
    fn sole_reader(&self, v: ValueId) -> Option<NodeId> {
        match self.readers[v.index()].as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// The phases of a Concat node fused with its DepthToSpace reader, if it is one.
    fn phases(&self, concat: NodeId) -> Option<Vec<PhaseConv<'a>>> {
        let node = self.graph.node(concat);
        let out = *node.outputs.first()?;
        let rank = self.graph.shape(out).rank();
        let d2s = self.graph.node(self.sole_reader(out)?);
        if !concatenates_channels(&node.op, rank) || !interleaves(&d2s.op, node.inputs.len(), rank) {
            return None;
        }
        let mut x = None;
        let mut phases = Vec::with_capacity(node.inputs.len());
        for &v in &node.inputs {
            let conv = self.graph.node(self.producer(v)?);
            let Op::Conv(attrs) = &conv.op else { return None };
            let (input, weight) = (*conv.inputs.first()?, *conv.inputs.get(1)?);
            if attrs.group > 1 || !self.constant[weight.index()] || self.sole_reader(v) != Some(concat) {
                return None;
            }
            if *x.get_or_insert(input) != input {
                return None;
            }
            phases.push(PhaseConv {
                attrs,
                input: self.graph.shape(input),
                weight: self.graph.shape(weight),
                output: self.graph.shape(v),
            });
        }
        Some(phases)
    }

    /// The part node `id` plays in a fused sub-pixel step.
    pub(crate) fn part(&self, id: NodeId) -> Fused {
        let node = self.graph.node(id);
        let Some(&out) = node.outputs.first() else { return Fused::No };
        match &node.op {
            Op::Conv(_) => match self.sole_reader(out) {
                Some(concat) if self.phases(concat).is_some() => Fused::PhaseConv,
                _ => Fused::No,
            },
            Op::Concat(_) => self.phases(id).map_or(Fused::No, |phases| shared_work(&phases)),
            Op::DepthToSpace(_) => match node.inputs.first().and_then(|&v| self.producer(v)) {
                Some(concat) if self.phases(concat).is_some() => Fused::Absorbed,
                _ => Fused::No,
            },
            _ => Fused::No,
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, IxDyn};
    use strider_ir::format::DataSpec;
    use strider_ir::op::{ConcatAttrs, ConvTransposeAttrs, DepthToSpaceAttrs};
    use strider_ir::{GraphBuilder, Limits, seeded};

    use super::*;
    use crate::cost::{CostModel, Flops, OpInstance, Target, instances, price};
    use crate::{Lowering, OptimizeOptions, RunLimits, Strategy, extract_graph, optimize, saturate};

    fn weight(b: &mut GraphBuilder, name: &str, shape: &[usize], seed: u64) {
        let n = shape.iter().product();
        let data = ArrayD::from_shape_vec(IxDyn(shape), seeded::uniform(seed, n, -1.0, 1.0)).unwrap();
        b.initializer(name, data, DataSpec::Uniform { seed, low: -1.0, high: 1.0 });
    }

    /// The exact sub-pixel lowering (weights not folded) of an 8 → 4 channel k4 s2 p1 ConvTranspose on
    /// 5×5 (channels enough for the engine's GEMM path, as in the fused step).
    fn exact_phases() -> Graph {
        let mut b = GraphBuilder::new("up", Limits::default());
        b.input("x", vec![1, 8, 5, 5]);
        weight(&mut b, "w", &[8, 4, 4, 4], 1);
        let attrs = ConvTransposeAttrs { strides: vec![2, 2], pads: vec![1, 1, 1, 1], ..Default::default() };
        b.node("up", Op::ConvTranspose(attrs), vec!["x", "w"], vec!["y"]);
        b.output("y");
        let opts = OptimizeOptions {
            strategy: Strategy::Force(Lowering::Subpixel),
            fold_constants: false,
            run_limits: RunLimits::default(),
            limits: Limits::default(),
            ..OptimizeOptions::default()
        };
        optimize(&b.finish().unwrap(), &Flops { fold_constants: false }, &opts).unwrap().graph
    }

    fn cpu() -> Target {
        Target::from_ron(include_str!("../../../examples/targets/cpu.ron")).unwrap()
    }

    #[test]
    fn the_exact_phases_are_one_step() {
        let graph = exact_phases();
        let parts: Vec<(&str, Fused)> = instances(&graph).iter().map(|(_, op)| (op.op.name(), op.fused)).collect();
        let count = |part: Fused| parts.iter().filter(|(_, p)| *p == part).count();
        assert_eq!(count(Fused::PhaseConv), 4, "{parts:?}");
        assert_eq!(count(Fused::Absorbed), 1, "{parts:?}");
        // Four phases, each its own window (its own pads); each window's columns are
        // 8 channels × 2·2 taps × 5·5 positions, and the input is read once per window.
        let shared = Fused::PhaseConcat { windows: 4, column_elements: 4 * 8 * 4 * 25, input_bytes: 4 * 8 * 25 * 4 };
        assert_eq!(parts.iter().filter(|(op, _)| *op == "Concat").map(|(_, p)| *p).collect::<Vec<_>>(), [shared]);
        assert!(parts.iter().all(|(op, p)| *p == Fused::No || ["Conv", "Concat", "DepthToSpace"].contains(op)));
    }

    #[test]
    fn an_egraph_prices_the_step_as_the_plain_graph_does() {
        let graph = exact_phases();
        let target = cpu();
        let saturated = saturate(&graph, &[], &RunLimits::default());
        let (_, extracted) = extract_graph(&saturated, &graph, &target, &Limits::default(), None).unwrap();
        let priced = price(&graph, &target).unwrap();
        assert!((extracted - priced).abs() <= 1e-9 * priced, "e-graph {extracted} vs graph {priced}");
        // Node by node, without the step, the same graph costs more: the e-graph found the step too.
        let unfused: f64 = instances(&graph)
            .into_iter()
            .map(|(_, op)| target.op_cost(&OpInstance { fused: Fused::No, ..op }).unwrap())
            .sum();
        assert!(priced < unfused, "fused {priced} vs node by node {unfused}");
    }

    #[test]
    fn convolutions_of_different_inputs_are_not_a_step() {
        let mut b = GraphBuilder::new("two", Limits::default());
        b.input("a", vec![1, 2, 4, 4]);
        b.input("c", vec![1, 2, 4, 4]);
        for (i, name) in ["w0", "w1", "w2", "w3"].into_iter().enumerate() {
            weight(&mut b, name, &[1, 2, 1, 1], i as u64);
        }
        let conv = Op::Conv(ConvAttrs::default());
        for (i, (x, w, y)) in
            [("a", "w0", "y0"), ("a", "w1", "y1"), ("c", "w2", "y2"), ("a", "w3", "y3")].into_iter().enumerate()
        {
            b.node(format!("p{i}"), conv.clone(), vec![x, w], vec![y]);
        }
        b.node("cat", Op::Concat(ConcatAttrs { axis: 1 }), vec!["y0", "y1", "y2", "y3"], vec!["cat"]);
        let d2s = DepthToSpaceAttrs { blocksize: 2, mode: DepthToSpaceMode::DCR };
        b.node("d2s", Op::DepthToSpace(d2s), vec!["cat"], vec!["y"]);
        b.output("y");
        let graph = b.finish().unwrap();
        assert!(instances(&graph).iter().all(|(_, op)| op.fused == Fused::No));
    }
}
