//! `strider tune` and `--tuning-db`: every form of each ConvTranspose and Upsample timed on this
//! machine, kept in a tuning log, and used as the cost of extraction (`Measured`).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use miette::{IntoDiagnostic, miette};
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

/// One model's tuned nodes as a table: each form's median and spread, and how far it is from the
/// fastest.
pub fn render(model: &str, nodes: &[TunedNode]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "model `{model}`: {} ConvTranspose/Upsample nodes", nodes.len());
    for n in nodes {
        let source = if n.cached { "from the log" } else { "timed now" };
        let _ = writeln!(out, "{} ({source}): {}", n.node, n.key);
        let mut forms = n.forms.clone();
        forms.sort_by(|a, b| a.1.total_cmp(&b.1));
        let best = forms.first().map_or(f64::NAN, |f| f.1);
        for (form, median, q1, q3) in &forms {
            let _ = writeln!(out, "  {form:<14} {median:>10.3} ms  IQR {:>8.3}  {:>6.2}×", q3 - q1, median / best);
        }
        for (form, why) in &n.skipped {
            let _ = writeln!(out, "  {form:<14} not timed: {why}");
        }
    }
    out
}
