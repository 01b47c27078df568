//! Every ConvTranspose lowering rule, checked numerically: for random shapes and attributes (ranks 1–3,
//! unequal strides, dilations, asymmetric pads, output_padding, groups, bias, auto_pad, output_shape),
//! the graph extracted with that rule alone computes what the original ConvTranspose computes.

use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use strider_interp::{feeds, run};
use strider_ir::format::DataSpec;
use strider_ir::op::{AutoPad, ConvTransposeAttrs};
use strider_ir::{Graph, GraphBuilder, Limits, Op, seeded};
use strider_rewrite::cost::{Avoiding, Flops};
use strider_rewrite::rules::{Lowering, support_rules};
use strider_rewrite::{RunLimits, extract_graph, saturate};

#[derive(Debug, Clone)]
struct Case {
    batch: usize,
    groups: usize,
    c_per_group: usize,
    m_per_group: usize,
    input: Vec<usize>,
    attrs: ConvTransposeAttrs,
    kernel: Vec<usize>,
    bias: bool,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    // Grouping: 0 → group 1, 1 → group 2, 2 → depthwise (one input channel per group).
    let head = (1usize..=3, 1usize..=3, 0usize..3, 1usize..=3, 1usize..=2, any::<bool>(), any::<u64>(), 0usize..6);
    head.prop_flat_map(|(rank, batch, grouping, c_per_group, m_per_group, bias, seed, mode)| {
        let (groups, c_per_group) = match grouping {
            0 => (1, c_per_group),
            1 => (2, c_per_group),
            _ => (c_per_group + 1, 1),
        };
        let axis = (1usize..=4, 1usize..=4, 1usize..=4, 1usize..=3, 0i64..3, 0i64..3, 0usize..3, 0usize..3);
        proptest::collection::vec(axis, rank).prop_map(move |axes| {
            let mut attrs = ConvTransposeAttrs { group: groups, ..Default::default() };
            let (mut input, mut kernel, mut pads_b, mut pads_e) = (vec![], vec![], vec![], vec![]);
            for (i, k, s, d, b, e, op, extra) in axes {
                input.push(i);
                kernel.push(k);
                attrs.strides.push(s);
                attrs.dilations.push(d);
                let legal_op = op % s;
                attrs.output_padding.push(legal_op);
                let full = (s * (i - 1) + legal_op + d * (k - 1)) as i64;
                let b = b.min(full);
                pads_b.push(b);
                pads_e.push(e.min(full - b));
                attrs.output_shape.push(s * (i - 1) + legal_op + d * (k - 1) + 1 + extra);
            }
            match mode {
                0 | 1 => {
                    attrs.pads = [pads_b, pads_e].concat();
                    attrs.output_shape.clear();
                }
                2 => {
                    attrs.auto_pad = AutoPad::SameUpper;
                    attrs.output_shape.clear();
                }
                3 => {
                    attrs.auto_pad = AutoPad::SameLower;
                    attrs.output_shape.clear();
                }
                4 => {
                    attrs.auto_pad = AutoPad::Valid;
                    attrs.output_shape.clear();
                }
                _ => {} // output_shape (possibly larger than natural: negative pads)
            }
            Case { batch, groups, c_per_group, m_per_group, input, attrs, kernel, bias, seed }
        })
    })
}

fn graph(c: &Case) -> Graph {
    let cin = c.groups * c.c_per_group;
    let m = c.groups * c.m_per_group;
    let mut b = GraphBuilder::new("case", Limits::default());
    b.input("x", [&[c.batch, cin][..], &c.input].concat());
    let w_shape = [&[cin, c.m_per_group][..], &c.kernel].concat();
    let n: usize = w_shape.iter().product();
    let w = ArrayD::from_shape_vec(IxDyn(&w_shape), seeded::uniform(c.seed, n, -1.0, 1.0)).unwrap();
    b.initializer("w", w, DataSpec::Uniform { seed: c.seed, low: -1.0, high: 1.0 });
    let mut inputs = vec!["x", "w"];
    if c.bias {
        let data = ArrayD::from_shape_vec(IxDyn(&[m]), seeded::uniform(c.seed ^ 7, m, -1.0, 1.0)).unwrap();
        b.initializer("b", data, DataSpec::Uniform { seed: c.seed ^ 7, low: -1.0, high: 1.0 });
        inputs.push("b");
    }
    b.node("up", Op::ConvTranspose(c.attrs.clone()), inputs, vec!["y"]);
    b.output("y");
    b.finish().unwrap()
}

/// Lowers with one family alone and returns the lowered graph (ConvTranspose avoided wherever a rule
/// of the family applies).
fn lower(original: &Graph, family: Lowering) -> Graph {
    lower_with(original, family.rules())
}

/// Lowers with the given rules (plus the support rules), avoiding ConvTranspose.
fn lower_with(original: &Graph, mut rules: Vec<strider_rewrite::Rule>) -> Graph {
    rules.extend(support_rules());
    let saturated = saturate(original, &rules, &RunLimits::default());
    let flops = Flops::default();
    let model = Avoiding { inner: &flops, ops: &["ConvTranspose"] };
    extract_graph(&saturated, original, &model, &Limits::default(), None).unwrap().0
}

fn outputs(g: &Graph, inputs: &HashMap<String, ArrayD<f32>>) -> ArrayD<f32> {
    run(g, inputs).unwrap().remove(0).1
}

fn check(c: &Case, family: Lowering, must_lower: bool) -> Result<(), TestCaseError> {
    check_lowered(c, family.name(), must_lower, |g| lower(g, family))
}

fn check_lowered(
    c: &Case,
    family: &str,
    must_lower: bool,
    lower: impl Fn(&Graph) -> Graph,
) -> Result<(), TestCaseError> {
    let original = graph(c);
    let lowered = lower(&original);
    let remaining = lowered.nodes().filter(|(_, n)| matches!(n.op, Op::ConvTranspose(_))).count();
    if must_lower {
        prop_assert_eq!(remaining, 0, "{} left a ConvTranspose:\n{}", family, describe(&lowered));
    }
    let mut inputs = HashMap::new();
    feeds::fill_missing(&original, c.seed, &mut inputs).unwrap();
    let (want, got) = (outputs(&original, &inputs), outputs(&lowered, &inputs));
    prop_assert_eq!(want.shape(), got.shape());
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let worst = want.iter().zip(got.iter()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    prop_assert!(worst <= 1e-4 * scale, "{}: max error {} (scale {})\n{}", family, worst, scale, describe(&lowered));
    Ok(())
}

fn describe(g: &Graph) -> String {
    g.nodes().map(|(_, n)| format!("  {} {}\n", n.name, strider_ir::format::op_to_ron(&n.op))).collect()
}

/// Cases per property: 256 by default, more with `STRIDER_PROPTEST_CASES=N`.
fn cases() -> u32 {
    std::env::var("STRIDER_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn zero_insert_conv_equals_conv_transpose(c in case()) {
        check(&c, Lowering::ZeroInsert, true)?;
    }

    #[test]
    fn gemm_col2im_equals_conv_transpose(c in case()) {
        let legal = c.attrs.output_padding.iter().zip(&c.attrs.strides).all(|(op, s)| op < s);
        check(&c, Lowering::Col2Im, legal)?;
    }

    #[test]
    fn subpixel_conv_equals_conv_transpose(c in case()) {
        check(&c, Lowering::Subpixel, true)?;
    }

    #[test]
    fn exact_phase_convs_equal_conv_transpose(c in case()) {
        let rule = || strider_rewrite::rules::all().into_iter().filter(|r| r.name.as_str().ends_with("convtranspose-to-exact-phase-convs")).collect();
        // Legal when every output length is a multiple of its stride and every phase has a tap.
        let original = graph(&c);
        let out = original.shape(original.outputs()[0]).dims()[2..].to_vec();
        let multiple = out.iter().zip(&c.attrs.strides).all(|(o, s)| o % s == 0);
        let covered = c.kernel.iter().zip(&c.attrs.strides).zip(&c.attrs.dilations).all(|((&k, &s), &d)| {
            (0..s).all(|r| (0..k).any(|t| (t * d) % s == r))
        });
        check_lowered(&c, "exact-phases", multiple && covered, |g| lower_with(g, rule()))?;
    }

    #[test]
    fn sparse_matrix_transpose_equals_conv_transpose(c in case()) {
        check(&c, Lowering::SparseMatMul, true)?;
    }

    #[test]
    fn matmul_forms_equal_conv_transpose(c in case()) {
        check(&c, Lowering::MatMul, false)?;
    }
}

/// The graph of `c` followed by BatchNormalization with seeded statistics (positive variances).
fn graph_with_batchnorm(c: &Case) -> Graph {
    let base = graph(c);
    let m = c.groups * c.m_per_group;
    let mut b = GraphBuilder::new("case_bn", Limits::default());
    for &v in base.inputs() {
        b.input(base.value(v).name.clone(), base.shape(v).clone());
    }
    for init in base.initializers() {
        b.copy_initializer(base.value(init.value).name.clone(), init);
    }
    for (i, name) in ["scale", "shift", "mean"].into_iter().enumerate() {
        let data =
            ArrayD::from_shape_vec(IxDyn(&[m]), seeded::uniform(c.seed ^ (11 + i as u64), m, -1.0, 1.0)).unwrap();
        b.initializer(name, data, DataSpec::Fill(0.0));
    }
    let var = ArrayD::from_shape_vec(IxDyn(&[m]), seeded::uniform(c.seed ^ 17, m, 0.25, 2.0)).unwrap();
    b.initializer("var", var, DataSpec::Fill(0.0));
    for (_, n) in base.nodes() {
        let names = |ids: &[strider_ir::ValueId]| ids.iter().map(|&v| base.value(v).name.clone()).collect::<Vec<_>>();
        b.node(n.name.clone(), n.op.clone(), names(&n.inputs), names(&n.outputs));
    }
    b.node("bn", Op::BatchNormalization(Default::default()), vec!["y", "scale", "shift", "mean", "var"], vec!["z"]);
    b.output("z");
    b.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// BatchNormalization folds into the ConvTranspose before it, for every configuration above.
    #[test]
    fn batchnorm_folds_into_conv_transpose(c in case()) {
        let original = graph_with_batchnorm(&c);
        let rules: Vec<_> = strider_rewrite::rules::all()
            .into_iter()
            .filter(|r| r.name.as_str().starts_with("batchnorm-after-"))
            .collect();
        let saturated = saturate(&original, &rules, &RunLimits::default());
        let flops = Flops::default();
        let model = Avoiding { inner: &flops, ops: &["BatchNormalization"] };
        let folded = extract_graph(&saturated, &original, &model, &Limits::default(), None).unwrap().0;
        prop_assert!(folded.nodes().all(|(_, n)| !matches!(n.op, Op::BatchNormalization(_))), "{}", describe(&folded));
        let mut inputs = HashMap::new();
        feeds::fill_missing(&original, c.seed, &mut inputs).unwrap();
        let (want, got) = (outputs(&original, &inputs), outputs(&folded, &inputs));
        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let worst = want.iter().zip(got.iter()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        prop_assert!(worst <= 1e-4 * scale, "max error {} (scale {})", worst, scale);
    }
}

/// The MatMul forms fire where they are legal: DCGAN's first layer and U-Net's k2 s2 up-convolution.
#[test]
fn matmul_forms_fire_on_their_special_cases() {
    let dcgan = Case {
        batch: 2,
        groups: 1,
        c_per_group: 5,
        m_per_group: 3,
        input: vec![1, 1],
        attrs: ConvTransposeAttrs::default(),
        kernel: vec![4, 4],
        bias: true,
        seed: 1,
    };
    check(&dcgan, Lowering::MatMul, true).unwrap();
    let unet = Case {
        input: vec![3, 5],
        attrs: ConvTransposeAttrs { strides: vec![2, 3], ..Default::default() },
        kernel: vec![2, 3],
        ..dcgan
    };
    check(&unet, Lowering::MatMul, true).unwrap();
}
