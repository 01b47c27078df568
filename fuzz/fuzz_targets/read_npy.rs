//! `.npy` bytes → an f32 array, with a fixed shape and with the shape the header declares (when small).
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use strider_ir::npy::{read_f32_from, read_header};

fuzz_target!(|data: &[u8]| {
    let _ = read_f32_from(Cursor::new(data), "fuzz.npy", &[2, 1, 2, 2]);
    // Callers check the declared shape against the element cap before reading; so does this target.
    let Ok(header) = read_header(&mut Cursor::new(data), "fuzz.npy") else { return };
    let count = header.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d.max(1)));
    if count.is_some_and(|n| n <= strider_fuzz::LIMITS.max_elements) {
        if let Ok(array) = read_f32_from(Cursor::new(data), "fuzz.npy", &header.shape) {
            assert_eq!(array.shape(), header.shape.as_slice());
        }
    }
});
