//! Research reports: for each ConvTranspose configuration (the layers of a model, or a sweep of one
//! attribute), every lowering's FLOPs, bytes, run time and error against the direct form, as
//! a Markdown table, JSON, and SVG charts of each measure against the swept value.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use ndarray::{ArrayD, IxDyn};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use strider_interp::{Plan, PlanOptions, feeds};
use strider_ir::format::DataSpec;
use strider_ir::op::ConvTransposeAttrs;
use strider_ir::{Graph, GraphBuilder, Limits, Op, seeded};
use strider_rewrite::explore::isolate;
use strider_rewrite::{Lowering, RunLimits};

use crate::{compare, lower_alone_with, run_prepared, stored_elements};

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

/// One lowering of one configuration, measured.
#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    /// `direct` or a lowering name.
    pub lowering: String,
    /// FLOPs performed.
    pub flops: u64,
    /// Bytes of intermediates and constants.
    pub bytes: u64,
    /// Median of five runs of the prepared graph after one warm-up (weight-only work done at
    /// preparation is not included), in milliseconds.
    pub time_ms: f64,
    /// Largest |variant − direct| over the output.
    pub max_abs_error: f64,
}

/// One configuration: a label and its measurements (`x` is the swept value or the layer index).
#[derive(Clone, Debug, Serialize)]
pub struct Configuration {
    /// What this configuration is.
    pub label: String,
    /// Position on the chart's x axis.
    pub x: f64,
    /// Every applicable lowering (and the direct form first).
    pub measurements: Vec<Measurement>,
}

/// A whole study.
#[derive(Clone, Debug, Serialize)]
pub struct Study {
    /// Title.
    pub name: String,
    /// Name of the x axis.
    pub x_label: String,
    /// The configurations.
    pub configurations: Vec<Configuration>,
}

/// Studies every ConvTranspose of a model (x = layer index).
pub fn study_model(graph: &Graph, limits: &RunLimits, max_matrix_nnz: usize, threads: usize) -> Study {
    let configurations = graph
        .nodes()
        .map(|(_, n)| n)
        .filter(|n| matches!(n.op, Op::ConvTranspose(_)))
        .enumerate()
        .map(|(i, node)| {
            let label = format!("{} = {}", node.name, strider_ir::format::op_to_ron(&node.op));
            Configuration {
                label,
                x: (i + 1) as f64,
                measurements: measure(&isolate(graph, node), limits, max_matrix_nnz, threads),
            }
        })
        .collect();
    Study { name: graph.name().to_string(), x_label: "ConvTranspose layer".into(), configurations }
}

/// Studies a sweep. Configurations the op refuses are left out (and named in the error list).
pub fn study_sweep(sweep: &Sweep, limits: &RunLimits, max_matrix_nnz: usize, threads: usize) -> (Study, Vec<String>) {
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
            Ok(g) => configurations.push(Configuration {
                label: format!("{} {v}", sweep.vary.label()),
                x: v as f64,
                measurements: measure(&g, limits, max_matrix_nnz, threads),
            }),
            Err(e) => refused.push(format!("{} {v}: {e}", sweep.vary.label())),
        }
    }
    (Study { name: sweep.name.clone(), x_label: sweep.vary.label().into(), configurations }, refused)
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

fn measure(alone: &Graph, limits: &RunLimits, max_matrix_nnz: usize, threads: usize) -> Vec<Measurement> {
    let mut inputs = HashMap::new();
    feeds::fill_missing(alone, 0, &mut inputs);
    let Ok((reference, _)) = run_prepared(alone, &inputs, threads) else { return Vec::new() };
    let mut variants = vec![("direct".to_string(), alone.clone())];
    for lowering in Lowering::ALL {
        if let Some(g) = lower_alone_with(alone, &strider_rewrite::Strategy::Force(lowering).rules(), limits) {
            if stored_elements(&g) <= max_matrix_nnz {
                variants.push((lowering.name().to_string(), g));
            }
        }
    }
    variants
        .into_iter()
        .filter_map(|(lowering, g)| {
            let mut plan = Plan::new(&g, &PlanOptions { threads }).ok()?;
            let outputs = plan.run(&inputs).ok()?;
            let mut times = Vec::with_capacity(5);
            for _ in 0..5 {
                let started = Instant::now();
                let again = plan.run(&inputs).ok()?;
                times.push(started.elapsed().as_secs_f64() * 1e3);
                plan.recycle(again);
            }
            times.sort_by(f64::total_cmp);
            let best = times[times.len() / 2];
            let error = compare::compare("y", &reference[0].1, &outputs[0].1, crate::Tolerance::default()).max_abs;
            let flops = g.nodes().map(|(_, n)| g.node_flops(n)).sum();
            let bytes = g
                .values()
                .iter()
                .filter(|v| v.producer != strider_ir::Producer::Input)
                .map(|v| v.ty.size_bytes() as u64)
                .sum();
            Some(Measurement { lowering, flops, bytes, time_ms: best, max_abs_error: error })
        })
        .collect()
}

/// The study as Markdown tables.
pub fn markdown(study: &Study) -> String {
    let mut out = format!("# {}\n\n", study.name);
    for c in &study.configurations {
        let _ = writeln!(out, "## {}\n", c.label);
        let _ = writeln!(out, "| lowering | FLOPs | bytes | time (ms) | max abs error vs direct |");
        let _ = writeln!(out, "|---|---:|---:|---:|---:|");
        for m in &c.measurements {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.3} | {:.2e} |",
                m.lowering, m.flops, m.bytes, m.time_ms, m.max_abs_error
            );
        }
        let _ = writeln!(out);
    }
    out
}

/// Writes `report.md`, `report.json` and one SVG chart per measure (FLOPs, bytes, time) into `dir`.
pub fn write_report(study: &Study, dir: &Path) -> Result<Vec<String>, String> {
    strider_ir::output::create_folder(dir).map_err(|e| e.to_string())?;
    let write = |name: &str, text: String| {
        strider_ir::output::replace_text(&dir.join(name), &text, "report").map_err(|e| e.to_string())
    };
    write("report.md", markdown(study))?;
    write("report.json", serde_json::to_string_pretty(study).map_err(|e| e.to_string())?)?;
    let mut files = vec!["report.md".to_string(), "report.json".to_string()];
    for (file, title, pick) in [
        ("flops.svg", "FLOPs", (|m: &Measurement| m.flops as f64) as fn(&Measurement) -> f64),
        ("bytes.svg", "bytes of intermediates and constants", |m| m.bytes as f64),
        ("time.svg", "run time (ms)", |m| m.time_ms),
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
            match series.iter_mut().find(|(l, _)| *l == m.lowering) {
                Some((_, points)) => points.push((c.x, value)),
                None => series.push((m.lowering.clone(), vec![(c.x, value)])),
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
