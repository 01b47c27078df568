//! Memory a model asks for (issue 10, part 1): an allocation the system refuses (a weight, a seeded
//! input) is an error naming what needed it, with exit code 3, never an abort; and what needs only
//! shapes (`info`, `optimize` without folding) never produces or reads weight data. Each model here is
//! a few bytes asking for terabytes, so a test passes only if nothing is allocated or read.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use strider::interp::{Plan, PlanOptions, fold::fold_constants};
use strider::ir::{Limits, format};

/// 2⁴⁰ elements: 4 TiB of f32, more than any machine running these tests grants.
const HUGE: usize = 1 << 40;

fn strider(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strider")).args(args).output().expect("the strider binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A model `y = x + transpose(w)` with `x` of one element and `w` of [`HUGE`] elements given by `data`.
fn model(dir: &Path, data: &str) -> PathBuf {
    let path = dir.join("huge.ron");
    let text = format!(
        r#"(name: "huge", inputs: [(name: "x", shape: [1])],
 initializers: [(name: "w", shape: [{HUGE}], data: {data})],
 nodes: [(name: "t", op: Transpose(), inputs: ["w"], outputs: ["wt"]), (name: "add", op: Add, inputs: ["x", "wt"], outputs: ["y"])],
 outputs: ["y"])"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A `.npy` file whose header declares [`HUGE`] float32s and whose length fits: sparse, so it takes
/// no disk space, but reading it whole would need 4 TiB of memory.
fn sparse_npy(path: &Path) {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({HUGE},), }}");
    let padded = (10 + dict.len() + 1).div_ceil(64) * 64;
    let header = format!("{dict:<width$}\n", width = padded - 10 - 1);
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(b"\x93NUMPY\x01\x00").unwrap();
    file.write_all(&(header.len() as u16).to_le_bytes()).unwrap();
    file.write_all(header.as_bytes()).unwrap();
    file.set_len(padded as u64 + HUGE as u64 * 4).unwrap();
}

const MAX_ELEMENTS: &str = "1099511627776";
const MAX_MEMORY: &str = "1000000T";

#[test]
fn info_reads_only_the_headers_of_npy_weights() {
    let dir = tempfile::tempdir().unwrap();
    sparse_npy(&dir.path().join("w.npy"));
    let path = model(dir.path(), r#"Npy("w.npy")"#);
    let path = path.to_str().unwrap();
    let out = strider(&["info", path, "--max-elements", MAX_ELEMENTS]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&HUGE.to_string()));
    // The data is read when a run needs it: then 4 TiB are asked for, and refused with an error.
    let out = strider(&["run", path, "--max-elements", MAX_ELEMENTS, "--max-memory", MAX_MEMORY]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("initializer `w`") && err.contains("cannot allocate 1099511627776 elements"), "{err}");
}

#[test]
fn generated_weights_too_large_to_allocate_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = model(dir.path(), "Fill(0.5)");
    let limits = Limits { max_elements: HUGE };
    let graph = format::load(&path, &limits).unwrap();
    let w = &graph.initializers()[0];
    let err = w.data().unwrap_err().to_string();
    assert_eq!(
        err,
        "initializer `w`: cannot allocate 1099511627776 elements (4398046511104 bytes): the system refused the memory"
    );
    assert!(!w.is_loaded());
    // Constant folding, a plan's copy of the weights: the same error, no abort.
    let err = fold_constants(&graph, &limits).unwrap_err().to_string();
    assert!(err.starts_with("initializer `w`: cannot allocate 1099511627776 elements"), "{err}");
    let err = Plan::new(&graph, &PlanOptions::default()).err().expect("refused").to_string();
    assert!(err.starts_with("initializer `w`: cannot allocate 1099511627776 elements"), "{err}");
    // The CLI: exit code 3 and the same message.
    let path = path.to_str().unwrap();
    for args in [
        &["run", path, "--max-elements", MAX_ELEMENTS, "--max-memory", MAX_MEMORY][..],
        &["optimize", path, "--max-elements", MAX_ELEMENTS, "--fold-constants"][..],
    ] {
        let out = strider(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("cannot allocate 1099511627776 elements"), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn seeded_inputs_too_large_to_allocate_are_errors() {
    // No `--input`: the commands that run fill the graph input with seeded values, 4 TiB of them.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge_input.ron");
    let text = format!(
        r#"(name: "huge_input", inputs: [(name: "x", shape: [{HUGE}])],
 nodes: [(name: "t", op: Transpose(), inputs: ["x"], outputs: ["y"])], outputs: ["y"])"#
    );
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap();
    for command in ["run", "check", "bench"] {
        let out = strider(&[command, path, "--max-elements", MAX_ELEMENTS, "--max-memory", MAX_MEMORY]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{command}: {err}");
        assert!(
            err.contains(
                "input `x`: cannot allocate 1099511627776 elements (4398046511104 bytes): the system refused the memory"
            ),
            "{command}: {err}"
        );
        assert!(!err.contains("memory allocation") && !err.contains("panicked"), "{command}: {err}");
    }
}

#[test]
fn optimizing_without_folding_never_produces_weight_data() {
    // The e-graph holds no copy of a constant: the weight is shared, or stays deferred until used.
    let dir = tempfile::tempdir().unwrap();
    sparse_npy(&dir.path().join("w.npy"));
    let generated = model(dir.path(), "Fill(0.5)");
    let limits = Limits { max_elements: HUGE };
    let graph = format::load(&generated, &limits).unwrap();
    let opts = strider::rewrite::OptimizeOptions { limits, ..Default::default() };
    let optimized = strider::rewrite::optimize(&graph, &strider::rewrite::cost::Flops::default(), &opts).unwrap();
    assert!(optimized.graph.initializers().iter().all(|i| !i.is_loaded()));
    assert!(graph.initializers().iter().all(|i| !i.is_loaded()));
    // Written back, a generator stays a generator: nothing is allocated (the flops cost model does not
    // fold; the built-in cpu profile folds weight-only work, which needs the data).
    let out_path = dir.path().join("out/o.ron");
    let out = strider(&[
        "optimize",
        generated.to_str().unwrap(),
        "--max-elements",
        MAX_ELEMENTS,
        "--cost",
        "flops",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&out_path).unwrap().contains("data: Fill(0.5)"));
}
