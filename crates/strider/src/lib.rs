//! Strider: an optimizer for operator graphs built around transposed convolution.
//!
//! This crate is the `strider` command-line tool and a facade over the libraries:
//! - [`ir`]: the graph IR, ops with ONNX semantics, shape inference and the RON model format;
//! - [`interp`]: the reference interpreter;
//! - [`rewrite`]: the e-graph rewrite engine, cost models and extraction;
//! - [`check`]: cross-checks of every lowering against the original;
//! - [`onnx`]: ONNX import and export, and `TensorProto` files.
//!
//! ```
//! use std::collections::HashMap;
//! use strider::{interp, ir};
//! let text = r#"(name: "textbook", inputs: [(name: "x", shape: [1, 1, 2, 2])],
//!   initializers: [(name: "k", shape: [1, 1, 2, 2], data: Inline([0.0, 1.0, 2.0, 3.0]))],
//!   nodes: [(name: "up", op: ConvTranspose(), inputs: ["x", "k"], outputs: ["y"])],
//!   outputs: ["y"])"#;
//! let graph = ir::format::parse(text, std::path::Path::new("."), &ir::Limits::default()).unwrap();
//! let x = ndarray::ArrayD::from_shape_vec(vec![1, 1, 2, 2], vec![0.0, 1.0, 2.0, 3.0]).unwrap();
//! let outputs = interp::run(&graph, &HashMap::from([("x".to_string(), x)])).unwrap();
//! assert_eq!(outputs[0].1.as_slice().unwrap(), &[0., 0., 1., 0., 4., 6., 4., 12., 9.]);
//! ```

pub use strider_check as check;
pub use strider_interp as interp;
pub use strider_ir as ir;
pub use strider_onnx as onnx;
pub use strider_rewrite as rewrite;
