//! ONNX in and out for Strider: [`import`] reads an `.onnx` model into a validated
//! [`strider_ir::Graph`], [`export`] writes any graph — original or lowered — as standard ONNX, and
//! [`tensor`] reads and writes `TensorProto` files (the `.pb` inputs and outputs of ONNX test
//! directories). The protobuf messages are declared by hand in [`proto`] with prost's derives, so
//! building needs no `protoc`.
//!
//! ```
//! use strider_ir::{format, Limits};
//! let text = r#"(name: "tiny", inputs: [(name: "x", shape: [1, 1, 2, 2])],
//!   initializers: [(name: "k", shape: [1, 1, 2, 2], data: Inline([0.0, 1.0, 2.0, 3.0]))],
//!   nodes: [(name: "up", op: ConvTranspose(strides: [2, 2]), inputs: ["x", "k"], outputs: ["y"])],
//!   outputs: ["y"])"#;
//! let graph = format::parse(text, std::path::Path::new("."), &Limits::default()).unwrap();
//! let model = strider_onnx::export::export(&graph, &Default::default()).unwrap();
//! let again = strider_onnx::import::import(&model, std::path::Path::new("."), &Default::default()).unwrap();
//! assert_eq!(again.shape(again.value_id("y").unwrap()).dims(), [1, 1, 4, 4]);
//! ```

pub mod error;
pub mod export;
pub mod import;
pub mod proto;
pub mod tensor;

pub use error::{Error, Result, UnsupportedOp};
pub use export::ExportOptions;
pub use import::ImportOptions;
