//! The defining identity of transposed convolution: it is the adjoint of convolution with the same
//! weights and attributes, ⟨Conv(y; W), x⟩ = ⟨y, ConvTranspose(x; W)⟩, over random ranks 1–3, strides,
//! dilations, asymmetric pads, output_padding, groups and auto_pad modes — for the reference kernels
//! written from the definitions and for the engine's kernels (GEMM and direct paths: the channel
//! counts per group span both sides of the threshold between them).

use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use strider::interp::kernels::{Ctx, conv, conv_transpose, reference};
use strider::ir::op::{AutoPad, ConvAttrs, ConvTransposeAttrs};
use strider::ir::{Shape, seeded};

#[derive(Debug, Clone)]
struct Case {
    batch: usize,
    groups: usize,
    c_per_group: usize,
    m_per_group: usize,
    input: Vec<usize>,
    kernel: Vec<usize>,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    pads: Vec<i64>,
    output_padding: Vec<usize>,
    auto_pad: AutoPad,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..=3, 1usize..=2, 1usize..=3, 1usize..=6, 1usize..=5, any::<u64>(), 0usize..4).prop_flat_map(
        |(rank, batch, groups, c_per_group, m_per_group, seed, auto)| {
            let axis = (1usize..=5, 1usize..=4, 1usize..=4, 1usize..=3, 0i64..4, 0i64..4, 0usize..4);
            proptest::collection::vec(axis, rank).prop_map(move |axes| {
                let auto_pad = [AutoPad::NotSet, AutoPad::NotSet, AutoPad::SameUpper, AutoPad::SameLower][auto];
                let mut c = Case {
                    batch,
                    groups,
                    c_per_group,
                    m_per_group,
                    input: vec![],
                    kernel: vec![],
                    strides: vec![],
                    dilations: vec![],
                    pads: vec![0; 2 * rank],
                    output_padding: vec![],
                    auto_pad,
                    seed,
                };
                for (i, (input, kernel, stride, dilation, b, e, op)) in axes.into_iter().enumerate() {
                    c.input.push(input);
                    c.kernel.push(kernel);
                    c.strides.push(stride);
                    c.dilations.push(dilation);
                    // Keep the output at least one element long.
                    let full = (stride * (input - 1) + dilation * (kernel - 1)) as i64;
                    c.pads[i] = b.min(full);
                    c.pads[rank + i] = e.min(full - c.pads[i]);
                    // The adjoint Conv recovers the input size only for output_padding < stride.
                    c.output_padding.push(op % stride);
                }
                c
            })
        },
    )
}

fn tensor(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let n = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), seeded::uniform(seed, n, -1.0, 1.0)).unwrap()
}

fn dot(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f64 {
    a.iter().zip(b.iter()).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// Cases per property: 256 by default, more with `STRIDER_PROPTEST_CASES=N`.
fn cases() -> u32 {
    std::env::var("STRIDER_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn conv_transpose_is_the_adjoint_of_conv(c in case()) {
        let (cin, m) = (c.groups * c.c_per_group, c.groups * c.m_per_group);
        let mut x_shape = vec![c.batch, cin];
        x_shape.extend(&c.input);
        let mut w_shape = vec![cin, c.m_per_group];
        w_shape.extend(&c.kernel);
        let explicit = c.auto_pad == AutoPad::NotSet;
        let ct = ConvTransposeAttrs {
            auto_pad: c.auto_pad,
            dilations: c.dilations.clone(),
            group: c.groups,
            output_padding: c.output_padding.clone(),
            pads: if explicit { c.pads.clone() } else { vec![] },
            strides: c.strides.clone(),
            ..Default::default()
        };
        let geometry = ct.geometry(&Shape(x_shape.clone()), &Shape(w_shape.clone())).unwrap();
        // Derived SAME pads can be negative (extra output); Conv has no such padding.
        prop_assume!(geometry.iter().all(|a| a.pad_begin >= 0 && a.pad_end >= 0));
        let x = tensor(&x_shape, c.seed);
        let w = tensor(&w_shape, c.seed ^ 1);
        let ctx = &mut Ctx::new(2);
        let y_t = conv_transpose(ctx, &ct, &x.view(), &w.view(), None, None).unwrap();
        prop_assert_eq!(y_t.shape()[1], m);
        let y_ref = reference::conv_transpose(&ct, &[x.view(), w.view()]).unwrap();
        prop_assert_eq!(y_ref.shape(), y_t.shape());

        let rank = c.input.len();
        let mut pads: Vec<i64> = geometry.iter().map(|a| a.pad_begin).collect();
        pads.extend(geometry.iter().map(|a| a.pad_end));
        let cv = ConvAttrs { dilations: c.dilations.clone(), group: c.groups, pads, strides: c.strides.clone(), ..Default::default() };
        let y = tensor(y_t.shape(), c.seed ^ 2);
        let x_back = conv(ctx, &cv, &y.view(), &w.view(), None).unwrap();
        prop_assert_eq!(x_back.shape(), x.shape(), "rank {}", rank);
        let x_ref = reference::conv(&cv, &[y.view(), w.view()]).unwrap();

        for (conv_y, transposed_x, kernels) in [(&x_back, &y_t, "engine"), (&x_ref, &y_ref, "reference")] {
            let (lhs, rhs) = (dot(conv_y, &x), dot(&y, transposed_x));
            let scale = lhs.abs().max(rhs.abs()).max(1.0);
            prop_assert!(
                (lhs - rhs).abs() <= 1e-4 * scale,
                "{} kernels: ⟨Conv(y), x⟩ = {} but ⟨y, ConvTranspose(x)⟩ = {}", kernels, lhs, rhs
            );
        }
    }
}
