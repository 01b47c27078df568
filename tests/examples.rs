//! Every shipped example loads, infers shapes, runs, and saves back to the same text; `info` and the
//! saved text are snapshotted per model, and every invalid example fails with the message it documents.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use strider::interp::{self, feeds};
use strider::ir::{Limits, format};

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../snapshots");
    s.set_prepend_module_to_snapshot(false);
    s
}

fn strider(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strider")).args(args).output().expect("the strider binary runs")
}

/// Path relative to the package root, with forward slashes, so snapshots do not depend on the machine.
fn relative(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    path.strip_prefix(root).unwrap_or(path).to_string_lossy().replace('\\', "/")
}

#[test]
fn every_example_reports_info() {
    settings().bind(|| {
        insta::glob!("../examples/models", "*.ron", |path| {
            let out = strider(&["info", &relative(path)]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            insta::assert_snapshot!("info", String::from_utf8(out.stdout).unwrap());
        });
    });
}

#[test]
fn every_example_round_trips_through_the_format() {
    settings().bind(|| {
        insta::glob!("../examples/models", "*.ron", |path| {
            let graph = format::load(path, &Limits::default()).unwrap();
            let text = format::to_ron(&format::to_model_file(&graph));
            let again = format::parse(&text, path.parent().unwrap(), &Limits::default()).unwrap();
            assert_eq!(format::to_model_file(&again), format::to_model_file(&graph));
            assert_eq!(format::to_ron(&format::to_model_file(&again)), text);
            insta::assert_snapshot!("saved", text);
        });
    });
}

#[test]
fn every_example_runs_to_finite_outputs_of_the_inferred_shape() {
    insta::glob!("../examples/models", "*.ron", |path| {
        let graph = format::load(path, &Limits::default()).unwrap();
        let mut inputs = HashMap::new();
        feeds::fill_missing(&graph, 0, &mut inputs).unwrap();
        let outputs = interp::run(&graph, &inputs).unwrap();
        assert_eq!(outputs.len(), graph.outputs().len());
        for ((name, data), &id) in outputs.iter().zip(graph.outputs()) {
            assert_eq!(name, &graph.value(id).name);
            assert_eq!(data.shape(), graph.shape(id).dims(), "{name}");
            assert!(data.iter().all(|v| v.is_finite()), "{name} has non-finite values");
            assert!(data.iter().any(|&v| v != 0.0), "{name} is all zeros");
        }
    });
}

#[test]
fn textbook_example_gives_the_textbook_answer() {
    let out = strider(&["run", "examples/models/textbook.ron", "--input", "x=examples/models/textbook_x.npy"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let graph = format::load(Path::new("examples/models/textbook.ron"), &Limits::default()).unwrap();
    let x = feeds::read_input(&graph, "x", Path::new("examples/models/textbook_x.npy")).unwrap();
    let y = interp::run(&graph, &HashMap::from([("x".to_string(), x)])).unwrap();
    assert_eq!(y[0].1.as_slice().unwrap(), &[0., 0., 1., 0., 4., 6., 4., 12., 9.]);
}

#[test]
fn every_invalid_example_fails_with_its_documented_message() {
    settings().bind(|| {
        insta::glob!("../examples/invalid", "*.ron", |path| {
            let text = std::fs::read_to_string(path).unwrap();
            let expected = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("// expect: "))
                .expect("first line documents the error");
            let out = strider(&["info", &relative(path)]);
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert_eq!(out.status.code(), Some(3), "{stderr}");
            assert!(stderr.contains(expected), "expected `{expected}` in:\n{stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
            insta::assert_snapshot!("error", stderr);
        });
    });
}

#[test]
fn every_invalid_onnx_example_fails_with_a_clear_error() {
    settings().bind(|| {
        insta::glob!("../examples/invalid", "*.onnx", |path| {
            let out = strider(&["info", &relative(path)]);
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert_eq!(out.status.code(), Some(3), "{stderr}");
            assert!(stderr.contains(&relative(path)), "the report names the file:\n{stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
            insta::assert_snapshot!("error", stderr);
        });
    });
}

#[test]
fn every_example_explores_deterministically() {
    settings().bind(|| {
        insta::glob!("../examples/models", "*.ron", |path| {
            let args = [
                "explore",
                &relative(path),
                "--target",
                "examples/targets/cpu.ron",
                "--target",
                "examples/targets/npu.ron",
            ];
            let out = strider(&args);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let text = String::from_utf8(out.stdout).unwrap();
            // Every ConvTranspose has at least the direct form and one lowering.
            assert!(!text.contains("ConvTranspose(") || text.contains("subpixel"), "{text}");
            insta::assert_snapshot!("explore", text);
        });
    });
}
