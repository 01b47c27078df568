//! The e-class analysis: every class knows its shape and whether it depends only on constants, and the
//! analysis owns the data of graph inputs and constants the leaves refer to.

use std::collections::{BTreeMap, HashMap};

use egg::{Analysis, DidMerge, EGraph, Id, Symbol};
use strider_ir::format::DataSpec;
use strider_ir::{Initializer, Layout, Op, Shape};

use crate::lang::{Attrs, Node};

/// The e-graph type Strider saturates.
pub type TensorGraph = EGraph<Node, Tensors>;

/// A constant tensor known to the e-graph. The e-graph holds no copy of any data: an initializer's
/// data is shared with the graph it came from (or still deferred), and a rule's constant is produced
/// only when an extracted graph uses it.
#[derive(Clone, Debug)]
pub enum Constant {
    /// An initializer of the graph the e-graph was built from.
    Initializer(Initializer),
    /// A constant a rule creates, produced from `spec` (a generator) when a graph needs it.
    Generated {
        /// Its shape.
        shape: Shape,
        /// The generator.
        spec: DataSpec,
    },
}

impl Constant {
    /// The constant's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Constant::Initializer(init) => init.shape(),
            Constant::Generated { shape, .. } => shape.dims(),
        }
    }
}

/// The analysis: shapes of graph inputs, constant data, and readable names for classes.
#[derive(Debug, Default)]
pub struct Tensors {
    /// Shape of each graph input.
    pub inputs: HashMap<Symbol, Shape>,
    /// Data of each constant.
    pub constants: HashMap<Symbol, Constant>,
    /// A readable name per class (original value names, or names rules give what they create).
    pub names: BTreeMap<Id, String>,
    /// Most e-nodes the e-graph may hold (the saturation's node limit; `None`: no limit). A rule
    /// application that would pass it declines instead, so the limit holds within an iteration too.
    pub node_budget: Option<usize>,
    /// Rule applications declined because they would add too many e-nodes, with the reason.
    pub declined: Vec<Declined>,
}

/// A rule application declined before adding anything, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Declined {
    /// The rule.
    pub rule: String,
    /// The value it matched.
    pub value: String,
    /// Why it declined.
    pub reason: String,
}

/// What every class knows.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassData {
    /// The value's shape (`None` for attribute classes).
    pub shape: Option<Shape>,
    /// The value can be computed from constants alone (a weight-only subgraph).
    pub constant: bool,
    /// For an attribute class, the op it describes.
    pub attrs: Option<Op>,
    /// Storage of the value (a ConvMatrix is sparse).
    pub layout: Layout,
}

impl Analysis<Node> for Tensors {
    type Data = ClassData;

    fn make(egraph: &mut TensorGraph, enode: &Node, _id: Id) -> ClassData {
        match enode {
            Node::Input(name) => {
                let shape = egraph.analysis.inputs.get(name).cloned();
                ClassData { shape, constant: false, attrs: None, layout: Layout::Dense }
            }
            Node::Const(name) => ClassData {
                shape: egraph.analysis.constants.get(name).map(|c| Shape(c.shape().to_vec())),
                constant: true,
                attrs: None,
                layout: Layout::Dense,
            },
            Node::Attrs(Attrs { op, .. }) => {
                ClassData { shape: None, constant: true, attrs: Some(op.clone()), layout: Layout::Dense }
            }
            Node::Apply(_, children) => {
                let op = egraph[children[0]].data.attrs.clone();
                let inputs = &children[1..];
                let shapes: Option<Vec<Shape>> = inputs.iter().map(|&c| egraph[c].data.shape.clone()).collect();
                let (shape, layout) = match (op, shapes) {
                    (Some(op), Some(shapes)) => {
                        let refs: Vec<&Shape> = shapes.iter().collect();
                        let shape = op.infer(&refs).ok().and_then(|mut v| v.drain(..).next());
                        (shape, op.output_layout(&refs))
                    }
                    _ => (None, Layout::Dense),
                };
                let constant = inputs.iter().all(|&c| egraph[c].data.constant);
                ClassData { shape, constant, attrs: None, layout }
            }
        }
    }

    fn merge(&mut self, a: &mut ClassData, b: ClassData) -> DidMerge {
        let mut changed_a = false;
        if a.shape.is_none() && b.shape.is_some() {
            a.shape = b.shape.clone();
            changed_a = true;
        }
        if !a.constant && b.constant {
            a.constant = true;
            changed_a = true;
        }
        if a.attrs.is_none() && b.attrs.is_some() {
            a.attrs = b.attrs.clone();
            changed_a = true;
        }
        let changed_b = a.shape != b.shape || a.constant != b.constant || a.attrs != b.attrs;
        DidMerge(changed_a, changed_b)
    }
}

/// The shape of a value class (`None` for attribute classes or invalid values).
pub fn shape(egraph: &TensorGraph, id: Id) -> Option<&Shape> {
    egraph[id].data.shape.as_ref()
}

/// The op an attribute class describes.
pub fn attrs(egraph: &TensorGraph, id: Id) -> Option<&Op> {
    egraph[id].data.attrs.as_ref()
}

/// Adds `op` applied to `inputs`, after checking that its shape rule accepts them: a rule never puts an
/// invalid value into the e-graph. `name` labels the new class for readable extracted graphs.
pub fn add_op(egraph: &mut TensorGraph, op: Op, inputs: &[Id], name: impl Into<String>) -> Option<Id> {
    let shapes: Vec<Shape> = inputs.iter().map(|&i| shape(egraph, i).cloned()).collect::<Option<_>>()?;
    op.infer(&shapes.iter().collect::<Vec<_>>()).ok()?;
    for (i, &input) in inputs.iter().enumerate() {
        op.check_layout(i, egraph[input].data.layout).ok()?;
    }
    let op_name = Symbol::from(op.name());
    let attrs = egraph.add(Node::Attrs(Attrs::new(op)));
    let mut children = vec![attrs];
    children.extend_from_slice(inputs);
    let id = egraph.add(Node::Apply(op_name, children));
    egraph.analysis.names.entry(id).or_insert_with(|| name.into());
    Some(id)
}

/// Adds a constant leaf with this name and data.
pub fn add_const(egraph: &mut TensorGraph, name: &str, constant: Constant) -> Id {
    let symbol = Symbol::from(name);
    egraph.analysis.constants.insert(symbol, constant);
    let id = egraph.add(Node::Const(symbol));
    egraph.analysis.names.entry(id).or_insert_with(|| name.to_string());
    id
}
