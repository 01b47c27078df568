//! The prepared engine: sub-pixel phase convolutions fused into one step compute the ConvTranspose
//! they lower (checked against the reference kernel written from the definition); a plan's results
//! are bit-identical from run to run for a given thread count; runs report their peak memory.

use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn};
use strider::interp::kernels::reference;
use strider::interp::{Plan, PlanOptions};
use strider::ir::format::DataSpec;
use strider::ir::op::ConvTransposeAttrs;
use strider::ir::{Graph, GraphBuilder, Limits, Op, seeded};
use strider::rewrite::cost::Flops;
use strider::rewrite::{Lowering, RunLimits, Strategy, extract_graph, saturate};

fn tensor(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let n = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), seeded::uniform(seed, n, -1.0, 1.0)).unwrap()
}

/// One ConvTranspose with seeded weights (and bias, if `bias`).
fn layer(x: &[usize], w: &[usize], attrs: ConvTransposeAttrs, bias: bool) -> Graph {
    let mut b = GraphBuilder::new("layer", Limits::default());
    b.input("x", x.to_vec());
    b.initializer("w", tensor(w, 1), DataSpec::Fill(0.0));
    let mut inputs = vec!["x", "w"];
    if bias {
        b.initializer("b", tensor(&[w[1] * attrs.group], 2), DataSpec::Fill(0.0));
        inputs.push("b");
    }
    b.node("up", Op::ConvTranspose(attrs), inputs, ["y"]);
    b.output("y");
    b.finish().unwrap()
}

fn subpixel(graph: &Graph) -> Graph {
    let strategy = Strategy::Force(Lowering::Subpixel);
    let saturated = saturate(graph, &strategy.rules(), &RunLimits::default());
    let base = Flops { fold_constants: true };
    let model = strategy.model(&base);
    extract_graph(&saturated, graph, model.as_ref(), &Limits::default(), None).unwrap().0
}

fn bits(outputs: &[(String, ArrayD<f32>)]) -> Vec<u32> {
    outputs.iter().flat_map(|(_, a)| a.iter().map(|v| v.to_bits())).collect()
}

#[test]
fn fused_phase_convolutions_compute_the_conv_transpose() {
    let attrs = |k: Vec<usize>, s: Vec<usize>, p: Vec<i64>| ConvTransposeAttrs {
        kernel_shape: k,
        strides: s,
        pads: p,
        ..Default::default()
    };
    let cases = [
        // DCGAN-style k4 s2 p1, with bias: four phases, each its own window.
        (vec![1, 6, 5, 4], vec![6, 5, 4, 4], attrs(vec![4, 4], vec![2, 2], vec![1, 1, 1, 1]), true),
        // FCN-style k8 s4 p2: sixteen phases sharing four windows (two per axis).
        (vec![2, 5, 6, 6], vec![5, 5, 8, 8], attrs(vec![8, 8], vec![4, 4], vec![2, 2, 2, 2]), false),
        // FCN-32s-style k32 s16 p8: lines of eight phases, copied out a run per position.
        (vec![1, 3, 3, 4], vec![3, 2, 32, 32], attrs(vec![32, 32], vec![16, 16], vec![8, 8, 8, 8]), false),
        // 1-D k32 s16 p8 with bias: the same, one line per class.
        (vec![1, 5, 9], vec![5, 3, 32], attrs(vec![32], vec![16], vec![8, 8]), true),
        // 1-D k16 s8 p4, long lines (the line-copy im2col).
        (vec![1, 8, 40], vec![8, 3, 16], attrs(vec![16], vec![8], vec![4, 4]), true),
        // k5 s3 p1: phases 0 and 2 share a window, so a class's last-axis offsets skip one.
        (vec![1, 3, 5, 6], vec![3, 4, 5, 5], attrs(vec![5, 5], vec![3, 3], vec![1, 1, 1, 1]), true),
        // U-Net-style k2 s2: 1×1 phases, the input read in place.
        (vec![1, 6, 7, 5], vec![6, 3, 2, 2], attrs(vec![2, 2], vec![2, 2], vec![0, 0, 0, 0]), true),
        // 3-D k4 s2 p1.
        (vec![1, 4, 3, 4, 3], vec![4, 5, 4, 4, 4], attrs(vec![4, 4, 4], vec![2, 2, 2], vec![1, 1, 1, 1, 1, 1]), true),
    ];
    for (x_shape, w_shape, attrs, bias) in cases {
        let graph = layer(&x_shape, &w_shape, attrs.clone(), bias);
        let lowered = subpixel(&graph);
        assert!(lowered.nodes().any(|(_, n)| matches!(n.op, Op::DepthToSpace(_))), "{attrs:?}: not the phase form");
        let x = tensor(&x_shape, 3);
        let inputs = HashMap::from([("x".to_string(), x.clone())]);
        let (w, b) = (tensor(&w_shape, 1), tensor(&[w_shape[1]], 2));
        let mut args = vec![x.view(), w.view()];
        if bias {
            args.push(b.view());
        }
        let want = reference::conv_transpose(&attrs, &args).unwrap();
        for threads in [1, 2] {
            let mut plan = Plan::new(&lowered, &PlanOptions { threads }).unwrap();
            let steps: Vec<&str> = plan.step_names().map(|(_, op)| op).collect();
            assert_eq!(steps, ["PhaseConvs"], "{attrs:?}: the phases, Concat and DepthToSpace run as one step");
            let first = plan.run(&inputs).unwrap();
            let got = &first[0].1;
            assert_eq!(got.shape(), want.shape());
            let worst = got.iter().zip(want.iter()).map(|(g, w)| (g - w).abs()).fold(0.0f32, f32::max);
            assert!(worst < 1e-4, "{attrs:?}, {threads} threads: off by {worst}");
            let second = plan.run(&inputs).unwrap();
            assert_eq!(bits(&first), bits(&second), "{threads} threads: a second run differs");
        }
    }
}

#[test]
fn runs_report_their_peak_memory() {
    // x [1, 8, 16, 16] → ConvTranspose k2 s2 → y [1, 4, 32, 32]: the output (16 KiB) is alive at the end.
    let attrs = ConvTransposeAttrs { kernel_shape: vec![2, 2], strides: vec![2, 2], ..Default::default() };
    let graph = layer(&[1, 8, 16, 16], &[8, 4, 2, 2], attrs, false);
    let mut plan = Plan::new(&graph, &PlanOptions { threads: 1 }).unwrap();
    let inputs = HashMap::from([("x".to_string(), tensor(&[1, 8, 16, 16], 3))]);
    let (outputs, stats) = plan.run_with_stats(&inputs, true).unwrap();
    let output_bytes = 4 * 32 * 32 * 4;
    // The output plus the GEMM's column buffer (16 rows of 256 positions), nothing more.
    assert_eq!(stats.peak_bytes, output_bytes + 16 * 256 * 4);
    assert_eq!(stats.step_times.len(), 1);
    assert_eq!(outputs[0].1.shape(), &[1, 4, 32, 32]);
}

/// Peak bytes of one run of a one-node graph on seeded inputs, and its output's bytes.
fn peak_of_one_node(op: Op, x: &[usize], w: Option<&[usize]>) -> (usize, usize) {
    let mut b = GraphBuilder::new("one", Limits::default());
    b.input("x", x.to_vec());
    let mut inputs = vec!["x"];
    if let Some(w) = w {
        b.initializer("w", tensor(w, 1), DataSpec::Fill(0.0));
        inputs.push("w");
    }
    b.node("n", op, inputs, ["y"]).output("y");
    let graph = b.finish().unwrap();
    let mut plan = Plan::new(&graph, &PlanOptions { threads: 1 }).unwrap();
    let inputs = HashMap::from([("x".to_string(), tensor(x, 3))]);
    let (outputs, stats) = plan.run_with_stats(&inputs, false).unwrap();
    (stats.peak_bytes, outputs[0].1.len() * 4)
}

#[test]
fn conv_workspaces_stay_bounded_in_every_rank() {
    // Issue 10: im2col was blocked only on the third padded spatial axis, so 1-D and 2-D convs built
    // the whole column matrix (here 128 MiB and 64 MiB). Blocks now bound it for every rank.
    let workspace = strider::interp::kernels::BLOCK_ELEMENTS * 4;
    let cases = [
        (&[1, 1, 8192 + 4095][..], &[1, 1, 4096][..], 4096 * 8192 * 4),
        (&[1, 1, 127, 127], &[1, 1, 64, 64], (64 * 64) * (64 * 64) * 4),
    ];
    for (x, w, whole_matrix) in cases {
        let (peak, output) = peak_of_one_node(Op::Conv(Default::default()), x, Some(w));
        assert!(peak <= output + workspace, "{x:?}: peak {peak} B over output {output} B + {workspace} B");
        assert!(peak < whole_matrix / 4, "{x:?}: peak {peak} B, the whole column matrix is {whole_matrix} B");
    }
}

#[test]
fn pad_needs_no_memory_beyond_its_output() {
    // Issue 10: Pad built an index map of 16 bytes per output element; it now maps per axis.
    let attrs = strider::ir::op::PadAttrs { pads: vec![0, 0, 256, 256, 0, 0, 256, 256], ..Default::default() };
    let (peak, output) = peak_of_one_node(Op::Pad(attrs), &[1, 1, 512, 512], None);
    assert_eq!(output, 1024 * 1024 * 4);
    assert!(peak <= output + 64 * 1024, "peak {peak} B for a {output} B output");
}

#[test]
fn the_estimated_peak_memory_covers_what_a_run_uses() {
    // The estimate (used by --max-memory before running) counts inputs and weights too; a run's
    // measured peak does not.
    for entry in std::fs::read_dir("examples/models").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "ron") {
            continue;
        }
        let graph = strider::ir::format::load(&path, &Limits::default()).unwrap();
        let mut inputs = HashMap::new();
        strider::interp::feeds::fill_missing(&graph, 0, &mut inputs).unwrap();
        let mut plan = Plan::new(&graph, &PlanOptions { threads: 1 }).unwrap();
        let (_, stats) = plan.run_with_stats(&inputs, false).unwrap();
        let held: usize = inputs.values().map(|a| a.len() * 4).sum::<usize>()
            + graph.initializers().iter().map(|i| graph.shape(i.value).numel() * 4).sum::<usize>();
        let measured = (stats.peak_bytes + held) as u128;
        let estimate = strider::interp::memory::estimate_peak(&graph);
        assert!(estimate.bytes >= measured, "{}: estimate {estimate:?} < measured {measured}", path.display());
        assert!(estimate.bytes <= 4 * measured, "{}: estimate {estimate:?} ≫ measured {measured}", path.display());
    }
}
