//! The rule tables. Every rule states an exact identity, is named after it, and is verified
//! numerically by a test that evaluates both sides in the interpreter.
//!
//! Authoring notes: a rule must be an exact identity under its conditions (checked in its applier);
//! it must check shapes before adding anything (`add_op` refuses what a shape rule rejects); no
//! unrestricted commutativity or associativity (they bloat the e-graph).

mod batchnorm;
mod cleanup;
mod conv_transpose;
mod upsample;

use egg::{Applier, Id, PatternAst, Rewrite, Subst, Symbol, Var};
use strider_ir::Op;

use crate::analysis::{TensorGraph, Tensors};
use crate::lang::Node;

/// A rewrite rule over Strider's e-graph.
pub type Rule = Rewrite<Node, Tensors>;

/// The ConvTranspose lowering families; each can be forced alone with `--strategy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lowering {
    /// Zero insertion + padding + stride-1 Conv with the flipped, channel-swapped kernel.
    ZeroInsert,
    /// cols = Wᵀ·x as one MatMul, then Col2Im.
    Col2Im,
    /// s^d stride-1 sub-convolutions interleaved by DepthToSpace.
    Subpixel,
    /// MatMul plus Reshape/Transpose where the geometry allows it.
    MatMul,
    /// y = Cᵀ·vec(x) with the explicit sparse convolution matrix C.
    SparseMatMul,
}

impl Lowering {
    /// All families.
    pub const ALL: [Lowering; 5] =
        [Lowering::ZeroInsert, Lowering::SparseMatMul, Lowering::Col2Im, Lowering::Subpixel, Lowering::MatMul];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Lowering::ZeroInsert => "zero-insert",
            Lowering::Col2Im => "col2im",
            Lowering::Subpixel => "subpixel",
            Lowering::MatMul => "matmul",
            Lowering::SparseMatMul => "sparse-matmul",
        }
    }

    /// The rules of this family.
    pub fn rules(self) -> Vec<Rule> {
        match self {
            Lowering::ZeroInsert => vec![conv_transpose::zero_insert_conv()],
            Lowering::Col2Im => vec![conv_transpose::gemm_col2im()],
            Lowering::Subpixel => {
                std::iter::once(conv_transpose::subpixel()).chain(conv_transpose::exact_phases()).collect()
            }
            Lowering::MatMul => vec![conv_transpose::matmul_1x1_input(), conv_transpose::matmul_kernel_equals_stride()],
            Lowering::SparseMatMul => vec![conv_transpose::sparse_matrix_transpose()],
        }
    }
}

/// Rules that only reshape the problem: bias split and fold, Upsample as ConvTranspose, clean-ups.
pub fn support_rules() -> Vec<Rule> {
    let mut rules = vec![conv_transpose::bias_is_add(), upsample::nearest_is_depthwise_conv_transpose()];
    rules.extend(upsample::conv_after_nearest_upsample_is_subpixel_conv());
    rules.extend(cleanup::rules());
    rules.extend(batchnorm::rules());
    rules
}

/// Every rule: all lowerings and the support rules.
pub fn all() -> Vec<Rule> {
    let mut rules: Vec<Rule> = Lowering::ALL.iter().flat_map(|l| l.rules()).collect();
    rules.extend(support_rules());
    rules
}

/// What an applier sees of a match: the matched op (from the pattern's first variable), the classes
/// bound to the other variables, a readable name for new values, and the e-graph to add them to.
pub struct Matched<'a> {
    /// The op of the matched node, with its attributes.
    pub op: Op,
    /// Classes bound to the pattern's other variables, in order.
    pub inputs: Vec<Id>,
    /// Readable name of the matched value (new values are named after it).
    pub name: String,
    /// The e-graph.
    pub egraph: &'a mut TensorGraph,
    /// The rule's name.
    pub rule: Symbol,
}

/// The most elements of constant data one rule application may create (16 MiB of f32): a rule that
/// builds a kernel from resize factors checks first and declines.
pub const MAX_CONSTANT_ELEMENTS: usize = 1 << 22;

/// The most e-nodes one rule application may add (phases = ∏ strides, per-phase kernels and
/// convolutions): enough for FCN-32s's 32×32 phases, far below the million phases of a 1024× Upsample.
pub const MAX_NODES_PER_APPLICATION: usize = 8192;

/// An applier written as a function from the match to the id of an equal class (or `None` when the
/// rule's conditions do not hold). This is how every Strider rule is written, and how users add rules.
pub struct Lower {
    vars: Vec<Var>,
    lower: fn(&mut Matched) -> Option<Id>,
}

impl Lower {
    /// An applier for a pattern `(Op ?a ?in1 ?in2 …)` whose variables are named as given.
    pub fn new(vars: &[&str], lower: fn(&mut Matched) -> Option<Id>) -> Self {
        Lower { vars: vars.iter().map(|v| v.parse().expect("valid variable")).collect(), lower }
    }
}

impl Applier<Node, Tensors> for Lower {
    fn apply_one(
        &self,
        egraph: &mut TensorGraph,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<Node>>,
        rule: Symbol,
    ) -> Vec<Id> {
        let Some(op) = egraph[subst[self.vars[0]]].data.attrs.clone() else { return vec![] };
        let inputs: Vec<Id> = self.vars[1..].iter().map(|&v| subst[v]).collect();
        let name = class_name(egraph, eclass);
        let mut m = Matched { op, inputs, name, egraph, rule };
        match (self.lower)(&mut m) {
            Some(new) if egraph.union(eclass, new) => vec![eclass],
            _ => vec![],
        }
    }

    fn vars(&self) -> Vec<Var> {
        self.vars.clone()
    }
}

/// A readable name for a class (the original value's name where there is one).
pub fn class_name(egraph: &TensorGraph, id: Id) -> String {
    let id = egraph.find(id);
    egraph
        .analysis
        .names
        .iter()
        .find(|(k, _)| egraph.find(**k) == id)
        .map_or_else(|| format!("v{id}"), |(_, n)| n.clone())
}

impl Matched<'_> {
    /// Whether the application may add about `nodes` e-nodes: at most [`MAX_NODES_PER_APPLICATION`],
    /// and no more than the run's node budget has left. If not, the rule declines and the reason
    /// (`growth` says what the nodes are) is recorded for `explore`. Checked before anything is added.
    pub fn may_add(&mut self, nodes: usize, growth: impl FnOnce() -> String) -> bool {
        let total = self.egraph.total_number_of_nodes();
        let left = self.egraph.analysis.node_budget.map_or(usize::MAX, |b| b.saturating_sub(total));
        let bound = MAX_NODES_PER_APPLICATION.min(left);
        if nodes <= bound {
            return true;
        }
        let why = if left < MAX_NODES_PER_APPLICATION {
            format!("the e-graph's node limit leaves room for {left}")
        } else {
            format!("one rule application may add at most {MAX_NODES_PER_APPLICATION}")
        };
        self.decline(format!("would add about {nodes} e-nodes ({}); {why}", growth()));
        false
    }

    /// Whether the application may create a constant of `elements` elements (at most
    /// [`MAX_CONSTANT_ELEMENTS`]); if not, the rule declines with the reason, as in [`Matched::may_add`].
    pub fn may_create(&mut self, elements: usize, what: &str) -> bool {
        if elements <= MAX_CONSTANT_ELEMENTS {
            return true;
        }
        self.decline(format!(
            "would create {what} of {elements} elements; one rule application may create at most {MAX_CONSTANT_ELEMENTS}"
        ));
        false
    }

    /// Records why this application declined, once.
    fn decline(&mut self, reason: String) {
        let declined = crate::analysis::Declined { rule: self.rule.to_string(), value: self.name.clone(), reason };
        if !self.egraph.analysis.declined.contains(&declined) {
            self.egraph.analysis.declined.push(declined);
        }
    }

    /// Shape of a value class.
    pub fn shape(&self, id: Id) -> Option<strider_ir::Shape> {
        self.egraph[id].data.shape.clone()
    }

    /// Adds an op node named after the matched value and this step; `None` if its shape rule refuses.
    pub fn add(&mut self, op: Op, inputs: &[Id], step: &str) -> Option<Id> {
        let name = format!("{}.{step}", self.name);
        crate::analysis::add_op(self.egraph, op, inputs, name)
    }

    /// Adds a Reshape to a static shape.
    pub fn reshape(&mut self, x: Id, shape: &[usize], step: &str) -> Option<Id> {
        let shape = shape.iter().map(|&d| d as i64).collect();
        self.add(Op::Reshape(strider_ir::op::ReshapeAttrs { shape, allowzero: false }), &[x], step)
    }

    /// Adds a Transpose.
    pub fn transpose(&mut self, x: Id, perm: Vec<usize>, step: &str) -> Option<Id> {
        self.add(Op::Transpose(strider_ir::op::TransposeAttrs { perm }), &[x], step)
    }

    /// Interleaves the phase channels of an (N, M·∏factors, Q…) value into (N, M, Q·factor…):
    /// DepthToSpace in CRD order when every factor is equal, Reshape/Transpose/Reshape otherwise.
    pub fn interleave_phases(
        &mut self,
        phases: Id,
        n: usize,
        channels: usize,
        factors: &[usize],
        q: &[usize],
    ) -> Option<Id> {
        use strider_ir::op::{DepthToSpaceAttrs, DepthToSpaceMode};
        if factors.iter().all(|&f| f == 1) {
            return Some(phases);
        }
        if factors.iter().all(|&f| f == factors[0]) {
            let d2s = DepthToSpaceAttrs { blocksize: factors[0], mode: DepthToSpaceMode::CRD };
            return self.add(Op::DepthToSpace(d2s), &[phases], "interleave");
        }
        let rank = factors.len();
        let split = self.reshape(phases, &[&[n, channels][..], factors, q].concat(), "split_phases")?;
        let mut perm = vec![0, 1];
        for a in 0..rank {
            perm.extend([2 + rank + a, 2 + a]);
        }
        let moved = self.transpose(split, perm, "interleave")?;
        let out: Vec<usize> = q.iter().zip(factors).map(|(q, f)| q * f).collect();
        self.reshape(moved, &[&[n, channels][..], &out].concat(), "merge_phases")
    }

    /// Pads (positive) or crops (negative) the spatial axes of an (N, C, spatial…) value; no node when
    /// every amount is zero.
    pub fn pad_spatial(&mut self, x: Id, begin: &[i64], end: &[i64], step: &str) -> Option<Id> {
        if begin.iter().chain(end).all(|&p| p == 0) {
            return Some(x);
        }
        let pads = [&[0, 0], begin, &[0, 0], end].concat();
        self.add(Op::Pad(strider_ir::op::PadAttrs { pads, ..Default::default() }), &[x], step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_table_builds_with_unique_names() {
        let rules = all();
        let mut names: Vec<String> = rules.iter().map(|r| r.name.to_string()).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate rule names: {names:?}");
        assert!(n >= 10);
    }
}
