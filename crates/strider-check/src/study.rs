//! Research reports: for each ConvTranspose configuration (the layers of a model, or a sweep of one
//! attribute), every lowering's FLOPs, bytes, run time and error against the direct form, as
//! a Markdown table, JSON, and SVG charts of each measure against the swept value.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use ndarray::{ArrayD, IxDyn};
use plotters::prelude::*;
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
    BenchOptions, GEMM_PEAK_SIZE, Machine, Stop, Variant, cpu_model, gemm_peak, simd_level, time_variants,
};
use crate::{compare, run_prepared, stored_elements};

/// A sweep file: one ConvTranspose configuration and the attribute to vary.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// Title of the study.
    pub name: String,
    /// Input shape (N, C, spatial…).
    pub input: Vec<usize>,
    /// Weight shape (C, M/group, k…).
    pub weight: Vec<usize>,
    /// ConvTranspose attributes (strides are replaced when sweeping the stride).
    #[serde(default)]
    pub attrs: ConvTransposeAttrs,
    /// What varies.
    pub vary: Vary,
}

/// The swept attribute; each value applies to every spatial axis.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Vary {
    /// The stride.
    Stride(Vec<usize>),
    /// The input's spatial size.
    InputSize(Vec<usize>),
    /// The kernel size.
    Kernel(Vec<usize>),
}

impl Sweep {
    /// Parses a sweep file; the error names line and column.
    pub fn from_ron(text: &str) -> Result<Sweep, String> {
        ron::from_str(text).map_err(|e| format!("{}: {}", e.span.start, e.code))
    }
}

impl Vary {
    fn label(&self) -> &'static str {
        match self {
            Vary::Stride(_) => "stride",
            Vary::InputSize(_) => "input size",
            Vary::Kernel(_) => "kernel size",
        }
    }
    fn values(&self) -> &[usize] {
        match self {
            Vary::Stride(v) | Vary::InputSize(v) | Vary::Kernel(v) => v,
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
        version: env!("CARGO_PKG_VERSION").to_string(),
        min_time_s: opts.min_time.as_secs_f64(),
    }
}

/// Studies every ConvTranspose of a model (x = layer index). `progress` is told what is measured.
pub fn study_model(graph: &Graph, opts: &StudyOptions, progress: &mut dyn FnMut(&str)) -> Study {
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
        .collect();
    Study { name: graph.name().to_string(), x_label: "ConvTranspose layer".into(), setup, configurations }
}

/// Studies a sweep. Configurations the op refuses are left out (and named in the error list).
pub fn study_sweep(sweep: &Sweep, opts: &StudyOptions, progress: &mut dyn FnMut(&str)) -> (Study, Vec<String>) {
    let setup = setup(opts);
    let mut configurations = Vec::new();
    let mut refused = Vec::new();
    let rank = sweep.input.len().saturating_sub(2);
    for &v in sweep.vary.values() {
        let (mut input, mut weight, mut attrs) = (sweep.input.clone(), sweep.weight.clone(), sweep.attrs.clone());
        match sweep.vary {
            Vary::Stride(_) => attrs.strides = vec![v; rank],
            Vary::InputSize(_) => input[2..].iter_mut().for_each(|d| *d = v),
            Vary::Kernel(_) => weight[2..].iter_mut().for_each(|d| *d = v),
        }
        match single_layer(&input, &weight, &attrs) {
            Ok(g) => {
                let label = format!("{} {v}", sweep.vary.label());
                progress(&label);
                configurations.push(measure(label, v as f64, &g, opts, &setup.machine, progress));
            }
            Err(e) => refused.push(format!("{} {v}: {e}", sweep.vary.label())),
        }
    }
    (Study { name: sweep.name.clone(), x_label: sweep.vary.label().into(), setup, configurations }, refused)
}

fn single_layer(input: &[usize], weight: &[usize], attrs: &ConvTransposeAttrs) -> strider_ir::Result<Graph> {
    let mut b = GraphBuilder::new("layer", Limits::default());
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
/// priced by each cost model.
fn measure(
    label: String,
    x: f64,
    alone: &Graph,
    opts: &StudyOptions,
    machine: &Machine,
    progress: &mut dyn FnMut(&str),
) -> Configuration {
    let mut inputs = HashMap::new();
    feeds::fill_missing(alone, 0, &mut inputs);
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
        } else {
            variants.push((form, g));
        }
    }
    let reference = reference_output(alone, &inputs);
    let timed: Vec<Variant> =
        variants.iter().map(|(form, g)| Variant { label: form.to_string(), graph: g.clone() }).collect();
    let bench = BenchOptions {
        threads: opts.threads,
        warmup: 2,
        stop: Stop::MinTime(opts.min_time),
        batch: 3,
        per_node: false,
    };
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
    Configuration { label, x, measurements, skipped, winner, picks }
}

/// The layer's output from the definitional kernel, summed in float64 (`None` for an op it lacks).
fn reference_output(alone: &Graph, inputs: &HashMap<String, ArrayD<f32>>) -> Option<ArrayD<f32>> {
    let (_, node) = alone.nodes().next()?;
    let Op::ConvTranspose(attrs) = &node.op else { return None };
    let value = |v: strider_ir::ValueId| -> Option<ArrayD<f32>> {
        let name = &alone.value(v).name;
        inputs.get(name).cloned().or_else(|| alone.initializer(v).map(|i| i.data.clone()))
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
        "Measured on {} ({}), {} thread{}, GEMM peak {:.1} GF/s; Strider {}; each configuration's forms timed \
         interleaved for {:.1} s (medians). Errors are against a float64 reference.\n",
        m.cpu,
        m.simd,
        m.threads,
        if m.threads == 1 { "" } else { "s" },
        m.gemm_peak_gflops,
        study.setup.version,
        study.setup.min_time_s
    );
    let models: Vec<&str> =
        study.configurations.first().map(|c| c.picks.iter().map(|p| p.model.as_str()).collect()).unwrap_or_default();
    let _ = writeln!(out, "## Winners\n");
    let _ = writeln!(
        out,
        "| configuration | fastest | {} |",
        models.join(" pick | ") + if models.is_empty() { "" } else { " pick" }
    );
    let _ = writeln!(out, "|---|---|{}", "---|".repeat(models.len()));
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
        let _ = writeln!(out, "| {} | {winner} | {} |", c.label, picks.join(" | "));
    }
    let _ = writeln!(out);
    for c in &study.configurations {
        let _ = writeln!(out, "## {}\n", c.label);
        let _ = writeln!(
            out,
            "| lowering | FLOPs | bytes | median ms | IQR ms | GF/s | of peak | peak memory | max abs error | max rel error |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for m in &c.measurements {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.3} | {:.3} | {:.1} | {:.0}% | {} | {:.2e} | {:.2e} |",
                m.lowering,
                si(m.flops as f64),
                si(m.bytes as f64),
                m.median_ms,
                m.q3_ms - m.q1_ms,
                m.gflops,
                100.0 * m.fraction_of_peak,
                si(m.peak_bytes as f64),
                m.max_abs_error,
                m.max_rel_error
            );
        }
        for s in &c.skipped {
            let _ = writeln!(out, "\nnot timed: {}: {}", s.lowering, s.reason);
        }
        let _ = writeln!(out);
    }
    out
}

/// Writes `report.md`, `report.json` and one SVG chart per measure (FLOPs, bytes, time) into `dir`.
pub fn write_report(study: &Study, dir: &Path) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let write = |name: &str, text: String| {
        std::fs::write(dir.join(name), text).map_err(|e| format!("cannot write {}: {e}", dir.join(name).display()))
    };
    write("report.md", markdown(study))?;
    write("report.json", serde_json::to_string_pretty(study).map_err(|e| e.to_string())?)?;
    let mut files = vec!["report.md".to_string(), "report.json".to_string()];
    for (file, title, pick) in [
        ("flops.svg", "FLOPs", (|m: &Measurement| m.flops as f64) as fn(&Measurement) -> f64),
        ("bytes.svg", "bytes of intermediates and constants", |m| m.bytes as f64),
        ("time.svg", "median run time (ms)", |m| m.median_ms),
    ] {
        chart(study, &dir.join(file), title, pick)?;
        files.push(file.to_string());
    }
    Ok(files)
}

/// One SVG line chart: a line per lowering, the measure (log scale) against x.
fn chart(study: &Study, path: &Path, title: &str, pick: fn(&Measurement) -> f64) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("cannot draw {}: {e}", path.display());
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for c in &study.configurations {
        for m in &c.measurements {
            let value = pick(m).max(1e-3);
            match series.iter_mut().find(|(l, _)| *l == m.lowering.name()) {
                Some((_, points)) => points.push((c.x, value)),
                None => series.push((m.lowering.to_string(), vec![(c.x, value)])),
            }
        }
    }
    let xs = study.configurations.iter().map(|c| c.x);
    let (x0, x1) = xs.clone().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    let values = series.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y));
    let (y0, y1) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
    if !x0.is_finite() || !y0.is_finite() {
        return Err(format!("nothing to draw in {}", path.display()));
    }
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{}: {title}", study.name), ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((x0 - 0.5)..(x1 + 0.5), ((y0 / 2.0)..(y1 * 2.0)).log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(study.x_label.as_str())
        .y_desc(title)
        .x_labels(study.configurations.len().max(2))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| si(*y))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, (label, points)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// A number with an SI suffix for tables and charts: 1234567 → "1.23M".
pub fn si(v: f64) -> String {
    let units = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    let small = |v: f64| if v.abs() >= 10.0 || v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.3}") };
    units.iter().find(|(scale, _)| v.abs() >= *scale).map_or_else(|| small(v), |(s, u)| format!("{:.2}{u}", v / s))
}
