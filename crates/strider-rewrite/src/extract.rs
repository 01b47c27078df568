//! DAG-aware greedy extraction: a class's cost is the cost of the *set* of e-nodes its best choice
//! needs, so a value shared by several consumers is paid for once (egg's default extractor counts it
//! once per use, as if the graph were a tree).
//!
//! Sweeping over every class until nothing changes, and copying each child's set into each
//! candidate's, is cubic on a chain of N blocks (75 s for 200). Instead, two passes each visit a
//! class again only when something below it changed:
//!
//! 1. **Tree costs**, Knuth's generalisation of Dijkstra's algorithm to e-graphs: a node becomes a
//!    candidate once all its children are settled, and a class is settled once, by its cheapest
//!    candidate. O(E log E); every supported class gets an acyclic choice. This pass is never cut
//!    short, so a deadline always leaves something to return.
//! 2. **DAG refinement**, classes in the order pass 1 settled them (children first, as far as the
//!    choices go): each node whose children have a choice costs the union of their sets plus itself,
//!    and a class whose choice improves queues its parents again. Sets are persistent
//!    (`extract/node_set.rs`): a class's set shares all but a few paths with its children's, and a
//!    union only walks where two sets differ, so a chain of N blocks costs about N log N. Ties are
//!    broken as a sweep over the classes in order would break them (see `Standing`), which keeps
//!    results stable. A deadline stops this pass; classes it did not reach keep pass 1's choice.

pub mod exact;
mod node_set;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::time::Instant;

use egg::{Id, Language};

use crate::analysis::TensorGraph;
use crate::cost::CostModel;
use crate::lang::Node;
use node_set::NodeSet;

/// Which extractor picks the graph (`--extractor`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Extractor {
    /// DAG-aware greedy ([`extract`]): about linear time, for any size.
    #[default]
    Greedy,
    /// The optimum of an integer program ([`exact::extract_exact`]) for e-graphs within
    /// [`exact::MAX_NODES`]; otherwise greedy's choice, with the reason.
    Exact,
}

impl Extractor {
    /// Both extractors, in the order `--help` lists them.
    pub const ALL: [Extractor; 2] = [Extractor::Greedy, Extractor::Exact];

    /// The name the command line uses.
    pub fn name(self) -> &'static str {
        match self {
            Extractor::Greedy => "greedy",
            Extractor::Exact => "exact",
        }
    }
}

impl std::str::FromStr for Extractor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Extractor::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| format!("unknown extractor `{s}`; expected greedy or exact"))
    }
}

impl std::fmt::Display for Extractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The best choice per class and the DAG cost of the choice reachable from the roots.
#[derive(Debug)]
pub struct Extraction {
    /// The chosen e-node of every class reachable from the roots.
    pub choice: HashMap<Id, Node>,
    /// Sum of the node costs of the chosen DAG, each class counted once.
    pub cost: f64,
    /// The deadline stopped the DAG refinement: the choice is valid but may cost more than an
    /// extraction without a deadline would find.
    pub cut_short: bool,
}

/// Why nothing could be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// A value has no representation the cost model supports.
    #[error(
        "value `{value}` has no supported form: every way to compute it needs one of {ops:?}, which the cost model does not support"
    )]
    Unsupported {
        /// A readable name of the value.
        value: String,
        /// Ops that were available for it.
        ops: Vec<String>,
    },
}

/// Extracts the cheapest DAG for `roots` under `model`. Past `deadline`, the refinement stops and the
/// best choice found so far is returned (see the module documentation); `None` means no deadline.
pub fn extract(
    egraph: &TensorGraph,
    roots: &[Id],
    model: &dyn CostModel,
    deadline: Option<Instant>,
) -> Result<Extraction, ExtractError> {
    let flat = Flat::new(egraph, model);
    let roots = flat.root_indices(roots);
    let (chosen, cut_short) = greedy(&flat, &roots, deadline)?;
    Ok(flat.extraction(&chosen, cut_short))
}

/// Both passes on `flat`: the chosen e-nodes reachable from `roots`, children before parents, and
/// whether the deadline cut the refinement short.
fn greedy(flat: &Flat, roots: &[usize], deadline: Option<Instant>) -> Result<(Vec<usize>, bool), ExtractError> {
    let tree = settle_tree_costs(flat);
    if let Some(&root) = roots.iter().find(|&&r| tree.node[r].is_none()) {
        return Err(unsupported(flat, root, &tree.node));
    }
    let refined = refine_dag_costs(flat, &tree.order, deadline);
    let merged: Vec<Option<usize>> =
        refined.best.iter().zip(&tree.node).map(|(dag, tree)| dag.as_ref().map(|b| b.node).or(*tree)).collect();
    // The refinement cannot close a cycle (a parent's set includes its children's, so a cycle would
    // need a class to beat its own cost), but pass 1's choice is acyclic by construction: fall back
    // to it rather than hand on a cycle should rounding (or negative costs) ever prove that wrong.
    let (chosen, acyclic) = chosen_dag(flat, roots, &merged);
    let chosen = if acyclic { chosen } else { chosen_dag(flat, roots, &tree.node).0 };
    Ok((chosen, refined.cut_short))
}

/// The e-graph numbered densely: classes `0..classes.len()` (in `egraph.classes()` order), e-nodes
/// `0..own.len()` class by class, and for each e-node its distinct child classes, so that both passes
/// work on vectors rather than hash maps keyed by `Id`.
struct Flat<'a> {
    egraph: &'a TensorGraph,
    /// The class `Id` of each class index.
    classes: Vec<Id>,
    /// Class index of each canonical `Id` (indexed by `usize::from(id)`).
    index_of: Vec<Option<usize>>,
    /// The nodes of class `c` are `first_node[c]..first_node[c + 1]`.
    first_node: Vec<usize>,
    /// The class of each node.
    node_class: Vec<usize>,
    /// Each node's own cost; `None` when the model does not support it (or a child is not a class).
    own: Vec<Option<f64>>,
    /// Each node's own cost, 0 where unsupported: the weights of [`NodeSet`] sums.
    weights: Vec<f64>,
    /// The distinct child classes of node `n` are `children[first_child[n]..first_child[n + 1]]`.
    first_child: Vec<usize>,
    children: Vec<usize>,
    /// The nodes reading class `c` are `parents[first_parent[c]..first_parent[c + 1]]`.
    first_parent: Vec<usize>,
    parents: Vec<usize>,
}

impl<'a> Flat<'a> {
    fn new(egraph: &'a TensorGraph, model: &dyn CostModel) -> Flat<'a> {
        let classes: Vec<Id> = egraph.classes().map(|c| c.id).collect();
        let mut index_of = vec![None; classes.iter().map(|&id| usize::from(id) + 1).max().unwrap_or(0)];
        for (i, &id) in classes.iter().enumerate() {
            index_of[usize::from(id)] = Some(i);
        }
        let (mut first_node, mut node_class, mut own) = (vec![0], Vec::new(), Vec::new());
        let (mut first_child, mut children) = (vec![0], Vec::new());
        for (c, &id) in classes.iter().enumerate() {
            for node in &egraph[id].nodes {
                let start = children.len();
                let mut known = true;
                for child in node.children() {
                    match index_of.get(usize::from(egraph.find(*child))).copied().flatten() {
                        Some(k) if !children[start..].contains(&k) => children.push(k),
                        Some(_) => {}
                        None => known = false,
                    }
                }
                first_child.push(children.len());
                node_class.push(c);
                own.push(if known { model.node_cost(egraph, node) } else { None });
            }
            first_node.push(own.len());
        }
        // Parents, counted then placed (a CSR transpose of `children`).
        let mut first_parent = vec![0; classes.len() + 1];
        for &child in &children {
            first_parent[child + 1] += 1;
        }
        for c in 0..classes.len() {
            first_parent[c + 1] += first_parent[c];
        }
        let mut parents = vec![0; children.len()];
        let mut next = first_parent.clone();
        for n in 0..own.len() {
            for &child in &children[first_child[n]..first_child[n + 1]] {
                parents[next[child]] = n;
                next[child] += 1;
            }
        }
        let weights = own.iter().map(|c| c.unwrap_or(0.0)).collect();
        Flat {
            egraph,
            classes,
            index_of,
            first_node,
            node_class,
            own,
            weights,
            first_child,
            children,
            first_parent,
            parents,
        }
    }

    /// The class indices of `roots` (those the e-graph holds).
    fn root_indices(&self, roots: &[Id]) -> Vec<usize> {
        roots.iter().filter_map(|&r| self.class_index(self.egraph.find(r))).collect()
    }

    /// The DAG cost of `chosen` (each e-node once).
    fn cost_of(&self, chosen: &[usize]) -> f64 {
        chosen.iter().map(|&n| self.own[n].unwrap_or(0.0)).sum()
    }

    /// `chosen` (e-nodes, at most one per class) as an [`Extraction`].
    fn extraction(&self, chosen: &[usize], cut_short: bool) -> Extraction {
        let choice = chosen.iter().map(|&n| (self.classes[self.node_class[n]], self.node(n).clone())).collect();
        Extraction { choice, cost: self.cost_of(chosen), cut_short }
    }

    fn class_index(&self, id: Id) -> Option<usize> {
        self.index_of.get(usize::from(id)).copied().flatten()
    }

    fn nodes_of(&self, class: usize) -> std::ops::Range<usize> {
        self.first_node[class]..self.first_node[class + 1]
    }

    fn children_of(&self, node: usize) -> &[usize] {
        &self.children[self.first_child[node]..self.first_child[node + 1]]
    }

    fn parents_of(&self, class: usize) -> &[usize] {
        &self.parents[self.first_parent[class]..self.first_parent[class + 1]]
    }

    fn node(&self, node: usize) -> &Node {
        let class = self.node_class[node];
        &self.egraph[self.classes[class]].nodes[node - self.first_node[class]]
    }
}

/// An f64 ordered by `total_cmp`, for the priority queue.
#[derive(Clone, Copy, PartialEq)]
struct Ordered(f64);

impl Eq for Ordered {}

impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The result of pass 1.
struct TreeChoice {
    /// The chosen node of each class; `None` where nothing supported computes it.
    node: Vec<Option<usize>>,
    /// Classes in the order they were settled: children before parents in the choice.
    order: Vec<usize>,
}

/// Pass 1: every class settled once, at its least tree cost (a shared child counted once per
/// reader), cheapest first. Ties go to the lower class index, then the lower node index, so the
/// result does not depend on the heap's internals.
fn settle_tree_costs(flat: &Flat) -> TreeChoice {
    let classes = flat.classes.len();
    let mut cost = vec![0.0; classes];
    let mut node = vec![None; classes];
    let mut order = Vec::with_capacity(classes);
    let mut unsettled_children: Vec<usize> = (0..flat.own.len()).map(|n| flat.children_of(n).len()).collect();
    let tree_cost = |n: usize, cost: &[f64]| {
        let own = flat.own[n].map(|own| own + flat.children_of(n).iter().map(|&k| cost[k]).sum::<f64>());
        own.map(|c| Reverse((Ordered(c), flat.node_class[n], n)))
    };
    let mut queue: BinaryHeap<_> =
        (0..flat.own.len()).filter(|&n| unsettled_children[n] == 0).filter_map(|n| tree_cost(n, &cost)).collect();
    while let Some(Reverse((Ordered(c), class, n))) = queue.pop() {
        if node[class].is_some() {
            continue;
        }
        (cost[class], node[class]) = (c, Some(n));
        order.push(class);
        for &parent in flat.parents_of(class) {
            unsettled_children[parent] -= 1;
            if unsettled_children[parent] == 0 && node[flat.node_class[parent]].is_none() {
                queue.extend(tree_cost(parent, &cost));
            }
        }
    }
    TreeChoice { node, order }
}

/// A class's choice in pass 2.
struct DagChoice {
    node: usize,
    /// The e-nodes the choice needs, itself included.
    needs: NodeSet,
    /// The sweep in which the choice can first be made when sweeping over the classes in order (see
    /// [`Standing`]).
    sweep: usize,
}

/// The result of pass 2.
struct DagCosts {
    /// The chosen node and its set, for each class the refinement reached.
    best: Vec<Option<DagChoice>>,
    /// The deadline stopped the refinement.
    cut_short: bool,
}

/// A candidate's standing: its DAG cost, then the sweep in which it can first be made, then its
/// place in its class.
///
/// Ties are broken as they were when extraction swept over every class, in `egraph.classes()`
/// order, until nothing changed, trying each class's nodes in order: the choice made first stayed.
/// A choice can be made in the first sweep after its children's choices: the same sweep for a child
/// earlier in the order, the next for a later one. This keeps results stable, and favours the forms
/// the e-graph held first: the original ops, then lowerings in the order the rules added them.
#[derive(Clone, Copy, Debug)]
struct Standing {
    cost: f64,
    /// (sweep, node index).
    first_made: (usize, usize),
}

impl Standing {
    /// Whether this replaces `old`: it costs less by more than rounding (1e-9 relative), or exactly
    /// as much and is made first. A class's standing only ever falls in this order, and it can take
    /// finitely many values, so the refinement ends.
    fn beats(self, old: Option<Standing>) -> bool {
        old.is_none_or(|old| {
            self.cost < old.cost - 1e-9 * old.cost.abs() || (self.cost == old.cost && self.first_made < old.first_made)
        })
    }
}

/// Pass 2: DAG costs, classes visited in pass 1's order (children before parents, as far as the
/// choices go) and visited again when a child's choice improves.
fn refine_dag_costs(flat: &Flat, order: &[usize], deadline: Option<Instant>) -> DagCosts {
    let classes = flat.classes.len();
    let mut rank = vec![usize::MAX; classes];
    for (r, &class) in order.iter().enumerate() {
        rank[class] = r;
    }
    let mut best: Vec<Option<DagChoice>> = (0..classes).map(|_| None).collect();
    let mut queued = vec![false; classes];
    for &class in order {
        queued[class] = true;
    }
    let mut queue: BinaryHeap<Reverse<usize>> = (0..order.len()).map(Reverse).collect();
    while let Some(Reverse(r)) = queue.pop() {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return DagCosts { best, cut_short: true };
        }
        let class = order[r];
        queued[class] = false;
        let Some(better) = best_candidate(flat, class, &best) else { continue };
        best[class] = Some(better);
        for &parent in flat.parents_of(class) {
            let parent_class = flat.node_class[parent];
            if rank[parent_class] != usize::MAX && !queued[parent_class] {
                queued[parent_class] = true;
                queue.push(Reverse(rank[parent_class]));
            }
        }
    }
    DagCosts { best, cut_short: false }
}

/// The best node of `class` by [`Standing`], if it beats the class's current choice. Nodes are tried
/// in the order of the sweep in which they can be made, then in their order in the class, each
/// against the best so far.
fn best_candidate(flat: &Flat, class: usize, best: &[Option<DagChoice>]) -> Option<DagChoice> {
    // Nodes whose children all have a choice, with the sweep in which they can be made.
    let mut ready: Vec<(usize, usize)> = flat
        .nodes_of(class)
        .filter(|&n| flat.own[n].is_some())
        .filter_map(|n| {
            let sweep = flat.children_of(n).iter().try_fold(0, |sweep, &k| match &best[k] {
                Some(b) if k != class => Some(sweep.max(b.sweep + usize::from(k > class))),
                _ => None,
            });
            Some((sweep?, n))
        })
        .collect();
    ready.sort_unstable();
    let mut incumbent = best[class].as_ref().map(|b| Standing { cost: b.needs.sum(), first_made: (b.sweep, b.node) });
    let mut winner = None;
    for (sweep, n) in ready {
        let own = flat.own[n].unwrap_or(0.0);
        let sets: Vec<&NodeSet> =
            flat.children_of(n).iter().filter_map(|&k| best[k].as_ref().map(|b| &b.needs)).collect();
        // The union costs at least the dearest child's set: skip the union when that already loses.
        let floor = own + sets.iter().map(|s| s.sum()).fold(0.0, f64::max);
        if incumbent.is_some_and(|old| floor > old.cost || (floor == old.cost && (sweep, n) >= old.first_made)) {
            continue;
        }
        // Grow the largest set, so the others are merged into it rather than it into them.
        let largest = (0..sets.len()).max_by_key(|&i| (sets[i].len(), Reverse(i)));
        let mut needs = largest.map_or_else(NodeSet::default, |i| sets[i].clone());
        for (i, s) in sets.iter().enumerate() {
            if Some(i) != largest {
                needs = needs.union(s, &flat.weights);
            }
        }
        // A child that needs this class would make the choice a cycle.
        if flat.nodes_of(class).any(|m| needs.contains(m as u32)) {
            continue;
        }
        let needs = needs.insert(n as u32, &flat.weights);
        let standing = Standing { cost: needs.sum(), first_made: (sweep, n) };
        if standing.beats(incumbent) {
            incumbent = Some(standing);
            winner = Some(DagChoice { node: n, needs, sweep });
        }
    }
    winner
}

/// The chosen node of every class reachable from `roots` through `choice`, children before parents,
/// and whether that choice is acyclic (a cycle is not followed around).
fn chosen_dag(flat: &Flat, roots: &[usize], choice: &[Option<usize>]) -> (Vec<usize>, bool) {
    #[derive(Clone, Copy, PartialEq)]
    enum Visit {
        New,
        Open,
        Done,
    }
    let mut state = vec![Visit::New; flat.classes.len()];
    let (mut chosen, mut acyclic) = (Vec::new(), true);
    for &root in roots {
        if state[root] != Visit::New {
            continue;
        }
        state[root] = Visit::Open;
        // Depth-first with an explicit stack, as chains can be thousands of classes deep: each entry
        // is a class and how many of its chosen node's children have been looked at.
        let mut stack = vec![(root, 0)];
        while let Some(&(class, next)) = stack.last() {
            let children = choice[class].map_or(&[][..], |n| flat.children_of(n));
            if let Some(&child) = children.get(next) {
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                match state[child] {
                    Visit::New => {
                        state[child] = Visit::Open;
                        stack.push((child, 0));
                    }
                    Visit::Open => acyclic = false,
                    Visit::Done => {}
                }
            } else {
                state[class] = Visit::Done;
                chosen.extend(choice[class]);
                stack.pop();
            }
        }
    }
    (chosen, acyclic)
}

/// Describes why `root` has no supported form: the first class below it (depth-first) that has an op
/// node the model refuses itself, and every refused op reachable from the root.
fn unsupported(flat: &Flat, root: usize, choice: &[Option<usize>]) -> ExtractError {
    let refused = |class: usize| -> Vec<String> {
        flat.nodes_of(class)
            .filter(|&n| flat.own[n].is_none() && flat.node(n).op_name().is_some())
            .map(|n| flat.node(n).to_string())
            .collect()
    };
    let (mut culprit, mut ops) = (None, Vec::new());
    let (mut stack, mut seen) = (vec![root], HashSet::new());
    while let Some(class) = stack.pop() {
        if choice[class].is_some() || !seen.insert(class) {
            continue;
        }
        let here = refused(class);
        if culprit.is_none() && !here.is_empty() {
            culprit = Some(class);
        }
        ops.extend(here);
        let egraph = flat.egraph;
        let below = egraph[flat.classes[class]].nodes.iter().flat_map(|n| n.children().iter());
        stack.extend(below.filter_map(|&c| flat.class_index(egraph.find(c))));
    }
    let culprit = flat.classes[culprit.unwrap_or(root)];
    let value = flat
        .egraph
        .analysis
        .names
        .iter()
        .find(|(k, _)| flat.egraph.find(**k) == culprit)
        .map_or_else(|| format!("class {culprit}"), |(_, n)| n.clone());
    ops.sort();
    ops.dedup();
    ExtractError::Unsupported { value, ops }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use egg::Symbol;
    use ndarray::{ArrayD, IxDyn};
    use strider_ir::format::DataSpec;
    use strider_ir::op::{ConcatAttrs, ConvAttrs, ConvTransposeAttrs};
    use strider_ir::{Graph, GraphBuilder, Limits, Op, Shape};

    use super::*;
    use crate::analysis::{Tensors, add_op};
    use crate::convert::to_graph;
    use crate::cost::{Flops, Memory, Target};
    use crate::pipeline::{RunLimits, saturate};
    use crate::strategy::Strategy;

    /// Costs by op name; leaves are free and unlisted ops unsupported.
    pub(super) struct Table(pub(super) &'static [(&'static str, f64)]);

    impl CostModel for Table {
        fn op_cost(&self, op: &crate::cost::OpInstance) -> Option<f64> {
            self.0.iter().find(|(name, _)| *name == op.op.name()).map(|&(_, cost)| cost)
        }

        fn node_cost(&self, _: &TensorGraph, node: &Node) -> Option<f64> {
            match node.op_name() {
                Some(op) => self.0.iter().find(|(name, _)| *name == op.as_str()).map(|&(_, cost)| cost),
                None => Some(0.0),
            }
        }
    }

    const TABLE: Table = Table(&[("Tanh", 10.0), ("Relu", 1.0), ("Sigmoid", 1.0), ("Add", 1.0), ("Mul", 15.0)]);

    /// An e-graph with one input `x` of shape [1, 2, 4, 4].
    pub(super) fn egraph_with_input() -> (TensorGraph, Id) {
        let mut analysis = Tensors::default();
        analysis.inputs.insert(Symbol::from("x"), Shape(vec![1, 2, 4, 4]));
        let mut egraph = TensorGraph::new(analysis);
        let x = egraph.add(Node::Input(Symbol::from("x")));
        (egraph, x)
    }

    pub(super) fn op(egraph: &mut TensorGraph, op: Op, inputs: &[Id], name: &str) -> Id {
        add_op(egraph, op, inputs, name).unwrap()
    }

    /// The cost of `choice` computed from scratch: each class reachable from `roots` counted once.
    pub(super) fn dag_cost(
        egraph: &TensorGraph,
        roots: &[Id],
        choice: &HashMap<Id, Node>,
        model: &dyn CostModel,
    ) -> f64 {
        let (mut stack, mut seen, mut total) = (roots.to_vec(), HashSet::new(), 0.0);
        while let Some(id) = stack.pop() {
            let id = egraph.find(id);
            if seen.insert(id) {
                total += model.node_cost(egraph, &choice[&id]).unwrap();
                stack.extend(choice[&id].children());
            }
        }
        total
    }

    /// ConvTranspose k4 s2 p1 then Conv k4 s2 p1, `blocks` times, 4 → 4 channels.
    pub(super) fn chain(blocks: usize) -> Graph {
        let mut b = GraphBuilder::new("chain", Limits::default());
        b.input("v0", vec![1, 4, 6, 6]);
        for i in 0..2 * blocks {
            let (strides, pads) = (vec![2, 2], vec![1; 4]);
            let op = if i % 2 == 0 {
                Op::ConvTranspose(ConvTransposeAttrs { strides, pads, ..Default::default() })
            } else {
                Op::Conv(ConvAttrs { strides, pads, ..Default::default() })
            };
            let w = format!("w{i}");
            b.initializer(w.clone(), ArrayD::from_elem(IxDyn(&[4, 4, 4, 4]), 0.1), DataSpec::Fill(0.1));
            b.node(format!("n{i}"), op, [format!("v{i}"), w], [format!("v{}", i + 1)]);
        }
        b.output(format!("v{}", 2 * blocks));
        b.finish().unwrap()
    }

    pub(super) fn npu() -> Target {
        let supported = ["Conv", "MatMul", "Add", "Reshape", "Transpose", "Pad", "Slice", "DepthToSpace", "ZeroInsert"];
        Target {
            name: "npu".into(),
            supported: supported.iter().map(|s| s.to_string()).collect(),
            flop_factor: [("Conv".to_string(), 0.25)].into(),
            byte_cost: 1.0,
            kernels: Default::default(),
            kernels_by_threads: Default::default(),
        }
    }

    #[test]
    fn shared_values_are_paid_for_once() {
        let (mut egraph, x) = egraph_with_input();
        let shared = op(&mut egraph, Op::Tanh, &[x], "shared");
        let a = op(&mut egraph, Op::Relu, &[shared], "a");
        let b = op(&mut egraph, Op::Sigmoid, &[shared], "b");
        let y = op(&mut egraph, Op::Concat(ConcatAttrs { axis: 1 }), &[a, b], "y");
        egraph.rebuild();
        let table = Table(&[("Tanh", 10.0), ("Relu", 1.0), ("Sigmoid", 1.0), ("Concat", 1.0)]);
        let extraction = extract(&egraph, &[y], &table, None).unwrap();
        // Tanh once (a tree would count it twice: 23).
        assert_eq!(extraction.cost, 13.0);
        assert_eq!(extraction.choice.len(), 9, "five values and the attributes of four ops");
    }

    /// `y` is Relu(t) + Sigmoid(t) with t = Tanh(x) (tree cost 23, DAG cost 13) or x · x (15 either
    /// way): the tree pass picks the product, the DAG refinement the sum.
    #[test]
    fn the_cheapest_dag_wins_over_the_cheapest_tree() {
        let (mut egraph, x) = egraph_with_input();
        let t = op(&mut egraph, Op::Tanh, &[x], "t");
        let (r, s) = (op(&mut egraph, Op::Relu, &[t], "r"), op(&mut egraph, Op::Sigmoid, &[t], "s"));
        let sum = op(&mut egraph, Op::Add, &[r, s], "y");
        let product = op(&mut egraph, Op::Mul, &[x, x], "product");
        egraph.union(sum, product);
        egraph.rebuild();
        let y = egraph.find(sum);
        let flat = Flat::new(&egraph, &TABLE);
        let tree = settle_tree_costs(&flat).node[flat.class_index(y).unwrap()].unwrap();
        assert_eq!(flat.node(tree).to_string(), "Mul");
        let extraction = extract(&egraph, &[y], &TABLE, None).unwrap();
        assert_eq!(extraction.choice[&y].to_string(), "Add");
        assert_eq!(extraction.cost, 13.0);
        assert!(!extraction.cut_short);
    }

    #[test]
    fn a_node_that_needs_its_own_class_is_never_chosen() {
        let (mut egraph, x) = egraph_with_input();
        // x = Relu(Relu(x)) and x = Sigmoid(x), both free, as a bad rule might state.
        let once = op(&mut egraph, Op::Relu, &[x], "once");
        let twice = op(&mut egraph, Op::Relu, &[once], "twice");
        let looped = op(&mut egraph, Op::Sigmoid, &[x], "looped");
        egraph.union(x, twice);
        egraph.union(x, looped);
        egraph.rebuild();
        let free = Table(&[("Relu", 0.0), ("Sigmoid", 0.0)]);
        let extraction = extract(&egraph, &[once], &free, None).unwrap();
        assert_eq!(extraction.choice[&egraph.find(x)].to_string(), "input:x");
        assert_eq!(extraction.choice[&egraph.find(once)].to_string(), "Relu");
        let graph = to_graph(
            &egraph,
            &extraction.choice,
            &[once],
            "g",
            &[("x".into(), Shape(vec![1, 2, 4, 4]))],
            &["y".into()],
            &Limits::default(),
        );
        assert!(graph.is_ok(), "{graph:?}");
    }

    #[test]
    fn a_value_nothing_supported_computes_is_named() {
        let (mut egraph, x) = egraph_with_input();
        let shared = op(&mut egraph, Op::Tanh, &[x], "shared");
        let y = op(&mut egraph, Op::Relu, &[shared], "y");
        egraph.rebuild();
        let error = extract(&egraph, &[y], &Table(&[("Relu", 1.0)]), None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "value `shared` has no supported form: every way to compute it needs one of [\"Tanh\"], which the cost model does not support"
        );
    }

    /// On a saturated chain, under every cost model: the reported cost is that of the chosen DAG,
    /// and the choice is a valid graph.
    #[test]
    fn the_reported_cost_is_the_dag_cost_of_the_choice() {
        let graph = chain(3);
        let saturated = saturate(&graph, &Strategy::Auto.rules(), &RunLimits::default());
        let target = npu();
        let models: [&dyn CostModel; 4] = [&Flops::default(), &Flops { fold_constants: true }, &Memory, &target];
        for model in models {
            let extraction = extract(&saturated.egraph, &saturated.roots, model, None).unwrap();
            let recomputed = dag_cost(&saturated.egraph, &saturated.roots, &extraction.choice, model);
            assert!(
                (extraction.cost - recomputed).abs() <= 1e-12 * recomputed.abs(),
                "{} vs {recomputed}",
                extraction.cost
            );
            let inputs = [("v0".to_string(), Shape(vec![1, 4, 6, 6]))];
            let out = to_graph(
                &saturated.egraph,
                &extraction.choice,
                &saturated.roots,
                "chain",
                &inputs,
                &["y".into()],
                &Limits::default(),
            );
            assert!(out.is_ok(), "{out:?}");
        }
    }

    /// A deadline already past still gives a valid choice (pass 1's), never a panic or an error.
    #[test]
    fn a_deadline_already_past_still_gives_a_valid_extraction() {
        let graph = chain(3);
        let saturated = saturate(&graph, &Strategy::Auto.rules(), &RunLimits::default());
        let model = Flops::default();
        let hurried = extract(&saturated.egraph, &saturated.roots, &model, Some(Instant::now())).unwrap();
        let unhurried = extract(&saturated.egraph, &saturated.roots, &model, None).unwrap();
        assert!(hurried.cut_short && !unhurried.cut_short);
        assert_eq!(hurried.cost, dag_cost(&saturated.egraph, &saturated.roots, &hurried.choice, &model));
        assert!(hurried.cost >= unhurried.cost);
        let inputs = [("v0".to_string(), Shape(vec![1, 4, 6, 6]))];
        let out = to_graph(
            &saturated.egraph,
            &hurried.choice,
            &saturated.roots,
            "chain",
            &inputs,
            &["y".into()],
            &Limits::default(),
        );
        assert!(out.is_ok(), "{out:?}");
    }
}
