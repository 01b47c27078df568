//! `strider calibrate`: fits a CPU profile to this machine. A fixed set of transposed-convolution
//! layers (chosen to cover every kernel of the engine, and distinct from the benchmark layers the
//! profile is judged on) is timed in every form; each form's time is modelled as a sum over its ops of
//! `per_flop · FLOPs + per_byte · bytes + per_call` of the kernel each op runs on ([`engine_work`],
//! fused steps included), and the factors are fitted by non-negative least squares on relative error.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;
use strider_interp::feeds;
use strider_interp::kernels::Kernel;
use strider_ir::op::{ConvTransposeAttrs, UpsampleAttrs};
use strider_ir::{Graph, GraphBuilder, Limits, Op};
use strider_rewrite::cost::{KernelCost, Target, engine_work, instances, price};
use strider_rewrite::isolate::{Form, in_form};
use strider_rewrite::{OptimizeOptions, RunLimits, optimize};

use crate::bench::{BenchOptions, Variant, cpu_model, simd_level, time_variants};
use crate::stored_elements;
use crate::study::seeded_layer;

/// One calibration layer: input shape, weight shape, attributes.
type Layer = (&'static str, &'static [usize], &'static [usize], ConvTransposeAttrs);

fn attrs(
    strides: &[usize],
    pads: &[i64],
    output_padding: &[usize],
    dilations: &[usize],
    group: usize,
) -> ConvTransposeAttrs {
    ConvTransposeAttrs {
        strides: strides.to_vec(),
        pads: pads.to_vec(),
        output_padding: output_padding.to_vec(),
        dilations: dilations.to_vec(),
        group,
        ..Default::default()
    }
}

/// The calibration layers: 2-D, 1-D and 3-D, strides 1 to 16, kernels 2 to 32, depthwise and grouped,
/// dilated, batched, channel-heavy and image-heavy.
fn layers() -> Vec<Layer> {
    vec![
        ("c128_8x8_k4s2", &[1, 128, 8, 8], &[128, 64, 4, 4], attrs(&[2, 2], &[1, 1, 1, 1], &[], &[], 1)),
        ("c32_32x32_k4s2", &[1, 32, 32, 32], &[32, 32, 4, 4], attrs(&[2, 2], &[1, 1, 1, 1], &[], &[], 1)),
        ("c256_4x4_k3s2_op1", &[1, 256, 4, 4], &[256, 128, 3, 3], attrs(&[2, 2], &[1, 1, 1, 1], &[1, 1], &[], 1)),
        ("c64_16x16_k2s2", &[1, 64, 16, 16], &[64, 64, 2, 2], attrs(&[2, 2], &[], &[], &[], 1)),
        ("c16_64x64_k4s2", &[1, 16, 64, 64], &[16, 8, 4, 4], attrs(&[2, 2], &[1, 1, 1, 1], &[], &[], 1)),
        ("c8_64x64_k5s1", &[1, 8, 64, 64], &[8, 3, 5, 5], attrs(&[1, 1], &[2, 2, 2, 2], &[], &[], 1)),
        ("c512_2x2_k4s2", &[1, 512, 2, 2], &[512, 256, 4, 4], attrs(&[2, 2], &[1, 1, 1, 1], &[], &[], 1)),
        ("c64_16x16_k8s4", &[1, 64, 16, 16], &[64, 32, 8, 8], attrs(&[4, 4], &[2, 2, 2, 2], &[], &[], 1)),
        ("c21_8x8_k16s8", &[1, 21, 8, 8], &[21, 21, 16, 16], attrs(&[8, 8], &[4, 4, 4, 4], &[], &[], 1)),
        ("c16_12x12_k32s16", &[1, 16, 12, 12], &[16, 16, 32, 32], attrs(&[16, 16], &[8, 8, 8, 8], &[], &[], 1)),
        ("dw32_32x32_k3s2", &[1, 32, 32, 32], &[32, 1, 3, 3], attrs(&[2, 2], &[1, 1, 1, 1], &[1, 1], &[], 32)),
        ("c100_1x1_k4s1", &[1, 100, 1, 1], &[100, 256, 4, 4], attrs(&[1, 1], &[], &[], &[], 1)),
        ("c48_24x24_k3s3", &[1, 48, 24, 24], &[48, 24, 3, 3], attrs(&[3, 3], &[], &[], &[], 1)),
        ("c64_16x16_k3s2d2", &[1, 64, 16, 16], &[64, 64, 3, 3], attrs(&[2, 2], &[2, 2, 2, 2], &[1, 1], &[2, 2], 1)),
        ("b4_c64_8x8_k4s2", &[4, 64, 8, 8], &[64, 32, 4, 4], attrs(&[2, 2], &[1, 1, 1, 1], &[], &[], 1)),
        ("g4_c128_16x16_k4s2", &[1, 128, 16, 16], &[128, 32, 4, 4], attrs(&[2, 2], &[1, 1, 1, 1], &[], &[], 4)),
        ("1d_c256_64_k16s8", &[1, 256, 64], &[256, 128, 16], attrs(&[8], &[4, 4], &[], &[], 1)),
        ("1d_c64_256_k4s2", &[1, 64, 256], &[64, 32, 4], attrs(&[2], &[1, 1], &[], &[], 1)),
        ("3d_c32_4x8x8_k4s2", &[1, 32, 4, 8, 8], &[32, 16, 4, 4, 4], attrs(&[2, 2, 2], &[1; 6], &[], &[], 1)),
        ("3d_c16_8x8x8_k3s2", &[1, 16, 8, 8, 8], &[16, 8, 3, 3, 3], attrs(&[2, 2, 2], &[1; 6], &[1, 1, 1], &[], 1)),
    ]
}

fn upsample_graph() -> strider_ir::Result<Graph> {
    let mut b = GraphBuilder::new("upsample_c64_16x16_x2", Limits::default());
    b.input("x", vec![1, 64, 16, 16]);
    b.node("up", Op::Upsample(UpsampleAttrs { scales: vec![1.0, 1.0, 2.0, 2.0], ..Default::default() }), ["x"], ["y"]);
    b.output("y");
    b.finish()
}

/// How to calibrate.
#[derive(Clone, Copy, Debug)]
pub struct CalibrateOptions {
    /// Threads of each plan (0: one per core).
    pub threads: usize,
    /// Time spent timing each layer's forms (at least 5 runs of each).
    pub min_time: Duration,
    /// Saturation limits of each lowering.
    pub run_limits: RunLimits,
}

/// One timed form of one calibration layer, with the fitted profile's prediction.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    /// The layer.
    pub layer: String,
    /// The form (`auto` for a graph the profile itself extracted during refinement).
    pub form: String,
    /// Measured median, in milliseconds.
    pub measured_ms: f64,
    /// What the fitted profile predicts, in milliseconds.
    pub predicted_ms: f64,
}

/// A fitted profile and how well it fits.
#[derive(Clone, Debug, Serialize)]
pub struct Calibration {
    /// The profile (nanoseconds).
    pub target: Target,
    /// Every timed form.
    pub samples: Vec<Sample>,
    /// Layers where the profile's cheapest form is the measured fastest, or within 10% of it.
    pub picks_within_10_percent: usize,
    /// Layers timed.
    pub layers: usize,
    /// Median of |predicted − measured| / measured over the samples.
    pub median_relative_error: f64,
}

/// Kernel features of a graph: per kernel, FLOPs and bytes; and the count of run-time ops.
fn features(graph: &Graph) -> Vec<f64> {
    let mut row = vec![0.0; 2 * Kernel::ALL.len() + 1];
    for (_, op) in instances(graph).into_iter().filter(|(_, op)| !op.constant) {
        let (work, calls) = engine_work(&op);
        let k = Kernel::ALL.iter().position(|&k| k == work.kernel).unwrap_or(Kernel::ALL.len() - 1);
        row[2 * k] += work.flops;
        row[2 * k + 1] += work.bytes;
        row[2 * Kernel::ALL.len()] += calls;
    }
    row
}

/// Times every form of every calibration layer, fits the kernel factors and names the profile after
/// this machine. `base` gives the list of supported ops. `progress` is told which layer is timed.
pub fn calibrate(
    base: &Target,
    opts: &CalibrateOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Calibration, strider_interp::ExecError> {
    let mut graphs: Vec<Graph> = layers()
        .iter()
        .filter_map(|(name, input, weight, attrs)| seeded_layer(name, input, weight, attrs).ok())
        .collect();
    graphs.extend(upsample_graph().ok());
    calibrate_on(&graphs, base, opts, progress)
}

/// [`calibrate`] on the given one-node graphs (each a ConvTranspose or Upsample alone).
pub fn calibrate_on(
    graphs: &[Graph],
    base: &Target,
    opts: &CalibrateOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Calibration, strider_interp::ExecError> {
    let mut timed: Vec<(String, String, Graph, f64)> = Vec::new();
    for alone in graphs {
        progress(&format!("timing {}", alone.name()));
        let direct_flops = alone.nodes().map(|(_, n)| alone.node_flops(n)).sum::<u64>().max(1) as f64;
        let mut variants = Vec::new();
        for form in Form::ALL {
            let Some(g) = in_form(alone, form, &opts.run_limits) else { continue };
            let flops = g.nodes().map(|(_, n)| g.node_flops(n)).sum::<u64>() as f64;
            if stored_elements(&g) > crate::DEFAULT_MAX_MATRIX_NNZ || flops > 16.0 * direct_flops {
                continue;
            }
            variants.push(Variant { label: form.to_string(), graph: g });
        }
        timed.extend(time_alone(alone, variants, opts, progress)?);
    }
    let mut target = fit(base, &timed, opts.threads);
    // Refinement: where the fitted profile would extract a graph that was not timed (a mixture of
    // forms, or a form no family forces), time that graph too and fit again, so that the profile
    // learns from its own mistakes.
    for round in 0..REFINEMENT_ROUNDS {
        let mut added = 0;
        for alone in graphs {
            progress(&format!("refinement {}: {}", round + 1, alone.name()));
            let pipeline = OptimizeOptions { run_limits: opts.run_limits, ..OptimizeOptions::default() };
            let Ok(picked) = optimize(alone, &target, &pipeline) else { continue };
            let print = structure(&picked.graph);
            if timed.iter().any(|(layer, _, g, _)| layer == alone.name() && structure(g) == print) {
                continue;
            }
            let variant = Variant { label: "auto".into(), graph: picked.graph };
            timed.extend(time_alone(alone, vec![variant], opts, progress)?);
            added += 1;
        }
        if added == 0 {
            break;
        }
        target = fit(base, &timed, opts.threads);
    }
    let samples: Vec<Sample> = timed
        .iter()
        .map(|(layer, form, g, ms)| Sample {
            layer: layer.clone(),
            form: form.clone(),
            measured_ms: *ms,
            predicted_ms: price(g, &target).unwrap_or(f64::NAN) / 1e6,
        })
        .collect();
    let mut errors: Vec<f64> = samples.iter().map(|s| (s.predicted_ms - s.measured_ms).abs() / s.measured_ms).collect();
    errors.sort_by(f64::total_cmp);
    let picks_within_10_percent = graphs
        .iter()
        .filter(|g| {
            let of_layer: Vec<&Sample> = samples.iter().filter(|s| s.layer == g.name()).collect();
            let fastest = of_layer.iter().map(|s| s.measured_ms).fold(f64::INFINITY, f64::min);
            let pick = of_layer.iter().min_by(|a, b| a.predicted_ms.total_cmp(&b.predicted_ms));
            pick.is_some_and(|p| p.measured_ms <= 1.1 * fastest)
        })
        .count();
    Ok(Calibration {
        target,
        picks_within_10_percent,
        layers: graphs.len(),
        median_relative_error: errors.get(errors.len() / 2).copied().unwrap_or(f64::NAN),
        samples,
    })
}

/// Rounds of refinement (timing what the fitted profile picks) after the first fit.
const REFINEMENT_ROUNDS: usize = 2;

/// A graph's structure (ops, attributes and wiring), to tell whether a graph was timed already.
fn structure(graph: &Graph) -> Vec<String> {
    graph.nodes().map(|(_, n)| format!("{:?} {:?}", n.op, n.inputs)).collect()
}

/// Times `variants` of one layer, interleaved: (layer, label, graph, median ms) each.
fn time_alone(
    alone: &Graph,
    variants: Vec<Variant>,
    opts: &CalibrateOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<(String, String, Graph, f64)>, strider_interp::ExecError> {
    let mut inputs = HashMap::new();
    feeds::fill_missing(alone, 0, &mut inputs)?;
    let bench = BenchOptions::for_forms(opts.threads, opts.min_time);
    let (timings, _) = time_variants(&variants, &inputs, &bench, progress)?;
    Ok(variants
        .into_iter()
        .zip(timings)
        .map(|(v, t)| (alone.name().to_string(), v.label, v.graph, t.median_ms))
        .collect())
}

/// The profile fitted to `timed` (layer, label, graph, median ms), named after this machine.
fn fit(base: &Target, timed: &[(String, String, Graph, f64)], threads: usize) -> Target {
    let rows: Vec<Vec<f64>> = timed.iter().map(|(_, _, g, _)| features(g)).collect();
    let times_ns: Vec<f64> = timed.iter().map(|t| t.3 * 1e6).collect();
    let theta = fit_relative(&rows, &times_ns);
    let calls = theta[2 * Kernel::ALL.len()];
    let kernels = Kernel::ALL
        .iter()
        .enumerate()
        .map(|(i, &k)| (k, KernelCost { per_flop: theta[2 * i], per_byte: theta[2 * i + 1], per_call: calls }))
        .collect();
    let threads = if threads == 0 { rayon::current_num_threads() } else { threads };
    Target {
        name: format!(
            "cpu ({}, {}, {} thread{})",
            cpu_model(),
            simd_level(),
            threads,
            if threads == 1 { "" } else { "s" }
        ),
        supported: base.supported.clone(),
        flop_factor: BTreeMap::new(),
        byte_cost: 0.0,
        kernels,
        kernels_by_threads: BTreeMap::new(),
    }
}

/// Fits taken at several thread counts, merged into one profile.
#[derive(Clone, Debug, Serialize)]
pub struct ThreadCalibration {
    /// The merged profile: `kernels` from the first count, every count's table in
    /// `kernels_by_threads` (see [`Target::for_threads`]).
    pub target: Target,
    /// Each count's own fit, in the order the counts were given.
    pub fits: Vec<(usize, Calibration)>,
}

/// [`calibrate`] at each of `counts` threads (0: one per core) in turn, merged into one profile.
pub fn calibrate_per_threads(
    base: &Target,
    counts: &[usize],
    opts: &CalibrateOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<ThreadCalibration, strider_interp::ExecError> {
    let mut fits = Vec::new();
    for &count in counts {
        let threads = if count == 0 { rayon::current_num_threads() } else { count };
        let mut tell = |message: &str| progress(&format!("{threads} thread(s): {message}"));
        fits.push((threads, calibrate(base, &CalibrateOptions { threads, ..*opts }, &mut tell)?));
    }
    Ok(merged(base, fits))
}

/// One profile from fits at several thread counts (a single fit is kept as it is).
fn merged(base: &Target, fits: Vec<(usize, Calibration)>) -> ThreadCalibration {
    let mut target = fits.first().map_or_else(|| base.clone(), |(_, c)| c.target.clone());
    if fits.len() > 1 {
        let counts: Vec<String> = fits.iter().map(|(t, _)| t.to_string()).collect();
        target.name = format!("cpu ({}, {}, {} threads)", cpu_model(), simd_level(), counts.join(", "));
        target.kernels_by_threads = fits.iter().map(|(t, c)| (*t, c.target.kernels.clone())).collect();
    }
    ThreadCalibration { target, fits }
}

/// Non-negative θ minimising Σ ((rows·θ − t) / t)²: each row scaled by its time, so that a fast form
/// weighs as much as a slow one.
fn fit_relative(rows: &[Vec<f64>], times: &[f64]) -> Vec<f64> {
    let scaled: Vec<Vec<f64>> = rows.iter().zip(times).map(|(r, &t)| r.iter().map(|v| v / t).collect()).collect();
    nnls(&scaled, &vec![1.0; times.len()])
}

/// Non-negative least squares, min ‖A·x − b‖ with x ≥ 0 (Lawson and Hanson's active-set method).
/// Columns are scaled to unit norm first, so that FLOPs (10⁸) and call counts (1) weigh alike.
pub fn nnls(a: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let cols = a.first().map_or(0, Vec::len);
    let norms: Vec<f64> = (0..cols).map(|j| a.iter().map(|r| r[j] * r[j]).sum::<f64>().sqrt()).collect();
    let scaled: Vec<Vec<f64>> =
        a.iter().map(|r| r.iter().zip(&norms).map(|(v, &n)| if n > 0.0 { v / n } else { 0.0 }).collect()).collect();
    let residual_gradient = |x: &[f64]| -> Vec<f64> {
        let r: Vec<f64> = scaled.iter().zip(b).map(|(row, &bi)| bi - dot(row, x)).collect();
        (0..cols).map(|j| scaled.iter().zip(&r).map(|(row, ri)| row[j] * ri).sum()).collect()
    };
    let mut x = vec![0.0; cols];
    let mut passive = vec![false; cols];
    let tolerance = 1e-10;
    for _ in 0..3 * cols.max(1) {
        let w = residual_gradient(&x);
        let candidate = (0..cols).filter(|&j| !passive[j] && norms[j] > 0.0).max_by(|&i, &j| w[i].total_cmp(&w[j]));
        let Some(j) = candidate.filter(|&j| w[j] > tolerance) else { break };
        passive[j] = true;
        loop {
            let s = least_squares_on(&scaled, b, &passive);
            if (0..cols).filter(|&i| passive[i]).all(|i| s[i] > tolerance) {
                x = s;
                break;
            }
            let alpha = (0..cols)
                .filter(|&i| passive[i] && s[i] <= tolerance)
                .map(|i| x[i] / (x[i] - s[i]))
                .fold(f64::INFINITY, f64::min);
            for i in 0..cols {
                x[i] += alpha * (s[i] - x[i]);
                if passive[i] && x[i] <= tolerance {
                    passive[i] = false;
                    x[i] = 0.0;
                }
            }
            if !passive.iter().any(|&p| p) {
                break;
            }
        }
    }
    x.iter().zip(&norms).map(|(v, &n)| if n > 0.0 { v / n } else { 0.0 }).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Least squares over the `passive` columns only (the others held at 0), by the normal equations with
/// a tiny ridge (the columns are unit-norm, so it is well scaled).
fn least_squares_on(a: &[Vec<f64>], b: &[f64], passive: &[bool]) -> Vec<f64> {
    let idx: Vec<usize> = (0..passive.len()).filter(|&j| passive[j]).collect();
    let n = idx.len();
    let mut m = vec![vec![0.0; n + 1]; n];
    for (p, &i) in idx.iter().enumerate() {
        for (q, &j) in idx.iter().enumerate() {
            m[p][q] = a.iter().map(|r| r[i] * r[j]).sum::<f64>() + if p == q { 1e-12 } else { 0.0 };
        }
        m[p][n] = a.iter().zip(b).map(|(r, bi)| r[i] * bi).sum();
    }
    // Gaussian elimination with partial pivoting.
    for col in 0..n {
        let pivot = (col..n).max_by(|&r, &s| m[r][col].abs().total_cmp(&m[s][col].abs())).unwrap_or(col);
        m.swap(col, pivot);
        let diagonal = m[col][col];
        if diagonal.abs() < 1e-300 {
            continue;
        }
        let pivot_row = m[col].clone();
        for (r, row) in m.iter_mut().enumerate() {
            if r != col {
                let factor = row[col] / diagonal;
                row[col..].iter_mut().zip(&pivot_row[col..]).for_each(|(v, p)| *v -= factor * p);
            }
        }
    }
    let mut x = vec![0.0; passive.len()];
    for (p, &i) in idx.iter().enumerate() {
        x[i] = if m[p][p].abs() < 1e-300 { 0.0 } else { m[p][n] / m[p][p] };
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nnls_recovers_non_negative_factors() {
        // t = 2·a + 0·b + 5·c, with columns of very different scales.
        let rows: Vec<Vec<f64>> = (1..12)
            .map(|i| {
                let i = i as f64;
                vec![1e8 * i, 1e6 * (12.0 - i) * (i % 3.0), 1.0 + i % 2.0]
            })
            .collect();
        let truth = [2e-8, 0.0, 5.0];
        let b: Vec<f64> = rows.iter().map(|r| dot(r, &truth)).collect();
        let x = nnls(&rows, &b);
        for (got, want) in x.iter().zip(truth) {
            assert!((got - want).abs() <= 1e-6 * want.abs().max(1e-6), "{x:?}");
        }
    }

    #[test]
    fn nnls_clamps_at_zero() {
        // The unconstrained fit would make the second factor negative.
        let rows = vec![vec![1.0, 1.0], vec![2.0, 1.0], vec![3.0, 1.0]];
        // Unconstrained: slope 1.25, intercept −2/3; with x ≥ 0 the intercept is 0 and the slope is
        // Σ i·bᵢ / Σ i² = 13.5 / 14.
        let b = [0.5, 2.0, 3.0];
        let x = nnls(&rows, &b);
        assert_eq!(x[1], 0.0, "{x:?}");
        assert!((x[0] - 13.5 / 14.0).abs() < 1e-9, "{x:?}");
    }

    /// A fit on two small layers: every prediction is the fitted profile's price of the timed graph,
    /// the profile survives RON, and the fit is not wild on its own data.
    #[test]
    fn a_profile_fitted_on_small_layers_predicts_its_samples() {
        let graphs = [
            seeded_layer("a", &[1, 16, 8, 8], &[16, 8, 4, 4], &attrs(&[2, 2], &[1, 1, 1, 1], &[], &[], 1)).unwrap(),
            seeded_layer("b", &[1, 8, 6, 6], &[8, 8, 3, 3], &attrs(&[3, 3], &[], &[], &[], 1)).unwrap(),
        ];
        let profile = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/targets/cpu.ron");
        let base = Target::from_ron(&std::fs::read_to_string(profile).unwrap()).unwrap();
        let opts = CalibrateOptions { threads: 1, min_time: Duration::ZERO, run_limits: RunLimits::default() };
        let c = calibrate_on(&graphs, &base, &opts, &mut |_| {}).unwrap();
        assert_eq!(c.layers, 2);
        assert!(c.samples.len() >= 6, "direct and lowerings of both layers: {:?}", c.samples);
        assert!(c.samples.iter().all(|s| s.measured_ms > 0.0 && s.predicted_ms > 0.0));
        assert!(c.target.kernels.values().all(|k| k.per_flop >= 0.0 && k.per_byte >= 0.0 && k.per_call >= 0.0));
        let text = ron::ser::to_string(&c.target).unwrap();
        let back = Target::from_ron(&text).unwrap();
        assert_eq!(back.kernels, c.target.kernels);
        assert!(c.median_relative_error < 1.0, "{}", c.median_relative_error);
    }

    /// Fits at 1 and 2 threads merge into one profile that prices each count with its own table.
    #[test]
    fn fits_at_two_thread_counts_merge_into_one_profile() {
        let graphs =
            [seeded_layer("a", &[1, 16, 8, 8], &[16, 8, 4, 4], &attrs(&[2, 2], &[1, 1, 1, 1], &[], &[], 1)).unwrap()];
        let base = Target::from_ron(include_str!("../../../examples/targets/cpu.ron")).unwrap();
        let fits: Vec<(usize, Calibration)> = [1, 2]
            .into_iter()
            .map(|threads| {
                let opts = CalibrateOptions { threads, min_time: Duration::ZERO, run_limits: RunLimits::default() };
                (threads, calibrate_on(&graphs, &base, &opts, &mut |_| {}).unwrap())
            })
            .collect();
        let merged = merged(&base, fits.clone());
        assert_eq!(merged.target.kernels_by_threads.keys().copied().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(merged.target.kernels, fits[0].1.target.kernels);
        for (threads, fit) in &fits {
            assert_eq!(merged.target.for_threads(*threads).kernels, fit.target.kernels);
        }
        assert!(merged.target.name.ends_with("1, 2 threads)"), "{}", merged.target.name);
        let single = super::merged(&base, fits[..1].to_vec());
        assert!(single.target.kernels_by_threads.is_empty());
    }

    #[test]
    fn every_calibration_layer_is_valid() {
        for (name, input, weight, attrs) in layers() {
            seeded_layer(name, input, weight, &attrs).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        upsample_graph().unwrap();
    }
}
