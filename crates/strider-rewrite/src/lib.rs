//! Strider's rewrite engine: every way to compute a ConvTranspose lives side by side in one e-graph
//! (egg), and a cost model picks what suits the target.
//!
//! Data path: [`convert::to_egraph`] → saturate with [`rules`] ([`saturate`]) → [`extract::extract`]
//! under a [`cost::CostModel`] → [`convert::to_graph`] → constants folded; [`optimize`] runs it all.

pub mod analysis;
pub mod convert;
pub mod cost;
pub mod explore;
pub mod extract;
pub mod fused_phases;
pub mod isolate;
pub mod lang;
pub mod pipeline;
pub mod rules;
pub mod strategy;

pub use analysis::TensorGraph;
pub use extract::Extractor;
pub use isolate::Form;
pub use pipeline::{
    ExtractionSummary, OptimizeOptions, Optimized, RunLimits, Saturated, extract_graph, extract_graph_with,
    extract_with, optimize, saturate,
};
pub use rules::{Lowering, Rule};
pub use strategy::Strategy;
