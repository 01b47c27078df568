//! `Conv` (im2col + one matrix product per group and column block) and `ConvTranspose` (the direct
//! scatter form, written from the definition: each input element adds its weighted kernel into the
//! output). Both pad the spatial rank to three (leading axes of size 1) so one loop nest serves ranks 1–3.

use ndarray::{Array2, ArrayD, ArrayViewD, IxDyn};
use strider_ir::Shape;
use strider_ir::op::{AxisGeometry, ConvAttrs, ConvTransposeAttrs};

use super::KernelError;

/// Spatial axes handled by the loop nests; lower ranks are padded with unit axes.
const RANK: usize = 3;

/// Upper bound on im2col block elements, so memory stays proportional to the layer, not to its square.
const IM2COL_BLOCK_ELEMENTS: usize = 1 << 22;

fn shape_of(a: &[usize]) -> Shape {
    Shape(a.to_vec())
}

/// Geometry padded to three spatial axes.
fn padded(geometry: &[AxisGeometry]) -> Result<[AxisGeometry; RANK], KernelError> {
    if geometry.len() > RANK {
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

fn spatial_len(g: &[AxisGeometry; RANK], f: impl Fn(&AxisGeometry) -> usize) -> usize {
    g.iter().map(f).product()
}

/// Conv: y = W ⋆ x (+ B), by im2col and a matrix product per group.
pub fn conv(attrs: &ConvAttrs, inputs: &[ArrayViewD<f32>]) -> Result<ArrayD<f32>, KernelError> {
    let (x, w) = (inputs[0].as_standard_layout(), inputs[1].as_standard_layout());
    let geometry = attrs.geometry(&shape_of(x.shape()), &shape_of(w.shape()))?;
    let g = padded(&geometry)?;
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let m = w.shape()[0];
    let groups = attrs.group;
    let (cg, mg) = (c / groups, m / groups);
    let in_len = spatial_len(&g, |a| a.input);
    let out_len = spatial_len(&g, |a| a.output);
    let k_len = spatial_len(&g, |a| a.kernel);
    let rows = cg * k_len;
    let xs = x.as_slice().ok_or(KernelError::Layout)?;
    let ws = w.as_slice().ok_or(KernelError::Layout)?;
    let mut y = vec![0f32; n * m * out_len];

    // Output axis-0 rows per im2col block.
    let plane = g[1].output * g[2].output;
    let block_rows = (IM2COL_BLOCK_ELEMENTS / (rows * plane).max(1)).clamp(1, g[0].output);

    for b in 0..n {
        for grp in 0..groups {
            let wg = Array2::from_shape_vec((mg, rows), ws[grp * mg * rows..(grp + 1) * mg * rows].to_vec())
                .map_err(|_| KernelError::Layout)?;
            let mut o0 = 0;
            while o0 < g[0].output {
                let o1 = (o0 + block_rows).min(g[0].output);
                let cols_n = (o1 - o0) * plane;
                let mut cols = Array2::<f32>::zeros((rows, cols_n));
                for ci in 0..cg {
                    let xc = &xs[(b * c + grp * cg + ci) * in_len..][..in_len];
                    for k0 in 0..g[0].kernel {
                        for k1 in 0..g[1].kernel {
                            for k2 in 0..g[2].kernel {
                                let row = ci * k_len + (k0 * g[1].kernel + k1) * g[2].kernel + k2;
                                let mut dst = cols.row_mut(row);
                                let mut col = 0;
                                for o_a in o0..o1 {
                                    let i_a = source(&g[0], o_a, k0);
                                    for o_b in 0..g[1].output {
                                        let i_b = source(&g[1], o_b, k1);
                                        for o_c in 0..g[2].output {
                                            let i_c = source(&g[2], o_c, k2);
                                            if let (Some(i_a), Some(i_b), Some(i_c)) = (i_a, i_b, i_c) {
                                                dst[col] = xc[(i_a * g[1].input + i_b) * g[2].input + i_c];
                                            }
                                            col += 1;
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                let prod = wg.dot(&cols);
                for mi in 0..mg {
                    let base = (b * m + grp * mg + mi) * out_len + o0 * plane;
                    y[base..base + cols_n].copy_from_slice(prod.row(mi).as_slice().ok_or(KernelError::Layout)?);
                }
                o0 = o1;
            }
        }
    }
    let mut out = ArrayD::from_shape_vec(IxDyn(&output_shape(n, m, &geometry)), y).map_err(|_| KernelError::Layout)?;
    add_bias(&mut out, inputs.get(2));
    Ok(out)
}

/// Input index that output `o` reads through kernel tap `k` on a Conv axis, if inside the input.
fn source(a: &AxisGeometry, o: usize, k: usize) -> Option<usize> {
    let i = (o * a.stride + k * a.dilation) as i64 - a.pad_begin;
    (0..a.input as i64).contains(&i).then_some(i as usize)
}

/// Output index that input `i` reaches through kernel tap `k` on a ConvTranspose axis, if inside the output.
fn target(a: &AxisGeometry, i: usize, k: usize) -> Option<usize> {
    let o = (i * a.stride + k * a.dilation) as i64 - a.pad_begin;
    (0..a.output as i64).contains(&o).then_some(o as usize)
}

fn output_shape(n: usize, m: usize, geometry: &[AxisGeometry]) -> Vec<usize> {
    let mut shape = vec![n, m];
    shape.extend(geometry.iter().map(|a| a.output));
    shape
}

fn add_bias(out: &mut ArrayD<f32>, bias: Option<&ArrayViewD<f32>>) {
    if let Some(bias) = bias {
        for (mut channel, &b) in out.axis_iter_mut(ndarray::Axis(1)).zip(bias.iter()) {
            channel += b;
        }
    }
}

/// All (input index, kernel tap, output index) triples of one ConvTranspose axis that land in the output.
pub(crate) fn scatter_triples(a: &AxisGeometry) -> Vec<(usize, usize, usize)> {
    (0..a.input).flat_map(|i| (0..a.kernel).filter_map(move |k| target(a, i, k).map(|o| (i, k, o)))).collect()
}

/// ConvTranspose from the definition: `y[n, g·M/g + m, o] = B[·] + Σ x[n, g·C/g + c, i] · W[g·C/g + c, m, k]`
/// over every (i, k) with o = i·stride + k·dilation − pad_begin. Positions nothing reaches hold the bias.
pub fn conv_transpose(attrs: &ConvTransposeAttrs, inputs: &[ArrayViewD<f32>]) -> Result<ArrayD<f32>, KernelError> {
    let (x, w) = (inputs[0].as_standard_layout(), inputs[1].as_standard_layout());
    let geometry = attrs.geometry(&shape_of(x.shape()), &shape_of(w.shape()))?;
    let g = padded(&geometry)?;
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let groups = attrs.group;
    let (cg, mg) = (c / groups, w.shape()[1]);
    let m = mg * groups;
    let in_len = spatial_len(&g, |a| a.input);
    let out_len = spatial_len(&g, |a| a.output);
    let k_len = spatial_len(&g, |a| a.kernel);
    let xs = x.as_slice().ok_or(KernelError::Layout)?;
    let ws = w.as_slice().ok_or(KernelError::Layout)?;
    let [ta, tb, tc] = [scatter_triples(&g[0]), scatter_triples(&g[1]), scatter_triples(&g[2])];
    let mut y = vec![0f32; n * m * out_len];
    for b in 0..n {
        for ch in 0..c {
            let grp = ch / cg;
            let xc = &xs[(b * c + ch) * in_len..][..in_len];
            for mi in 0..mg {
                let wk = &ws[(ch * mg + mi) * k_len..][..k_len];
                let yc = &mut y[(b * m + grp * mg + mi) * out_len..][..out_len];
                for &(ia, ka, oa) in &ta {
                    for &(ib, kb, ob) in &tb {
                        let (i_ab, k_ab, o_ab) = (ia * g[1].input + ib, ka * g[1].kernel + kb, oa * g[1].output + ob);
                        for &(ic, kc, oc) in &tc {
                            yc[o_ab * g[2].output + oc] += xc[i_ab * g[2].input + ic] * wk[k_ab * g[2].kernel + kc];
                        }
                    }
                }
            }
        }
    }
    let mut out = ArrayD::from_shape_vec(IxDyn(&output_shape(n, m, &geometry)), y).map_err(|_| KernelError::Layout)?;
    add_bias(&mut out, inputs.get(2));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayD;

    fn arr(shape: &[usize], v: Vec<f32>) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
    }

    #[test]
    fn textbook_transposed_convolution() {
        // [[0,1],[2,3]] ⊛ᵀ [[0,1],[2,3]] = [[0,0,1],[0,4,6],[4,12,9]]
        let x = arr(&[1, 1, 2, 2], vec![0., 1., 2., 3.]);
        let y = conv_transpose(&ConvTransposeAttrs::default(), &[x.view(), x.view()]).unwrap();
        assert_eq!(y.as_slice().unwrap(), &[0., 0., 1., 0., 4., 6., 4., 12., 9.]);
    }

    #[test]
    fn onnx_conv_transpose_1d_example() {
        // ONNX ConvTranspose docs, convtranspose_1d: x = [0,1,2], W = ones(1,2,3) → [[0,1,3,3,2]] twice.
        let x = arr(&[1, 1, 3], vec![0., 1., 2.]);
        let w = arr(&[1, 2, 3], vec![1.; 6]);
        let y = conv_transpose(&ConvTransposeAttrs::default(), &[x.view(), w.view()]).unwrap();
        assert_eq!(y.as_slice().unwrap(), &[0., 1., 3., 3., 2., 0., 1., 3., 3., 2.]);
    }

    #[test]
    fn onnx_conv_examples_with_and_without_padding() {
        // ONNX Conv docs: 5×5 input 0..25, 3×3 ones kernel.
        let x = arr(&[1, 1, 5, 5], (0..25).map(|v| v as f32).collect());
        let w = arr(&[1, 1, 3, 3], vec![1.; 9]);
        let padded = ConvAttrs { pads: vec![1, 1, 1, 1], ..Default::default() };
        let y = conv(&padded, &[x.view(), w.view()]).unwrap();
        let expected = [
            12., 21., 27., 33., 24., 33., 54., 63., 72., 51., 63., 99., 108., 117., 81., 93., 144., 153., 162., 111.,
            72., 111., 117., 123., 84.,
        ];
        assert_eq!(y.as_slice().unwrap(), &expected);
        let valid = conv(&ConvAttrs::default(), &[x.view(), w.view()]).unwrap();
        assert_eq!(valid.as_slice().unwrap(), &[54., 63., 72., 99., 108., 117., 144., 153., 162.]);
        // conv_with_strides_and_asymmetric_padding: strides 2, pads [1, 0, 1, 0] on a 7×5 input.
        let x = arr(&[1, 1, 7, 5], (0..35).map(|v| v as f32).collect());
        let asym = ConvAttrs { strides: vec![2, 2], pads: vec![1, 0, 1, 0], ..Default::default() };
        let y = conv(&asym, &[x.view(), w.view()]).unwrap();
        assert_eq!(y.shape(), &[1, 1, 4, 2]);
        assert_eq!(y.as_slice().unwrap(), &[21., 33., 99., 117., 189., 207., 171., 183.]);
    }

    #[test]
    fn grouped_transposed_convolution_uses_each_groups_weights_and_bias() {
        // Two groups of one channel: group g scales its input by its own weight; bias per output channel.
        let x = arr(&[1, 2, 1], vec![1., 10.]);
        let w = arr(&[2, 1, 1], vec![2., 3.]);
        let b = arr(&[2], vec![0.5, -0.5]);
        let attrs = ConvTransposeAttrs { group: 2, ..Default::default() };
        let y = conv_transpose(&attrs, &[x.view(), w.view(), b.view()]).unwrap();
        assert_eq!(y.as_slice().unwrap(), &[2.5, 29.5]);
    }

    #[test]
    fn unreached_positions_hold_the_bias() {
        // k = 1, s = 3: positions between inputs receive nothing.
        let x = arr(&[1, 1, 2], vec![1., 2.]);
        let w = arr(&[1, 1, 1], vec![1.]);
        let b = arr(&[1], vec![0.25]);
        let attrs = ConvTransposeAttrs { strides: vec![3], ..Default::default() };
        let y = conv_transpose(&attrs, &[x.view(), w.view(), b.view()]).unwrap();
        assert_eq!(y.as_slice().unwrap(), &[1.25, 0.25, 0.25, 2.25]);
    }
}
