//! Rewriting within its limits (issue 10, part 2): a rule that would add more e-nodes than one
//! application may, or than the node limit leaves room for, declines first and says why in
//! `explore`; `optimize` with small limits finishes quickly on the cases that used to run for
//! half a minute and abort at 4 GiB.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn strider(args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_strider")).args(args).output().expect("the strider binary runs");
    (out, started.elapsed())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Nearest Upsample 1×1 → 1024×1024: as a ConvTranspose, a million phases.
const UPSAMPLE_1024: &str = r#"(name: "up1024", inputs: [(name: "x", shape: [1, 1, 1, 1])],
 nodes: [(name: "up", op: Upsample(scales: [1.0, 1.0, 1024.0, 1024.0]), inputs: ["x"], outputs: ["y"])],
 outputs: ["y"])"#;

/// A stride-65536 1-D ConvTranspose: 65536 phases.
const STRIDE_65536: &str = r#"(name: "s65536", inputs: [(name: "x", shape: [1, 1, 4])],
 initializers: [(name: "w", shape: [1, 1, 65536], data: Fill(1.0))],
 nodes: [(name: "up", op: ConvTranspose(strides: [65536]), inputs: ["x", "w"], outputs: ["y"])],
 outputs: ["y"])"#;

/// Stride 32×32 (FCN-32s): 1024 phases, within one application's bound but not within 1000 nodes.
const STRIDE_32: &str = r#"(name: "s32", inputs: [(name: "x", shape: [1, 2, 2, 2])],
 initializers: [(name: "w", shape: [2, 2, 64, 64], data: Fill(0.5))],
 nodes: [(name: "up", op: ConvTranspose(strides: [32, 32], pads: [16, 16, 16, 16]), inputs: ["x", "w"], outputs: ["y"])],
 outputs: ["y"])"#;

/// E-nodes at the end of saturation, from optimize's report.
fn final_nodes(report: &str) -> usize {
    let line = report.lines().find(|l| l.starts_with("e-graph: ")).expect("an e-graph line");
    line["e-graph: ".len()..].split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn optimize_with_small_limits_finishes_quickly_and_within_them() {
    let dir = tempfile::tempdir().unwrap();
    for (name, model) in [("up1024", UPSAMPLE_1024), ("s65536", STRIDE_65536), ("s32", STRIDE_32)] {
        let path = dir.path().join(format!("{name}.ron"));
        std::fs::write(&path, model).unwrap();
        let out = dir.path().join(format!("{name}.out.ron"));
        let args = ["--time-limit", "1", "--node-limit", "1000", "--iter-limit", "2"];
        let (run, took) =
            strider(&[&["optimize", path.to_str().unwrap(), "-o", out.to_str().unwrap()][..], &args].concat());
        assert_eq!(run.status.code(), Some(0), "{name}: {}", text(&run.stderr));
        assert!(took < Duration::from_secs(20), "{name} took {took:?}");
        let report = text(&run.stdout);
        assert!(final_nodes(&report) <= 1000, "{name}: {report}");
        // The written model runs.
        let (again, _) = strider(&["run", out.to_str().unwrap()]);
        assert_eq!(again.status.code(), Some(0), "{name}: {}", text(&again.stderr));
    }
}

#[test]
fn explore_says_why_a_lowering_declined() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            UPSAMPLE_1024,
            &[][..],
            "declined: convtranspose-to-exact-phase-convs on `y`: would add about 6291464 e-nodes (1048576 phases of \
             strides [1024, 1024]); one rule application may add at most 8192",
        ),
        (
            STRIDE_65536,
            &[],
            "would add about 393224 e-nodes (65536 phases of strides [65536]); one rule application may add at most 8192",
        ),
        (
            STRIDE_32,
            &["--node-limit", "1000"],
            "would add about 6152 e-nodes (1024 phases of strides [32, 32]); the e-graph's node limit leaves room for",
        ),
    ];
    for (i, (model, args, expected)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("m{i}.ron"));
        std::fs::write(&path, model).unwrap();
        let (run, _) = strider(&[&["explore", path.to_str().unwrap()][..], args].concat());
        assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
        let report = text(&run.stdout);
        assert!(report.contains(expected), "{expected}\nmissing from:\n{report}");
    }
    // A kernel built from resize factors is bounded too: 64 channels × 1024 × 1024 ones.
    let path = dir.path().join("wide.ron");
    std::fs::write(&path, UPSAMPLE_1024.replace("[1, 1, 1, 1]", "[1, 64, 1, 1]")).unwrap();
    let (run, took) = strider(&["explore", path.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let expected = "declined: upsample-nearest-to-depthwise-convtranspose on `y`: would create a ones kernel \
                    [64, 1, 1024, 1024] of 67108864 elements; one rule application may create at most 4194304";
    assert!(text(&run.stdout).contains(expected), "{}", text(&run.stdout));
    // Within the bound, the exact phases are there: FCN-32s's 1024 phases under the default limits.
    let path = dir.path().join("m2.ron");
    let (run, _) = strider(&["explore", path.to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json["nodes"][0]["declined"], serde_json::json!([]));
}
