//! Column-to-image scatter: the second half of ConvTranspose as GEMM + col2im (what onnxruntime and
//! PyTorch do), and the ONNX `Col2Im` op. Each column row (output channel, tap) adds its values into
//! the output at i·stride + tap·dilation − pad; output channels are independent, so they run in
//! parallel and the sum order per element never depends on the thread count.

use ndarray::{ArrayD, ArrayViewD};
use rayon::prelude::*;
use strider_ir::op::{AxisGeometry, Col2ImAttrs};

use super::geometry::{RANK, padded, phase_run, phase_starts, tap_phase, transpose_source, volume};
use super::{Ctx, KernelError, array, contiguous, grain};

/// Adds a block of columns into the output planes. `cols` has one row per (plane, tap) — planes
/// outermost — and one column per input position in `positions`; `planes` holds one output plane of
/// ∏output elements per row group.
///
/// Rather than scattering each column row with strided writes, it gathers per output line: every
/// (leading tap, input line) that reaches the line adds its innermost taps as contiguous runs into a
/// phase-major accumulator (one run per output phase, index mod stride), and the line is then
/// interleaved from the accumulator in one pass. Which runs reach which line is the same for every
/// plane, so it is worked out once ([`scatter_plan`]).
pub(crate) fn scatter_add(
    g: &[AxisGeometry; RANK],
    cols: &[f32],
    positions: std::ops::Range<usize>,
    planes: &mut [f32],
) {
    let (width, k_len, out_len) = (positions.len(), volume(g, |a| a.kernel), volume(g, |a| a.output));
    if width == 0 || out_len == 0 {
        return;
    }
    let inner = &g[2];
    let starts = phase_starts(inner.output, inner.stride);
    let (lines, runs) = scatter_plan(g, &positions, &starts);
    planes.par_chunks_mut(out_len).zip(cols.par_chunks(k_len * width)).with_min_len(grain(k_len * width)).for_each(
        |(plane, rows)| {
            let mut acc = vec![0f32; if inner.stride == 1 { 0 } else { inner.output }];
            for line in &lines {
                let y_line = &mut plane[line.offset..][..inner.output];
                let runs = &runs[line.runs.clone()];
                if inner.stride == 1 {
                    // One phase: the accumulator's layout is the line's own.
                    for run in runs {
                        add(&mut y_line[run.at..][..run.len], &rows[run.src..][..run.len]);
                    }
                    continue;
                }
                acc.fill(0.0);
                for run in runs {
                    add(&mut acc[run.at..][..run.len], &rows[run.src..][..run.len]);
                }
                interleave_add(&acc, &starts, y_line);
            }
        },
    );
}

/// `dst += src`, element by element.
fn add(dst: &mut [f32], src: &[f32]) {
    dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v);
}

/// `line[j·s + r] += acc[starts[r] + j]` for every phase r: a phase-major accumulator added into its
/// line. Stride 2 (the usual up-sampling) pairs the two phases so the loop vectorizes.
fn interleave_add(acc: &[f32], starts: &[usize], line: &mut [f32]) {
    let s = starts.len() - 1;
    if s == 2 {
        let (even, odd) = acc.split_at(starts[1]);
        let mut pairs = line.chunks_exact_mut(2);
        for (pair, (&e, &o)) in (&mut pairs).zip(even.iter().zip(odd)) {
            pair[0] += e;
            pair[1] += o;
        }
        if let (Some(last), Some(&e)) = (pairs.into_remainder().first_mut(), even.last()) {
            *last += e;
        }
        return;
    }
    for (j, chunk) in line.chunks_mut(s).enumerate() {
        for (r, d) in chunk.iter_mut().enumerate() {
            *d += acc[starts[r] + j];
        }
    }
}

/// Where one column row adds into one output line: `len` values from offset `src` of the plane's
/// block of rows go to `at..at + len` of the line's phase-major accumulator.
#[derive(Clone, Copy, Debug)]
struct Run {
    src: usize,
    at: usize,
    len: usize,
}

/// An output line (its offset in the plane) and its runs (a range of the plan's runs).
#[derive(Clone, Debug)]
struct LineRuns {
    offset: usize,
    runs: std::ops::Range<usize>,
}

/// The runs of every output line a block of positions reaches. The geometry is the same for every
/// plane, so it is worked out once per block and the per-plane loop only adds runs.
fn scatter_plan(
    g: &[AxisGeometry; RANK],
    positions: &std::ops::Range<usize>,
    starts: &[usize],
) -> (Vec<LineRuns>, Vec<Run>) {
    let width = positions.len();
    let (in1, in2, inner) = (g[1].input, g[2].input, &g[2]);
    let taps: Vec<(usize, i64)> = (0..inner.kernel).map(|k| tap_phase(inner, k)).collect();
    // Output lines the block can reach: those of the input lines it covers, widened by the kernel.
    let (first_line, last_line) = (positions.start / in2, (positions.end - 1) / in2);
    let reach = |a: &AxisGeometry, lo: usize, hi: usize| {
        let begin = (lo * a.stride) as i64 - a.pad_begin;
        let end = (hi * a.stride + (a.kernel - 1) * a.dilation) as i64 - a.pad_begin;
        (begin.max(0) as usize, (end + 1).clamp(0, a.output as i64) as usize)
    };
    let (oa_lo, oa_hi) = reach(&g[0], first_line / in1, last_line / in1);
    let (ob_lo, ob_hi) = if first_line / in1 == last_line / in1 {
        reach(&g[1], first_line % in1, last_line % in1)
    } else {
        (0, g[1].output)
    };
    let (mut lines, mut runs) = (Vec::new(), Vec::new());
    for oa in oa_lo..oa_hi {
        for ob in ob_lo..ob_hi {
            let first = runs.len();
            for ka in 0..g[0].kernel {
                let Some(ia) = transpose_source(&g[0], oa, ka) else { continue };
                for kb in 0..g[1].kernel {
                    let Some(ib) = transpose_source(&g[1], ob, kb) else { continue };
                    // The part of input line (ia, ib) inside this block.
                    let line_start = (ia * in1 + ib) * in2;
                    let i_lo = positions.start.saturating_sub(line_start).min(in2);
                    let i_hi = positions.end.saturating_sub(line_start).min(in2);
                    if i_lo >= i_hi {
                        continue;
                    }
                    for (kc, &tap) in taps.iter().enumerate() {
                        if let Some((inputs, at)) = phase_run(starts, tap, i_lo..i_hi) {
                            let row = (ka * g[1].kernel + kb) * inner.kernel + kc;
                            let src = row * width + line_start + inputs.start - positions.start;
                            runs.push(Run { src, at, len: inputs.len() });
                        }
                    }
                }
            }
            if runs.len() > first {
                lines.push(LineRuns { offset: (oa * g[1].output + ob) * inner.output, runs: first..runs.len() });
            }
        }
    }
    (lines, runs)
}

/// ONNX Col2Im: out[n, c, p·s − pad + b·d] += x[n, c·∏block + b, p] over block offsets b and
/// positions p (multi-indices, row-major).
pub fn col2im(
    ctx: &mut Ctx,
    x: &ArrayViewD<f32>,
    attrs: &Col2ImAttrs,
    out_shape: &[usize],
) -> Result<ArrayD<f32>, KernelError> {
    let axes = attrs.axes()?;
    let geometry: Vec<AxisGeometry> = axes
        .iter()
        .map(|a| AxisGeometry {
            input: a.positions,
            output: a.image,
            kernel: a.block,
            stride: a.stride,
            dilation: a.dilation,
            pad_begin: a.pad_begin as i64,
            pad_end: a.pad_end as i64,
            output_padding: 0,
        })
        .collect();
    let g = padded(&geometry)?;
    let (n, c) = (out_shape[0], out_shape[1]);
    let (positions, plane) = (volume(&g, |a| a.input), volume(&g, |a| a.output));
    let xs = contiguous(x);
    let mut y = ctx.output_zeros(n * c * plane)?;
    for b in 0..n {
        let cols = &xs[b * c * volume(&g, |a| a.kernel) * positions..];
        scatter_add(&g, cols, 0..positions, &mut y[b * c * plane..][..c * plane]);
    }
    array(out_shape, y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn blocks_of_positions_add_up_to_the_whole() {
        let axis = |input: usize, kernel: usize, stride: usize, dilation: usize, pad_begin: i64| {
            let output = ((input - 1) * stride + (kernel - 1) * dilation + 1) as i64 - 2 * pad_begin;
            AxisGeometry {
                input,
                output: output as usize,
                kernel,
                stride,
                dilation,
                pad_begin,
                pad_end: pad_begin,
                output_padding: 0,
            }
        };
        let unit = axis(1, 1, 1, 1, 0);
        for g in [
            [unit, axis(5, 4, 2, 1, 1), axis(7, 4, 2, 1, 1)],
            [axis(3, 2, 2, 1, 0), axis(4, 3, 3, 2, 1), axis(6, 5, 4, 1, 2)],
            [unit, unit, axis(40, 16, 8, 1, 4)],
        ] {
            let (planes, k_len, in_len, out_len) =
                (2, volume(&g, |a| a.kernel), volume(&g, |a| a.input), volume(&g, |a| a.output));
            let cols: Vec<f32> = (0..planes * k_len * in_len).map(|v| (v % 13) as f32 - 6.0).collect();
            let mut whole = vec![0.5f32; planes * out_len];
            scatter_add(&g, &cols, 0..in_len, &mut whole);
            // The same columns in blocks that cut lines in the middle.
            let mut blocked = vec![0.5f32; planes * out_len];
            for start in (0..in_len).step_by(7) {
                let end = (start + 7).min(in_len);
                let block: Vec<f32> = (0..planes * k_len)
                    .flat_map(|row| cols[row * in_len + start..row * in_len + end].iter().copied())
                    .collect();
                scatter_add(&g, &block, start..end, &mut blocked);
            }
            for (a, b) in whole.iter().zip(&blocked) {
                assert!((a - b).abs() < 1e-4, "{g:?}: {a} vs {b}");
            }
            assert!(whole.iter().any(|&v| v != 0.5), "{g:?}: nothing was added");
        }
    }

    #[test]
    fn col2im_matches_onnx_example() {
        // ONNX Col2Im docs: (1, 5, 5) columns, image [5, 5], block [1, 5].
        let cols = [
            1., 6., 11., 16., 21., 2., 7., 12., 17., 22., 3., 8., 13., 18., 23., 4., 9., 14., 19., 24., 5., 0., 15.,
            20., 25.,
        ];
        let x = ArrayD::from_shape_vec(IxDyn(&[1, 5, 5]), cols.to_vec()).unwrap();
        let attrs = Col2ImAttrs {
            image_shape: vec![5, 5],
            block_shape: vec![1, 5],
            dilations: vec![],
            pads: vec![],
            strides: vec![],
        };
        let ctx = &mut Ctx::new(2);
        let y = col2im(ctx, &x.view(), &attrs, &[1, 1, 5, 5]).unwrap();
        let expected: Vec<f32> = (1..=25).map(|v| if v == 10 { 0. } else { v as f32 }).collect();
        assert_eq!(y.as_slice().unwrap(), expected.as_slice());
        // Overlapping blocks add up: a 3-long image from two 2-long blocks with stride 1.
        let x = ArrayD::from_shape_vec(IxDyn(&[1, 2, 2]), vec![1., 10., 100., 1000.]).unwrap();
        let attrs = Col2ImAttrs {
            image_shape: vec![3],
            block_shape: vec![2],
            dilations: vec![],
            pads: vec![],
            strides: vec![],
        };
        let y = col2im(ctx, &x.view(), &attrs, &[1, 1, 3]).unwrap();
        assert_eq!(y.as_slice().unwrap(), &[1., 110., 1000.]);
    }
}
