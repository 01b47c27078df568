//! Upsample identities.

use egg::{Id, rewrite};
use strider_ir::Op;
use strider_ir::format::DataSpec;
use strider_ir::op::{
    ConvAttrs, ConvTransposeAttrs, CoordinateTransform, NearestMode, ResizeConvKernelAttrs, ResizeMode, UpsampleAttrs,
};

use super::{Lower, Matched, Rule};
use crate::analysis::{Constant, add_const};

/// Nearest Upsample by integer factors f (ONNX Upsample semantics: asymmetric coordinates, floor)
/// equals a depthwise ConvTranspose with a ones kernel of size f and stride f: output o copies input
/// ⌊o / f⌋ on every axis. Conditions: factor 1 on N and C, 1 to 3 spatial axes.
pub fn nearest_is_depthwise_conv_transpose() -> Rule {
    rewrite!("upsample-nearest-to-depthwise-convtranspose"; "(Upsample ?a ?x)" => { Lower::new(&["?a", "?x"], as_conv_transpose) })
}

/// The spatial factors of an Upsample that copies input ⌊o / f⌋ to output o (nearest, asymmetric,
/// floor, integer factors, N and C unscaled, 1 to 3 spatial axes).
fn nearest_integer_factors(attrs: &UpsampleAttrs) -> Option<Vec<usize>> {
    let exact = attrs.mode == ResizeMode::Nearest
        && attrs.coordinate_transformation_mode == CoordinateTransform::Asymmetric
        && attrs.nearest_mode == NearestMode::Floor;
    let factors = attrs.integer_factors()?;
    (exact && (3..=5).contains(&factors.len()) && factors[0] == 1 && factors[1] == 1).then(|| factors[2..].to_vec())
}

fn as_conv_transpose(m: &mut Matched) -> Option<Id> {
    let Op::Upsample(attrs) = &m.op else { return None };
    let factors = [&[1, 1][..], &nearest_integer_factors(attrs)?].concat();
    let x = m.inputs[0];
    let channels = m.shape(x)?.dims()[1];
    let spatial = factors[2..].to_vec();
    let kernel_shape = [&[channels, 1][..], &spatial].concat();
    let elements = kernel_shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).unwrap_or(usize::MAX);
    if !m.may_create(elements, &format!("a ones kernel {kernel_shape:?}")) {
        return None;
    }
    let ones = Constant::Generated { shape: strider_ir::Shape(kernel_shape), spec: DataSpec::Fill(1.0) };
    let name = format!("{}.ones", m.name);
    let kernel = add_const(m.egraph, &name, ones);
    let attrs = ConvTransposeAttrs { group: channels, strides: spatial, ..Default::default() };
    m.add(Op::ConvTranspose(attrs), &[x, kernel], "depthwise")
}

/// Resize-conv fusion: a stride-1 Conv after a nearest integer Upsample equals a sub-pixel convolution
/// on the low-resolution input. Output phase r = o mod f reads x at ⌊(r + t·d − p)/f⌋ + ⌊o/f⌋ through
/// tap t, so one Conv of x with ResizeConvKernel(W) computes every phase, which DepthToSpace
/// interleaves; the end is cropped to the Conv's output size and the bias added. Conditions: the
/// Upsample as in [`nearest_is_depthwise_conv_transpose`], Conv strides 1.
pub fn conv_after_nearest_upsample_is_subpixel_conv() -> Vec<Rule> {
    vec![
        rewrite!("conv-after-nearest-upsample-is-subpixel-conv";
            "(Conv ?c (Upsample ?u ?x) ?w)" => { Lower::new(&["?c", "?u", "?x", "?w"], fuse) }),
        rewrite!("biased-conv-after-nearest-upsample-is-subpixel-conv";
            "(Conv ?c (Upsample ?u ?x) ?w ?b)" => { Lower::new(&["?c", "?u", "?x", "?w", "?b"], fuse) }),
    ]
}

fn fuse(m: &mut Matched) -> Option<Id> {
    let Op::Conv(conv) = m.op.clone() else { return None };
    let Op::Upsample(up) = m.egraph[m.inputs[0]].data.attrs.clone()? else { return None };
    let factors = nearest_integer_factors(&up)?;
    let (x, w, bias) = (m.inputs[1], m.inputs[2], m.inputs.get(3).copied());
    let (xs, ws) = (m.shape(x)?, m.shape(w)?);
    let upsampled = Op::Upsample(up).infer(&[&xs]).ok()?.remove(0);
    let geometry = conv.geometry(&upsampled, &ws).ok()?;
    if geometry.iter().any(|a| a.stride != 1 || a.pad_begin < 0) {
        return None;
    }
    let attrs = ResizeConvKernelAttrs {
        factors: factors.clone(),
        dilations: geometry.iter().map(|a| a.dilation).collect(),
        pads_begin: geometry.iter().map(|a| a.pad_begin as usize).collect(),
    };
    let taps = attrs.taps(&ws.dims()[2..]);
    let first = attrs.first_offset();
    let q: Vec<usize> = geometry.iter().zip(&factors).map(|(a, &f)| a.output.div_ceil(f)).collect();
    let begin: Vec<i64> = first.iter().map(|&o| -o).collect();
    let end: Vec<i64> =
        (0..q.len()).map(|a| q[a] as i64 + first[a] + taps[a] as i64 - 1 - xs.dims()[2 + a] as i64).collect();
    if end.iter().any(|&e| e < 0) {
        return None;
    }
    let kernel = m.add(Op::ResizeConvKernel(attrs), &[w], "resize_conv_kernel")?;
    let phase_conv = ConvAttrs { group: conv.group, pads: [begin, end].concat(), ..Default::default() };
    let phases = m.add(Op::Conv(phase_conv), &[x, kernel], "phases")?;
    let (n, channels) = (xs.dims()[0], ws.dims()[0]);
    let interleaved = m.interleave_phases(phases, n, channels, &factors, &q)?;
    let crop: Vec<i64> =
        geometry.iter().zip(&q).zip(&factors).map(|((a, &q), &f)| a.output as i64 - (q * f) as i64).collect();
    let cropped = m.pad_spatial(interleaved, &vec![0; crop.len()], &crop, "crop")?;
    match bias {
        None => Some(cropped),
        Some(b) => {
            let per_channel = m.reshape(b, &[&[channels][..], &vec![1; factors.len()]].concat(), "bias")?;
            m.add(Op::Add, &[cropped, per_channel], "add_bias")
        }
    }
}
