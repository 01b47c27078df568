//! Research reports: for each ConvTranspose configuration (the layers of a model, or a sweep of one
//! attribute), every lowering's FLOPs, bytes, run time and error against the direct form, as
//! a Markdown table, JSON, and SVG charts of each measure against the swept value.

mod charts;
mod conclusions;
#[cfg(test)]
mod fixtures;

pub use conclusions::conclusions;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};
use strider_interp::feeds;
use strider_ir::format::DataSpec;
use strider_ir::op::ConvTransposeAttrs;
use strider_ir::{Graph, GraphBuilder, Limits, Op, seeded};
use strider_rewrite::RunLimits;
use strider_rewrite::cost::{Feasible, Flops, instances, price};
use strider_rewrite::explore::NamedModel;
use strider_rewrite::isolate::{Form, in_form, isolate};

use crate::bench::{
    BANDWIDTH_ELEMENTS, BenchOptions, GEMM_PEAK_SIZE, Machine, Variant, cpu_model, gemm_peak, memory_bandwidth,
    simd_level, time_variants,
};
use crate::numbers::{bytes, count, si};
use crate::table::{Align, Table};
use crate::{compare, run_prepared, stored_elements};

/// A sweep file: one ConvTranspose configuration and the attribute to vary (optionally crossed with
/// more attributes as a grid).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// Title of the study.
    pub name: String,
    /// Input shape (N, C, spatial…).
    pub input: Vec<usize>,
    /// Weight shape (C, M/group, k…).
    pub weight: Vec<usize>,
    /// ConvTranspose attributes (the varied ones are replaced).
    #[serde(default)]
    pub attrs: ConvTransposeAttrs,
    /// What varies along the x axis of the charts.
    pub vary: Vary,
    /// More attributes crossed with `vary`: every combination is a configuration.
    #[serde(default)]
    pub grid: Vec<Vary>,
}

/// A swept attribute; each spatial value applies to every spatial axis.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Vary {
    /// The stride.
    Stride(Vec<usize>),
    /// The input's spatial size.
    InputSize(Vec<usize>),
    /// The kernel size.
    Kernel(Vec<usize>),
    /// Input and output channels (both set to the value).
    Channels(Vec<usize>),
    /// The group count (the total output channels stay; 1 is dense, the channel count depthwise).
    Groups(Vec<usize>),
    /// The dilation.
    Dilation(Vec<usize>),
    /// The output padding.
    OutputPadding(Vec<usize>),
    /// The batch size.
    Batch(Vec<usize>),
    /// The spatial rank (1-D, 2-D, 3-D): the first spatial size, kernel, stride, padding, dilation and
    /// output padding repeated on every axis.
    Rank(Vec<usize>),
}

impl Sweep {
    /// Parses a sweep file; the error names line and column.
    pub fn from_ron(text: &str) -> Result<Sweep, String> {
        ron::from_str(text).map_err(|e| format!("{}: {}", e.span.start, e.code))
    }

    /// Every configuration, `vary` outermost.
    fn configurations(&self) -> Vec<SweepPoint> {
        let start = SweepPoint {
            label: String::new(),
            x: 0.0,
            cell: String::new(),
            input: self.input.clone(),
            weight: self.weight.clone(),
            attrs: self.attrs.clone(),
        };
        let join = |a: &str, b: &str| if a.is_empty() { b.to_string() } else { format!("{a}, {b}") };
        let mut out = vec![start];
        for (axis, vary) in std::iter::once(&self.vary).chain(&self.grid).enumerate() {
            out = out
                .into_iter()
                .flat_map(|p| {
                    vary.values().iter().map(move |&v| {
                        let mut q = p.clone();
                        vary.apply(v, &mut q.input, &mut q.weight, &mut q.attrs);
                        let part = format!("{} {v}", vary.label());
                        q.label = join(&q.label, &part);
                        if axis == 0 {
                            q.x = v as f64;
                        } else {
                            q.cell = join(&q.cell, &part);
                        }
                        q
                    })
                })
                .collect();
        }
        out
    }
}

/// One configuration of a sweep.
#[derive(Clone)]
struct SweepPoint {
    /// Every varied attribute with its value.
    label: String,
    /// The value of `vary`.
    x: f64,
    /// The values of the grid attributes.
    cell: String,
    input: Vec<usize>,
    weight: Vec<usize>,
    attrs: ConvTransposeAttrs,
}

impl Vary {
    fn label(&self) -> &'static str {
        match self {
            Vary::Stride(_) => "stride",
            Vary::InputSize(_) => "input size",
            Vary::Kernel(_) => "kernel size",
            Vary::Channels(_) => "channels",
            Vary::Groups(_) => "groups",
            Vary::Dilation(_) => "dilation",
            Vary::OutputPadding(_) => "output padding",
            Vary::Batch(_) => "batch",
            Vary::Rank(_) => "rank",
        }
    }

    fn values(&self) -> &[usize] {
        match self {
            Vary::Stride(v)
            | Vary::InputSize(v)
            | Vary::Kernel(v)
            | Vary::Channels(v)
            | Vary::Groups(v)
            | Vary::Dilation(v)
            | Vary::OutputPadding(v)
            | Vary::Batch(v)
            | Vary::Rank(v) => v,
        }
    }

    /// Sets this attribute to `v`. Shapes the op refuses are caught when the layer is built.
    fn apply(&self, v: usize, input: &mut Vec<usize>, weight: &mut Vec<usize>, attrs: &mut ConvTransposeAttrs) {
        let rank = input.len().saturating_sub(2);
        let group = attrs.group.max(1);
        match self {
            Vary::Stride(_) => attrs.strides = vec![v; rank],
            Vary::InputSize(_) => input[2..].iter_mut().for_each(|d| *d = v),
            Vary::Kernel(_) => weight[2..].iter_mut().for_each(|d| *d = v),
            Vary::Channels(_) => {
                input[1] = v;
                weight[0] = v;
                weight[1] = v / group;
            }
            Vary::Groups(_) => {
                weight[1] = weight[1] * group / v.max(1);
                attrs.group = v;
            }
            Vary::Dilation(_) => attrs.dilations = vec![v; rank],
            Vary::OutputPadding(_) => attrs.output_padding = vec![v; rank],
            Vary::Batch(_) => input[0] = v,
            Vary::Rank(_) => {
                let first = |xs: &[usize], default: usize| xs.first().copied().unwrap_or(default);
                let (size, kernel) = (first(&input[2..], 1), first(&weight[2..], 1));
                input.truncate(2);
                input.extend(std::iter::repeat_n(size, v));
                weight.truncate(2);
                weight.extend(std::iter::repeat_n(kernel, v));
                let same = |xs: &[usize], default: usize| vec![first(xs, default); v];
                attrs.strides = same(&attrs.strides, 1);
                attrs.dilations = same(&attrs.dilations, 1);
                if !attrs.output_padding.is_empty() {
                    attrs.output_padding = same(&attrs.output_padding, 0);
                }
                if !attrs.pads.is_empty() {
                    attrs.pads = vec![attrs.pads[0]; 2 * v];
                }
                attrs.kernel_shape.clear();
                attrs.output_shape.clear();
            }
        }
    }
}

/// One form of one configuration, measured.
#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    /// `direct` or a lowering name.
    pub lowering: Form,
    /// FLOPs performed.
    pub flops: u64,
    /// Bytes of intermediates and constants.
    pub bytes: u64,
    /// Median run time of the prepared graph (weight-only work done at preparation is not included),
    /// timed interleaved with the other forms as `bench` does, in milliseconds.
    pub median_ms: f64,
    /// First quartile, in milliseconds.
    pub q1_ms: f64,
    /// Third quartile, in milliseconds.
    pub q3_ms: f64,
    /// FLOPs per second at the median, in units of 10⁹.
    pub gflops: f64,
    /// `gflops` as a fraction of the machine's GEMM peak (same kernel, same threads).
    pub fraction_of_peak: f64,
    /// Most bytes alive at once during a run.
    pub peak_bytes: usize,
    /// Largest |form − reference| over the output, the reference summed in float64.
    pub max_abs_error: f64,
    /// Largest |form − reference| / |reference| over the output (where the reference is not 0).
    pub max_rel_error: f64,
}

/// A form that was not timed, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    /// The form.
    pub lowering: Form,
    /// Why.
    pub reason: String,
}

/// What a cost model picks for a configuration, and what that costs against the fastest form.
#[derive(Clone, Debug, Serialize)]
pub struct Pick {
    /// The cost model.
    pub model: String,
    /// The form it prices cheapest (among the forms that fit the limits).
    pub lowering: Form,
    /// Its median over the fastest form's (`None` when the picked form was not timed).
    pub slowdown: Option<f64>,
}

/// One configuration: a label and its measurements (`x` is the swept value or the layer index).
#[derive(Clone, Debug, Serialize)]
pub struct Configuration {
    /// What this configuration is.
    pub label: String,
    /// Position on the chart's x axis.
    pub x: f64,
    /// The grid cell (the values of the attributes crossed with the x axis; empty without a grid).
    pub cell: String,
    /// Every timed form (the direct form first).
    pub measurements: Vec<Measurement>,
    /// Forms not timed.
    pub skipped: Vec<Skipped>,
    /// The fastest form.
    pub winner: Option<Form>,
    /// Each cost model's pick.
    pub picks: Vec<Pick>,
}

/// Where and how a study was measured.
#[derive(Clone, Debug, Serialize)]
pub struct StudySetup {
    /// The machine (CPU, SIMD level, threads, GEMM peak).
    pub machine: Machine,
    /// Main-memory bandwidth in GB/s (STREAM triad over [`BANDWIDTH_ELEMENTS`] f32 per array, same
    /// threads): with the GEMM peak, the roof of `roofline.svg`.
    pub memory_bandwidth_gbs: f64,
    /// Strider's version.
    pub version: String,
    /// Seconds of timing per configuration.
    pub min_time_s: f64,
}

/// A whole study.
#[derive(Clone, Debug, Serialize)]
pub struct Study {
    /// Title.
    pub name: String,
    /// Name of the x axis.
    pub x_label: String,
    /// Where and how it was measured.
    pub setup: StudySetup,
    /// The configurations.
    pub configurations: Vec<Configuration>,
}

/// How to measure a study.
pub struct StudyOptions<'a> {
    /// Saturation limits of each lowering.
    pub run_limits: RunLimits,
    /// Forms holding an explicit sparse matrix with more stored elements than this are not timed.
    pub max_matrix_nnz: usize,
    /// Forms performing more than this many times the direct form's FLOPs are not timed (0: all).
    pub max_flops_ratio: f64,
    /// Forms whose estimated peak memory exceeds this many bytes are not timed.
    pub max_memory: u128,
    /// Threads of each plan (0: one per core).
    pub threads: usize,
    /// Time spent timing each configuration's forms (at least 5 runs of each).
    pub min_time: Duration,
    /// Cost models whose picks are reported.
    pub models: Vec<NamedModel<'a>>,
}

fn setup(opts: &StudyOptions) -> StudySetup {
    let threads = if opts.threads == 0 { rayon::current_num_threads() } else { opts.threads };
    StudySetup {
        machine: Machine {
            cpu: cpu_model(),
            simd: simd_level(),
            threads,
            gemm_peak_gflops: gemm_peak(GEMM_PEAK_SIZE, threads).unwrap_or(f64::NAN),
            gemm_peak_size: GEMM_PEAK_SIZE,
        },
        memory_bandwidth_gbs: memory_bandwidth(BANDWIDTH_ELEMENTS, threads).unwrap_or(f64::NAN),
        version: env!("CARGO_PKG_VERSION").to_string(),
        min_time_s: opts.min_time.as_secs_f64(),
    }
}

/// Studies every ConvTranspose of a model (x = layer index). `progress` is told what is measured.
/// Fails only when a layer's seeded input cannot be allocated.
pub fn study_model(graph: &Graph, opts: &StudyOptions, progress: &mut dyn FnMut(&str)) -> strider_ir::Result<Study> {
    let setup = setup(opts);
    let configurations = graph
        .nodes()
        .map(|(_, n)| n)
        .filter(|n| matches!(n.op, Op::ConvTranspose(_)))
        .enumerate()
        .map(|(i, node)| {
            let label = format!("{} = {}", node.name, strider_ir::format::op_to_ron(&node.op));
            progress(&label);
            measure(label, (i + 1) as f64, &isolate(graph, node), opts, &setup.machine, progress)
        })
        .collect::<strider_ir::Result<_>>()?;
    Ok(Study { name: graph.name().to_string(), x_label: LAYER_AXIS.into(), setup, configurations })
}

/// Studies a sweep. Configurations the op refuses, or whose input cannot be allocated, are left out
/// (and named in the error list).
pub fn study_sweep(sweep: &Sweep, opts: &StudyOptions, progress: &mut dyn FnMut(&str)) -> (Study, Vec<String>) {
    let setup = setup(opts);
    let mut configurations = Vec::new();
    let mut refused = Vec::new();
    for p in sweep.configurations() {
        match single_layer(&p.input, &p.weight, &p.attrs) {
            Ok(g) => {
                progress(&p.label);
                match measure(p.label.clone(), p.x, &g, opts, &setup.machine, progress) {
                    Ok(measured) => configurations.push(Configuration { cell: p.cell, ..measured }),
                    Err(e) => refused.push(format!("{}: {e}", p.label)),
                }
            }
            Err(e) => refused.push(format!("{}: {e}", p.label)),
        }
    }
    (Study { name: sweep.name.clone(), x_label: sweep.vary.label().into(), setup, configurations }, refused)
}

fn single_layer(input: &[usize], weight: &[usize], attrs: &ConvTransposeAttrs) -> strider_ir::Result<Graph> {
    seeded_layer("layer", input, weight, attrs)
}

/// A one-ConvTranspose graph `x → up → y` named `name`, with seeded uniform weights in [−0.5, 0.5).
pub(crate) fn seeded_layer(
    name: &str,
    input: &[usize],
    weight: &[usize],
    attrs: &ConvTransposeAttrs,
) -> strider_ir::Result<Graph> {
    let mut b = GraphBuilder::new(name, Limits::default());
    b.input("x", input.to_vec());
    let n = weight.iter().product();
    let data = ArrayD::from_shape_vec(IxDyn(weight), seeded::uniform(1, n, -0.5, 0.5))
        .map_err(|e| strider_ir::Error::Initializer { name: "w".into(), problem: e.to_string() })?;
    b.initializer("w", data, DataSpec::Uniform { seed: 1, low: -0.5, high: 0.5 });
    b.node("up", Op::ConvTranspose(attrs.clone()), ["x", "w"], ["y"]);
    b.output("y");
    b.finish()
}

/// Every form of one isolated layer: timed interleaved, compared with the float64 reference, and
/// priced by each cost model. Fails only when the layer's seeded input cannot be allocated.
fn measure(
    label: String,
    x: f64,
    alone: &Graph,
    opts: &StudyOptions,
    machine: &Machine,
    progress: &mut dyn FnMut(&str),
) -> strider_ir::Result<Configuration> {
    let mut inputs = HashMap::new();
    feeds::fill_missing(alone, 0, &mut inputs)?;
    let flops_of = |g: &Graph| g.nodes().map(|(_, n)| g.node_flops(n)).sum::<u64>();
    let direct_flops = flops_of(alone).max(1) as f64;
    let mut variants: Vec<(Form, Graph)> = Vec::new();
    let mut skipped = Vec::new();
    for form in Form::ALL {
        let Some(g) = in_form(alone, form, &opts.run_limits) else { continue };
        let (stored, ratio) = (stored_elements(&g), flops_of(&g) as f64 / direct_flops);
        if stored > opts.max_matrix_nnz {
            let reason = format!("its sparse matrix stores {stored} elements, more than --max-matrix-nnz");
            skipped.push(Skipped { lowering: form, reason });
        } else if opts.max_flops_ratio > 0.0 && ratio > opts.max_flops_ratio {
            let reason = format!("{ratio:.0}× the direct form's FLOPs, more than {}", opts.max_flops_ratio);
            skipped.push(Skipped { lowering: form, reason });
        } else if let Some(reason) = crate::over_memory(&g, opts.max_memory) {
            skipped.push(Skipped { lowering: form, reason });
        } else {
            variants.push((form, g));
        }
    }
    let reference = reference_output(alone, &inputs);
    let timed: Vec<Variant> =
        variants.iter().map(|(form, g)| Variant { label: form.to_string(), graph: g.clone() }).collect();
    let bench = BenchOptions::for_forms(opts.threads, opts.min_time);
    let timings = match time_variants(&timed, &inputs, &bench, progress) {
        Ok((timings, _)) => timings,
        Err(e) => {
            let reason = format!("does not run: {e}");
            skipped.extend(variants.iter().map(|(form, _)| Skipped { lowering: *form, reason: reason.clone() }));
            Vec::new()
        }
    };
    let measurements: Vec<Measurement> = variants
        .iter()
        .zip(timings)
        .map(|((form, g), t)| {
            let (max_abs_error, max_rel_error) = error_against(g, &inputs, reference.as_ref(), opts.threads);
            Measurement {
                lowering: *form,
                flops: flops_of(g),
                bytes: g
                    .values()
                    .iter()
                    .filter(|v| v.producer != strider_ir::Producer::Input)
                    .map(|v| v.ty.size_bytes() as u64)
                    .sum(),
                median_ms: t.median_ms,
                q1_ms: t.q1_ms,
                q3_ms: t.q3_ms,
                gflops: t.gflops,
                fraction_of_peak: t.gflops / machine.gemm_peak_gflops,
                peak_bytes: t.peak_bytes,
                max_abs_error,
                max_rel_error,
            }
        })
        .collect();
    let fastest = measurements.iter().min_by(|a, b| a.median_ms.total_cmp(&b.median_ms));
    let winner = fastest.map(|m| m.lowering);
    let fits = Feasible { inner: &Flops::default(), max_elements: Limits::default().max_elements };
    let picks = opts
        .models
        .iter()
        .filter_map(|m| {
            let (form, _) = Form::ALL
                .into_iter()
                .filter_map(|form| in_form(alone, form, &opts.run_limits).map(|g| (form, g)))
                .filter(|(_, g)| instances(g).iter().all(|(_, op)| fits.excess(op).is_none()))
                .filter_map(|(form, g)| price(&g, m.model).map(|c| (form, c)))
                .min_by(|a, b| a.1.total_cmp(&b.1))?;
            let timed = measurements.iter().find(|x| x.lowering == form);
            let slowdown = timed.zip(fastest).map(|(t, f)| t.median_ms / f.median_ms);
            Some(Pick { model: m.name.clone(), lowering: form, slowdown })
        })
        .collect();
    Ok(Configuration { label, x, cell: String::new(), measurements, skipped, winner, picks })
}

/// The layer's output from the definitional kernel, summed in float64 (`None` for an op it lacks).
fn reference_output(alone: &Graph, inputs: &HashMap<String, ArrayD<f32>>) -> Option<ArrayD<f32>> {
    let (_, node) = alone.nodes().next()?;
    let Op::ConvTranspose(attrs) = &node.op else { return None };
    let value = |v: strider_ir::ValueId| -> Option<ArrayD<f32>> {
        let name = &alone.value(v).name;
        inputs.get(name).cloned().or_else(|| alone.initializer(v).and_then(|i| i.data_copy().ok()))
    };
    let args: Vec<ArrayD<f32>> = node.inputs.iter().map(|&v| value(v)).collect::<Option<_>>()?;
    let views: Vec<_> = args.iter().map(|a| a.view()).collect();
    strider_interp::kernels::reference::conv_transpose(attrs, &views).ok()
}

/// Largest absolute and relative error of `graph`'s output against `reference` (NaN without one).
fn error_against(
    graph: &Graph,
    inputs: &HashMap<String, ArrayD<f32>>,
    reference: Option<&ArrayD<f32>>,
    threads: usize,
) -> (f64, f64) {
    let Some(want) = reference else { return (f64::NAN, f64::NAN) };
    match run_prepared(graph, inputs, threads) {
        Ok((outputs, _)) => {
            let c = compare::compare("y", want, &outputs[0].1, crate::Tolerance::default());
            (c.max_abs, c.max_rel)
        }
        Err(_) => (f64::NAN, f64::NAN),
    }
}

/// The study as Markdown: the setup, a winner per configuration with each cost model's pick, then
/// every form's measurements per configuration.
pub fn markdown(study: &Study) -> String {
    let m = &study.setup.machine;
    let mut out = format!("# {}\n\n", study.name);
    let _ = writeln!(
        out,
        "Measured on {} ({}), {}, GEMM peak {:.1} GF/s, memory bandwidth {:.1} GB/s (triad); Strider {}; each configuration's forms timed \
         interleaved for {:.1} s (medians). Errors are against a float64 reference.\n",
        m.cpu,
        m.simd,
        count(m.threads as u128, "thread"),
        m.gemm_peak_gflops,
        study.setup.memory_bandwidth_gbs,
        study.setup.version,
        study.setup.min_time_s
    );
    let models: Vec<&str> =
        study.configurations.first().map(|c| c.picks.iter().map(|p| p.model.as_str()).collect()).unwrap_or_default();
    let _ = writeln!(out, "## Winners\n");
    let picked = models.iter().map(|m| (format!("{m} pick"), Align::Left));
    let mut winners = Table::new(
        [("configuration".to_string(), Align::Left), ("fastest".into(), Align::Left)].into_iter().chain(picked),
    );
    for c in &study.configurations {
        let winner = c.winner.map_or("—".to_string(), |w| w.to_string());
        let picks: Vec<String> = c
            .picks
            .iter()
            .map(|p| match p.slowdown {
                Some(s) => format!("{} ({s:.2}×)", p.lowering),
                None => format!("{} (not timed)", p.lowering),
            })
            .collect();
        winners.row([c.label.clone(), winner].into_iter().chain(picks));
    }
    let _ = writeln!(out, "{}", winners.markdown());
    let _ = writeln!(out, "## Conclusions\n");
    for line in conclusions(study) {
        let _ = writeln!(out, "- {line}");
    }
    let _ = writeln!(out);
    out.push_str(&charts::listing(study));
    for c in &study.configurations {
        let _ = writeln!(out, "## {}\n", c.label);
        let mut table = Table::new([
            ("lowering", Align::Left),
            ("FLOPs", Align::Right),
            ("bytes", Align::Right),
            ("median ms", Align::Right),
            ("IQR ms", Align::Right),
            ("GF/s", Align::Right),
            ("of peak", Align::Right),
            ("peak memory", Align::Right),
            ("max abs error", Align::Right),
            ("max rel error", Align::Right),
        ]);
        for m in &c.measurements {
            table.row([
                m.lowering.to_string(),
                si(m.flops as f64),
                bytes(m.bytes as u128),
                format!("{:.3}", m.median_ms),
                format!("{:.3}", m.q3_ms - m.q1_ms),
                format!("{:.1}", m.gflops),
                format!("{:.0}%", 100.0 * m.fraction_of_peak),
                bytes(m.peak_bytes as u128),
                format!("{:.2e}", m.max_abs_error),
                format!("{:.2e}", m.max_rel_error),
            ]);
        }
        out.push_str(&table.markdown());
        for s in &c.skipped {
            let _ = writeln!(out, "\nnot timed: {}: {}", s.lowering, s.reason);
        }
        let _ = writeln!(out);
    }
    out
}

/// Writes `report.md`, `report.json`, one SVG chart per measure (FLOPs, bytes, time, speed-up over
/// the direct form) and the roofline into `dir`. Everything is rendered first, so a failure leaves no partial report.
pub fn write_report(study: &Study, dir: &Path) -> Result<Vec<String>, String> {
    let mut files: Vec<(&str, String)> = vec![
        ("report.md", markdown(study)),
        ("report.json", serde_json::to_string_pretty(study).map_err(|e| e.to_string())?),
    ];
    let speedup = |c: &Configuration, m: &Measurement| {
        let direct = c.measurements.iter().find(|d| d.lowering == Form::Direct).map_or(f64::NAN, |d| d.median_ms);
        direct / m.median_ms
    };
    let charts: [(&str, &str, charts::Measure); 4] = [
        ("flops.svg", "FLOPs", &|_, m| m.flops as f64),
        ("bytes.svg", "bytes of intermediates and constants", &|_, m| m.bytes as f64),
        ("time.svg", "median run time (ms)", &|_, m| m.median_ms),
        ("speedup.svg", "speed-up over the direct form (×)", &speedup),
    ];
    for (file, title, pick) in charts {
        files.push((file, charts::chart(study, title, pick).map_err(|e| format!("cannot draw {file}: {e}"))?));
    }
    files.push(("roofline.svg", charts::roofline(study).map_err(|e| format!("cannot draw roofline.svg: {e}"))?));
    strider_ir::output::create_folder(dir).map_err(|e| e.to_string())?;
    for (name, text) in &files {
        strider_ir::output::replace_text(&dir.join(name), text, "report").map_err(|e| e.to_string())?;
    }
    Ok(files.into_iter().map(|(name, _)| name.to_string()).collect())
}

/// The x axis of a model study.
const LAYER_AXIS: &str = "ConvTranspose layer";

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(vary: Vary, grid: Vec<Vary>) -> Sweep {
        Sweep {
            name: "t".into(),
            input: vec![1, 8, 6, 6],
            weight: vec![8, 4, 4, 4],
            attrs: ConvTransposeAttrs { strides: vec![2, 2], pads: vec![1; 4], ..Default::default() },
            vary,
            grid,
        }
    }

    #[test]
    fn a_grid_is_every_combination_with_vary_on_the_x_axis() {
        let points = sweep(Vary::Groups(vec![1, 2, 4]), vec![Vary::Batch(vec![1, 3])]).configurations();
        assert_eq!(points.len(), 6);
        let labels: Vec<&str> = points.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels[..2], ["groups 1, batch 1", "groups 1, batch 3"]);
        for p in &points {
            // The total output channels stay: weight[1] · group = 4.
            assert_eq!(p.weight[1] * p.attrs.group, 4, "{}", p.label);
            assert_eq!(p.x, p.attrs.group as f64);
            assert_eq!(p.cell, format!("batch {}", p.input[0]));
            single_layer(&p.input, &p.weight, &p.attrs).unwrap_or_else(|e| panic!("{}: {e}", p.label));
        }
    }

    #[test]
    fn rank_repeats_the_first_axis() {
        let points = sweep(Vary::Rank(vec![1, 3]), vec![]).configurations();
        assert_eq!(points[0].input, [1, 8, 6]);
        assert_eq!(points[0].attrs.pads, [1, 1]);
        assert_eq!(points[1].weight, [8, 4, 4, 4, 4]);
        assert_eq!(points[1].attrs.strides, [2, 2, 2]);
        for p in &points {
            single_layer(&p.input, &p.weight, &p.attrs).unwrap_or_else(|e| panic!("{}: {e}", p.label));
        }
    }

    #[test]
    fn channels_dilation_and_output_padding_apply() {
        let c = sweep(Vary::Channels(vec![16]), vec![Vary::Dilation(vec![2]), Vary::OutputPadding(vec![1])]);
        let p = &c.configurations()[0];
        assert_eq!((p.input[1], p.weight[0], p.weight[1]), (16, 16, 16));
        assert_eq!((p.attrs.dilations.as_slice(), p.attrs.output_padding.as_slice()), (&[2, 2][..], &[1, 1][..]));
        single_layer(&p.input, &p.weight, &p.attrs).unwrap();
    }
}
