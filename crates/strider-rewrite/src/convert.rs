//! Graph ⇄ e-graph. A graph value becomes one e-class (sharing is kept: a value read twice is one
//! class); an extracted choice of one e-node per class becomes a valid IR graph again, with the
//! original names where a class stands for an original value and readable generated names elsewhere.

use std::collections::{HashMap, HashSet};

use egg::{Id, Symbol};
use strider_ir::{Graph, GraphBuilder, Limits, Op};

use crate::analysis::{Constant, TensorGraph, Tensors, add_const, add_op};
use crate::lang::Node;

/// An e-graph built from a graph, with the classes of the graph's outputs.
pub struct Seeded {
    /// The e-graph.
    pub egraph: TensorGraph,
    /// One class per graph output, in order.
    pub roots: Vec<Id>,
}

/// Why an extracted choice could not become a graph.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A class needed for the outputs has no chosen node.
    #[error("no e-node was chosen for class {0}")]
    Unchosen(Id),
    /// The chosen nodes form a cycle.
    #[error("the chosen e-nodes form a cycle through class {0}")]
    Cycle(Id),
    /// The resulting graph is invalid (a bug in a rule).
    #[error("the extracted graph is invalid: {0}")]
    Invalid(#[from] strider_ir::Error),
}

/// Builds the e-graph of `graph`.
pub fn to_egraph(graph: &Graph) -> Seeded {
    let mut analysis = Tensors::default();
    for &v in graph.inputs() {
        analysis.inputs.insert(Symbol::from(graph.value(v).name.as_str()), graph.shape(v).clone());
    }
    let mut egraph = TensorGraph::new(analysis);
    let mut class: HashMap<strider_ir::ValueId, Id> = HashMap::new();
    for &v in graph.inputs() {
        let name = &graph.value(v).name;
        let id = egraph.add(Node::Input(Symbol::from(name.as_str())));
        egraph.analysis.names.insert(id, name.clone());
        class.insert(v, id);
    }
    for init in graph.initializers() {
        let name = &graph.value(init.value).name;
        let id = add_const(&mut egraph, name, Constant::Initializer(init.clone()));
        class.insert(init.value, id);
    }
    for (_, node) in graph.nodes() {
        let inputs: Vec<Id> = node.inputs.iter().map(|v| class[v]).collect();
        let out = node.outputs[0];
        let id = add_op(&mut egraph, node.op.clone(), &inputs, graph.value(out).name.clone())
            .expect("a validated graph's nodes pass their shape rules");
        class.insert(out, id);
    }
    egraph.rebuild();
    let roots = graph.outputs().iter().map(|v| egraph.find(class[v])).collect();
    Seeded { egraph, roots }
}

/// Turns a choice of one e-node per class into a graph named `name`, with `inputs` declared in this
/// order and `outputs` named as given (one per root).
pub fn to_graph(
    egraph: &TensorGraph,
    choice: &HashMap<Id, Node>,
    roots: &[Id],
    name: &str,
    inputs: &[(String, strider_ir::Shape)],
    outputs: &[String],
    limits: &Limits,
) -> Result<Graph, ConvertError> {
    let mut names: HashMap<Id, String> = HashMap::new();
    for (&id, n) in &egraph.analysis.names {
        names.entry(egraph.find(id)).or_insert_with(|| n.clone());
    }
    let mut b = GraphBuilder::new(name, *limits);
    for (n, s) in inputs {
        b.input(n.clone(), s.clone());
    }
    let mut emitter = Emitter {
        egraph,
        choice,
        names,
        builder: b,
        emitted: HashMap::new(),
        used_names: inputs.iter().map(|(n, _)| n.clone()).collect(),
        visiting: HashSet::new(),
    };
    // Graph outputs keep their names: reserve them first.
    for (root, out) in roots.iter().zip(outputs) {
        emitter.names.insert(egraph.find(*root), out.clone());
    }
    let mut root_values = Vec::new();
    for root in roots {
        root_values.push(emitter.emit(egraph.find(*root))?);
    }
    for (value, out) in root_values.iter().zip(outputs) {
        if value != out {
            // The output class is an input, a constant or another output: copy it under its name.
            emitter.builder.node(format!("{out}.identity"), Op::Identity, [value.clone()], [out.clone()]);
        }
        emitter.builder.output(out.clone());
    }
    Ok(emitter.builder.finish()?)
}

struct Emitter<'a> {
    egraph: &'a TensorGraph,
    choice: &'a HashMap<Id, Node>,
    names: HashMap<Id, String>,
    builder: GraphBuilder,
    emitted: HashMap<Id, String>,
    used_names: HashSet<String>,
    visiting: HashSet<Id>,
}

impl Emitter<'_> {
    fn fresh(&mut self, base: &str) -> String {
        let mut candidate = base.to_string();
        let mut n = 1;
        while self.used_names.contains(&candidate) {
            n += 1;
            candidate = format!("{base}_{n}");
        }
        self.used_names.insert(candidate.clone());
        candidate
    }

    /// Emits the value of class `id`, returning its value name.
    fn emit(&mut self, id: Id) -> Result<String, ConvertError> {
        let id = self.egraph.find(id);
        if let Some(name) = self.emitted.get(&id) {
            return Ok(name.clone());
        }
        if !self.visiting.insert(id) {
            return Err(ConvertError::Cycle(id));
        }
        let node = self.choice.get(&id).ok_or(ConvertError::Unchosen(id))?;
        let value = match node {
            Node::Input(s) => s.to_string(),
            Node::Const(s) => {
                if self.used_names.insert(s.to_string()) {
                    match &self.egraph.analysis.constants[s] {
                        Constant::Initializer(init) => self.builder.copy_initializer(s.to_string(), init),
                        Constant::Generated { shape, spec } => {
                            self.builder.generated_initializer(s.to_string(), shape.clone(), spec.clone())
                        }
                    };
                }
                s.to_string()
            }
            Node::Attrs(_) => unreachable!("attribute classes are never values"),
            Node::Apply(op_name, children) => {
                let op = self.egraph[children[0]].data.attrs.clone().ok_or(ConvertError::Unchosen(children[0]))?;
                let mut inputs = Vec::with_capacity(children.len() - 1);
                for &c in &children[1..] {
                    inputs.push(self.emit(c)?);
                }
                let base = self.names.get(&id).cloned().unwrap_or_else(|| op_name.to_string().to_lowercase());
                let value = self.fresh(&base);
                let node_name = self.fresh(&format!("{value}.{}", op_name.to_string().to_lowercase()));
                self.builder.node(node_name, op, inputs, vec![value.clone()]);
                value
            }
        };
        self.visiting.remove(&id);
        self.emitted.insert(id, value.clone());
        Ok(value)
    }
}
