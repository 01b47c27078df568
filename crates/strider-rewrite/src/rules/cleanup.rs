//! Clean-ups the lowerings create: no-op layout ops, composed layout ops, bias folding, 1×1 Conv as
//! MatMul.

use egg::{Id, rewrite};
use strider_ir::format::DataSpec;
use strider_ir::op::{DepthToSpaceMode, ReshapeAttrs, TransposeAttrs};
use strider_ir::{Op, Shape};

use super::{Lower, Matched, Rule};
use crate::analysis::{Constant, add_const};

/// The clean-up table.
pub fn rules() -> Vec<Rule> {
    vec![
        rewrite!("identity-is-its-input"; "(Identity ?a ?x)" => { Lower::new(&["?a", "?x"], |m| Some(m.inputs[0])) }),
        rewrite!("reshape-to-same-shape-is-identity"; "(Reshape ?a ?x)" => { Lower::new(&["?a", "?x"], same_shape) }),
        rewrite!("transpose-identity-perm-is-identity"; "(Transpose ?a ?x)" => { Lower::new(&["?a", "?x"], same_order) }),
        rewrite!("zero-insert-stride-1-is-identity"; "(ZeroInsert ?a ?x)" => { Lower::new(&["?a", "?x"], unit_strides) }),
        rewrite!("pad-by-zero-is-identity"; "(Pad ?a ?x)" => { Lower::new(&["?a", "?x"], zero_pads) }),
        rewrite!("reshape-reshape-is-reshape"; "(Reshape ?a (Reshape ?b ?x))" => { Lower::new(&["?a", "?b", "?x"], reshape_reshape) }),
        rewrite!("transpose-transpose-is-transpose"; "(Transpose ?a (Transpose ?b ?x))" => { Lower::new(&["?a", "?b", "?x"], transpose_transpose) }),
        rewrite!("conv-add-channel-bias-is-conv-bias"; "(Add ?a (Conv ?c ?x ?w) ?b)" => { Lower::new(&["?a", "?c", "?x", "?w", "?b"], fold_bias) }),
        rewrite!("conv-1x1-is-matmul"; "(Conv ?a ?x ?w)" => { Lower::new(&["?a", "?x", "?w"], pointwise_matmul) }),
        rewrite!("channel-bias-commutes-with-crop"; "(Add ?a (Pad ?p ?x) ?b)" => { Lower::new(&["?a", "?p", "?x", "?b"], bias_before_crop) }),
        rewrite!("channel-bias-commutes-with-depth-to-space"; "(Add ?a (DepthToSpace ?d ?x) ?b)" => { Lower::new(&["?a", "?d", "?x", "?b"], bias_before_interleave) }),
    ]
}

/// Reshape(x, shape(x)) = x.
fn same_shape(m: &mut Matched) -> Option<Id> {
    let x = m.inputs[0];
    let out = m.op.infer(&[&m.shape(x)?]).ok()?.remove(0);
    (out == m.shape(x)?).then_some(x)
}

/// Transpose(x, [0, 1, …]) = x.
fn same_order(m: &mut Matched) -> Option<Id> {
    let Op::Transpose(t) = &m.op else { return None };
    let x = m.inputs[0];
    let perm = t.resolved(m.shape(x)?.rank());
    perm.iter().enumerate().all(|(i, &p)| i == p).then_some(x)
}

/// ZeroInsert(x, [1, …]) = x.
fn unit_strides(m: &mut Matched) -> Option<Id> {
    let Op::ZeroInsert(z) = &m.op else { return None };
    z.strides.iter().all(|&s| s == 1).then_some(m.inputs[0])
}

/// Pad(x, 0…) = x.
fn zero_pads(m: &mut Matched) -> Option<Id> {
    let Op::Pad(p) = &m.op else { return None };
    p.pads.iter().all(|&v| v == 0).then_some(m.inputs[0])
}

/// Reshape(Reshape(x, s1), s2) = Reshape(x, s2): row-major order is kept by both.
fn reshape_reshape(m: &mut Matched) -> Option<Id> {
    let (inner, x) = (m.inputs[0], m.inputs[1]);
    let Op::Reshape(_) = m.egraph[inner].data.attrs.as_ref()? else { return None };
    let inner_shape = inner_output(m, inner, x)?;
    let out = m.op.infer(&[&inner_shape]).ok()?.remove(0);
    let shape = out.dims().iter().map(|&d| d as i64).collect();
    m.add(Op::Reshape(ReshapeAttrs { shape, allowzero: false }), &[x], "reshape")
}

/// Transpose(Transpose(x, q), p) = Transpose(x, q∘p): output axis i is input axis q[p[i]].
fn transpose_transpose(m: &mut Matched) -> Option<Id> {
    let (inner, x) = (m.inputs[0], m.inputs[1]);
    let Op::Transpose(q) = m.egraph[inner].data.attrs.clone()? else { return None };
    let Op::Transpose(p) = &m.op else { return None };
    let rank = m.shape(x)?.rank();
    let (q, p) = (q.resolved(rank), p.resolved(rank));
    let perm: Vec<usize> = p.iter().map(|&i| q[i]).collect();
    if perm.iter().enumerate().all(|(i, &v)| i == v) {
        return Some(x);
    }
    m.add(Op::Transpose(TransposeAttrs { perm }), &[x], "transpose")
}

/// Output shape of the inner op (attributes class `attrs`) applied to `x`.
fn inner_output(m: &Matched, attrs: Id, x: Id) -> Option<Shape> {
    let op = m.egraph[attrs].data.attrs.as_ref()?;
    op.infer(&[&m.shape(x)?]).ok()?.into_iter().next()
}

/// Add(Conv(x, W), b) = Conv(x, W, Reshape(b, [M])) when b is a constant per-channel bias of shape
/// [M, 1, …] or [1, M, 1, …] (a constant, so that folding it is free).
fn fold_bias(m: &mut Matched) -> Option<Id> {
    let (conv_attrs, x, w, b) = (m.inputs[0], m.inputs[1], m.inputs[2], m.inputs[3]);
    let conv = m.egraph[conv_attrs].data.attrs.clone()?;
    let Op::Conv(_) = conv else { return None };
    let out = conv.infer(&[&m.shape(x)?, &m.shape(w)?]).ok()?.remove(0);
    let channels = channel_bias(&m.shape(b)?, &out).filter(|_| m.egraph[b].data.constant)?;
    let flat = m.reshape(b, &[channels], "bias")?;
    m.add(conv, &[x, w, flat], "conv")
}

/// A 1×…×1 Conv with stride 1, no padding and group 1 is a MatMul over channels:
/// Conv(x, W) = Reshape(Reshape(W, [M, C]) · Reshape(x, [N, C, L]), [N, M, spatial…]).
fn pointwise_matmul(m: &mut Matched) -> Option<Id> {
    let Op::Conv(attrs) = &m.op else { return None };
    let (x, w) = (m.inputs[0], m.inputs[1]);
    let (xs, ws) = (m.shape(x)?, m.shape(w)?);
    let geometry = attrs.geometry(&xs, &ws).ok()?;
    let pointwise = attrs.group == 1
        && geometry.iter().all(|a| a.kernel == 1 && a.stride == 1 && a.pad_begin == 0 && a.pad_end == 0);
    if !pointwise {
        return None;
    }
    let (n, c, mo) = (xs.dims()[0], xs.dims()[1], ws.dims()[0]);
    let l = xs.dims()[2..].iter().product();
    let wm = m.reshape(w, &[mo, c], "w_matrix")?;
    let xm = m.reshape(x, &[n, c, l], "x_matrix")?;
    let product = m.add(Op::MatMul, &[wm, xm], "matmul")?;
    m.reshape(product, &[&[n, mo][..], &xs.dims()[2..]].concat(), "image")
}

/// Channels of a per-channel bias for an (N, C, spatial…) value: shape [C, 1, …] or [1, C, 1, …].
fn channel_bias(bias: &Shape, value: &Shape) -> Option<usize> {
    let c = *value.dims().get(1)?;
    let per_channel = |s: &[usize]| s.first() == Some(&c) && s[1..].iter().all(|&d| d == 1);
    let fits = (bias.rank() + 1 == value.rank() && per_channel(bias.dims()))
        || (bias.rank() == value.rank() && bias.dims()[0] == 1 && per_channel(&bias.dims()[1..]));
    fits.then_some(c)
}

/// Add(Pad(x, crop), b) = Pad(Add(x, b), crop) for a per-channel bias b when the Pad only crops spatial
/// axes (pads ≤ 0, none on N or C): cropping keeps positions, and every kept position gets b either way.
fn bias_before_crop(m: &mut Matched) -> Option<Id> {
    let (pad_attrs, x, b) = (m.inputs[0], m.inputs[1], m.inputs[2]);
    let pad = m.egraph[pad_attrs].data.attrs.clone()?;
    let Op::Pad(p) = &pad else { return None };
    let rank = m.shape(x)?.rank();
    let crop_only = p.pads.iter().all(|&v| v <= 0) && [0, 1, rank, rank + 1].iter().all(|&i| p.pads.get(i) == Some(&0));
    channel_bias(&m.shape(b)?, &m.shape(x)?).filter(|_| crop_only)?;
    let biased = m.add(Op::Add, &[x, b], "bias_first")?;
    m.add(pad, &[biased], "crop")
}

/// Add(DepthToSpace_CRD(x, s), b) = DepthToSpace_CRD(Add(x, b′), s) where b′ repeats each channel's bias
/// over its s^d sub-pixel channels (CRD: channel c·s^d + r becomes channel c): the interleave only
/// moves elements. Condition: b is a per-channel bias.
fn bias_before_interleave(m: &mut Matched) -> Option<Id> {
    let (d2s_attrs, x, b) = (m.inputs[0], m.inputs[1], m.inputs[2]);
    let d2s = m.egraph[d2s_attrs].data.attrs.clone()?;
    let Op::DepthToSpace(attrs) = &d2s else { return None };
    if attrs.mode != DepthToSpaceMode::CRD {
        return None;
    }
    let xs = m.shape(x)?;
    let out = d2s.infer(&[&xs]).ok()?.remove(0);
    let channels = channel_bias(&m.shape(b)?, &out)?;
    let spatial = xs.rank() - 2;
    let phases = attrs.blocksize.checked_pow(spatial as u32)?;
    let name = format!("{}.phase_ones", m.name);
    let ones = Constant::Generated { shape: Shape(vec![1, phases]), spec: DataSpec::Fill(1.0) };
    let ones = add_const(m.egraph, &name, ones);
    let column = m.reshape(b, &[channels, 1], "bias_column")?;
    let repeated = m.add(Op::Mul, &[column, ones], "bias_repeated")?;
    let per_phase = m.reshape(repeated, &[&[channels * phases][..], &vec![1; spatial]].concat(), "phase_bias")?;
    let biased = m.add(Op::Add, &[x, per_phase], "bias_first")?;
    m.add(d2s, &[biased], "interleave")
}
