//! ONNX → [`Graph`]: every op Strider has, from opset 6 on (older attribute forms included), with
//! constant inputs (initializers and `Constant` nodes) folded into the attributes Strider keeps them in.
//!
//! Attributes that ONNX and Strider spell alike go through the op's own serde form (the names and
//! defaults declared once in `strider_ir::op`); only what ONNX spells differently — inputs that are
//! attributes here, legacy attributes, Gemm, Resize, Squeeze/Unsqueeze — is translated by hand.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use prost::Message;
use serde_json::Value as Json;
use strider_ir::format::DataSpec;
use strider_ir::op::{
    CoordinateTransform, NearestMode, PadAttrs, PadMode, ReshapeAttrs, ResizeMode, SliceAttrs, TransposeAttrs,
    UpsampleAttrs,
};
use strider_ir::{Graph, GraphBuilder, Limits, Op, Shape};

use crate::error::{Error, Result, UnsupportedOp};
use crate::proto::{ModelProto, NodeProto, TensorProto, ValueInfoProto, data_type};
use crate::tensor::{self, TensorSource};

mod attributes;

use attributes::{Taken, attributes, op_from};

/// Oldest default-domain opset read.
pub const MIN_OPSET: i64 = 6;

/// ONNX op types that map one to one onto a Strider op of the same name and attributes.
const DIRECT: &[&str] = &[
    "Conv",
    "ConvTranspose",
    "MatMul",
    "Add",
    "Mul",
    "Sub",
    "Div",
    "Sqrt",
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Concat",
    "Flatten",
    "Transpose",
    "DepthToSpace",
    "Identity",
];

/// ONNX op types translated by hand.
const TRANSLATED: &[&str] = &[
    "BatchNormalization",
    "Reshape",
    "Pad",
    "Slice",
    "Upsample",
    "Resize",
    "Gemm",
    "Col2Im",
    "Constant",
    "Squeeze",
    "Unsqueeze",
];

/// How to import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The element cap.
    pub limits: Limits,
    /// Shapes for graph inputs, binding dynamic dimensions (`--shape NAME=1,3,64,64`).
    pub shapes: BTreeMap<String, Vec<usize>>,
}

/// Reads an ONNX model file; external data is read relative to its directory.
pub fn load(path: &Path, options: &ImportOptions) -> Result<Graph> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let model = decode(&bytes, path)?;
    import(&model, path.parent().unwrap_or(Path::new(".")), options).map_err(|e| match e {
        Error::NotAModel { problem, .. } => Error::NotAModel { path: path.to_path_buf(), problem },
        other => other,
    })
}

/// Decodes a model, refusing bytes that are not protobuf or hold no graph.
pub fn decode(bytes: &[u8], path: &Path) -> Result<ModelProto> {
    let model = ModelProto::decode(bytes).map_err(|e| Error::Decode {
        path: path.to_path_buf(),
        what: "model",
        message: e.to_string(),
    })?;
    let problem = if model.ir_version.is_none() {
        Some("it has no IR version (is it an ONNX file?)")
    } else if model.graph.is_none() {
        Some("it has no graph")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Error::NotAModel { path: path.to_path_buf(), problem: problem.to_string() }),
        None => Ok(model),
    }
}

/// The graph of a decoded model. `base_dir` is where external data lives.
pub fn import(model: &ModelProto, base_dir: &Path, options: &ImportOptions) -> Result<Graph> {
    let not_a_model = |problem: &str| Error::NotAModel { path: base_dir.to_path_buf(), problem: problem.to_string() };
    let graph = model.graph.as_ref().ok_or_else(|| not_a_model("it has no graph"))?;
    let opset = model
        .opset_import
        .iter()
        .filter(|o| is_default_domain(o.domain()))
        .map(|o| o.version())
        .max()
        .ok_or_else(|| not_a_model("it imports no ai.onnx operator set"))?;
    if opset < MIN_OPSET {
        return Err(not_a_model(&format!("it uses opset {opset}; Strider reads opset {MIN_OPSET} and newer")));
    }
    let source = TensorSource { base_dir: Some(base_dir), limits: &options.limits };
    Importer::new(graph, opset, source, options)?.run(graph)
}

fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

/// One node as Strider will hold it.
struct Emitted {
    name: String,
    op: Op,
    inputs: Vec<String>,
    outputs: Vec<String>,
}

struct Importer<'a> {
    opset: i64,
    source: TensorSource<'a>,
    limits: Limits,
    /// Initializers and `Constant` outputs, by name.
    constants: HashMap<String, Cow<'a, TensorProto>>,
    /// Constant names in definition order (initializers, then `Constant` outputs).
    constant_order: Vec<String>,
    /// Constants read as data (they become initializers); the others were folded into attributes.
    read_as_data: HashSet<String>,
    /// Constants folded into attributes.
    folded: HashSet<String>,
    shapes: HashMap<String, Shape>,
    /// Every name in the file and every name made up so far.
    taken: HashSet<String>,
    inputs: Vec<(String, Shape)>,
    nodes: Vec<Emitted>,
}

impl<'a> Importer<'a> {
    fn new(
        graph: &'a crate::proto::GraphProto,
        opset: i64,
        source: TensorSource<'a>,
        options: &ImportOptions,
    ) -> Result<Self> {
        let mut importer = Importer {
            opset,
            source,
            limits: options.limits,
            constants: HashMap::new(),
            constant_order: Vec::new(),
            read_as_data: HashSet::new(),
            folded: HashSet::new(),
            shapes: HashMap::new(),
            taken: HashSet::new(),
            inputs: Vec::new(),
            nodes: Vec::new(),
        };
        for t in &graph.initializer {
            let name = t.name().to_string();
            if importer.constants.contains_key(&name) {
                return Err(strider_ir::Error::DuplicateValue {
                    name,
                    first: "initializer".into(),
                    second: "initializer".into(),
                }
                .into());
            }
            importer.shapes.insert(name.clone(), Shape(tensor::dims(t, &name, &options.limits)?));
            importer.constants.insert(name.clone(), Cow::Borrowed(t));
            importer.constant_order.push(name);
        }
        for given in options.shapes.keys() {
            let declared = graph.input.iter().any(|i| i.name() == given && !importer.constants.contains_key(given));
            if !declared {
                let names: Vec<&str> = graph
                    .input
                    .iter()
                    .map(ValueInfoProto::name)
                    .filter(|n| !importer.constants.contains_key(*n))
                    .collect();
                return Err(Error::Binding {
                    input: given.clone(),
                    problem: format!("the model has no input of this name (its inputs: {})", names.join(", ")),
                });
            }
        }
        for input in graph.input.iter().filter(|i| !importer.constants.contains_key(i.name())) {
            let shape = input_shape(input, options.shapes.get(input.name()))?;
            options.limits.check(input.name(), &shape)?;
            importer.shapes.insert(input.name().to_string(), shape.clone());
            importer.inputs.push((input.name().to_string(), shape));
        }
        for name in importer.shapes.keys() {
            importer.taken.insert(name.clone());
        }
        for node in &graph.node {
            importer.taken.extend(node.output.iter().cloned());
            importer.taken.insert(node.name().to_string());
        }
        Ok(importer)
    }

    fn run(mut self, graph: &'a crate::proto::GraphProto) -> Result<Graph> {
        unsupported(&graph.node)?;
        let names = self.node_names(&graph.node);
        let order = self.order(&graph.node, &names)?;
        for i in order {
            self.convert(&graph.node[i], &names[i])?;
        }
        let outputs: Vec<String> = graph.output.iter().map(|o| o.name().to_string()).collect();
        for o in &outputs {
            if self.constants.contains_key(o) {
                self.read_as_data.insert(o.clone());
            }
        }
        let mut b = GraphBuilder::new(graph.name().to_string(), self.limits);
        for (name, shape) in &self.inputs {
            b.input(name, shape.clone());
        }
        // Kept: constants read as data, and float initializers nothing reads (so nothing is lost).
        for name in &self.constant_order {
            let t = &self.constants[name];
            let unused = !self.folded.contains(name) && t.data_type() == data_type::FLOAT;
            if self.read_as_data.contains(name) || unused {
                let data = tensor::to_f32(t, name, self.source)?;
                let values = strider_ir::alloc::try_collect(data.len(), data.iter().copied())
                    .map_err(|e| Error::tensor(name, e.to_string()))?;
                let spec = DataSpec::Inline(values);
                b.initializer(name, data, spec);
            }
        }
        for n in self.nodes {
            b.node(n.name, n.op, n.inputs, n.outputs);
        }
        for o in outputs {
            b.output(o);
        }
        Ok(b.finish()?)
    }
}

/// The shape of a graph input: as declared, or as bound with `--shape` (which must agree with every
/// fixed dimension).
fn input_shape(input: &ValueInfoProto, binding: Option<&Vec<usize>>) -> Result<Shape> {
    let name = input.name();
    let tensor = input.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
    if let Some(t) = tensor {
        if t.elem_type() != data_type::FLOAT {
            return Err(Error::ElementType { tensor: name.to_string(), found: data_type::name(t.elem_type()) });
        }
    }
    let declared = tensor.and_then(|t| t.shape.as_ref());
    match (declared, binding) {
        (None, Some(b)) => Ok(Shape(b.clone())),
        (None, None) => Err(Error::UnknownShape { input: name.to_string() }),
        (Some(s), Some(b)) => {
            let problem = |problem: String| Error::Binding { input: name.to_string(), problem };
            if s.dim.len() != b.len() {
                return Err(problem(format!("gives {} dimensions, but the model declares {}", b.len(), s.dim.len())));
            }
            for (axis, (d, &given)) in s.dim.iter().zip(b).enumerate() {
                if let Some(fixed) = d.dim_value.filter(|&v| v >= 0 && v as u64 != given as u64) {
                    return Err(problem(format!("axis {axis} is {given}, but the model fixes it at {fixed}")));
                }
            }
            Ok(Shape(b.clone()))
        }
        (Some(s), None) => s
            .dim
            .iter()
            .enumerate()
            .map(|(axis, d)| match d.dim_value {
                Some(v) if v >= 0 => Ok(v as usize),
                _ => Err(Error::DynamicDimension {
                    input: name.to_string(),
                    axis,
                    dim: d.dim_param.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "unknown".into()),
                }),
            })
            .collect::<Result<Vec<_>>>()
            .map(Shape),
    }
}

/// One error listing every op type Strider cannot import, with its nodes.
fn unsupported(nodes: &[NodeProto]) -> Result<()> {
    let mut found: Vec<UnsupportedOp> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let known = is_default_domain(node.domain())
            && (DIRECT.contains(&node.op_type()) || TRANSLATED.contains(&node.op_type()));
        if known {
            continue;
        }
        let op_type = if is_default_domain(node.domain()) {
            node.op_type().to_string()
        } else {
            format!("{}.{}", node.domain(), node.op_type())
        };
        let name = if node.name().is_empty() { format!("#{i}") } else { node.name().to_string() };
        match found.iter_mut().find(|u| u.op_type == op_type) {
            Some(u) => u.nodes.push(name),
            None => found.push(UnsupportedOp { op_type, nodes: vec![name] }),
        }
    }
    if found.is_empty() { Ok(()) } else { Err(Error::Unsupported(found)) }
}

impl<'a> Importer<'a> {
    /// A name not used in the file nor made up before, from `base`.
    fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut i = 2;
        while self.taken.contains(&name) {
            name = format!("{base}_{i}");
            i += 1;
        }
        self.taken.insert(name.clone());
        name
    }

    /// Node names: unnamed nodes get `<op_type>_<index>`, repeated names a suffix.
    fn node_names(&mut self, nodes: &[NodeProto]) -> Vec<String> {
        let mut seen = HashSet::new();
        nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                if !n.name().is_empty() && seen.insert(n.name().to_string()) {
                    return n.name().to_string();
                }
                let base = if n.name().is_empty() { format!("{}_{i}", n.op_type()) } else { n.name().to_string() };
                let name = self.fresh(&base);
                seen.insert(name.clone());
                name
            })
            .collect()
    }

    /// Reads a constant input that Strider keeps as an attribute.
    fn constant(&mut self, node: &str, op_type: &str, input: Option<&str>, what: &str) -> Result<&TensorProto> {
        let name = input
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Error::node(node, op_type, format!("needs its `{what}` input")))?;
        let t = self.constants.get(name).ok_or_else(|| {
            Error::node(
                node,
                op_type,
                format!("input `{what}` (`{name}`) must be a constant (an initializer or a Constant node)"),
            )
        })?;
        self.folded.insert(name.to_string());
        Ok(t)
    }

    fn constant_ints(&mut self, node: &str, op_type: &str, input: Option<&str>, what: &str) -> Result<Vec<i64>> {
        let source = self.source;
        let t = self.constant(node, op_type, input, what)?;
        tensor::to_i64(t, t.name(), source)
    }

    fn constant_floats(&mut self, node: &str, op_type: &str, input: Option<&str>, what: &str) -> Result<Vec<f32>> {
        let source = self.source;
        let t = self.constant(node, op_type, input, what)?;
        Ok(tensor::to_f32(t, t.name(), source)?.iter().copied().collect())
    }

    /// An optional constant input: absent when the name is empty or missing.
    fn optional_ints(
        &mut self,
        node: &str,
        op_type: &str,
        input: Option<&str>,
        what: &str,
    ) -> Result<Option<Vec<i64>>> {
        match input.filter(|n| !n.is_empty()) {
            None => Ok(None),
            some => self.constant_ints(node, op_type, some, what).map(Some),
        }
    }

    /// A float32 constant made up by the import (Gemm's alpha and beta).
    fn scalar(&mut self, base: &str, value: f32) -> String {
        let name = self.fresh(base);
        let t = TensorProto {
            name: Some(name.clone()),
            data_type: Some(data_type::FLOAT),
            float_data: vec![value],
            ..Default::default()
        };
        self.shapes.insert(name.clone(), Shape(vec![]));
        self.constants.insert(name.clone(), Cow::Owned(t));
        self.constant_order.push(name.clone());
        name
    }

    /// Adds a Strider node, inferring its output shapes so later translations can read them.
    fn emit(&mut self, name: &str, op: Op, inputs: Vec<String>, outputs: Vec<String>) -> Result<()> {
        for i in &inputs {
            if let Some(t) = self.constants.get(i) {
                if t.data_type() != data_type::FLOAT {
                    return Err(Error::ElementType { tensor: i.clone(), found: data_type::name(t.data_type()) });
                }
                self.read_as_data.insert(i.clone());
            }
        }
        let shapes: Vec<&Shape> = inputs
            .iter()
            .map(|i| {
                self.shapes
                    .get(i)
                    .ok_or_else(|| strider_ir::Error::UnknownValue { node: name.to_string(), value: i.clone() })
            })
            .collect::<Result<_, _>>()?;
        let op_error = |source| strider_ir::Error::Op { node: name.to_string(), op: op.name(), source };
        let out = op.infer(&shapes).map_err(op_error)?;
        if out.len() != outputs.len() {
            return Err(strider_ir::Error::OutputCount {
                node: name.to_string(),
                op: op.name(),
                expected: out.len(),
                found: outputs.len(),
            }
            .into());
        }
        for (o, shape) in outputs.iter().zip(out) {
            self.limits.check(o, &shape)?;
            self.shapes.insert(o.clone(), shape);
        }
        self.nodes.push(Emitted { name: name.to_string(), op, inputs, outputs });
        Ok(())
    }

    /// Nodes in dependency order (file order where it is one), after checking that every value has
    /// one definition and every read is defined.
    fn order(&self, nodes: &[NodeProto], names: &[String]) -> Result<Vec<usize>> {
        let mut producer: HashMap<&str, usize> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                let first = if self.constants.contains_key(o) {
                    Some("initializer".to_string())
                } else if self.shapes.contains_key(o) {
                    Some("graph input".to_string())
                } else {
                    producer.get(o.as_str()).map(|&j| format!("output of node `{}`", names[j]))
                };
                if let Some(first) = first {
                    let second = format!("output of node `{}`", names[i]);
                    return Err(strider_ir::Error::DuplicateValue { name: o.clone(), first, second }.into());
                }
                producer.insert(o, i);
            }
        }
        let mut waiting = vec![0usize; nodes.len()];
        let mut readers: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            for input in n.input.iter().filter(|v| !v.is_empty()) {
                match producer.get(input.as_str()) {
                    Some(&j) => {
                        readers[j].push(i);
                        waiting[i] += 1;
                    }
                    None if self.shapes.contains_key(input) => {}
                    None => {
                        return Err(
                            strider_ir::Error::UnknownValue { node: names[i].clone(), value: input.clone() }.into()
                        );
                    }
                }
            }
        }
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> =
            (0..nodes.len()).filter(|&i| waiting[i] == 0).map(std::cmp::Reverse).collect();
        let mut order = Vec::with_capacity(nodes.len());
        while let Some(std::cmp::Reverse(i)) = ready.pop() {
            order.push(i);
            for &r in &readers[i] {
                waiting[r] -= 1;
                if waiting[r] == 0 {
                    ready.push(std::cmp::Reverse(r));
                }
            }
        }
        if order.len() == nodes.len() {
            return Ok(order);
        }
        // Left: the cycles and what hangs below them. Peel off nodes no other leftover reads.
        let mut left: HashSet<usize> = (0..nodes.len()).filter(|&i| waiting[i] > 0).collect();
        loop {
            let sinks: Vec<usize> =
                left.iter().copied().filter(|&i| !readers[i].iter().any(|r| left.contains(r))).collect();
            if sinks.is_empty() {
                break;
            }
            for s in sinks {
                left.remove(&s);
            }
        }
        let mut cycle: Vec<String> = left.into_iter().map(|i| names[i].clone()).collect();
        cycle.sort();
        Err(strider_ir::Error::Cycle { nodes: cycle }.into())
    }

    fn convert(&mut self, node: &NodeProto, name: &str) -> Result<()> {
        let op_type = node.op_type();
        let mut map = attributes(node, name)?;
        let inputs: Vec<&str> = node.input.iter().map(String::as_str).collect();
        let input = |i: usize| inputs.get(i).copied().filter(|n| !n.is_empty());
        let outputs: Vec<String> = match node.output.iter().rposition(|o| !o.is_empty()) {
            Some(last) => node.output[..=last].to_vec(),
            None => Vec::new(),
        };
        let data = |range: std::ops::Range<usize>| -> Vec<String> {
            let mut v: Vec<String> = range.filter_map(|i| inputs.get(i)).map(|s| s.to_string()).collect();
            while v.last().is_some_and(String::is_empty) {
                v.pop();
            }
            v
        };
        let x = || data(0..1);
        let mut a = Taken { map: &mut map, node: name, op_type };
        let opset = self.opset;
        match op_type {
            "Constant" => {
                let out = outputs.first().cloned().unwrap_or_default();
                let t = constant_value(node, name, &out)?;
                self.shapes.insert(out.clone(), Shape(tensor::dims(&t, &out, &self.limits)?));
                self.constants.insert(out.clone(), Cow::Owned(t));
                self.constant_order.push(out);
                Ok(())
            }
            "BatchNormalization" => {
                a.only("spatial", 1, "per-activation normalization is not supported")?;
                a.only("training_mode", 0, "only inference is supported")?;
                a.map.remove("momentum");
                a.map.remove("is_test");
                let op = op_from(op_type, map, name)?;
                // The running statistics opsets before 9 list as outputs are not computed in inference.
                self.emit(name, op, data(0..5), outputs.into_iter().take(1).collect())
            }
            "Reshape" => {
                let allowzero = a.int("allowzero")?.unwrap_or(0) != 0;
                a.done()?;
                let shape = self.constant_ints(name, op_type, input(1), "shape")?;
                self.emit(name, Op::Reshape(ReshapeAttrs { shape, allowzero }), x(), outputs)
            }
            "Pad" => {
                let mode: PadMode = match a.string("mode")? {
                    Some(m) => serde_json::from_value(Json::String(m)).map_err(|e| a.error(format!("mode: {e}")))?,
                    None => PadMode::Constant,
                };
                let (pads, value) = if opset < 11 {
                    let pads = a.ints("pads")?.ok_or_else(|| a.error("needs `pads`".into()))?;
                    (pads, a.float("value")?.unwrap_or(0.0))
                } else {
                    let pads = self.constant_ints(name, op_type, input(1), "pads")?;
                    let value = match input(2) {
                        Some(_) => {
                            let v = self.constant_floats(name, op_type, input(2), "constant_value")?;
                            *v.first().ok_or_else(|| Error::node(name, op_type, "constant_value is empty"))?
                        }
                        None => 0.0,
                    };
                    let rank = self.shapes[&inputs[0].to_string()].rank();
                    let pads = match self.optional_ints(name, op_type, input(3), "axes")? {
                        None => pads,
                        Some(axes) => spread_pads(&pads, &axes, rank).map_err(|p| Error::node(name, op_type, p))?,
                    };
                    (pads, value)
                };
                a.done()?;
                self.emit(name, Op::Pad(PadAttrs { pads, mode, value }), x(), outputs)
            }
            "Slice" => {
                let attrs = if opset < 10 {
                    let starts = a.ints("starts")?.ok_or_else(|| a.error("needs `starts`".into()))?;
                    let ends = a.ints("ends")?.ok_or_else(|| a.error("needs `ends`".into()))?;
                    SliceAttrs { starts, ends, axes: a.ints("axes")?.unwrap_or_default(), steps: Vec::new() }
                } else {
                    SliceAttrs {
                        starts: self.constant_ints(name, op_type, input(1), "starts")?,
                        ends: self.constant_ints(name, op_type, input(2), "ends")?,
                        axes: self.optional_ints(name, op_type, input(3), "axes")?.unwrap_or_default(),
                        steps: self.optional_ints(name, op_type, input(4), "steps")?.unwrap_or_default(),
                    }
                };
                a.done()?;
                self.emit(name, Op::Slice(attrs), x(), outputs)
            }
            "Upsample" => {
                let mode = resize_mode(a.string("mode")?, name, op_type)?;
                let scales = if opset < 9 {
                    a.floats("scales")?.ok_or_else(|| a.error("needs `scales`".into()))?
                } else {
                    self.constant_floats(name, op_type, input(1), "scales")?
                };
                a.done()?;
                let attrs = UpsampleAttrs {
                    scales,
                    mode,
                    coordinate_transformation_mode: CoordinateTransform::Asymmetric,
                    nearest_mode: NearestMode::Floor,
                };
                self.emit(name, Op::Upsample(attrs), x(), outputs)
            }
            "Resize" => self.resize(node, name, a, outputs),
            "Gemm" => self.gemm(name, a, &inputs, outputs),
            "Col2Im" => {
                let image = self.constant_ints(name, op_type, input(1), "image_shape")?;
                let block = self.constant_ints(name, op_type, input(2), "block_shape")?;
                map.insert("image_shape".into(), Json::from(image));
                map.insert("block_shape".into(), Json::from(block));
                let op = op_from(op_type, map, name)?;
                self.emit(name, op, x(), outputs)
            }
            "Squeeze" | "Unsqueeze" => {
                let axes =
                    if opset < 13 { a.ints("axes")? } else { self.optional_ints(name, op_type, input(1), "axes")? };
                a.done()?;
                let shape = self.shapes[inputs.first().copied().unwrap_or_default()].clone();
                let target = if op_type == "Squeeze" { squeezed(&shape, axes) } else { unsqueezed(&shape, axes) }
                    .map_err(|p| Error::node(name, op_type, p))?;
                let allowzero = target.contains(&0);
                let attrs = ReshapeAttrs { shape: target.iter().map(|&d| d as i64).collect(), allowzero };
                self.emit(name, Op::Reshape(attrs), x(), outputs)
            }
            _ => {
                let op = op_from(op_type, map, name)?;
                let count = op.input_names().len();
                self.emit(name, op, data(0..count.max(inputs.len())), outputs)
            }
        }
    }

    fn resize(&mut self, node: &NodeProto, name: &str, mut a: Taken<'_>, outputs: Vec<String>) -> Result<()> {
        let op_type = node.op_type();
        let input = |i: usize| node.input.get(i).map(String::as_str).filter(|n| !n.is_empty());
        let mode = resize_mode(a.string("mode")?, name, op_type)?;
        let (default_transform, default_rounding) =
            if self.opset < 11 { ("asymmetric", "floor") } else { ("half_pixel", "round_prefer_floor") };
        let mut choice = |key: &str, default: &str| -> Result<Json> {
            Ok(Json::String(a.string(key)?.unwrap_or_else(|| default.to_string())))
        };
        let transform = choice("coordinate_transformation_mode", default_transform)?;
        let rounding = choice("nearest_mode", default_rounding)?;
        let transform: CoordinateTransform =
            serde_json::from_value(transform).map_err(|e| a.error(format!("coordinate_transformation_mode: {e}")))?;
        let nearest_mode: NearestMode =
            serde_json::from_value(rounding).map_err(|e| a.error(format!("nearest_mode: {e}")))?;
        a.only("exclude_outside", 0, "not supported")?;
        a.only("antialias", 0, "not supported")?;
        if let Some(policy) = a.string("keep_aspect_ratio_policy")? {
            if policy != "stretch" {
                return Err(a.error(format!("keep_aspect_ratio_policy `{policy}` is not supported")));
            }
        }
        a.map.remove("cubic_coeff_a");
        a.map.remove("extrapolation_value");
        let axes = a.ints("axes")?;
        a.done()?;
        let x_name = node.input.first().cloned().unwrap_or_default();
        let x = self.shapes.get(&x_name).cloned().unwrap_or_default();
        let (scales_input, sizes_input) = if self.opset < 11 { (input(1), None) } else { (input(2), input(3)) };
        let scales = match scales_input {
            Some(_) => self.constant_floats(name, op_type, scales_input, "scales")?,
            None => Vec::new(),
        };
        let axes = match axes {
            Some(axes) => resolve_axes(&axes, x.rank()).map_err(|p| Error::node(name, op_type, p))?,
            None => (0..x.rank()).collect(),
        };
        let scales = if !scales.is_empty() {
            if scales.len() != axes.len() {
                return Err(Error::node(name, op_type, format!("has {} scales for {} axes", scales.len(), axes.len())));
            }
            let mut full = vec![1.0; x.rank()];
            for (&axis, &s) in axes.iter().zip(&scales) {
                full[axis] = s;
            }
            full
        } else {
            let sizes = self
                .optional_ints(name, op_type, sizes_input, "sizes")?
                .ok_or_else(|| Error::node(name, op_type, "needs constant `scales` or `sizes`"))?;
            if sizes.len() != axes.len() {
                return Err(Error::node(name, op_type, format!("has {} sizes for {} axes", sizes.len(), axes.len())));
            }
            let mut full = vec![1.0; x.rank()];
            for (&axis, &size) in axes.iter().zip(&sizes) {
                full[axis] = scale_for(x.dims()[axis], size).ok_or_else(|| {
                    Error::node(
                        name,
                        op_type,
                        format!("size {size} on axis {axis} (from {}) is not supported", x.dims()[axis]),
                    )
                })?;
            }
            full
        };
        let attrs = UpsampleAttrs { scales, mode, coordinate_transformation_mode: transform, nearest_mode };
        self.emit(name, Op::Upsample(attrs), vec![x_name], outputs)
    }

    /// Gemm as (Transpose) MatMul (Mul alpha) (Add beta·C): the node's own name goes to the last one.
    fn gemm(&mut self, name: &str, mut a: Taken<'_>, inputs: &[&str], outputs: Vec<String>) -> Result<()> {
        let alpha = a.float("alpha")?.unwrap_or(1.0);
        let beta = a.float("beta")?.unwrap_or(1.0);
        let trans_a = a.int("transA")?.unwrap_or(0) != 0;
        let trans_b = a.int("transB")?.unwrap_or(0) != 0;
        a.done()?;
        if inputs.len() < 2 {
            return Err(Error::node(name, "Gemm", "needs inputs A and B"));
        }
        let output = outputs.first().cloned().ok_or_else(|| Error::node(name, "Gemm", "has no output"))?;
        let c = inputs.get(2).copied().filter(|c| !c.is_empty() && beta != 0.0);
        let operand = |importer: &mut Self, input: &str, transposed: bool, what: &str| -> Result<String> {
            if !transposed {
                return Ok(input.to_string());
            }
            let node = importer.fresh(&format!("{name}.transpose_{what}"));
            let value = importer.fresh(&format!("{input}.transposed"));
            let op = Op::Transpose(TransposeAttrs { perm: vec![1, 0] });
            importer.emit(&node, op, vec![input.to_string()], vec![value.clone()])?;
            Ok(value)
        };
        let lhs = operand(self, inputs[0], trans_a, "a")?;
        let rhs = operand(self, inputs[1], trans_b, "b")?;
        // Steps, last one named as the node and writing its output.
        let mut steps: Vec<(Op, Vec<String>)> = vec![(Op::MatMul, vec![lhs, rhs])];
        if alpha != 1.0 {
            let s = self.scalar(&format!("{name}.alpha"), alpha);
            steps.push((Op::Mul, vec![String::new(), s]));
        }
        if let Some(c) = c {
            let c = if beta == 1.0 {
                c.to_string()
            } else {
                let s = self.scalar(&format!("{name}.beta"), beta);
                let scaled = self.fresh(&format!("{c}.scaled"));
                let node = self.fresh(&format!("{name}.scale_c"));
                self.emit(&node, Op::Mul, vec![c.to_string(), s], vec![scaled.clone()])?;
                scaled
            };
            steps.push((Op::Add, vec![String::new(), c]));
        }
        let count = steps.len();
        let mut previous = String::new();
        for (i, (op, mut args)) in steps.into_iter().enumerate() {
            if args[0].is_empty() {
                args[0] = previous.clone();
            }
            let last = i + 1 == count;
            let node =
                if last { name.to_string() } else { self.fresh(&format!("{name}.{}", op.name().to_lowercase())) };
            let out = if last { output.clone() } else { self.fresh(&format!("{output}.{}", op.name().to_lowercase())) };
            self.emit(&node, op, args, vec![out.clone()])?;
            previous = out;
        }
        Ok(())
    }
}

/// A `Constant` node's value as a tensor named after its output.
fn constant_value(node: &NodeProto, name: &str, output: &str) -> Result<TensorProto> {
    let attribute = node.attribute.first().filter(|_| node.attribute.len() == 1).ok_or_else(|| {
        Error::node(name, "Constant", "needs exactly one of value, value_float, value_floats, value_int, value_ints")
    })?;
    let named = |dims: Vec<i64>, data_type: i32| TensorProto {
        name: Some(output.to_string()),
        dims,
        data_type: Some(data_type),
        ..Default::default()
    };
    let t = match attribute.name() {
        "value" => TensorProto {
            name: Some(output.to_string()),
            ..attribute.t.clone().ok_or_else(|| Error::node(name, "Constant", "`value` holds no tensor"))?
        },
        "value_float" => TensorProto { float_data: vec![attribute.f()], ..named(vec![], data_type::FLOAT) },
        "value_floats" => TensorProto {
            float_data: attribute.floats.clone(),
            ..named(vec![attribute.floats.len() as i64], data_type::FLOAT)
        },
        "value_int" => TensorProto { int64_data: vec![attribute.i()], ..named(vec![], data_type::INT64) },
        "value_ints" => TensorProto {
            int64_data: attribute.ints.clone(),
            ..named(vec![attribute.ints.len() as i64], data_type::INT64)
        },
        other => return Err(Error::node(name, "Constant", format!("attribute `{other}` is not supported"))),
    };
    Ok(t)
}

fn resize_mode(mode: Option<String>, node: &str, op_type: &str) -> Result<ResizeMode> {
    match mode.as_deref() {
        None | Some("nearest") => Ok(ResizeMode::Nearest),
        Some("linear" | "bilinear") => Ok(ResizeMode::Linear),
        Some(other) => Err(Error::node(node, op_type, format!("mode `{other}` is not supported"))),
    }
}

/// The f32 scale whose floor(in · scale) is exactly `size` (the nearest such float to size / in).
fn scale_for(input: usize, size: i64) -> Option<f32> {
    let size = usize::try_from(size).ok().filter(|&s| s > 0 && input > 0)?;
    let mut scale = size as f32 / input as f32;
    for _ in 0..4 {
        let out = (input as f32 * scale).floor() as usize;
        match out.cmp(&size) {
            std::cmp::Ordering::Equal => return Some(scale),
            // Positive floats are ordered like their bit patterns: ±1 is the neighbouring float.
            std::cmp::Ordering::Less => scale = f32::from_bits(scale.to_bits() + 1),
            std::cmp::Ordering::Greater => scale = f32::from_bits(scale.to_bits() - 1),
        }
    }
    None
}

/// Axes normalized against `rank` (negative ones count from the end), each within range and once.
fn resolve_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>, String> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let r = rank as i64;
        let axis = if a < 0 { a + r } else { a };
        if !(0..r).contains(&axis) || out.contains(&(axis as usize)) {
            return Err(format!("axis {a} is out of range or repeated for rank {rank}"));
        }
        out.push(axis as usize);
    }
    Ok(out)
}

/// Pads for some axes (Pad-18 `axes`) spread over every axis.
fn spread_pads(pads: &[i64], axes: &[i64], rank: usize) -> Result<Vec<i64>, String> {
    let axes = resolve_axes(axes, rank)?;
    if pads.len() != 2 * axes.len() {
        return Err(format!("has {} pads for {} axes", pads.len(), axes.len()));
    }
    let mut full = vec![0; 2 * rank];
    for (i, &axis) in axes.iter().enumerate() {
        full[axis] = pads[i];
        full[rank + axis] = pads[axes.len() + i];
    }
    Ok(full)
}

fn squeezed(shape: &Shape, axes: Option<Vec<i64>>) -> Result<Vec<usize>, String> {
    let dims = shape.dims();
    let axes = match axes {
        Some(axes) => resolve_axes(&axes, dims.len())?,
        None => (0..dims.len()).filter(|&i| dims[i] == 1).collect(),
    };
    if let Some(&bad) = axes.iter().find(|&&a| dims[a] != 1) {
        return Err(format!("axis {bad} has size {}, not 1", dims[bad]));
    }
    Ok(dims.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect())
}

fn unsqueezed(shape: &Shape, axes: Option<Vec<i64>>) -> Result<Vec<usize>, String> {
    let axes = axes.ok_or("needs `axes`")?;
    let rank = shape.rank() + axes.len();
    let axes = resolve_axes(&axes, rank)?;
    let mut rest = shape.dims().iter();
    Ok((0..rank).map(|i| if axes.contains(&i) { 1 } else { *rest.next().unwrap_or(&1) }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_become_scales_that_give_exactly_the_size() {
        for (input, size) in [(3, 7), (7, 3), (2, 4), (5, 11), (1000, 1), (17, 33)] {
            let scale = scale_for(input, size as i64).unwrap();
            assert_eq!((input as f32 * scale).floor() as usize, size, "{input} → {size}");
        }
        assert_eq!(scale_for(3, 0), None);
        assert_eq!(scale_for(0, 3), None);
    }

    #[test]
    fn axis_lists_are_resolved_and_spread() {
        assert_eq!(resolve_axes(&[-1, 0], 3).unwrap(), [2, 0]);
        assert!(resolve_axes(&[1, -2], 3).is_err());
        assert_eq!(spread_pads(&[1, 2], &[-1], 3).unwrap(), [0, 0, 1, 0, 0, 2]);
        let s = Shape(vec![1, 3, 1]);
        assert_eq!(squeezed(&s, None).unwrap(), [3]);
        assert_eq!(squeezed(&s, Some(vec![-1])).unwrap(), [1, 3]);
        assert!(squeezed(&s, Some(vec![1])).is_err());
        assert_eq!(unsqueezed(&s, Some(vec![0, 4])).unwrap(), [1, 1, 3, 1, 1]);
    }
}
