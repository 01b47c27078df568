//! Node patterns a plan runs as one step. The graph keeps its nodes (and `strider check` still
//! compares them one by one); only the execution is fused, and only where no value in between is
//! read by anything else.
//!
//! The pattern: DepthToSpace (DCR) of a Concat (channels) of s^d Convs — the exact phase lowering of
//! a ConvTranspose — with constant weights and group 1, each Conv read only by the Concat and the
//! Concat only by the DepthToSpace. See [`PhaseConvs`].

use std::collections::{HashMap, HashSet};

use strider_ir::op::{ConvAttrs, DepthToSpaceMode};
use strider_ir::{Graph, NodeId, Op, Producer, ValueId};

use crate::kernels::{Phase, PhaseClass, PhaseConvs, Tensor, contiguous};

/// A fused step: its distinct inputs (value indices), the work, and the FLOPs of the nodes it replaces.
pub(crate) struct FusedPhases {
    pub inputs: Vec<usize>,
    pub convs: PhaseConvs,
    pub flops: u64,
}

/// The fused steps by the node whose output they produce, and the nodes they absorb.
#[derive(Default)]
pub(crate) struct Fusions {
    pub fused: HashMap<NodeId, FusedPhases>,
    pub absorbed: HashSet<NodeId>,
}

/// Finds every exact-phase pattern among `nodes` (those left to run after constant folding).
pub(crate) fn phase_convolutions(graph: &Graph, nodes: &[NodeId], constants: &[Option<Tensor>]) -> Fusions {
    let uses = graph.use_counts();
    let to_run: HashSet<NodeId> = nodes.iter().copied().collect();
    // The node producing `v`, if it runs per step and `v` has no other reader.
    let sole_producer = |v: ValueId| match graph.value(v).producer {
        Producer::Node { node, slot: 0 } if uses[v.index()] == 1 && to_run.contains(&node) => Some(node),
        _ => None,
    };
    let mut fusions = Fusions::default();
    for &id in nodes {
        let node = graph.node(id);
        let Op::DepthToSpace(d2s) = &node.op else { continue };
        if d2s.mode != DepthToSpaceMode::DCR {
            continue;
        }
        let Some(concat_id) = sole_producer(node.inputs[0]) else { continue };
        let concat = graph.node(concat_id);
        let rank = graph.shape(node.inputs[0]).rank();
        match &concat.op {
            Op::Concat(a) if strider_ir::shape::normalize_axis(a.axis, rank) == Some(1) => {}
            _ => continue,
        }
        let out = graph.shape(node.outputs[0]).dims();
        let phases = d2s.blocksize.checked_pow((rank - 2) as u32);
        if phases != Some(concat.inputs.len()) {
            continue;
        }
        let Some((fused, convs)) =
            group_phases(graph, &concat.inputs, out[1], d2s.blocksize, constants, &sole_producer)
        else {
            continue;
        };
        fusions.absorbed.insert(concat_id);
        fusions.absorbed.extend(convs);
        fusions.fused.insert(id, fused);
    }
    fusions
}

/// Phase Convs of one class, before stacking: their input, attributes, weight shape, and each
/// phase's block with its weights and bias.
struct ClassPhases {
    x: ValueId,
    attrs: ConvAttrs,
    weight_shape: Vec<usize>,
    phases: Vec<(usize, Vec<f32>, Option<Vec<f32>>)>,
}

/// Groups the phase Convs feeding the Concat by (input, attributes) and stacks their weights; `None`
/// when any of them does not fit the pattern.
fn group_phases(
    graph: &Graph,
    phase_values: &[ValueId],
    channels: usize,
    blocksize: usize,
    constants: &[Option<Tensor>],
    sole_producer: &dyn Fn(ValueId) -> Option<NodeId>,
) -> Option<(FusedPhases, Vec<NodeId>)> {
    let dense = |v: ValueId| match &constants[v.index()] {
        Some(Tensor::Dense(a)) => Some(a),
        _ => None,
    };
    let mut classes: Vec<ClassPhases> = Vec::new();
    let (mut convs, mut flops) = (Vec::new(), 0);
    for (block, &v) in phase_values.iter().enumerate() {
        let conv_id = sole_producer(v)?;
        let conv = graph.node(conv_id);
        let Op::Conv(attrs) = &conv.op else { return None };
        let (x, w) = (conv.inputs[0], dense(conv.inputs[1])?);
        let bias = match conv.inputs.get(2) {
            Some(&b) => Some(contiguous(&dense(b)?.view()).into_owned()),
            None => None,
        };
        if attrs.group != 1 || constants[x.index()].is_some() || w.shape()[0] != channels {
            return None;
        }
        let class = match classes.iter().position(|c| c.x == x && c.attrs == *attrs && c.weight_shape == w.shape()) {
            Some(i) => i,
            None => {
                classes.push(ClassPhases {
                    x,
                    attrs: attrs.clone(),
                    weight_shape: w.shape().to_vec(),
                    phases: Vec::new(),
                });
                classes.len() - 1
            }
        };
        classes[class].phases.push((block, contiguous(&w.view()).into_owned(), bias));
        flops += graph.node_flops(conv);
        convs.push(conv_id);
    }
    let mut inputs: Vec<usize> = Vec::new();
    let classes: Option<Vec<PhaseClass>> = classes
        .into_iter()
        .map(|class| {
            let input = inputs.iter().position(|&i| i == class.x.index()).unwrap_or_else(|| {
                inputs.push(class.x.index());
                inputs.len() - 1
            });
            let phases: Vec<Phase> = class
                .phases
                .iter()
                .map(|(block, weights, bias)| Phase { block: *block, weights, bias: bias.as_deref() })
                .collect();
            PhaseClass::new(input, class.attrs, &class.weight_shape, blocksize, &phases)
        })
        .collect();
    let classes = classes?;
    Some((FusedPhases { inputs, convs: PhaseConvs { channels, blocksize, classes }, flops }, convs))
}
