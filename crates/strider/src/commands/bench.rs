//! `strider bench`: time variants of a model (the original, each forced lowering, the graph each cost
//! model extracts) prepared once and run interleaved, against the GEMM peak of this machine.

use std::collections::HashMap;
use std::fmt::Write as _;

use indicatif::{ProgressBar, ProgressStyle};
use miette::{IntoDiagnostic, miette};
use ndarray::ArrayD;
use serde::Serialize;
use strider_check::bench::{BenchOptions, BenchReport, Variant, bench};
use strider_check::study::si;
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

/// The benchmark with the variants left out.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// The timings.
    #[serde(flatten)]
    pub report: BenchReport,
    /// Variants not timed.
    pub skipped: Vec<Skipped>,
    /// The estimated peak memory of each timed variant, in the order of the report's variants.
    pub estimated_peak_bytes: Vec<u128>,
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
    let opts = OptimizeOptions { strategy, fold_constants: false, run_limits: args.run_limits, limits: *limits };
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
                let (measured, _) = CostChoice::parse("cpu")?.measured(graph, db, &opts)?;
                wanted.push(("auto/measured".into(), Strategy::Auto, measured));
                continue;
            }
            ("measured", None) => return Err(miette!("--cost measured needs --tuning-db FILE.jsonl")),
            _ => CostChoice::parse(c)?,
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
                "it needs an estimated {}{at}, more than --max-memory {}",
                bytes_u128(peak.bytes),
                bytes_u128(args.max_memory)
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
    Ok(Outcome { report, skipped, estimated_peak_bytes, picks })
}

fn bytes(b: usize) -> String {
    format!("{}B", si(b as f64))
}

fn bytes_u128(b: u128) -> String {
    format!("{}B", si(b as f64))
}

/// The outcome as a header and a table.
pub fn render(outcome: &Outcome) -> String {
    let r = &outcome.report;
    let m = &r.machine;
    let mut out = String::new();
    let _ = writeln!(out, "model `{}`", r.model);
    let _ = writeln!(
        out,
        "machine: {}, {}, {} thread{}; GEMM peak {:.1} GF/s ({n}×{n}×{n} sgemm through the same kernel)",
        m.cpu,
        m.simd,
        m.threads,
        if m.threads == 1 { "" } else { "s" },
        m.gemm_peak_gflops,
        n = m.gemm_peak_size
    );
    let runs = r.variants.first().map_or(0, |v| v.times_ms.len());
    let _ = writeln!(
        out,
        "{runs} timed runs per variant after {} warm-up, in rounds of {} consecutive runs per variant; times in ms",
        r.warmup, r.batch
    );
    let _ = writeln!(out);
    let fastest = r.variants.iter().map(|v| v.median_ms).fold(f64::INFINITY, f64::min);
    let mut rows = vec![
        ["variant", "nodes", "FLOPs", "median", "IQR", "min", "vs best", "GF/s", "of peak", "peak mem", "est. total"]
            .map(String::from),
    ];
    for (i, v) in r.variants.iter().enumerate() {
        rows.push([
            v.label.clone(),
            v.nodes.to_string(),
            si(v.flops as f64),
            format!("{:.3}", v.median_ms),
            format!("{:.3}", v.q3_ms - v.q1_ms),
            format!("{:.3}", v.min_ms),
            format!("{:.2}×", v.median_ms / fastest),
            format!("{:.1}", v.gflops),
            format!("{:.0}%", 100.0 * v.fraction_of_peak),
            bytes(v.peak_bytes),
            outcome.estimated_peak_bytes.get(i).map_or_else(String::new, |&b| bytes_u128(b)),
        ]);
    }
    let widths: Vec<usize> = (0..11).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, &w))| if i == 0 { format!("{c:<w$}") } else { format!("{c:>w$}") })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    for s in &outcome.skipped {
        let _ = writeln!(out, "skipped {}: {}", s.label, s.reason);
    }
    if !outcome.picks.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "cost model picks, against the fastest variant:");
        for p in &outcome.picks {
            let _ =
                writeln!(out, "  {} = {}: {:.3} ms, {:.2}× {}", p.label, p.same_as, p.median_ms, p.slowdown, p.fastest);
        }
    }
    for v in r.variants.iter().filter(|v| v.per_node.is_some()) {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}: time per node", v.label);
        for n in v.per_node.iter().flatten() {
            let _ = writeln!(out, "  {:<28} {:<14} {:>9.3} ms {:>5.1}%", n.node, n.op, n.median_ms, 100.0 * n.share);
        }
    }
    out
}
