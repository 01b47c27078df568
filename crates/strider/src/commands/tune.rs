//! `strider tune` and `--tuning-db`: every form of each ConvTranspose and Upsample timed on this
//! machine, kept in a tuning log, and used as the cost of extraction (`Measured`).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use miette::{IntoDiagnostic, miette};
use serde::Serialize;
use strider_check::numbers::count;
use strider_check::table::{Align, Table};
use strider_check::tuning::{MachineKey, TuneOptions, TunedNode, TuningDb, tune};
use strider_ir::Graph;
use strider_rewrite::cost::{CostModel, Measured};

/// Times the nodes of `graph` missing from the log at `db_path` (all of them with `retune`), with
/// a spinner on a terminal; `prior` shares each form's time among its ops.
pub fn fill(
    graph: &Graph,
    db_path: &Path,
    opts: &TuneOptions,
    prior: &dyn CostModel,
) -> miette::Result<(TuningDb, Vec<TunedNode>)> {
    let mut db = TuningDb::open(db_path).into_diagnostic()?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    let mut progress = |message: &str| bar.set_message(message.to_string());
    let nodes = tune(graph, &mut db, opts, prior, &mut progress).into_diagnostic()?;
    bar.finish_and_clear();
    Ok((db, nodes))
}

/// The measured cost model over `prior`, from the log's times for this machine and `threads`.
pub fn measured<'a>(db: &TuningDb, threads: usize, prior: &'a dyn CostModel) -> Measured<'a> {
    Measured { times_ns: db.op_times_ns(&MachineKey::here(threads)), fallback: prior }
}

/// Parses `--tune-time`.
pub fn per_node_time(seconds: f64) -> miette::Result<Duration> {
    Duration::try_from_secs_f64(seconds).map_err(|_| miette!("--tune-time must be a non-negative number of seconds"))
}

/// One model's tuned nodes, as `tune --json` writes them.
#[derive(Debug, Serialize)]
pub struct TunedModel {
    /// Model name.
    pub model: String,
    /// Its ConvTranspose and Upsample nodes with each form's time.
    pub nodes: Vec<TunedNode>,
}

/// What `tune --json` prints: every model given.
#[derive(Debug, Serialize)]
pub struct TuneReport {
    /// The models, in the order given.
    pub models: Vec<TunedModel>,
}

/// One model's tuned nodes as a table per node: each form's median and spread, and how far it is
/// from the fastest.
pub fn render(tuned: &TunedModel) -> String {
    let mut out = String::new();
    let _ =
        writeln!(out, "model `{}`: {}", tuned.model, count(tuned.nodes.len() as u128, "ConvTranspose/Upsample node"));
    for n in &tuned.nodes {
        let source = if n.cached { "from the log" } else { "timed now" };
        let _ = writeln!(out, "{} ({source}): {}", n.node, n.key);
        let mut forms = n.forms.clone();
        forms.sort_by(|a, b| a.median_ms.total_cmp(&b.median_ms));
        let best = forms.first().map_or(f64::NAN, |f| f.median_ms);
        let mut table = Table::new([
            ("form", Align::Left),
            ("median ms", Align::Right),
            ("IQR ms", Align::Right),
            ("vs best", Align::Right),
        ])
        .indented(2);
        for f in &forms {
            table.row([
                f.form.clone(),
                format!("{:.3}", f.median_ms),
                format!("{:.3}", f.q3_ms - f.q1_ms),
                format!("{:.2}×", f.median_ms / best),
            ]);
        }
        for s in &n.skipped {
            table.row([s.form.clone(), format!("not timed: {}", s.reason)]);
        }
        out.push_str(&table.text());
    }
    out
}
