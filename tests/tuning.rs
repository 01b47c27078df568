//! Measured costs end to end: a node tuned into a log, the log read back, and extraction choosing by
//! the measured times — on the library (exact prices) and through the CLI (log reuse).

use std::process::Command;
use std::time::Duration;

use strider::check::tuning::{MachineKey, TuneOptions, TuningDb, tune};
use strider::ir::{Graph, Limits, format};
use strider::rewrite::cost::{Flops, Measured, Target, price};
use strider::rewrite::isolate::{Form, in_form, isolate};
use strider::rewrite::{OptimizeOptions, RunLimits, optimize};

fn load(path: &str) -> Graph {
    format::load(std::path::Path::new(path), &Limits::default()).unwrap()
}

fn cpu() -> Target {
    Target::from_ron(&std::fs::read_to_string("examples/targets/cpu.ron").unwrap()).unwrap()
}

fn options() -> TuneOptions {
    TuneOptions {
        threads: 1,
        min_time: Duration::from_millis(20),
        max_matrix_nnz: 1 << 20,
        max_flops_ratio: 0.0,
        run_limits: RunLimits::default(),
        retune: false,
    }
}

/// Every timed form of the layer, priced by the measured model, costs exactly its median; and
/// extraction picks the form with the smallest median.
#[test]
fn extraction_picks_the_measured_fastest_form() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tuning.jsonl");
    let graph = load("examples/bench/dcgan_l5_32to64.ron");
    let prior = cpu();
    let mut db = TuningDb::open(&log).unwrap();
    let tuned = tune(&graph, &mut db, &options(), &prior, &mut |_| {}).unwrap();
    assert_eq!(tuned.len(), 1);
    assert!(!tuned[0].cached);
    assert!(tuned[0].forms.len() >= 4, "direct and at least three lowerings: {:?}", tuned[0].forms);

    let db = TuningDb::open(&log).unwrap();
    assert_eq!(db.records().len(), tuned[0].forms.len(), "one line per timed form");
    let measured = Measured { times_ns: db.op_times_ns(&MachineKey::here(1)), fallback: &prior };
    let (_, node) = graph.nodes().next().unwrap();
    let alone = isolate(&graph, node);
    for record in db.records() {
        let form = Form::from_name(&record.form).unwrap();
        let variant = in_form(&alone, form, &RunLimits::default()).unwrap();
        let cost = price(&variant, &measured).unwrap();
        let want = record.median_ms * 1e6;
        assert!((cost - want).abs() <= 1e-6 * want, "{}: priced {cost} ns, measured {want} ns", record.form);
    }
    let fastest = db.records().iter().map(|r| r.median_ms * 1e6).fold(f64::INFINITY, f64::min);
    let opts = OptimizeOptions { fold_constants: true, ..OptimizeOptions::default() };
    let optimized = optimize(&graph, &measured, &opts).unwrap();
    let cost = optimized.cost_after.unwrap();
    assert!((cost - fastest).abs() <= 1e-6 * fastest, "extracted {cost} ns, fastest form {fastest} ns");
}

/// A node already in the log is not timed again, and a log from another thread count does not count.
#[test]
fn the_log_is_reused_per_machine_and_threads() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tuning.jsonl");
    let graph = load("examples/bench/dcgan_l1_1to4.ron");
    let prior = cpu();
    let mut db = TuningDb::open(&log).unwrap();
    tune(&graph, &mut db, &options(), &prior, &mut |_| {}).unwrap();
    let lines = std::fs::read_to_string(&log).unwrap().lines().count();
    let again = tune(&graph, &mut db, &options(), &prior, &mut |_| {}).unwrap();
    assert!(again[0].cached);
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), lines, "nothing appended");
    assert!(db.op_times_ns(&MachineKey::here(2)).is_empty(), "times for 1 thread do not price 2");
    assert!(!db.op_times_ns(&MachineKey::here(1)).is_empty());
}

/// The measured model prices what was not measured with its fallback.
#[test]
fn unmeasured_ops_fall_back() {
    let graph = load("examples/bench/dcgan_l1_1to4.ron");
    let flops = Flops::default();
    let empty = Measured { times_ns: Default::default(), fallback: &flops };
    assert_eq!(price(&graph, &empty), price(&graph, &flops));
}

fn strider(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strider")).args(args).output().expect("the strider binary runs")
}

#[test]
fn cli_tune_then_optimize_reuses_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("t.jsonl");
    let log = log.to_str().unwrap();
    let model = "examples/bench/dcgan_l1_1to4.ron";
    let tuned = strider(&["tune", model, "--tuning-db", log, "--threads", "1", "--tune-time", "0.02"]);
    assert!(tuned.status.success(), "{}", String::from_utf8_lossy(&tuned.stderr));
    let text = String::from_utf8_lossy(&tuned.stdout);
    assert!(text.contains("(timed now)") && text.contains("matmul") && text.contains("direct"), "{text}");
    let out = strider(&["optimize", model, "--tuning-db", log, "--threads", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 nodes, 0 timed now, 1 from the log"), "{text}");
    assert!(text.contains("cost (measured, else target cpu)"), "{text}");
    let bad = strider(&["optimize", model, "--tuning-db", log, "--cost", "flops"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("needs a CPU profile"));
}
