//! Inputs the fuzz targets (fuzz/, see "Fuzzing" in the README) found crashing, kept so that none can
//! come back: each one now ends in a clean error. The files live in tests/fuzz_regressions/.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use strider::ir::npy;

fn regression(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions").join(name)
}

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(regression(name)).unwrap()
}

/// Version 2.0 with a header length of 0xFF616876: reading the header asked for 4 GiB.
#[test]
fn npy_header_claiming_4_gib_is_refused() {
    let data = bytes("npy_header_claims_4gib.npy");
    assert_eq!(data.len(), 24);
    let expected = "x.npy is not a .npy file: its header claims 4284573814 bytes, more than the 10000 accepted";
    assert_eq!(npy::read_header(&mut Cursor::new(&data), "x.npy").unwrap_err(), expected);
    assert_eq!(npy::read_f32_from(Cursor::new(&data), "x.npy", &[2, 1, 2, 2]).unwrap_err(), expected);
    let path = regression("npy_header_claims_4gib.npy");
    let from_file = npy::read_f32(&path, &[1]).unwrap_err();
    assert!(from_file.ends_with("its header claims 4284573814 bytes, more than the 10000 accepted"), "{from_file}");
}

/// A version-1 header of 118 bytes holding 45 `{`: the header parser (py_literal) backtracked for over 10 s.
#[test]
fn npy_header_with_deeply_nested_brackets_is_refused_at_once() {
    let data = bytes("npy_header_nested_brackets.npy");
    assert_eq!(data.len(), 178);
    let started = std::time::Instant::now();
    let expected = "x.npy is not a .npy file: its header nests brackets deeper than 4 (a .npy header is a flat dict)";
    assert_eq!(npy::read_header(&mut Cursor::new(&data), "x.npy").unwrap_err(), expected);
    assert_eq!(npy::read_f32_from(Cursor::new(&data), "x.npy", &[2, 1, 2, 2]).unwrap_err(), expected);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

/// A ConvMatrix with no weight channels (an empty matrix, so validation passes) whose output
/// positions, 2³¹ − 1 per axis, overflow a count: building its per-output lists panicked
/// ("capacity overflow"). Now a clean allocation error, exit 3.
#[test]
fn conv_matrix_with_uncountable_outputs_is_an_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strider"))
        .arg("run")
        .arg(regression("conv_matrix_uncountable_outputs.ron"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("node `c` (ConvMatrix): cannot allocate"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
