//! The whole optimization: graph → e-graph → saturate → extract → fold → price, with the statistics
//! a report needs. [`optimize`] is the one entry point the CLI, `check`, `bench` and the tests use.

use std::time::{Duration, Instant};

use egg::{Id, Runner, StopReason};
use strider_ir::{Graph, Limits};

use crate::analysis::TensorGraph;
use crate::convert::{ConvertError, to_egraph, to_graph};
use crate::cost::{CostModel, Feasible, price};
use crate::extract::exact::{MAX_NODES, extract_exact};
use crate::extract::{ExtractError, Extraction, Extractor, extract};
use crate::rules::Rule;
use crate::strategy::Strategy;

/// Limits of equality saturation.
#[derive(Clone, Copy, Debug)]
pub struct RunLimits {
    /// Stop when the e-graph has this many e-nodes.
    pub nodes: usize,
    /// Stop after this many iterations.
    pub iterations: usize,
    /// Time budget: saturation stops when it is spent, and an extraction given
    /// [`Saturated::deadline`] stops refining then too.
    pub time: Duration,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits { nodes: 50_000, iterations: 12, time: Duration::from_secs(20) }
    }
}

/// Size of the e-graph after one iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IterationSize {
    /// E-nodes.
    pub nodes: usize,
    /// E-classes.
    pub classes: usize,
}

/// A saturated e-graph and how the run went.
pub struct Saturated {
    /// The e-graph.
    pub egraph: TensorGraph,
    /// Classes of the graph outputs.
    pub roots: Vec<Id>,
    /// Why saturation stopped.
    pub stop_reason: String,
    /// E-graph size after each iteration (the first entry is the initial graph).
    pub sizes: Vec<IterationSize>,
    /// When the run's time budget ([`RunLimits::time`], counted from the start of saturation) ends;
    /// `None` when it is too far away to represent. Passed to [`extract_graph`], it makes saturation
    /// and extraction share one budget.
    pub deadline: Option<Instant>,
}

/// Why optimization failed.
#[derive(Debug, thiserror::Error)]
pub enum OptimizeError {
    /// Nothing the cost model supports computes an output.
    #[error(transparent)]
    Extract(#[from] ExtractError),
    /// Extraction produced an invalid graph (a bug).
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// Evaluating the weight-only subgraphs failed.
    #[error(transparent)]
    Fold(#[from] strider_interp::fold::FoldError),
}

/// What to optimize for, and within which limits.
#[derive(Clone, Copy, Debug, Default)]
pub struct OptimizeOptions {
    /// Which lowerings may fire.
    pub strategy: Strategy,
    /// Evaluate weight-only subgraphs (flipped and phase kernels) into constants afterwards.
    pub fold_constants: bool,
    /// Limits of saturation (and of extraction, through the deadline).
    pub run_limits: RunLimits,
    /// No value of the result may exceed these; extraction prices variants that would as infeasible.
    pub limits: Limits,
    /// Greedy, or exact (an integer program) for small e-graphs.
    pub extractor: Extractor,
}

/// An optimized graph and how it was reached.
pub struct Optimized {
    /// The graph, with the original's name, inputs and output names.
    pub graph: Graph,
    /// Cost of the original under the model (`None`: it has an op the model does not support).
    pub cost_before: Option<f64>,
    /// Cost of the result under the model.
    pub cost_after: Option<f64>,
    /// E-graph size after each iteration (the first entry is the initial graph).
    pub sizes: Vec<IterationSize>,
    /// Why saturation stopped.
    pub stop_reason: String,
    /// Wall time of saturation.
    pub saturation_time: Duration,
    /// Wall time of extraction and folding.
    pub extraction_time: Duration,
    /// Which extractor chose the graph, at what cost, and (exact) the greedy cost beside it.
    pub extraction: ExtractionSummary,
}

/// How extraction went: the extractor, the cost of its choice, and for the exact one the greedy
/// choice's cost (the gap) and whether the optimum was proven. Costs are DAG costs under the model
/// extraction used (limits as infeasibility, a forced strategy's penalties included), before folding.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ExtractionSummary {
    /// The extractor asked for.
    pub extractor: Extractor,
    /// DAG cost of the choice.
    pub cost: f64,
    /// Exact only: DAG cost of the greedy choice, which the exact one never exceeds.
    pub greedy_cost: Option<f64>,
    /// Exact only: why the greedy choice was kept without proof that it is optimal (too large, time
    /// limit, solver failure); `None` when the optimum was proven, or for greedy.
    pub fallback: Option<String>,
    /// The deadline stopped the greedy refinement (see [`Extraction::cut_short`]).
    pub cut_short: bool,
    /// Seconds the greedy extraction took.
    pub greedy_s: f64,
    /// Exact only: seconds spent building and solving the integer program.
    pub exact_s: Option<f64>,
}

/// Optimizes `graph` for `model`: saturates with the strategy's rules, extracts the cheapest graph
/// that fits the limits, folds constants if asked, and prices the graph before and after (directly,
/// without e-graphs).
pub fn optimize(graph: &Graph, model: &dyn CostModel, opts: &OptimizeOptions) -> Result<Optimized, OptimizeError> {
    let started = Instant::now();
    let saturated = saturate(graph, &opts.strategy.rules(), &opts.run_limits);
    let saturation_time = started.elapsed();
    let started = Instant::now();
    let feasible = Feasible { inner: model, max_elements: opts.limits.max_elements };
    let extracting = opts.strategy.model(&feasible);
    let (mut optimized, extraction) =
        extract_graph_with(&saturated, graph, extracting.as_ref(), &opts.limits, saturated.deadline, opts.extractor)?;
    if opts.fold_constants {
        optimized = strider_interp::fold::fold_constants(&optimized, &opts.limits)?;
    }
    let extraction_time = started.elapsed();
    Ok(Optimized {
        cost_before: price(graph, model),
        cost_after: price(&optimized, model),
        graph: optimized,
        sizes: saturated.sizes,
        stop_reason: saturated.stop_reason,
        saturation_time,
        extraction_time,
        extraction,
    })
}

/// Saturates the e-graph of `graph` with `rules`.
pub fn saturate(graph: &Graph, rules: &[Rule], limits: &RunLimits) -> Saturated {
    let deadline = Instant::now().checked_add(limits.time);
    let mut seeded = to_egraph(graph);
    seeded.egraph.analysis.node_budget = Some(limits.nodes);
    let initial =
        IterationSize { nodes: seeded.egraph.total_number_of_nodes(), classes: seeded.egraph.number_of_classes() };
    let runner = Runner::default()
        .with_egraph(seeded.egraph)
        .with_node_limit(limits.nodes)
        .with_iter_limit(limits.iterations)
        .with_time_limit(limits.time)
        .run(rules);
    let stop_reason = match runner.stop_reason.as_ref() {
        Some(StopReason::Saturated) => "saturated".to_string(),
        Some(StopReason::IterationLimit(n)) => format!("iteration limit ({n})"),
        Some(StopReason::NodeLimit(n)) => format!("node limit ({n})"),
        Some(StopReason::TimeLimit(t)) => format!("time limit ({t:.1} s)"),
        Some(StopReason::Other(s)) => s.clone(),
        None => "not run".to_string(),
    };
    let mut sizes = vec![initial];
    sizes.extend(runner.iterations.iter().map(|i| IterationSize { nodes: i.egraph_nodes, classes: i.egraph_classes }));
    let mut egraph = runner.egraph;
    egraph.rebuild();
    let roots = seeded.roots.iter().map(|&r| egraph.find(r)).collect();
    Saturated { egraph, roots, stop_reason, sizes, deadline }
}

/// Extracts the cheapest graph under `model` greedily, keeping `original`'s name, inputs and output
/// names. Past `deadline` (usually [`Saturated::deadline`]; `None` for none) extraction returns the
/// best choice it has found so far instead of refining it.
pub fn extract_graph(
    saturated: &Saturated,
    original: &Graph,
    model: &dyn CostModel,
    limits: &Limits,
    deadline: Option<Instant>,
) -> Result<(Graph, f64), OptimizeError> {
    let (graph, summary) = extract_graph_with(saturated, original, model, limits, deadline, Extractor::Greedy)?;
    Ok((graph, summary.cost))
}

/// [`extract_graph`] with the extractor of choice, and how extraction went.
pub fn extract_graph_with(
    saturated: &Saturated,
    original: &Graph,
    model: &dyn CostModel,
    limits: &Limits,
    deadline: Option<Instant>,
    extractor: Extractor,
) -> Result<(Graph, ExtractionSummary), OptimizeError> {
    let (extraction, summary) = extract_with(saturated, model, deadline, extractor)?;
    let inputs: Vec<_> =
        original.inputs().iter().map(|&v| (original.value(v).name.clone(), original.shape(v).clone())).collect();
    let outputs: Vec<String> = original.outputs().iter().map(|&v| original.value(v).name.clone()).collect();
    let graph =
        to_graph(&saturated.egraph, &extraction.choice, &saturated.roots, original.name(), &inputs, &outputs, limits)?;
    Ok((graph, summary))
}

/// Extracts the outputs' classes of `saturated` with `extractor` (the exact one within
/// [`MAX_NODES`] e-nodes): the choice and its summary.
pub fn extract_with(
    saturated: &Saturated,
    model: &dyn CostModel,
    deadline: Option<Instant>,
    extractor: Extractor,
) -> Result<(Extraction, ExtractionSummary), ExtractError> {
    let (egraph, roots) = (&saturated.egraph, &saturated.roots);
    let started = Instant::now();
    match extractor {
        Extractor::Greedy => {
            let extraction = extract(egraph, roots, model, deadline)?;
            let summary = ExtractionSummary {
                extractor,
                cost: extraction.cost,
                greedy_cost: None,
                fallback: None,
                cut_short: extraction.cut_short,
                greedy_s: started.elapsed().as_secs_f64(),
                exact_s: None,
            };
            Ok((extraction, summary))
        }
        Extractor::Exact => {
            let exact = extract_exact(egraph, roots, model, deadline, MAX_NODES)?;
            let summary = ExtractionSummary {
                extractor,
                cost: exact.extraction.cost,
                greedy_cost: Some(exact.greedy_cost),
                fallback: exact.fallback.map(|f| f.to_string()),
                cut_short: exact.extraction.cut_short,
                greedy_s: exact.greedy_time.as_secs_f64(),
                exact_s: Some(exact.solve_time.as_secs_f64()),
            };
            Ok((exact.extraction, summary))
        }
    }
}
