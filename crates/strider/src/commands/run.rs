//! `strider run`: execute a model in the interpreter and summarize (or save) its outputs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use miette::{IntoDiagnostic, WrapErr, miette};
use ndarray::ArrayD;
use strider_interp::{Plan, PlanOptions, feeds};
use strider_ir::Graph;

/// Options of `strider run`.
pub struct RunOptions {
    /// `NAME=FILE.npy` pairs.
    pub inputs: Vec<String>,
    /// Where to write outputs.
    pub out: Option<PathBuf>,
    /// Seed for inputs not given.
    pub seed: u64,
    /// Threads (0: one per core).
    pub threads: usize,
}

/// Summary statistics of a tensor.
pub struct Stats {
    min: f32,
    max: f32,
    mean: f64,
    std: f64,
    non_finite: usize,
    empty: bool,
}

impl Stats {
    /// Statistics over the finite elements; counts the others.
    pub fn of(a: &ArrayD<f32>) -> Stats {
        let finite: Vec<f32> = a.iter().copied().filter(|v| v.is_finite()).collect();
        let n = finite.len().max(1) as f64;
        let mean = finite.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = finite.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        Stats {
            min: finite.iter().copied().fold(f32::INFINITY, f32::min),
            max: finite.iter().copied().fold(f32::NEG_INFINITY, f32::max),
            mean,
            std: var.sqrt(),
            non_finite: a.len() - finite.len(),
            empty: a.is_empty(),
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.empty {
            return write!(f, "empty");
        }
        write!(f, "min {:.6} max {:.6} mean {:.6} std {:.6}", self.min, self.max, self.mean, self.std)?;
        if self.non_finite > 0 {
            write!(f, " ({} non-finite)", self.non_finite)?;
        }
        Ok(())
    }
}

/// Reads `--input NAME=FILE.npy` values.
pub fn given_inputs(graph: &Graph, pairs: &[String]) -> miette::Result<HashMap<String, ArrayD<f32>>> {
    let mut given = HashMap::new();
    for pair in pairs {
        let (name, file) =
            pair.split_once('=').ok_or_else(|| miette!("--input expects NAME=FILE.npy, found `{pair}`"))?;
        let data = feeds::read_input(graph, name, Path::new(file)).into_diagnostic()?;
        given.insert(name.to_string(), data);
    }
    Ok(given)
}

/// Runs `graph` and prints a summary of each output.
pub fn run(graph: &Graph, opts: &RunOptions) -> miette::Result<()> {
    let mut inputs = given_inputs(graph, &opts.inputs)?;
    let seeded = feeds::fill_missing(graph, opts.seed, &mut inputs);
    println!("model `{}`: {} nodes", graph.name(), graph.topological_order().len());
    for &v in graph.inputs() {
        let value = graph.value(v);
        let how = if seeded.contains(&value.name) {
            format!("seeded uniform [-1, 1) (seed {}; pass --input {}=FILE.npy to choose)", opts.seed, value.name)
        } else {
            "from file".to_string()
        };
        println!("input  {} {}: {how}", value.name, value.ty.shape);
    }
    let mut plan = Plan::new(graph, &PlanOptions { threads: opts.threads }).into_diagnostic()?;
    let outputs = plan.run(&inputs).into_diagnostic()?;
    if let Some(dir) = &opts.out {
        std::fs::create_dir_all(dir).into_diagnostic().wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    }
    for (name, data) in &outputs {
        println!("output {name} {:?}: {}", data.shape(), Stats::of(data));
        if let Some(dir) = &opts.out {
            let path = dir.join(format!("{}.npy", name.replace(['/', '\\'], "_")));
            ndarray_npy::write_npy(&path, data)
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot write {}", path.display()))?;
            println!("       written to {}", path.display());
        }
    }
    Ok(())
}
