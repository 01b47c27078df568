//! Extraction time against e-graph size. Run with `cargo bench -p strider-rewrite --bench extraction`.
//!
//! A chain of N blocks (ConvTranspose k4 s2 p1 then Conv k4 s2 p1, 8 → 8 channels, so every block
//! keeps the spatial size) is saturated with every rule under the optimize command's limits, then
//! extracted for FLOPs; one row per N. Then a 300-node chain is saturated under a 1 s time budget
//! and extracted with the deadline that leaves, and extracted once more with a deadline already
//! past, to show what a cut-short extraction costs.

use std::time::{Duration, Instant};

use ndarray::{ArrayD, IxDyn};
use strider_ir::format::DataSpec;
use strider_ir::op::{ConvAttrs, ConvTransposeAttrs};
use strider_ir::{Graph, GraphBuilder, Limits, Op};
use strider_rewrite::convert::to_graph;
use strider_rewrite::cost::Flops;
use strider_rewrite::extract::{Extraction, extract};
use strider_rewrite::{RunLimits, Saturated, Strategy, saturate};

const CHANNELS: usize = 8;
const SIZE: usize = 16;

/// `ops` nodes alternating ConvTranspose and Conv, each with its own constant weight.
fn chain(ops: usize) -> Graph {
    let mut b = GraphBuilder::new("chain", Limits::default());
    b.input("v0", vec![1, CHANNELS, SIZE, SIZE]);
    let fill = 1.0 / (CHANNELS * 16) as f32;
    for i in 0..ops {
        let (strides, pads) = (vec![2, 2], vec![1; 4]);
        let op = if i % 2 == 0 {
            Op::ConvTranspose(ConvTransposeAttrs { strides, pads, ..Default::default() })
        } else {
            Op::Conv(ConvAttrs { strides, pads, ..Default::default() })
        };
        let weight = format!("w{i}");
        b.initializer(
            weight.clone(),
            ArrayD::from_elem(IxDyn(&[CHANNELS, CHANNELS, 4, 4]), fill),
            DataSpec::Fill(fill),
        );
        b.node(format!("n{i}"), op, [format!("v{i}"), weight], [format!("v{}", i + 1)]);
    }
    b.output(format!("v{ops}"));
    b.finish().expect("the chain is a valid graph")
}

fn seconds(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// Extracts for FLOPs, timed.
fn timed_extract(saturated: &Saturated, deadline: Option<Instant>) -> (Extraction, Duration) {
    let started = Instant::now();
    let extraction =
        extract(&saturated.egraph, &saturated.roots, &Flops::default(), deadline).expect("FLOPs supports every op");
    (extraction, started.elapsed())
}

fn main() {
    let rules = Strategy::Auto.rules();
    println!(
        "{:>6} {:>8} {:>9} {:>11} {:>11} {:>9} {:>11}  stop",
        "blocks", "e-nodes", "e-classes", "saturation", "extraction", "to graph", "FLOPs"
    );
    for blocks in [50, 100, 200, 500, 1000] {
        let graph = chain(2 * blocks);
        let started = Instant::now();
        let saturated = saturate(&graph, &rules, &RunLimits::default());
        let saturation = started.elapsed();
        let (extraction, extraction_time) = timed_extract(&saturated, None);
        let started = Instant::now();
        let inputs = [("v0".to_string(), graph.shape(graph.inputs()[0]).clone())];
        let output = [format!("v{}", 2 * blocks)];
        to_graph(
            &saturated.egraph,
            &extraction.choice,
            &saturated.roots,
            "chain",
            &inputs,
            &output,
            &Limits::default(),
        )
        .expect("the extracted chain is a valid graph");
        println!(
            "{:>6} {:>8} {:>9} {:>11} {:>11} {:>9} {:>11.0}  {}",
            blocks,
            saturated.egraph.total_number_of_nodes(),
            saturated.egraph.number_of_classes(),
            seconds(saturation),
            seconds(extraction_time),
            seconds(started.elapsed()),
            extraction.cost,
            saturated.stop_reason
        );
    }

    println!();
    let graph = chain(300);
    let started = Instant::now();
    let saturated = saturate(&graph, &rules, &RunLimits { time: Duration::from_secs(1), ..RunLimits::default() });
    let saturation = started.elapsed();
    let (extraction, extraction_time) = timed_extract(&saturated, saturated.deadline);
    println!(
        "300 nodes, 1 s budget: {} e-nodes ({}); saturation {}, extraction {} (cut short: {}), FLOPs {:.0}",
        saturated.egraph.total_number_of_nodes(),
        saturated.stop_reason,
        seconds(saturation),
        seconds(extraction_time),
        extraction.cut_short,
        extraction.cost
    );
    let (extraction, extraction_time) = timed_extract(&saturated, Some(Instant::now()));
    println!(
        "300 nodes, deadline already past: extraction {} (cut short: {}), FLOPs {:.0}",
        seconds(extraction_time),
        extraction.cut_short,
        extraction.cost
    );
}
