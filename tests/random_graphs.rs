//! Random valid graphs — chains of ConvTranspose (random strides, pads, kernels, groups, dilations
//! and output padding), Conv, Relu, Add, Upsample, BatchNormalization and Concat on small shapes —
//! written as RON, loaded, optimized with every strategy (auto, none and each forced lowering), and
//! run: nothing panics, and every optimized graph computes the original's outputs within tolerance.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use ndarray::ArrayD;
use proptest::prelude::*;
use strider::interp::{self, feeds};
use strider::ir::{Graph, Limits, format};
use strider::rewrite::cost::Flops;
use strider::rewrite::{Lowering, OptimizeOptions, Strategy as Lowerings};

/// Largest channel count and spatial extent a generated op may produce.
const MAX_CHANNELS: usize = 4;
const MAX_EXTENT: usize = 12;

/// The model being written: RON text so far and the current value's shape.
struct Chain {
    nodes: String,
    initializers: String,
    value: String,
    channels: usize,
    spatial: Vec<usize>,
    count: usize,
}

impl Chain {
    fn fresh(&mut self, prefix: &str) -> String {
        self.count += 1;
        format!("{prefix}{}", self.count)
    }

    fn initializer(&mut self, shape: &[usize], data: &str) -> String {
        let name = self.fresh("w");
        writeln!(self.initializers, "        (name: \"{name}\", shape: {shape:?}, data: {data}),").unwrap();
        name
    }

    fn node(&mut self, op: &str, inputs: &[String], channels: usize, spatial: Vec<usize>) {
        let name = self.fresh("n");
        let output = self.fresh("v");
        writeln!(self.nodes, "        (name: \"{name}\", op: {op}, inputs: {inputs:?}, outputs: [\"{output}\"]),")
            .unwrap();
        self.value = output;
        self.channels = channels;
        self.spatial = spatial;
    }

    fn seed(&self) -> usize {
        self.count + 1
    }

    /// One op chosen by `kind`, its attributes drawn from `p`; an op that would leave the size bounds
    /// becomes a Relu.
    fn push(&mut self, kind: u8, p: &[u8; 12]) {
        let rank = self.spatial.len();
        let c = self.channels;
        let x = self.value.clone();
        match kind % 7 {
            0 => {
                // ConvTranspose: group divides C; M/group output channels per group.
                let group = if c % 2 == 0 && p[0] % 2 == 1 { 2 } else { 1 };
                let per_group = 1 + usize::from(p[1] % 2);
                let m = group * per_group;
                let kernel: Vec<usize> = (0..rank).map(|a| 1 + usize::from(p[2 + a] % 4)).collect();
                let strides: Vec<usize> = (0..rank).map(|a| 1 + usize::from(p[4 + a] % 3)).collect();
                let dilations: Vec<usize> = (0..rank).map(|a| 1 + usize::from(p[6 + a] % 2)).collect();
                // output_padding < stride on each axis (the IR refuses more).
                let output_padding: Vec<usize> = (0..rank).map(|a| usize::from(p[8 + a]) % strides[a]).collect();
                // Pads up to the kernel's reach keep every output axis at least 1 long.
                let reach: Vec<usize> = (0..rank).map(|a| dilations[a] * (kernel[a] - 1)).collect();
                let pads: Vec<usize> = (0..2 * rank)
                    .map(|i| usize::from(p[10 + i / 2] >> (4 * (i % 2))) % (reach[i % rank] / 2 + 1))
                    .collect();
                let out: Vec<usize> = (0..rank)
                    .map(|a| {
                        strides[a] * (self.spatial[a] - 1) + output_padding[a] + reach[a] + 1 - pads[a] - pads[rank + a]
                    })
                    .collect();
                if m > MAX_CHANNELS || out.iter().any(|&o| o > MAX_EXTENT) {
                    return self.node("Relu", &[x], c, self.spatial.clone());
                }
                let mut shape = vec![c, per_group];
                shape.extend(&kernel);
                let w = self.initializer(&shape, &format!("Normal(seed: {}, std: 0.5)", self.seed()));
                let mut inputs = vec![x, w];
                if p[0] & 4 != 0 {
                    inputs
                        .push(self.initializer(&[m], &format!("Uniform(seed: {}, low: -0.5, high: 0.5)", self.seed())));
                }
                let op = format!(
                    "ConvTranspose(kernel_shape: {kernel:?}, strides: {strides:?}, dilations: {dilations:?}, \
                     output_padding: {output_padding:?}, pads: {pads:?}, group: {group})"
                );
                self.node(&op, &inputs, m, out);
            }
            1 => {
                // Conv, stride 1, kernel up to 3 with "same"-or-less padding.
                let m = 1 + usize::from(p[0]) % MAX_CHANNELS;
                let kernel: Vec<usize> =
                    (0..rank).map(|a| 1 + usize::from(p[1 + a] % 3).min(self.spatial[a] - 1)).collect();
                let pads: Vec<usize> =
                    (0..2 * rank).map(|i| usize::from(p[3 + i] % 2).min(kernel[i % rank] - 1)).collect();
                let out: Vec<usize> =
                    (0..rank).map(|a| self.spatial[a] + pads[a] + pads[rank + a] + 1 - kernel[a]).collect();
                let mut shape = vec![m, c];
                shape.extend(&kernel);
                let w = self.initializer(&shape, &format!("Normal(seed: {}, std: 0.5)", self.seed()));
                let op = format!("Conv(kernel_shape: {kernel:?}, pads: {pads:?})");
                self.node(&op, &[x, w], m, out);
            }
            2 => self.node("Relu", &[x], c, self.spatial.clone()),
            3 => {
                // Add a per-channel bias (broadcast) or a full tensor.
                let mut shape = vec![c];
                if p[0] % 2 == 0 {
                    shape.extend(std::iter::repeat_n(1, rank));
                } else {
                    shape.extend(&self.spatial);
                }
                let b = self.initializer(&shape, &format!("Uniform(seed: {}, low: -1.0, high: 1.0)", self.seed()));
                self.node("Add", &[x, b], c, self.spatial.clone());
            }
            4 => {
                let factors: Vec<usize> = (0..rank).map(|a| 1 + usize::from(p[a] % 2)).collect();
                let out: Vec<usize> = (0..rank).map(|a| self.spatial[a] * factors[a]).collect();
                if out.iter().any(|&o| o > MAX_EXTENT) {
                    return self.node("Relu", &[x], c, self.spatial.clone());
                }
                let mut scales = vec![1.0f32, 1.0];
                scales.extend(factors.iter().map(|&f| f as f32));
                self.node(&format!("Upsample(scales: {scales:?})"), &[x], c, out);
            }
            5 => {
                let scale = self.initializer(&[c], &format!("Uniform(seed: {}, low: 0.5, high: 1.5)", self.seed()));
                let bias = self.initializer(&[c], &format!("Uniform(seed: {}, low: -0.5, high: 0.5)", self.seed()));
                let mean = self.initializer(&[c], &format!("Uniform(seed: {}, low: -0.5, high: 0.5)", self.seed()));
                let var = self.initializer(&[c], &format!("Uniform(seed: {}, low: 0.5, high: 2.0)", self.seed()));
                self.node("BatchNormalization()", &[x, scale, bias, mean, var], c, self.spatial.clone());
            }
            _ => {
                if 2 * c > MAX_CHANNELS {
                    return self.node("Relu", &[x], c, self.spatial.clone());
                }
                self.node("Concat(axis: 1)", &[x.clone(), x], 2 * c, self.spatial.clone());
            }
        }
    }
}

/// A model: input (1, channels, spatial…), a ConvTranspose, then the other ops.
fn model_text(channels: usize, spatial: &[usize], ops: &[(u8, [u8; 12])]) -> String {
    let mut chain = Chain {
        nodes: String::new(),
        initializers: String::new(),
        value: "x".to_string(),
        channels,
        spatial: spatial.to_vec(),
        count: 0,
    };
    for (i, (kind, params)) in ops.iter().enumerate() {
        chain.push(if i == 0 { 0 } else { *kind }, params);
    }
    let mut input_shape = vec![1, channels];
    input_shape.extend(spatial);
    format!(
        "(\n    name: \"random\",\n    inputs: [(name: \"x\", shape: {input_shape:?})],\n    initializers: [\n{}    ],\n    \
         nodes: [\n{}    ],\n    outputs: [\"{}\"],\n)\n",
        chain.initializers, chain.nodes, chain.value
    )
}

fn run(graph: &Graph, inputs: &HashMap<String, ArrayD<f32>>) -> Vec<(String, ArrayD<f32>)> {
    interp::run(graph, inputs).unwrap()
}

fn check(text: &str) {
    let graph = format::parse(text, Path::new("."), &Limits::default()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut inputs = HashMap::new();
    feeds::fill_missing(&graph, 7, &mut inputs).unwrap();
    let want = run(&graph, &inputs);
    let strategies = [Lowerings::Auto, Lowerings::None].into_iter().chain(Lowering::ALL.map(Lowerings::Force));
    for (i, strategy) in strategies.enumerate() {
        let opts = OptimizeOptions { strategy, fold_constants: i % 2 == 0, ..OptimizeOptions::default() };
        let optimized = strider::rewrite::optimize(&graph, &Flops::default(), &opts)
            .unwrap_or_else(|e| panic!("{strategy:?}: {e}\n{text}"))
            .graph;
        let got = run(&optimized, &inputs);
        assert_eq!(want.len(), got.len());
        for ((name, a), (name_b, b)) in want.iter().zip(&got) {
            assert_eq!(name, name_b);
            assert_eq!(a.shape(), b.shape(), "{strategy:?}: {name}\n{text}");
            let scale = a.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            assert!(worst <= 1e-4 * scale, "{strategy:?}: {name} differs by {worst} (scale {scale})\n{text}");
        }
    }
}

/// Cases: 128 by default (each one is seven optimizations), more with `STRIDER_PROPTEST_CASES=N`.
fn cases() -> u32 {
    std::env::var("STRIDER_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn optimized_random_graphs_compute_the_original(text in model()) {
        check(&text);
    }
}

/// Channels, spatial extents (rank 1 or 2) and one to four ops.
fn model() -> impl Strategy<Value = String> {
    let spatial =
        prop_oneof![(1usize..=5).prop_map(|w| vec![w]), (1usize..=5, 1usize..=5).prop_map(|(h, w)| vec![h, w]),];
    let ops = proptest::collection::vec((any::<u8>(), any::<[u8; 12]>()), 1..=4);
    (1usize..=MAX_CHANNELS, spatial, ops).prop_map(|(channels, spatial, ops)| model_text(channels, &spatial, &ops))
}

#[test]
fn the_generator_writes_the_model_it_describes() {
    // A stride-2, kernel-3 ConvTranspose (one axis, pads 1/1, output_padding 1) then a Relu:
    // out = 2·(4 − 1) + 1 + 2 + 1 − 2 = 8.
    let mut params = [0u8; 12];
    params[2] = 2; // kernel 3
    params[4] = 1; // stride 2
    params[8] = 1; // output_padding 1
    params[10] = 0x11; // pads 1 and 1
    let text = model_text(2, &[4], &[(0, params), (2, [0; 12])]);
    let graph = format::parse(&text, Path::new("."), &Limits::default()).unwrap();
    let y = graph.outputs()[0];
    assert_eq!(graph.shape(y).dims(), &[1, 1, 8]);
    assert_eq!(graph.nodes().map(|(_, n)| n.op.name()).collect::<Vec<_>>(), ["ConvTranspose", "Relu"]);
    check(&text);
}
