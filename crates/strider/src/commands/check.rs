//! `strider check`: every lowering of every ConvTranspose and Upsample, and every optimized graph,
//! run against the original; a table (or JSON) and a non-zero exit code when anything fails.

use std::collections::HashMap;
use std::fmt::Write as _;

use indicatif::{ProgressBar, ProgressStyle};
use ndarray::ArrayD;
use strider_check::numbers::{count, si};
use strider_check::table::{Align, Table};
use strider_check::{Options, Report, Scope, Tolerance, check, default_rules};
use strider_ir::{Graph, Limits};
use strider_rewrite::cost::{CostModel, Flops, Memory, Target};
use strider_rewrite::explore::NamedModel;
use strider_rewrite::{Extractor, RunLimits};

/// Options of `strider check`.
pub struct CheckArgs<'a> {
    /// Tolerances.
    pub tolerance: Tolerance,
    /// Also check each lowered node alone.
    pub per_node: bool,
    /// Seed for per-node inputs.
    pub seed: u64,
    /// Targets whose optimized graphs are checked (besides flops and memory).
    pub targets: &'a [Target],
    /// Saturation limits.
    pub run_limits: RunLimits,
    /// The extractor of the optimized graphs.
    pub extractor: Extractor,
    /// Largest explicit matrix (stored elements) a check runs.
    pub max_matrix_nnz: usize,
    /// Largest estimated peak memory (bytes) a check runs.
    pub max_memory: u128,
    /// Threads each graph runs on (0: one per core).
    pub threads: usize,
}

/// Runs the check with a progress bar on a terminal (none when piped).
pub fn run(
    graph: &Graph,
    inputs: &HashMap<String, ArrayD<f32>>,
    args: &CheckArgs,
    limits: &Limits,
) -> miette::Result<Report> {
    let (flops, memory) = (Flops { fold_constants: false }, Memory);
    // The default of `optimize` first, so that what users get by default is always verified.
    let cpu = super::optimize::cpu_profile(args.threads)?;
    let mut models: Vec<(NamedModel, bool)> = vec![
        (NamedModel { name: "cpu".into(), model: &cpu as &dyn CostModel }, true),
        (NamedModel { name: "flops".into(), model: &flops }, false),
        (NamedModel { name: "memory".into(), model: &memory }, false),
    ];
    models.extend(args.targets.iter().map(|t| (NamedModel { name: t.name.clone(), model: t as &dyn CostModel }, true)));
    let opts = Options {
        tolerance: args.tolerance,
        per_node: args.per_node,
        seed: args.seed,
        run_limits: args.run_limits,
        extractor: args.extractor,
        models,
        rules: &default_rules,
        max_matrix_nnz: args.max_matrix_nnz,
        max_memory: args.max_memory,
        threads: args.threads,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut progress = |done: usize, total: usize, label: &str| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(label.to_string());
    };
    let report = check(graph, inputs, &opts, limits, &mut progress)
        .map_err(|e| miette::miette!("the original model does not run: {e}"))?;
    bar.finish_and_clear();
    Ok(report)
}

fn sci(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.is_finite() {
        format!("{v:.2e}")
    } else {
        "inf".into()
    }
}

/// The report as a table.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let t = report.tolerance;
    let _ = writeln!(
        out,
        "model `{}`: {}; pass when |lowered − original| ≤ {} + {}·|original| everywhere",
        report.model,
        count(report.rows.len() as u128, "comparison"),
        t.atol,
        t.rtol
    );
    for found in &report.non_finite {
        let _ = writeln!(out, "warning: {found}");
    }
    let _ = writeln!(out);
    let mut table = Table::new([
        ("node", Align::Left),
        ("lowering", Align::Left),
        ("scope", Align::Left),
        ("max abs err", Align::Right),
        ("max rel err", Align::Right),
        ("worst element", Align::Left),
        ("FLOPs", Align::Right),
        ("time", Align::Right),
        ("result", Align::Left),
    ]);
    for r in &report.rows {
        let scope = match r.scope {
            Scope::Model => "model",
            Scope::Node => "node",
            Scope::Optimized => "optimized",
        };
        let (abs, rel, at) = match (r.worst(), &r.error) {
            (_, Some(_)) | (None, _) => ("—".into(), "—".into(), "—".into()),
            (Some(c), None) => (
                sci(c.max_abs),
                sci(c.max_rel),
                format!("{}{:?} = {} (want {})", c.output, c.worst_index, c.got, c.want),
            ),
        };
        let result = match (&r.error, &r.skipped) {
            (_, Some(why)) => format!("skipped: {why}"),
            (Some(e), None) => format!("ERROR: {e}"),
            (None, None) if r.pass() => "pass".into(),
            (None, None) => {
                format!("FAIL ({})", count(r.outputs.iter().map(|c| c.mismatched).sum::<usize>() as u128, "element"))
            }
        };
        table.row([
            r.node.clone(),
            r.lowering.clone(),
            scope.into(),
            abs,
            rel,
            at,
            si(r.flops as f64),
            format!("{:.1} ms", r.time_ms),
            result,
        ]);
    }
    out.push_str(&table.text());
    let failed = report.rows.iter().filter(|r| !r.pass()).count();
    let skipped = report.rows.iter().filter(|r| r.skipped.is_some()).count();
    let ran = report.rows.len() - skipped;
    let _ = writeln!(out);
    let skipped_note = if skipped > 0 { format!(" ({skipped} skipped)") } else { String::new() };
    if failed == 0 {
        let all = if ran == 1 { "the 1 comparison passes".to_string() } else { format!("all {ran} comparisons pass") };
        let _ = writeln!(out, "{all}{skipped_note}");
    } else {
        let _ = writeln!(out, "{failed} of {ran} comparisons FAIL{skipped_note}");
    }
    out
}
