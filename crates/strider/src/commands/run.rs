//! `strider run`: execute a model in the interpreter and summarize (or save) its outputs.

use std::collections::HashMap;
use std::path::PathBuf;

use miette::IntoDiagnostic;
use ndarray::ArrayD;
use strider_interp::{Plan, PlanOptions, feeds};
use strider_ir::{Graph, output};

use crate::exit::Usage;

/// One `--input NAME=FILE.npy`.
#[derive(Clone, Debug)]
pub struct InputArg {
    /// The graph input it feeds.
    pub name: String,
    /// The `.npy` file.
    pub path: PathBuf,
}

impl std::str::FromStr for InputArg {
    type Err = String;

    fn from_str(pair: &str) -> Result<Self, String> {
        match pair.split_once('=') {
            Some((name, file)) if !name.is_empty() && !file.is_empty() => {
                Ok(InputArg { name: name.to_string(), path: PathBuf::from(file) })
            }
            _ => Err(format!("expected NAME=FILE.npy, found `{pair}`")),
        }
    }
}

/// Options of `strider run`.
pub struct RunOptions {
    /// `--input` files.
    pub inputs: Vec<InputArg>,
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

/// Reads `--input NAME=FILE.npy` values; naming an input the graph lacks is a usage error.
pub fn given_inputs(graph: &Graph, inputs: &[InputArg]) -> miette::Result<HashMap<String, ArrayD<f32>>> {
    let mut given = HashMap::new();
    for InputArg { name, path } in inputs {
        if !graph.inputs().iter().any(|&v| graph.value(v).name == *name) {
            let known: Vec<&str> = graph.inputs().iter().map(|&v| graph.value(v).name.as_str()).collect();
            return Err(Usage(format!(
                "input `{name}`: the graph has no input of this name (its inputs: {})",
                known.join(", ")
            ))
            .into());
        }
        let data = feeds::read_input(graph, name, path).into_diagnostic()?;
        given.insert(name.clone(), data);
    }
    Ok(given)
}

/// Tells about graph inputs and initializers holding NaN or infinities: their outputs will too.
pub fn warn_non_finite(graph: &Graph, inputs: &HashMap<String, ArrayD<f32>>) {
    for found in feeds::non_finite(graph, inputs) {
        eprintln!("warning: {found}");
    }
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
    warn_non_finite(graph, &inputs);
    let mut plan = Plan::new(graph, &PlanOptions { threads: opts.threads }).into_diagnostic()?;
    let outputs = plan.run(&inputs).into_diagnostic()?;
    if let Some(dir) = &opts.out {
        output::create_folder(dir).into_diagnostic()?;
    }
    let mut names = output::FileNames::new();
    for (name, data) in &outputs {
        println!("output {name} {:?}: {}", data.shape(), Stats::of(data));
        if let Some(dir) = &opts.out {
            let path = dir.join(names.next(name, "npy"));
            output::replace_npy(&path, data, &format!("output `{name}`")).into_diagnostic()?;
            println!("       written to {}", path.display());
        }
    }
    Ok(())
}
