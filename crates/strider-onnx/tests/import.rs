//! The importer on hand-built ONNX models: each translated construct (older opsets' attribute forms,
//! constant inputs, Gemm, Resize by sizes, Squeeze/Unsqueeze, external data, dynamic dimensions)
//! computes the values it should, and each bad model fails with its own error. Also writes the bad
//! models of `examples/invalid/*.onnx` (`STRIDER_WRITE_EXAMPLES=1`) and checks they are current.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use prost::Message;
use strider_ir::{Graph, Op};
use strider_onnx::proto::{
    AttributeProto, AttributeType, DataLocation, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto, data_type,
};
use strider_onnx::{Error, ImportOptions, import, tensor};

fn value_info(name: &str, dims: &[Dimension], elem_type: i32) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: Some(elem_type),
                shape: Some(TensorShapeProto { dim: dims.to_vec() }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn fixed(dims: &[i64]) -> Vec<Dimension> {
    dims.iter().map(|&d| Dimension { dim_value: Some(d), ..Default::default() }).collect()
}

fn float_input(name: &str, dims: &[i64]) -> ValueInfoProto {
    value_info(name, &fixed(dims), data_type::FLOAT)
}

fn node(name: &str, op_type: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        name: Some(name.into()),
        op_type: Some(op_type.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute,
        ..Default::default()
    }
}

fn attr(name: &str, kind: AttributeType) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(kind as i32), ..Default::default() }
}
fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { i: Some(v), ..attr(name, AttributeType::Int) }
}
fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { ints: v.to_vec(), ..attr(name, AttributeType::Ints) }
}
fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto { f: Some(v), ..attr(name, AttributeType::Float) }
}
fn floats(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto { floats: v.to_vec(), ..attr(name, AttributeType::Floats) }
}
fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto { s: Some(v.as_bytes().to_vec()), ..attr(name, AttributeType::String) }
}

fn array(dims: &[usize], values: Vec<f32>) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(dims), values).unwrap()
}

fn weights(name: &str, dims: &[usize], values: Vec<f32>) -> TensorProto {
    tensor::from_f32(name, &array(dims, values)).unwrap()
}

fn model(
    opset: i64,
    nodes: Vec<NodeProto>,
    initializer: Vec<TensorProto>,
    input: Vec<ValueInfoProto>,
    outputs: &[&str],
) -> ModelProto {
    ModelProto {
        ir_version: Some(7),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(opset) }],
        graph: Some(GraphProto {
            name: Some("test".into()),
            node: nodes,
            initializer,
            input,
            output: outputs
                .iter()
                .map(|o| ValueInfoProto { name: Some(o.to_string()), ..Default::default() })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn load(m: &ModelProto) -> Result<Graph, Error> {
    import::import(m, Path::new("."), &ImportOptions::default())
}

/// Runs a one-input graph.
fn run(graph: &Graph, x: ArrayD<f32>) -> Vec<ArrayD<f32>> {
    let name = graph.value(graph.inputs()[0]).name.clone();
    strider_interp::run(graph, &HashMap::from([(name, x)])).unwrap().into_iter().map(|(_, v)| v).collect()
}

fn iota(dims: &[usize]) -> ArrayD<f32> {
    let n = dims.iter().product::<usize>();
    array(dims, (0..n).map(|i| i as f32).collect())
}

#[test]
fn gemm_becomes_matmul_transpose_mul_add_with_gemms_values() {
    // Y = 2 · A · Bᵀ + 0.5 · C with A (2, 3), B (4, 3), C (4).
    let b: Vec<f32> = (0..12).map(|i| (i as f32) * 0.5 - 2.0).collect();
    let c = vec![1.0, -1.0, 2.0, 4.0];
    let m = model(
        13,
        vec![node(
            "fc",
            "Gemm",
            &["a", "b", "c"],
            &["y"],
            vec![float("alpha", 2.0), float("beta", 0.5), int("transB", 1)],
        )],
        vec![weights("b", &[4, 3], b.clone()), weights("c", &[4], c.clone())],
        vec![float_input("a", &[2, 3])],
        &["y"],
    );
    let graph = load(&m).unwrap();
    let mut ops: Vec<&str> = graph.nodes().map(|(_, n)| n.op.name()).collect();
    ops.sort();
    assert_eq!(ops, ["Add", "MatMul", "Mul", "Mul", "Transpose"]);
    assert_eq!(graph.nodes().last().unwrap().1.name, "fc");
    let a = iota(&[2, 3]);
    let y = &run(&graph, a.clone())[0];
    for i in 0..2 {
        for j in 0..4 {
            let dot: f32 = (0..3).map(|k| a[[i, k]] * b[j * 3 + k]).sum();
            assert_eq!(y[[i, j]], 2.0 * dot + 0.5 * c[j], "({i}, {j})");
        }
    }
}

#[test]
fn upsample_and_resize_in_every_opset_form_repeat_pixels() {
    let x = iota(&[1, 1, 2, 3]);
    let input = || vec![float_input("x", &[1, 1, 2, 3])];
    let scales = || weights("scales", &[4], vec![1.0, 1.0, 2.0, 2.0]);
    let sizes = || tensor::from_i64("sizes", &[1, 1, 4, 6]);
    let forms = [
        model(
            7,
            vec![node("u", "Upsample", &["x"], &["y"], vec![floats("scales", &[1.0, 1.0, 2.0, 2.0])])],
            vec![],
            input(),
            &["y"],
        ),
        model(9, vec![node("u", "Upsample", &["x", "scales"], &["y"], vec![])], vec![scales()], input(), &["y"]),
        model(10, vec![node("u", "Resize", &["x", "scales"], &["y"], vec![])], vec![scales()], input(), &["y"]),
        model(
            13,
            vec![node(
                "u",
                "Resize",
                &["x", "", "", "sizes"],
                &["y"],
                vec![string("nearest_mode", "floor"), string("coordinate_transformation_mode", "asymmetric")],
            )],
            vec![sizes()],
            input(),
            &["y"],
        ),
        model(
            19,
            vec![node(
                "u",
                "Resize",
                &["x", "", "scales"],
                &["y"],
                vec![string("coordinate_transformation_mode", "asymmetric")],
            )],
            vec![scales()],
            input(),
            &["y"],
        ),
    ];
    let want = ArrayD::from_shape_fn(IxDyn(&[1, 1, 4, 6]), |ix| x[[0, 0, ix[2] / 2, ix[3] / 2]]);
    for (i, m) in forms.iter().enumerate() {
        let graph = load(m).unwrap_or_else(|e| panic!("form {i}: {e}"));
        assert_eq!(run(&graph, x.clone())[0], want, "form {i}");
    }
    // Resize-11's defaults are half_pixel and round_prefer_floor, not Upsample's.
    let resize11 =
        model(11, vec![node("u", "Resize", &["x", "", "scales"], &["y"], vec![])], vec![scales()], input(), &["y"]);
    let graph = load(&resize11).unwrap();
    let (_, n) = graph.nodes().next().unwrap();
    let Op::Upsample(a) = &n.op else { panic!("{:?}", n.op) };
    assert_eq!(serde_json::to_value(a).unwrap()["coordinate_transformation_mode"], "half_pixel");
    assert_eq!(serde_json::to_value(a).unwrap()["nearest_mode"], "round_prefer_floor");
}

#[test]
fn constant_inputs_become_attributes_in_old_and_new_forms() {
    let x = iota(&[1, 2, 3]);
    let input = || vec![float_input("x", &[1, 2, 3])];
    let int_constant =
        |name: &str, out: &str, v: &[i64]| node(name, "Constant", &[], &[out], vec![ints("value_ints", v)]);
    // Reshape's shape from a Constant node, Unsqueeze-11 (attribute) and -13 (input), Squeeze-13 (all ones).
    let m = model(
        13,
        vec![
            int_constant("c", "shape", &[3, 2]),
            node("r", "Reshape", &["x", "shape"], &["r"], vec![]),
            node("u", "Unsqueeze", &["r", "axes"], &["u"], vec![]),
            node("s", "Squeeze", &["u"], &["y"], vec![]),
        ],
        vec![tensor::from_i64("axes", &[0, -1])],
        input(),
        &["y", "u"],
    );
    let graph = load(&m).unwrap();
    assert!(graph.initializers().is_empty(), "constants read as attributes are not kept");
    let out = run(&graph, x.clone());
    assert_eq!(out[0], iota(&[3, 2]));
    assert_eq!(out[1], iota(&[1, 3, 2, 1]));
    let m11 =
        model(11, vec![node("u", "Unsqueeze", &["x"], &["y"], vec![ints("axes", &[1])])], vec![], input(), &["y"]);
    assert_eq!(run(&load(&m11).unwrap(), x.clone())[0], iota(&[1, 1, 2, 3]));

    // Pad-2 (attributes), Pad-11 (inputs) and Pad-18 (axes) agree; so do Slice-1 and Slice-13.
    let pads = [0, 0, 1, 0, 0, 2];
    let pad_forms = [
        model(
            6,
            vec![node("p", "Pad", &["x"], &["y"], vec![ints("pads", &pads), float("value", 7.0)])],
            vec![],
            input(),
            &["y"],
        ),
        model(
            11,
            vec![node("p", "Pad", &["x", "pads", "v"], &["y"], vec![])],
            vec![tensor::from_i64("pads", &pads), weights("v", &[], vec![7.0])],
            input(),
            &["y"],
        ),
        model(
            18,
            vec![node("p", "Pad", &["x", "pads", "v", "axes"], &["y"], vec![])],
            vec![tensor::from_i64("pads", &[1, 2]), weights("v", &[], vec![7.0]), tensor::from_i64("axes", &[-1])],
            input(),
            &["y"],
        ),
    ];
    let want =
        ArrayD::from_shape_fn(
            IxDyn(&[1, 2, 6]),
            |ix| if (1..4).contains(&ix[2]) { x[[0, ix[1], ix[2] - 1]] } else { 7.0 },
        );
    for (i, m) in pad_forms.iter().enumerate() {
        assert_eq!(run(&load(m).unwrap(), x.clone())[0], want, "pad form {i}");
    }
    let slice_old = model(
        6,
        vec![node("s", "Slice", &["x"], &["y"], vec![ints("starts", &[1]), ints("ends", &[3]), ints("axes", &[2])])],
        vec![],
        input(),
        &["y"],
    );
    let slice_new = model(
        13,
        vec![node("s", "Slice", &["x", "starts", "ends", "axes", "steps"], &["y"], vec![])],
        vec![
            tensor::from_i64("starts", &[1]),
            tensor::from_i64("ends", &[3]),
            tensor::from_i64("axes", &[2]),
            tensor::from_i64("steps", &[1]),
        ],
        input(),
        &["y"],
    );
    let want = ArrayD::from_shape_fn(IxDyn(&[1, 2, 2]), |ix| x[[0, ix[1], ix[2] + 1]]);
    assert_eq!(run(&load(&slice_old).unwrap(), x.clone())[0], want);
    assert_eq!(run(&load(&slice_new).unwrap(), x)[0], want);
}

#[test]
fn batch_normalization_6_reads_its_legacy_attributes() {
    let stats = |name: &str, v: [f32; 2]| weights(name, &[2], v.to_vec());
    let bn = |spatial: i64| {
        model(
            6,
            vec![node(
                "bn",
                "BatchNormalization",
                &["x", "s", "b", "m", "v"],
                &["y"],
                vec![int("is_test", 1), int("spatial", spatial), float("epsilon", 0.0), float("momentum", 0.9)],
            )],
            vec![stats("s", [2.0, 1.0]), stats("b", [1.0, 0.0]), stats("m", [1.0, -1.0]), stats("v", [4.0, 1.0])],
            vec![float_input("x", &[1, 2, 1, 1])],
            &["y"],
        )
    };
    let y = &run(&load(&bn(1)).unwrap(), array(&[1, 2, 1, 1], vec![3.0, 3.0]))[0];
    assert_eq!(y.as_slice().unwrap(), &[2.0 * (3.0 - 1.0) / 2.0 + 1.0, 3.0 + 1.0]);
    let err = load(&bn(0)).unwrap_err().to_string();
    assert_eq!(
        err,
        "node `bn` (BatchNormalization): attribute `spatial` = 0: per-activation normalization is not supported"
    );
}

#[test]
fn unnamed_nodes_are_named_by_op_and_position() {
    let m = model(
        13,
        vec![node("", "Relu", &["x"], &["y"], vec![]), node("", "Tanh", &["y"], &["z"], vec![])],
        vec![],
        vec![float_input("x", &[2])],
        &["z"],
    );
    let graph = load(&m).unwrap();
    let names: Vec<&str> = graph.nodes().map(|(_, n)| n.name.as_str()).collect();
    assert_eq!(names, ["Relu_0", "Tanh_1"]);
}

#[test]
fn external_data_is_read_relative_to_the_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let values: Vec<f32> = vec![0.5, -1.0, 2.0, 4.0];
    let mut bytes = vec![0u8; 8];
    bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/w.bin"), &bytes).unwrap();
    let entry = |k: &str, v: &str| StringStringEntryProto { key: Some(k.into()), value: Some(v.into()) };
    let w = TensorProto {
        name: Some("w".into()),
        dims: vec![4],
        data_type: Some(data_type::FLOAT),
        data_location: Some(DataLocation::External as i32),
        external_data: vec![entry("location", "data/w.bin"), entry("offset", "8"), entry("length", "16")],
        ..Default::default()
    };
    let m =
        model(13, vec![node("add", "Add", &["x", "w"], &["y"], vec![])], vec![w], vec![float_input("x", &[4])], &["y"]);
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    let graph = import::load(&path, &ImportOptions::default()).unwrap();
    assert_eq!(run(&graph, array(&[4], vec![1.0; 4]))[0].as_slice().unwrap(), &[1.5, 0.0, 3.0, 5.0]);
}

#[test]
fn dynamic_dimensions_are_bound_or_refused_by_name() {
    let dims = vec![
        Dimension { dim_param: Some("batch".into()), ..Default::default() },
        Dimension { dim_value: Some(3), ..Default::default() },
    ];
    let m = model(
        13,
        vec![node("r", "Relu", &["x"], &["y"], vec![])],
        vec![],
        vec![value_info("x", &dims, data_type::FLOAT)],
        &["y"],
    );
    assert_eq!(
        load(&m).unwrap_err().to_string(),
        "input `x` has dynamic dimension 0 (batch); bind it with --shape x=D0,D1,…"
    );
    let bind = |name: &str, dims: Vec<usize>| ImportOptions {
        shapes: BTreeMap::from([(name.to_string(), dims)]),
        ..Default::default()
    };
    let graph = import::import(&m, Path::new("."), &bind("x", vec![5, 3])).unwrap();
    assert_eq!(graph.shape(graph.value_id("y").unwrap()).dims(), [5, 3]);
    let fixed_axis = import::import(&m, Path::new("."), &bind("x", vec![5, 4])).unwrap_err();
    assert_eq!(fixed_axis.to_string(), "--shape x: axis 1 is 4, but the model fixes it at 3");
    let unknown = import::import(&m, Path::new("."), &bind("z", vec![1])).unwrap_err();
    assert_eq!(unknown.to_string(), "--shape z: the model has no input of this name (its inputs: x)");
}

#[test]
fn bad_models_fail_with_their_own_errors() {
    let relu = |name: &str, i: &str, o: &str| node(name, "Relu", &[i], &[o], vec![]);
    let x = || vec![float_input("x", &[2])];
    let unsupported = model(
        13,
        vec![
            node("if1", "If", &["x"], &["a"], vec![]),
            node("l1", "Loop", &["a"], &["b"], vec![]),
            node("l2", "Loop", &["b"], &["c"], vec![]),
            NodeProto { domain: Some("com.microsoft".into()), ..node("g", "Gelu", &["c"], &["y"], vec![]) },
        ],
        vec![],
        x(),
        &["y"],
    );
    assert_eq!(
        load(&unsupported).unwrap_err().to_string(),
        "unsupported ops: If (node `if1`); Loop (nodes `l1`, `l2`); com.microsoft.Gelu (node `g`)"
    );
    let cycle = model(13, vec![relu("a", "z", "y"), relu("b", "y", "z"), relu("c", "z", "out")], vec![], x(), &["out"]);
    assert_eq!(load(&cycle).unwrap_err().to_string(), "the graph has a cycle through nodes `a` → `b`");
    let twice = model(13, vec![relu("a", "x", "y"), relu("b", "x", "y")], vec![], x(), &["y"]);
    assert_eq!(
        load(&twice).unwrap_err().to_string(),
        "value `y` is defined twice: as output of node `a` and as output of node `b`"
    );
    let double = TensorProto {
        name: Some("w".into()),
        dims: vec![2],
        data_type: Some(data_type::DOUBLE),
        double_data: vec![1.0, 2.0],
        ..Default::default()
    };
    let f64_weight = model(13, vec![node("add", "Add", &["x", "w"], &["y"], vec![])], vec![double], x(), &["y"]);
    assert_eq!(
        load(&f64_weight).unwrap_err().to_string(),
        "`w` has element type DOUBLE; Strider computes in float32 only"
    );
    let int_input =
        model(13, vec![relu("a", "x", "y")], vec![], vec![value_info("x", &fixed(&[2]), data_type::INT64)], &["y"]);
    assert_eq!(
        load(&int_input).unwrap_err().to_string(),
        "`x` has element type INT64; Strider computes in float32 only"
    );
    let dynamic_shape =
        model(13, vec![relu("a", "x", "s"), node("r", "Reshape", &["x", "s"], &["y"], vec![])], vec![], x(), &["y"]);
    assert_eq!(
        load(&dynamic_shape).unwrap_err().to_string(),
        "node `r` (Reshape): input `shape` (`s`) must be a constant (an initializer or a Constant node)"
    );
    let old = model(5, vec![relu("a", "x", "y")], vec![], x(), &["y"]);
    assert!(load(&old).unwrap_err().to_string().ends_with("it uses opset 5; Strider reads opset 6 and newer"));
    let bad_attribute = model(
        13,
        vec![node("c", "Concat", &["x", "x"], &["y"], vec![int("axis", 0), int("bogus", 1)])],
        vec![],
        x(),
        &["y"],
    );
    assert!(
        load(&bad_attribute)
            .unwrap_err()
            .to_string()
            .starts_with("node `c` (Concat): attributes: unknown field `bogus`")
    );
}

/// The bad files of `examples/invalid/`, each with what makes it bad.
fn invalid_examples() -> Vec<(&'static str, Vec<u8>)> {
    let relu = |name: &str, i: &str, o: &str| node(name, "Relu", &[i], &[o], vec![]);
    let x = || vec![float_input("x", &[1, 2])];
    let encode = |m: &ModelProto| m.encode_to_vec();
    let good = encode(&model(13, vec![relu("a", "x", "y")], vec![weights("w", &[2], vec![1.0, 2.0])], x(), &["y"]));
    let external = |location: &str, offset: &str| {
        let entry = |k: &str, v: &str| StringStringEntryProto { key: Some(k.into()), value: Some(v.into()) };
        let w = TensorProto {
            name: Some("w".into()),
            dims: vec![1, 2],
            data_type: Some(data_type::FLOAT),
            data_location: Some(DataLocation::External as i32),
            external_data: vec![entry("location", location), entry("offset", offset), entry("length", "8")],
            ..Default::default()
        };
        encode(&model(13, vec![node("add", "Add", &["x", "w"], &["y"], vec![])], vec![w], x(), &["y"]))
    };
    let short_raw = TensorProto { raw_data: Some(vec![0; 6]), ..weights("w", &[1, 2], vec![1.0, 2.0]) };
    vec![
        ("onnx_truncated.onnx", good[..good.len() - 7].to_vec()),
        ("onnx_not_a_model.onnx", b"(name: \"a RON model saved with the wrong extension\")\n".to_vec()),
        ("onnx_cycle.onnx", encode(&model(13, vec![relu("a", "z", "y"), relu("b", "y", "z")], vec![], x(), &["z"]))),
        (
            "onnx_output_defined_twice.onnx",
            encode(&model(13, vec![relu("a", "x", "y"), relu("b", "x", "y")], vec![], x(), &["y"])),
        ),
        (
            "onnx_raw_data_length.onnx",
            encode(&model(13, vec![node("add", "Add", &["x", "w"], &["y"], vec![])], vec![short_raw], x(), &["y"])),
        ),
        ("onnx_external_outside_file.onnx", external("weights_2x1x2x2.npy", "4096")),
        ("onnx_external_missing.onnx", external("no_such_weights.bin", "0")),
        ("onnx_external_escapes.onnx", external("../models/textbook_x.npy", "0")),
        (
            "onnx_unsupported_ops.onnx",
            encode(&model(
                13,
                vec![
                    node("shape", "Shape", &["x"], &["s"], vec![]),
                    node("g1", "Gather", &["s", "s"], &["t"], vec![]),
                    node("g2", "Gather", &["x", "t"], &["y"], vec![]),
                ],
                vec![],
                x(),
                &["y"],
            )),
        ),
    ]
}

#[test]
fn invalid_examples_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/invalid");
    for (name, bytes) in invalid_examples() {
        let path = dir.join(name);
        if std::env::var_os("STRIDER_WRITE_EXAMPLES").is_some() {
            std::fs::write(&path, &bytes).unwrap();
        }
        let on_disk =
            std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e} (STRIDER_WRITE_EXAMPLES=1 writes it)"));
        assert!(on_disk == bytes, "{name} differs from what this test builds (STRIDER_WRITE_EXAMPLES=1 rewrites it)");
        assert!(import::load(&path, &ImportOptions::default()).is_err(), "{name} loads");
    }
}
