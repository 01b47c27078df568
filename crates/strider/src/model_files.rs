//! Model and tensor files in either format, chosen by extension: models as RON (`.ron`, the
//! readable form) or ONNX (`.onnx`, the exchange form); tensors as `.npy` or ONNX `TensorProto`
//! (`.pb`, as in ONNX test directories). Every command loads and saves through here.

use std::collections::BTreeMap;
use std::path::Path;

use miette::{IntoDiagnostic, miette};
use ndarray::ArrayD;
use strider_ir::format;
use strider_ir::{Graph, Limits};
use strider_onnx::{ExportOptions, ImportOptions};

use crate::diagnostic;

fn has_extension(path: &Path, extension: &str) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case(extension))
}

/// Whether `path` names an ONNX model (`.onnx`) rather than a RON one.
pub fn is_onnx(path: &Path) -> bool {
    has_extension(path, "onnx")
}

/// Whether `path` names a `TensorProto` file (`.pb`) rather than `.npy`.
pub fn is_tensor_proto(path: &Path) -> bool {
    has_extension(path, "pb")
}

/// Loads a model; `shapes` binds dynamic dimensions of ONNX inputs.
pub fn load(path: &Path, limits: &Limits, shapes: &BTreeMap<String, Vec<usize>>) -> miette::Result<Graph> {
    if is_onnx(path) {
        let options = ImportOptions { limits: *limits, shapes: shapes.clone() };
        return strider_onnx::import::load(path, &options).map_err(|e| diagnostic::onnx(path, e));
    }
    if let Some(name) = shapes.keys().next() {
        return Err(crate::exit::Usage(format!(
            "--shape {name}: RON models declare static shapes; --shape applies to .onnx models"
        ))
        .into());
    }
    diagnostic::load_model(path, limits)
}

/// Writes `graph` to `path` as ONNX or RON, complete or not at all: a RON model goes through
/// `format::save` (weights to `<stem>.weights/`, renamed into place), an ONNX one is written under a
/// temporary name and renamed.
pub fn save(graph: &Graph, path: &Path, export: &ExportOptions) -> miette::Result<()> {
    if is_onnx(path) {
        return strider_onnx::export::save(graph, path, export).map_err(|e| diagnostic::onnx(path, e));
    }
    format::save(graph, path).into_diagnostic()
}

/// Reads a tensor file of exactly `shape` (`.npy` or `.pb`) for `what` (an input or output name);
/// nothing larger than `shape` is allocated.
pub fn read_tensor(path: &Path, shape: &[usize], what: &str) -> miette::Result<ArrayD<f32>> {
    let problem = |problem: String| miette!("{what}: {problem}");
    if !is_tensor_proto(path) {
        return strider_ir::npy::read_f32(path, shape).map_err(problem);
    }
    let limits = Limits { max_elements: shape.iter().product::<usize>().max(1) };
    let (_, data) = strider_onnx::tensor::read_file(path, &limits).map_err(|e| problem(e.to_string()))?;
    if data.shape() != shape {
        return Err(problem(format!("{} has shape {:?}, expected {shape:?}", path.display(), data.shape())));
    }
    Ok(data)
}

/// The name stored in a `.pb` tensor file (ONNX test data names the value it holds).
pub fn stored_name(path: &Path) -> miette::Result<String> {
    let bytes = std::fs::read(path).map_err(|e| miette!("cannot read {}: {e}", path.display()))?;
    let name =
        strider_onnx::tensor::name_of(&bytes).map_err(|e| miette!("{} is not a TensorProto: {e}", path.display()))?;
    if name.is_empty() {
        return Err(miette!("{} stores no tensor name; give it as NAME={}", path.display(), path.display()));
    }
    Ok(name)
}

/// Writes a tensor as `.npy` or `.pb` (by `path`'s extension).
pub fn write_tensor(path: &Path, name: &str, data: &ArrayD<f32>) -> miette::Result<()> {
    if is_tensor_proto(path) {
        return strider_onnx::tensor::write_file(path, name, data).into_diagnostic();
    }
    strider_ir::output::replace_npy(path, data, &format!("tensor `{name}`")).into_diagnostic()
}
