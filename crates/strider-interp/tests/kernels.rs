//! The engine's convolution kernels agree with the reference kernels written from the definitions,
//! over random ranks 1–3, strides, dilations, asymmetric pads, output_padding, groups, bias, batch and
//! channel counts on both sides of the GEMM/direct threshold, with 1 and 2 threads; and results are
//! bit-identical from run to run for a given thread count.

use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use strider_interp::kernels::{Ctx, conv, conv_transpose, pack_weight, reference};
use strider_ir::op::{ConvAttrs, ConvTransposeAttrs};
use strider_ir::{Shape, seeded};

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
    bias: bool,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..=3, 1usize..=2, 1usize..=3, 1usize..=9, 1usize..=7, any::<bool>(), any::<u64>()).prop_flat_map(
        |(rank, batch, groups, c_per_group, m_per_group, bias, seed)| {
            let axis = (1usize..=6, 1usize..=4, 1usize..=4, 1usize..=3, 0i64..4, 0i64..4, 0usize..4);
            proptest::collection::vec(axis, rank).prop_map(move |axes| {
                let mut pads: Vec<i64> = axes.iter().map(|a| a.4).collect();
                pads.extend(axes.iter().map(|a| a.5));
                Case {
                    batch,
                    groups,
                    c_per_group,
                    m_per_group,
                    input: axes.iter().map(|a| a.0).collect(),
                    kernel: axes.iter().map(|a| a.1).collect(),
                    strides: axes.iter().map(|a| a.2).collect(),
                    dilations: axes.iter().map(|a| a.3).collect(),
                    pads,
                    output_padding: axes.iter().map(|a| a.6 % a.2).collect(),
                    bias,
                    seed,
                }
            })
        },
    )
}

fn tensor(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let n = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), seeded::uniform(seed, n, -1.0, 1.0)).unwrap()
}

fn close(got: &ArrayD<f32>, want: &ArrayD<f32>) -> Result<(), String> {
    if got.shape() != want.shape() {
        return Err(format!("shape {:?}, want {:?}", got.shape(), want.shape()));
    }
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        if (g - w).abs() > 1e-5 + 1e-4 * w.abs() {
            return Err(format!("element {i}: {g}, want {w}"));
        }
    }
    Ok(())
}

fn bits(a: &ArrayD<f32>) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

fn cases() -> u32 {
    std::env::var("STRIDER_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_global_rejects: 4 * cases(), ..ProptestConfig::default() })]

    #[test]
    fn conv_transpose_matches_the_definition(c in case()) {
        let (cin, m) = (c.groups * c.c_per_group, c.groups * c.m_per_group);
        let x = tensor(&[&[c.batch, cin][..], &c.input].concat(), c.seed);
        let w = tensor(&[&[cin, c.m_per_group][..], &c.kernel].concat(), c.seed ^ 1);
        let b = tensor(&[m], c.seed ^ 2);
        let attrs = ConvTransposeAttrs {
            dilations: c.dilations.clone(),
            group: c.groups,
            output_padding: c.output_padding.clone(),
            pads: c.pads.clone(),
            strides: c.strides.clone(),
            ..Default::default()
        };
        // Pads larger than the natural output leave nothing.
        prop_assume!(attrs.geometry(&Shape(x.shape().to_vec()), &Shape(w.shape().to_vec())).is_ok());
        let bias = c.bias.then(|| b.view());
        let mut inputs = vec![x.view(), w.view()];
        inputs.extend(bias.clone());
        let want = reference::conv_transpose(&attrs, &inputs).unwrap();
        // The weight transposed once (as a plan prepares it) or read transposed in place.
        let packed = pack_weight(&attrs, &w.view());
        for (threads, packed) in [(1, None), (2, None), (1, packed.as_deref()), (2, packed.as_deref())] {
            let ctx = &mut Ctx::new(threads);
            let got = conv_transpose(ctx, &attrs, &x.view(), &w.view(), bias.clone(), packed).unwrap();
            prop_assert!(close(&got, &want).is_ok(), "{threads} threads: {:?}", close(&got, &want));
            let again = conv_transpose(ctx, &attrs, &x.view(), &w.view(), bias.clone(), packed).unwrap();
            prop_assert_eq!(bits(&got), bits(&again));
        }
    }

    #[test]
    fn conv_matches_the_definition(c in case()) {
        let (cin, m) = (c.groups * c.c_per_group, c.groups * c.m_per_group);
        let x = tensor(&[&[c.batch, cin][..], &c.input].concat(), c.seed);
        let w = tensor(&[&[m, c.c_per_group][..], &c.kernel].concat(), c.seed ^ 1);
        let b = tensor(&[m], c.seed ^ 2);
        let attrs = ConvAttrs {
            dilations: c.dilations.clone(),
            group: c.groups,
            pads: c.pads.clone(),
            strides: c.strides.clone(),
            ..Default::default()
        };
        // A kernel larger than the padded input has no valid position.
        prop_assume!(attrs.geometry(&Shape(x.shape().to_vec()), &Shape(w.shape().to_vec())).is_ok());
        let bias = c.bias.then(|| b.view());
        let mut inputs = vec![x.view(), w.view()];
        inputs.extend(bias.clone());
        let want = reference::conv(&attrs, &inputs).unwrap();
        for threads in [1, 2] {
            let ctx = &mut Ctx::new(threads);
            let got = conv(ctx, &attrs, &x.view(), &w.view(), bias.clone()).unwrap();
            prop_assert!(close(&got, &want).is_ok(), "{threads} threads: {:?}", close(&got, &want));
            let again = conv(ctx, &attrs, &x.view(), &w.view(), bias.clone()).unwrap();
            prop_assert_eq!(bits(&got), bits(&again));
        }
    }
}

#[test]
fn pointwise_conv_multiplies_the_input_directly() {
    // 1×1, stride 1, no padding, 24 channel pairs (the GEMM path, no im2col): each output channel
    // is its weight row times the input channels.
    let x = tensor(&[2, 4, 3, 5], 7);
    let w = tensor(&[6, 4, 1, 1], 8);
    let got = conv(&mut Ctx::new(2), &ConvAttrs::default(), &x.view(), &w.view(), None).unwrap();
    let want = reference::conv(&ConvAttrs::default(), &[x.view(), w.view()]).unwrap();
    close(&got, &want).unwrap();
}

#[test]
fn conv_transpose_of_a_single_input_position_matches_the_definition() {
    // A 1×1 input (DCGAN's first layer): the GEMM path computes xᵀ · W for its one column.
    let x = tensor(&[2, 40, 1, 1], 11);
    let w = tensor(&[40, 24, 4, 4], 12);
    let b = tensor(&[24], 13);
    for pads in [vec![0, 0, 0, 0], vec![1, 2, 0, 1]] {
        let attrs = ConvTransposeAttrs { pads, ..Default::default() };
        let want = reference::conv_transpose(&attrs, &[x.view(), w.view(), b.view()]).unwrap();
        let packed = pack_weight(&attrs, &w.view());
        assert!(packed.is_some(), "40 × 24 channels take the GEMM path");
        for threads in [1, 2] {
            let got =
                conv_transpose(&mut Ctx::new(threads), &attrs, &x.view(), &w.view(), Some(b.view()), packed.as_deref())
                    .unwrap();
            assert_eq!(close(&got, &want), Ok(()));
        }
    }
}
