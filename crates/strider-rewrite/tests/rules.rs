//! Every rule in the table is verified numerically: a small graph holding the rule's left-hand side is
//! saturated with that rule alone, the right-hand side is extracted (by avoiding the matched form),
//! and both graphs are run on the same seeded inputs. A last test checks that no rule goes untested.

use std::collections::HashMap;

use egg::Language;
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::{Just, ProptestConfig, Strategy};
use strider_interp::{feeds, run};
use strider_ir::format::DataSpec;
use strider_ir::op::{
    ConcatAttrs, ConvAttrs, ConvTransposeAttrs, PadAttrs, ReshapeAttrs, TransposeAttrs, UpsampleAttrs, ZeroInsertAttrs,
};
use strider_ir::{Graph, GraphBuilder, Limits, Op, seeded};
use strider_rewrite::cost::{Avoiding, CostModel, Flops, Memory};
use strider_rewrite::extract::extract;
use strider_rewrite::lang::Node;
use strider_rewrite::rules::all;
use strider_rewrite::{RunLimits, extract_graph, saturate};

/// Names of the rules the tests below verify; `every_rule_is_verified` keeps it complete.
const VERIFIED: &[&str] = &[
    "convtranspose-to-zero-insert-conv",
    "convtranspose-to-gemm-col2im",
    "convtranspose-to-sparse-matrix-transpose",
    "convtranspose-to-subpixel-conv",
    "convtranspose-to-exact-phase-convs",
    "biased-convtranspose-to-exact-phase-convs",
    "convtranspose-1x1-input-to-matmul",
    "convtranspose-kernel-equals-stride-to-matmul",
    "convtranspose-bias-is-add",
    "upsample-nearest-to-depthwise-convtranspose",
    "identity-is-its-input",
    "reshape-to-same-shape-is-identity",
    "transpose-identity-perm-is-identity",
    "zero-insert-stride-1-is-identity",
    "pad-by-zero-is-identity",
    "reshape-reshape-is-reshape",
    "transpose-transpose-is-transpose",
    "conv-add-channel-bias-is-conv-bias",
    "conv-1x1-is-matmul",
    "batchnorm-after-conv-folds-into-conv",
    "batchnorm-after-biased-conv-folds-into-conv",
    "batchnorm-after-convtranspose-folds-into-convtranspose",
    "batchnorm-after-biased-convtranspose-folds-into-convtranspose",
    "conv-after-nearest-upsample-is-subpixel-conv",
    "biased-conv-after-nearest-upsample-is-subpixel-conv",
    "channel-bias-commutes-with-crop",
    "channel-bias-commutes-with-depth-to-space",
];

struct Case {
    b: GraphBuilder,
    seed: u64,
}

impl Case {
    fn new(input: &[usize]) -> Case {
        let mut b = GraphBuilder::new("rule", Limits::default());
        b.input("x", input.to_vec());
        Case { b, seed: 1 }
    }
    fn weight(&mut self, name: &str, shape: &[usize]) -> &mut Self {
        self.seed += 1;
        let n = shape.iter().product();
        let data = ArrayD::from_shape_vec(IxDyn(shape), seeded::uniform(self.seed, n, -1.0, 1.0)).unwrap();
        self.b.initializer(name, data, DataSpec::Uniform { seed: self.seed, low: -1.0, high: 1.0 });
        self
    }
    fn node(&mut self, op: Op, inputs: &[&str], output: &str) -> &mut Self {
        self.b.node(output.to_string(), op, inputs.to_vec(), vec![output]);
        self
    }
    fn graph(&mut self, output: &str) -> Graph {
        self.b.output(output);
        self.b.clone().finish().unwrap()
    }
}

/// Saturates with `rule` alone, extracts avoiding `avoid`, and checks that the rule changed the
/// graph and that both graphs compute the same outputs.
fn verify(rule: &str, original: &Graph, base: &dyn CostModel, avoid: &[&str]) {
    let rules: Vec<_> = all().into_iter().filter(|r| r.name.as_str() == rule).collect();
    assert_eq!(rules.len(), 1, "no rule named {rule}");
    let saturated = saturate(original, &rules, &RunLimits::default());
    let model = Avoiding { inner: base, ops: avoid };
    let (rewritten, _) = extract_graph(&saturated, original, &model, &Limits::default(), None).unwrap();
    let ops = |g: &Graph| g.nodes().map(|(_, n)| n.op.name()).collect::<Vec<_>>();
    assert_ne!(ops(&rewritten), ops(original), "{rule} did not fire");
    let mut inputs = HashMap::new();
    feeds::fill_missing(original, 9, &mut inputs).unwrap();
    let (want, got) = (run(original, &inputs).unwrap(), run(&rewritten, &inputs).unwrap());
    for ((_, a), (_, b)) in want.iter().zip(&got) {
        assert_eq!(a.shape(), b.shape(), "{rule}");
        let worst = a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-5 * a.iter().fold(1.0f32, |m, v| m.max(v.abs())), "{rule}: error {worst}");
    }
}

fn reshape(shape: &[i64]) -> Op {
    Op::Reshape(ReshapeAttrs { shape: shape.to_vec(), allowzero: false })
}

fn transpose(perm: &[usize]) -> Op {
    Op::Transpose(TransposeAttrs { perm: perm.to_vec() })
}

#[test]
fn bias_is_add() {
    let attrs = ConvTransposeAttrs { strides: vec![2, 1], ..Default::default() };
    let g = Case::new(&[2, 3, 3, 2])
        .weight("w", &[3, 2, 2, 2])
        .weight("b", &[2])
        .node(Op::ConvTranspose(attrs), &["x", "w", "b"], "y")
        .graph("y");
    verify("convtranspose-bias-is-add", &g, &AvoidFusedBias, &[]);
}

/// Prefers an Add whose first input is not a layout op (the bias moved before the crop or interleave).
struct AddLast;

impl CostModel for AddLast {
    /// Plain graphs: every op costs the same (this model steers e-graph extraction only).
    fn op_cost(&self, _: &strider_rewrite::cost::OpInstance) -> Option<f64> {
        Some(1.0)
    }

    fn node_cost(&self, egraph: &strider_rewrite::TensorGraph, node: &Node) -> Option<f64> {
        let late = node.op_name().is_some_and(|op| op.as_str() == "Add")
            && egraph[node.children()[1]]
                .nodes
                .iter()
                .all(|n| n.op_name().is_some_and(|o| o.as_str() == "Pad" || o.as_str() == "DepthToSpace"));
        Some(if late { 1e9 } else { 1.0 })
    }
}

/// Prefers a ConvTranspose without bias input (the rule's right-hand side).
struct AvoidFusedBias;

impl CostModel for AvoidFusedBias {
    /// Plain graphs: every op costs the same (this model steers e-graph extraction only).
    fn op_cost(&self, _: &strider_rewrite::cost::OpInstance) -> Option<f64> {
        Some(1.0)
    }

    fn node_cost(&self, _: &strider_rewrite::TensorGraph, node: &Node) -> Option<f64> {
        let fused = node.op_name().is_some_and(|op| op.as_str() == "ConvTranspose") && node.children().len() == 4;
        Some(if fused { 1e9 } else { 1.0 })
    }
}

#[test]
fn each_lowering_fires_on_a_strided_grouped_case() {
    let attrs = ConvTransposeAttrs {
        strides: vec![3, 2],
        dilations: vec![1, 2],
        pads: vec![1, 0, 2, 1],
        output_padding: vec![1, 0],
        group: 2,
        ..Default::default()
    };
    let g =
        Case::new(&[1, 4, 3, 4]).weight("w", &[4, 3, 3, 2]).node(Op::ConvTranspose(attrs), &["x", "w"], "y").graph("y");
    for rule in ["convtranspose-to-zero-insert-conv", "convtranspose-to-gemm-col2im", "convtranspose-to-subpixel-conv"]
    {
        verify(rule, &g, &Flops::default(), &["ConvTranspose"]);
    }
    let dcgan = Case::new(&[2, 5, 1, 1])
        .weight("w", &[5, 3, 4, 4])
        .node(Op::ConvTranspose(ConvTransposeAttrs::default()), &["x", "w"], "y")
        .graph("y");
    verify("convtranspose-1x1-input-to-matmul", &dcgan, &Flops::default(), &["ConvTranspose"]);
    let dcgan_layer =
        ConvTransposeAttrs { strides: vec![2, 3], pads: vec![1, 1, 1, 1], group: 2, ..Default::default() };
    let g = Case::new(&[2, 4, 3, 2])
        .weight("w", &[4, 3, 4, 5])
        .node(Op::ConvTranspose(dcgan_layer), &["x", "w"], "y")
        .graph("y");
    verify("convtranspose-to-exact-phase-convs", &g, &Flops::default(), &["ConvTranspose"]);
    let biased_layer = ConvTransposeAttrs { strides: vec![3], pads: vec![2, 1], ..Default::default() };
    let g = Case::new(&[1, 2, 4])
        .weight("w", &[2, 3, 6])
        .weight("b", &[3])
        .node(Op::ConvTranspose(biased_layer), &["x", "w", "b"], "y")
        .graph("y");
    verify("biased-convtranspose-to-exact-phase-convs", &g, &Flops::default(), &["ConvTranspose"]);
    let unet_attrs = ConvTransposeAttrs { strides: vec![2, 2], ..Default::default() };
    let unet = Case::new(&[1, 4, 3, 5])
        .weight("w", &[4, 2, 2, 2])
        .node(Op::ConvTranspose(unet_attrs), &["x", "w"], "y")
        .graph("y");
    verify("convtranspose-kernel-equals-stride-to-matmul", &unet, &Flops::default(), &["ConvTranspose"]);
}

#[test]
fn batchnorm_folds_into_the_convolution_before_it() {
    let bn = || Op::BatchNormalization(strider_ir::op::BatchNormAttrs { epsilon: 1e-3 });
    let with_params = |case: &mut Case, m: usize| {
        case.weight("s", &[m]).weight("sh", &[m]).weight("mean", &[m]);
        // Variances must be positive.
        let var = ArrayD::from_shape_vec(IxDyn(&[m]), seeded::uniform(5, m, 0.5, 1.5)).unwrap();
        case.b.initializer("var", var, DataSpec::Uniform { seed: 5, low: 0.5, high: 1.5 });
    };
    let conv = Op::Conv(ConvAttrs { pads: vec![1, 1, 1, 1], group: 2, ..Default::default() });
    for (rule, biased) in
        [("batchnorm-after-conv-folds-into-conv", false), ("batchnorm-after-biased-conv-folds-into-conv", true)]
    {
        let mut case = Case::new(&[1, 4, 5, 5]);
        case.weight("w", &[6, 2, 3, 3]).weight("cb", &[6]);
        with_params(&mut case, 6);
        let inputs: &[&str] = if biased { &["x", "w", "cb"] } else { &["x", "w"] };
        let g = case.node(conv.clone(), inputs, "c").node(bn(), &["c", "s", "sh", "mean", "var"], "y").graph("y");
        verify(rule, &g, &Flops::default(), &["BatchNormalization"]);
    }
    let ct = |group| Op::ConvTranspose(ConvTransposeAttrs { strides: vec![2, 2], group, ..Default::default() });
    for (rule, biased, group) in [
        ("batchnorm-after-convtranspose-folds-into-convtranspose", false, 1),
        ("batchnorm-after-convtranspose-folds-into-convtranspose", false, 2),
        ("batchnorm-after-biased-convtranspose-folds-into-convtranspose", true, 2),
    ] {
        let mut case = Case::new(&[1, 4, 3, 3]);
        case.weight("w", &[4, 3, 3, 3]).weight("cb", &[3 * group]);
        with_params(&mut case, 3 * group);
        let inputs: &[&str] = if biased { &["x", "w", "cb"] } else { &["x", "w"] };
        let g = case.node(ct(group), inputs, "c").node(bn(), &["c", "s", "sh", "mean", "var"], "y").graph("y");
        verify(rule, &g, &Flops::default(), &["BatchNormalization"]);
    }
}

/// Cases per property: 256 by default, more with `STRIDER_PROPTEST_CASES=N`.
fn cases() -> u32 {
    std::env::var("STRIDER_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

fn shape() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1usize..=4, 1..=4)
}

fn permutation(rank: usize) -> impl Strategy<Value = Vec<usize>> {
    Just((0..rank).collect::<Vec<_>>()).prop_shuffle()
}

proptest::proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn no_op_rules_hold_for_any_shape(dims in shape(), spatial in proptest::collection::vec(1usize..=4, 1..=3)) {
        let rank = dims.len() as i64;
        let g = Case::new(&dims).node(Op::Identity, &["x"], "i").node(Op::Relu, &["i"], "y").graph("y");
        verify("identity-is-its-input", &g, &Memory, &["Identity"]);
        let same: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        let g = Case::new(&dims).node(reshape(&same), &["x"], "r").node(Op::Relu, &["r"], "y").graph("y");
        verify("reshape-to-same-shape-is-identity", &g, &Memory, &[]);
        let order: Vec<usize> = (0..dims.len()).collect();
        let g = Case::new(&dims).node(transpose(&order), &["x"], "t").node(Op::Relu, &["t"], "y").graph("y");
        verify("transpose-identity-perm-is-identity", &g, &Memory, &[]);
        let pad = Op::Pad(PadAttrs { pads: vec![0; 2 * rank as usize], ..Default::default() });
        let g = Case::new(&dims).node(pad, &["x"], "p").node(Op::Relu, &["p"], "y").graph("y");
        verify("pad-by-zero-is-identity", &g, &Memory, &[]);
        let image = [&[1, 2][..], &spatial].concat();
        let zi = Op::ZeroInsert(ZeroInsertAttrs { strides: vec![1; spatial.len()] });
        let g = Case::new(&image).node(zi, &["x"], "z").node(Op::Relu, &["z"], "y").graph("y");
        verify("zero-insert-stride-1-is-identity", &g, &Memory, &[]);
    }

    #[test]
    fn composed_layout_rules_hold(dims in shape(), (p, q) in (2usize..=4).prop_flat_map(|r| (permutation(r), permutation(r)))) {
        // Reshape to the flat size, then to the dims reversed.
        let total = dims.iter().product::<usize>() as i64;
        let reversed: Vec<i64> = dims.iter().rev().map(|&d| d as i64).collect();
        let g = Case::new(&dims)
            .node(reshape(&[total]), &["x"], "a")
            .node(reshape(&reversed), &["a"], "b")
            .node(Op::Relu, &["b"], "y")
            .graph("y");
        verify("reshape-reshape-is-reshape", &g, &Memory, &[]);
        let cube: Vec<usize> = (2..2 + p.len()).collect();
        let g = Case::new(&cube)
            .node(transpose(&p), &["x"], "a")
            .node(transpose(&q), &["a"], "b")
            .node(Op::Relu, &["b"], "y")
            .graph("y");
        verify("transpose-transpose-is-transpose", &g, &Memory, &[]);
    }

    #[test]
    fn conv_rules_hold(
        spatial in proptest::collection::vec(2usize..=5, 1..=3),
        group in 1usize..=2,
        per_group in 1usize..=3,
        batch in 1usize..=3,
    ) {
        let rank = spatial.len();
        let (c, m) = (group * per_group, group * 2);
        let input = [&[batch, c][..], &spatial].concat();
        let conv = Op::Conv(ConvAttrs { pads: vec![1; 2 * rank], group, ..Default::default() });
        let mut bias_shape = vec![m];
        bias_shape.extend(vec![1; rank]);
        let g = Case::new(&input)
            .weight("w", &[&[m, per_group][..], &vec![2; rank]].concat())
            .weight("b", &bias_shape)
            .node(conv, &["x", "w"], "c")
            .node(Op::Add, &["c", "b"], "y")
            .graph("y");
        verify("conv-add-channel-bias-is-conv-bias", &g, &Memory, &[]);
        let pointwise = Op::Conv(ConvAttrs::default());
        let g = Case::new(&input)
            .weight("w", &[&[m, c][..], &vec![1; rank]].concat())
            .node(pointwise, &["x", "w"], "y")
            .graph("y");
        verify("conv-1x1-is-matmul", &g, &Flops::default(), &["Conv"]);
    }

    #[test]
    fn channel_bias_commutes_with_crop_and_interleave(
        spatial in proptest::collection::vec(3usize..=5, 1..=3),
        channels in 1usize..=3,
        block in 1usize..=3,
        crops in proptest::collection::vec((0i64..=1, 0i64..=1), 3),
        batch in 1usize..=2,
    ) {
        let rank = spatial.len();
        let mut bias_shape = vec![channels];
        bias_shape.extend(vec![1; rank]);
        let pads = [vec![0, 0], crops[..rank].iter().map(|c| -c.0).collect(), vec![0, 0], crops[..rank].iter().map(|c| -c.1).collect()].concat();
        let crop = Op::Pad(PadAttrs { pads, ..Default::default() });
        let g = Case::new(&[&[batch, channels][..], &spatial].concat())
            .weight("b", &bias_shape)
            .node(crop, &["x"], "c")
            .node(Op::Add, &["c", "b"], "y")
            .graph("y");
        verify("channel-bias-commutes-with-crop", &g, &AddLast, &[]);
        let phases = block.pow(rank as u32);
        let d2s = Op::DepthToSpace(strider_ir::op::DepthToSpaceAttrs { blocksize: block, mode: strider_ir::op::DepthToSpaceMode::CRD });
        let g = Case::new(&[&[batch, channels * phases][..], &spatial].concat())
            .weight("b", &bias_shape)
            .node(d2s, &["x"], "d")
            .node(Op::Add, &["d", "b"], "y")
            .graph("y");
        verify("channel-bias-commutes-with-depth-to-space", &g, &AddLast, &[]);
    }

    #[test]
    fn upsample_nearest_is_a_depthwise_conv_transpose_for_any_factors(
        factors in proptest::collection::vec(1usize..=3, 1..=3),
        spatial in proptest::collection::vec(1usize..=4, 3),
        channels in 1usize..=3,
        batch in 1usize..=3,
    ) {
        let rank = factors.len();
        let input = [&[batch, channels][..], &spatial[..rank]].concat();
        let scales = [vec![1.0, 1.0], factors.iter().map(|&f| f as f32).collect()].concat();
        let g = Case::new(&input).node(Op::Upsample(UpsampleAttrs { scales, ..Default::default() }), &["x"], "y").graph("y");
        verify("upsample-nearest-to-depthwise-convtranspose", &g, &Flops::default(), &["Upsample"]);
    }

    /// Resize-conv fusion over ranks 1–3, unequal factors, kernels, dilations, asymmetric pads, groups
    /// and bias.
    #[test]
    fn conv_after_nearest_upsample_is_a_subpixel_conv(
        axes in proptest::collection::vec((1usize..=3, 1usize..=4, 1usize..=4, 1usize..=3, 0i64..3, 0i64..3), 1..=3),
        group in 1usize..=2,
        biased in proptest::prelude::any::<bool>(),
    ) {
        let rank = axes.len();
        let (mut input, mut scales, mut kernel, mut dilations, mut pads) = (vec![1, 2 * group], vec![1.0, 1.0], vec![3 * group, 2], vec![], vec![0; 2 * rank]);
        for (i, (f, n, k, d, b, e)) in axes.iter().copied().enumerate() {
            // The upsampled axis must hold the dilated kernel.
            let n = n.max((d * (k - 1) + 1).div_ceil(f));
            input.push(n);
            scales.push(f as f32);
            kernel.push(k);
            dilations.push(d);
            pads[i] = b;
            pads[rank + i] = e;
        }
        let up = Op::Upsample(UpsampleAttrs { scales, ..Default::default() });
        let conv = Op::Conv(ConvAttrs { dilations, pads, group, ..Default::default() });
        let mut case = Case::new(&input);
        case.weight("w", &kernel).weight("b", &[3 * group]);
        let inputs: &[&str] = if biased { &["u", "w", "b"] } else { &["u", "w"] };
        let g = case.node(up, &["x"], "u").node(conv, inputs, "y").graph("y");
        let rule = if biased { "biased-conv-after-nearest-upsample-is-subpixel-conv" } else { "conv-after-nearest-upsample-is-subpixel-conv" };
        verify(rule, &g, &Flops::default(), &["Upsample"]);
    }
}

#[test]
fn every_rule_is_verified() {
    let mut missing: Vec<String> =
        all().iter().map(|r| r.name.to_string()).filter(|n| !VERIFIED.contains(&n.as_str())).collect();
    missing.sort();
    assert!(missing.is_empty(), "rules without a numerical test: {missing:?}");
}

/// DAG-aware extraction pays for a shared value once: a costly value read by two consumers is not
/// counted twice, so the total equals the sum over distinct nodes.
#[test]
fn shared_values_are_paid_for_once() {
    let conv = Op::Conv(ConvAttrs { pads: vec![1, 1, 1, 1], ..Default::default() });
    let g = Case::new(&[1, 2, 8, 8])
        .weight("w", &[2, 2, 3, 3])
        .node(conv, &["x", "w"], "shared")
        .node(Op::Relu, &["shared"], "a")
        .node(Op::Tanh, &["shared"], "b")
        .node(Op::Concat(ConcatAttrs { axis: 1 }), &["a", "b"], "y")
        .graph("y");
    let saturated = saturate(&g, &[], &RunLimits::default());
    let extraction = extract(&saturated.egraph, &saturated.roots, &Flops::default(), None).unwrap();
    let distinct: u64 = g.nodes().map(|(_, n)| g.node_flops(n)).sum();
    assert_eq!(extraction.cost, distinct as f64);
    let conv_flops = g.nodes().find(|(_, n)| n.name == "shared").map(|(_, n)| g.node_flops(n)).unwrap();
    assert!(extraction.cost < (distinct + conv_flops) as f64);
}
