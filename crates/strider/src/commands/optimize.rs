//! `strider optimize`: saturate, extract for a cost model, fold constants if asked, write a runnable
//! model, and print a before/after table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use miette::{IntoDiagnostic, miette};
use strider_interp::fold::fold_constants;
use strider_ir::format;
use strider_ir::{Graph, Limits, Producer};
use strider_rewrite::cost::{CostModel, Flops, Memory, Target};
use strider_rewrite::{RunLimits, Strategy, extract_graph, saturate};

/// The `--cost` choice.
pub enum CostChoice {
    /// FLOPs performed.
    Flops,
    /// Bytes of intermediates and constants.
    Memory,
    /// A target profile.
    Target(Box<Target>),
}

impl CostChoice {
    /// Parses `flops`, `memory` or the path of a target profile.
    pub fn parse(s: &str) -> miette::Result<CostChoice> {
        match s {
            "flops" => Ok(CostChoice::Flops),
            "memory" => Ok(CostChoice::Memory),
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
        }
    }

    /// Targets fold weight-only subgraphs at compile time; so does `--fold-constants`.
    pub fn folds(&self, fold_constants: bool) -> bool {
        fold_constants || matches!(self, CostChoice::Target(_))
    }

    /// The cost model.
    pub fn model(&self, fold_constants: bool) -> Box<dyn CostModel + '_> {
        match self {
            CostChoice::Flops => Box::new(Flops { fold_constants }),
            CostChoice::Memory => Box::new(Memory),
            CostChoice::Target(t) => Box::new(t.as_ref().clone()),
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
    /// Where to write the optimized model.
    pub output: Option<PathBuf>,
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

/// Cost of a graph as it stands under `model` (no rules).
fn cost_of(graph: &Graph, model: &dyn CostModel, limits: &Limits) -> Option<f64> {
    let plain = saturate(graph, &[], &RunLimits::default());
    extract_graph(&plain, graph, model, limits, plain.deadline).ok().map(|(_, cost)| cost)
}

/// Runs the optimization and returns the report text (and writes the model when asked).
pub fn optimize(graph: &Graph, opts: &OptimizeOptions, limits: &Limits) -> miette::Result<String> {
    let fold = opts.cost.folds(opts.fold_constants);
    let base = opts.cost.model(fold);
    let model = opts.strategy.model(base.as_ref());
    let rules = opts.strategy.rules();
    let started = Instant::now();
    let saturated = saturate(graph, &rules, &opts.run_limits);
    let saturation_time = started.elapsed();
    let started = Instant::now();
    let (mut optimized, cost) =
        extract_graph(&saturated, graph, model.as_ref(), limits, saturated.deadline).into_diagnostic()?;
    if fold {
        optimized = fold_constants(&optimized, limits).into_diagnostic()?;
    }
    let extraction_time = started.elapsed();
    let before = summarize(graph);
    let after = summarize(&optimized);
    let before_cost = cost_of(graph, base.as_ref(), limits);
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
    let after_cost = cost_of(&optimized, base.as_ref(), limits).or(Some(cost));
    rows.push([format!("cost ({})", opts.cost.label()), show(before_cost), show(after_cost)]);
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
    let last = saturated.sizes.last().copied().unwrap_or(saturated.sizes[0]);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "e-graph: {} nodes, {} classes after {} iterations ({})",
        last.nodes,
        last.classes,
        saturated.sizes.len() - 1,
        saturated.stop_reason
    );
    let _ = writeln!(out, "time: saturation {}, extraction {}", seconds(saturation_time), seconds(extraction_time));
    if let Some(path) = &opts.output {
        format::save(&optimized, path).into_diagnostic()?;
        let _ = writeln!(out, "written to {}", path.display());
    }
    Ok(out)
}

fn seconds(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}
