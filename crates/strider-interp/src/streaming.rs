//! Non-temporal ("streaming") stores, for kernels that write an output much larger than the cache in
//! short scattered runs. An ordinary store first reads the line it writes into the cache (a
//! read-for-ownership) and later writes it back; a streaming store sends the data straight to memory.
//! Measured on the FCN-32s sub-pixel copy-out (runs of 16 values into a 22 MB output): 7.6 ms with
//! ordinary stores, 1.6 ms with streaming ones. Data written this way is not in the cache afterwards,
//! so it only pays for outputs that would not have stayed there anyway ([`worth_streaming`]).
//!
//! Besides `gemm.rs`, this is the only module with `unsafe`: the SSE intrinsics take raw pointers,
//! and the safe functions below check bounds and alignment before calling them.
#![allow(unsafe_code)]

/// Outputs at least this large (bytes) are written with streaming stores: well past the L2 and
/// most of the L3 cache, so the next reader would miss anyway.
const STREAM_BYTES: usize = 8 << 20;

/// Whether an output of `elements` values is large enough to be written with streaming stores.
pub fn worth_streaming(elements: usize) -> bool {
    elements.saturating_mul(size_of::<f32>()) >= STREAM_BYTES
}

/// `dst[i] = src[i] (+ bias[i])` for i < dst.len(), through streaming stores where `dst` is 16-byte
/// aligned (ordinary stores before the first aligned element and after the last whole group of 4).
/// The thread that called it must call [`fence`] before the values are read by anyone.
///
/// # Panics
/// If `src` or `bias` is shorter than `dst` (a kernel's indexing bug, as with slice indexing).
pub fn store(dst: &mut [f32], src: &[f32], bias: Option<&[f32]>) {
    let n = dst.len();
    let (src, bias) = (&src[..n], bias.map(|b| &b[..n]));
    // Elements before the first 16-byte boundary (align_offset may also answer "never": then none
    // are streamed).
    let head = dst.as_ptr().align_offset(16).min(n);
    let body_end = head + (n - head) / 4 * 4;
    for part in [0..head, body_end..n] {
        ordinary(&mut dst[part.clone()], &src[part.clone()], bias.map(|b| &b[part]));
    }
    stream_body(&mut dst[head..body_end], &src[head..body_end], bias.map(|b| &b[head..body_end]));
}

/// `dst = src (+ bias)` with ordinary stores.
fn ordinary(dst: &mut [f32], src: &[f32], bias: Option<&[f32]>) {
    match bias {
        Some(b) => dst.iter_mut().zip(src.iter().zip(b)).for_each(|(d, (&v, &b))| *d = v + b),
        None => dst.copy_from_slice(src),
    }
}

/// Orders this thread's streaming stores before everything it does next (they are weakly ordered,
/// and Rust's memory model requires the fence before the memory is accessed again).
pub fn fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of the x86_64 baseline; the fence has no memory operands.
    unsafe {
        std::arch::x86_64::_mm_sfence();
    }
}

/// Streams `src (+ bias)` into `dst`, whose start is 16-byte aligned and whose length is a multiple
/// of 4; `src` and `bias` have `dst`'s length.
#[cfg(target_arch = "x86_64")]
fn stream_body(dst: &mut [f32], src: &[f32], bias: Option<&[f32]>) {
    use std::arch::x86_64::{_mm_add_ps, _mm_loadu_ps, _mm_stream_ps};
    // An empty body (a run shorter than the distance to the next boundary) stores nothing, wherever
    // it starts.
    debug_assert!(
        dst.is_empty() || (dst.len() % 4 == 0 && src.len() == dst.len() && (dst.as_ptr() as usize) % 16 == 0)
    );
    for (i, (d, s)) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)).enumerate() {
        // SAFETY: `d` and `s` are 4 in-bounds elements; `d` starts 16·i bytes after `dst`'s 16-byte
        // aligned start, so it is aligned as `_mm_stream_ps` requires; SSE is baseline on x86_64.
        unsafe {
            let mut v = _mm_loadu_ps(s.as_ptr());
            if let Some(b) = bias {
                v = _mm_add_ps(v, _mm_loadu_ps(b[4 * i..4 * i + 4].as_ptr()));
            }
            _mm_stream_ps(d.as_mut_ptr(), v);
        }
    }
}

/// Without streaming stores: ordinary ones.
#[cfg(not(target_arch = "x86_64"))]
fn stream_body(dst: &mut [f32], src: &[f32], bias: Option<&[f32]>) {
    ordinary(dst, src, bias);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_match_ordinary_copies_at_every_alignment_and_length() {
        let src: Vec<f32> = (0..64).map(|v| v as f32 * 0.5 - 3.0).collect();
        let bias: Vec<f32> = (0..64).map(|v| (v % 5) as f32).collect();
        for start in 0..4 {
            for len in 0..40 {
                for with_bias in [false, true] {
                    let mut out = vec![f32::NAN; 64];
                    let b = with_bias.then(|| &bias[start..]);
                    store(&mut out[start..start + len], &src[start..], b);
                    fence();
                    for (i, &v) in out.iter().enumerate() {
                        let inside = (start..start + len).contains(&i);
                        let want = src[i] + if with_bias { bias[i] } else { 0.0 };
                        if inside {
                            assert_eq!(v, want, "start {start} len {len} bias {with_bias} at {i}");
                        } else {
                            assert!(v.is_nan(), "wrote outside the run at {i}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn only_outputs_larger_than_the_cache_stream() {
        assert!(!worth_streaming(1 << 20));
        assert!(worth_streaming(21 * 512 * 512));
        assert!(worth_streaming(usize::MAX));
    }
}
