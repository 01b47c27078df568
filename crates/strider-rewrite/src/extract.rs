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
    #[error("value `{value}` has no supported form: the cost model supports none of {ops:?}")]
    Unsupported {
        /// A readable name of the value.
        value: String,
        /// Ops that were available for it.
        ops: Vec<String>,
    },
}

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
    let own: HashMap<(Id, usize), Option<f64>> = egraph
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
        let b = best.get(&id).ok_or_else(|| unsupported(egraph, id, &best))?;
        let node = egraph[id].nodes[b.node].clone();
        cost += own[&(id, b.node)].unwrap_or(0.0);
        stack.extend(node.children().iter().map(|&c| egraph.find(c)));
        choice.insert(id, node);
    }
    Ok(Extraction { choice, cost })
}

/// Finds the deepest class under `id` without a supported form and describes it.
fn unsupported(egraph: &TensorGraph, id: Id, best: &HashMap<Id, Best>) -> ExtractError {
    let mut current = id;
    // Walk down while some child lacks a form: the culprit is where all children have one.
    'walk: for _ in 0..egraph.number_of_classes() {
        for node in &egraph[current].nodes {
            if let Some(&missing) = node.children().iter().find(|&&c| !best.contains_key(&egraph.find(c))) {
                current = egraph.find(missing);
                continue 'walk;
            }
        }
        break;
    }
    let value = egraph
        .analysis
        .names
        .iter()
        .find(|(k, _)| egraph.find(**k) == current)
        .map_or_else(|| format!("class {current}"), |(_, n)| n.clone());
    let mut ops: Vec<String> = egraph[current].nodes.iter().map(|n| n.to_string()).collect();
    ops.sort();
    ops.dedup();
    ExtractError::Unsupported { value, ops }
}
