//! ONNX in and out: every example round-trips RON → ONNX → RON unchanged and computes the same
//! outputs, lowered graphs export to standard ONNX that imports and runs to the original's outputs,
//! and each ONNX construct the importer translates (older opsets, constant inputs, Gemm, Resize
//! sizes, Squeeze/Unsqueeze, external data, dynamic dimensions) gives the values it should.

use std::collections::HashMap;
use std::path::Path;

use ndarray::ArrayD;
use prost::Message;
use strider::interp::{self, feeds, fold::fold_constants};
use strider::ir::format::{self, ModelFile};
use strider::ir::{Graph, Limits};
use strider::onnx::{Error, ExportOptions, ImportOptions, export, import};
use strider::rewrite::cost::{Flops, Target};
use strider::rewrite::{Lowering, RunLimits, Strategy, extract_graph, saturate};

/// Export, encode, decode, import: what a file on disk gives back.
fn through_onnx(graph: &Graph) -> Graph {
    let bytes = export::export(graph, &ExportOptions::default()).unwrap().encode_to_vec();
    let model = import::decode(&bytes, Path::new("memory.onnx")).unwrap();
    import::import(&model, Path::new("."), &ImportOptions::default()).unwrap()
}

/// The model file with every initializer's data written out, so that files that describe the same
/// numbers differently (seeded in RON, listed in ONNX) compare equal.
fn with_data(graph: &Graph) -> ModelFile {
    let mut file = format::to_model_file(graph);
    for (decl, init) in file.initializers.iter_mut().zip(graph.initializers()) {
        decl.data = format::DataSpec::Inline(init.data().unwrap().iter().copied().collect());
    }
    file
}

fn seeded(graph: &Graph, seed: u64) -> HashMap<String, ArrayD<f32>> {
    let mut inputs = HashMap::new();
    feeds::fill_missing(graph, seed, &mut inputs).unwrap();
    inputs
}

#[test]
fn every_example_round_trips_through_onnx_unchanged() {
    for dir in ["examples/models", "examples/bench"] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "ron") {
                continue;
            }
            let graph = format::load(&path, &Limits::default()).unwrap();
            let again = through_onnx(&graph);
            assert_eq!(with_data(&again), with_data(&graph), "{}", path.display());
            if dir == "examples/models" {
                let inputs = seeded(&graph, 5);
                let want = interp::run(&graph, &inputs).unwrap();
                assert_eq!(interp::run(&again, &inputs).unwrap(), want, "{}", path.display());
            }
        }
    }
}

fn lowered(graph: &Graph, lowering: Lowering) -> Graph {
    let saturated = saturate(graph, &Strategy::Force(lowering).rules(), &RunLimits::default());
    let flops = Flops::default();
    let model = Strategy::Force(lowering).model(&flops);
    extract_graph(&saturated, graph, model.as_ref(), &Limits::default(), None).unwrap().0
}

fn assert_close(what: &str, want: &[(String, ArrayD<f32>)], got: &[(String, ArrayD<f32>)]) {
    assert_eq!(want.len(), got.len(), "{what}");
    for ((name, a), (name_b, b)) in want.iter().zip(got) {
        assert_eq!((name, a.shape()), (name_b, b.shape()), "{what}");
        let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
        let worst = a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-4 * scale, "{what}: {name} differs by {worst} (scale {scale})");
    }
}

#[test]
fn every_lowering_exports_to_standard_onnx_with_the_same_outputs() {
    const STRIDER_ONLY: &[&str] =
        &["ZeroInsert", "SubpixelKernel", "PhaseKernel", "ResizeConvKernel", "ConvMatrix", "SparseMatMul"];
    for model in ["textbook", "unet_decoder", "espcn", "resize_conv", "melgan_upsampler", "decoder3d"] {
        let path = Path::new("examples/models").join(format!("{model}.ron"));
        let graph = format::load(&path, &Limits::default()).unwrap();
        let inputs = seeded(&graph, 2);
        let want = interp::run(&graph, &inputs).unwrap();
        for lowering in Lowering::ALL {
            let low = lowered(&graph, lowering);
            let what = format!("{model} {lowering:?}");
            let options = ExportOptions::default();
            let onnx = match export::export(&low, &options) {
                Ok(m) => m,
                // The explicit matrix of a large layer is refused as a dense MatMul, with the reason.
                Err(Error::Export { op: "SparseMatMul", problem, .. }) => {
                    assert!(problem.contains("--max-dense-elements"), "{what}: {problem}");
                    continue;
                }
                Err(e) => panic!("{what}: {e}"),
            };
            let ops: Vec<&str> = onnx.graph.as_ref().unwrap().node.iter().map(|n| n.op_type()).collect();
            assert!(!ops.iter().any(|op| STRIDER_ONLY.contains(op)), "{what}: {ops:?}");
            let back = import::import(&onnx, Path::new("."), &ImportOptions::default()).unwrap();
            assert_close(&what, &want, &interp::run(&back, &inputs).unwrap());
            // Folding then exporting gives the same file as exporting (which folds what it must).
            let folded = fold_constants(&low, &Limits::default()).unwrap();
            assert_close(&what, &want, &interp::run(&through_onnx(&folded), &inputs).unwrap());
        }
    }
}

#[test]
fn every_example_optimized_for_the_npu_exports_without_lowering_ops() {
    let target = Target::from_ron(&std::fs::read_to_string("examples/targets/npu.ron").unwrap()).unwrap();
    for entry in std::fs::read_dir("examples/models").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "ron") {
            continue;
        }
        let graph = format::load(&path, &Limits::default()).unwrap();
        let saturated = saturate(&graph, &Strategy::Auto.rules(), &RunLimits::default());
        let (npu, _) = extract_graph(&saturated, &graph, &target, &Limits::default(), None).unwrap();
        // Unfolded: the export folds the weight rearrangements itself.
        let onnx = export::export(&npu, &ExportOptions::default()).unwrap();
        let ops: Vec<&str> = onnx.graph.as_ref().unwrap().node.iter().map(|n| n.op_type()).collect();
        assert!(!ops.contains(&"ConvTranspose") && !ops.contains(&"ZeroInsert"), "{}: {ops:?}", path.display());
        let back = import::import(&onnx, Path::new("."), &ImportOptions::default()).unwrap();
        let inputs = seeded(&graph, 6);
        let what = path.display().to_string();
        assert_close(&what, &interp::run(&graph, &inputs).unwrap(), &interp::run(&back, &inputs).unwrap());
    }
}

#[test]
fn opsets_outside_the_range_and_features_newer_than_the_opset_are_refused() {
    let graph = format::load(Path::new("examples/models/textbook.ron"), &Limits::default()).unwrap();
    let err = export::export(&graph, &ExportOptions { opset: 9, ..Default::default() }).unwrap_err();
    assert_eq!(err.to_string(), "opset 9 is not supported for export; choose 13 to 22");
    let col2im = lowered(&graph, Lowering::Col2Im);
    let err = export::export(&col2im, &ExportOptions { opset: 17, ..Default::default() }).unwrap_err();
    assert!(err.to_string().contains("Col2Im needs opset 18 or newer (--opset)"), "{err}");
    let model = export::export(&graph, &ExportOptions { opset: 21, ..Default::default() }).unwrap();
    assert_eq!((model.ir_version(), model.opset_import[0].version()), (10, 21));
}

fn strider(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_strider")).args(args).output().expect("the strider binary runs")
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn convert_goes_both_ways_and_keeps_the_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("unet.onnx");
    let ron = dir.path().join("back.ron");
    let (onnx_s, ron_s) = (onnx.to_str().unwrap(), ron.to_str().unwrap());
    let out = strider(&["convert", "examples/models/unet_decoder.ron", "-o", onnx_s]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("model `unet_decoder`: 6 nodes, written to {onnx_s}")), "{}", text(&out));
    let out = strider(&["convert", onnx_s, "-o", ron_s]);
    assert!(out.status.success(), "{}", text(&out));
    // Large weights beside the RON file, small ones inline.
    let saved = std::fs::read_to_string(&ron).unwrap();
    assert!(saved.contains(r#"data: Npy("back.weights/up_w.npy")"#), "{saved}");
    assert!(dir.path().join("back.weights/up_w.npy").exists());
    let original = format::load(Path::new("examples/models/unet_decoder.ron"), &Limits::default()).unwrap();
    let back = format::load(&ron, &Limits::default()).unwrap();
    assert_eq!(with_data(&back), with_data(&original));
    let runs: Vec<String> = ["examples/models/unet_decoder.ron", onnx_s, ron_s]
        .iter()
        .map(|m| {
            let out = strider(&["run", m, "--seed", "4"]);
            assert!(out.status.success(), "{}", text(&out));
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with("output"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    assert_eq!(runs[0], runs[1]);
    assert_eq!(runs[0], runs[2]);
}

#[test]
fn onnx_test_directories_run_with_pb_inputs_and_expected_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    // The DCGAN generator as ONNX, lowered for the NPU to ONNX: no ConvTranspose left.
    assert!(strider(&["convert", "examples/models/dcgan_generator.ron", "-o", &p("dcgan.onnx")]).status.success());
    let out =
        strider(&["optimize", &p("dcgan.onnx"), "--cost", "examples/targets/npu.ron", "-o", &p("dcgan_npu.onnx")]);
    assert!(out.status.success(), "{}", text(&out));
    let lowered = import::load(Path::new(&p("dcgan_npu.onnx")), &ImportOptions::default()).unwrap();
    assert!(lowered.nodes().all(|(_, n)| n.op.name() != "ConvTranspose"));
    // A test directory: the original's input and output as TensorProto files.
    let data = p("test_data_set_0");
    let x = seeded(&lowered, 9).remove("z").expect("the generator's input is z");
    std::fs::create_dir(&data).unwrap();
    strider::onnx::tensor::write_file(&dir.path().join("test_data_set_0/input_0.pb"), "z", &x).unwrap();
    let out = strider(&[
        "run",
        &p("dcgan.onnx"),
        "--input",
        &format!("{data}/input_0.pb"),
        "--out",
        &data,
        "--out-format",
        "pb",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let written = format!("{data}/image.pb");
    assert!(Path::new(&written).exists(), "{}", text(&out));
    let out = strider(&["run", &p("dcgan_npu.onnx"), "--input", &format!("z={data}/input_0.pb"), "--expect", &written]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("expect image: matches"), "{}", text(&out));
    // Another input: the outputs differ, and run says so with exit code 1.
    let out = strider(&["run", &p("dcgan_npu.onnx"), "--seed", "1", "--expect", &format!("image={written}")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("expect image: MISMATCH"), "{}", text(&out));
    assert!(text(&out).contains("outputs `image` differ from the expected values beyond atol"), "{}", text(&out));
}

#[test]
fn unsupported_models_write_nothing_and_shape_bindings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out.ron");
    let out = strider(&["convert", "examples/invalid/onnx_unsupported_ops.onnx", "-o", out_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("unsupported ops: Shape (node `shape`); Gather (nodes `g1`, `g2`)"), "{}", text(&out));
    assert!(!out_path.exists());
    let out = strider(&["info", "examples/models/textbook.ron", "--shape", "x=1,1,2,2"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--shape x: RON models declare static shapes"), "{}", text(&out));
    let out = strider(&["info", "examples/models/textbook.ron", "--shape", "x=1,a"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
