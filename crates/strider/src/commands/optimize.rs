//! `strider optimize`: saturate, extract for a cost model, fold constants if asked, write a runnable
//! model, and print a before/after table.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use miette::{IntoDiagnostic, miette};
use strider_check::tuning::TuneOptions;
use strider_ir::{Graph, Limits, Producer};
use strider_rewrite::cost::{CostModel, Flops, Measured, Memory, Target};
use strider_rewrite::{RunLimits, Strategy};

/// The CPU profile built in as `--cost cpu`: examples/targets/cpu.ron, calibrated with `strider
/// calibrate` (its unit is the nanosecond).
const CPU_PROFILE: &str = include_str!("../../../../examples/targets/cpu.ron");

/// The built-in CPU profile (`--cost cpu`).
pub fn cpu_profile() -> miette::Result<Target> {
    Target::from_ron(CPU_PROFILE).map_err(|e| miette!("built-in cpu profile: {e}"))
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
    /// Parses `flops`, `memory`, `cpu` (the built-in CPU profile) or the path of a target profile.
    pub fn parse(s: &str) -> miette::Result<CostChoice> {
        match s {
            "flops" => Ok(CostChoice::Flops),
            "memory" => Ok(CostChoice::Memory),
            "cpu" => Ok(CostChoice::Target(Box::new(cpu_profile()?))),
            path => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    miette!("--cost expects flops, memory or a target profile; cannot read {path}: {e}")
                })?;
                let target = Target::from_ron(&text).map_err(|e| miette!("{path}:{}: {}", e.span.start, e.code))?;
                Ok(CostChoice::Target(Box::new(target)))
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
    /// choice and a report of the tuning.
    pub fn measured(self, graph: &Graph, db: &Path, opts: &TuneOptions) -> miette::Result<(CostChoice, String)> {
        let CostChoice::Target(prior) = self else {
            return Err(miette!(
                "--tuning-db needs a CPU profile for what is not measured: --cost cpu or a calibrated TARGET.ron"
            ));
        };
        let (log, nodes) = super::tune::fill(graph, db, opts, prior.as_ref())?;
        let times_ns = super::tune::measured(&log, opts.threads, prior.as_ref()).times_ns;
        let timed = nodes.iter().filter(|n| !n.cached).count();
        let report = format!(
            "tuning log {}: {} nodes, {timed} timed now, {} from the log\n",
            db.display(),
            nodes.len(),
            nodes.len() - timed
        );
        Ok((CostChoice::Measured { prior, times_ns }, report))
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
    /// Evaluate weight-only subgraphs into constants.
    pub fold_constants: bool,
    /// Saturation limits.
    pub run_limits: RunLimits,
    /// Where to write the optimized model (RON or ONNX, by extension).
    pub output: Option<PathBuf>,
    /// How an ONNX output is written.
    pub export: strider_onnx::ExportOptions,
}

/// Ops by kind, FLOPs and bytes of a graph.
struct Summary {
    ops: BTreeMap<&'static str, usize>,
    flops: u64,
    bytes: u64,
}

fn summarize(graph: &Graph) -> Summary {
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
    Summary { ops, flops, bytes }
}

/// Runs the optimization and returns the report text (and writes the model when asked).
pub fn optimize(graph: &Graph, opts: &OptimizeOptions, limits: &Limits) -> miette::Result<String> {
    let fold_constants = opts.cost.folds(opts.fold_constants);
    let model = opts.cost.model(fold_constants);
    let pipeline = strider_rewrite::OptimizeOptions {
        strategy: opts.strategy,
        fold_constants,
        run_limits: opts.run_limits,
        limits: *limits,
    };
    let result = strider_rewrite::optimize(graph, model.as_ref(), &pipeline).into_diagnostic()?;
    let optimized = &result.graph;
    let before = summarize(graph);
    let after = summarize(optimized);
    let mut out = String::new();
    let _ = writeln!(out, "model `{}`: strategy {}, cost {}", graph.name(), opts.strategy, opts.cost.label());
    let _ = writeln!(out);
    let mut rows: Vec<[String; 3]> = vec![["".into(), "before".into(), "after".into()]];
    let kinds: std::collections::BTreeSet<&str> = before.ops.keys().chain(after.ops.keys()).copied().collect();
    for kind in kinds {
        let count = |s: &Summary| s.ops.get(kind).copied().unwrap_or(0).to_string();
        rows.push([format!("  {kind}"), count(&before), count(&after)]);
    }
    rows.push(["nodes".into(), graph.nodes().count().to_string(), optimized.nodes().count().to_string()]);
    rows.push(["FLOPs".into(), before.flops.to_string(), after.flops.to_string()]);
    rows.push(["bytes".into(), before.bytes.to_string(), after.bytes.to_string()]);
    let show = |c: Option<f64>| c.map_or("unsupported".to_string(), |c| format!("{c:.0}"));
    rows.push([format!("cost ({})", opts.cost.label()), show(result.cost_before), show(result.cost_after)]);
    let widths = [0, 1, 2].map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0));
    for r in &rows {
        let _ = writeln!(
            out,
            "{:<w0$}  {:>w1$}  {:>w2$}",
            r[0],
            r[1],
            r[2],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    let last = result.sizes.last().copied().unwrap_or(result.sizes[0]);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "e-graph: {} nodes, {} classes after {} iterations ({})",
        last.nodes,
        last.classes,
        result.sizes.len() - 1,
        result.stop_reason
    );
    let _ = writeln!(
        out,
        "time: saturation {}, extraction {}",
        seconds(result.saturation_time),
        seconds(result.extraction_time)
    );
    if let Some(path) = &opts.output {
        crate::model_files::save(optimized, path, &opts.export)?;
        let _ = writeln!(out, "written to {}", path.display());
    }
    Ok(out)
}

fn seconds(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}
