//! Exact extraction for small e-graphs: the cheapest DAG (each shared value paid once) as an integer
//! linear program, solved by microlp through good_lp (pure Rust: no C solver to install).
//!
//! The greedy extractor ([`super::extract`]) chooses each class's node from its children's choices
//! and never revisits them; it misses choices whose benefit only shows when two readers share a
//! value (see the tests). The program here has one binary variable `x[n]` per e-node:
//!
//! - a class picks at most one node (`Σ x[n] ≤ 1`), a root class exactly one;
//! - a chosen node needs every child class to pick one (`x[n] ≤ Σ x[m]` over the child's nodes);
//! - the choice is acyclic: within each strongly connected group of classes, a class has an order
//!   `t` in `[0, M − 1]` (M the group's size), and a chosen node's class comes after each child in
//!   its group (`t[child] − t[class] + M·x[n] ≤ M − 1`). Classes outside a cycle need no order.
//! - the objective is `Σ cost[n]·x[n]`: a class is picked once however many nodes read it.
//!
//! Greedy runs first: its choice seeds the solver, bounds the program (an e-node dearer than the
//! whole greedy DAG cannot be in a cheaper one, costs being non-negative) and is what is kept when
//! the program is too large ([`MAX_NODES`]), the deadline passes, or the solver fails — each a
//! [`Fallback`], never a panic. On a tie the greedy choice is kept, so the graph changes only when
//! it gets cheaper.

use std::time::{Duration, Instant};

use egg::Id;
use good_lp::{
    Expression, ProblemVariables, ResolutionError, Solution, SolutionStatus, SolverModel, Variable, WithTimeLimit,
    microlp, variable,
};
use petgraph::graph::{DiGraph, NodeIndex};

use super::{ExtractError, Extraction, Flat, chosen_dag, greedy};
use crate::analysis::TensorGraph;
use crate::cost::CostModel;

/// The largest program solved: e-nodes left after pruning (those reachable from the roots, cheaper
/// than the greedy DAG, whose children can all be computed). The examples need at most a few hundred;
/// microlp's branch and bound on thousands of binaries can take minutes, and `--time-limit` only
/// bounds it between nodes of the search.
pub const MAX_NODES: usize = 3_000;

/// What exact extraction returned, with the greedy result beside it.
#[derive(Debug)]
pub struct ExactExtraction {
    /// The choice: the program's optimum, or greedy's when it fell back (or tied).
    pub extraction: Extraction,
    /// The DAG cost of the greedy choice: the gap is `greedy_cost − extraction.cost`.
    pub greedy_cost: f64,
    /// Wall time of the greedy extraction.
    pub greedy_time: Duration,
    /// Wall time of building and solving the program (zero when it was not built).
    pub solve_time: Duration,
    /// Why greedy's choice was kept without a proof that it is optimal; `None` when the solver proved
    /// `extraction` optimal.
    pub fallback: Option<Fallback>,
}

/// Why exact extraction kept the greedy choice without proving it optimal.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Fallback {
    /// The program would be larger than the limit.
    #[error("the integer program would have {nodes} e-node variables, more than the limit {limit}")]
    TooBig {
        /// E-node variables after pruning.
        nodes: usize,
        /// The limit ([`MAX_NODES`] in the pipeline).
        limit: usize,
    },
    /// The deadline passed before the solver proved an optimum.
    #[error("the time limit passed before the solver proved an optimum")]
    Deadline,
    /// The solver failed or returned no valid choice.
    #[error("the solver failed: {0}")]
    Solver(String),
    /// The solver's optimum, priced again, costs more than greedy's (rounding in the solver).
    #[error("the solver's choice costs {exact}, more than the greedy {greedy} (rounding)")]
    NotCheaper {
        /// DAG cost of the solver's choice.
        exact: f64,
        /// DAG cost of the greedy choice.
        greedy: f64,
    },
}

/// Extracts the cheapest DAG for `roots` under `model` exactly, when the program has at most
/// `max_nodes` e-node variables and is solved before `deadline`; otherwise returns the greedy choice
/// and says why. Fails only when greedy does: an output with no supported form.
pub fn extract_exact(
    egraph: &TensorGraph,
    roots: &[Id],
    model: &dyn CostModel,
    deadline: Option<Instant>,
    max_nodes: usize,
) -> Result<ExactExtraction, ExtractError> {
    let flat = Flat::new(egraph, model);
    let roots = flat.root_indices(roots);
    let started = Instant::now();
    let (seed, cut_short) = greedy(&flat, &roots, deadline)?;
    let greedy_time = started.elapsed();
    let greedy_cost = flat.cost_of(&seed);
    let started = Instant::now();
    let solved = solve(&flat, &roots, &seed, deadline, max_nodes);
    let solve_time = started.elapsed();
    // The solver's choice is kept only when it is cheaper: on a tie the graph stays greedy's.
    let (chosen, fallback) = match solved {
        Ok(exact) => {
            let exact_cost = flat.cost_of(&exact);
            if exact_cost < greedy_cost - 1e-9 * greedy_cost.abs() {
                (exact, None)
            } else if exact_cost <= greedy_cost + 1e-9 * greedy_cost.abs() {
                (seed, None)
            } else {
                (seed, Some(Fallback::NotCheaper { exact: exact_cost, greedy: greedy_cost }))
            }
        }
        Err(fallback) => (seed, Some(fallback)),
    };
    let extraction = flat.extraction(&chosen, cut_short && fallback.is_some());
    Ok(ExactExtraction { extraction, greedy_cost, greedy_time, solve_time, fallback })
}

/// The program's optimum: the chosen e-nodes reachable from `roots`, children first.
fn solve(
    flat: &Flat,
    roots: &[usize],
    seed: &[usize],
    deadline: Option<Instant>,
    max_nodes: usize,
) -> Result<Vec<usize>, Fallback> {
    let bound = flat.cost_of(seed);
    let kept = prune(flat, roots, bound);
    let nodes = kept.iter().filter(|&&k| k).count();
    if nodes > max_nodes {
        return Err(Fallback::TooBig { nodes, limit: max_nodes });
    }
    let time_left = match deadline {
        Some(d) => match d.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Some(left),
            _ => return Err(Fallback::Deadline),
        },
        None => None,
    };
    let program = Program::new(flat, &kept, seed, bound);
    let mut problem = program.variables.minimise(program.objective).using(microlp);
    if let Some(left) = time_left {
        problem = problem.with_time_limit(left.as_secs_f64());
    }
    for constraint in program.constraints {
        problem.add_constraint(constraint);
    }
    let solution = problem.solve().map_err(|e| match e {
        // microlp's way of saying the time limit came before any solution.
        ResolutionError::Other(_) => Fallback::Deadline,
        other => Fallback::Solver(other.to_string()),
    })?;
    if matches!(solution.status(), SolutionStatus::TimeLimit) {
        return Err(Fallback::Deadline);
    }
    let mut choice = vec![None; flat.classes.len()];
    for (n, x) in program.x.iter().enumerate() {
        if x.is_some_and(|x| solution.value(x) > 0.5) {
            choice[flat.node_class[n]] = Some(n);
        }
    }
    let (chosen, acyclic) = chosen_dag(flat, roots, &choice);
    let complete = chosen.iter().all(|&n| flat.children_of(n).iter().all(|&k| choice[k].is_some()));
    if !acyclic || !complete || roots.iter().any(|&r| choice[r].is_none()) {
        return Err(Fallback::Solver("the solution is not an acyclic choice for every output".into()));
    }
    Ok(chosen)
}

/// The e-nodes worth a variable: reachable from `roots`, supported at a finite cost no larger than
/// `bound` (when costs are non-negative, a dearer node cannot be in a DAG cheaper than `bound`), not
/// reading their own class, and with every child class holding such a node.
fn prune(flat: &Flat, roots: &[usize], bound: f64) -> Vec<bool> {
    let non_negative = flat.own.iter().flatten().all(|&c| c >= 0.0);
    let mut kept: Vec<bool> = (0..flat.own.len())
        .map(|n| {
            let class = flat.node_class[n];
            flat.own[n].is_some_and(|c| c.is_finite() && (!non_negative || c <= bound))
                && !flat.children_of(n).contains(&class)
        })
        .collect();
    let mut alive: Vec<bool> = (0..flat.classes.len()).map(|c| flat.nodes_of(c).any(|n| kept[n])).collect();
    let mut changed = true;
    while changed {
        changed = false;
        for n in 0..kept.len() {
            if kept[n] && flat.children_of(n).iter().any(|&k| !alive[k]) {
                kept[n] = false;
                changed = true;
                let class = flat.node_class[n];
                alive[class] = flat.nodes_of(class).any(|m| kept[m]);
            }
        }
    }
    // Only what the roots can reach through kept nodes.
    let mut reached = vec![false; flat.classes.len()];
    let mut stack: Vec<usize> = roots.to_vec();
    while let Some(class) = stack.pop() {
        if std::mem::replace(&mut reached[class], true) {
            continue;
        }
        for n in flat.nodes_of(class).filter(|&n| kept[n]) {
            stack.extend(flat.children_of(n).iter().filter(|&&k| !reached[k]));
        }
    }
    for (n, k) in kept.iter_mut().enumerate() {
        *k = *k && reached[flat.node_class[n]];
    }
    kept
}

/// The integer program over the kept e-nodes, with the greedy choice as its initial solution.
struct Program {
    variables: ProblemVariables,
    /// The binary variable of each kept e-node.
    x: Vec<Option<Variable>>,
    objective: Expression,
    constraints: Vec<good_lp::Constraint>,
}

impl Program {
    fn new(flat: &Flat, kept: &[bool], seed: &[usize], bound: f64) -> Program {
        let mut variables = ProblemVariables::new();
        let mut seeded = vec![false; flat.own.len()];
        for &n in seed {
            seeded[n] = true;
        }
        // Costs relative to the greedy DAG's, so that the objective is about 1 whatever the unit.
        let scale = if bound.is_finite() && bound > 0.0 { bound } else { 1.0 };
        let mut objective = Expression::default();
        let x: Vec<Option<Variable>> = (0..flat.own.len())
            .map(|n| {
                kept[n].then(|| {
                    let x = variables.add(variable().binary().initial(if seeded[n] { 1.0 } else { 0.0 }));
                    objective.add_mul(flat.own[n].unwrap_or(0.0) / scale, x);
                    x
                })
            })
            .collect();
        let live: Vec<bool> = (0..flat.classes.len()).map(|c| flat.nodes_of(c).any(|n| kept[n])).collect();
        let picks = |class: usize| -> Expression { flat.nodes_of(class).filter_map(|n| x[n]).sum() };
        let mut constraints = Vec::new();
        for class in (0..flat.classes.len()).filter(|&c| live[c]) {
            constraints.push(picks(class).leq(1.0));
        }
        for (n, x) in x.iter().enumerate() {
            for &child in x.map_or(&[][..], |_| flat.children_of(n)) {
                constraints.push(Expression::from_other_affine(*x).leq(picks(child)));
            }
        }
        // Acyclicity: an order within each group of classes that can reach each other.
        let cycles = Cycles::new(flat, kept, seed);
        let t: Vec<Option<Variable>> = (0..flat.classes.len())
            .map(|c| {
                let size = cycles.group[c].map(|g| cycles.size[g])?;
                Some(variables.add(variable().min(0.0).max(size as f64 - 1.0).initial(cycles.at[c] as f64)))
            })
            .collect();
        for n in (0..flat.own.len()).filter(|&n| kept[n]) {
            let class = flat.node_class[n];
            let (Some(group), Some(t_class), Some(x)) = (cycles.group[class], t[class], x[n]) else { continue };
            let m = cycles.size[group] as f64;
            for &child in flat.children_of(n) {
                // A child outside the group cannot close a cycle with this class.
                if let (Some(t_child), true) = (t[child], cycles.group[child] == Some(group)) {
                    constraints.push((t_child - t_class + m * x).leq(m - 1.0));
                }
            }
        }
        Program { variables, x, objective, constraints }
    }
}

/// The strongly connected groups of classes (a class reading, through some kept e-node, a class
/// that reads it back): only their choices can form a cycle, so only they get an order variable.
struct Cycles {
    /// The group of each class in one of more than one class.
    group: Vec<Option<usize>>,
    /// The number of classes of each group: the order's range.
    size: Vec<usize>,
    /// The order of each grouped class in the seed (children first), its initial value.
    at: Vec<usize>,
}

impl Cycles {
    fn new(flat: &Flat, kept: &[bool], seed: &[usize]) -> Cycles {
        let classes = flat.classes.len();
        let mut graph: DiGraph<(), ()> = DiGraph::with_capacity(classes, 0);
        for _ in 0..classes {
            graph.add_node(());
        }
        for n in (0..flat.own.len()).filter(|&n| kept[n]) {
            for &child in flat.children_of(n) {
                graph.add_edge(NodeIndex::new(flat.node_class[n]), NodeIndex::new(child), ());
            }
        }
        let (mut group, mut size) = (vec![None; classes], Vec::new());
        for component in petgraph::algo::tarjan_scc(&graph).into_iter().filter(|c| c.len() > 1) {
            for class in &component {
                group[class.index()] = Some(size.len());
            }
            size.push(component.len());
        }
        // The seed lists children before parents, so numbering its grouped classes in that order per
        // group puts each child before the classes that read it.
        let (mut at, mut next) = (vec![0; classes], vec![0; size.len()]);
        for &n in seed {
            let class = flat.node_class[n];
            if let Some(g) = group[class] {
                at[class] = next[g];
                next[g] += 1;
            }
        }
        Cycles { group, size, at }
    }
}
