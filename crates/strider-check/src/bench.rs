//! Timing prepared graphs the way a performance engineer would: each variant prepared once (weights
//! folded, buffers warm), then the variants run interleaved (A B C A B C …) so that a busy neighbour
//! slows them alike and their ratios hold; median, interquartile range and minimum of the run times;
//! GF/s against the GEMM peak of the same kernel on the same threads; peak memory of a run.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ndarray::ArrayD;
use serde::Serialize;
use strider_interp::gemm::{self, MatMut, MatRef};
use strider_interp::{ExecError, Plan, PlanOptions};
use strider_ir::Graph;

/// When a variant has been timed enough.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stop {
    /// Exactly this many timed runs of each variant.
    Runs(usize),
    /// Rounds until this much time has passed (at least [`MIN_RUNS`] runs of each variant).
    MinTime(Duration),
}

/// Fewest timed runs of a variant with [`Stop::MinTime`], so that a median and quartiles exist.
pub const MIN_RUNS: usize = 5;

/// How to time.
#[derive(Clone, Copy, Debug)]
pub struct BenchOptions {
    /// Threads of each plan (0: one per core).
    pub threads: usize,
    /// Untimed runs of each variant before timing (interleaved too).
    pub warmup: usize,
    /// When to stop.
    pub stop: Stop,
    /// Consecutive timed runs of a variant per round: 1 alternates strictly (A B C A B C …, each run
    /// starting with caches the other variants left); more measure a variant warm, as a server running
    /// one model sees it, while rounds still alternate (AAA BBB CCC AAA …).
    pub batch: usize,
    /// Also time each node.
    pub per_node: bool,
}

impl BenchOptions {
    /// How the forms of one layer are timed against each other (tuning, calibration, study): a short
    /// warm-up, then rounds of three runs each until `min_time` has passed.
    pub fn for_forms(threads: usize, min_time: Duration) -> BenchOptions {
        BenchOptions { threads, warmup: 2, stop: Stop::MinTime(min_time), batch: 3, per_node: false }
    }
}

/// A graph to time, with its label.
pub struct Variant {
    /// What it is (`none`, a lowering, `auto/flops`, …).
    pub label: String,
    /// The graph.
    pub graph: Graph,
}

/// One node's share of a variant's time.
#[derive(Clone, Debug, Serialize)]
pub struct NodeTime {
    /// Node name.
    pub node: String,
    /// Its op.
    pub op: String,
    /// Median time of the node, in milliseconds.
    pub median_ms: f64,
    /// Fraction of the sum of node medians.
    pub share: f64,
}

/// A timed variant.
#[derive(Clone, Debug, Serialize)]
pub struct Timing {
    /// The variant's label.
    pub label: String,
    /// Nodes executed per run (weight-only nodes were evaluated at preparation).
    pub nodes: usize,
    /// FLOPs of one run.
    pub flops: u64,
    /// Median run time, in milliseconds.
    pub median_ms: f64,
    /// First quartile, in milliseconds.
    pub q1_ms: f64,
    /// Third quartile, in milliseconds.
    pub q3_ms: f64,
    /// Fastest run, in milliseconds.
    pub min_ms: f64,
    /// FLOPs per second at the median, in units of 10⁹.
    pub gflops: f64,
    /// `gflops` as a fraction of the machine's GEMM peak on the same threads.
    pub fraction_of_peak: f64,
    /// Most bytes of tensors and workspaces alive at once during a run.
    pub peak_bytes: usize,
    /// Bytes of constants (weights and values folded at preparation).
    pub constant_bytes: usize,
    /// Every timed run, in milliseconds, in the order taken.
    pub times_ms: Vec<f64>,
    /// Per node, with `per_node`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_node: Option<Vec<NodeTime>>,
}

/// The machine the figures come from.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// CPU model name.
    pub cpu: String,
    /// Widest SIMD instruction set the GEMM can use.
    pub simd: String,
    /// Threads each plan runs on.
    pub threads: usize,
    /// GEMM throughput of a `GEMM_PEAK_SIZE`³ product through the engine's kernel, in GF/s.
    pub gemm_peak_gflops: f64,
    /// Side of that square product.
    pub gemm_peak_size: usize,
}

/// A whole benchmark.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Model name.
    pub model: String,
    /// Where it ran.
    pub machine: Machine,
    /// Untimed runs per variant.
    pub warmup: usize,
    /// Consecutive timed runs of a variant per round.
    pub batch: usize,
    /// Timed variants, in the order given.
    pub variants: Vec<Timing>,
}

/// Side of the square product that measures the GEMM peak.
pub const GEMM_PEAK_SIZE: usize = 2048;

/// The CPU's model name (Linux `/proc/cpuinfo`), or `unknown`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// The widest SIMD level the GEMM dispatches to on this CPU.
pub fn simd_level() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "AVX-512".into();
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return "AVX2+FMA".into();
        }
        if std::arch::is_x86_feature_detected!("avx") {
            return "AVX".into();
        }
        "SSE2".into()
    }
    #[cfg(target_arch = "aarch64")]
    {
        "NEON".into()
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "scalar".into()
    }
}

/// GF/s of the best of three `size`³ products through the engine's GEMM on `threads` threads.
pub fn gemm_peak(size: usize, threads: usize) -> Result<f64, ExecError> {
    let pool =
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(|e| ExecError::Threads(e.to_string()))?;
    let a: Vec<f32> = (0..size * size).map(|i| (i % 17) as f32 * 0.01).collect();
    let mut c = vec![0f32; size * size];
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        pool.install(|| {
            let m = MatRef::row_major(&a, size, size).ok()?;
            let dst = MatMut::row_major(&mut c, size, size).ok()?;
            gemm::matmul(dst, m, m, false, threads).ok()
        })
        .ok_or(ExecError::Internal)?;
        best = best.min(start.elapsed());
    }
    Ok(2.0 * (size as f64).powi(3) / best.as_secs_f64() / 1e9)
}

/// Elements of each of the three arrays [`memory_bandwidth`] streams: 16 MiB each, larger than the
/// last-level caches of the machines Strider is measured on, so the triad reaches main memory.
pub const BANDWIDTH_ELEMENTS: usize = 1 << 22;

/// Main-memory bandwidth in GB/s as STREAM's triad measures it: `a[i] = b[i] + s·c[i]` over three
/// arrays of `elements` f32 on a pool of `threads` threads (each thread a contiguous block), best of
/// ten after one untimed pass (the best, since a busy neighbour only slows a pass down); 12 bytes
/// moved per element (two reads, one write).
pub fn memory_bandwidth(elements: usize, threads: usize) -> Result<f64, ExecError> {
    use rayon::prelude::*;
    let pool =
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(|e| ExecError::Threads(e.to_string()))?;
    let b: Vec<f32> = (0..elements).map(|i| (i % 13) as f32).collect();
    let c: Vec<f32> = (0..elements).map(|i| (i % 7) as f32).collect();
    let mut a = vec![0f32; elements];
    let block = elements.div_ceil(threads.max(1)).max(1);
    let mut best = Duration::MAX;
    for round in 0..11 {
        let start = Instant::now();
        pool.install(|| {
            a.par_chunks_mut(block).zip(b.par_chunks(block)).zip(c.par_chunks(block)).for_each(|((a, b), c)| {
                for ((a, b), c) in a.iter_mut().zip(b).zip(c) {
                    *a = b + 3.0 * c;
                }
            })
        });
        if round > 0 {
            best = best.min(start.elapsed());
        }
    }
    // Read the result, so the triad cannot be optimised away.
    if !a.iter().step_by(block).all(|v| v.is_finite()) {
        return Err(ExecError::Internal);
    }
    Ok(12.0 * elements as f64 / best.as_secs_f64() / 1e9)
}

/// The value at fraction `q` of sorted `values` (linear interpolation between neighbours).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo as f64)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Times `variants` on `inputs`, interleaved, and measures the GEMM peak they are compared with.
/// `progress` is told the round and the elapsed time.
pub fn bench(
    model: &str,
    variants: &[Variant],
    inputs: &HashMap<String, ArrayD<f32>>,
    options: &BenchOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchReport, ExecError> {
    let (mut timings, threads) = time_variants(variants, inputs, options, progress)?;
    progress("measuring the GEMM peak");
    let peak = gemm_peak(GEMM_PEAK_SIZE, threads)?;
    for t in &mut timings {
        t.fraction_of_peak = t.gflops / peak;
    }
    Ok(BenchReport {
        model: model.to_string(),
        machine: Machine {
            cpu: cpu_model(),
            simd: simd_level(),
            threads,
            gemm_peak_gflops: peak,
            gemm_peak_size: GEMM_PEAK_SIZE,
        },
        warmup: options.warmup,
        batch: options.batch.max(1),
        variants: timings,
    })
}

/// Times `variants` on `inputs`, interleaved (without the GEMM peak: `fraction_of_peak` is left 0);
/// also returns the threads each plan ran on.
pub fn time_variants(
    variants: &[Variant],
    inputs: &HashMap<String, ArrayD<f32>>,
    options: &BenchOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<(Vec<Timing>, usize), ExecError> {
    let plan_options = PlanOptions { threads: options.threads };
    let mut plans = Vec::with_capacity(variants.len());
    for v in variants {
        progress(&format!("preparing {}", v.label));
        plans.push(Plan::new(&v.graph, &plan_options)?);
    }
    let threads = plans.first().map_or(1, Plan::threads);
    for round in 0..options.warmup {
        progress(&format!("warm-up {}/{}", round + 1, options.warmup));
        for plan in &mut plans {
            let outputs = plan.run(inputs)?;
            plan.recycle(outputs);
        }
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); plans.len()];
    let mut node_times: Vec<Vec<Vec<Duration>>> = vec![Vec::new(); plans.len()];
    let mut peak_bytes = vec![0usize; plans.len()];
    let started = Instant::now();
    let (mut round, mut taken) = (0, 0);
    let batch = options.batch.max(1);
    loop {
        let (done, runs) = match options.stop {
            Stop::Runs(n) => (taken >= n, batch.min(n.saturating_sub(taken))),
            Stop::MinTime(t) => (taken >= MIN_RUNS && started.elapsed() >= t, batch),
        };
        if done {
            break;
        }
        round += 1;
        progress(&format!("round {round} ({:.1} s)", started.elapsed().as_secs_f64()));
        for (i, plan) in plans.iter_mut().enumerate() {
            for _ in 0..runs {
                let start = Instant::now();
                let (outputs, stats) = plan.run_with_stats(inputs, options.per_node)?;
                times[i].push(start.elapsed());
                plan.recycle(outputs);
                peak_bytes[i] = peak_bytes[i].max(stats.peak_bytes);
                if options.per_node {
                    node_times[i].push(stats.step_times);
                }
            }
        }
        taken += runs;
    }
    let timings = plans
        .iter()
        .zip(variants)
        .enumerate()
        .map(|(i, (plan, variant))| {
            let taken: Vec<f64> = times[i].iter().copied().map(ms).collect();
            let mut sorted = taken.clone();
            sorted.sort_by(f64::total_cmp);
            let median = quantile(&sorted, 0.5);
            let gflops = plan.flops() as f64 / (median / 1e3) / 1e9;
            let per_node = options.per_node.then(|| {
                let names: Vec<(&str, &str)> = plan.step_names().collect();
                let medians: Vec<f64> = (0..names.len())
                    .map(|s| {
                        let mut t: Vec<f64> = node_times[i].iter().map(|run| ms(run[s])).collect();
                        t.sort_by(f64::total_cmp);
                        quantile(&t, 0.5)
                    })
                    .collect();
                let total: f64 = medians.iter().sum();
                names
                    .iter()
                    .zip(&medians)
                    .map(|(&(node, op), &m)| NodeTime {
                        node: node.to_string(),
                        op: op.to_string(),
                        median_ms: m,
                        share: if total > 0.0 { m / total } else { 0.0 },
                    })
                    .collect()
            });
            Timing {
                label: variant.label.clone(),
                nodes: plan.step_names().count(),
                flops: plan.flops(),
                median_ms: median,
                q1_ms: quantile(&sorted, 0.25),
                q3_ms: quantile(&sorted, 0.75),
                min_ms: sorted.first().copied().unwrap_or(f64::NAN),
                gflops,
                fraction_of_peak: 0.0,
                peak_bytes: peak_bytes[i],
                constant_bytes: plan.constant_bytes(),
                times_ms: taken,
                per_node,
            }
        })
        .collect();
    Ok((timings, threads))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.5);
        assert_eq!(quantile(&v, 0.25), 1.75);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 4.0);
    }

    #[test]
    fn the_triad_measures_a_bandwidth_on_any_thread_count() {
        // Small arrays stay in cache; the point is a finite, positive figure and an uneven split.
        for threads in [1, 3] {
            let gbs = memory_bandwidth(10_001, threads).unwrap();
            assert!(gbs.is_finite() && gbs > 0.0, "{gbs}");
        }
    }
}
