//! Measured costs: every ConvTranspose and Upsample of a model timed alone in each form it can take
//! (prepared, warmed up, interleaved, median), written to a tuning log that any later model reuses.
//!
//! The log is JSON Lines, one record per (node, form), like TVM's tuning logs: the key is the node's
//! op, attributes and shapes ([`op_key`]), the threads and the machine (CPU model and SIMD level);
//! the value is the form's time and spread, and that time shared among the form's ops so that the
//! e-graph can price each op it holds ([`Measured`]).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strider_interp::feeds;
use strider_ir::{Graph, Op};
use strider_rewrite::RunLimits;
use strider_rewrite::cost::{CostModel, Measured, instances, op_key};
use strider_rewrite::isolate::{Form, in_form, isolate};
use strider_rewrite::{OptimizeOptions, optimize};

use crate::bench::{BenchOptions, Variant, cpu_model, simd_level, time_variants};
use crate::numbers::grouped;
use crate::stored_elements;

/// The machine and threads a time holds for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MachineKey {
    /// CPU model name.
    pub cpu: String,
    /// Widest SIMD level the kernels use.
    pub simd: String,
    /// Threads each plan ran on.
    pub threads: usize,
}

impl MachineKey {
    /// This machine, with `threads` threads (0: one per core).
    pub fn here(threads: usize) -> MachineKey {
        let threads = if threads == 0 { rayon::current_num_threads() } else { threads };
        MachineKey { cpu: cpu_model(), simd: simd_level(), threads }
    }
}

/// One form of one node, timed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TuningRecord {
    /// Where it was measured.
    #[serde(flatten)]
    pub machine: MachineKey,
    /// The node: [`op_key`] of the ConvTranspose or Upsample.
    pub node: String,
    /// `direct` or the lowering's name.
    pub form: String,
    /// Median run time, in milliseconds.
    pub median_ms: f64,
    /// First quartile, in milliseconds.
    pub q1_ms: f64,
    /// Third quartile, in milliseconds.
    pub q3_ms: f64,
    /// Timed runs.
    pub runs: usize,
    /// The median shared among the form's run-time ops in proportion to the prior model's estimates:
    /// ([`op_key`], milliseconds).
    pub ops: Vec<(String, f64)>,
}

/// Why the tuning log could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TuningError {
    /// Reading or writing the log failed.
    #[error("tuning log {path}: {source}")]
    Io {
        /// The log.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A line is not a record.
    #[error("tuning log {path}, line {line}: {message}")]
    Parse {
        /// The log.
        path: PathBuf,
        /// Line number (from 1).
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A form could not run.
    #[error("timing `{node}`: {source}")]
    Exec {
        /// The node being timed.
        node: String,
        /// Why.
        source: Box<strider_interp::ExecError>,
    },
}

/// A tuning log: the records of a file, and more appended to it.
#[derive(Clone, Debug, Default)]
pub struct TuningDb {
    path: PathBuf,
    records: Vec<TuningRecord>,
}

impl TuningDb {
    /// Reads the log at `path`; a missing file is an empty log (it is created on the first append).
    pub fn open(path: &Path) -> Result<TuningDb, TuningError> {
        let io = |source| TuningError::Io { path: path.to_path_buf(), source };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(e)),
        };
        let mut records = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let record = serde_json::from_str(line).map_err(|e| TuningError::Parse {
                path: path.to_path_buf(),
                line: i + 1,
                message: e.to_string(),
            })?;
            records.push(record);
        }
        Ok(TuningDb { path: path.to_path_buf(), records })
    }

    /// Every record.
    pub fn records(&self) -> &[TuningRecord] {
        &self.records
    }

    /// Whether `node` (an [`op_key`]) has been timed on `machine`.
    pub fn has(&self, machine: &MachineKey, node: &str) -> bool {
        self.records.iter().any(|r| r.machine == *machine && r.node == node)
    }

    /// Each form's record for `node` on `machine` (the latest, where a form was timed twice).
    pub fn forms(&self, machine: &MachineKey, node: &str) -> Vec<&TuningRecord> {
        let mut latest: Vec<&TuningRecord> = Vec::new();
        for r in self.records.iter().filter(|r| r.machine == *machine && r.node == node) {
            match latest.iter_mut().find(|l| l.form == r.form) {
                Some(slot) => *slot = r,
                None => latest.push(r),
            }
        }
        latest
    }

    /// Nanoseconds per run of every op measured on `machine`, by [`op_key`] (the mean where an op
    /// was part of several records): what [`Measured`] prices with.
    pub fn op_times_ns(&self, machine: &MachineKey) -> HashMap<String, f64> {
        let nodes: std::collections::HashSet<&str> = self.records.iter().map(|r| r.node.as_str()).collect();
        let latest: Vec<TuningRecord> = nodes.into_iter().flat_map(|node| self.forms(machine, node)).cloned().collect();
        op_times_ns(&latest)
    }

    /// Appends `records` to the log file and to this log.
    pub fn append(&mut self, records: Vec<TuningRecord>) -> Result<(), TuningError> {
        let io = |source| TuningError::Io { path: self.path.clone(), source };
        let mut text = String::new();
        for r in &records {
            text.push_str(&serde_json::to_string(r).expect("a record serializes"));
            text.push('\n');
        }
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        self.records.extend(records);
        Ok(())
    }
}

/// How to tune.
#[derive(Clone, Copy, Debug)]
pub struct TuneOptions {
    /// Threads of each plan (0: one per core).
    pub threads: usize,
    /// Time spent timing each node's forms (at least 5 runs of each).
    pub min_time: Duration,
    /// Forms storing an explicit sparse matrix larger than this are not timed.
    pub max_matrix_nnz: usize,
    /// Forms performing more than this many times the direct form's FLOPs are not timed (0: all).
    pub max_flops_ratio: f64,
    /// Saturation limits of each lowering.
    pub run_limits: RunLimits,
    /// Time nodes again even when the log has them.
    pub retune: bool,
}

/// A node of a model whose forms were timed (or found in the log).
#[derive(Clone, Debug, Serialize)]
pub struct TunedNode {
    /// Node name in the model.
    pub node: String,
    /// Its [`op_key`].
    pub key: String,
    /// Whether the times come from the log rather than this run.
    pub cached: bool,
    /// Each timed form.
    pub forms: Vec<FormTime>,
    /// Forms not timed, and why.
    pub skipped: Vec<FormSkipped>,
}

/// The time of one form of a tuned node.
#[derive(Clone, Debug, Serialize)]
pub struct FormTime {
    /// The form (`direct`, a lowering, or `auto/…` for a mixture).
    pub form: String,
    /// Median time, in milliseconds.
    pub median_ms: f64,
    /// First quartile, in milliseconds.
    pub q1_ms: f64,
    /// Third quartile, in milliseconds.
    pub q3_ms: f64,
}

impl FormTime {
    fn of(r: &TuningRecord) -> FormTime {
        FormTime { form: r.form.clone(), median_ms: r.median_ms, q1_ms: r.q1_ms, q3_ms: r.q3_ms }
    }
}

/// A form of a tuned node that was not timed.
#[derive(Clone, Debug, Serialize)]
pub struct FormSkipped {
    /// The form.
    pub form: String,
    /// Why it was not timed.
    pub reason: String,
}

/// The [`op_key`] of a graph's node.
fn node_key(graph: &Graph, node: &strider_ir::Node) -> String {
    instances(graph).into_iter().find(|(n, _)| n.name == node.name).map(|(_, op)| op_key(&op)).unwrap_or_default()
}

/// Times every form of every ConvTranspose and Upsample of `graph` not yet in `db` for this machine
/// (each distinct node once), appends the records to `db`, and reports every node. `prior` shares a
/// form's time among its ops. `progress` is told what is being timed.
pub fn tune(
    graph: &Graph,
    db: &mut TuningDb,
    opts: &TuneOptions,
    prior: &dyn CostModel,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<TunedNode>, TuningError> {
    let machine = MachineKey::here(opts.threads);
    let mut report: Vec<TunedNode> = Vec::new();
    for (_, node) in graph.nodes().filter(|(_, n)| matches!(n.op, Op::ConvTranspose(_) | Op::Upsample(_))) {
        let alone = isolate(graph, node);
        let key = node_key(&alone, node);
        if let Some(same) = report.iter().find(|t| t.key == key) {
            report.push(TunedNode { node: node.name.clone(), cached: true, ..same.clone() });
            continue;
        }
        if !opts.retune && db.has(&machine, &key) {
            let forms = db.forms(&machine, &key).into_iter().map(FormTime::of).collect();
            report.push(TunedNode { node: node.name.clone(), key, cached: true, forms, skipped: Vec::new() });
            continue;
        }
        progress(&format!("timing {} ({})", node.name, node.op.name()));
        let (records, skipped) = tune_node(&alone, &key, &machine, opts, prior, progress)
            .map_err(|e| TuningError::Exec { node: node.name.clone(), source: Box::new(e) })?;
        let forms = records.iter().map(FormTime::of).collect();
        db.append(records)?;
        report.push(TunedNode { node: node.name.clone(), key, cached: false, forms, skipped });
    }
    Ok(report)
}

type Skipped = Vec<FormSkipped>;

/// Times each form of one isolated node; returns its records and the forms left out.
fn tune_node(
    alone: &Graph,
    key: &str,
    machine: &MachineKey,
    opts: &TuneOptions,
    prior: &dyn CostModel,
    progress: &mut dyn FnMut(&str),
) -> Result<(Vec<TuningRecord>, Skipped), strider_interp::ExecError> {
    let flops = |g: &Graph| g.nodes().map(|(_, n)| g.node_flops(n)).sum::<u64>() as f64;
    let direct_flops = flops(alone).max(1.0);
    let (mut variants, mut skipped) = (Vec::new(), Vec::new());
    for form in Form::ALL {
        let Some(g) = in_form(alone, form, &opts.run_limits) else { continue };
        let stored = stored_elements(&g);
        let ratio = flops(&g) / direct_flops;
        if stored > opts.max_matrix_nnz {
            skipped.push(FormSkipped {
                form: form.to_string(),
                reason: format!("sparse matrix of {} elements", grouped(stored as u128)),
            });
        } else if opts.max_flops_ratio > 0.0 && ratio > opts.max_flops_ratio {
            skipped.push(FormSkipped {
                form: form.to_string(),
                reason: format!("{ratio:.0}× the FLOPs of the direct form"),
            });
        } else {
            variants.push(Variant { label: form.to_string(), graph: g });
        }
    }
    let mut inputs = HashMap::new();
    feeds::fill_missing(alone, 0, &mut inputs)?;
    let bench = BenchOptions::for_forms(opts.threads, opts.min_time);
    let record = |v: &Variant, t: crate::bench::Timing| TuningRecord {
        machine: machine.clone(),
        node: key.to_string(),
        form: v.label.clone(),
        median_ms: t.median_ms,
        q1_ms: t.q1_ms,
        q3_ms: t.q3_ms,
        runs: t.times_ms.len(),
        ops: share(&v.graph, t.median_ms, prior),
    };
    let (timings, _) = time_variants(&variants, &inputs, &bench, progress)?;
    let mut records: Vec<TuningRecord> = variants.iter().zip(timings).map(|(v, t)| record(v, t)).collect();
    // Extraction may combine ops no forced family produces (the prior prices those); time what it
    // would pick until its pick is measured op for op, so measured costs decide, not the prior.
    for round in 0..REFINEMENT_ROUNDS {
        let measured = Measured { times_ns: op_times_ns(&records), fallback: prior };
        let pipeline = OptimizeOptions { run_limits: opts.run_limits, ..OptimizeOptions::default() };
        let Ok(picked) = optimize(alone, &measured, &pipeline) else { break };
        let unmeasured =
            instances(&picked.graph).iter().any(|(_, op)| !op.constant && !measured.times_ns.contains_key(&op_key(op)));
        if !unmeasured {
            break;
        }
        let label = if round == 0 { "auto".to_string() } else { format!("auto-{}", round + 1) };
        let variant = Variant { label, graph: picked.graph };
        let (timing, _) = time_variants(std::slice::from_ref(&variant), &inputs, &bench, progress)?;
        records.extend(timing.into_iter().map(|t| record(&variant, t)));
    }
    Ok((records, skipped))
}

/// Rounds of timing what extraction picks when it is not yet measured op for op.
const REFINEMENT_ROUNDS: usize = 3;

/// Nanoseconds per op of `records` (the mean where an op appears in several).
fn op_times_ns(records: &[TuningRecord]) -> HashMap<String, f64> {
    let mut sums: HashMap<String, (f64, usize)> = HashMap::new();
    for r in records {
        for (key, ms) in &r.ops {
            let slot = sums.entry(key.clone()).or_insert((0.0, 0));
            slot.0 += ms * 1e6;
            slot.1 += 1;
        }
    }
    sums.into_iter().map(|(k, (sum, n))| (k, sum / n as f64)).collect()
}

/// `total_ms` shared among the run-time ops of `graph` in proportion to `prior`'s estimates (evenly
/// where it has none), so that the shares add up to the measured time.
fn share(graph: &Graph, total_ms: f64, prior: &dyn CostModel) -> Vec<(String, f64)> {
    let ops: Vec<(String, f64)> = instances(graph)
        .into_iter()
        .filter(|(_, op)| !op.constant)
        .map(|(_, op)| (op_key(&op), prior.op_cost(&op).unwrap_or(0.0).max(0.0)))
        .collect();
    let sum: f64 = ops.iter().map(|(_, p)| p).sum();
    let n = ops.len().max(1) as f64;
    ops.into_iter().map(|(k, p)| (k, if sum > 0.0 { total_ms * p / sum } else { total_ms / n })).collect()
}

#[cfg(test)]
mod tests {
    use strider_rewrite::cost::Flops;

    use super::*;

    #[test]
    fn a_bad_line_is_named() {
        let dir = std::env::temp_dir().join(format!("strider-tuning-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.jsonl");
        std::fs::write(&path, "\n{\"not\": \"a record\"}\n").unwrap();
        let err = TuningDb::open(&path).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(TuningDb::open(&dir.join("missing.jsonl")).unwrap().records().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn shares_add_up_to_the_measured_time() {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/models");
        let graph = strider_ir::format::load(&models.join("textbook.ron"), &strider_ir::Limits::default()).unwrap();
        let lowered = in_form(&graph, Form::Lowered(strider_rewrite::Lowering::Col2Im), &RunLimits::default()).unwrap();
        let shares = share(&lowered, 3.0, &Flops::default());
        assert!(shares.len() >= 2, "{shares:?}");
        let sum: f64 = shares.iter().map(|(_, ms)| ms).sum();
        assert!((sum - 3.0).abs() < 1e-12);
    }
}
