//! Direct kernels for convolutions whose groups have few channels (depthwise and the like), where a
//! GEMM per group would be a tiny, inefficient product. They work one output line (the innermost
//! axis, fixed leading indices) at a time and split that line by phase (index mod stride), so every
//! tap becomes a contiguous multiply-add over a run of elements that the compiler vectorizes.
//! Output planes are independent and run in parallel.

use rayon::prelude::*;
use strider_ir::op::AxisGeometry;

use super::geometry::{
    RANK, conv_outputs_inside, conv_source, phase_run, phase_starts, tap_phase, transpose_source, volume,
};
use super::{Ctx, KernelError, grain};

/// Whether a convolution with `cg` input and `mg` output channels per group runs faster directly than
/// as GEMMs (measured: below about 16 channel pairs per group the GEMMs are too small to pay off).
pub fn prefers_direct(cg: usize, mg: usize) -> bool {
    cg * mg <= 16
}

/// `dst[j] += w · src[j]`.
fn axpy(dst: &mut [f32], w: f32, src: &[f32]) {
    dst.iter_mut().zip(src).for_each(|(d, &s)| *d += w * s);
}

/// Dimensions of a direct call: batch, input channels, output channels, groups.
type Dims = [usize; 4];

/// ConvTranspose, directly: for each output line, every (channel, leading tap) whose input line
/// reaches it adds each innermost tap into the line's phase-major accumulator; then the phases are
/// interleaved into the output with the bias.
pub fn conv_transpose(
    ctx: &mut Ctx,
    g: &[AxisGeometry; RANK],
    xs: &[f32],
    ws: &[f32],
    bias: Option<&[f32]>,
    [n, c, m, groups]: Dims,
) -> Result<Vec<f32>, KernelError> {
    let (cg, mg) = (c / groups, m / groups);
    let (in_len, out_len, k_len) = (volume(g, |a| a.input), volume(g, |a| a.output), volume(g, |a| a.kernel));
    let (inner, s) = (&g[2], g[2].stride);
    let starts = phase_starts(inner.output, s);
    let taps: Vec<(usize, i64)> = (0..inner.kernel).map(|k| tap_phase(inner, k)).collect();
    let mut y = ctx.output(n * m * out_len)?;
    y.par_chunks_mut(out_len.max(1)).enumerate().with_min_len(grain(out_len * cg * k_len)).for_each(
        |(plane_index, plane)| {
            let (b, mo) = (plane_index / m, plane_index % m);
            let (grp, mi) = (mo / mg, mo % mg);
            let base = bias.map_or(0.0, |bias| bias[mo]);
            let mut acc = vec![0f32; inner.output];
            for (line, y_line) in plane.chunks_mut(inner.output.max(1)).enumerate() {
                let (oa, ob) = (line / g[1].output, line % g[1].output);
                acc.fill(0.0);
                for ci in 0..cg {
                    let ch = grp * cg + ci;
                    let xc = &xs[(b * c + ch) * in_len..][..in_len];
                    let wk = &ws[(ch * mg + mi) * k_len..][..k_len];
                    for ka in 0..g[0].kernel {
                        let Some(ia) = transpose_source(&g[0], oa, ka) else { continue };
                        for kb in 0..g[1].kernel {
                            let Some(ib) = transpose_source(&g[1], ob, kb) else { continue };
                            let x_line = &xc[(ia * g[1].input + ib) * inner.input..][..inner.input];
                            let w_row = &wk[(ka * g[1].kernel + kb) * inner.kernel..][..inner.kernel];
                            for (&tap, &wv) in taps.iter().zip(w_row) {
                                if let Some((inputs, at)) = phase_run(&starts, tap, 0..inner.input) {
                                    axpy(&mut acc[at..at + inputs.len()], wv, &x_line[inputs]);
                                }
                            }
                        }
                    }
                }
                for r in 0..s {
                    let run = &acc[starts[r]..starts[r + 1]];
                    y_line.iter_mut().skip(r).step_by(s).zip(run).for_each(|(d, &v)| *d = v + base);
                }
            }
        },
    );
    Ok(y)
}

/// Conv, directly: each output line starts at the bias and, for every (channel, leading tap) whose
/// input line it reads, adds each innermost tap as a shifted run of that line (split by phase first
/// when strided, so the run is contiguous).
pub fn conv(
    ctx: &mut Ctx,
    g: &[AxisGeometry; RANK],
    xs: &[f32],
    ws: &[f32],
    bias: Option<&[f32]>,
    [n, c, m, groups]: Dims,
) -> Result<Vec<f32>, KernelError> {
    let (cg, mg) = (c / groups, m / groups);
    let (in_len, out_len, k_len) = (volume(g, |a| a.input), volume(g, |a| a.output), volume(g, |a| a.kernel));
    let (inner, s) = (&g[2], g[2].stride);
    let starts = phase_starts(inner.input, s);
    // Per tap: its phase and shift, and the outputs whose input stays inside the line.
    let taps: Vec<((usize, i64), std::ops::Range<usize>)> =
        (0..inner.kernel).map(|k| (tap_phase(inner, k), conv_outputs_inside(inner, k))).collect();
    let mut y = ctx.output(n * m * out_len)?;
    y.par_chunks_mut(out_len.max(1)).enumerate().with_min_len(grain(out_len * cg * k_len)).for_each(
        |(plane_index, plane)| {
            let (b, mo) = (plane_index / m, plane_index % m);
            let grp = mo / mg;
            let base = bias.map_or(0.0, |bias| bias[mo]);
            let mut phased = vec![0f32; inner.input];
            for (line, y_line) in plane.chunks_mut(inner.output.max(1)).enumerate() {
                let (oa, ob) = (line / g[1].output, line % g[1].output);
                y_line.fill(base);
                for ci in 0..cg {
                    let xc = &xs[(b * c + grp * cg + ci) * in_len..][..in_len];
                    let wk = &ws[(mo * cg + ci) * k_len..][..k_len];
                    for ka in 0..g[0].kernel {
                        let Some(ia) = conv_source(&g[0], oa, ka) else { continue };
                        for kb in 0..g[1].kernel {
                            let Some(ib) = conv_source(&g[1], ob, kb) else { continue };
                            let x_line = &xc[(ia * g[1].input + ib) * inner.input..][..inner.input];
                            let source = if s == 1 {
                                x_line
                            } else {
                                for r in 0..s {
                                    let run = &mut phased[starts[r]..starts[r + 1]];
                                    run.iter_mut().zip(x_line.iter().skip(r).step_by(s)).for_each(|(d, &v)| *d = v);
                                }
                                &phased[..]
                            };
                            let w_row = &wk[(ka * g[1].kernel + kb) * inner.kernel..][..inner.kernel];
                            for (((r, q), inside), &wv) in taps.iter().zip(w_row) {
                                if inside.is_empty() {
                                    continue;
                                }
                                // Output o reads position o + q of input phase r.
                                let at = starts[*r] + (inside.start as i64 + q) as usize;
                                axpy(&mut y_line[inside.clone()], wv, &source[at..at + inside.len()]);
                            }
                        }
                    }
                }
            }
        },
    );
    Ok(y)
}
