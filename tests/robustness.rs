//! Shape rules and kernels agree, and neither panics, for arbitrary (also absurd) convolution
//! attributes: whatever shape inference accepts, the kernel executes to exactly the inferred shape.

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use proptest::prelude::*;
use strider::interp::kernels::eval_dense;
use strider::ir::op::{AutoPad, ConvAttrs, ConvTransposeAttrs};
use strider::ir::{Op, Shape};

fn small_or_absurd() -> impl Strategy<Value = usize> {
    prop_oneof![16 => 1usize..4, 1 => Just(0usize), 1 => Just(usize::MAX), 1 => Just(1usize << 40)]
}

fn pad() -> impl Strategy<Value = i64> {
    prop_oneof![16 => 0i64..3, 1 => Just(-1i64), 1 => Just(i64::MAX), 1 => Just(i64::MIN)]
}

fn auto_pad() -> impl Strategy<Value = AutoPad> {
    prop_oneof![Just(AutoPad::NotSet), Just(AutoPad::SameUpper), Just(AutoPad::SameLower), Just(AutoPad::Valid)]
}

#[derive(Debug, Clone)]
struct Case {
    transpose: bool,
    x: Vec<usize>,
    w: Vec<usize>,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    pads: Vec<i64>,
    output_padding: Vec<usize>,
    output_shape: Vec<usize>,
    group: usize,
    auto_pad: AutoPad,
}

fn case() -> impl Strategy<Value = Case> {
    let channels = (prop_oneof![8 => 1usize..=3, 1 => Just(0usize)], 1usize..=2, 1usize..=2, 1usize..=2);
    (1usize..=3, any::<bool>(), channels, any::<bool>()).prop_flat_map(
        |(rank, transpose, (group, n, cg, mg), mismatch)| {
            let lens = |n: usize| proptest::collection::vec(small_or_absurd(), n);
            // Channels usually consistent with the group, so that attributes get exercised.
            let g = group.max(1);
            let (c, w0, w1) = if transpose { (g * cg, g * cg, mg) } else { (g * cg, g * mg, cg) };
            let c = if mismatch && rank == 2 { c + 1 } else { c };
            (
                proptest::collection::vec(1usize..=6, rank).prop_map(move |s| [vec![n, c], s].concat()),
                proptest::collection::vec(1usize..=4, rank).prop_map(move |k| [vec![w0, w1], k].concat()),
                prop_oneof![Just(vec![]), lens(rank), lens(rank + 1)],
                prop_oneof![Just(vec![]), lens(rank)],
                prop_oneof![
                    Just(vec![]),
                    proptest::collection::vec(pad(), 2 * rank),
                    proptest::collection::vec(pad(), rank)
                ],
                prop_oneof![Just(vec![]), proptest::collection::vec(0usize..3, rank)],
                prop_oneof![3 => Just(vec![]), 1 => proptest::collection::vec(1usize..9, rank)],
                auto_pad(),
            )
                .prop_map(
                    move |(x, w, strides, dilations, pads, output_padding, output_shape, auto_pad)| Case {
                        transpose,
                        x,
                        w,
                        strides,
                        dilations,
                        pads,
                        output_padding,
                        output_shape,
                        group,
                        auto_pad,
                    },
                )
        },
    )
}

fn op(c: &Case) -> Op {
    if c.transpose {
        Op::ConvTranspose(ConvTransposeAttrs {
            auto_pad: c.auto_pad,
            dilations: c.dilations.clone(),
            group: c.group,
            kernel_shape: vec![],
            output_padding: c.output_padding.clone(),
            output_shape: c.output_shape.clone(),
            pads: c.pads.clone(),
            strides: c.strides.clone(),
        })
    } else {
        Op::Conv(ConvAttrs {
            auto_pad: c.auto_pad,
            dilations: c.dilations.clone(),
            group: c.group,
            kernel_shape: vec![],
            pads: c.pads.clone(),
            strides: c.strides.clone(),
        })
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn whatever_inference_accepts_the_kernel_executes_to_that_shape(c in case()) {
        let op = op(&c);
        let (x, w) = (Shape(c.x.clone()), Shape(c.w.clone()));
        let Ok(out) = op.infer(&[&x, &w]) else { return Ok(()) };
        prop_assume!(out[0].numel() <= 1 << 16);
        let xa = ArrayD::from_elem(IxDyn(x.dims()), 1.0f32);
        let wa = ArrayD::from_elem(IxDyn(w.dims()), 1.0f32);
        let inputs: Vec<ArrayViewD<f32>> = vec![xa.view(), wa.view()];
        let y = eval_dense(&op, &inputs, &out).unwrap();
        prop_assert_eq!(y.shape(), out[0].dims());
    }
}
