//! `optimize` end to end: every shipped example, lowered for the NPU profile (which has no
//! ConvTranspose) and with each forced strategy, runs to the same outputs as the original.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use ndarray::ArrayD;
use strider::interp::{self, feeds};
use strider::ir::{Graph, Limits, Op, format};
use strider::rewrite::cost::{CostModel, Flops, Target};
use strider::rewrite::{Extractor, Lowering, OptimizeOptions, RunLimits, Strategy};

fn optimize(graph: &Graph, strategy: Strategy, base: &dyn CostModel, fold: bool) -> Graph {
    let opts = OptimizeOptions { strategy, fold_constants: fold, ..OptimizeOptions::default() };
    strider::rewrite::optimize(graph, base, &opts).unwrap().graph
}

fn outputs(graph: &Graph, inputs: &HashMap<String, ArrayD<f32>>) -> Vec<(String, ArrayD<f32>)> {
    interp::run(graph, inputs).unwrap()
}

/// Max error relative to the largest magnitude of the reference output.
fn assert_close(model: &Path, what: &str, want: &[(String, ArrayD<f32>)], got: &[(String, ArrayD<f32>)]) {
    assert_eq!(want.len(), got.len());
    for ((name, a), (name_b, b)) in want.iter().zip(got) {
        assert_eq!(name, name_b);
        assert_eq!(a.shape(), b.shape(), "{}: {what}: {name}", model.display());
        let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
        let worst = a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-4 * scale, "{}: {what}: {name} differs by {worst} (scale {scale})", model.display());
    }
}

fn npu() -> Target {
    Target::from_ron(&std::fs::read_to_string("examples/targets/npu.ron").unwrap()).unwrap()
}

/// Every example under every shipped target: the exact extractor proves its choice optimal, never
/// costs more than greedy (whose cost it reports exactly as the greedy extractor does), and its graph
/// computes the original's outputs.
#[test]
fn exact_extraction_is_optimal_never_dearer_than_greedy_and_exact_numerically() {
    let mut targets: Vec<_> = std::fs::read_dir("examples/targets").unwrap().map(|e| e.unwrap().path()).collect();
    targets.sort();
    let targets: Vec<Target> =
        targets.iter().map(|p| Target::from_ron(&std::fs::read_to_string(p).unwrap()).unwrap()).collect();
    assert!(targets.len() >= 2, "cpu and npu at least");
    // A generous time budget: the examples solve in milliseconds, and a fallback must not hide here.
    let run_limits = RunLimits { time: std::time::Duration::from_secs(600), ..RunLimits::default() };
    insta::glob!("../examples/models", "*.ron", |path| {
        let graph = format::load(path, &Limits::default()).unwrap();
        let mut inputs = HashMap::new();
        feeds::fill_missing(&graph, 0, &mut inputs).unwrap();
        let want = outputs(&graph, &inputs);
        for target in &targets {
            let with = |extractor| {
                let opts =
                    OptimizeOptions { fold_constants: true, run_limits, extractor, ..OptimizeOptions::default() };
                strider::rewrite::optimize(&graph, target, &opts).unwrap()
            };
            let (greedy, exact) = (with(Extractor::Greedy), with(Extractor::Exact));
            let what = format!("{} exact", target.name);
            let e = &exact.extraction;
            assert_eq!(e.fallback, None, "{}: {what}", path.display());
            assert_eq!(e.greedy_cost, Some(greedy.extraction.cost), "{}: {what}", path.display());
            assert!(
                e.cost <= greedy.extraction.cost,
                "{}: {what}: {} > {}",
                path.display(),
                e.cost,
                greedy.extraction.cost
            );
            assert_close(path, &what, &want, &outputs(&exact.graph, &inputs));
        }
    });
}

#[test]
fn npu_profile_lowers_every_example_to_the_same_outputs() {
    let target = npu();
    insta::glob!("../examples/models", "*.ron", |path| {
        let graph = format::load(path, &Limits::default()).unwrap();
        let lowered = optimize(&graph, Strategy::Auto, &target, true);
        for (_, node) in lowered.nodes() {
            assert!(
                target.supported.iter().any(|s| s == node.op.name()),
                "{}: {} ({}) is not supported by the NPU",
                path.display(),
                node.name,
                node.op.name()
            );
        }
        let mut inputs = HashMap::new();
        feeds::fill_missing(&graph, 0, &mut inputs).unwrap();
        assert_close(path, "npu", &outputs(&graph, &inputs), &outputs(&lowered, &inputs));
    });
}

#[test]
fn each_forced_strategy_keeps_every_example_exact() {
    let flops = Flops::default();
    insta::glob!("../examples/models", "*.ron", |path| {
        let graph = format::load(path, &Limits::default()).unwrap();
        let mut inputs = HashMap::new();
        feeds::fill_missing(&graph, 3, &mut inputs).unwrap();
        let want = outputs(&graph, &inputs);
        for lowering in Lowering::ALL {
            let lowered = optimize(&graph, Strategy::Force(lowering), &flops, false);
            // An explicit convolution matrix of a large layer is exactly what this lowering costs;
            // executing it belongs in a benchmark, not in every test run.
            let stored: usize = lowered
                .values()
                .iter()
                .map(|v| match v.ty.layout {
                    strider::ir::Layout::Csr { nnz } => nnz,
                    strider::ir::Layout::Dense => 0,
                })
                .sum();
            if stored > 4_000_000 {
                continue;
            }
            if lowering != Lowering::MatMul && lowering != Lowering::Col2Im {
                let left = lowered.nodes().filter(|(_, n)| matches!(n.op, Op::ConvTranspose(_))).count();
                assert_eq!(left, 0, "{}: {} left a ConvTranspose", path.display(), lowering.name());
            }
            assert_close(path, lowering.name(), &want, &outputs(&lowered, &inputs));
        }
    });
}

#[test]
fn optimize_writes_a_model_that_runs_to_the_same_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dcgan_npu.ron");
    let strider = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_strider")).args(args).output().unwrap();
    let report = strider(&[
        "optimize",
        "examples/models/dcgan_generator.ron",
        "--cost",
        "examples/targets/npu.ron",
        "-o",
        out.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    assert!(text.contains("ConvTranspose") && text.contains("cost (target npu)"), "{text}");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let run_a = strider(&["run", "examples/models/dcgan_generator.ron", "--out", a.to_str().unwrap()]);
    let run_b = strider(&["run", out.to_str().unwrap(), "--out", b.to_str().unwrap()]);
    assert!(run_a.status.success() && run_b.status.success(), "{}", String::from_utf8_lossy(&run_b.stderr));
    let want = strider::ir::npy::read_f32(&a.join("image.npy"), &[1, 3, 64, 64]).unwrap();
    let got = strider::ir::npy::read_f32(&b.join("image.npy"), &[1, 3, 64, 64]).unwrap();
    let worst = want.iter().zip(got.iter()).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-4 * want.iter().fold(0.0f32, |m, v| m.max(v.abs())), "{worst}");
    let saved = std::fs::read_to_string(&out).unwrap();
    assert!(!saved.contains("ConvTranspose"), "{saved}");
}

#[test]
fn unknown_strategy_and_bad_target_are_refused() {
    let strider = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_strider")).args(args).output().unwrap();
    let bad = strider(&["optimize", "examples/models/textbook.ron", "--strategy", "magic"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown strategy `magic`"));
    let missing = strider(&["optimize", "examples/models/textbook.ron", "--cost", "nope.ron"]);
    assert_eq!(missing.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read nope.ron"));
}

#[test]
fn round_trip_through_the_egraph_without_rules_gives_back_the_graph() {
    insta::glob!("../examples/models", "*.ron", |path| {
        let graph = format::load(path, &Limits::default()).unwrap();
        let back = optimize(&graph, Strategy::None, &Flops::default(), false);
        let ops = |g: &Graph| g.nodes().map(|(_, n)| format::op_to_ron(&n.op)).collect::<Vec<_>>();
        assert_eq!(ops(&back), ops(&graph), "{}", path.display());
        let names =
            |g: &Graph, ids: &[strider::ir::ValueId]| ids.iter().map(|&v| g.value(v).name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&back, back.inputs()), names(&graph, graph.inputs()));
        assert_eq!(names(&back, back.outputs()), names(&graph, graph.outputs()));
        let mut inputs = HashMap::new();
        feeds::fill_missing(&graph, 1, &mut inputs).unwrap();
        assert_eq!(outputs(&graph, &inputs), outputs(&back, &inputs), "{}", path.display());
    });
}

#[test]
fn a_target_that_cannot_run_a_node_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("tiny.ron");
    std::fs::write(&target, r#"(name: "tiny", supported: ["Relu", "Reshape"])"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strider"))
        .args(["optimize", "examples/models/textbook.ron", "--cost", target.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("value `y` has no supported form"), "{stderr}");
    for op in ["\"ConvTranspose\"", "\"Conv\"", "\"MatMul\"", "\"Col2Im\""] {
        assert!(stderr.contains(op), "{op} missing: {stderr}");
    }
}
