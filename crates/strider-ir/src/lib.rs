//! Strider's graph IR: the operator set with ONNX semantics ([`op`]), shapes ([`shape`]), validated
//! graphs ([`graph`]) and the RON model format ([`mod@format`]).
//!
//! ```
//! use strider_ir::{format, Limits};
//! let text = r#"(name: "tiny", inputs: [(name: "x", shape: [1, 1, 2, 2])],
//!   initializers: [(name: "k", shape: [1, 1, 2, 2], data: Inline([0.0, 1.0, 2.0, 3.0]))],
//!   nodes: [(name: "up", op: ConvTranspose(strides: [1, 1]), inputs: ["x", "k"], outputs: ["y"])],
//!   outputs: ["y"])"#;
//! let graph = format::parse(text, std::path::Path::new("."), &Limits::default()).unwrap();
//! let y = graph.value_id("y").unwrap();
//! assert_eq!(graph.shape(y).dims(), [1, 1, 3, 3]);
//! ```

pub mod alloc;
pub mod data;
pub mod error;
pub mod format;
pub mod graph;
pub mod npy;
pub mod op;
pub mod output;
pub mod seeded;
pub mod shape;

pub use data::DataSpec;
pub use error::{Error, Result, Subject};
pub use graph::{Graph, GraphBuilder, Initializer, Limits, Node, NodeId, Producer, Value, ValueId};
pub use op::Op;
pub use shape::{DType, Layout, Shape, TensorType};
