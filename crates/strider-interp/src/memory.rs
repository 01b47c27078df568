//! The peak memory of a run, estimated from the graph before anything is allocated, so that a model
//! needing more than `--max-memory` is refused up front with the node where the peak falls.
//!
//! The estimate counts graph inputs and constants (initializers and weight-only results, kept for the
//! whole run), every intermediate from the node that produces it to its last reader, and each
//! node's workspace while it runs: the im2col or column block of Conv and ConvTranspose on the GEMM
//! path (twice for Conv, for the fused phase convolutions' product).
//! It errs on the high side: the engine may reuse a dying input's buffer for an output.

use strider_ir::{Graph, Layout, Node, Op, Producer, ValueId};

use crate::kernels::BLOCK_ELEMENTS;
use crate::kernels::direct::prefers_direct;

/// The estimated peak memory of one run of a graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeakEstimate {
    /// Bytes in use at the peak.
    pub bytes: u128,
    /// The node running at the peak (`None`: the peak is the inputs and constants alone).
    pub node: Option<String>,
}

/// Bytes a value occupies (a sparse matrix, stored by columns: its entries, their row indices and the
/// column pointers).
fn value_bytes(graph: &Graph, v: ValueId) -> u128 {
    let ty = &graph.value(v).ty;
    match ty.layout {
        Layout::Dense => ty.shape.numel() as u128 * 4,
        Layout::Csr { nnz } => nnz as u128 * 12 + (ty.shape.dims().get(1).copied().unwrap_or(0) as u128 + 1) * 8,
    }
}

/// Bytes of the workspace `node` holds while it runs.
fn workspace_bytes(graph: &Graph, node: &Node) -> u128 {
    let shape = |i: usize| graph.shape(node.inputs[i]).dims();
    // An im2col or column block: rows × positions, in blocks of BLOCK_ELEMENTS (or one row-column).
    let block = |rows: usize, positions: usize| -> u128 {
        let whole = rows as u128 * positions as u128;
        whole.min(BLOCK_ELEMENTS.max(rows) as u128) * 4
    };
    match &node.op {
        Op::Conv(attrs) => {
            let (w, out) = (shape(1), graph.shape(node.outputs[0]).dims());
            let (mg, cg) = (w[0] / attrs.group.max(1), w[1]);
            let taps = w.iter().skip(2).product::<usize>();
            let same = shape(0).iter().skip(2).eq(out.iter().skip(2));
            let pointwise = taps == 1 && same && attrs.strides.iter().all(|&s| s == 1);
            if pointwise || prefers_direct(cg, mg) {
                return 0;
            }
            // Twice: the fused phase convolutions also keep a product block.
            2 * block(cg * taps, out.iter().skip(2).product::<usize>())
        }
        Op::ConvTranspose(attrs) => {
            let (x, w) = (shape(0), shape(1));
            let (cg, mg) = (w[0] / attrs.group.max(1), w[1]);
            if prefers_direct(cg, mg) {
                return 0;
            }
            block(mg * w.iter().skip(2).product::<usize>(), x.iter().skip(2).product::<usize>())
        }
        _ => 0,
    }
}

/// Estimates the peak memory of one run of `graph` (see the module documentation).
pub fn estimate_peak(graph: &Graph) -> PeakEstimate {
    let mut remaining = graph.use_counts();
    let mut constant = vec![false; graph.values().len()];
    let mut live: u128 = graph.inputs().iter().map(|&v| value_bytes(graph, v)).sum();
    for init in graph.initializers() {
        constant[init.value.index()] = true;
        live += value_bytes(graph, init.value);
    }
    let mut peak = PeakEstimate { bytes: live, node: None };
    for (_, node) in graph.nodes() {
        let produced: u128 = node.outputs.iter().map(|&v| value_bytes(graph, v)).sum();
        let during = live + produced + workspace_bytes(graph, node);
        if during > peak.bytes {
            peak = PeakEstimate { bytes: during, node: Some(node.name.clone()) };
        }
        live += produced;
        // Weight-only results are constants of the prepared plan: they stay.
        let weight_only = node.inputs.iter().all(|v| constant[v.index()]);
        for &v in &node.outputs {
            constant[v.index()] = weight_only;
            if remaining[v.index()] == 0 && !weight_only {
                live = live.saturating_sub(value_bytes(graph, v));
            }
        }
        for &v in &node.inputs {
            let left = &mut remaining[v.index()];
            *left = left.saturating_sub(1);
            let intermediate = matches!(graph.value(v).producer, Producer::Node { .. }) && !constant[v.index()];
            if *left == 0 && intermediate {
                live = live.saturating_sub(value_bytes(graph, v));
            }
        }
    }
    peak
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayD;
    use strider_ir::format::DataSpec;
    use strider_ir::{GraphBuilder, Limits};

    #[test]
    fn intermediates_live_from_producer_to_last_reader() {
        // x [1000] → relu → a; a → tanh → b; b → y: at most x, a and b alive at once (tanh), and the
        // weight [1000] throughout.
        let mut b = GraphBuilder::new("chain", Limits::default());
        b.input("x", vec![1000]);
        b.initializer("w", ArrayD::zeros(vec![1000]), DataSpec::Fill(0.0));
        b.node("r", Op::Relu, ["x"], ["a"]).node("t", Op::Tanh, ["a"], ["b"]).node("m", Op::Mul, ["b", "w"], ["y"]);
        b.output("y");
        let g = b.finish().unwrap();
        let peak = estimate_peak(&g);
        assert_eq!(peak, PeakEstimate { bytes: 4 * 4000, node: Some("t".into()) });
    }
}
