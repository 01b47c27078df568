//! Upsample identities.

use egg::{Id, rewrite};
use ndarray::{ArrayD, IxDyn};
use strider_ir::Op;
use strider_ir::format::DataSpec;
use strider_ir::op::{ConvTransposeAttrs, CoordinateTransform, NearestMode, ResizeMode};

use super::{Lower, Matched, Rule};
use crate::analysis::{Constant, add_const};

/// Nearest Upsample by integer factors f (ONNX Upsample semantics: asymmetric coordinates, floor)
/// equals a depthwise ConvTranspose with a ones kernel of size f and stride f: output o copies input
/// ⌊o / f⌋ on every axis. Conditions: factor 1 on N and C, 1 to 3 spatial axes.
pub fn nearest_is_depthwise_conv_transpose() -> Rule {
    rewrite!("upsample-nearest-to-depthwise-convtranspose"; "(Upsample ?a ?x)" => { Lower::new(&["?a", "?x"], as_conv_transpose) })
}

fn as_conv_transpose(m: &mut Matched) -> Option<Id> {
    let Op::Upsample(attrs) = &m.op else { return None };
    let exact = attrs.mode == ResizeMode::Nearest
        && attrs.coordinate_transformation_mode == CoordinateTransform::Asymmetric
        && attrs.nearest_mode == NearestMode::Floor;
    let factors = attrs.integer_factors()?;
    if !exact || factors.len() < 3 || factors.len() > 5 || factors[0] != 1 || factors[1] != 1 {
        return None;
    }
    let x = m.inputs[0];
    let channels = m.shape(x)?.dims()[1];
    let spatial = factors[2..].to_vec();
    let kernel_shape = [&[channels, 1][..], &spatial].concat();
    let ones = Constant { data: ArrayD::from_elem(IxDyn(&kernel_shape), 1.0), spec: DataSpec::Fill(1.0) };
    let name = format!("{}.ones", m.name);
    let kernel = add_const(m.egraph, &name, ones);
    let attrs = ConvTransposeAttrs { group: channels, strides: spatial, ..Default::default() };
    m.add(Op::ConvTranspose(attrs), &[x, kernel], "depthwise")
}
