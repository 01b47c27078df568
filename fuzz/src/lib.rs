//! What the fuzz targets share: the tight limits they run under and the folder that relative weight
//! paths resolve against.

use std::path::{Path, PathBuf};

use strider_ir::{Graph, Limits};

/// The element cap of every target: small enough that a run takes milliseconds, large enough for the
/// example models' shapes after a few mutations.
pub const LIMITS: Limits = Limits { max_elements: 1 << 14 };

/// Where `Npy("…")` paths and ONNX external data resolve: `examples/invalid`, which holds a few `.npy` files.
pub fn base_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/invalid")
}

/// The model in `data` (RON text), or `None` when it is not UTF-8 or not a valid model.
pub fn parse_model(data: &[u8]) -> Option<Graph> {
    let text = std::str::from_utf8(data).ok()?;
    strider_ir::format::parse(text, &base_dir(), &LIMITS).ok()
}
