//! `strider study`: a research report (Markdown, JSON, SVG charts) of every lowering's cost, for the
//! ConvTranspose layers of a model or a sweep of one attribute.

use std::path::Path;

use miette::miette;
use strider_check::study::{Sweep, markdown, study_model, study_sweep, write_report};
use strider_ir::Limits;
use strider_rewrite::RunLimits;

/// Studies `path` (a model, or a sweep file when it has a `vary` field) and writes the report to `out`.
pub fn run(
    path: &Path,
    out: &Path,
    limits: &Limits,
    run_limits: &RunLimits,
    max_matrix_nnz: usize,
    threads: usize,
) -> miette::Result<String> {
    let text = if crate::model_files::is_onnx(path) {
        String::new()
    } else {
        std::fs::read_to_string(path).map_err(|e| miette!("cannot read {}: {e}", path.display()))?
    };
    let mut notes = Vec::new();
    let study = if text.contains("vary:") {
        let sweep = Sweep::from_ron(&text).map_err(|e| miette!("{}:{e}", path.display()))?;
        let (study, refused) = study_sweep(&sweep, run_limits, max_matrix_nnz, threads);
        notes.extend(refused.into_iter().map(|r| format!("left out: {r}")));
        study
    } else {
        let graph = crate::model_files::load(path, limits, &Default::default())?;
        study_model(&graph, run_limits, max_matrix_nnz, threads)
    };
    let files = write_report(&study, out).map_err(|e| miette!("{e}"))?;
    let mut text = markdown(&study);
    for n in notes {
        text.push_str(&format!("{n}\n"));
    }
    text.push_str(&format!("written to {}: {}\n", out.display(), files.join(", ")));
    Ok(text)
}
