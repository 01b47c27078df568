//! The command line as a user meets it: outputs, files written, exit codes and error messages.

use std::process::{Command, Output};

use strider::ir::npy;

fn strider(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strider")).args(args).output().expect("the strider binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../snapshots");
    s.set_prepend_module_to_snapshot(false);
    s
}

#[test]
fn help_and_version_are_there() {
    let help = strider(&["--help"]);
    assert!(help.status.success());
    for command in ["run", "info", "dot"] {
        assert!(stdout(&help).contains(command), "{}", stdout(&help));
    }
    let version = strider(&["--version"]);
    assert_eq!(stdout(&version).trim(), format!("strider {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn run_writes_each_output_as_npy() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = strider(&[
        "run",
        "examples/models/textbook.ron",
        "--input",
        "x=examples/models/textbook_x.npy",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("output y [1, 1, 3, 3]: min 0.000000 max 12.000000 mean 4.000000"),
        "{}",
        stdout(&out)
    );
    let y = npy::read_f32(&out_dir.join("y.npy"), &[1, 1, 3, 3]).unwrap();
    assert_eq!(y.as_slice().unwrap(), &[0., 0., 1., 0., 4., 6., 4., 12., 9.]);
}

#[test]
fn seeded_inputs_are_value_stable_and_announced() {
    // These numbers pin the generator: they must not change between versions or machines.
    let first = strider(&["run", "examples/models/textbook.ron", "--seed", "7"]);
    let again = strider(&["run", "examples/models/textbook.ron", "--seed", "7"]);
    let other = strider(&["run", "examples/models/textbook.ron", "--seed", "8"]);
    assert!(first.status.success());
    assert_eq!(stdout(&first), stdout(&again));
    assert_ne!(stdout(&first), stdout(&other));
    assert!(stdout(&first).contains("input  x [1, 1, 2, 2]: seeded uniform [-1, 1) (seed 7"));
    settings().bind(|| insta::assert_snapshot!("run_textbook_seed_7", stdout(&first)));
}

#[test]
fn run_refuses_bad_inputs_with_a_message_and_exit_code() {
    let wrong_shape =
        strider(&["run", "examples/models/unet_decoder.ron", "--input", "x=examples/models/textbook_x.npy"]);
    assert_eq!(wrong_shape.status.code(), Some(3));
    assert!(
        stderr(&wrong_shape)
            .contains("input `x`: examples/models/textbook_x.npy has shape [1, 1, 2, 2], expected [1, 128, 16, 16]"),
        "{}",
        stderr(&wrong_shape)
    );
    let unknown = strider(&["run", "examples/models/textbook.ron", "--input", "nope=examples/models/textbook_x.npy"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("input `nope`: the graph has no input of this name (its inputs: x)"),
        "{}",
        stderr(&unknown)
    );
    let malformed = strider(&["run", "examples/models/textbook.ron", "--input", "x"]);
    assert_eq!(malformed.status.code(), Some(2));
    assert!(
        stderr(&malformed).contains("--input expects NAME=FILE (.npy or .pb) or a .pb file, found `x`"),
        "{}",
        stderr(&malformed)
    );
    let missing = strider(&["run", "examples/models/textbook.ron", "--input", "x=missing.npy"]);
    assert_eq!(missing.status.code(), Some(3));
    assert!(stderr(&missing).contains("cannot open missing.npy"), "{}", stderr(&missing));
}

#[test]
fn missing_model_file_and_bad_usage() {
    let out = strider(&["info", "no/such/model.ron"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("cannot read no/such/model.ron"), "{}", stderr(&out));
    let usage = strider(&["run"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(stderr(&usage).contains("MODEL"), "{}", stderr(&usage));
}

#[test]
fn element_limit_is_configurable() {
    let out = strider(&["run", "examples/models/dcgan_generator.ron", "--max-elements", "10000"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("`w1` would have shape [100, 512, 4, 4] (819200 elements), over the limit of 10000"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dot_draws_inputs_weights_ops_and_outputs() {
    let out = strider(&["dot", "examples/models/unet_decoder.ron"]);
    assert!(out.status.success());
    settings().bind(|| insta::assert_snapshot!("dot_unet_decoder", stdout(&out)));
}

#[test]
fn no_panics_on_garbage() {
    let dir = tempfile::tempdir().unwrap();
    for (i, text) in
        ["", "(", "garbage", "(name: 3)", "\u{0}\u{1}", "(name: \"x\", inputs: [], nodes: [], outputs: [])"]
            .iter()
            .enumerate()
    {
        let path = dir.path().join(format!("g{i}.ron"));
        std::fs::write(&path, text).unwrap();
        let out = strider(&["run", path.to_str().unwrap()]);
        assert!(!stderr(&out).contains("panicked"), "{text:?}: {}", stderr(&out));
        assert!(out.status.code() == Some(0) || out.status.code() == Some(3), "{text:?}");
    }
}

#[test]
fn dot_shows_the_key_attributes_of_each_op() {
    let out = strider(&["dot", "examples/models/dcgan_generator.ron"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    // up1 has no pads or strides written: the kernel comes from the weight, the rest are ONNX's defaults.
    assert!(text.contains(r#"label = "ConvTranspose\nup1\nkernel 4×4 stride 1×1\npads 0,0,0,0""#), "{text}");
    assert!(text.contains(r#"label = "ConvTranspose\nup2\nkernel 4×4 stride 2×2\npads 1,1,1,1""#), "{text}");
    let upsample = strider(&["dot", "examples/models/resize_conv.ron"]);
    assert!(stdout(&upsample).contains("\\nscales 1,1,2,2\\nnearest"), "{}", stdout(&upsample));
}

#[test]
fn dot_egraph_shows_the_lowerings_side_by_side() {
    let out = strider(&["dot", "--egraph", "examples/models/textbook.ron"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("digraph egraph"), "{text}");
    assert!(text.contains("rankdir = LR"), "{text}");
    // The output class `y` holds the ConvTranspose and its lowerings, drawn bold.
    assert!(
        text.contains(r#"graph [penwidth = 2, style = "dashed,rounded", color = gray50, label = "y [1, 1, 3, 3]"]"#),
        "{text}"
    );
    for op in ["\"ConvTranspose\\n", "\"Conv\\n", "\"Col2Im\\n", "\"SubpixelKernel\\n", "\"input x\"", "\"weight k\""] {
        assert!(text.contains(op), "{op} missing from\n{text}");
    }
    // Labels are short lines (op, kernel, pads), not the op's whole attribute list, so the drawing
    // stays narrow.
    for line in text.lines().filter(|l| l.contains("label = ")) {
        let label = line.split("label = \"").nth(1).unwrap_or_default();
        assert!(label.split("\\n").all(|part| part.chars().count() <= 32), "{line}");
    }
    let clusters = text.matches("subgraph cluster_").count();
    assert!((5..=30).contains(&clusters), "{clusters} clusters:\n{text}");
}

#[test]
fn dot_egraph_refuses_an_e_graph_too_large_to_read_with_advice() {
    let out = strider(&["dot", "--egraph", "examples/models/dcgan_generator.ron"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    let message = stderr(&out);
    assert!(message.contains("the saturated e-graph of `dcgan_generator`"), "{message}");
    assert!(message.contains("more than the 60 e-nodes") && message.contains("`strider explore`"), "{message}");
}

#[test]
fn info_json_has_the_nodes_shapes_and_totals() {
    let out = strider(&["info", "examples/models/dcgan_generator.ron", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("only JSON on stdout");
    assert_eq!(info["model"], "dcgan_generator");
    assert_eq!(info["inputs"][0], serde_json::json!({"name": "z", "shape": [1, 100, 1, 1]}));
    assert_eq!(info["outputs"][0]["shape"], serde_json::json!([1, 3, 64, 64]));
    assert_eq!(info["initializers"], 21);
    let nodes = info["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 14);
    let up2 = &nodes[3];
    assert_eq!((up2["name"].as_str(), up2["op"].as_str()), (Some("up2"), Some("ConvTranspose")));
    assert_eq!(up2["attributes"]["strides"], serde_json::json!([2, 2]));
    assert_eq!(up2["outputs"][0]["shape"], serde_json::json!([1, 256, 8, 8]));
    assert_eq!((up2["parameters"].as_u64(), up2["flops"].as_u64()), (Some(2_097_152), Some(67_108_864)));
    assert_eq!(info["total_parameters"], 3_578_624);
    assert_eq!(info["total_flops"], 209_637_376);
    assert_eq!(info["estimated_peak_bytes"], 15_756_688);
    assert_eq!(info["peak_node"], "up4");
}

#[test]
fn info_counts_in_words_and_readable_numbers() {
    let text = stdout(&strider(&["info", "examples/models/textbook.ron"]));
    assert!(text.starts_with("graph `textbook`: 1 node, 1 initializer\n"), "{text}");
    let text = stdout(&strider(&["info", "examples/models/dcgan_generator.ron"]));
    assert!(text.contains("estimated peak memory: 15.03 MiB (while `up4` runs)"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("total") && l.ends_with("3,578,624  209.64M")), "{text}");
}

#[test]
fn run_json_has_each_output_with_its_shape_and_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let out = strider(&[
        "run",
        "examples/models/textbook.ron",
        "--seed",
        "7",
        "--json",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("only JSON on stdout");
    assert_eq!(report["model"], "textbook");
    assert_eq!(report["nodes"], 1);
    assert_eq!(
        report["inputs"][0],
        serde_json::json!({"name": "x", "shape": [1, 1, 2, 2], "source": "seeded", "seed": 7})
    );
    let y = &report["outputs"][0];
    assert_eq!(y["name"], "y");
    assert_eq!(y["shape"], serde_json::json!([1, 1, 3, 3]));
    assert_eq!(y["stats"]["elements"], 9);
    // The same numbers as the text report (run_textbook_seed_7).
    assert!((y["stats"]["min"].as_f64().unwrap() + 3.414873).abs() < 1e-6, "{y}");
    assert!((y["stats"]["max"].as_f64().unwrap() - 0.979190).abs() < 1e-6, "{y}");
    let written = y["written_to"].as_str().unwrap();
    assert!(written.ends_with("y.npy"), "{written}");
    // A reference equal to the output matches; a reference from another seed does not, and the
    // report still comes out, with exit code 1.
    let same =
        strider(&["run", "examples/models/textbook.ron", "--seed", "7", "--json", "--expect", &format!("y={written}")]);
    assert!(same.status.success(), "{}", stderr(&same));
    let same: serde_json::Value = serde_json::from_slice(&same.stdout).unwrap();
    assert_eq!(same["expected"][0]["pass"], true);
    assert_eq!(same["expected"][0]["mismatched"], 0);
    let other =
        strider(&["run", "examples/models/textbook.ron", "--seed", "8", "--json", "--expect", &format!("y={written}")]);
    assert_eq!(other.status.code(), Some(1));
    let other: serde_json::Value = serde_json::from_slice(&other.stdout).unwrap();
    assert_eq!(other["expected"][0]["pass"], false);
    assert_eq!(other["expected"][0]["output"], "y");
}

#[test]
fn optimize_json_has_the_graph_before_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let written = dir.path().join("o.ron");
    let out = strider(&[
        "optimize",
        "examples/models/textbook.ron",
        "--cost",
        "flops",
        "--strategy",
        "col2im",
        "--json",
        "-o",
        written.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("only JSON on stdout");
    assert_eq!((report["model"].as_str(), report["strategy"].as_str()), (Some("textbook"), Some("col2im")));
    assert_eq!(report["cost_model"], "flops");
    assert_eq!(report["before"]["ops"], serde_json::json!({"ConvTranspose": 1}));
    assert_eq!((report["before"]["nodes"].as_u64(), report["before"]["flops"].as_u64()), (Some(1), Some(32)));
    assert_eq!(report["after"]["ops"]["Col2Im"], 1);
    assert_eq!(report["after"]["ops"].get("ConvTranspose"), None);
    assert!(report["egraph"]["nodes"].as_u64().unwrap() > 4 && report["egraph"]["iterations"].as_u64().unwrap() >= 1);
    assert_eq!(report["written_to"], written.to_str().unwrap());
    assert!(written.exists());
    let table = stdout(&strider(&["optimize", "examples/models/unet_decoder.ron", "--cost", "flops"]));
    assert!(table.lines().any(|l| l.starts_with("FLOPs") && l.contains("243.60M")), "{table}");
    assert!(table.contains(" e-nodes, ") && table.contains(" e-classes after "), "{table}");
}

#[test]
fn optimize_and_explore_with_the_exact_extractor_report_the_greedy_cost_beside_it() {
    let model = "examples/models/dcgan_generator.ron";
    let out = strider(&["optimize", model, "--cost", "examples/targets/npu.ron", "--extractor", "exact", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("only JSON on stdout");
    let extraction = &report["extraction"];
    assert_eq!(extraction["extractor"], "exact");
    assert_eq!(extraction["fallback"], serde_json::Value::Null);
    let (cost, greedy) = (extraction["cost"].as_f64().unwrap(), extraction["greedy_cost"].as_f64().unwrap());
    assert!(cost > 0.0 && cost <= greedy, "{extraction}");
    assert!(extraction["exact_s"].is_f64() && extraction["greedy_s"].is_f64(), "{extraction}");
    let text = stdout(&strider(&["optimize", model, "--cost", "examples/targets/npu.ron", "--extractor", "exact"]));
    assert!(text.contains("extractor: exact (optimal): cost 54.65M, greedy 54.65M, gap 0 (0.00%)"), "{text}");
    let greedy = stdout(&strider(&["optimize", model, "--cost", "examples/targets/npu.ron"]));
    assert!(greedy.lines().any(|l| l == "extractor: greedy"), "{greedy}");
    let explored = stdout(&strider(&["explore", "examples/models/textbook.ron", "--extractor", "exact"]));
    assert!(explored.contains("whole model, exact extraction:"), "{explored}");
    assert!(explored.lines().any(|l| l.starts_with("  flops") && l.ends_with("optimal")), "{explored}");
    let wrong = strider(&["optimize", model, "--extractor", "ilp"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(stderr(&wrong).contains("unknown extractor `ilp`; expected greedy or exact"), "{}", stderr(&wrong));
}

#[test]
fn explore_matrix_shows_the_textbook_convolution_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let mtx = dir.path().join("c.mtx");
    let out =
        strider(&["explore", "examples/models/textbook.ron", "--matrix", "up", "--matrix-out", mtx.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("C for `up`: 4 × 9"), "{text}");
    assert!(text.contains(" 0.000  1.000      .  2.000  3.000      .      .      .      ."), "{text}");
    let market = std::fs::read_to_string(&mtx).unwrap();
    assert!(market.starts_with("%%MatrixMarket matrix coordinate real general"), "{market}");
    assert!(market.contains("\n4 9 16\n"), "{market}");
    let wrong = strider(&["explore", "examples/models/unet_decoder.ron", "--matrix", "cat"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(stderr(&wrong).contains("node `cat` is a Concat, not a ConvTranspose"), "{}", stderr(&wrong));
}

#[test]
fn explore_json_is_machine_readable() {
    let out =
        strider(&["explore", "examples/models/unet_decoder.ron", "--json", "--target", "examples/targets/npu.ron"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("valid JSON");
    assert_eq!(json["model"], "unet_decoder");
    assert_eq!(json["models"], serde_json::json!(["flops", "memory", "npu"]));
    let node = &json["nodes"][0];
    assert_eq!(node["node"], "up");
    let lowerings: Vec<&str> =
        node["variants"].as_array().unwrap().iter().map(|v| v["lowering"].as_str().unwrap()).collect();
    assert_eq!(lowerings, ["direct", "zero-insert", "sparse-matmul", "col2im", "subpixel", "matmul"]);
    // Op counts, costs and picks are named objects: the NPU cannot run the direct form and picks a
    // lowering.
    assert_eq!(node["variants"][0]["ops"], serde_json::json!([{"op": "ConvTranspose", "count": 1}]));
    assert_eq!(node["variants"][0]["costs"][2], serde_json::json!({"model": "npu", "cost": null}));
    let npu = node["picks"].as_array().unwrap().iter().find(|p| p["model"] == "npu").unwrap();
    assert_ne!(npu["lowering"], "direct");
    assert!(json["sizes"][0]["nodes"].as_u64().unwrap() > 0 && json["sizes"][0]["classes"].is_u64());
}

#[test]
fn bench_times_each_variant_and_reports_as_json() {
    let out = strider(&[
        "bench",
        "examples/models/textbook.ron",
        "--strategy",
        "none",
        "--strategy",
        "col2im",
        "--strategy",
        "matmul",
        "--runs",
        "7",
        "--batch",
        "3",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--per-node",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["model"], "textbook");
    assert_eq!(report["machine"]["threads"], 1);
    assert!(report["machine"]["gemm_peak_gflops"].as_f64().unwrap() > 0.0);
    let variants = report["variants"].as_array().unwrap();
    let labels: Vec<&str> = variants.iter().map(|v| v["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["none", "col2im"]);
    for v in variants {
        // 7 runs in rounds of 3: 3 + 3 + 1.
        assert_eq!(v["times_ms"].as_array().unwrap().len(), 7);
        let (q1, median, q3) =
            (v["q1_ms"].as_f64().unwrap(), v["median_ms"].as_f64().unwrap(), v["q3_ms"].as_f64().unwrap());
        assert!(v["min_ms"].as_f64().unwrap() <= q1 && q1 <= median && median <= q3);
        assert!(v["peak_bytes"].as_u64().unwrap() >= 9 * 4, "the 3×3 output is alive at the end");
        assert!(!v["per_node"].as_array().unwrap().is_empty());
    }
    // A 2×2 input through a 2×2 kernel: 16 multiply-adds.
    assert_eq!(variants[0]["flops"], 32);
    // The MatMul forms need a 1×1 input or kernel = stride: neither holds, so `matmul` is the original.
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["label"], "matmul");
    assert!(skipped[0]["reason"].as_str().unwrap().contains("the same graph as `none`"));
}

#[test]
fn bench_skips_variants_with_many_times_the_flops_unless_asked() {
    // Stride 8, kernel 16: zero insertion multiplies 64 times as often as the direct form.
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("wide_stride.ron");
    std::fs::write(
        &model,
        r#"(name: "wide_stride", inputs: [(name: "x", shape: [1, 1, 3, 3])],
           initializers: [(name: "w", shape: [1, 1, 16, 16], data: Fill(0.5))],
           nodes: [(name: "up", op: ConvTranspose(strides: [8, 8], pads: [4, 4, 4, 4]), inputs: ["x", "w"], outputs: ["y"])],
           outputs: ["y"])"#,
    )
    .unwrap();
    let bench = |extra: &[&str]| {
        let mut args = vec!["bench", model.to_str().unwrap(), "--strategy", "zero-insert", "--runs", "1", "--json"];
        args.extend(extra);
        let out = strider(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap()
    };
    let default = bench(&[]);
    assert!(default["variants"].as_array().unwrap().is_empty());
    let reason = default["skipped"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("64× the FLOPs of the original"), "{reason}");
    let forced = bench(&["--max-flops-ratio", "0"]);
    assert_eq!(forced["variants"][0]["label"], "zero-insert");
}

#[test]
fn exit_codes_are_documented_in_help() {
    let help = strider(&["--help"]);
    let text = stdout(&help);
    for line in [
        "0  success",
        "1  a check or comparison failed (the numbers differ)",
        "2  usage error",
        "3  the model or an input is invalid, or it could not be read, run or written",
    ] {
        assert!(text.contains(line), "{line} missing: {text}");
    }
}

#[test]
fn tolerances_and_durations_must_be_finite_and_not_negative() {
    for (args, message) in [
        (&["--atol", "NaN"][..], "invalid value 'NaN' for '--atol <ATOL>': expected a finite number ≥ 0, found NaN"),
        (&["--atol=-1"][..], "invalid value '-1' for '--atol <ATOL>': expected a finite number ≥ 0, found -1"),
        (&["--rtol", "inf"][..], "invalid value 'inf' for '--rtol <RTOL>': expected a finite number ≥ 0, found inf"),
        (&["--time-limit=-1"][..], "expected a finite number of seconds ≥ 0, found -1"),
        (&["--time-limit", "NaN"][..], "expected a finite number of seconds ≥ 0, found NaN"),
    ] {
        let out = strider(&[&["check", "examples/models/textbook.ron"][..], args].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{args:?} ran: {}", stdout(&out));
    }
    let ratio = strider(&["bench", "examples/models/textbook.ron", "--max-flops-ratio", "NaN"]);
    assert_eq!(ratio.status.code(), Some(2));
    assert!(stderr(&ratio).contains("expected a finite number ≥ 0, found NaN"), "{}", stderr(&ratio));
}

/// A stride-4 ConvTranspose whose output (1352 elements) is smaller than every lowering's intermediates.
const SHRINKING: &str = r#"(name: "shrinking", inputs: [(name: "x", shape: [1, 2, 8, 8])],
 initializers: [(name: "w", shape: [2, 2, 4, 4], data: Uniform(seed: 1, low: -1.0, high: 1.0))],
 nodes: [(name: "up", op: ConvTranspose(strides: [4, 4], pads: [3, 3, 3, 3]), inputs: ["x", "w"], outputs: ["y"])],
 outputs: ["y"])"#;

#[test]
fn check_skips_lowerings_a_limit_refuses_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("shrinking.ron");
    std::fs::write(&model, SHRINKING).unwrap();
    let out = strider(&["check", model.to_str().unwrap(), "--max-elements", "1500"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    let table = stdout(&out);
    assert!(
        table.contains(
            "skipped: `up/y.zero_insert` would have shape [1, 2, 29, 29] (1682 elements), over the limit of 1500 elements"
        ),
        "{table}"
    );
    assert!(!table.contains("FAIL") && !table.contains("ERROR"), "{table}");
    // The optimized graphs (cpu, flops, memory) never pick a form over the limit: they run and pass.
    assert!(table.contains("all 3 comparisons pass (4 skipped)"), "{table}");
    let json = strider(&["check", model.to_str().unwrap(), "--max-elements", "1500", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.iter().filter(|r| r["skipped"].is_string()).count(), 4);
    assert!(rows.iter().all(|r| r["error"].is_null()));
}

#[test]
fn non_finite_inputs_and_weights_are_reported_and_nan_matches_only_nan() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("shrinking.ron");
    std::fs::write(&model, SHRINKING).unwrap();
    let mut x = ndarray::ArrayD::<f32>::zeros(vec![1, 2, 8, 8]);
    x[[0, 0, 3, 3]] = f32::NAN;
    x[[0, 1, 0, 0]] = f32::INFINITY;
    let x_path = dir.path().join("x.npy");
    ndarray_npy::write_npy(&x_path, &x).unwrap();
    let input = format!("x={}", x_path.display());
    let run = strider(&["run", model.to_str().unwrap(), "--input", &input]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(stderr(&run).contains("warning: input `x` holds 1 NaN and 1 infinite values (of 128)"), "{}", stderr(&run));
    assert!(stdout(&run).contains("non-finite"), "{}", stdout(&run));
    let check = strider(&["check", model.to_str().unwrap(), "--input", &input, "--per-node"]);
    let table = stdout(&check);
    assert_eq!(check.status.code(), Some(0), "{table}");
    assert!(table.contains("warning: input `x` holds 1 NaN and 1 infinite values (of 128)"), "{table}");
    // Every lowering puts NaN and the infinities exactly where the original does: they match only
    // themselves (a NaN where the original has a number fails: see strider_check::compare's tests).
    assert!(table.contains("y[0, 0, 0, 0] = -inf (want -inf)"), "{table}");
    assert!(table.contains("all 11 comparisons pass"), "{table}");
}

#[test]
fn explore_matrix_refuses_a_matrix_over_the_limit_before_building_it() {
    let out =
        strider(&["explore", "examples/models/fcn8_head.ron", "--matrix", "upscore8", "--max-matrix-nnz", "1000"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("C for `upscore8` stores 85,377,600 elements, more than --max-matrix-nnz 1,000"),
        "{}",
        stderr(&out)
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_given_as_npy_is_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("x.npy");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        return;
    }
    let input = format!("x={}", fifo.display());
    let out = strider(&["run", "examples/models/textbook.ron", "--input", &input]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("x.npy: not a regular file"), "{}", stderr(&out));
}

#[test]
fn max_memory_refuses_before_running_and_names_node_and_bytes() {
    let info = strider(&["info", "examples/models/dcgan_generator.ron"]);
    assert!(stdout(&info).contains("estimated peak memory: 15.03 MiB (while `up4` runs)"), "{}", stdout(&info));
    for command in ["run", "check", "bench"] {
        let out = strider(&[command, "examples/models/dcgan_generator.ron", "--max-memory", "1M"]);
        assert_eq!(out.status.code(), Some(3), "{command}");
        assert!(
            stderr(&out).contains(
                "model `dcgan_generator` needs an estimated 15.03 MiB (15,756,688 bytes) while node `up4` runs, \
                 more than --max-memory 1.00 MiB (1,048,576 bytes)"
            ),
            "{command}: {}",
            stderr(&out)
        );
        assert!(stdout(&out).is_empty(), "{command} ran: {}", stdout(&out));
    }
    let enough = strider(&["run", "examples/models/dcgan_generator.ron", "--max-memory", "16M"]);
    assert_eq!(enough.status.code(), Some(0), "{}", stderr(&enough));
    let bad = strider(&["run", "examples/models/dcgan_generator.ron", "--max-memory", "8X"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("expected a byte count like 8G or 1000000, found `8X`"), "{}", stderr(&bad));
}

#[test]
fn variants_over_max_memory_are_skipped_with_the_reason() {
    let check = strider(&["check", "examples/models/fcn8_head.ron", "--max-memory", "23000000"]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    let table = stdout(&check);
    assert!(
        table.contains(
            "skipped: needs an estimated 41.87 MiB (43,903,848 bytes) while `upscore8/logits.conv` runs, more than \
             --max-memory 21.93 MiB (23,000,000 bytes)"
        ),
        "{table}"
    );
    assert!(!table.contains("FAIL"), "{table}");
    let args = ["--runs", "1", "--warmup", "0", "--batch", "1", "--threads", "1", "--json", "--max-memory", "12000000"];
    let bench = strider(&[&["bench", "examples/models/unet_decoder.ron"][..], &args].concat());
    assert_eq!(bench.status.code(), Some(0), "{}", stderr(&bench));
    let json: serde_json::Value = serde_json::from_slice(&bench.stdout).unwrap();
    let skipped = json["skipped"].as_array().unwrap();
    let sparse = skipped.iter().find(|s| s["label"] == "sparse-matmul").expect("sparse-matmul skipped");
    assert!(
        sparse["reason"].as_str().unwrap().contains("more than --max-memory 11.44 MiB (12,000,000 bytes)"),
        "{sparse}"
    );
    let variants = json["variants"].as_array().unwrap();
    assert!(!variants.is_empty());
    for v in variants {
        let estimate = v["estimated_peak_bytes"].as_u64();
        assert!(estimate.is_some_and(|b| b > 0 && b <= 12_000_000), "{v}");
    }
}

#[test]
fn study_json_is_the_report_with_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = strider(&[
        "study",
        "examples/models/textbook.ron",
        "--out",
        dir.path().to_str().unwrap(),
        "--min-time",
        "0.01",
        "--threads",
        "1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let study: serde_json::Value = serde_json::from_slice(&out.stdout).expect("only JSON on stdout");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    // What is printed is report.json, plus where it went.
    assert_eq!(study["configurations"].as_array().unwrap().len(), 1);
    assert_eq!(study["configurations"][0]["label"], written["configurations"][0]["label"]);
    let direct = &study["configurations"][0]["measurements"][0];
    assert_eq!((direct["lowering"].as_str(), direct["flops"].as_u64()), (Some("direct"), Some(32)));
    assert_eq!(study["written_to"], dir.path().to_str().unwrap());
    assert!(study["files"].as_array().unwrap().iter().any(|f| f == "report.json"), "{}", study["files"]);
    assert_eq!(study["left_out"], serde_json::json!([]));
}

/// Spawns strider with its stdout a pipe, reads the first line and closes the pipe, as `| head -1`
/// does: the first line, and how strider ended.
fn first_line_then_close(args: &[&str]) -> (String, Output) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_strider"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the strider binary runs");
    let mut reader = std::io::BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    drop(reader);
    (line, child.wait_with_output().unwrap())
}

#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    // A chain of 5,000 Transposes, every value an output: each report below is over 1 MB, far more
    // than a pipe holds (64 KiB on Linux), so strider is still writing when the reader leaves.
    let dir = tempfile::tempdir().unwrap();
    let n = 5000;
    let nodes: Vec<String> = (0..n)
        .map(|i| {
            let input = if i == 0 { "x".to_string() } else { format!("v{}", i - 1) };
            format!(r#"(name: "t{i}", op: Transpose(), inputs: ["{input}"], outputs: ["v{i}"])"#)
        })
        .collect();
    let outputs: Vec<String> = (0..n).map(|i| format!("\"v{i}\"")).collect();
    let model = dir.path().join("chain.ron");
    let text = format!(
        r#"(name: "chain", inputs: [(name: "x", shape: [2, 3])], nodes: [{}], outputs: [{}])"#,
        nodes.join(", "),
        outputs.join(", ")
    );
    std::fs::write(&model, text).unwrap();
    let model = model.to_str().unwrap();
    for (args, first) in [
        (&["info", model, "--json"][..], "{\n"),
        (&["info", model][..], "graph `chain`: 5,000 nodes, 0 initializers\n"),
        (&["dot", model][..], "digraph {\n"),
        (&["run", model, "--json"][..], "{\n"),
    ] {
        let (line, out) = first_line_then_close(args);
        assert_eq!(line, first, "{args:?}");
        assert_eq!(stderr(&out), "", "{args:?}");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
    }
    // The command still finishes and exits with its own code: here a comparison that fails.
    let reference = dir.path().join("zeros.npy");
    ndarray_npy::write_npy(&reference, &ndarray::Array2::<f32>::zeros((3, 2))).unwrap();
    let expect = format!("v0={}", reference.to_str().unwrap());
    let (line, out) = first_line_then_close(&["run", model, "--json", "--expect", &expect]);
    assert_eq!(line, "{\n");
    let err = stderr(&out);
    assert!(err.contains("outputs `v0` differ from the expected values beyond atol"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
}
