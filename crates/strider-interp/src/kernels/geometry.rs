//! Convolution geometry as the loop nests use it: every spatial rank padded to three axes (leading
//! axes of size 1), so one loop nest serves 1-D, 2-D and 3-D; and the index ranges where a kernel tap
//! stays inside the input (Conv) or the output (ConvTranspose), so inner loops need no bounds tests.

use std::ops::Range;

use strider_ir::op::AxisGeometry;

use super::KernelError;

/// Spatial axes handled by the loop nests; lower ranks are padded with unit axes.
pub const RANK: usize = 3;

/// Geometry padded to three spatial axes.
pub fn padded(geometry: &[AxisGeometry]) -> Result<[AxisGeometry; RANK], KernelError> {
    if geometry.len() > RANK || geometry.is_empty() {
        return Err(KernelError::Unsupported(format!(
            "spatial rank {} (the interpreter handles 1 to 3)",
            geometry.len()
        )));
    }
    let unit = AxisGeometry {
        input: 1,
        output: 1,
        kernel: 1,
        stride: 1,
        dilation: 1,
        pad_begin: 0,
        pad_end: 0,
        output_padding: 0,
    };
    let mut out = [unit; RANK];
    out[RANK - geometry.len()..].copy_from_slice(geometry);
    Ok(out)
}

/// Product of one field over the three axes (input, output or kernel elements).
pub fn volume(g: &[AxisGeometry; RANK], f: impl Fn(&AxisGeometry) -> usize) -> usize {
    g.iter().map(f).product()
}

/// The kernel tap with row-major index `k` as an index on each of the three axes.
pub fn tap_of(g: &[AxisGeometry; RANK], k: usize) -> [usize; RANK] {
    [k / (g[1].kernel * g[2].kernel), (k / g[2].kernel) % g[1].kernel, k % g[2].kernel]
}

/// Offset of tap `k` relative to `index · stride`: k·dilation − pad_begin.
fn offset(a: &AxisGeometry, k: usize) -> i64 {
    (k * a.dilation) as i64 - a.pad_begin
}

/// The indices j in [0, count) for which j·stride + e lies in [0, limit).
fn inside(count: usize, stride: usize, e: i64, limit: usize) -> Range<usize> {
    let s = stride as i64;
    // j·s + e ≥ 0  ⇔  j ≥ ⌈−e / s⌉;  j·s + e < limit  ⇔  j < ⌈(limit − e) / s⌉.
    let lo = (-e).div_euclid(s) + i64::from((-e).rem_euclid(s) != 0);
    let hi = (limit as i64 - e).div_euclid(s) + i64::from((limit as i64 - e).rem_euclid(s) != 0);
    let (lo, hi) = (lo.clamp(0, count as i64) as usize, hi.clamp(0, count as i64) as usize);
    lo..hi.max(lo)
}

/// Conv: the outputs o whose input index o·stride + k·dilation − pad_begin lies inside the input.
pub fn conv_outputs_inside(a: &AxisGeometry, k: usize) -> Range<usize> {
    inside(a.output, a.stride, offset(a, k), a.input)
}

/// Conv: the input index output `o` reads through tap `k`, if inside the input.
pub fn conv_source(a: &AxisGeometry, o: usize, k: usize) -> Option<usize> {
    let i = (o * a.stride) as i64 + offset(a, k);
    (0..a.input as i64).contains(&i).then_some(i as usize)
}

/// ConvTranspose: the output index input `i` reaches through tap `k`, if inside the output.
pub fn transpose_target(a: &AxisGeometry, i: usize, k: usize) -> Option<usize> {
    let o = (i * a.stride) as i64 + offset(a, k);
    (0..a.output as i64).contains(&o).then_some(o as usize)
}

/// ConvTranspose: the input index whose tap `k` reaches output `o`, if any (o = i·stride + k·dilation − pad).
pub fn transpose_source(a: &AxisGeometry, o: usize, k: usize) -> Option<usize> {
    let t = o as i64 - offset(a, k);
    let s = a.stride as i64;
    (t >= 0 && t % s == 0 && t / s < a.input as i64).then_some((t / s) as usize)
}

/// Tap `k` along an axis split into phases (index mod stride), with e = k·d − pad: ConvTranspose sends
/// input i to output i·s + e, which is position i + ⌊e/s⌋ of output phase e mod s; Conv reads output
/// o from input o·s + e, which is position o + ⌊e/s⌋ of input phase e mod s. Returns (e mod s, ⌊e/s⌋).
pub fn tap_phase(a: &AxisGeometry, k: usize) -> (usize, i64) {
    let (e, s) = (offset(a, k), a.stride as i64);
    (e.rem_euclid(s) as usize, e.div_euclid(s))
}

/// Starts of each phase's run in a phase-major line of `len` elements split by `stride` (and the
/// line's end): phase r occupies `starts[r]..starts[r + 1]`.
pub fn phase_starts(len: usize, stride: usize) -> Vec<usize> {
    let mut starts = Vec::with_capacity(stride + 1);
    let mut at = 0;
    for r in 0..stride {
        starts.push(at);
        at += phase_len(len, stride, r);
    }
    starts.push(at);
    starts
}

/// Where a tap sends the inputs `inputs` of a line into a phase-major line laid out by `starts`,
/// given the tap's phase r and shift q ([`tap_phase`]: input i lands at position i + q of phase r):
/// the inputs that land inside the phase, and the index of the first one's place.
pub fn phase_run(starts: &[usize], (r, q): (usize, i64), inputs: Range<usize>) -> Option<(Range<usize>, usize)> {
    let len = (starts[r + 1] - starts[r]) as i64;
    let (lo, hi) = ((inputs.start as i64).max(-q), (inputs.end as i64).min(len - q));
    (lo < hi).then(|| (lo as usize..hi as usize, starts[r] + (lo + q) as usize))
}

/// Number of outputs o in [0, output) with o ≡ r (mod stride).
pub fn phase_len(output: usize, stride: usize, r: usize) -> usize {
    if r >= output { 0 } else { (output - r).div_ceil(stride) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(input: usize, output: usize, kernel: usize, stride: usize, dilation: usize, pad: i64) -> AxisGeometry {
        AxisGeometry { input, output, kernel, stride, dilation, pad_begin: pad, pad_end: 0, output_padding: 0 }
    }

    #[test]
    fn ranges_agree_with_the_pointwise_maps() {
        for a in [axis(5, 9, 4, 2, 1, 1), axis(4, 13, 3, 3, 2, -2), axis(7, 3, 3, 2, 2, 3), axis(1, 1, 1, 1, 1, 0)] {
            for k in 0..a.kernel {
                let conv: Vec<usize> = (0..a.output).filter(|&o| conv_source(&a, o, k).is_some()).collect();
                assert_eq!(conv, conv_outputs_inside(&a, k).collect::<Vec<_>>(), "{a:?} k {k}");
                for i in 0..a.input {
                    if let Some(o) = transpose_target(&a, i, k) {
                        assert_eq!(transpose_source(&a, o, k), Some(i));
                        let (r, q) = tap_phase(&a, k);
                        assert_eq!((o % a.stride, o / a.stride), (r, (i as i64 + q) as usize));
                    }
                }
            }
        }
        assert_eq!((0..3).map(|r| phase_len(7, 3, r)).collect::<Vec<_>>(), [3, 2, 2]);
    }
}
