//! The e-graph language. Every IR op becomes an [`Node::Apply`] whose first child is an e-class
//! holding exactly one [`Node::Attrs`] leaf (the op with its attributes), so patterns stay readable —
//! `(ConvTranspose ?a ?x ?w)` matches any attributes — and appliers read the attributes from `?a`.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use egg::{Id, Language, Symbol};
use strider_ir::Op;
use strider_ir::format::op_to_ron;

/// An op's attributes as an e-graph leaf. Two leaves are equal when their RON texts are, which also
/// gives floats (scales, alpha, epsilon) a total order.
#[derive(Clone, Debug)]
pub struct Attrs {
    /// The op with its attributes.
    pub op: Op,
    key: String,
}

impl Attrs {
    /// Wraps an op.
    pub fn new(op: Op) -> Self {
        let key = op_to_ron(&op);
        Attrs { op, key }
    }
}

impl PartialEq for Attrs {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Attrs {}
impl Hash for Attrs {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}
impl PartialOrd for Attrs {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Attrs {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

/// An e-node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    /// A graph input, by name.
    Input(Symbol),
    /// A constant tensor (an initializer), by name; its data lives in the analysis.
    Const(Symbol),
    /// The attributes of an op.
    Attrs(Attrs),
    /// An op (by its ONNX name) applied to `[attrs, inputs…]`.
    Apply(Symbol, Vec<Id>),
}

impl Node {
    /// The op name of an `Apply`.
    pub fn op_name(&self) -> Option<Symbol> {
        match self {
            Node::Apply(name, _) => Some(*name),
            _ => None,
        }
    }
}

impl Language for Node {
    type Discriminant = (u8, Option<Symbol>, usize);

    fn discriminant(&self) -> Self::Discriminant {
        match self {
            Node::Input(s) => (0, Some(*s), 0),
            Node::Const(s) => (1, Some(*s), 0),
            Node::Attrs(_) => (2, None, 0),
            Node::Apply(op, children) => (3, Some(*op), children.len()),
        }
    }

    fn matches(&self, other: &Self) -> bool {
        match (self, other) {
            (Node::Apply(a, x), Node::Apply(b, y)) => a == b && x.len() == y.len(),
            (a, b) => a == b,
        }
    }

    fn children(&self) -> &[Id] {
        match self {
            Node::Apply(_, children) => children,
            _ => &[],
        }
    }

    fn children_mut(&mut self) -> &mut [Id] {
        match self {
            Node::Apply(_, children) => children,
            _ => &mut [],
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Input(s) => write!(f, "input:{s}"),
            Node::Const(s) => write!(f, "const:{s}"),
            Node::Attrs(a) => f.write_str(&a.key),
            Node::Apply(op, _) => write!(f, "{op}"),
        }
    }
}

impl egg::FromOp for Node {
    type Error = egg::FromOpError;

    /// Patterns name ops by their ONNX name; leaves are `input:NAME` and `const:NAME`.
    fn from_op(op: &str, children: Vec<Id>) -> Result<Self, Self::Error> {
        match (op.split_once(':'), children.is_empty()) {
            (Some(("input", name)), true) => Ok(Node::Input(name.into())),
            (Some(("const", name)), true) => Ok(Node::Const(name.into())),
            (None, false) => Ok(Node::Apply(op.into(), children)),
            _ => Err(egg::FromOpError::new(op, children)),
        }
    }
}
