//! The graph IR: values (graph inputs, initializers, node outputs) and op nodes in a petgraph DAG.
//!
//! A [`Graph`] only exists validated: [`GraphBuilder::finish`] resolves names, rejects duplicates and
//! cycles, runs every op's shape rule in topological order and checks the element limit. Afterwards the
//! graph is immutable; rewrites build a new one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ndarray::ArrayD;
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

use crate::data::DataSpec;
use crate::error::{Error, Result};
use crate::op::Op;
use crate::shape::{Layout, Shape, TensorType};

/// Limits that keep bad input from allocating without bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest element count of any tensor (input, initializer or intermediate).
    pub max_elements: usize,
}

impl Limits {
    /// 2^28 elements (1 GiB of f32) per tensor.
    pub const DEFAULT_MAX_ELEMENTS: usize = 1 << 28;

    /// Checks one tensor's element count. Axes of size 0 count as 1 here, so that an empty tensor
    /// cannot carry an absurd axis past the limit into loops and allocations.
    pub fn check(&self, name: &str, shape: &Shape) -> Result<()> {
        let extent = shape.dims().iter().try_fold(1usize, |acc, &d| acc.checked_mul(d.max(1)));
        match extent {
            Some(n) if n <= self.max_elements => Ok(()),
            _ => Err(Error::TooLarge {
                name: name.to_string(),
                shape: shape.clone(),
                count: extent.unwrap_or(usize::MAX),
                limit: self.max_elements,
            }),
        }
    }
}

impl Limits {
    /// Checks a sparse matrix: its stored elements, and each axis (the row and column pointer arrays
    /// and a dense product's rows are as long as an axis).
    pub fn check_sparse(&self, name: &str, shape: &Shape, nnz: usize) -> Result<()> {
        let count = shape.dims().iter().copied().fold(nnz, usize::max);
        if count <= self.max_elements {
            Ok(())
        } else {
            Err(Error::TooLarge { name: name.to_string(), shape: shape.clone(), count, limit: self.max_elements })
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_elements: Self::DEFAULT_MAX_ELEMENTS }
    }
}

/// Index of a value in its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(usize);

impl ValueId {
    /// Position in [`Graph::values`].
    pub fn index(self) -> usize {
        self.0
    }
}

/// Index of a node in its graph.
pub type NodeId = NodeIndex;

/// Where a value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Producer {
    /// Fed at run time.
    Input,
    /// Constant data stored in the graph.
    Initializer,
    /// Output `slot` of a node.
    Node {
        /// The producing node.
        node: NodeId,
        /// Which of its outputs.
        slot: usize,
    },
}

/// A named tensor value with its inferred type.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    /// Unique name.
    pub name: String,
    /// Element type and shape.
    pub ty: TensorType,
    /// Where it comes from.
    pub producer: Producer,
}

/// An op applied to values.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Unique name.
    pub name: String,
    /// The op and its attributes.
    pub op: Op,
    /// Input values, in the op's input order.
    pub inputs: Vec<ValueId>,
    /// Output values.
    pub outputs: Vec<ValueId>,
}

/// Constant data of an initializer, and how the model file described it (kept for saving). Copies
/// (of the graph, or into another graph) share the data.
#[derive(Clone, Debug)]
pub struct Initializer {
    /// The value it defines.
    pub value: ValueId,
    /// The value's name, for errors.
    name: String,
    /// The data: given, or produced from `spec` on first use (generators and `.npy` files).
    data: OnceLock<Arc<ArrayD<f32>>>,
    /// The value's shape, for producing deferred data.
    shape: Vec<usize>,
    /// The folder a relative `.npy` path in `spec` resolves against.
    base_dir: PathBuf,
    /// How the model file wrote it.
    pub spec: DataSpec,
}

impl Initializer {
    /// The data, shaped as the value. Generated data (`Uniform`, `Normal`, `Fill`, `Bilinear`) and data
    /// in `.npy` files (whose header and length were checked when the graph was built) are produced
    /// here on first use, so what needs only shapes (`info`) never allocates or reads them. Memory is
    /// reserved fallibly: a refused allocation, or a file changed since, is an error.
    pub fn data(&self) -> Result<&ArrayD<f32>> {
        if let Some(data) = self.data.get() {
            return Ok(data);
        }
        let made = self
            .spec
            .materialize(&self.shape, &self.base_dir)
            .map_err(|problem| Error::Initializer { name: self.name.clone(), problem })?;
        Ok(self.data.get_or_init(|| Arc::new(made)))
    }

    /// An owned copy of the data (for a consumer that takes tensors by value), reserved fallibly.
    pub fn data_copy(&self) -> Result<ArrayD<f32>> {
        crate::alloc::try_clone(self.data()?)
            .map_err(|e| Error::Initializer { name: self.name.clone(), problem: e.to_string() })
    }

    /// Whether the data is in memory (given, or produced by an earlier [`Initializer::data`]).
    pub fn is_loaded(&self) -> bool {
        self.data.get().is_some()
    }

    /// The value's shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
}

impl PartialEq for Initializer {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value && self.spec == other.spec && self.data().ok() == other.data().ok()
    }
}

/// A validated, shape-inferred operator graph.
#[derive(Clone, Debug)]
pub struct Graph {
    name: String,
    values: Vec<Value>,
    inputs: Vec<ValueId>,
    initializers: Vec<Initializer>,
    outputs: Vec<ValueId>,
    dag: DiGraph<Node, ValueId>,
    order: Vec<NodeId>,
    by_name: HashMap<String, ValueId>,
}

impl Graph {
    /// The graph's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Every value, indexed by [`ValueId::index`].
    pub fn values(&self) -> &[Value] {
        &self.values
    }
    /// One value.
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.0]
    }
    /// A value by name.
    pub fn value_id(&self, name: &str) -> Option<ValueId> {
        self.by_name.get(name).copied()
    }
    /// Shape of a value.
    pub fn shape(&self, id: ValueId) -> &Shape {
        &self.values[id.0].ty.shape
    }
    /// Graph inputs, in declaration order.
    pub fn inputs(&self) -> &[ValueId] {
        &self.inputs
    }
    /// Graph outputs, in declaration order.
    pub fn outputs(&self) -> &[ValueId] {
        &self.outputs
    }
    /// Initializers, in declaration order.
    pub fn initializers(&self) -> &[Initializer] {
        &self.initializers
    }
    /// The data of a value if it is an initializer.
    pub fn initializer(&self, id: ValueId) -> Option<&Initializer> {
        self.initializers.iter().find(|i| i.value == id)
    }
    /// One node.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.dag[id]
    }
    /// Nodes in a topological order (the order the file lists them in, where that is one).
    pub fn topological_order(&self) -> &[NodeId] {
        &self.order
    }
    /// Nodes in topological order, with their ids.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &Node)> + '_ {
        self.order.iter().map(move |&id| (id, &self.dag[id]))
    }
    /// The petgraph DAG: edges run from producer to consumer and carry the value.
    pub fn dag(&self) -> &DiGraph<Node, ValueId> {
        &self.dag
    }
    /// Input shapes of a node.
    pub fn input_shapes(&self, node: &Node) -> Vec<&Shape> {
        node.inputs.iter().map(|&v| self.shape(v)).collect()
    }
    /// Output shapes of a node.
    pub fn output_shapes(&self, node: &Node) -> Vec<Shape> {
        node.outputs.iter().map(|&v| self.shape(v).clone()).collect()
    }
    /// FLOPs of one node.
    pub fn node_flops(&self, node: &Node) -> u64 {
        let layouts: Vec<Layout> = node.inputs.iter().map(|&v| self.values[v.0].ty.layout).collect();
        node.op.flops_with_layouts(&self.input_shapes(node), &layouts, &self.output_shapes(node))
    }
    /// Elements of initializers a node reads (its parameters).
    pub fn node_parameters(&self, node: &Node) -> usize {
        node.inputs
            .iter()
            .filter(|&&v| self.values[v.0].producer == Producer::Initializer)
            .map(|&v| self.shape(v).numel())
            .sum()
    }
    /// How many node inputs and graph outputs read each value (for freeing intermediates).
    pub fn use_counts(&self) -> Vec<usize> {
        let mut uses = vec![0; self.values.len()];
        for node in self.dag.node_weights() {
            for v in &node.inputs {
                uses[v.0] += 1;
            }
        }
        for v in &self.outputs {
            uses[v.0] += 1;
        }
        uses
    }
}

/// An initializer's data as the builder receives it.
#[derive(Clone, Debug)]
enum Constant {
    /// The data itself (shared with the graph it was copied from, if any).
    Given(Arc<ArrayD<f32>>),
    /// A shape whose data the spec produces on first use, and the folder a `.npy` path resolves against.
    Deferred(Shape, PathBuf),
}

/// A node as the builder receives it: names, not ids.
#[derive(Clone, Debug)]
struct PendingNode {
    name: String,
    op: Op,
    inputs: Vec<String>,
    outputs: Vec<String>,
}

/// Collects a graph by names, in any order, then validates and infers shapes in [`GraphBuilder::finish`].
#[derive(Clone, Debug)]
pub struct GraphBuilder {
    name: String,
    limits: Limits,
    inputs: Vec<(String, Shape)>,
    initializers: Vec<(String, Constant, DataSpec)>,
    nodes: Vec<PendingNode>,
    outputs: Vec<String>,
}

impl GraphBuilder {
    /// An empty graph with this name.
    pub fn new(name: impl Into<String>, limits: Limits) -> Self {
        GraphBuilder {
            name: name.into(),
            limits,
            inputs: Vec::new(),
            initializers: Vec::new(),
            nodes: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// Declares a graph input.
    pub fn input(&mut self, name: impl Into<String>, shape: impl Into<Shape>) -> &mut Self {
        self.inputs.push((name.into(), shape.into()));
        self
    }

    /// Adds constant data; `spec` records how a saved model should write it.
    pub fn initializer(&mut self, name: impl Into<String>, data: ArrayD<f32>, spec: DataSpec) -> &mut Self {
        self.initializers.push((name.into(), Constant::Given(Arc::new(data)), spec));
        self
    }

    /// Adds a copy of another graph's initializer under `name`: the data is shared, and data not yet
    /// produced stays deferred.
    pub fn copy_initializer(&mut self, name: impl Into<String>, init: &Initializer) -> &mut Self {
        let constant = match init.data.get() {
            None => Constant::Deferred(Shape(init.shape.clone()), init.base_dir.clone()),
            Some(data) => Constant::Given(Arc::clone(data)),
        };
        self.initializers.push((name.into(), constant, init.spec.clone()));
        self
    }

    /// Adds an initializer whose data a generator `spec` produces on first use (see
    /// [`Initializer::data`]); [`GraphBuilder::finish`] checks the generator against `shape`.
    pub fn generated_initializer(
        &mut self,
        name: impl Into<String>,
        shape: impl Into<Shape>,
        spec: DataSpec,
    ) -> &mut Self {
        self.deferred_initializer(name, shape, spec, Path::new(""))
    }

    /// Adds an initializer whose data `spec` produces on first use: a generator, or a `.npy` file
    /// (relative to `base_dir`) whose header and length [`GraphBuilder::finish`] checks against
    /// `shape` without reading the data.
    pub fn deferred_initializer(
        &mut self,
        name: impl Into<String>,
        shape: impl Into<Shape>,
        spec: DataSpec,
        base_dir: &Path,
    ) -> &mut Self {
        self.initializers.push((name.into(), Constant::Deferred(shape.into(), base_dir.to_path_buf()), spec));
        self
    }

    /// Adds a node reading and writing the named values.
    pub fn node<S: Into<String>>(
        &mut self,
        name: impl Into<String>,
        op: Op,
        inputs: impl IntoIterator<Item = S>,
        outputs: impl IntoIterator<Item = S>,
    ) -> &mut Self {
        self.nodes.push(PendingNode {
            name: name.into(),
            op,
            inputs: inputs.into_iter().map(Into::into).collect(),
            outputs: outputs.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Marks a value as a graph output.
    pub fn output(&mut self, name: impl Into<String>) -> &mut Self {
        self.outputs.push(name.into());
        self
    }

    /// Validates everything and infers every value's shape.
    pub fn finish(self) -> Result<Graph> {
        let GraphBuilder { name, limits, inputs, initializers, nodes, outputs } = self;
        let mut values: Vec<Value> = Vec::new();
        let mut by_name: HashMap<String, ValueId> = HashMap::new();
        let mut define = |values: &mut Vec<Value>, name: &str, shape: Shape, producer: Producer, what: String| {
            if let Some(&prev) = by_name.get(name) {
                let first = describe(&values[prev.0].producer, &nodes);
                return Err(Error::DuplicateValue { name: name.to_string(), first, second: what });
            }
            let id = ValueId(values.len());
            values.push(Value { name: name.to_string(), ty: TensorType::f32(shape), producer });
            by_name.insert(name.to_string(), id);
            Ok(id)
        };

        let mut input_ids = Vec::with_capacity(inputs.len());
        for (n, shape) in inputs {
            limits.check(&n, &shape)?;
            input_ids.push(define(&mut values, &n, shape, Producer::Input, "graph input".into())?);
        }
        let mut inits = Vec::with_capacity(initializers.len());
        for (n, constant, spec) in initializers {
            let (shape, data, base_dir) = match constant {
                Constant::Given(data) => (Shape(data.shape().to_vec()), OnceLock::from(data), PathBuf::new()),
                Constant::Deferred(shape, base_dir) => {
                    limits.check(&n, &shape)?;
                    let problem = if spec.is_deferred() {
                        spec.check_source(shape.dims(), &base_dir).err()
                    } else {
                        Some("lists its values, so they cannot be deferred".into())
                    };
                    if let Some(problem) = problem {
                        return Err(Error::Initializer { name: n, problem });
                    }
                    (shape, OnceLock::new(), base_dir)
                }
            };
            let dims = shape.0.clone();
            let value = define(&mut values, &n, shape, Producer::Initializer, "initializer".into())?;
            inits.push(Initializer { value, name: n, data, shape: dims, base_dir, spec });
        }

        // Node outputs get ids now (shapes later) so that reads can be resolved in any order.
        let mut dag: DiGraph<Node, ValueId> = DiGraph::with_capacity(nodes.len(), nodes.len() * 2);
        let mut node_names: HashMap<&str, NodeId> = HashMap::new();
        for (i, p) in nodes.iter().enumerate() {
            let id = NodeIndex::new(i);
            if node_names.insert(&p.name, id).is_some() {
                return Err(Error::DuplicateNode { name: p.name.clone() });
            }
            let outs = p
                .outputs
                .iter()
                .enumerate()
                .map(|(slot, o)| {
                    let producer = Producer::Node { node: id, slot };
                    define(&mut values, o, Shape::default(), producer, format!("output of node `{}`", p.name))
                })
                .collect::<Result<Vec<_>>>()?;
            dag.add_node(Node { name: p.name.clone(), op: p.op.clone(), inputs: Vec::new(), outputs: outs });
        }
        for (i, p) in nodes.iter().enumerate() {
            let id = NodeIndex::new(i);
            let mut ins = Vec::with_capacity(p.inputs.len());
            for v in &p.inputs {
                let vid = *by_name
                    .get(v.as_str())
                    .ok_or_else(|| Error::UnknownValue { node: p.name.clone(), value: v.clone() })?;
                if let Producer::Node { node, .. } = values[vid.0].producer {
                    dag.add_edge(node, id, vid);
                }
                ins.push(vid);
            }
            dag[id].inputs = ins;
        }
        let order = toposort(&dag, None).map_err(|cycle| {
            let scc = tarjan_scc(&dag).into_iter().find(|c| c.contains(&cycle.node_id())).unwrap_or_default();
            let mut nodes: Vec<String> = scc.iter().map(|&n| dag[n].name.clone()).collect();
            nodes.sort();
            Error::Cycle { nodes }
        })?;

        for &id in &order {
            let node = &dag[id];
            let op_error = |source| Error::Op { node: node.name.clone(), op: node.op.name(), source };
            for (i, v) in node.inputs.iter().enumerate() {
                node.op.check_layout(i, values[v.0].ty.layout).map_err(op_error)?;
            }
            let shapes: Vec<&Shape> = node.inputs.iter().map(|v| &values[v.0].ty.shape).collect();
            let out = node.op.infer(&shapes).map_err(op_error)?;
            let layout = node.op.output_layout(&shapes);
            if out.len() != node.outputs.len() {
                return Err(Error::OutputCount {
                    node: node.name.clone(),
                    op: node.op.name(),
                    expected: out.len(),
                    found: node.outputs.len(),
                });
            }
            for (&v, shape) in node.outputs.iter().zip(out) {
                match layout {
                    Layout::Dense => limits.check(&values[v.0].name, &shape)?,
                    Layout::Csr { nnz } => limits.check_sparse(&values[v.0].name, &shape, nnz)?,
                }
                values[v.0].ty.shape = shape;
                values[v.0].ty.layout = layout;
            }
        }

        let output_ids = outputs
            .into_iter()
            .map(|o| by_name.get(&o).copied().ok_or(Error::UnknownOutput { name: o }))
            .collect::<Result<Vec<_>>>()?;
        Ok(Graph { name, values, inputs: input_ids, initializers: inits, outputs: output_ids, dag, order, by_name })
    }
}

fn describe(producer: &Producer, nodes: &[PendingNode]) -> String {
    match producer {
        Producer::Input => "graph input".into(),
        Producer::Initializer => "initializer".into(),
        Producer::Node { node, .. } => format!("output of node `{}`", nodes[node.index()].name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::ConvTransposeAttrs;

    #[test]
    fn generated_initializers_are_produced_on_first_use_only() {
        // Issue 10: `info` materialized every initializer (1 GiB for this Fill).
        let text = r#"(name: "fill", inputs: [(name: "x", shape: [1])],
            initializers: [(name: "big", shape: [268435456], data: Fill(1.0)), (name: "u", shape: [3], data: Uniform(seed: 1, low: 0.0, high: 1.0))],
            nodes: [(name: "add", op: Add, inputs: ["x", "u"], outputs: ["y"])], outputs: ["y"])"#;
        let g = crate::format::parse(text, std::path::Path::new("."), &Limits::default()).unwrap();
        let node = g.nodes().next().unwrap().1;
        assert_eq!(g.node_parameters(node), 3);
        assert!(g.initializers().iter().all(|i| !i.is_loaded()));
        let u = &g.initializers()[1];
        assert_eq!(
            u.data().unwrap(),
            &ArrayD::from_shape_vec(vec![3], crate::seeded::uniform(1, 3, 0.0, 1.0)).unwrap()
        );
        // A copy stays lazy where the original has not been produced, and keeps data that has.
        let mut b = GraphBuilder::new("copy", Limits::default());
        b.copy_initializer("big", &g.initializers()[0]).copy_initializer("u", u).output("u");
        let copy = b.finish().unwrap();
        assert!(copy.initializers()[0].data.get().is_none());
        assert!(copy.initializers()[1].data.get().is_some());
        // A generator is checked when the graph is built.
        let mut b = GraphBuilder::new("bad", Limits::default());
        b.generated_initializer("w", vec![2], DataSpec::Fill(f32::NAN)).output("w");
        assert!(matches!(b.finish(), Err(Error::Initializer { .. })));
    }

    fn tiny() -> GraphBuilder {
        let mut b = GraphBuilder::new("t", Limits::default());
        b.input("x", [1, 1, 2, 2]);
        b.initializer("w", ArrayD::zeros(vec![1, 1, 2, 2]), DataSpec::Fill(0.0));
        b
    }

    #[test]
    fn nodes_may_be_listed_in_any_order() {
        let mut b = tiny();
        b.node("second", Op::Relu, ["y"], ["z"]);
        b.node("first", Op::ConvTranspose(ConvTransposeAttrs::default()), ["x", "w"], ["y"]);
        b.output("z");
        let g = b.finish().unwrap();
        let names: Vec<&str> = g.nodes().map(|(_, n)| n.name.as_str()).collect();
        assert_eq!(names, ["first", "second"]);
        assert_eq!(g.shape(g.value_id("z").unwrap()).dims(), [1, 1, 3, 3]);
    }

    #[test]
    fn cycles_and_duplicates_are_refused() {
        let mut b = tiny();
        b.node("a", Op::Relu, ["c"], ["b"]);
        b.node("b_node", Op::Relu, ["b"], ["c"]);
        b.output("c");
        match b.finish() {
            Err(Error::Cycle { nodes }) => assert_eq!(nodes, ["a", "b_node"]),
            other => panic!("expected a cycle, got {other:?}"),
        }
        let mut d = tiny();
        d.node("a", Op::Relu, ["x"], ["w"]);
        assert!(matches!(d.finish(), Err(Error::DuplicateValue { name, .. }) if name == "w"));
    }

    #[test]
    fn element_limit_is_checked_before_allocation() {
        let mut b = GraphBuilder::new("big", Limits { max_elements: 100 });
        b.input("x", [1, 1, 8, 8]);
        b.node(
            "up",
            Op::Upsample(crate::op::UpsampleAttrs { scales: vec![1.0, 1.0, 2.0, 2.0], ..Default::default() }),
            ["x"],
            ["y"],
        );
        b.output("y");
        assert!(matches!(b.finish(), Err(Error::TooLarge { name, count: 256, .. }) if name == "y"));
    }
}
