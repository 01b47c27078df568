//! `strider bench`: time variants of a model (the original, each forced lowering, the graph each cost
//! model extracts) prepared once and run interleaved, against the GEMM peak of this machine.

use std::collections::HashMap;
use std::fmt::Write as _;

use indicatif::{ProgressBar, ProgressStyle};
use miette::{IntoDiagnostic, miette};
use ndarray::ArrayD;
use serde::Serialize;
use strider_check::bench::{BenchOptions, BenchReport, Machine, Timing, Variant, bench};
use strider_check::numbers::{bytes, count, grouped, si};
use strider_check::table::{Align, Table};
use strider_check::tuning::TuneOptions;
use strider_ir::{Graph, Layout, Limits};
use strider_rewrite::{Lowering, OptimizeOptions, RunLimits, Strategy};

use super::optimize::CostChoice;

/// What `strider bench` compares.
pub struct BenchArgs {
    /// Forced strategies (`none` keeps the graph).
    pub strategies: Vec<Strategy>,
    /// Cost models, each extracting with every rule.
    pub costs: Vec<String>,
    /// Saturation limits.
    pub run_limits: RunLimits,
    /// Variants whose explicit sparse matrices store more elements than this are skipped.
    pub max_matrix_nnz: usize,
    /// Variants performing more than this many times the original's FLOPs are skipped (0: none).
    pub max_flops_ratio: f64,
    /// Variants whose estimated peak memory exceeds this many bytes are skipped.
    pub max_memory: u128,
    /// Timing options.
    pub options: BenchOptions,
    /// The tuning log `--cost measured` prices with (filled first where it lacks a node).
    pub tuning_db: Option<std::path::PathBuf>,
}

/// A variant that was not timed, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    /// The variant.
    pub label: String,
    /// Why.
    pub reason: String,
}

/// What a cost model picked, against the fastest variant timed.
#[derive(Clone, Debug, Serialize)]
pub struct Pick {
    /// The cost model's variant (`auto/<model>`).
    pub label: String,
    /// The timed variant its graph is (itself when it differs from every other).
    pub same_as: String,
    /// That variant's median, in milliseconds.
    pub median_ms: f64,
    /// The fastest timed variant.
    pub fastest: String,
    /// `median_ms` over the fastest median: 1 when the model picked the fastest.
    pub slowdown: f64,
}

/// A timed variant and the peak memory estimated for it before it ran.
#[derive(Clone, Debug, Serialize)]
pub struct TimedVariant {
    /// Its timing.
    #[serde(flatten)]
    pub timing: Timing,
    /// Peak memory estimated from the graph (what `--max-memory` is checked against), in bytes.
    pub estimated_peak_bytes: u128,
}

/// The benchmark with the variants left out: what `bench` prints, as a table or as JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// Model name.
    pub model: String,
    /// The machine and its GEMM peak.
    pub machine: Machine,
    /// Untimed runs of each variant first.
    pub warmup: usize,
    /// Consecutive runs of a variant per round.
    pub batch: usize,
    /// The timed variants.
    pub variants: Vec<TimedVariant>,
    /// Variants not timed.
    pub skipped: Vec<Skipped>,
    /// Each cost model's pick and its slowdown against the fastest variant.
    pub picks: Vec<Pick>,
}

/// Each `auto/…` variant's pick, following "the same graph as" to the variant that was timed.
fn picks(report: &BenchReport, aliases: &[(String, String)]) -> Vec<Pick> {
    let Some(fastest) = report.variants.iter().min_by(|a, b| a.median_ms.total_cmp(&b.median_ms)) else {
        return Vec::new();
    };
    let timed = report.variants.iter().map(|v| (v.label.clone(), v.label.clone()));
    timed
        .chain(aliases.iter().cloned())
        .filter(|(label, _)| label.starts_with("auto/"))
        .filter_map(|(label, same_as)| {
            let t = report.variants.iter().find(|v| v.label == same_as)?;
            Some(Pick {
                label,
                same_as,
                median_ms: t.median_ms,
                fastest: fastest.label.clone(),
                slowdown: t.median_ms / fastest.median_ms,
            })
        })
        .collect()
}

/// Stored elements of every explicit sparse matrix in a graph.
fn matrix_elements(graph: &Graph) -> usize {
    graph
        .values()
        .iter()
        .map(|v| match v.ty.layout {
            Layout::Csr { nnz } => nnz,
            Layout::Dense => 0,
        })
        .sum()
}

/// A graph's structure (ops, attributes and wiring), to tell variants that came out the same.
fn fingerprint(graph: &Graph) -> Vec<String> {
    graph.nodes().map(|(_, n)| format!("{:?} {:?}", n.op, n.inputs)).collect()
}

/// The graph `optimize` would write for `strategy` and `cost`, weight-only work left for the plan.
fn lower(
    graph: &Graph,
    strategy: Strategy,
    cost: &CostChoice,
    args: &BenchArgs,
    limits: &Limits,
) -> miette::Result<Graph> {
    if strategy == Strategy::None {
        return Ok(graph.clone());
    }
    let model = cost.model(true);
    let opts = OptimizeOptions {
        strategy,
        fold_constants: false,
        run_limits: args.run_limits,
        limits: *limits,
        ..Default::default()
    };
    strider_rewrite::optimize(graph, model.as_ref(), &opts).map(|o| o.graph).into_diagnostic()
}

/// Builds the variants, times them with a progress bar on a terminal, and returns the outcome.
pub fn run(
    graph: &Graph,
    inputs: &HashMap<String, ArrayD<f32>>,
    args: &BenchArgs,
    limits: &Limits,
) -> miette::Result<Outcome> {
    let mut wanted: Vec<(String, Strategy, CostChoice)> = Vec::new();
    for &s in &args.strategies {
        wanted.push((s.to_string(), s, CostChoice::Flops));
    }
    for c in &args.costs {
        let cost = match (c.as_str(), &args.tuning_db) {
            ("measured", Some(db)) => {
                let opts = TuneOptions {
                    threads: args.options.threads,
                    min_time: std::time::Duration::from_millis(500),
                    max_matrix_nnz: args.max_matrix_nnz,
                    max_flops_ratio: args.max_flops_ratio,
                    run_limits: args.run_limits,
                    retune: false,
                };
                let (measured, _) = CostChoice::parse("cpu", args.options.threads)?.measured(graph, db, &opts)?;
                wanted.push(("auto/measured".into(), Strategy::Auto, measured));
                continue;
            }
            ("measured", None) => return Err(miette!("--cost measured needs --tuning-db FILE.jsonl")),
            _ => CostChoice::parse(c, args.options.threads)?,
        };
        wanted.push((format!("auto/{}", cost.label().trim_start_matches("target ")), Strategy::Auto, cost));
    }
    if wanted.is_empty() {
        wanted.push(("none".into(), Strategy::None, CostChoice::Flops));
        wanted.extend(Lowering::ALL.map(|l| (l.name().to_string(), Strategy::Force(l), CostChoice::Flops)));
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    let flops = |g: &Graph| g.nodes().map(|(_, n)| g.node_flops(n)).sum::<u64>() as f64;
    let original_flops = flops(graph);
    let mut variants: Vec<Variant> = Vec::new();
    let mut prints: Vec<Vec<String>> = Vec::new();
    let mut skipped = Vec::new();
    let mut aliases: Vec<(String, String)> = Vec::new();
    let mut estimated_peak_bytes = Vec::new();
    for (label, strategy, cost) in wanted {
        bar.set_message(format!("lowering {label}"));
        let lowered = match lower(graph, strategy, &cost, args, limits) {
            Ok(g) => g,
            Err(e) => {
                skipped.push(Skipped { label, reason: format!("cannot be built: {e}") });
                continue;
            }
        };
        let print = fingerprint(&lowered);
        if let Some(same) = prints.iter().position(|p| *p == print) {
            aliases.push((label.clone(), variants[same].label.clone()));
            skipped.push(Skipped { label, reason: format!("the same graph as `{}`", variants[same].label) });
            continue;
        }
        let stored = matrix_elements(&lowered);
        if stored > args.max_matrix_nnz {
            let reason = format!(
                "its explicit sparse matrix stores {} elements, more than --max-matrix-nnz {}",
                si(stored as f64),
                si(args.max_matrix_nnz as f64)
            );
            skipped.push(Skipped { label, reason });
            continue;
        }
        let ratio = flops(&lowered) / original_flops.max(1.0);
        if args.max_flops_ratio > 0.0 && ratio > args.max_flops_ratio {
            let reason = format!(
                "it performs {ratio:.0}× the FLOPs of the original ({}), more than --max-flops-ratio {} (0 times it anyway)",
                si(flops(&lowered)),
                args.max_flops_ratio
            );
            skipped.push(Skipped { label, reason });
            continue;
        }
        let peak = strider_interp::memory::estimate_peak(&lowered);
        if peak.bytes > args.max_memory {
            let at = peak.node.map_or_else(String::new, |n| format!(" while `{n}` runs"));
            let reason = format!(
                "it needs an estimated {} ({} bytes){at}, more than --max-memory {} ({} bytes)",
                bytes(peak.bytes),
                grouped(peak.bytes),
                bytes(args.max_memory),
                grouped(args.max_memory)
            );
            skipped.push(Skipped { label, reason });
            continue;
        }
        estimated_peak_bytes.push(peak.bytes);
        prints.push(print);
        variants.push(Variant { label, graph: lowered });
    }
    let mut progress = |message: &str| bar.set_message(message.to_string());
    let report = bench(graph.name(), &variants, inputs, &args.options, &mut progress)
        .map_err(|e| miette!("a variant does not run: {e}"))?;
    bar.finish_and_clear();
    let picks = picks(&report, &aliases);
    let BenchReport { model, machine, warmup, batch, variants } = report;
    let variants = variants
        .into_iter()
        .zip(estimated_peak_bytes)
        .map(|(timing, estimated_peak_bytes)| TimedVariant { timing, estimated_peak_bytes })
        .collect();
    Ok(Outcome { model, machine, warmup, batch, variants, skipped, picks })
}

/// The outcome as a header and a table.
pub fn render(outcome: &Outcome) -> String {
    let m = &outcome.machine;
    let mut out = String::new();
    let _ = writeln!(out, "model `{}`", outcome.model);
    let _ = writeln!(
        out,
        "machine: {}, {}, {}; GEMM peak {:.1} GF/s ({n}×{n}×{n} sgemm through the same kernel)",
        m.cpu,
        m.simd,
        count(m.threads as u128, "thread"),
        m.gemm_peak_gflops,
        n = m.gemm_peak_size
    );
    let runs = outcome.variants.first().map_or(0, |v| v.timing.times_ms.len());
    let _ = writeln!(
        out,
        "{} per variant after {} warm-up, in rounds of {} per variant; times in ms",
        count(runs as u128, "timed run"),
        outcome.warmup,
        count(outcome.batch as u128, "consecutive run")
    );
    let _ = writeln!(out);
    let fastest = outcome.variants.iter().map(|v| v.timing.median_ms).fold(f64::INFINITY, f64::min);
    let mut table = Table::new([
        ("variant", Align::Left),
        ("nodes", Align::Right),
        ("FLOPs", Align::Right),
        ("median", Align::Right),
        ("IQR", Align::Right),
        ("min", Align::Right),
        ("vs best", Align::Right),
        ("GF/s", Align::Right),
        ("of peak", Align::Right),
        ("peak mem", Align::Right),
        ("est. total", Align::Right),
    ]);
    for v in &outcome.variants {
        let t = &v.timing;
        table.row([
            t.label.clone(),
            grouped(t.nodes as u128),
            si(t.flops as f64),
            format!("{:.3}", t.median_ms),
            format!("{:.3}", t.q3_ms - t.q1_ms),
            format!("{:.3}", t.min_ms),
            format!("{:.2}×", t.median_ms / fastest),
            format!("{:.1}", t.gflops),
            format!("{:.0}%", 100.0 * t.fraction_of_peak),
            bytes(t.peak_bytes as u128),
            bytes(v.estimated_peak_bytes),
        ]);
    }
    out.push_str(&table.text());
    for s in &outcome.skipped {
        let _ = writeln!(out, "skipped {}: {}", s.label, s.reason);
    }
    if !outcome.picks.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "cost model picks, against the fastest variant:");
        let mut picks = Table::new([
            ("cost model", Align::Left),
            ("same graph as", Align::Left),
            ("median ms", Align::Right),
            ("vs fastest", Align::Right),
            ("fastest", Align::Left),
        ])
        .indented(2);
        for p in &outcome.picks {
            picks.row([
                p.label.clone(),
                p.same_as.clone(),
                format!("{:.3}", p.median_ms),
                format!("{:.2}×", p.slowdown),
                p.fastest.clone(),
            ]);
        }
        out.push_str(&picks.text());
    }
    for v in outcome.variants.iter().filter(|v| v.timing.per_node.is_some()) {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}: time per node", v.timing.label);
        let mut nodes = Table::new([
            ("node", Align::Left),
            ("op", Align::Left),
            ("median ms", Align::Right),
            ("share", Align::Right),
        ])
        .indented(2);
        for n in v.timing.per_node.iter().flatten() {
            nodes.row([
                n.node.clone(),
                n.op.clone(),
                format!("{:.3}", n.median_ms),
                format!("{:.1}%", 100.0 * n.share),
            ]);
        }
        out.push_str(&nodes.text());
    }
    out
}
