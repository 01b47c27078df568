//! Reference kernels written from the definitions, for checking the fast ones: they are slow and
//! simple on purpose, and share no loop structure with the kernels the interpreter runs.

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use strider_ir::Shape;
use strider_ir::op::{AxisGeometry, ConvAttrs, ConvTransposeAttrs};

use super::KernelError;
use super::geometry::{RANK, conv_source, padded, tap_of, transpose_target, volume};

fn shape_of(a: &[usize]) -> Shape {
    Shape(a.to_vec())
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
    (0..a.input).flat_map(|i| (0..a.kernel).filter_map(move |k| transpose_target(a, i, k).map(|o| (i, k, o)))).collect()
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
    let in_len = volume(&g, |a| a.input);
    let out_len = volume(&g, |a| a.output);
    let k_len = volume(&g, |a| a.kernel);
    let xs = x.as_slice().ok_or(KernelError::Layout)?;
    let ws = w.as_slice().ok_or(KernelError::Layout)?;
    let [ta, tb, tc] = [scatter_triples(&g[0]), scatter_triples(&g[1]), scatter_triples(&g[2])];
    // Sums in float64, rounded once at the end: the most accurate float32 answer, to measure others by.
    let mut y = vec![0f64; n * m * out_len];
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
                            yc[o_ab * g[2].output + oc] +=
                                f64::from(xc[i_ab * g[2].input + ic]) * f64::from(wk[k_ab * g[2].kernel + kc]);
                        }
                    }
                }
            }
        }
    }
    let y = y.into_iter().map(|v| v as f32).collect();
    let mut out = ArrayD::from_shape_vec(IxDyn(&output_shape(n, m, &geometry)), y).map_err(|_| KernelError::Layout)?;
    add_bias(&mut out, inputs.get(2));
    Ok(out)
}

/// Conv from the definition: `y[n, g·M/g + m, o] = B[·] + Σ x[n, g·C/g + c, o·stride + k·dilation − pad] ·
/// W[g·M/g + m, c, k]` over every tap inside the input.
pub fn conv(attrs: &ConvAttrs, inputs: &[ArrayViewD<f32>]) -> Result<ArrayD<f32>, KernelError> {
    let (x, w) = (inputs[0].as_standard_layout(), inputs[1].as_standard_layout());
    let geometry = attrs.geometry(&shape_of(x.shape()), &shape_of(w.shape()))?;
    let g = padded(&geometry)?;
    let (n, c, m) = (x.shape()[0], x.shape()[1], w.shape()[0]);
    let (cg, mg) = (c / attrs.group, m / attrs.group);
    let in_len = volume(&g, |a| a.input);
    let k_len = volume(&g, |a| a.kernel);
    let xs = x.as_slice().ok_or(KernelError::Layout)?;
    let ws = w.as_slice().ok_or(KernelError::Layout)?;
    let mut out = ArrayD::<f32>::zeros(IxDyn(&output_shape(n, m, &geometry)));
    let mut y = out
        .view_mut()
        .into_shape_with_order(IxDyn(&[n, m, g[0].output, g[1].output, g[2].output]))
        .map_err(|_| KernelError::Layout)?;
    for ((b, mo, oa, ob, oc), v) in y.indexed_iter_mut().map(|(ix, v)| ((ix[0], ix[1], ix[2], ix[3], ix[4]), v)) {
        let grp = mo / mg;
        let mut sum = 0.0;
        for ci in 0..cg {
            let xc = &xs[(b * c + grp * cg + ci) * in_len..][..in_len];
            for (k, &wv) in ws[(mo * cg + ci) * k_len..][..k_len].iter().enumerate() {
                let tap = tap_of(&g, k);
                let sources: Option<Vec<usize>> =
                    (0..RANK).map(|a| conv_source(&g[a], [oa, ob, oc][a], tap[a])).collect();
                if let Some(i) = sources {
                    sum += xc[(i[0] * g[1].input + i[1]) * g[2].input + i[2]] * wv;
                }
            }
        }
        *v = sum;
    }
    add_bias(&mut out, inputs.get(2));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn onnx_conv_example_with_padding() {
        // ONNX Conv docs: 5×5 input 0..25, 3×3 ones kernel, pads 1.
        let x = arr(&[1, 1, 5, 5], (0..25).map(|v| v as f32).collect());
        let w = arr(&[1, 1, 3, 3], vec![1.; 9]);
        let padded = ConvAttrs { pads: vec![1, 1, 1, 1], ..Default::default() };
        let y = conv(&padded, &[x.view(), w.view()]).unwrap();
        assert_eq!(&y.as_slice().unwrap()[..5], &[12., 21., 27., 33., 24.]);
    }
}
