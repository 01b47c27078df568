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
use strider::rewrite::cost::Flops;
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
        decl.data = format::DataSpec::Inline(init.data.iter().copied().collect());
    }
    file
}

fn seeded(graph: &Graph, seed: u64) -> HashMap<String, ArrayD<f32>> {
    let mut inputs = HashMap::new();
    feeds::fill_missing(graph, seed, &mut inputs);
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
