//! `strider run`: execute a model in the interpreter and summarize (or save) its outputs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use std::fmt::Write as _;

use miette::IntoDiagnostic;
use ndarray::ArrayD;
use serde::Serialize;
use strider_check::Tolerance;
use strider_check::compare::compare;
use strider_check::numbers::{count, grouped};
use strider_interp::{Plan, PlanOptions, feeds};
use strider_ir::{Graph, Shape, output};

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

/// Summary statistics of a tensor: over its finite elements, which `elements - non_finite` counts.
#[derive(Debug, Serialize)]
pub struct Stats {
    /// Elements in all.
    pub elements: usize,
    /// Smallest finite element (`None` when there is none).
    pub min: Option<f32>,
    /// Largest finite element.
    pub max: Option<f32>,
    /// Mean of the finite elements.
    pub mean: Option<f64>,
    /// Standard deviation of the finite elements.
    pub std: Option<f64>,
    /// NaN and infinite elements.
    pub non_finite: usize,
}

impl Stats {
    /// Statistics over the finite elements; counts the others.
    pub fn of(a: &ArrayD<f32>) -> Stats {
        let finite: Vec<f32> = a.iter().copied().filter(|v| v.is_finite()).collect();
        let (elements, non_finite) = (a.len(), a.len() - finite.len());
        if finite.is_empty() {
            return Stats { elements, min: None, max: None, mean: None, std: None, non_finite };
        }
        let n = finite.len() as f64;
        let mean = finite.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = finite.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        Stats {
            elements,
            min: finite.iter().copied().reduce(f32::min),
            max: finite.iter().copied().reduce(f32::max),
            mean: Some(mean),
            std: Some(var.sqrt()),
            non_finite,
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.min, self.max, self.mean, self.std) {
            _ if self.elements == 0 => return write!(f, "empty"),
            (Some(min), Some(max), Some(mean), Some(std)) => {
                write!(f, "min {min:.6} max {max:.6} mean {mean:.6} std {std:.6}")?
            }
            _ => write!(f, "no finite element")?,
        }
        if self.non_finite > 0 {
            write!(f, " ({} non-finite)", grouped(self.non_finite as u128))?;
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
        crate::stdio::eprint_line(&format!("warning: {found}"));
    }
}

/// Where a graph input's values came from.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Seeded uniform values in [-1, 1).
    Seeded,
    /// `--input`.
    File,
}

/// A graph input of a run.
#[derive(Debug, Serialize)]
pub struct InputReport {
    /// Input name.
    pub name: String,
    /// Its shape.
    pub shape: Shape,
    /// Where its values came from.
    pub source: Source,
    /// The seed of seeded values.
    pub seed: Option<u64>,
}

/// A graph output of a run.
#[derive(Debug, Serialize)]
pub struct OutputReport {
    /// Output name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its statistics.
    pub stats: Stats,
    /// The file it was written to (`--out`).
    pub written_to: Option<PathBuf>,
}

/// An output compared with `--expect`.
#[derive(Debug, Serialize)]
pub struct ExpectReport {
    /// The reference file.
    pub file: PathBuf,
    /// The comparison (`pass` says whether it is within the tolerance).
    #[serde(flatten)]
    pub comparison: strider_check::Comparison,
}

/// What `strider run` reports: printed as text or as JSON.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// Model name.
    pub model: String,
    /// Nodes run.
    pub nodes: usize,
    /// Graph inputs.
    pub inputs: Vec<InputReport>,
    /// Graph outputs.
    pub outputs: Vec<OutputReport>,
    /// Comparisons with `--expect` references.
    pub expected: Vec<ExpectReport>,
    /// Tolerance of the comparisons.
    pub tolerance: Tolerance,
}

/// Runs `graph`, writes the outputs when asked and compares them with the references; the report
/// comes back even when a comparison fails (then [`RunReport::verdict`] is an error).
pub fn run(graph: &Graph, opts: &RunOptions) -> miette::Result<RunReport> {
    let mut inputs = given_inputs(graph, &opts.inputs)?;
    let seeded = feeds::fill_missing(graph, opts.seed, &mut inputs).into_diagnostic()?;
    let input_reports = graph
        .inputs()
        .iter()
        .map(|&v| {
            let value = graph.value(v);
            let seeded = seeded.contains(&value.name);
            InputReport {
                name: value.name.clone(),
                shape: value.ty.shape.clone(),
                source: if seeded { Source::Seeded } else { Source::File },
                seed: seeded.then_some(opts.seed),
            }
        })
        .collect();
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
    let mut output_reports = Vec::new();
    for (name, data) in &outputs {
        let mut written_to = None;
        if let Some(dir) = &opts.out {
            let path = dir.join(names.next(name, extension));
            match opts.out_format {
                OutFormat::Npy => output::replace_npy(&path, data, &format!("output `{name}`")).into_diagnostic()?,
                OutFormat::Pb => model_files::write_tensor(&path, name, data)?,
            }
            written_to = Some(path);
        }
        output_reports.push(OutputReport {
            name: name.clone(),
            shape: data.shape().to_vec(),
            stats: Stats::of(data),
            written_to,
        });
    }
    Ok(RunReport {
        model: graph.name().to_string(),
        nodes: graph.topological_order().len(),
        inputs: input_reports,
        outputs: output_reports,
        expected: compare_expected(&outputs, &opts.expect, opts.tolerance)?,
        tolerance: opts.tolerance,
    })
}

impl RunReport {
    /// An error (exit code 1) naming the outputs that differ from their references, if any.
    pub fn verdict(&self) -> miette::Result<()> {
        let failed: Vec<String> =
            self.expected.iter().filter(|e| !e.comparison.pass).map(|e| format!("`{}`", e.comparison.output)).collect();
        if failed.is_empty() {
            return Ok(());
        }
        Err(Mismatch(format!(
            "outputs {} differ from the expected values beyond atol {} + rtol {}",
            failed.join(", "),
            self.tolerance.atol,
            self.tolerance.rtol
        ))
        .into())
    }
}

/// The report as text: the model, where each input came from, each output's statistics, and each
/// comparison.
pub fn render(report: &RunReport) -> String {
    let mut out = format!("model `{}`: {}\n", report.model, count(report.nodes as u128, "node"));
    for i in &report.inputs {
        let how = match i.seed {
            Some(seed) => {
                format!("seeded uniform [-1, 1) (seed {seed}; pass --input {}=FILE.npy to choose)", i.name)
            }
            None => "from file".to_string(),
        };
        let _ = writeln!(out, "input  {} {}: {how}", i.name, i.shape);
    }
    for o in &report.outputs {
        let _ = writeln!(out, "output {} {:?}: {}", o.name, o.shape, o.stats);
        if let Some(path) = &o.written_to {
            let _ = writeln!(out, "       written to {}", path.display());
        }
    }
    for e in &report.expected {
        let c = &e.comparison;
        let verdict = if c.pass { "matches" } else { "MISMATCH" };
        let _ = writeln!(
            out,
            "expect {}: {verdict} {} (max abs {:.3e}, max rel {:.3e}, {} off; worst at {:?}: want {}, got {})",
            c.output,
            e.file.display(),
            c.max_abs,
            c.max_rel,
            count(c.mismatched as u128, "element"),
            c.worst_index,
            c.want,
            c.got
        );
    }
    out
}

/// Compares outputs with `--expect` references.
fn compare_expected(
    outputs: &[(String, ArrayD<f32>)],
    expect: &[String],
    tolerance: Tolerance,
) -> miette::Result<Vec<ExpectReport>> {
    let mut reports = Vec::new();
    for pair in expect {
        let (name, file) = name_and_file("--expect", pair)?;
        let (_, got) = outputs
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| Usage(format!("--expect {name}: the graph has no output of this name")))?;
        let want = read_tensor(file, got.shape(), &format!("expected `{name}`"))?;
        reports.push(ExpectReport { file: file.to_path_buf(), comparison: compare(&name, &want, got, tolerance) });
    }
    Ok(reports)
}
