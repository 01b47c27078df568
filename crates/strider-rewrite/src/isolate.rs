//! One node studied alone: a graph holding only that node (same shapes, attributes and weights), and
//! that graph lowered by one family. `explore`, `check`, `study` and tuning all look at a node this
//! way, so that a variant's numbers are its own, not its neighbours'.

use std::fmt;

use serde::{Serialize, Serializer};
use strider_ir::{Graph, GraphBuilder, Limits, Producer};

use crate::analysis::Declined;
use crate::cost::{Avoiding, Flops};
use crate::pipeline::{RunLimits, extract_graph, saturate};
use crate::rules::{Lowering, Rule};

/// How a ConvTranspose or Upsample is computed: as it stands, or by one lowering family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Form {
    /// The node as it is (the engine's own kernel).
    Direct,
    /// Rewritten by one lowering family.
    Lowered(Lowering),
}

impl Form {
    /// The node as it is, then every lowering family.
    pub const ALL: [Form; 6] = [
        Form::Direct,
        Form::Lowered(Lowering::ZeroInsert),
        Form::Lowered(Lowering::SparseMatMul),
        Form::Lowered(Lowering::Col2Im),
        Form::Lowered(Lowering::Subpixel),
        Form::Lowered(Lowering::MatMul),
    ];

    /// The name used in reports: `direct` or the lowering's name.
    pub fn name(self) -> &'static str {
        match self {
            Form::Direct => "direct",
            Form::Lowered(l) => l.name(),
        }
    }

    /// The form named `name`, if any.
    pub fn from_name(name: &str) -> Option<Form> {
        Form::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl Serialize for Form {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A graph holding only `node`: its non-constant inputs become graph inputs, constants stay constants.
pub fn isolate(graph: &Graph, node: &strider_ir::Node) -> Graph {
    let mut b = GraphBuilder::new(node.name.clone(), Limits { max_elements: usize::MAX });
    for &v in &node.inputs {
        let value = graph.value(v);
        match (value.producer, graph.initializer(v)) {
            (Producer::Initializer, Some(init)) => {
                b.copy_initializer(value.name.clone(), init);
            }
            _ => {
                b.input(value.name.clone(), value.ty.shape.clone());
            }
        }
    }
    let names = |ids: &[strider_ir::ValueId]| ids.iter().map(|&v| graph.value(v).name.clone()).collect::<Vec<_>>();
    b.node(node.name.clone(), node.op.clone(), names(&node.inputs), names(&node.outputs));
    for o in names(&node.outputs) {
        b.output(o);
    }
    b.finish().expect("a node of a valid graph is a valid graph")
}

/// Whether a graph still computes a ConvTranspose or Upsample as it stands.
fn computes_directly(g: &Graph) -> bool {
    g.nodes().any(|(_, n)| matches!(n.op.name(), "ConvTranspose" | "Upsample"))
}

/// An isolated node (see [`isolate`]) rewritten with `rules`, preferring anything over the node as
/// it stands and the fewest FLOPs among the rest; `None` when no rule applies. Sizes are not limited
/// here: callers decide what is too large to run.
pub fn lower_isolated(alone: &Graph, rules: &[Rule], limits: &RunLimits) -> Option<Graph> {
    lower_isolated_noting_declined(alone, rules, limits).0
}

/// [`lower_isolated`], with the rule applications that declined (too many e-nodes) on the way.
fn lower_isolated_noting_declined(alone: &Graph, rules: &[Rule], limits: &RunLimits) -> (Option<Graph>, Vec<Declined>) {
    let saturated = saturate(alone, rules, limits);
    let declined = saturated.egraph.analysis.declined.clone();
    let flops = Flops::default();
    let model = Avoiding { inner: &flops, ops: &["ConvTranspose", "Upsample"] };
    let unlimited = Limits { max_elements: usize::MAX };
    let lowered = extract_graph(&saturated, alone, &model, &unlimited, saturated.deadline)
        .ok()
        .map(|(g, _)| g)
        .filter(|g| !computes_directly(g));
    (lowered, declined)
}

/// An isolated node in `form`: itself for [`Form::Direct`], else lowered by that family alone (with
/// the support rules); `None` when the family does not apply.
pub fn in_form(alone: &Graph, form: Form, limits: &RunLimits) -> Option<Graph> {
    in_form_noting_declined(alone, form, limits).0
}

/// [`in_form`], with the rule applications that declined on the way (shown by `explore`).
pub fn in_form_noting_declined(alone: &Graph, form: Form, limits: &RunLimits) -> (Option<Graph>, Vec<Declined>) {
    match form {
        Form::Direct => (Some(alone.clone()), Vec::new()),
        Form::Lowered(l) => lower_isolated_noting_declined(alone, &crate::Strategy::Force(l).rules(), limits),
    }
}
