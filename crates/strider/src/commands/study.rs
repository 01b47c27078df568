//! `strider study`: a research report (Markdown, JSON, SVG charts) of every lowering's cost, for the
//! ConvTranspose layers of a model or a sweep of one attribute.

use std::path::{Path, PathBuf};

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use miette::{IntoDiagnostic, miette};
use serde::Serialize;
use strider_check::study::{Study, StudyOptions, Sweep, markdown, study_model, study_sweep, write_report};
use strider_ir::Limits;
use strider_rewrite::RunLimits;
use strider_rewrite::cost::{CostModel, Flops, Target};
use strider_rewrite::explore::NamedModel;

/// What `strider study` measures with.
pub struct StudyArgs<'a> {
    /// Saturation limits of each lowering.
    pub run_limits: RunLimits,
    /// Forms with a larger explicit sparse matrix are not timed.
    pub max_matrix_nnz: usize,
    /// Forms with more than this many times the direct form's FLOPs are not timed (0: all).
    pub max_flops_ratio: f64,
    /// Forms whose estimated peak memory exceeds this many bytes are not timed.
    pub max_memory: u128,
    /// Threads of each plan (0: one per core).
    pub threads: usize,
    /// Timing per configuration.
    pub min_time: Duration,
    /// Target profiles whose picks are reported besides cpu and flops.
    pub targets: &'a [Target],
}

/// A study written to disk: what `study` prints, as Markdown or as JSON (the study as report.json has
/// it, with what was left out and where the files are).
#[derive(Debug, Serialize)]
pub struct StudyOutcome {
    /// The study.
    #[serde(flatten)]
    pub study: Study,
    /// Sweep points left out, and why.
    pub left_out: Vec<String>,
    /// The report's folder.
    pub written_to: PathBuf,
    /// The files written there.
    pub files: Vec<String>,
}

/// Studies `path` (a model, or a sweep file when it has a `vary` field) and writes the report to `out`
/// (only once everything is measured); a spinner on a terminal says what is being measured.
pub fn run(path: &Path, out: &Path, limits: &Limits, args: &StudyArgs) -> miette::Result<StudyOutcome> {
    let text = if crate::model_files::is_onnx(path) {
        String::new()
    } else {
        std::fs::read_to_string(path).map_err(|e| miette!("cannot read {}: {e}", path.display()))?
    };
    let cpu = super::optimize::cpu_profile(args.threads)?;
    let flops = Flops::default();
    let mut models = vec![
        NamedModel { name: "cpu".into(), model: &cpu as &dyn CostModel },
        NamedModel { name: "flops".into(), model: &flops },
    ];
    models.extend(args.targets.iter().map(|t| NamedModel { name: t.name.clone(), model: t }));
    let opts = StudyOptions {
        run_limits: args.run_limits,
        max_matrix_nnz: args.max_matrix_nnz,
        max_flops_ratio: args.max_flops_ratio,
        max_memory: args.max_memory,
        threads: args.threads,
        min_time: args.min_time,
        models,
    };
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    let mut progress = |message: &str| bar.set_message(message.to_string());
    let mut left_out = Vec::new();
    // The spinner is cleared before an error is reported too.
    let study = (|| {
        if text.contains("vary:") {
            let sweep = Sweep::from_ron(&text).map_err(|e| miette!("{}:{e}", path.display()))?;
            let (study, refused) = study_sweep(&sweep, &opts, &mut progress);
            left_out.extend(refused);
            Ok(study)
        } else {
            let graph = crate::model_files::load(path, limits, &Default::default())?;
            study_model(&graph, &opts, &mut progress).into_diagnostic()
        }
    })();
    bar.finish_and_clear();
    let study = study?;
    let files = write_report(&study, out).map_err(|e| miette!("{e}"))?;
    Ok(StudyOutcome { study, left_out, written_to: out.to_path_buf(), files })
}

/// The study as Markdown, with what was left out and where the files are.
pub fn render(outcome: &StudyOutcome) -> String {
    let mut text = markdown(&outcome.study);
    for n in &outcome.left_out {
        text.push_str(&format!("left out: {n}\n"));
    }
    text.push_str(&format!("written to {}: {}\n", outcome.written_to.display(), outcome.files.join(", ")));
    text
}
