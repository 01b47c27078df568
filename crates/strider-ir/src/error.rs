//! The IR crate's error type: everything that makes a model file or a graph invalid.

use std::path::PathBuf;

use crate::op::OpError;
use crate::shape::Shape;

/// What an error is about, so that a front end can point at it in the source text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A node, by name.
    Node(String),
    /// A value (graph input, initializer or node output), by name.
    Value(String),
    /// A name defined twice: the second definition is the one to point at.
    Duplicate(String),
}

/// Why a model cannot be loaded or a graph cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A result could not be written.
    #[error("cannot write {what} {path}: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// What was being written ("model", "weight `w`", "output `y`").
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The model text is not valid RON for the model format.
    #[error("{message}")]
    Syntax {
        /// What the parser expected.
        message: String,
        /// 1-based line of the offending text.
        line: usize,
        /// 1-based column of the offending text.
        col: usize,
    },
    /// Two definitions of one value name.
    #[error("value `{name}` is defined twice: as {first} and as {second}")]
    DuplicateValue {
        /// The name.
        name: String,
        /// The first definition ("graph input", "initializer", "output of node `n`").
        first: String,
        /// The second definition.
        second: String,
    },
    /// Two nodes with one name.
    #[error("two nodes are named `{name}`")]
    DuplicateNode {
        /// The name.
        name: String,
    },
    /// A node reads a value nothing defines.
    #[error("node `{node}` reads `{value}`, which no graph input, initializer or node output defines")]
    UnknownValue {
        /// The reading node.
        node: String,
        /// The missing value.
        value: String,
    },
    /// A graph output nothing defines.
    #[error("graph output `{name}` is not defined by any graph input, initializer or node")]
    UnknownOutput {
        /// The name.
        name: String,
    },
    /// The nodes do not form a DAG.
    #[error("the graph has a cycle through nodes {}", names(.nodes))]
    Cycle {
        /// Nodes on the cycle.
        nodes: Vec<String>,
    },
    /// An op refused its inputs or attributes.
    #[error("node `{node}` ({op}): {source}")]
    Op {
        /// The node.
        node: String,
        /// Its op type.
        op: &'static str,
        /// What the op said.
        source: OpError,
    },
    /// A node lists a different number of outputs than its op produces.
    #[error("node `{node}` ({op}) lists {found} outputs, but {op} produces {expected}")]
    OutputCount {
        /// The node.
        node: String,
        /// Its op type.
        op: &'static str,
        /// Outputs the op produces.
        expected: usize,
        /// Outputs listed.
        found: usize,
    },
    /// A tensor would exceed the element limit.
    #[error(
        "`{name}` would have shape {shape} ({count} elements), over the limit of {limit} elements (see --max-elements)"
    )]
    TooLarge {
        /// The value.
        name: String,
        /// Its shape.
        shape: Shape,
        /// Product of its axes, empty axes counted as 1 (saturated at `usize::MAX`).
        count: usize,
        /// The limit in force.
        limit: usize,
    },
    /// An initializer's data does not fit its declaration.
    #[error("initializer `{name}`: {problem}")]
    Initializer {
        /// The initializer.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// A tensor given for a graph input does not fit its declaration.
    #[error("input `{name}`: {problem}")]
    Input {
        /// The graph input.
        name: String,
        /// What is wrong.
        problem: String,
    },
}

fn names(nodes: &[String]) -> String {
    nodes.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" → ")
}

impl Error {
    /// Whether a limit (`--max-elements`) refused the graph, rather than the graph being wrong.
    pub fn is_limit(&self) -> bool {
        matches!(self, Error::TooLarge { .. })
    }

    /// The node or value this error is about, if any.
    pub fn subject(&self) -> Option<Subject> {
        match self {
            Error::Io { .. } | Error::Write { .. } | Error::Syntax { .. } => None,
            Error::DuplicateNode { name } | Error::DuplicateValue { name, .. } => {
                Some(Subject::Duplicate(name.clone()))
            }
            Error::UnknownValue { node, .. } | Error::Op { node, .. } | Error::OutputCount { node, .. } => {
                Some(Subject::Node(node.clone()))
            }
            Error::Cycle { nodes } => nodes.first().map(|n| Subject::Node(n.clone())),
            Error::UnknownOutput { name }
            | Error::TooLarge { name, .. }
            | Error::Initializer { name, .. }
            | Error::Input { name, .. } => Some(Subject::Value(name.clone())),
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
