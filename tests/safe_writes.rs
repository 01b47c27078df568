//! Writing results (issue 10, part 3): an optimized model written anywhere loads and computes what
//! the original computes; weight and output files never collide; a second write leaves no stale
//! files; symlinks in the weights folder are not followed; a missing output folder is created; an
//! I/O error names its path and what was being written.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use ndarray::{ArrayD, IxDyn};
use strider::interp::{self, feeds};
use strider::ir::{Limits, format, npy};

fn strider(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strider")).args(args).output().expect("the strider binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The sorted names of the entries of `dir`.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// `a` and `b` load and give bit-identical outputs on the same seeded inputs.
fn assert_same_outputs(a: &Path, b: &Path) {
    let (ga, gb) = (format::load(a, &Limits::default()).unwrap(), format::load(b, &Limits::default()).unwrap());
    let mut inputs = HashMap::new();
    feeds::fill_missing(&ga, 3, &mut inputs).unwrap();
    let (ya, yb) = (interp::run(&ga, &inputs).unwrap(), interp::run(&gb, &inputs).unwrap());
    assert_eq!(ya, yb, "{} and {} differ", a.display(), b.display());
    assert!(ya.iter().all(|(_, y)| y.iter().any(|&v| v != 0.0)));
}

/// 18 distinct numbers: more than the 16 that stay inline.
fn values(offset: f32) -> String {
    (0..18).map(|i| format!("{:.1}", offset + i as f32)).collect::<Vec<_>>().join(", ")
}

/// A model adding two 18-element initializers named `a/b` and `a_b` (one file name once sanitised).
fn colliding_model(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("collide.ron");
    let text = format!(
        r#"(name: "collide", inputs: [(name: "x", shape: [18])],
 initializers: [(name: "a/b", shape: [18], data: Inline([{}])), (name: "a_b", shape: [18], data: Inline([{}]))],
 nodes: [(name: "add1", op: Add, inputs: ["x", "a/b"], outputs: ["t"]), (name: "add2", op: Mul, inputs: ["t", "a_b"], outputs: ["y"])],
 outputs: ["y"])"#,
        values(1.0),
        values(100.0)
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn optimize_into_another_folder_writes_a_loadable_model_with_its_own_weights() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let w = ArrayD::from_shape_vec(IxDyn(&[2, 1, 2, 2]), (1..=8).map(|v| v as f32).collect()).unwrap();
    ndarray_npy::write_npy(src.join("W.npy"), &w).unwrap();
    let model = src.join("m.ron");
    std::fs::write(
        &model,
        r#"(name: "m", inputs: [(name: "x", shape: [1, 2, 3, 3])],
 initializers: [(name: "w", shape: [2, 1, 2, 2], data: Npy("W.npy"))],
 nodes: [(name: "up", op: ConvTranspose(strides: [2, 2]), inputs: ["x", "w"], outputs: ["y"])],
 outputs: ["y"])"#,
    )
    .unwrap();
    // The destination folder does not exist yet: it is created.
    let out = dir.path().join("other/dir/out.ron");
    for strategy in ["none", "subpixel"] {
        let report =
            strider(&["optimize", model.to_str().unwrap(), "--strategy", strategy, "-o", out.to_str().unwrap()]);
        assert!(report.status.success(), "{strategy}: {}", stderr(&report));
        assert_same_outputs(&model, &out);
    }
    let saved = std::fs::read_to_string(&out).unwrap();
    assert!(!saved.contains("\"W.npy\""), "{saved}");
    // Nothing temporary is left in the destination folder.
    let listing = entries(&dir.path().join("other/dir"));
    assert!(listing.iter().all(|n| n == "out.ron" || n == "out.weights"), "{listing:?}");
}

#[test]
fn weights_with_colliding_names_get_distinct_files() {
    let dir = tempfile::tempdir().unwrap();
    let model = colliding_model(dir.path());
    let out = dir.path().join("out.ron");
    let report = strider(&["optimize", model.to_str().unwrap(), "--strategy", "none", "-o", out.to_str().unwrap()]);
    assert!(report.status.success(), "{}", stderr(&report));
    assert_eq!(entries(&dir.path().join("out.weights")), ["a_b-2.npy", "a_b.npy"]);
    let saved = std::fs::read_to_string(&out).unwrap();
    assert!(saved.contains(r#"data: Npy("out.weights/a_b.npy")"#), "{saved}");
    assert!(saved.contains(r#"data: Npy("out.weights/a_b-2.npy")"#), "{saved}");
    assert_same_outputs(&model, &out);
}

#[test]
fn a_second_write_leaves_no_stale_weights() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.ron");
    let weights = dir.path().join("out.weights");
    let first = strider(&["optimize", colliding_model(dir.path()).to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(entries(&weights).len(), 2);
    // A model with one large weight: one file left, the one it reads.
    let one = dir.path().join("one.ron");
    std::fs::write(
        &one,
        format!(
            r#"(name: "one", inputs: [(name: "x", shape: [18])],
 initializers: [(name: "w", shape: [18], data: Inline([{}]))],
 nodes: [(name: "add", op: Add, inputs: ["x", "w"], outputs: ["y"])], outputs: ["y"])"#,
            values(5.0)
        ),
    )
    .unwrap();
    let second = strider(&["optimize", one.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(entries(&weights), ["w.npy"]);
    assert!(std::fs::read_to_string(&out).unwrap().contains(r#"Npy("out.weights/w.npy")"#));
    assert_same_outputs(&one, &out);
    // A model with no large weights: the folder goes.
    let third = strider(&["optimize", "examples/models/textbook.ron", "-o", out.to_str().unwrap()]);
    assert!(third.status.success(), "{}", stderr(&third));
    assert!(!weights.exists());
    assert_eq!(entries(dir.path()), ["collide.ron", "one.ron", "out.ron"]);
}

#[cfg(unix)]
#[test]
fn a_symlink_inside_the_weights_folder_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    let weights = dir.path().join("out.weights");
    std::fs::create_dir(&weights).unwrap();
    for name in ["a_b.npy", "a_b-2.npy"] {
        std::os::unix::fs::symlink(&victim, weights.join(name)).unwrap();
    }
    let out = dir.path().join("out.ron");
    let model = colliding_model(dir.path());
    let report = strider(&["optimize", model.to_str().unwrap(), "--strategy", "none", "-o", out.to_str().unwrap()]);
    assert!(report.status.success(), "{}", stderr(&report));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    assert!(!std::fs::symlink_metadata(weights.join("a_b.npy")).unwrap().file_type().is_symlink());
    assert_same_outputs(&model, &out);
}

#[test]
fn run_out_gives_each_output_its_own_file_in_a_created_folder() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("two.ron");
    std::fs::write(
        &model,
        r#"(name: "two", inputs: [(name: "x", shape: [2])],
 nodes: [(name: "r", op: Relu, inputs: ["x"], outputs: ["a/b"]), (name: "n", op: Tanh, inputs: ["x"], outputs: ["a_b"])],
 outputs: ["a/b", "a_b"])"#,
    )
    .unwrap();
    let x = ArrayD::from_shape_vec(IxDyn(&[2]), vec![-1.0f32, 2.0]).unwrap();
    ndarray_npy::write_npy(dir.path().join("x.npy"), &x).unwrap();
    let out = dir.path().join("missing/outputs");
    let input = format!("x={}", dir.path().join("x.npy").display());
    let run = strider(&["run", model.to_str().unwrap(), "--input", &input, "--out", out.to_str().unwrap()]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(entries(&out), ["a_b-2.npy", "a_b.npy"]);
    assert_eq!(npy::read_f32(&out.join("a_b.npy"), &[2]).unwrap().as_slice().unwrap(), &[0.0, 2.0]);
    assert_eq!(npy::read_f32(&out.join("a_b-2.npy"), &[2]).unwrap().as_slice().unwrap(), &[-1f32.tanh(), 2f32.tanh()]);
}

#[test]
fn write_errors_name_the_path_and_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "not a folder").unwrap();
    let out = blocker.join("out.ron");
    let report = strider(&["optimize", "examples/models/textbook.ron", "-o", out.to_str().unwrap()]);
    assert_eq!(report.status.code(), Some(3));
    assert!(stderr(&report).contains(&format!("cannot write folder {}", blocker.display())), "{}", stderr(&report));
    let run = strider(&["run", "examples/models/textbook.ron", "--out", blocker.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(3));
    assert!(stderr(&run).contains(&format!("cannot write folder {}", blocker.display())), "{}", stderr(&run));
}
