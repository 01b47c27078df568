//! [`Graph`] → ONNX: every graph, original or lowered, as standard ONNX with its input and output
//! names kept. Ops ONNX has are written with their attributes through the op's serde form (so the
//! names and defaults stay declared once, in `strider_ir::op`); attributes ONNX takes as inputs
//! become int64 or float initializers. Lowering ops have no ONNX counterpart and are rewritten:
//! weight rearrangements (sub-pixel, phase and resize-conv kernels) are folded into constants,
//! ZeroInsert becomes Reshape → Pad → Reshape → Slice, and SparseMatMul a dense MatMul by its
//! matrix, up to a size bound.

use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::path::Path;

use serde_json::Value as Json;
use strider_interp::fold::fold_constants;
use strider_interp::kernels::conv_matrix;
use strider_ir::op::{
    Col2ImAttrs, DepthToSpaceAttrs, DepthToSpaceMode, PadAttrs, PadMode, ReshapeAttrs, SliceAttrs, UpsampleAttrs,
};
use strider_ir::{Graph, Limits, Node, Op, Producer, Shape, ValueId};

use crate::error::{Error, Result};
use crate::proto::{
    AttributeProto, AttributeType, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto,
    TypeProto, TypeProtoTensor, ValueInfoProto, data_type,
};
use crate::tensor;

/// Opsets Strider writes.
pub const OPSETS: RangeInclusive<i64> = 13..=22;

/// How to export.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Default-domain opset to declare (see [`OPSETS`]).
    pub opset: i64,
    /// Largest dense matrix (elements) a SparseMatMul may be written as.
    pub max_dense_elements: usize,
    /// The element cap for folded constants.
    pub limits: Limits,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions { opset: 18, max_dense_elements: 1 << 24, limits: Limits::default() }
    }
}

/// Writes `graph` as an ONNX file.
pub fn save(graph: &Graph, path: &Path, options: &ExportOptions) -> Result<()> {
    let bytes = tensor::encode(&export(graph, options)?, path, "ONNX model")?;
    // Written complete under a temporary name, then renamed into place (never half a model).
    strider_ir::output::replace_file(path, "ONNX model", |out| std::io::Write::write_all(out, &bytes))?;
    Ok(())
}

/// The ONNX model of `graph`.
pub fn export(graph: &Graph, options: &ExportOptions) -> Result<ModelProto> {
    if !OPSETS.contains(&options.opset) {
        return Err(Error::Options(format!(
            "opset {} is not supported for export; choose {} to {}",
            options.opset,
            OPSETS.start(),
            OPSETS.end()
        )));
    }
    let folded;
    let graph = if graph.nodes().any(|(_, n)| is_weight_rearrangement(&n.op)) {
        folded =
            fold_constants(graph, &options.limits).map_err(|e| Error::Options(format!("cannot fold weights: {e}")))?;
        &folded
    } else {
        graph
    };
    let mut w = Writer::new(graph, options);
    for init in graph.initializers() {
        w.initializers.push(tensor::from_f32(&graph.value(init.value).name, init.data()?)?);
    }
    for (_, node) in graph.nodes() {
        w.node(node)?;
    }
    let value_info = |v: ValueId| value_info(&graph.value(v).name, graph.shape(v));
    for &o in graph.outputs() {
        if !matches!(graph.value(o).ty.layout, strider_ir::Layout::Dense) {
            return Err(Error::Options(format!("graph output `{}` is a sparse matrix", graph.value(o).name)));
        }
    }
    let onnx_graph = GraphProto {
        node: w.nodes,
        name: Some(graph.name().to_string()),
        initializer: w.initializers,
        input: graph.inputs().iter().map(|&v| value_info(v)).collect(),
        output: graph.outputs().iter().map(|&v| value_info(v)).collect(),
        ..Default::default()
    };
    Ok(ModelProto {
        ir_version: Some(ir_version(options.opset)),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(options.opset) }],
        producer_name: Some("strider".to_string()),
        producer_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        graph: Some(onnx_graph),
        ..Default::default()
    })
}

/// The IR version that introduced each opset (onnx's version table), so older runtimes accept the file.
fn ir_version(opset: i64) -> i64 {
    match opset {
        ..=14 => 7,
        15..=18 => 8,
        19..=20 => 9,
        _ => 10,
    }
}

/// Ops that only rearrange weights and have no ONNX counterpart: folded into constants on export.
fn is_weight_rearrangement(op: &Op) -> bool {
    matches!(op, Op::SubpixelKernel(_) | Op::PhaseKernel(_) | Op::ResizeConvKernel(_))
}

fn value_info(name: &str, shape: &Shape) -> ValueInfoProto {
    let dim = shape.dims().iter().map(|&d| Dimension { dim_value: Some(d as i64), ..Default::default() }).collect();
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: Some(data_type::FLOAT),
                shape: Some(TensorShapeProto { dim }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An attribute from its JSON form: integers (and booleans) as INT(S), other numbers as FLOAT(S).
fn attribute(name: &str, value: &Json) -> Option<AttributeProto> {
    let mut a = AttributeProto { name: Some(name.to_string()), ..Default::default() };
    let kind = match value {
        Json::Bool(b) => {
            a.i = Some(i64::from(*b));
            AttributeType::Int
        }
        Json::Number(n) if n.is_i64() || n.is_u64() => {
            a.i = n.as_i64();
            AttributeType::Int
        }
        Json::Number(n) => {
            a.f = n.as_f64().map(|f| f as f32);
            AttributeType::Float
        }
        Json::String(s) => {
            a.s = Some(s.clone().into_bytes());
            AttributeType::String
        }
        Json::Array(items) if items.is_empty() => return None,
        Json::Array(items) if items.iter().all(|i| i.is_i64() || i.is_u64()) => {
            a.ints = items.iter().filter_map(Json::as_i64).collect();
            AttributeType::Ints
        }
        Json::Array(items) => {
            a.floats = items.iter().filter_map(Json::as_f64).map(|f| f as f32).collect();
            AttributeType::Floats
        }
        Json::Null | Json::Object(_) => return None,
    };
    a.r#type = Some(kind as i32);
    Some(a)
}

fn string_attribute(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::String as i32),
        s: Some(value.as_bytes().to_vec()),
        ..Default::default()
    }
}

/// The ONNX spelling of a Strider enum value (its serde name).
fn serde_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Json::String(s)) => s,
        _ => String::new(),
    }
}

struct Writer<'g> {
    graph: &'g Graph,
    options: &'g ExportOptions,
    nodes: Vec<NodeProto>,
    initializers: Vec<crate::proto::TensorProto>,
    taken: HashSet<String>,
}

impl<'g> Writer<'g> {
    fn new(graph: &'g Graph, options: &'g ExportOptions) -> Self {
        let mut taken: HashSet<String> = graph.values().iter().map(|v| v.name.clone()).collect();
        taken.extend(graph.nodes().map(|(_, n)| n.name.clone()));
        Writer { graph, options, nodes: Vec::new(), initializers: Vec::new(), taken }
    }

    fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut i = 2;
        while !self.taken.insert(name.clone()) {
            name = format!("{base}_{i}");
            i += 1;
        }
        name
    }

    fn ints(&mut self, base: &str, values: &[i64]) -> String {
        let name = self.fresh(base);
        self.initializers.push(tensor::from_i64(&name, values));
        name
    }

    fn floats(&mut self, base: &str, values: &[f32]) -> Result<String> {
        let name = self.fresh(base);
        let data = ndarray::ArrayD::from_shape_vec(vec![values.len()], values.to_vec()).expect("1-D");
        self.initializers.push(tensor::from_f32(&name, &data)?);
        Ok(name)
    }

    fn push(
        &mut self,
        name: &str,
        op_type: &str,
        inputs: Vec<String>,
        outputs: Vec<String>,
        attribute: Vec<AttributeProto>,
    ) {
        self.nodes.push(NodeProto {
            input: inputs,
            output: outputs,
            name: Some(name.to_string()),
            op_type: Some(op_type.to_string()),
            attribute,
            ..Default::default()
        });
    }

    fn needs(&self, node: &Node, opset: i64, what: &str) -> Result<()> {
        if self.options.opset < opset {
            return Err(Error::Export {
                node: node.name.clone(),
                op: node.op.name(),
                problem: format!("{what} needs opset {opset} or newer (--opset)"),
            });
        }
        Ok(())
    }

    fn node(&mut self, node: &Node) -> Result<()> {
        let name = |v: &ValueId| self.graph.value(*v).name.clone();
        let inputs: Vec<String> = node.inputs.iter().map(name).collect();
        let outputs: Vec<String> = node.outputs.iter().map(name).collect();
        let export_error = |problem: String| Error::Export { node: node.name.clone(), op: node.op.name(), problem };
        match &node.op {
            // Read by the SparseMatMul that multiplies by it.
            Op::ConvMatrix(_) => Ok(()),
            Op::SparseMatMul(_) => {
                let matrix = self.dense_matrix(node).map_err(export_error)?;
                self.initializers.push(tensor::from_f32(&inputs[1], &matrix)?);
                self.push(&node.name, "MatMul", inputs, outputs, Vec::new());
                Ok(())
            }
            Op::ZeroInsert(a) => {
                let x = self.graph.shape(node.inputs[0]).dims().to_vec();
                self.zero_insert(node, &x, &a.strides, &inputs[0], &outputs[0]);
                Ok(())
            }
            Op::Upsample(a) => {
                let UpsampleAttrs { scales, mode, coordinate_transformation_mode, nearest_mode } = a;
                if matches!(coordinate_transformation_mode, strider_ir::op::CoordinateTransform::HalfPixelSymmetric) {
                    self.needs(node, 19, "coordinate_transformation_mode half_pixel_symmetric")?;
                }
                let scales = self.floats(&format!("{}.scales", node.name), scales)?;
                let attributes = vec![
                    string_attribute("mode", &serde_name(mode)),
                    string_attribute("coordinate_transformation_mode", &serde_name(coordinate_transformation_mode)),
                    string_attribute("nearest_mode", &serde_name(nearest_mode)),
                ];
                self.push(&node.name, "Resize", vec![inputs[0].clone(), String::new(), scales], outputs, attributes);
                Ok(())
            }
            Op::Reshape(ReshapeAttrs { shape, allowzero }) => {
                let mut attributes = Vec::new();
                if *allowzero {
                    self.needs(node, 14, "allowzero")?;
                    attributes.extend(attribute("allowzero", &Json::from(1)));
                }
                let shape = self.ints(&format!("{}.shape", node.name), shape);
                self.push(&node.name, "Reshape", vec![inputs[0].clone(), shape], outputs, attributes);
                Ok(())
            }
            Op::Pad(PadAttrs { pads, mode, value }) => {
                if *mode == PadMode::Wrap {
                    self.needs(node, 19, "mode wrap")?;
                }
                let mut args = vec![inputs[0].clone(), self.ints(&format!("{}.pads", node.name), pads)];
                if *value != 0.0 {
                    let name = self.fresh(&format!("{}.constant_value", node.name));
                    self.initializers.push(tensor::from_f32(&name, &ndarray::arr0(*value).into_dyn())?);
                    args.push(name);
                }
                self.push(&node.name, "Pad", args, outputs, vec![string_attribute("mode", &serde_name(mode))]);
                Ok(())
            }
            Op::Slice(SliceAttrs { starts, ends, axes, steps }) => {
                let mut args = vec![
                    inputs[0].clone(),
                    self.ints(&format!("{}.starts", node.name), starts),
                    self.ints(&format!("{}.ends", node.name), ends),
                ];
                if !axes.is_empty() || !steps.is_empty() {
                    let axes: Vec<i64> =
                        if axes.is_empty() { (0..starts.len() as i64).collect() } else { axes.clone() };
                    args.push(self.ints(&format!("{}.axes", node.name), &axes));
                }
                if !steps.is_empty() {
                    args.push(self.ints(&format!("{}.steps", node.name), steps));
                }
                self.push(&node.name, "Slice", args, outputs, Vec::new());
                Ok(())
            }
            Op::Col2Im(Col2ImAttrs { image_shape, block_shape, .. }) => {
                self.needs(node, 18, "Col2Im")?;
                let to_i64 = |v: &[usize]| v.iter().map(|&d| d as i64).collect::<Vec<_>>();
                let image = self.ints(&format!("{}.image_shape", node.name), &to_i64(image_shape));
                let block = self.ints(&format!("{}.block_shape", node.name), &to_i64(block_shape));
                let attributes = self.serde_attributes(&node.op, &["image_shape", "block_shape"]);
                self.push(&node.name, "Col2Im", vec![inputs[0].clone(), image, block], outputs, attributes);
                Ok(())
            }
            Op::DepthToSpace(a) if self.graph.shape(node.inputs[0]).rank() != 4 => {
                let x = self.graph.shape(node.inputs[0]).dims().to_vec();
                self.depth_to_space(node, &x, a, &inputs[0], &outputs[0]);
                Ok(())
            }
            Op::SubpixelKernel(_) | Op::PhaseKernel(_) | Op::ResizeConvKernel(_) => Err(export_error(
                "it rearranges a weight computed at run time; only constant weights can be folded".into(),
            )),
            Op::Conv(_)
            | Op::ConvTranspose(_)
            | Op::MatMul
            | Op::Add
            | Op::Mul
            | Op::Sub
            | Op::Div
            | Op::Sqrt
            | Op::Relu
            | Op::LeakyRelu(_)
            | Op::Sigmoid
            | Op::Tanh
            | Op::BatchNormalization(_)
            | Op::Concat(_)
            | Op::Flatten(_)
            | Op::Transpose(_)
            | Op::DepthToSpace(_)
            | Op::Identity => {
                let attributes = self.serde_attributes(&node.op, &[]);
                self.push(&node.name, node.op.name(), inputs, outputs, attributes);
                Ok(())
            }
        }
    }

    /// The op's attributes as its serde form writes them (defaults left out), except `skip`.
    fn serde_attributes(&self, op: &Op, skip: &[&str]) -> Vec<AttributeProto> {
        let Ok(Json::Object(outer)) = serde_json::to_value(op) else { return Vec::new() };
        let Some(Json::Object(fields)) = outer.into_iter().next().map(|(_, v)| v) else { return Vec::new() };
        fields.iter().filter(|(k, _)| !skip.contains(&k.as_str())).filter_map(|(k, v)| attribute(k, v)).collect()
    }

    /// x (N, C, d…) → Reshape (N, C, d₁, 1, d₂, 1, …) → Pad the 1s to the strides → Reshape
    /// (N, C, d₁·s₁, …) → Slice to (dᵢ − 1)·sᵢ + 1: the zeros ONNX has no op for.
    fn zero_insert(&mut self, node: &Node, x: &[usize], strides: &[usize], input: &str, output: &str) {
        let spatial = &x[2..];
        let mut expanded: Vec<i64> = vec![x[0] as i64, x[1] as i64];
        let mut pads_end: Vec<i64> = vec![0, 0];
        for (&d, &s) in spatial.iter().zip(strides) {
            expanded.extend([d as i64, 1]);
            pads_end.extend([0, s as i64 - 1]);
        }
        let pads: Vec<i64> = std::iter::repeat_n(0, expanded.len()).chain(pads_end).collect();
        let merged: Vec<i64> = [x[0] as i64, x[1] as i64]
            .into_iter()
            .chain(spatial.iter().zip(strides).map(|(&d, &s)| (d * s) as i64))
            .collect();
        let ends: Vec<i64> = spatial.iter().zip(strides).map(|(&d, &s)| (d.saturating_sub(1) * s + 1) as i64).collect();
        let axes: Vec<i64> = (2..x.len() as i64).collect();
        let base = &node.name;
        let shape = self.ints(&format!("{base}.expanded_shape"), &expanded);
        let (a, b, c) = (
            self.fresh(&format!("{output}.expanded")),
            self.fresh(&format!("{output}.padded")),
            self.fresh(&format!("{output}.merged")),
        );
        let n1 = self.fresh(&format!("{base}.expand"));
        self.push(&n1, "Reshape", vec![input.to_string(), shape], vec![a.clone()], Vec::new());
        let pads = self.ints(&format!("{base}.pads"), &pads);
        let n2 = self.fresh(&format!("{base}.pad"));
        self.push(&n2, "Pad", vec![a, pads], vec![b.clone()], Vec::new());
        let merged = self.ints(&format!("{base}.merged_shape"), &merged);
        let n3 = self.fresh(&format!("{base}.merge"));
        self.push(&n3, "Reshape", vec![b, merged], vec![c.clone()], Vec::new());
        let starts = self.ints(&format!("{base}.starts"), &vec![0; ends.len()]);
        let ends = self.ints(&format!("{base}.ends"), &ends);
        let axes = self.ints(&format!("{base}.axes"), &axes);
        self.push(&node.name, "Slice", vec![c, starts, ends, axes], vec![output.to_string()], Vec::new());
    }

    /// DepthToSpace on 1 or 3 spatial axes (ONNX's is 2-D only): Reshape to split the channel
    /// blocks, Transpose each block next to its axis, Reshape to merge them.
    fn depth_to_space(&mut self, node: &Node, x: &[usize], a: &DepthToSpaceAttrs, input: &str, output: &str) {
        let (b, k) = (a.blocksize, x.len() - 2);
        let c = x[1] / b.pow(k as u32);
        let blocks = std::iter::repeat_n(b as i64, k);
        let spatial = x[2..].iter().map(|&d| d as i64);
        // Split axes: DCR is (N, b…, C, d…), CRD is (N, C, b…, d…).
        let (split, channel, first_block): (Vec<i64>, usize, usize) = match a.mode {
            DepthToSpaceMode::DCR => {
                ([x[0] as i64].into_iter().chain(blocks).chain([c as i64]).chain(spatial).collect(), 1 + k, 1)
            }
            DepthToSpaceMode::CRD => ([x[0] as i64, c as i64].into_iter().chain(blocks).chain(spatial).collect(), 1, 2),
        };
        let spatial_start = 2 + k;
        let mut perm: Vec<i64> = vec![0, channel as i64];
        for i in 0..k {
            perm.extend([(spatial_start + i) as i64, (first_block + i) as i64]);
        }
        let merged: Vec<i64> =
            [x[0] as i64, c as i64].into_iter().chain(x[2..].iter().map(|&d| (d * b) as i64)).collect();
        let base = &node.name;
        let shape = self.ints(&format!("{base}.split_shape"), &split);
        let (split_value, moved) = (self.fresh(&format!("{output}.split")), self.fresh(&format!("{output}.moved")));
        let n1 = self.fresh(&format!("{base}.split"));
        self.push(&n1, "Reshape", vec![input.to_string(), shape], vec![split_value.clone()], Vec::new());
        let n2 = self.fresh(&format!("{base}.move"));
        let perm = attribute("perm", &Json::from(perm)).into_iter().collect();
        self.push(&n2, "Transpose", vec![split_value], vec![moved.clone()], perm);
        let merged = self.ints(&format!("{base}.merged_shape"), &merged);
        self.push(&node.name, "Reshape", vec![moved, merged], vec![output.to_string()], Vec::new());
    }

    /// The dense matrix of the ConvMatrix a SparseMatMul reads, within the size bound.
    fn dense_matrix(&self, node: &Node) -> Result<ndarray::ArrayD<f32>, String> {
        let a = node.inputs[1];
        let (rows, cols) = (self.graph.shape(a).dims()[0], self.graph.shape(a).dims()[1]);
        let elements = rows.saturating_mul(cols);
        if elements > self.options.max_dense_elements {
            return Err(format!(
                "its matrix as a dense MatMul weight would hold {rows}×{cols} = {elements} elements, over the \
                 bound of {} (--max-dense-elements); export another lowering",
                self.options.max_dense_elements
            ));
        }
        let Producer::Node { node: producer, .. } = self.graph.value(a).producer else {
            return Err("its matrix is not made by a ConvMatrix node".into());
        };
        let matrix_node = self.graph.node(producer);
        let (Op::ConvMatrix(attrs), Some(weight)) = (&matrix_node.op, self.graph.initializer(matrix_node.inputs[0]))
        else {
            return Err("its matrix is not a ConvMatrix of a constant weight".into());
        };
        let matrix =
            conv_matrix(attrs, &weight.data().map_err(|e| e.to_string())?.view()).map_err(|e| e.to_string())?;
        // Reserved fallibly: --max-dense-elements may allow more than the system can provide.
        let mut dense = strider_ir::alloc::try_array(&[matrix.rows(), matrix.cols()], std::iter::empty())
            .map_err(|e| e.to_string())?;
        for (&value, (r, c)) in matrix.iter() {
            dense[[r, c]] = value;
        }
        Ok(dense)
    }
}
