//! DAG-aware greedy extraction: a class's cost is the cost of the *set* of classes its best choice
//! needs, so a value shared by several consumers is paid for once (egg's default extractor counts it
//! once per use, as if the graph were a tree).

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use egg::{Id, Language};

use crate::analysis::TensorGraph;
use crate::cost::CostModel;
use crate::lang::Node;

/// The best choice per class and the DAG cost of the choice reachable from the roots.
#[derive(Debug)]
pub struct Extraction {
    /// The chosen e-node of every class reachable from the roots.
    pub choice: HashMap<Id, Node>,
    /// Sum of the node costs of the chosen DAG, each class counted once.
    pub cost: f64,
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

/// Each e-node's own cost, by (class, index in the class); `None` when unsupported.
type Own = HashMap<(Id, usize), Option<f64>>;

#[derive(Clone)]
struct Best {
    total: f64,
    node: usize,
    members: Rc<BTreeMap<Id, f64>>,
}

/// Extracts the cheapest DAG for `roots` under `model`.
pub fn extract(egraph: &TensorGraph, roots: &[Id], model: &dyn CostModel) -> Result<Extraction, ExtractError> {
    let mut best: HashMap<Id, Best> = HashMap::new();
    // Node costs do not change between sweeps.
    let own: Own = egraph
        .classes()
        .flat_map(|c| c.nodes.iter().enumerate().map(move |(i, n)| ((c.id, i), n)))
        .map(|(key, n)| (key, model.node_cost(egraph, n)))
        .collect();
    loop {
        let mut changed = false;
        for class in egraph.classes() {
            for (i, node) in class.nodes.iter().enumerate() {
                let Some(cost) = own[&(class.id, i)] else { continue };
                let mut members: Option<BTreeMap<Id, f64>> = Some(BTreeMap::new());
                for child in node.children() {
                    let child = egraph.find(*child);
                    match (best.get(&child), members.as_mut()) {
                        (Some(b), Some(m)) if !b.members.contains_key(&class.id) && child != class.id => {
                            m.extend(b.members.iter().map(|(k, v)| (*k, *v)));
                        }
                        _ => members = None,
                    }
                }
                let Some(mut members) = members else { continue };
                members.insert(class.id, cost);
                let total: f64 = members.values().sum();
                if best.get(&class.id).is_none_or(|b| total < b.total - 1e-9 * b.total.abs()) {
                    best.insert(class.id, Best { total, node: i, members: Rc::new(members) });
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut choice = HashMap::new();
    let mut stack: Vec<Id> = roots.iter().map(|&r| egraph.find(r)).collect();
    let mut cost = 0.0;
    while let Some(id) = stack.pop() {
        if choice.contains_key(&id) {
            continue;
        }
        let b = best.get(&id).ok_or_else(|| unsupported(egraph, id, &best, &own))?;
        let node = egraph[id].nodes[b.node].clone();
        cost += own[&(id, b.node)].unwrap_or(0.0);
        stack.extend(node.children().iter().map(|&c| egraph.find(c)));
        choice.insert(id, node);
    }
    Ok(Extraction { choice, cost })
}

/// Describes why `root` has no supported form: the first class below it (depth-first) that has an op
/// node the model refuses itself, and every refused op reachable from the root.
fn unsupported(egraph: &TensorGraph, root: Id, best: &HashMap<Id, Best>, own: &Own) -> ExtractError {
    let refused = |id: Id| -> Vec<String> {
        egraph[id]
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| own[&(id, *i)].is_none() && n.op_name().is_some())
            .map(|(_, n)| n.to_string())
            .collect()
    };
    let (mut culprit, mut ops) = (None, Vec::new());
    let (mut stack, mut seen) = (vec![root], std::collections::HashSet::new());
    while let Some(id) = stack.pop() {
        if best.contains_key(&id) || !seen.insert(id) {
            continue;
        }
        let here = refused(id);
        if culprit.is_none() && !here.is_empty() {
            culprit = Some(id);
        }
        ops.extend(here);
        stack.extend(egraph[id].nodes.iter().flat_map(|n| n.children().iter().map(|&c| egraph.find(c))));
    }
    let culprit = culprit.unwrap_or(root);
    let value = egraph
        .analysis
        .names
        .iter()
        .find(|(k, _)| egraph.find(**k) == culprit)
        .map_or_else(|| format!("class {culprit}"), |(_, n)| n.clone());
    ops.sort();
    ops.dedup();
    ExtractError::Unsupported { value, ops }
}
