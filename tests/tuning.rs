//! Measured costs end to end: a node tuned into a log, the log read back, and extraction choosing by
//! the measured times — on the library (exact prices) and through the CLI (log reuse).

use std::process::Command;
use std::time::Duration;

use strider::check::tuning::{MachineKey, TuneOptions, TuningDb, tune};
use strider::ir::{Graph, Limits, format};
use strider::rewrite::cost::{Flops, Measured, Target, instances, op_key, price};
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
/// extraction picks the graph with the smallest median (a form, or a mixture tuning timed because
/// extraction would pick it).
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
    assert_eq!(db.records().len(), tuned[0].forms.len(), "one line per timed graph");
    let measured = Measured { times_ns: db.op_times_ns(&MachineKey::here(1)), fallback: &prior };
    let (_, node) = graph.nodes().next().unwrap();
    let alone = isolate(&graph, node);
    // An op timed in one form only is priced at exactly its share of that form's median; an op that
    // several timed graphs share gets the mean of its shares, so a form is priced near its median.
    let counts = |key: &str| db.records().iter().filter(|r| r.ops.iter().any(|(k, _)| k == key)).count();
    for record in db.records().iter().filter(|r| !r.form.starts_with("auto")) {
        let form = Form::from_name(&record.form).unwrap();
        let variant = in_form(&alone, form, &RunLimits::default()).unwrap();
        let cost = price(&variant, &measured).unwrap();
        let want = record.median_ms * 1e6;
        let shared = record.ops.iter().any(|(k, _)| counts(k) > 1);
        let tolerance = if shared { 0.5 } else { 1e-6 };
        assert!((cost - want).abs() <= tolerance * want, "{}: priced {cost} ns, measured {want} ns", record.form);
    }
    // Extraction picks a graph measured op for op (tuning timed what it would pick), no dearer than
    // the fastest timed graph by more than the averaging of shared ops allows.
    let fastest = db.records().iter().map(|r| r.median_ms * 1e6).fold(f64::INFINITY, f64::min);
    let opts = OptimizeOptions { fold_constants: true, ..OptimizeOptions::default() };
    let optimized = optimize(&graph, &measured, &opts).unwrap();
    for (_, op) in instances(&optimized.graph).iter().filter(|(_, op)| !op.constant) {
        assert!(measured.times_ns.contains_key(&op_key(op)), "unmeasured op in the pick: {}", op_key(op));
    }
    let cost = optimized.cost_after.unwrap();
    assert!(cost <= 1.5 * fastest, "extracted {cost} ns, fastest timed graph {fastest} ns");
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
    assert!(text.contains("1 node, 0 timed now, 1 from the log"), "{text}");
    assert!(text.contains("cost (measured, else target cpu)"), "{text}");
    let json = strider(&["optimize", model, "--tuning-db", log, "--threads", "1", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("only JSON on stdout");
    assert_eq!(report["tuning"]["nodes"], 1);
    assert_eq!(report["tuning"]["from_log"], 1);
    assert_eq!(report["cost_model"], "measured, else target cpu");
    let again = strider(&["tune", model, "--tuning-db", log, "--threads", "1", "--json"]);
    let tuned: serde_json::Value = serde_json::from_slice(&again.stdout).expect("only JSON on stdout");
    let node = &tuned["models"][0]["nodes"][0];
    assert_eq!(tuned["models"][0]["model"], "dcgan_l1_1to4");
    assert_eq!(node["cached"], true);
    let forms: Vec<&str> = node["forms"].as_array().unwrap().iter().map(|f| f["form"].as_str().unwrap()).collect();
    assert!(forms.contains(&"direct") && forms.contains(&"matmul"), "{forms:?}");
    assert!(node["forms"][0]["median_ms"].as_f64().unwrap() > 0.0);
    let bad = strider(&["optimize", model, "--tuning-db", log, "--cost", "flops"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("needs a CPU profile"));
}
