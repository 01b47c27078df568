//! The `strider` command line.

mod commands;
mod diagnostic;
mod exit;
mod model_files;
mod stdio;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use miette::IntoDiagnostic;
use strider_check::numbers::{bytes, count, grouped};
use strider_ir::Limits;
use strider_rewrite::{Extractor, RunLimits, Strategy};

/// Strider: an optimizer for operator graphs built around transposed convolution.
///
/// Models are RON files (the format is described in README.md) or ONNX files (`.onnx`). Every command loads the model,
/// checks it and infers every shape first; a problem in a RON file is reported with its line and column.
#[derive(Parser)]
#[command(name = "strider", version, propagate_version = true, after_help = exit::HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Execute a model in the reference interpreter and summarize each output.
    ///
    /// Inputs not given with --input are filled with seeded uniform values in [-1, 1): the same seed,
    /// input name and shape give the same values on any machine.
    Run {
        #[command(flatten)]
        model: ModelArgs,
        /// Feed a graph input from a float32 .npy or TensorProto .pb file (repeatable); a lone .pb file
        /// feeds the input named inside it.
        #[arg(long = "input", value_name = "NAME=FILE|FILE.pb")]
        inputs: Vec<String>,
        /// Write each graph output to DIR/<output name>.npy (or .pb, see --out-format); DIR is created
        /// when missing, names that would collide get -2, -3, ….
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// File format of the outputs written with --out.
        #[arg(long, value_enum, default_value = "npy", requires = "out")]
        out_format: commands::run::OutFormat,
        /// Compare an output with a reference .npy or .pb file (repeatable); exit 1 when any element
        /// differs by more than atol + rtol·|reference|. A .pb file alone names its output itself.
        #[arg(long = "expect", value_name = "NAME=FILE|FILE.pb")]
        expect: Vec<String>,
        /// Absolute tolerance of --expect.
        #[arg(long, default_value_t = strider_check::Tolerance::default().atol, value_parser = parse_tolerance)]
        atol: f32,
        /// Relative tolerance of --expect.
        #[arg(long, default_value_t = strider_check::Tolerance::default().rtol, value_parser = parse_tolerance)]
        rtol: f32,
        /// Seed for inputs not given with --input.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        threads: ThreadArgs,
        #[command(flatten)]
        memory: MemoryArgs,
    },
    /// Convert a model between RON and ONNX (by the output's extension).
    ///
    /// Weights go to OUT.weights/*.npy beside a RON file (inline when 16 elements or fewer). ONNX
    /// output is standard ONNX at --opset; lowering ops are written as standard ops.
    Convert {
        #[command(flatten)]
        model: ModelArgs,
        /// The converted model (.ron or .onnx).
        #[arg(short, long, value_name = "OUT.ron|OUT.onnx")]
        output: PathBuf,
        #[command(flatten)]
        export: ExportArgs,
    },
    /// Time the model and its lowerings, prepared once and run interleaved.
    ///
    /// Each variant — the original (`--strategy none`), a forced lowering (`--strategy S`) or the
    /// graph a cost model extracts (`--cost C`) — is prepared once (weight-only work folded), warmed
    /// up, then run in rounds A B C A B C … so that their ratios hold on a busy machine. Reports the
    /// median, interquartile range and minimum, GF/s against this machine's GEMM peak (measured with
    /// the same kernel and threads), and peak memory. Without --strategy or --cost: the original and
    /// every lowering.
    Bench {
        #[command(flatten)]
        model: ModelArgs,
        /// Time this forced strategy: none, zero-insert, sparse-matmul, col2im, subpixel, matmul (repeatable).
        #[arg(long = "strategy", value_parser = parse_strategy)]
        strategies: Vec<Strategy>,
        /// Time the graph this cost model extracts: cpu, flops, memory, measured (with --tuning-db) or a
        /// target profile (repeatable).
        #[arg(long = "cost", value_name = "cpu|flops|memory|measured|TARGET.ron")]
        costs: Vec<String>,
        /// The tuning log `--cost measured` prices with (nodes it lacks are timed first).
        #[arg(long, value_name = "FILE.jsonl")]
        tuning_db: Option<PathBuf>,
        #[command(flatten)]
        threads: ThreadArgs,
        #[command(flatten)]
        memory: MemoryArgs,
        /// Untimed runs of each variant first.
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// Timed runs of each variant (instead of --min-time).
        #[arg(long, conflicts_with = "min_time")]
        runs: Option<usize>,
        /// Keep timing rounds for this many seconds (at least 5 runs each).
        #[arg(long, default_value_t = 2.0, value_parser = parse_seconds)]
        min_time: f64,
        /// Consecutive runs of a variant per round: 1 alternates strictly (each run starts with the
        /// caches the other variants left), more measure each variant warm; rounds still alternate.
        #[arg(long, default_value_t = 5)]
        batch: usize,
        /// Also time every node and show its share.
        #[arg(long)]
        per_node: bool,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Feed a graph input from a float32 .npy or .pb file (repeatable); others are seeded.
        #[arg(long = "input", value_name = "NAME=FILE|FILE.pb")]
        inputs: Vec<String>,
        /// Seed for inputs not given with --input.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Skip (and say so) variants whose explicit sparse matrix stores more elements than this.
        #[arg(long, value_name = "N", default_value_t = strider_check::DEFAULT_MAX_MATRIX_NNZ)]
        max_matrix_nnz: usize,
        /// Skip (and say so) variants performing more than this many times the original's FLOPs
        /// (zero insertion at large strides); 0 times every variant.
        #[arg(long, value_name = "R", default_value_t = 16.0, value_parser = parse_ratio)]
        max_flops_ratio: f64,
        #[command(flatten)]
        saturation: SaturationArgs,
    },
    /// Lower a model for a cost model or target and write the result as a runnable model.
    ///
    /// Saturates an e-graph with every rewrite rule, then extracts the cheapest graph for the cost
    /// model.
    /// Every ConvTranspose lowering (zero insertion, GEMM + col2im, sub-pixel, MatMul forms) lives in
    /// one e-graph; --cost picks the variant. The written model keeps the original's input and output
    /// names and shapes, so `strider run` feeds both the same inputs.
    Optimize {
        #[command(flatten)]
        model: ModelArgs,
        /// Cost model: cpu (the built-in profile calibrated on a CPU, in nanoseconds), flops, memory,
        /// or a target profile (e.g. examples/targets/npu.ron).
        #[arg(long, default_value = "cpu", value_name = "cpu|flops|memory|TARGET.ron")]
        cost: String,
        /// Force one lowering for every ConvTranspose where it is legal: auto, none, zero-insert,
        /// sparse-matmul, col2im, subpixel, matmul.
        #[arg(long, default_value = "auto", value_parser = parse_strategy)]
        strategy: Strategy,
        #[command(flatten)]
        extractor: ExtractorArgs,
        /// Evaluate weight-only subgraphs (flipped kernels, sub-kernels) into constants. Always on with
        /// a target profile.
        #[arg(long)]
        fold_constants: bool,
        /// Write the optimized model here: RON (large computed weights go to OUT.weights/*.npy) or,
        /// with the .onnx extension, ONNX.
        #[arg(short, long, value_name = "OUT.ron|OUT.onnx")]
        output: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        tuning: TuningArgs,
        #[command(flatten)]
        export: ExportArgs,
        #[command(flatten)]
        saturation: SaturationArgs,
    },
    /// Fit the CPU profile to this machine and write it (use it with --cost TARGET.ron).
    ///
    /// Times every form of a fixed set of transposed-convolution layers (2-D, 1-D, 3-D, strided,
    /// depthwise, grouped, dilated, batched), then fits, for each engine kernel (im2col + GEMM, GEMM +
    /// col2im, direct, MatMul, sparse, scatter, memory-bound), its nanoseconds per FLOP, per byte moved
    /// and per call by non-negative least squares on relative error. Prints each form's measured and
    /// predicted time and how often the profile picks the measured-fastest form.
    Calibrate {
        /// Where to write the profile.
        #[arg(short, long, value_name = "TARGET.ron")]
        output: std::path::PathBuf,
        /// Seconds spent timing the forms of each layer (at least 5 runs of each).
        #[arg(long, default_value_t = 0.3, value_name = "S")]
        time: f64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Thread counts to fit at, comma-separated (0: one per core). With several, the profile
        /// holds one kernel table per count, and a run on N threads is priced with the table of the
        /// largest count not above N.
        #[arg(long, value_name = "N,…", value_delimiter = ',', default_value = "0")]
        threads: Vec<usize>,
    },
    /// Time every form of each ConvTranspose and Upsample on this machine into a tuning log.
    ///
    /// Each node is timed alone in every form it can take (direct and each lowering), prepared,
    /// warmed up and interleaved; each form's median goes to the log (JSON Lines, keyed by op,
    /// attributes, shapes, threads and machine), where `optimize --tuning-db` and `explore
    /// --tuning-db` find it for any model with the same node.
    Tune {
        /// Models (.ron or .onnx).
        #[arg(required = true)]
        models: Vec<PathBuf>,
        /// Refuse any tensor with more elements than this.
        #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT_MAX_ELEMENTS)]
        max_elements: usize,
        #[command(flatten)]
        tuning: TuningArgs,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        saturation: SaturationArgs,
    },
    /// Show every lowering of each ConvTranspose and Upsample with its cost under each model.
    ///
    /// For every ConvTranspose and Upsample: every lowering the e-graph holds, its FLOPs, bytes and
    /// cost under each cost model, and which one each model picks; and the e-graph's size per
    /// iteration.
    Explore {
        #[command(flatten)]
        model: ModelArgs,
        /// Also cost every variant for this target profile (repeatable).
        #[arg(long = "target", value_name = "TARGET.ron")]
        targets: Vec<PathBuf>,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Instead, show the sparse matrix C of this ConvTranspose node (ConvTranspose(x) = Cᵀ·vec(x)).
        #[arg(long, value_name = "NODE")]
        matrix: Option<String>,
        /// With --matrix, also write C as a MatrixMarket file.
        #[arg(long, value_name = "FILE.mtx", requires = "matrix")]
        matrix_out: Option<PathBuf>,
        /// With --matrix, refuse (before building it) a matrix storing more elements than this.
        #[arg(long, value_name = "N", default_value_t = strider_check::DEFAULT_MAX_MATRIX_NNZ)]
        max_matrix_nnz: usize,
        #[command(flatten)]
        extractor: ExtractorArgs,
        #[command(flatten)]
        tuning: TuningArgs,
        #[command(flatten)]
        saturation: SaturationArgs,
    },
    /// Check that every lowering computes what the original model computes.
    ///
    /// For each ConvTranspose and Upsample and each lowering that applies, run the model with that
    /// node lowered on the same inputs as the original and compare every output; also the graphs
    /// `optimize` emits for flops, memory and each --target.
    ///
    /// Exits with 1 when any comparison fails, so it can gate a CI pipeline; a variant refused by a
    /// limit (--max-elements, --max-matrix-nnz) is shown as skipped with the reason.
    Check {
        #[command(flatten)]
        model: ModelArgs,
        /// Feed a graph input from a float32 .npy or .pb file (repeatable); others are seeded.
        #[arg(long = "input", value_name = "NAME=FILE|FILE.pb")]
        inputs: Vec<String>,
        /// Seed for inputs not given with --input.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Absolute tolerance (finite, ≥ 0): pass when |lowered − original| ≤ atol + rtol·|original|.
        #[arg(long, default_value_t = strider_check::Tolerance::default().atol, value_parser = parse_tolerance)]
        atol: f32,
        /// Relative tolerance (finite, ≥ 0).
        #[arg(long, default_value_t = strider_check::Tolerance::default().rtol, value_parser = parse_tolerance)]
        rtol: f32,
        /// Also check each lowered node alone (on seeded inputs), so a failure points at node and rule.
        #[arg(long)]
        per_node: bool,
        /// Also check the graph optimized for this target profile (repeatable).
        #[arg(long = "target", value_name = "TARGET.ron")]
        targets: Vec<PathBuf>,
        /// Skip (and say so) variants whose explicit sparse matrix stores more elements than this.
        #[arg(long, value_name = "N", default_value_t = strider_check::DEFAULT_MAX_MATRIX_NNZ)]
        max_matrix_nnz: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        threads: ThreadArgs,
        #[command(flatten)]
        memory: MemoryArgs,
        #[command(flatten)]
        saturation: SaturationArgs,
        #[command(flatten)]
        extractor: ExtractorArgs,
    },
    /// Write a research report (Markdown, JSON, SVG charts) of every lowering's cost.
    ///
    /// For each ConvTranspose configuration — the layers of a model, or a sweep of stride, input
    /// size or kernel size (see examples/sweeps/) — every lowering's FLOPs, bytes, interpreter time
    /// and error, charted against the layer or swept value.
    Study {
        /// A model (.ron or .onnx) or a sweep file (.ron with a `vary` field).
        input: PathBuf,
        /// Directory for report.md, report.json, flops.svg, bytes.svg and time.svg.
        #[arg(long, default_value = "study", value_name = "DIR")]
        out: PathBuf,
        /// Refuse any tensor with more elements than this.
        #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT_MAX_ELEMENTS)]
        max_elements: usize,
        /// Leave out variants whose explicit sparse matrix stores more elements than this.
        #[arg(long, value_name = "N", default_value_t = strider_check::DEFAULT_MAX_MATRIX_NNZ)]
        max_matrix_nnz: usize,
        /// Do not time forms performing more than this many times the direct form's FLOPs (0: time all).
        #[arg(long, value_name = "R", default_value_t = 64.0)]
        max_flops_ratio: f64,
        /// Seconds of interleaved timing per configuration (at least 5 runs of each form).
        #[arg(long, default_value_t = 0.5, value_name = "S")]
        min_time: f64,
        /// Also report the picks of this target profile (repeatable; cpu and flops always).
        #[arg(long = "target", value_name = "TARGET.ron")]
        targets: Vec<PathBuf>,
        /// Print the study as JSON (report.json's content) instead of Markdown.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        threads: ThreadArgs,
        #[command(flatten)]
        saturation: SaturationArgs,
        #[command(flatten)]
        memory: MemoryArgs,
    },
    /// Print each node's op, attributes, output shape, parameter count and FLOPs, with totals.
    ///
    /// Counts have thousands separators, FLOPs SI units (67.11M) and bytes binary units (15.03 MiB);
    /// --json gives the exact numbers.
    Info {
        #[command(flatten)]
        model: ModelArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the graph as Graphviz DOT (pipe into `dot -Tsvg`): each op with its key attributes
    /// (kernel, strides, pads, group; scales), value names and shapes on the edges.
    Dot {
        #[command(flatten)]
        model: ModelArgs,
        /// Print the saturated e-graph instead (every rule), left to right: one box per e-class
        /// holding its alternatives. Meant for a layer or two: an e-graph of more than 60 e-nodes is
        /// refused (exit 2); `strider explore` tabulates larger ones.
        #[arg(long)]
        egraph: bool,
        #[command(flatten)]
        saturation: SaturationArgs,
    },
}

#[derive(Args)]
struct ThreadArgs {
    /// Threads to run on (default: one per core). For a given count, results are bit-identical from
    /// run to run.
    #[arg(long, default_value_t = 0, value_name = "N")]
    threads: usize,
}

#[derive(Args)]
struct TuningArgs {
    /// Price with times measured on this machine, kept in this tuning log (JSON Lines); nodes it does
    /// not have yet are timed first and appended (see `strider tune`).
    #[arg(long, value_name = "FILE.jsonl")]
    tuning_db: Option<PathBuf>,
    /// Seconds spent timing the forms of each node (at least 5 runs of each).
    #[arg(long, default_value_t = 0.5, value_name = "S")]
    tune_time: f64,
    /// Time nodes again even when the log has them.
    #[arg(long)]
    retune: bool,
    #[command(flatten)]
    threads: ThreadArgs,
}

impl TuningArgs {
    fn options(&self, run_limits: RunLimits) -> miette::Result<strider_check::tuning::TuneOptions> {
        Ok(strider_check::tuning::TuneOptions {
            threads: self.threads.threads,
            min_time: commands::tune::per_node_time(self.tune_time)?,
            max_matrix_nnz: strider_check::DEFAULT_MAX_MATRIX_NNZ,
            max_flops_ratio: 16.0,
            run_limits,
            retune: self.retune,
        })
    }
}

#[derive(Args)]
struct MemoryArgs {
    /// Refuse, before running, a model whose estimated peak memory (inputs, weights, intermediates
    /// and workspaces) exceeds this many bytes; K, M, G and T suffixes are powers of 1024.
    #[arg(long, value_name = "BYTES", default_value = "8G", value_parser = parse_bytes)]
    max_memory: u128,
}

impl MemoryArgs {
    /// Refuses `graph` when its estimated peak memory is over the limit, naming the node and the bytes.
    fn check(&self, graph: &strider_ir::Graph) -> miette::Result<()> {
        let peak = strider_interp::memory::estimate_peak(graph);
        if peak.bytes <= self.max_memory {
            return Ok(());
        }
        let at =
            peak.node.map_or_else(|| "for its inputs and weights".to_string(), |n| format!("while node `{n}` runs"));
        Err(miette::miette!(
            "model `{}` needs an estimated {} ({} bytes) {at}, more than --max-memory {} ({} bytes); raise it if that \
             much memory is available",
            graph.name(),
            bytes(peak.bytes),
            grouped(peak.bytes),
            bytes(self.max_memory),
            grouped(self.max_memory)
        ))
    }
}

/// A byte count with an optional K, M, G or T suffix (powers of 1024).
fn parse_bytes(s: &str) -> Result<u128, String> {
    let (digits, shift) = match s.as_bytes().last().map(u8::to_ascii_uppercase) {
        Some(b'K') => (&s[..s.len() - 1], 10),
        Some(b'M') => (&s[..s.len() - 1], 20),
        Some(b'G') => (&s[..s.len() - 1], 30),
        Some(b'T') => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    let n: u128 = digits.parse().map_err(|_| format!("expected a byte count like 8G or 1000000, found `{s}`"))?;
    n.checked_mul(1 << shift).ok_or_else(|| format!("`{s}` is too large"))
}

#[derive(Args)]
struct SaturationArgs {
    /// Stop saturating when the e-graph has this many e-nodes.
    #[arg(long, default_value_t = RunLimits::default().nodes)]
    node_limit: usize,
    /// Stop saturating after this many iterations.
    #[arg(long, default_value_t = RunLimits::default().iterations)]
    iter_limit: usize,
    /// Time budget in seconds: saturation stops when it is spent, and extraction then keeps its quick
    /// greedy choice instead of refining it.
    #[arg(long, default_value_t = RunLimits::default().time.as_secs_f64(), value_parser = parse_seconds)]
    time_limit: f64,
}

impl SaturationArgs {
    fn limits(&self) -> miette::Result<RunLimits> {
        // `parse_seconds` admitted only durations `Duration` can hold.
        let time = std::time::Duration::try_from_secs_f64(self.time_limit).map_err(|e| miette::miette!("{e}"))?;
        Ok(RunLimits { nodes: self.node_limit, iterations: self.iter_limit, time })
    }
}

/// A finite tolerance ≥ 0: a NaN one would pass every comparison, a negative one fail every one.
fn parse_tolerance(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|e| format!("{e}"))?;
    strider_check::Tolerance::new(v, 0.0)
        .map(|t| t.atol)
        .map_err(|_| format!("expected a finite number ≥ 0, found {v}"))
}

/// A number of seconds a `Duration` can hold.
fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    match std::time::Duration::try_from_secs_f64(v) {
        Ok(_) => Ok(v),
        Err(_) => Err(format!("expected a finite number of seconds ≥ 0, found {v}")),
    }
}

/// A finite ratio ≥ 0.
fn parse_ratio(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() && v >= 0.0 { Ok(v) } else { Err(format!("expected a finite number ≥ 0, found {v}")) }
}

/// Reads `--target` profiles.
fn load_targets(paths: &[PathBuf], threads: usize) -> miette::Result<Vec<strider_rewrite::cost::Target>> {
    paths
        .iter()
        .map(|t| match commands::optimize::CostChoice::parse(&t.to_string_lossy(), threads)? {
            commands::optimize::CostChoice::Target(t) => Ok(*t),
            _ => Err(exit::Usage(format!("--target expects a target profile file, found `{}`", t.display())).into()),
        })
        .collect()
}

fn parse_strategy(s: &str) -> Result<Strategy, String> {
    s.parse()
}

#[derive(Args)]
struct ExtractorArgs {
    /// How the cheapest graph is extracted: greedy (DAG-aware, about linear time), or exact (an
    /// integer program solved to optimality, for e-graphs of at most 5,000 e-nodes after pruning;
    /// otherwise, or past --time-limit, greedy's choice with the reason). Exact reports the greedy
    /// cost beside its own.
    #[arg(long = "extractor", default_value = "greedy", value_name = "greedy|exact", value_parser = parse_extractor)]
    extractor: Extractor,
}

fn parse_extractor(s: &str) -> Result<Extractor, String> {
    s.parse()
}

#[derive(Args)]
struct ModelArgs {
    /// The model file (.ron or .onnx).
    model: PathBuf,
    /// Refuse any tensor with more elements than this.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT_MAX_ELEMENTS)]
    max_elements: usize,
    /// Shape of an ONNX graph input, binding its dynamic dimensions (repeatable).
    #[arg(long = "shape", value_name = "NAME=D0,D1,…", value_parser = parse_shape)]
    shapes: Vec<(String, Vec<usize>)>,
}

impl ModelArgs {
    fn limits(&self) -> Limits {
        Limits { max_elements: self.max_elements }
    }

    fn load(&self) -> miette::Result<strider_ir::Graph> {
        model_files::load(&self.model, &self.limits(), &self.shapes.iter().cloned().collect())
    }
}

fn parse_shape(s: &str) -> Result<(String, Vec<usize>), String> {
    let (name, dims) = s.split_once('=').ok_or_else(|| format!("expected NAME=D0,D1,…, found `{s}`"))?;
    let dims = dims
        .split(',')
        .map(|d| d.trim().parse::<usize>().map_err(|_| format!("`{d}` in `{s}` is not a size")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((name.to_string(), dims))
}

/// How ONNX files are written.
#[derive(Args)]
struct ExportArgs {
    /// ONNX opset to write (13 to 22).
    #[arg(long, default_value_t = strider_onnx::ExportOptions::default().opset)]
    opset: i64,
    /// Largest dense matrix (elements) a sparse-matmul lowering may be written as in ONNX.
    #[arg(long, value_name = "N", default_value_t = strider_onnx::ExportOptions::default().max_dense_elements)]
    max_dense_elements: usize,
}

impl ExportArgs {
    fn options(&self, limits: Limits) -> strider_onnx::ExportOptions {
        strider_onnx::ExportOptions { opset: self.opset, max_dense_elements: self.max_dense_elements, limits }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Long messages stay on one line so that they can be searched and compared.
    let _ = miette::set_hook(Box::new(|_| Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())));
    let result = match cli.command {
        Command::Run { model, inputs, out, out_format, expect, atol, rtol, seed, json, threads, memory } => {
            model.load().and_then(|g| {
                memory.check(&g)?;
                let tolerance = strider_check::Tolerance { atol, rtol };
                let options = commands::run::RunOptions {
                    inputs,
                    out,
                    out_format,
                    expect,
                    tolerance,
                    seed,
                    threads: threads.threads,
                };
                let report = commands::run::run(&g, &options)?;
                if json {
                    stdio::print_json(&report)?;
                } else {
                    stdio::print(&commands::run::render(&report))?;
                }
                report.verdict()
            })
        }
        Command::Convert { model, output, export } => (|| {
            let graph = model.load()?;
            model_files::save(&graph, &output, &export.options(model.limits()))?;
            let nodes = count(graph.nodes().count() as u128, "node");
            stdio::print(&format!("model `{}`: {nodes}, written to {}\n", graph.name(), output.display()))?;
            Ok(())
        })(),
        Command::Bench {
            model,
            strategies,
            costs,
            tuning_db,
            threads,
            memory,
            warmup,
            runs,
            min_time,
            batch,
            per_node,
            json,
            inputs,
            seed,
            max_matrix_nnz,
            max_flops_ratio,
            saturation,
        } => (|| {
            let graph = model.load()?;
            memory.check(&graph)?;
            let mut feeds = commands::run::given_inputs(&graph, &inputs)?;
            strider_interp::feeds::fill_missing(&graph, seed, &mut feeds).into_diagnostic()?;
            commands::run::warn_non_finite(&graph, &feeds);
            let stop = match runs {
                Some(n) => strider_check::bench::Stop::Runs(n.max(1)),
                // `parse_seconds` admitted only durations `Duration` can hold.
                None => strider_check::bench::Stop::MinTime(
                    std::time::Duration::try_from_secs_f64(min_time).map_err(|e| miette::miette!("{e}"))?,
                ),
            };
            let args = commands::bench::BenchArgs {
                strategies,
                costs,
                run_limits: saturation.limits()?,
                max_matrix_nnz,
                max_flops_ratio,
                max_memory: memory.max_memory,
                options: strider_check::bench::BenchOptions { threads: threads.threads, warmup, stop, batch, per_node },
                tuning_db,
            };
            let outcome = commands::bench::run(&graph, &feeds, &args, &model.limits())?;
            if json {
                stdio::print_json(&outcome)?;
            } else {
                stdio::print(&commands::bench::render(&outcome))?;
            }
            Ok(())
        })(),
        Command::Optimize {
            model,
            cost,
            strategy,
            extractor: ExtractorArgs { extractor },
            fold_constants,
            output,
            json,
            tuning,
            export,
            saturation,
        } => (|| {
            let graph = model.load()?;
            let run_limits = saturation.limits()?;
            let mut cost = commands::optimize::CostChoice::parse(&cost, tuning.threads.threads)?;
            let mut tuning_use = None;
            if let Some(db) = &tuning.tuning_db {
                let (measured, used) = cost.measured(&graph, db, &tuning.options(run_limits)?)?;
                tuning_use = Some(used);
                cost = measured;
            }
            let export = export.options(model.limits());
            let opts = commands::optimize::OptimizeOptions {
                cost,
                strategy,
                extractor,
                fold_constants,
                run_limits,
                output,
                export,
            };
            let report = commands::optimize::OptimizeReport {
                tuning: tuning_use,
                ..commands::optimize::optimize(&graph, &opts, &model.limits())?
            };
            if json { stdio::print_json(&report) } else { stdio::print(&commands::optimize::render(&report)) }
        })(),
        Command::Calibrate { output, time, json, threads } => (|| {
            let min_time = std::time::Duration::try_from_secs_f64(time)
                .map_err(|_| miette::miette!("--time must be a non-negative number of seconds"))?;
            let opts =
                strider_check::calibration::CalibrateOptions { threads: 0, min_time, run_limits: RunLimits::default() };
            let calibration = commands::calibrate::run(&opts, &threads)?;
            commands::calibrate::write(&calibration, &output)?;
            if json {
                stdio::print_json(&calibration)?;
            } else {
                stdio::print(&commands::calibrate::render(&calibration))?;
                stdio::print(&format!("written to {}\n", output.display()))?;
            }
            Ok(())
        })(),
        Command::Tune { models, max_elements, tuning, json, saturation } => (|| {
            let Some(db) = &tuning.tuning_db else {
                return Err(miette::miette!("strider tune needs --tuning-db FILE.jsonl to keep the times in"));
            };
            let opts = tuning.options(saturation.limits()?)?;
            let prior = commands::optimize::cpu_profile(tuning.threads.threads)?;
            let mut tuned = Vec::new();
            for path in &models {
                let graph = model_files::load(path, &Limits { max_elements }, &Default::default())?;
                let (_, nodes) = commands::tune::fill(&graph, db, &opts, &prior)?;
                let model = commands::tune::TunedModel { model: graph.name().to_string(), nodes };
                if !json {
                    stdio::print(&commands::tune::render(&model))?;
                }
                tuned.push(model);
            }
            if json {
                stdio::print_json(&commands::tune::TuneReport { models: tuned })?;
            }
            Ok(())
        })(),
        Command::Explore { model, matrix: Some(node), matrix_out, max_matrix_nnz, .. } => (|| {
            let graph = model.load()?;
            stdio::print(&commands::explore::matrix(&graph, &node, matrix_out.as_deref(), max_matrix_nnz)?)
        })(),
        Command::Explore {
            model, targets, json, extractor: ExtractorArgs { extractor }, tuning, saturation, ..
        } => (|| {
            let graph = model.load()?;
            let targets = load_targets(&targets, tuning.threads.threads)?;
            let run_limits = saturation.limits()?;
            let measured = match &tuning.tuning_db {
                Some(db) => Some(
                    commands::optimize::CostChoice::parse("cpu", tuning.threads.threads)?
                        .measured(&graph, db, &tuning.options(run_limits)?)?
                        .0,
                ),
                None => None,
            };
            let measured = measured.as_ref().map(|m| m.model(true));
            let exploration =
                commands::explore::run(&graph, &targets, measured.as_deref(), &run_limits, &model.limits(), extractor);
            if json {
                stdio::print_json(&exploration)?;
            } else {
                stdio::print(&commands::explore::render(&exploration))?;
            }
            Ok(())
        })(),
        Command::Check {
            model,
            inputs,
            seed,
            atol,
            rtol,
            per_node,
            targets,
            max_matrix_nnz,
            json,
            threads,
            memory,
            saturation,
            extractor: ExtractorArgs { extractor },
        } => (|| {
            let graph = model.load()?;
            memory.check(&graph)?;
            let mut feeds = commands::run::given_inputs(&graph, &inputs)?;
            strider_interp::feeds::fill_missing(&graph, seed, &mut feeds).into_diagnostic()?;
            let targets = load_targets(&targets, threads.threads)?;
            let args = commands::check::CheckArgs {
                tolerance: strider_check::Tolerance { atol, rtol },
                per_node,
                seed,
                targets: &targets,
                run_limits: saturation.limits()?,
                extractor,
                max_matrix_nnz,
                max_memory: memory.max_memory,
                threads: threads.threads,
            };
            let report = commands::check::run(&graph, &feeds, &args, &model.limits())?;
            if json {
                stdio::print_json(&report)?;
            } else {
                stdio::print(&commands::check::render(&report))?;
            }
            if report.pass() {
                Ok(())
            } else {
                Err(exit::Mismatch("some lowerings do not match the original (see above)".into()).into())
            }
        })(),
        Command::Study {
            input,
            out,
            max_elements,
            max_matrix_nnz,
            max_flops_ratio,
            min_time,
            targets,
            json,
            threads,
            saturation,
            memory,
        } => (|| {
            let limits = Limits { max_elements };
            let min_time = std::time::Duration::try_from_secs_f64(min_time)
                .map_err(|_| miette::miette!("--min-time must be a non-negative number of seconds"))?;
            let targets = load_targets(&targets, threads.threads)?;
            let args = commands::study::StudyArgs {
                run_limits: saturation.limits()?,
                max_matrix_nnz,
                max_flops_ratio,
                max_memory: memory.max_memory,
                threads: threads.threads,
                min_time,
                targets: &targets,
            };
            let outcome = commands::study::run(&input, &out, &limits, &args)?;
            if json { stdio::print_json(&outcome) } else { stdio::print(&commands::study::render(&outcome)) }
        })(),
        Command::Info { model, json } => model.load().and_then(|g| {
            let info = commands::info::ModelInfo::of(&g);
            if json { stdio::print_json(&info) } else { stdio::print(&commands::info::render(&g, &info)) }
        }),
        Command::Dot { model, egraph: false, .. } => {
            model.load().and_then(|g| stdio::print(&commands::dot::render(&g)))
        }
        Command::Dot { model, egraph: true, saturation } => (|| {
            let graph = model.load()?;
            stdio::print(&commands::dot::render_egraph(&graph, &saturation.limits()?)?)
        })(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(report) => {
            stdio::eprint_line(&format!("{report:?}"));
            ExitCode::from(exit::code(&report))
        }
    }
}
