//! `strider check`: it passes on every shipped example, it fails on a deliberately wrong rule (the
//! checker can fail), and its exit code gates a pipeline.

use std::collections::HashMap;
use std::process::Command;

use egg::rewrite;
use strider::check::{DEFAULT_MAX_MATRIX_NNZ, Options, Report, Tolerance, check, default_rules};
use strider::interp::feeds;
use strider::ir::op::ConvAttrs;
use strider::ir::{Graph, Limits, Op, format};
use strider::rewrite::cost::{CostModel, Flops, Target};
use strider::rewrite::explore::NamedModel;
use strider::rewrite::rules::{Lower, Matched};
use strider::rewrite::{Extractor, Lowering, Rule, RunLimits};

fn run_check(graph: &Graph, rules: &dyn Fn(Lowering) -> Vec<Rule>, models: Vec<(NamedModel, bool)>) -> Report {
    let mut inputs = HashMap::new();
    feeds::fill_missing(graph, 0, &mut inputs).unwrap();
    let opts = Options {
        tolerance: Tolerance::default(),
        per_node: true,
        seed: 0,
        run_limits: RunLimits::default(),
        extractor: Extractor::Greedy,
        models,
        rules,
        max_matrix_nnz: DEFAULT_MAX_MATRIX_NNZ,
        max_memory: u128::MAX,
        threads: 2,
    };
    check(graph, &inputs, &opts, &Limits::default(), &mut |_, _, _| {}).unwrap()
}

#[test]
fn check_passes_on_every_example() {
    let npu = Target::from_ron(&std::fs::read_to_string("examples/targets/npu.ron").unwrap()).unwrap();
    let flops = Flops::default();
    insta::glob!("../examples/models", "*.ron", |path| {
        let graph = format::load(path, &Limits::default()).unwrap();
        let models = vec![
            (NamedModel { name: "flops".into(), model: &flops as &dyn CostModel }, false),
            (NamedModel { name: "npu".into(), model: &npu }, true),
        ];
        let report = run_check(&graph, &default_rules, models);
        let failures: Vec<_> = report.rows.iter().filter(|r| !r.pass()).collect();
        assert!(failures.is_empty(), "{}: {failures:#?}", path.display());
        // Every ConvTranspose/Upsample got at least three lowerings checked on the whole model.
        let lowered =
            report.rows.iter().filter(|r| r.skipped.is_none() && r.scope == strider::check::Scope::Model).count();
        let targets = graph.nodes().filter(|(_, n)| matches!(n.op, Op::ConvTranspose(_) | Op::Upsample(_))).count();
        assert!(lowered >= 3 * targets, "{}: only {lowered} model rows for {targets} nodes", path.display());
    });
}

/// A broken zero-insertion lowering: the kernel is not flipped (valid only for symmetric kernels).
fn unflipped(m: &mut Matched) -> Option<egg::Id> {
    let Op::ConvTranspose(attrs) = &m.op else { return None };
    let (x, w) = (m.inputs[0], m.inputs[1]);
    let ws = m.shape(w)?;
    let k = ws.dims()[2];
    let simple = attrs.group == 1 && attrs.strides.iter().all(|&s| s == 1) && attrs.pads.iter().all(|&p| p == 0);
    if !simple || ws.rank() != 4 || ws.dims()[3] != k {
        return None;
    }
    let swapped = m.transpose(w, vec![1, 0, 2, 3], "swap_channels")?;
    let reach = (k - 1) as i64;
    let conv = ConvAttrs { pads: vec![reach; 4], ..Default::default() };
    m.add(Op::Conv(conv), &[x, swapped], "conv")
}

#[test]
fn a_deliberately_wrong_rule_is_caught_and_located() {
    let graph = format::load(std::path::Path::new("examples/models/textbook.ron"), &Limits::default()).unwrap();
    let wrong = |lowering: Lowering| -> Vec<Rule> {
        match lowering {
            Lowering::ZeroInsert => {
                vec![
                    rewrite!("convtranspose-to-unflipped-conv"; "(ConvTranspose ?a ?x ?w)" => { Lower::new(&["?a", "?x", "?w"], unflipped) }),
                ]
            }
            other => default_rules(other),
        }
    };
    let report = run_check(&graph, &wrong, vec![]);
    assert!(!report.pass());
    let failing: Vec<(&str, &str)> =
        report.rows.iter().filter(|r| !r.pass()).map(|r| (r.node.as_str(), r.lowering.as_str())).collect();
    assert_eq!(failing, [("up", "zero-insert"), ("up", "zero-insert")], "model and node rows both fail");
    let worst = report.rows[0].worst().unwrap();
    assert!(worst.max_abs >= 1.0, "{worst:?}");
    assert!(report.rows.iter().filter(|r| r.lowering != "zero-insert").all(|r| r.pass()));
}

#[test]
fn exit_code_gates_a_pipeline() {
    let strider = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_strider")).args(args).output().unwrap();
    let ok = strider(&["check", "examples/models/unet_decoder.ron", "--json"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let json: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(json["model"], "unet_decoder");
    assert!(json["rows"].as_array().unwrap().len() >= 6);
    let text = strider(&["check", "examples/models/unet_decoder.ron"]);
    let table = String::from_utf8_lossy(&text.stdout);
    assert!(table.contains("all ") && table.contains(" comparisons pass"), "{table}");
    // Exact equality is too strict for reordered float sums: the check must fail, with exit code 1.
    let strict = strider(&["check", "examples/models/unet_decoder.ron", "--atol", "0", "--rtol", "0"]);
    assert_eq!(strict.status.code(), Some(1));
    let table = String::from_utf8_lossy(&strict.stdout);
    assert!(table.contains("FAIL"), "{table}");
}

#[test]
fn study_writes_tables_json_and_charts() {
    let dir = tempfile::tempdir().unwrap();
    let strider = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_strider")).args(args).output().unwrap();
    let out = strider(&[
        "study",
        "examples/sweeps/stride.ron",
        "--out",
        dir.path().to_str().unwrap(),
        "--min-time",
        "0.05",
        "--threads",
        "1",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    for stride in 1..=4 {
        assert!(md.contains(&format!("## stride {stride}")), "{md}");
    }
    // Zero insertion multiplies by the inserted zeros: at stride 4 it costs far more than the direct form.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    let last = &json["configurations"][3]["measurements"];
    let flops = |name: &str| {
        last.as_array().unwrap().iter().find(|m| m["lowering"] == name).unwrap()["flops"].as_f64().unwrap()
    };
    assert!(flops("zero-insert") > 10.0 * flops("direct"));
    for m in last.as_array().unwrap() {
        assert!(m["max_abs_error"].as_f64().unwrap() < 1e-4, "{m}");
        assert!(m["q1_ms"].as_f64().unwrap() <= m["median_ms"].as_f64().unwrap(), "{m}");
        assert!(m["median_ms"].as_f64().unwrap() <= m["q3_ms"].as_f64().unwrap(), "{m}");
    }
    // The winner is the form with the smallest median; every pick's slowdown is measured against it.
    for c in json["configurations"].as_array().unwrap() {
        let ms = c["measurements"].as_array().unwrap();
        let fastest =
            ms.iter().min_by(|a, b| a["median_ms"].as_f64().unwrap().total_cmp(&b["median_ms"].as_f64().unwrap()));
        assert_eq!(c["winner"], fastest.unwrap()["lowering"], "{c}");
        let picks = c["picks"].as_array().unwrap();
        assert_eq!(picks.iter().map(|p| p["model"].as_str().unwrap()).collect::<Vec<_>>(), ["cpu", "flops"]);
        for p in picks {
            let slowdown = p["slowdown"].as_f64().unwrap();
            let picked = ms.iter().find(|m| m["lowering"] == p["lowering"]).unwrap()["median_ms"].as_f64().unwrap();
            let best = fastest.unwrap()["median_ms"].as_f64().unwrap();
            assert!((slowdown - picked / best).abs() < 1e-9 && slowdown >= 1.0, "{p}");
        }
    }
    assert!(json["setup"]["machine"]["gemm_peak_gflops"].as_f64().unwrap() > 0.0);
    assert!(json["setup"]["memory_bandwidth_gbs"].as_f64().unwrap() > 0.0);
    assert!(md.contains("## Winners") && md.contains("float64 reference"), "{md}");
    assert!(md.contains("## Conclusions") && md.contains("cost model cpu picks"), "{md}");
    // The rule over the stride: a range per winner (or one over them all), or an explicit "no clear rule".
    assert!(
        md.contains(" fastest at stride")
            || md.contains(" fastest for stride")
            || md.contains(" fastest for every stride value")
            || md.contains("no clear rule"),
        "{md}"
    );
    assert!(md.contains("[roofline.svg](roofline.svg)"), "{md}");
    for chart in ["flops.svg", "bytes.svg", "time.svg", "speedup.svg", "roofline.svg"] {
        let svg = std::fs::read_to_string(dir.path().join(chart)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("zero-insert") && svg.contains("subpixel"), "{chart}");
    }
    // The roofline: one point per timed form and configuration, and the roof.
    let timed: usize =
        json["configurations"].as_array().unwrap().iter().map(|c| c["measurements"].as_array().unwrap().len()).sum();
    let roofline = std::fs::read_to_string(dir.path().join("roofline.svg")).unwrap();
    assert_eq!(roofline.matches("<circle").count(), timed);
    assert_eq!(roofline.matches(r##"stroke="#787878""##).count(), 1, "{roofline}");
    let model =
        strider(&["study", "examples/models/melgan_upsampler.ron", "--out", dir.path().join("m").to_str().unwrap()]);
    assert!(model.status.success(), "{}", String::from_utf8_lossy(&model.stderr));
    let md = std::fs::read_to_string(dir.path().join("m/report.md")).unwrap();
    assert!(md.contains("## up1 = ConvTranspose") && md.contains("## up2 = ConvTranspose"), "{md}");
    assert!(md.contains("fastest: ") && md.contains(" of 2 layers ("), "{md}");
}

#[test]
fn study_skips_forms_over_max_memory_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strider"))
        .args(["study", "examples/sweeps/stride.ron", "--min-time", "0.01", "--threads", "1", "--max-memory", "1K"])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    for c in json["configurations"].as_array().unwrap() {
        assert_eq!(c["measurements"].as_array().unwrap().len(), 0, "{c}");
        let skipped = c["skipped"].as_array().unwrap();
        assert!(skipped.len() >= 2, "{c}");
        for s in skipped {
            let reason = s["reason"].as_str().unwrap();
            assert!(
                reason.starts_with("needs an estimated ")
                    && reason.ends_with("more than --max-memory 1.00 KiB (1,024 bytes)"),
                "{s}"
            );
        }
    }
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("not timed: direct: needs an estimated "), "{md}");
}
