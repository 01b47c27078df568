//! Cross-checking lowerings: for every ConvTranspose (and Upsample) and every lowering that applies
//! to it, the model with that one node lowered is run in the interpreter on the same inputs as the
//! original and every output compared; optionally each lowered node alone as well; and the graph
//! `optimize` would emit, per cost model.

pub mod bench;
pub mod calibration;
pub mod compare;
pub mod numbers;
pub mod splice;
pub mod study;
pub mod table;
pub mod tuning;

use std::collections::HashMap;
use std::time::Instant;

use ndarray::ArrayD;
use serde::Serialize;
use strider_interp::fold::FoldError;
use strider_interp::{Outputs, Plan, PlanOptions, feeds};
use strider_ir::{Graph, Limits, Node, Op};
use strider_rewrite::convert::ConvertError;
use strider_rewrite::explore::NamedModel;
use strider_rewrite::isolate::{isolate, lower_isolated};
use strider_rewrite::pipeline::OptimizeError;
use strider_rewrite::{Extractor, Lowering, OptimizeOptions, Rule, RunLimits, Strategy, optimize};

pub use compare::{Comparison, Tolerance, compare};

/// What a row checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The whole model with one node lowered.
    Model,
    /// The lowered node alone, on seeded inputs.
    Node,
    /// The graph `optimize` emits for a cost model.
    Optimized,
}

/// One comparison run.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The node lowered (or `*` for an optimized graph).
    pub node: String,
    /// The lowering (or the cost model, for an optimized graph).
    pub lowering: String,
    /// What was compared.
    pub scope: Scope,
    /// FLOPs of the graph that ran.
    pub flops: u64,
    /// Wall time of one run of the prepared graph (preparation not included), in milliseconds.
    pub time_ms: f64,
    /// One comparison per output.
    pub outputs: Vec<Comparison>,
    /// Why the variant could not be built or run, if so.
    pub error: Option<String>,
    /// Why the variant was not run (too large to check here), if so.
    pub skipped: Option<String>,
}

impl Row {
    /// Built, ran, and every output within tolerance (or deliberately skipped).
    pub fn pass(&self) -> bool {
        self.error.is_none() && self.outputs.iter().all(|c| c.pass)
    }

    /// The comparison with the largest absolute error.
    pub fn worst(&self) -> Option<&Comparison> {
        self.outputs.iter().max_by(|a, b| a.max_abs.total_cmp(&b.max_abs))
    }
}

/// The whole check.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Model name.
    pub model: String,
    /// Tolerances used.
    pub tolerance: Tolerance,
    /// Every comparison.
    pub rows: Vec<Row>,
    /// Graph inputs and initializers holding NaN or infinities (which the outputs then hold too).
    pub non_finite: Vec<String>,
}

impl Report {
    /// Every row passed.
    pub fn pass(&self) -> bool {
        self.rows.iter().all(Row::pass)
    }
}

/// Options of a check.
pub struct Options<'a> {
    /// Comparison tolerances.
    pub tolerance: Tolerance,
    /// Also check each lowered node alone.
    pub per_node: bool,
    /// Seed for the per-node inputs.
    pub seed: u64,
    /// Saturation limits.
    pub run_limits: RunLimits,
    /// The extractor of the optimized graphs.
    pub extractor: Extractor,
    /// Cost models whose optimized graphs are checked; `fold` says whether to fold constants (targets).
    pub models: Vec<(NamedModel<'a>, bool)>,
    /// The rules of each lowering family (tests substitute deliberately wrong ones).
    pub rules: &'a dyn Fn(Lowering) -> Vec<Rule>,
    /// Variants holding an explicit sparse matrix with more stored elements than this are reported as
    /// skipped rather than run (their memory is the point of `explore`, not of a check).
    pub max_matrix_nnz: usize,
    /// Variants whose estimated peak memory ([`strider_interp::memory::estimate_peak`]) exceeds this
    /// many bytes are reported as skipped rather than run.
    pub max_memory: u128,
    /// Threads each graph runs on (0: one per core).
    pub threads: usize,
}

/// Prepares `graph` on `threads` threads and runs it once: the outputs and the run's wall time in
/// milliseconds (preparation — weight-only work, the thread pool — not included).
pub fn run_prepared(
    graph: &Graph,
    inputs: &HashMap<String, ArrayD<f32>>,
    threads: usize,
) -> Result<(Outputs, f64), strider_interp::ExecError> {
    let mut plan = Plan::new(graph, &PlanOptions { threads })?;
    let started = Instant::now();
    let outputs = plan.run(inputs)?;
    Ok((outputs, started.elapsed().as_secs_f64() * 1e3))
}

/// Default for [`Options::max_matrix_nnz`]: 2^24 stored elements (about 200 MB while building).
pub const DEFAULT_MAX_MATRIX_NNZ: usize = 1 << 24;

/// The rules a check uses by default: each family forced alone, with the support rules.
pub fn default_rules(lowering: Lowering) -> Vec<Rule> {
    Strategy::Force(lowering).rules()
}

/// Runs every comparison; `progress` is told each step as it starts (done, total, label). Fails only
/// when the original model itself cannot run on these inputs.
pub fn check(
    graph: &Graph,
    inputs: &HashMap<String, ArrayD<f32>>,
    opts: &Options,
    limits: &Limits,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<Report, strider_interp::ExecError> {
    let reference: HashMap<String, ArrayD<f32>> = run_prepared(graph, inputs, opts.threads)?.0.into_iter().collect();
    let targets: Vec<&Node> =
        graph.nodes().map(|(_, n)| n).filter(|n| matches!(n.op, Op::ConvTranspose(_) | Op::Upsample(_))).collect();
    let per_lowering = if opts.per_node { 2 } else { 1 };
    let total = targets.len() * Lowering::ALL.len() * per_lowering + opts.models.len();
    let mut done = 0;
    let mut rows = Vec::new();
    for node in &targets {
        let alone = isolate(graph, node);
        for lowering in Lowering::ALL {
            progress(done, total, &format!("{} × {}", node.name, lowering.name()));
            done += per_lowering;
            let Some(lowered) = lower_alone(&alone, lowering, opts) else { continue };
            if stored_elements(&lowered) > opts.max_matrix_nnz {
                rows.push(skipped(&node.name, lowering.name(), Scope::Model, too_many_stored(&lowered, opts)));
                continue;
            }
            let spliced = splice::splice(graph, node, &lowered, limits);
            rows.push(match spliced {
                Ok(model) => match too_large(&model, opts) {
                    Some(why) => skipped(&node.name, lowering.name(), Scope::Model, why),
                    None => compare_run(&model, inputs, &reference, opts, &node.name, lowering.name(), Scope::Model),
                },
                Err(e) if e.is_limit() => skipped(&node.name, lowering.name(), Scope::Model, e.to_string()),
                Err(e) => failed(&node.name, lowering.name(), Scope::Model, e.to_string()),
            });
            if opts.per_node {
                let mut seeded = HashMap::new();
                // The node alone is a sub-graph of the model that ran; its lowering may still be too large.
                let row = match too_large(&lowered, opts) {
                    Some(why) => skipped(&node.name, lowering.name(), Scope::Node, why),
                    None => match feeds::fill_missing(&alone, opts.seed, &mut seeded)
                        .map_err(strider_interp::ExecError::from)
                        .and_then(|_| run_prepared(&alone, &seeded, opts.threads))
                    {
                        Ok((want, _)) => {
                            let want = want.into_iter().collect();
                            compare_run(&lowered, &seeded, &want, opts, &node.name, lowering.name(), Scope::Node)
                        }
                        Err(e) => failed(&node.name, lowering.name(), Scope::Node, e.to_string()),
                    },
                };
                rows.push(row);
            }
        }
    }
    for (model, fold) in &opts.models {
        progress(done, total, &format!("optimized for {}", model.name));
        done += 1;
        let pipeline = OptimizeOptions {
            strategy: Strategy::Auto,
            fold_constants: *fold,
            run_limits: opts.run_limits,
            limits: *limits,
            extractor: opts.extractor,
        };
        let optimized =
            optimize(graph, model.model, &pipeline).map(|o| o.graph).map_err(|e| Refused::from_optimize(&e));
        rows.push(match optimized {
            Ok(g) if stored_elements(&g) > opts.max_matrix_nnz => {
                skipped("*", &model.name, Scope::Optimized, too_many_stored(&g, opts))
            }
            Ok(g) => match too_large(&g, opts) {
                Some(why) => skipped("*", &model.name, Scope::Optimized, why),
                None => compare_run(&g, inputs, &reference, opts, "*", &model.name, Scope::Optimized),
            },
            Err(Refused::Limit(why)) => skipped("*", &model.name, Scope::Optimized, why),
            Err(Refused::Error(e)) => failed("*", &model.name, Scope::Optimized, e),
        });
    }
    progress(total, total, "done");
    let non_finite = feeds::non_finite(graph, inputs).iter().map(ToString::to_string).collect();
    Ok(Report { model: graph.name().into(), tolerance: opts.tolerance, rows, non_finite })
}

/// Why a variant could not be built: over a limit (skipped, with the reason) or an error (a failure).
enum Refused {
    Limit(String),
    Error(String),
}

impl Refused {
    fn from_ir(e: &strider_ir::Error) -> Refused {
        if e.is_limit() { Refused::Limit(e.to_string()) } else { Refused::Error(e.to_string()) }
    }

    fn from_optimize(e: &OptimizeError) -> Refused {
        match e {
            OptimizeError::Convert(ConvertError::Invalid(e)) | OptimizeError::Fold(FoldError::Graph(e)) => {
                Refused::from_ir(e)
            }
            other => Refused::Error(other.to_string()),
        }
    }
}

/// The node alone, lowered by `lowering` (None where the family does not apply).
fn lower_alone(alone: &Graph, lowering: Lowering, opts: &Options) -> Option<Graph> {
    lower_isolated(alone, &(opts.rules)(lowering), &opts.run_limits)
}

/// Stored elements of every sparse value of a graph.
pub(crate) fn stored_elements(graph: &Graph) -> usize {
    graph
        .values()
        .iter()
        .map(|v| match v.ty.layout {
            strider_ir::Layout::Csr { nnz } => nnz,
            strider_ir::Layout::Dense => 0,
        })
        .sum()
}

/// Why a variant's explicit matrix is too large to run here.
fn too_many_stored(graph: &Graph, opts: &Options) -> String {
    format!(
        "matrix of {} stored elements exceeds --max-matrix-nnz {}",
        numbers::grouped(stored_elements(graph) as u128),
        numbers::grouped(opts.max_matrix_nnz as u128)
    )
}

/// Why a variant's estimated peak memory keeps it from running here, if it does.
fn too_large(graph: &Graph, opts: &Options) -> Option<String> {
    over_memory(graph, opts.max_memory)
}

/// Why `graph`'s estimated peak memory is over `max_memory` bytes, if it is.
pub(crate) fn over_memory(graph: &Graph, max_memory: u128) -> Option<String> {
    let peak = strider_interp::memory::estimate_peak(graph);
    (peak.bytes > max_memory).then(|| {
        let at = peak.node.map_or_else(String::new, |n| format!(" while `{n}` runs"));
        format!(
            "needs an estimated {} ({} bytes){at}, more than --max-memory {} ({} bytes)",
            numbers::bytes(peak.bytes),
            numbers::grouped(peak.bytes),
            numbers::bytes(max_memory),
            numbers::grouped(max_memory)
        )
    })
}

/// A row for a variant a limit keeps from running here.
fn skipped(node: &str, lowering: &str, scope: Scope, why: String) -> Row {
    Row { error: None, skipped: Some(why), ..failed(node, lowering, scope, String::new()) }
}

fn failed(node: &str, lowering: &str, scope: Scope, error: String) -> Row {
    Row {
        node: node.into(),
        lowering: lowering.into(),
        scope,
        flops: 0,
        time_ms: 0.0,
        outputs: vec![],
        error: Some(error),
        skipped: None,
    }
}

fn compare_run(
    graph: &Graph,
    inputs: &HashMap<String, ArrayD<f32>>,
    reference: &HashMap<String, ArrayD<f32>>,
    opts: &Options,
    node: &str,
    lowering: &str,
    scope: Scope,
) -> Row {
    let flops = graph.nodes().map(|(_, n)| graph.node_flops(n)).sum();
    let tolerance = opts.tolerance;
    match run_prepared(graph, inputs, opts.threads) {
        Ok((outputs, time_ms)) => {
            let outputs = outputs
                .iter()
                .map(|(name, got)| match reference.get(name) {
                    Some(want) => compare(name, want, got, tolerance),
                    None => compare(name, &ArrayD::zeros(vec![0]), got, tolerance),
                })
                .collect();
            Row {
                node: node.into(),
                lowering: lowering.into(),
                scope,
                flops,
                time_ms,
                outputs,
                error: None,
                skipped: None,
            }
        }
        Err(e) => failed(node, lowering, scope, e.to_string()),
    }
}
