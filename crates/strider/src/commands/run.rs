//! `strider run`: execute a model in the interpreter and summarize (or save) its outputs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use miette::IntoDiagnostic;
use ndarray::ArrayD;
use strider_check::Tolerance;
use strider_check::compare::compare;
use strider_interp::{Plan, PlanOptions, feeds};
use strider_ir::{Graph, output};

use crate::exit::{Mismatch, Usage};

use crate::model_files::{self, read_tensor, stored_name};

/// File format of outputs written with `--out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutFormat {
    /// numpy `.npy`.
    Npy,
    /// ONNX `TensorProto` (`.pb`), named after the output.
    Pb,
}

/// Options of `strider run`.
pub struct RunOptions {
    /// `NAME=FILE` pairs, or `.pb` files naming their input.
    pub inputs: Vec<String>,
    /// Where to write outputs.
    pub out: Option<PathBuf>,
    /// Format of the written outputs.
    pub out_format: OutFormat,
    /// `NAME=FILE` pairs, or `.pb` files naming their output: references to compare with.
    pub expect: Vec<String>,
    /// Tolerance of the comparison.
    pub tolerance: Tolerance,
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

/// Splits `NAME=FILE`; a lone `.pb` file names its value itself.
fn name_and_file<'a>(flag: &str, arg: &'a str) -> miette::Result<(String, &'a Path)> {
    match arg.split_once('=') {
        Some((name, file)) => Ok((name.to_string(), Path::new(file))),
        None if model_files::is_tensor_proto(Path::new(arg)) => Ok((stored_name(Path::new(arg))?, Path::new(arg))),
        None => Err(Usage(format!("{flag} expects NAME=FILE (.npy or .pb) or a .pb file, found `{arg}`")).into()),
    }
}

/// Reads `--input NAME=FILE` values (`.npy` or `.pb`), each checked against its graph input's shape.
pub fn given_inputs(graph: &Graph, pairs: &[String]) -> miette::Result<HashMap<String, ArrayD<f32>>> {
    let mut given = HashMap::new();
    for pair in pairs {
        let (name, file) = name_and_file("--input", pair)?;
        let Some(id) = graph.value_id(&name).filter(|v| graph.inputs().contains(v)) else {
            let known: Vec<&str> = graph.inputs().iter().map(|&v| graph.value(v).name.as_str()).collect();
            return Err(Usage(format!(
                "input `{name}`: the graph has no input of this name (its inputs: {})",
                known.join(", ")
            ))
            .into());
        };
        let data = if model_files::is_tensor_proto(file) {
            read_tensor(file, graph.shape(id).dims(), &format!("input `{name}`"))?
        } else {
            feeds::read_input(graph, &name, file).into_diagnostic()?
        };
        given.insert(name, data);
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
    let extension = match opts.out_format {
        OutFormat::Npy => "npy",
        OutFormat::Pb => "pb",
    };
    let mut names = output::FileNames::new();
    for (name, data) in &outputs {
        println!("output {name} {:?}: {}", data.shape(), Stats::of(data));
        if let Some(dir) = &opts.out {
            let path = dir.join(names.next(name, extension));
            match opts.out_format {
                OutFormat::Npy => output::replace_npy(&path, data, &format!("output `{name}`")).into_diagnostic()?,
                OutFormat::Pb => model_files::write_tensor(&path, name, data)?,
            }
            println!("       written to {}", path.display());
        }
    }
    check_expected(&outputs, &opts.expect, opts.tolerance)
}

/// Compares outputs with `--expect` references; an error when any is off.
fn check_expected(outputs: &[(String, ArrayD<f32>)], expect: &[String], tolerance: Tolerance) -> miette::Result<()> {
    let mut failed = Vec::new();
    for pair in expect {
        let (name, file) = name_and_file("--expect", pair)?;
        let (_, got) = outputs
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| Usage(format!("--expect {name}: the graph has no output of this name")))?;
        let want = read_tensor(file, got.shape(), &format!("expected `{name}`"))?;
        let c = compare(&name, &want, got, tolerance);
        let verdict = if c.pass { "matches" } else { "MISMATCH" };
        println!(
            "expect {name}: {verdict} {} (max abs {:.3e}, max rel {:.3e}, {} elements off; worst at {:?}: want {}, got {})",
            file.display(),
            c.max_abs,
            c.max_rel,
            c.mismatched,
            c.worst_index,
            c.want,
            c.got
        );
        if !c.pass {
            failed.push(name);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Mismatch(format!(
            "outputs {} differ from the expected values beyond atol {} + rtol {}",
            failed.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
            tolerance.atol,
            tolerance.rtol
        ))
        .into())
    }
}
