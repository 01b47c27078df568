//! Prepared execution: a [`Plan`] is built once from a graph — every weight-only subgraph (flipped
//! and phase kernels, sparse matrices) evaluated, a thread pool started — and then runs many times.
//! Runs reuse their buffers, so after the first run a plan stops allocating; each run reports its
//! peak working set (live tensors plus kernel workspaces).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ndarray::ArrayD;
use strider_ir::{Graph, Op, Shape};

use crate::ExecError;
use crate::fusion;
use crate::kernels::{self, Arg, Ctx, Operand, Packed, PhaseConvs, Tensor};

/// How a plan runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Threads of the plan's pool; 0 means one per available core.
    pub threads: usize,
}

/// Graph outputs by name, in declaration order.
pub type Outputs = Vec<(String, ArrayD<f32>)>;

/// One unit of work per run: a node, or several nodes fused.
#[derive(Debug)]
struct Step {
    name: String,
    work: Work,
    inputs: Vec<usize>,
    output: usize,
    output_shapes: Vec<Shape>,
    /// Floating-point operations of one execution.
    flops: u64,
}

#[derive(Debug)]
enum Work {
    /// One node's op.
    Op {
        op: Op,
        /// What was prepared for the op's constant inputs.
        packed: Option<Packed>,
        /// Whether the op may take over its first input's buffer when it is that input's last reader.
        may_reuse_first: bool,
    },
    /// Exact phase convolutions with their Concat and DepthToSpace.
    PhaseConvs(PhaseConvs),
}

impl Work {
    fn label(&self) -> &'static str {
        match self {
            Work::Op { op, .. } => op.name(),
            Work::PhaseConvs(_) => "PhaseConvs",
        }
    }
}

/// A graph prepared for repeated execution.
pub struct Plan {
    name: String,
    inputs: Vec<(usize, String, Vec<usize>)>,
    outputs: Vec<(usize, String)>,
    /// Initializers and every weight-only value, by value index.
    constants: Vec<Option<Tensor>>,
    steps: Vec<Step>,
    /// How many step inputs and graph outputs read each value.
    uses: Vec<usize>,
    pool: rayon::ThreadPool,
    ctx: Ctx,
}

/// What one run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunStats {
    /// Most bytes of tensors and workspaces alive at once (inputs and constants not included).
    pub peak_bytes: usize,
    /// Wall time of each step, in step order (empty unless asked for).
    pub step_times: Vec<Duration>,
}

impl Plan {
    /// Prepares `graph`: starts the thread pool and evaluates every node whose inputs are all constant.
    pub fn new(graph: &Graph, options: &PlanOptions) -> Result<Plan, ExecError> {
        let threads = if options.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            options.threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("strider-{i}"))
            .build()
            .map_err(|e| ExecError::Threads(e.to_string()))?;
        let mut ctx = Ctx::new(threads);
        let mut constants: Vec<Option<Tensor>> = vec![None; graph.values().len()];
        for init in graph.initializers() {
            constants[init.value.index()] = Some(Tensor::Dense(init.data_copy()?));
        }
        let mut remaining = Vec::new();
        for (id, node) in graph.nodes() {
            let inputs: Vec<usize> = node.inputs.iter().map(|v| v.index()).collect();
            if !inputs.iter().all(|&v| constants[v].is_some()) {
                remaining.push(id);
                continue;
            }
            let args = inputs
                .iter()
                .map(|&v| constants[v].as_ref().map(|t| Arg::View(t.operand())).ok_or(ExecError::Internal))
                .collect::<Result<Vec<_>, _>>()?;
            let value = pool
                .install(|| kernels::eval(&mut ctx, &node.op, args, &graph.output_shapes(node), None))
                .map_err(|source| ExecError::kernel(node, source))?;
            constants[node.outputs[0].index()] = Some(value);
        }
        let mut fusions = fusion::phase_convolutions(graph, &remaining, &constants);
        let mut steps = Vec::new();
        for id in remaining {
            let node = graph.node(id);
            if fusions.absorbed.contains(&id) {
                continue;
            }
            let output_shapes = graph.output_shapes(node);
            let step = match fusions.fused.remove(&id) {
                Some(fused) => Step {
                    name: node.name.clone(),
                    flops: fused.flops,
                    inputs: fused.inputs,
                    work: Work::PhaseConvs(fused.convs),
                    output: node.outputs[0].index(),
                    output_shapes,
                },
                None => {
                    let inputs: Vec<usize> = node.inputs.iter().map(|v| v.index()).collect();
                    let known: Vec<Option<Operand>> =
                        inputs.iter().map(|&v| constants[v].as_ref().map(Tensor::operand)).collect();
                    let first_len = graph.shape(node.inputs[0]).numel();
                    Step {
                        name: node.name.clone(),
                        flops: graph.node_flops(node),
                        work: Work::Op {
                            packed: kernels::pack(&node.op, &known),
                            may_reuse_first: kernels::reuses_first_input(&node.op)
                                && first_len == output_shapes[0].numel(),
                            op: node.op.clone(),
                        },
                        inputs,
                        output: node.outputs[0].index(),
                        output_shapes,
                    }
                }
            };
            steps.push(step);
        }
        let mut uses = vec![0; graph.values().len()];
        for step in &steps {
            for &v in &step.inputs {
                uses[v] += 1;
            }
        }
        for v in graph.outputs() {
            uses[v.index()] += 1;
        }
        let name_of = |v: strider_ir::ValueId| graph.value(v).name.clone();
        Ok(Plan {
            name: graph.name().to_string(),
            inputs: graph.inputs().iter().map(|&v| (v.index(), name_of(v), graph.shape(v).0.clone())).collect(),
            outputs: graph.outputs().iter().map(|&v| (v.index(), name_of(v))).collect(),
            constants,
            steps,
            uses,
            pool,
            ctx,
        })
    }

    /// The graph's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Threads the plan runs on.
    pub fn threads(&self) -> usize {
        self.ctx.threads
    }

    /// Names of the nodes executed per run (weight-only nodes were evaluated at preparation), in order.
    pub fn step_names(&self) -> impl Iterator<Item = (&str, &'static str)> {
        self.steps.iter().map(|s| (s.name.as_str(), s.work.label()))
    }

    /// Floating-point operations of one run (weight-only work done at preparation not included).
    pub fn flops(&self) -> u64 {
        self.steps.iter().map(|s| s.flops).sum()
    }

    /// Bytes held by constants (initializers and values evaluated at preparation).
    pub fn constant_bytes(&self) -> usize {
        let packed: usize = self
            .steps
            .iter()
            .map(|s| match &s.work {
                Work::Op { packed, .. } => packed.as_ref().map_or(0, Packed::stored_elements),
                Work::PhaseConvs(p) => p.stored_elements(),
            })
            .sum();
        let constants: usize = self.constants.iter().flatten().map(Tensor::stored_elements).sum();
        (packed + constants) * size_of::<f32>()
    }

    /// Runs the plan on `inputs` (by input name) and returns the outputs in declaration order.
    pub fn run(&mut self, inputs: &HashMap<String, ArrayD<f32>>) -> Result<Outputs, ExecError> {
        self.run_with_stats(inputs, false).map(|(outputs, _)| outputs)
    }

    /// Runs the plan and reports its peak memory and, when `time_steps`, each step's wall time.
    pub fn run_with_stats(
        &mut self,
        inputs: &HashMap<String, ArrayD<f32>>,
        time_steps: bool,
    ) -> Result<(Outputs, RunStats), ExecError> {
        let Plan { inputs: declared, outputs, constants, steps, uses, pool, ctx, .. } = self;
        let mut env: Vec<Slot> = constants.iter().map(|c| c.as_ref().map_or(Slot::Empty, Slot::Constant)).collect();
        if let Some(extra) = inputs.keys().find(|k| !declared.iter().any(|(_, name, _)| name == *k)) {
            return Err(ExecError::UnknownInput(extra.clone()));
        }
        for (v, name, shape) in declared.iter() {
            let data = inputs.get(name).ok_or_else(|| ExecError::MissingInput(name.clone()))?;
            if data.shape() != shape.as_slice() {
                return Err(ExecError::InputShape {
                    name: name.clone(),
                    expected: shape.clone(),
                    found: data.shape().to_vec(),
                });
            }
            env[*v] = Slot::Input(data);
        }
        ctx.reset_usage();
        let mut step_times = Vec::with_capacity(if time_steps { steps.len() } else { 0 });
        pool.install(|| execute(ctx, steps, uses, &mut env, time_steps.then_some(&mut step_times)))?;
        let mut result = Vec::with_capacity(outputs.len());
        for (i, (v, name)) in outputs.iter().enumerate() {
            let shared = outputs[i + 1..].iter().any(|(w, _)| w == v);
            let array = match std::mem::replace(&mut env[*v], Slot::Empty) {
                Slot::Owned(Tensor::Dense(a)) if !shared => a,
                slot => {
                    let array = slot.operand().ok_or(ExecError::Internal)?.dense().map(|a| a.to_owned());
                    let array = array.map_err(|_| ExecError::SparseOutput(name.clone()))?;
                    env[*v] = slot;
                    array
                }
            };
            result.push((name.clone(), array));
        }
        for slot in env {
            if let Slot::Owned(t) = slot {
                ctx.recycle(t);
            }
        }
        let stats = RunStats { peak_bytes: ctx.peak_elements() * size_of::<f32>(), step_times };
        Ok((result, stats))
    }

    /// Gives output arrays back for reuse by later runs (a loop that runs a plan many times keeps
    /// its memory steady this way).
    pub fn recycle(&mut self, outputs: Outputs) {
        for (_, a) in outputs {
            self.ctx.recycle_unaccounted(a);
        }
    }
}

/// Executes every step, freeing each value after its last reader.
fn execute(
    ctx: &mut Ctx,
    steps: &[Step],
    uses: &[usize],
    env: &mut [Slot],
    mut times: Option<&mut Vec<Duration>>,
) -> Result<(), ExecError> {
    let mut remaining = uses.to_vec();
    for step in steps {
        let start = times.is_some().then(Instant::now);
        let out = match &step.work {
            Work::Op { op, packed, may_reuse_first } => {
                let first = step.inputs[0];
                let donate = *may_reuse_first
                    && remaining[first] == 1
                    && !step.inputs[1..].contains(&first)
                    && matches!(env[first], Slot::Owned(Tensor::Dense(_)));
                let mut args = Vec::with_capacity(step.inputs.len());
                if donate {
                    let Slot::Owned(Tensor::Dense(a)) = std::mem::replace(&mut env[first], Slot::Empty) else {
                        return Err(ExecError::Internal);
                    };
                    ctx.release(a.len());
                    args.push(Arg::Owned(a));
                }
                for &v in &step.inputs[args.len()..] {
                    args.push(Arg::View(env[v].operand().ok_or(ExecError::Internal)?));
                }
                kernels::eval(ctx, op, args, &step.output_shapes, packed.as_ref())
            }
            Work::PhaseConvs(convs) => {
                let views = step
                    .inputs
                    .iter()
                    .map(|&v| env[v].operand().ok_or(ExecError::Internal)?.dense().map_err(|_| ExecError::Internal))
                    .collect::<Result<Vec<_>, _>>()?;
                convs.run(ctx, &views, step.output_shapes[0].dims()).map(Tensor::Dense)
            }
        }
        .map_err(|source| ExecError::Kernel { node: step.name.clone(), op: step.work.label(), source })?;
        ctx.settle_output(out.stored_elements());
        env[step.output] = Slot::Owned(out);
        for &v in &step.inputs {
            remaining[v] -= 1;
            if remaining[v] == 0 {
                if let Slot::Owned(t) = std::mem::replace(&mut env[v], Slot::Empty) {
                    ctx.recycle(t);
                }
            }
        }
        if let (Some(times), Some(start)) = (times.as_deref_mut(), start) {
            times.push(start.elapsed());
        }
    }
    Ok(())
}

/// A value during a run.
enum Slot<'a> {
    Empty,
    Input(&'a ArrayD<f32>),
    Constant(&'a Tensor),
    Owned(Tensor),
}

impl Slot<'_> {
    fn operand(&self) -> Option<Operand<'_>> {
        match self {
            Slot::Empty => None,
            Slot::Input(a) => Some(Operand::Dense(a.view())),
            Slot::Constant(t) => Some(t.operand()),
            Slot::Owned(t) => Some(t.operand()),
        }
    }
}
