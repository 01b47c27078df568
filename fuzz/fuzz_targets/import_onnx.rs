//! ONNX bytes → decode → import under tight limits.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use strider_onnx::ImportOptions;
use strider_onnx::import::{decode, import};

fuzz_target!(|data: &[u8]| {
    let Ok(model) = decode(data, Path::new("fuzz.onnx")) else { return };
    let options = ImportOptions { limits: strider_fuzz::LIMITS, ..ImportOptions::default() };
    let _ = import(&model, &strider_fuzz::base_dir(), &options);
});
