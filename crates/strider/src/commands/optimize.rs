//! `strider optimize`: saturate, extract for a cost model, fold constants if asked, write a runnable
//! model, and print a before/after table.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use miette::{IntoDiagnostic, miette};
use serde::Serialize;
use strider_check::numbers::{bytes, count, grouped, si};
use strider_check::table::{Align, Table};
use strider_check::tuning::TuneOptions;
use strider_ir::{Graph, Limits, Producer};
use strider_rewrite::cost::{CostModel, Flops, Measured, Memory, Target};
use strider_rewrite::{ExtractionSummary, Extractor, RunLimits, Strategy};

/// The CPU profile built in as `--cost cpu`: examples/targets/cpu.ron, calibrated with `strider
/// calibrate` (its unit is the nanosecond).
const CPU_PROFILE: &str = include_str!("../../../../examples/targets/cpu.ron");

/// The built-in CPU profile (`--cost cpu`) for runs on `threads` threads (0: one per core).
pub fn cpu_profile(threads: usize) -> miette::Result<Target> {
    let target = Target::from_ron(CPU_PROFILE).map_err(|e| miette!("built-in cpu profile: {e}"))?;
    Ok(target.for_threads(threads))
}

/// The `--cost` choice.
pub enum CostChoice {
    /// FLOPs performed.
    Flops,
    /// Bytes of intermediates and constants.
    Memory,
    /// A target profile.
    Target(Box<Target>),
    /// Times from a tuning log where it has them, a CPU profile elsewhere.
    Measured {
        /// Prices what the log does not have, and shares measured times among ops.
        prior: Box<Target>,
        /// Nanoseconds per op, by op key.
        times_ns: HashMap<String, f64>,
    },
}

impl CostChoice {
    /// Parses `flops`, `memory`, `cpu` (the built-in CPU profile) or the path of a target profile;
    /// a profile with kernel tables per thread count prices runs on `threads` threads (0: one per
    /// core).
    pub fn parse(s: &str, threads: usize) -> miette::Result<CostChoice> {
        match s {
            "flops" => Ok(CostChoice::Flops),
            "memory" => Ok(CostChoice::Memory),
            "cpu" => Ok(CostChoice::Target(Box::new(cpu_profile(threads)?))),
            path => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    miette!("--cost expects flops, memory or a target profile; cannot read {path}: {e}")
                })?;
                let target = Target::from_ron(&text).map_err(|e| miette!("{path}:{}: {}", e.span.start, e.code))?;
                Ok(CostChoice::Target(Box::new(target.for_threads(threads))))
            }
        }
    }

    /// A label for reports.
    pub fn label(&self) -> String {
        match self {
            CostChoice::Flops => "flops".into(),
            CostChoice::Memory => "memory".into(),
            CostChoice::Target(t) => format!("target {}", t.name),
            CostChoice::Measured { prior, .. } => format!("measured, else target {}", prior.name),
        }
    }

    /// Measured costs for `graph`: its nodes missing from the tuning log at `db` are timed first and
    /// appended to it; this choice (a CPU profile) prices what was not measured. Returns the new
    /// choice and what the tuning did.
    pub fn measured(self, graph: &Graph, db: &Path, opts: &TuneOptions) -> miette::Result<(CostChoice, TuningUse)> {
        let CostChoice::Target(prior) = self else {
            return Err(miette!(
                "--tuning-db needs a CPU profile for what is not measured: --cost cpu or a calibrated TARGET.ron"
            ));
        };
        let (log, nodes) = super::tune::fill(graph, db, opts, prior.as_ref())?;
        let times_ns = super::tune::measured(&log, opts.threads, prior.as_ref()).times_ns;
        let timed_now = nodes.iter().filter(|n| !n.cached).count();
        let used =
            TuningUse { log: db.to_path_buf(), nodes: nodes.len(), timed_now, from_log: nodes.len() - timed_now };
        Ok((CostChoice::Measured { prior, times_ns }, used))
    }

    /// Targets fold weight-only subgraphs at compile time; so does `--fold-constants`.
    pub fn folds(&self, fold_constants: bool) -> bool {
        fold_constants || matches!(self, CostChoice::Target(_) | CostChoice::Measured { .. })
    }

    /// The cost model.
    pub fn model(&self, fold_constants: bool) -> Box<dyn CostModel + '_> {
        match self {
            CostChoice::Flops => Box::new(Flops { fold_constants }),
            CostChoice::Memory => Box::new(Memory),
            CostChoice::Target(t) => Box::new(t.as_ref().clone()),
            CostChoice::Measured { prior, times_ns } => {
                Box::new(Measured { times_ns: times_ns.clone(), fallback: prior.as_ref() })
            }
        }
    }
}

/// Options of `strider optimize`.
pub struct OptimizeOptions {
    /// Cost model.
    pub cost: CostChoice,
    /// Which lowerings may fire.
    pub strategy: Strategy,
    /// Greedy or exact extraction.
    pub extractor: Extractor,
    /// Evaluate weight-only subgraphs into constants.
    pub fold_constants: bool,
    /// Saturation limits.
    pub run_limits: RunLimits,
    /// Where to write the optimized model (RON or ONNX, by extension).
    pub output: Option<PathBuf>,
    /// How an ONNX output is written.
    pub export: strider_onnx::ExportOptions,
}

/// What a tuning log contributed to a measured cost model.
#[derive(Debug, Serialize)]
pub struct TuningUse {
    /// The tuning log.
    pub log: PathBuf,
    /// ConvTranspose and Upsample nodes priced from it.
    pub nodes: usize,
    /// Of those, timed by this command and appended to the log.
    pub timed_now: usize,
    /// Of those, found in the log.
    pub from_log: usize,
}

/// Ops by kind, FLOPs, bytes and cost of a graph.
#[derive(Debug, Serialize)]
pub struct GraphSummary {
    /// Nodes per op type.
    pub ops: BTreeMap<&'static str, usize>,
    /// Nodes in all.
    pub nodes: usize,
    /// FLOPs of one run.
    pub flops: u64,
    /// Bytes of the intermediates and initializers.
    pub bytes: u64,
    /// Cost under the cost model; `None` when it cannot price the graph (an op the target lacks).
    pub cost: Option<f64>,
}

impl GraphSummary {
    fn of(graph: &Graph, cost: Option<f64>) -> GraphSummary {
        let mut ops = BTreeMap::new();
        let (mut flops, mut bytes) = (0u64, 0u64);
        for (_, node) in graph.nodes() {
            *ops.entry(node.op.name()).or_insert(0) += 1;
            flops += graph.node_flops(node);
            bytes += node.outputs.iter().map(|&v| graph.value(v).ty.size_bytes() as u64).sum::<u64>();
        }
        for v in graph.values().iter().filter(|v| v.producer == Producer::Initializer) {
            bytes += v.ty.size_bytes() as u64;
        }
        GraphSummary { nodes: graph.nodes().count(), ops, flops, bytes, cost }
    }
}

/// The e-graph when extraction ran.
#[derive(Debug, Serialize)]
pub struct EgraphSummary {
    /// E-nodes.
    pub nodes: usize,
    /// E-classes.
    pub classes: usize,
    /// Saturation iterations.
    pub iterations: usize,
    /// Why saturation stopped.
    pub stop_reason: String,
}

/// What `strider optimize` did: the graph before and after, the e-graph, the time taken.
#[derive(Debug, Serialize)]
pub struct OptimizeReport {
    /// Model name.
    pub model: String,
    /// The strategy (`auto` or a forced lowering).
    pub strategy: String,
    /// The cost model's label.
    pub cost_model: String,
    /// The tuning log the measured cost model used, if any.
    pub tuning: Option<TuningUse>,
    /// The original graph.
    pub before: GraphSummary,
    /// The optimized graph.
    pub after: GraphSummary,
    /// The saturated e-graph.
    pub egraph: EgraphSummary,
    /// Seconds spent saturating.
    pub saturation_s: f64,
    /// Seconds spent extracting.
    pub extraction_s: f64,
    /// Which extractor chose the graph and at what cost; for the exact one, the greedy cost beside.
    pub extraction: ExtractionSummary,
    /// Where the optimized model was written, if asked.
    pub written_to: Option<PathBuf>,
}

/// Runs the optimization, writes the model when asked, and reports.
pub fn optimize(graph: &Graph, opts: &OptimizeOptions, limits: &Limits) -> miette::Result<OptimizeReport> {
    let fold_constants = opts.cost.folds(opts.fold_constants);
    let model = opts.cost.model(fold_constants);
    let pipeline = strider_rewrite::OptimizeOptions {
        strategy: opts.strategy,
        fold_constants,
        run_limits: opts.run_limits,
        limits: *limits,
        extractor: opts.extractor,
    };
    let result = strider_rewrite::optimize(graph, model.as_ref(), &pipeline).into_diagnostic()?;
    if let Some(path) = &opts.output {
        crate::model_files::save(&result.graph, path, &opts.export)?;
    }
    let last = result.sizes.last().copied().unwrap_or(result.sizes[0]);
    Ok(OptimizeReport {
        model: graph.name().to_string(),
        strategy: opts.strategy.to_string(),
        cost_model: opts.cost.label(),
        tuning: None,
        before: GraphSummary::of(graph, result.cost_before),
        after: GraphSummary::of(&result.graph, result.cost_after),
        egraph: EgraphSummary {
            nodes: last.nodes,
            classes: last.classes,
            iterations: result.sizes.len() - 1,
            stop_reason: result.stop_reason,
        },
        saturation_s: result.saturation_time.as_secs_f64(),
        extraction_s: result.extraction_time.as_secs_f64(),
        extraction: result.extraction,
        written_to: opts.output.clone(),
    })
}

/// The report as text: a before/after table, the e-graph and the times.
pub fn render(report: &OptimizeReport) -> String {
    let mut out = String::new();
    if let Some(t) = &report.tuning {
        let _ = writeln!(
            out,
            "tuning log {}: {}, {} timed now, {} from the log",
            t.log.display(),
            count(t.nodes as u128, "node"),
            t.timed_now,
            t.from_log
        );
    }
    let _ = writeln!(out, "model `{}`: strategy {}, cost {}", report.model, report.strategy, report.cost_model);
    let _ = writeln!(out);
    let (before, after) = (&report.before, &report.after);
    let mut table = Table::new([("", Align::Left), ("before", Align::Right), ("after", Align::Right)]);
    let kinds: BTreeSet<&str> = before.ops.keys().chain(after.ops.keys()).copied().collect();
    for kind in kinds {
        let n = |s: &GraphSummary| grouped(s.ops.get(kind).copied().unwrap_or(0) as u128);
        table.row([format!("  {kind}"), n(before), n(after)]);
    }
    table.row(["nodes".into(), grouped(before.nodes as u128), grouped(after.nodes as u128)]);
    table.row(["FLOPs".into(), si(before.flops as f64), si(after.flops as f64)]);
    table.row(["bytes".into(), bytes(before.bytes as u128), bytes(after.bytes as u128)]);
    let show = |c: Option<f64>| c.map_or("unsupported".to_string(), si);
    table.row([format!("cost ({})", report.cost_model), show(before.cost), show(after.cost)]);
    out.push_str(&table.text());
    let e = &report.egraph;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "e-graph: {}, {} after {} ({})",
        count(e.nodes as u128, "e-node"),
        count(e.classes as u128, "e-class"),
        count(e.iterations as u128, "iteration"),
        e.stop_reason
    );
    let _ = writeln!(out, "{}", extraction_line(&report.extraction));
    let _ = writeln!(out, "time: saturation {:.3} s, extraction {:.3} s", report.saturation_s, report.extraction_s);
    if let Some(path) = &report.written_to {
        let _ = writeln!(out, "written to {}", path.display());
    }
    out
}

/// Which extractor chose the graph; for the exact one, its cost beside the greedy one (the gap) and
/// whether the optimum was proven or greedy's choice kept, and why. Shared with `explore`.
pub fn extraction_line(e: &ExtractionSummary) -> String {
    let Some(greedy) = e.greedy_cost else {
        return format!("extractor: {}", e.extractor);
    };
    let status = match &e.fallback {
        None => "optimal".to_string(),
        Some(why) => format!("kept greedy's choice: {why}"),
    };
    let gap = greedy - e.cost;
    let relative = if greedy > 0.0 { format!(" ({:.2}%)", 100.0 * gap / greedy) } else { String::new() };
    let times = format!("greedy {:.3} s, integer program {:.3} s", e.greedy_s, e.exact_s.unwrap_or(0.0));
    format!(
        "extractor: exact ({status}): cost {}, greedy {}, gap {}{relative}; {times}",
        si(e.cost),
        si(greedy),
        si(gap)
    )
}
