//! `--strategy`: which lowerings may fire. `auto` lets every rule fire and the cost model choose;
//! a named lowering forces that family for every ConvTranspose where it is legal; `none` keeps the
//! graph as it is.

use std::fmt;
use std::str::FromStr;

use crate::cost::{Avoiding, CostModel};
use crate::rules::{self, Lowering, Rule};

/// Which lowerings may fire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Every rule; the cost model decides.
    #[default]
    Auto,
    /// No rules at all.
    None,
    /// One lowering family (plus the support rules), preferred wherever it applies.
    Force(Lowering),
}

impl Strategy {
    /// The rules to saturate with.
    pub fn rules(self) -> Vec<Rule> {
        match self {
            Strategy::Auto => rules::all(),
            Strategy::None => Vec::new(),
            Strategy::Force(l) => {
                let mut r = l.rules();
                r.extend(rules::support_rules());
                r
            }
        }
    }

    /// The cost model to extract with: a forced lowering makes ConvTranspose prohibitively expensive.
    pub fn model<'a>(self, base: &'a dyn CostModel) -> Box<dyn CostModel + 'a> {
        match self {
            Strategy::Force(_) => Box::new(Avoiding { inner: base, ops: &["ConvTranspose"] }),
            _ => Box::new(Forward(base)),
        }
    }
}

struct Forward<'a>(&'a dyn CostModel);

impl CostModel for Forward<'_> {
    fn op_cost(&self, op: &crate::cost::OpInstance) -> Option<f64> {
        self.0.op_cost(op)
    }

    fn constant_cost(&self, elements: usize) -> f64 {
        self.0.constant_cost(elements)
    }

    fn node_cost(&self, egraph: &crate::TensorGraph, node: &crate::lang::Node) -> Option<f64> {
        self.0.node_cost(egraph, node)
    }
}

impl FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Strategy::Auto),
            "none" => Ok(Strategy::None),
            _ => Lowering::ALL.into_iter().find(|l| l.name() == s).map(Strategy::Force).ok_or_else(|| {
                let names: Vec<&str> = Lowering::ALL.iter().map(|l| l.name()).collect();
                format!("unknown strategy `{s}`; expected auto, none, {}", names.join(", "))
            }),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Auto => f.write_str("auto"),
            Strategy::None => f.write_str("none"),
            Strategy::Force(l) => f.write_str(l.name()),
        }
    }
}
