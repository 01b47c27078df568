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
/// than the greedy DAG, whose children can all be computed). The examples need at most a few hundred,
/// except FCN-32s's 1,024 phase convolutions (about 3,100, solved in 1.5 s); the program grows with
/// the e-graph and microlp's time faster than that, and `--time-limit` bounds the solver only
/// between steps of its search.
pub const MAX_NODES: usize = 5_000;

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
    let program = Program::new(flat, roots, &kept, seed, bound);
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
    // A class left without a kept node takes its readers with it, and so on up.
    let mut alive: Vec<bool> = (0..flat.classes.len()).map(|c| flat.nodes_of(c).any(|n| kept[n])).collect();
    let mut dead: Vec<usize> = (0..flat.classes.len()).filter(|&c| !alive[c]).collect();
    while let Some(class) = dead.pop() {
        for &reader in flat.parents_of(class) {
            if std::mem::replace(&mut kept[reader], false) {
                let above = flat.node_class[reader];
                if alive[above] && !flat.nodes_of(above).any(|m| kept[m]) {
                    alive[above] = false;
                    dead.push(above);
                }
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
    fn new(flat: &Flat, roots: &[usize], kept: &[bool], seed: &[usize], bound: f64) -> Program {
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
            constraints.push(if roots.contains(&class) { picks(class).eq(1.0) } else { picks(class).leq(1.0) });
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

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use egg::Language;
    use proptest::prelude::*;
    use strider_ir::Op;
    use strider_ir::op::ConcatAttrs;

    use super::*;
    use crate::extract::extract;
    use crate::extract::tests::{Table, dag_cost, egraph_with_input, op};
    use crate::lang::Node;

    /// y = Concat(a, b), where a = Relu(s) or x + x, b = Sigmoid(s) or x · x, and s = Tanh(x).
    ///
    /// Greedy settles each class on its own cheapest set and never revisits it: for `a` alone, x + x
    /// (8) beats Relu(s) (1 + 10), and likewise for `b`, so y costs 1 + 8 + 8 = 17. Sharing `s` between
    /// the two — worth it only when both read it — costs 1 + 1 + 1 + 10 = 13, which the program finds.
    fn shared_only_pays_off_together() -> (TensorGraph, Id) {
        let (mut egraph, x) = egraph_with_input();
        let s = op(&mut egraph, Op::Tanh, &[x], "s");
        let a = op(&mut egraph, Op::Relu, &[s], "a");
        let b = op(&mut egraph, Op::Sigmoid, &[s], "b");
        let sum = op(&mut egraph, Op::Add, &[x, x], "sum");
        let product = op(&mut egraph, Op::Mul, &[x, x], "product");
        egraph.union(a, sum);
        egraph.union(b, product);
        let y = op(&mut egraph, Op::Concat(ConcatAttrs { axis: 1 }), &[a, b], "y");
        egraph.rebuild();
        (egraph, y)
    }

    const SHARING: Table =
        Table(&[("Tanh", 10.0), ("Relu", 1.0), ("Sigmoid", 1.0), ("Add", 8.0), ("Mul", 8.0), ("Concat", 1.0)]);

    #[test]
    fn the_program_shares_a_value_greedy_does_not() {
        let (egraph, y) = shared_only_pays_off_together();
        let greedy = extract(&egraph, &[y], &SHARING, None).unwrap();
        assert_eq!(greedy.cost, 17.0);
        let exact = extract_exact(&egraph, &[y], &SHARING, None, MAX_NODES).unwrap();
        assert_eq!(exact.fallback, None);
        assert_eq!((exact.extraction.cost, exact.greedy_cost), (13.0, 17.0));
        assert_eq!(dag_cost(&egraph, &[y], &exact.extraction.choice, &SHARING), 13.0);
        let chosen: HashSet<String> = exact.extraction.choice.values().map(|n| n.to_string()).collect();
        assert!(chosen.contains("Tanh") && chosen.contains("Relu") && chosen.contains("Sigmoid"), "{chosen:?}");
        assert!(!chosen.contains("Add") && !chosen.contains("Mul"), "{chosen:?}");
    }

    #[test]
    fn a_program_over_the_limit_keeps_greedy_and_says_why() {
        let (egraph, y) = shared_only_pays_off_together();
        let exact = extract_exact(&egraph, &[y], &SHARING, None, 3).unwrap();
        assert!(matches!(exact.fallback, Some(Fallback::TooBig { limit: 3, .. })), "{:?}", exact.fallback);
        assert_eq!((exact.extraction.cost, exact.greedy_cost), (17.0, 17.0));
    }

    #[test]
    fn a_deadline_already_past_keeps_greedy_and_says_why() {
        let (egraph, y) = shared_only_pays_off_together();
        let exact = extract_exact(&egraph, &[y], &SHARING, Some(Instant::now()), MAX_NODES).unwrap();
        assert_eq!(exact.fallback, Some(Fallback::Deadline));
        assert_eq!(exact.extraction.cost, exact.greedy_cost);
        assert_eq!(dag_cost(&egraph, &[y], &exact.extraction.choice, &SHARING), exact.greedy_cost);
    }

    #[test]
    fn an_output_nothing_supports_is_the_same_error_as_greedy() {
        let (egraph, y) = shared_only_pays_off_together();
        let refusing = Table(&[("Relu", 1.0)]);
        let greedy = extract(&egraph, &[y], &refusing, None).unwrap_err().to_string();
        let exact = extract_exact(&egraph, &[y], &refusing, None, MAX_NODES).unwrap_err().to_string();
        assert_eq!(exact, greedy);
    }

    /// Costs per e-node (`None`: unsupported), for random e-graphs.
    struct PerNode(HashMap<Node, Option<f64>>);

    impl CostModel for PerNode {
        fn op_cost(&self, _: &crate::cost::OpInstance) -> Option<f64> {
            None
        }

        fn node_cost(&self, _: &TensorGraph, node: &Node) -> Option<f64> {
            self.0.get(node).copied().flatten()
        }
    }

    /// The cheapest acyclic choice for `roots`, by trying every choice of one node per class.
    fn brute_force(egraph: &TensorGraph, roots: &[Id], model: &PerNode) -> Option<f64> {
        let classes: Vec<Id> = egraph.classes().map(|c| c.id).collect();
        let sizes: Vec<usize> = classes.iter().map(|&c| egraph[c].nodes.len()).collect();
        let mut pick = vec![0; classes.len()];
        let mut best: Option<f64> = None;
        loop {
            let choice: HashMap<Id, &Node> =
                classes.iter().zip(&pick).map(|(&c, &i)| (c, &egraph[c].nodes[i])).collect();
            best = match (dag_cost_if_acyclic(egraph, roots, &choice, model), best) {
                (Some(c), Some(b)) => Some(c.min(b)),
                (c, b) => c.or(b),
            };
            // The next choice, as a mixed-radix counter.
            let Some(i) = (0..pick.len()).find(|&i| pick[i] + 1 < sizes[i]) else { return best };
            pick[i] += 1;
            pick[..i].iter_mut().for_each(|p| *p = 0);
        }
    }

    fn dag_cost_if_acyclic(
        egraph: &TensorGraph,
        roots: &[Id],
        choice: &HashMap<Id, &Node>,
        model: &PerNode,
    ) -> Option<f64> {
        fn visit(
            egraph: &TensorGraph,
            class: Id,
            choice: &HashMap<Id, &Node>,
            model: &PerNode,
            open: &mut HashSet<Id>,
            done: &mut HashSet<Id>,
        ) -> Option<f64> {
            if done.contains(&class) {
                return Some(0.0);
            }
            if !open.insert(class) {
                return None;
            }
            let node = choice[&class];
            let mut cost = model.node_cost(egraph, node)?;
            for &child in node.children() {
                cost += visit(egraph, egraph.find(child), choice, model, open, done)?;
            }
            open.remove(&class);
            done.insert(class);
            Some(cost)
        }
        let (mut open, mut done, mut total) = (HashSet::new(), HashSet::new(), 0.0);
        for &root in roots {
            total += visit(egraph, egraph.find(root), choice, model, &mut open, &mut done)?;
        }
        Some(total)
    }

    /// A random e-graph over one input: `steps` unary or binary ops on earlier values, then `unions`
    /// of pairs of values (which can make cycles), with a cost per e-node from `costs` (cost 9 means
    /// unsupported).
    fn random_egraph(
        steps: &[(u8, usize, usize)],
        unions: &[(usize, usize)],
        costs: &[u8],
    ) -> (TensorGraph, Vec<Id>, PerNode) {
        let (mut egraph, x) = egraph_with_input();
        let mut values = vec![x];
        for (i, &(kind, a, b)) in steps.iter().enumerate() {
            let (a, b) = (values[a % values.len()], values[b % values.len()]);
            let (o, inputs) = match kind % 5 {
                0 => (Op::Relu, vec![a]),
                1 => (Op::Sigmoid, vec![a]),
                2 => (Op::Tanh, vec![a]),
                3 => (Op::Add, vec![a, b]),
                _ => (Op::Mul, vec![a, b]),
            };
            values.push(op(&mut egraph, o, &inputs, &format!("v{i}")));
        }
        for &(a, b) in unions {
            egraph.union(values[a % values.len()], values[b % values.len()]);
        }
        egraph.rebuild();
        let mut model = HashMap::new();
        let nodes = egraph.classes().flat_map(|c| c.nodes.iter());
        for (i, node) in nodes.enumerate() {
            let cost = costs[i % costs.len()];
            model.insert(node.clone(), (cost != 9).then_some(f64::from(cost)));
        }
        let roots = vec![values[values.len() - 1], values[values.len() / 2]];
        (egraph, roots, PerNode(model))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The program's optimum is the brute-force optimum, never dearer than greedy, and fails
        /// exactly when no acyclic supported choice exists.
        #[test]
        fn exact_is_the_brute_force_optimum(
            steps in prop::collection::vec((0u8..5, 0usize..8, 0usize..8), 1..6),
            unions in prop::collection::vec((0usize..8, 0usize..8), 0..3),
            costs in prop::collection::vec(0u8..10, 1..12),
        ) {
            let (egraph, roots, model) = random_egraph(&steps, &unions, &costs);
            let best = brute_force(&egraph, &roots, &model);
            let exact = extract_exact(&egraph, &roots, &model, None, MAX_NODES);
            match (best, exact) {
                (Some(best), Ok(exact)) => {
                    prop_assert_eq!(exact.fallback, None);
                    prop_assert!((exact.extraction.cost - best).abs() < 1e-9, "exact {} vs brute force {best}", exact.extraction.cost);
                    prop_assert!(exact.extraction.cost <= exact.greedy_cost + 1e-9);
                    let choice: HashMap<Id, &Node> = exact.extraction.choice.iter().map(|(&c, n)| (c, n)).collect();
                    prop_assert_eq!(dag_cost_if_acyclic(&egraph, &roots, &choice, &model), Some(exact.extraction.cost));
                }
                (None, Err(_)) => {}
                (best, exact) => prop_assert!(false, "brute force {best:?}, exact {:?}", exact.map(|e| e.extraction.cost)),
            }
        }
    }
}
