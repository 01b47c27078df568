//! `Conv` and `ConvTranspose`: attributes, the per-axis geometry both resolve to (pads included), shape
//! rules and FLOP counts. The interpreter and the lowerings read [`AxisGeometry`] rather than re-deriving pads.

use serde::{Deserialize, Serialize};

use super::{ATTRIBUTE_MAX, OpError, OpRule, product};
use crate::shape::Shape;

/// ONNX `auto_pad`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AutoPad {
    /// Use `pads` (or, for ConvTranspose, `output_shape`).
    #[default]
    #[serde(rename = "NOTSET")]
    NotSet,
    /// Pad so that out = ceil(in / stride) (Conv) or in · stride (ConvTranspose); odd padding at the end.
    #[serde(rename = "SAME_UPPER")]
    SameUpper,
    /// As `SAME_UPPER`, odd padding at the start.
    #[serde(rename = "SAME_LOWER")]
    SameLower,
    /// No padding.
    #[serde(rename = "VALID")]
    Valid,
}

impl AutoPad {
    fn is_not_set(&self) -> bool {
        *self == AutoPad::NotSet
    }
}

/// One spatial axis of a convolution, with every attribute resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisGeometry {
    /// Input size along this axis.
    pub input: usize,
    /// Output size along this axis.
    pub output: usize,
    /// Kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
    /// Padding at the start. Negative only for ConvTranspose, where it means extra output at that end.
    pub pad_begin: i64,
    /// Padding at the end (same sign convention).
    pub pad_end: i64,
    /// ConvTranspose's `output_padding` (0 for Conv).
    pub output_padding: usize,
}

impl AxisGeometry {
    /// Extent of the dilated kernel: dilation·(kernel − 1) + 1.
    pub fn dilated_kernel(&self) -> usize {
        self.dilation * (self.kernel - 1) + 1
    }
}

fn is_one(v: &usize) -> bool {
    *v == 1
}

/// ONNX `Conv` attributes. Empty lists mean ONNX's defaults (strides and dilations 1, pads 0, kernel from W).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConvAttrs {
    /// Automatic padding mode.
    #[serde(skip_serializing_if = "AutoPad::is_not_set")]
    pub auto_pad: AutoPad,
    /// Dilation per spatial axis.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dilations: Vec<usize>,
    /// Number of channel groups.
    #[serde(skip_serializing_if = "is_one")]
    pub group: usize,
    /// Kernel size per spatial axis; must agree with W when given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kernel_shape: Vec<usize>,
    /// Begin pads for every spatial axis, then end pads.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pads: Vec<i64>,
    /// Stride per spatial axis.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub strides: Vec<usize>,
}

/// ONNX `ConvTranspose` attributes. Empty lists mean ONNX's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConvTransposeAttrs {
    /// Automatic padding mode.
    #[serde(skip_serializing_if = "AutoPad::is_not_set")]
    pub auto_pad: AutoPad,
    /// Dilation per spatial axis.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dilations: Vec<usize>,
    /// Number of channel groups.
    #[serde(skip_serializing_if = "is_one")]
    pub group: usize,
    /// Kernel size per spatial axis; must agree with W when given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kernel_shape: Vec<usize>,
    /// Extra output at the end of each spatial axis.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output_padding: Vec<usize>,
    /// Requested spatial output size; when given, pads are derived from it and `pads` is ignored.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output_shape: Vec<usize>,
    /// Begin pads for every spatial axis, then end pads.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pads: Vec<i64>,
    /// Stride per spatial axis.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub strides: Vec<usize>,
}

impl Default for ConvAttrs {
    fn default() -> Self {
        ConvAttrs {
            auto_pad: AutoPad::NotSet,
            dilations: Vec::new(),
            group: 1,
            kernel_shape: Vec::new(),
            pads: Vec::new(),
            strides: Vec::new(),
        }
    }
}

impl Default for ConvTransposeAttrs {
    fn default() -> Self {
        ConvTransposeAttrs {
            auto_pad: AutoPad::NotSet,
            dilations: Vec::new(),
            group: 1,
            kernel_shape: Vec::new(),
            output_padding: Vec::new(),
            output_shape: Vec::new(),
            pads: Vec::new(),
            strides: Vec::new(),
        }
    }
}

/// The attributes both convolutions share, checked against the spatial rank.
struct Common {
    strides: Vec<usize>,
    dilations: Vec<usize>,
    pads: Vec<i64>,
}

/// Converts a size computed in i128 back, refusing what does not fit comfortably in i64.
fn fits(v: i128, axis: usize) -> Result<i64, OpError> {
    i64::try_from(v).ok().filter(|v| v.abs() < i64::MAX / 4).ok_or_else(|| {
        OpError::attr("strides", format!("with the dilations, pads and sizes make spatial axis {axis} overflow ({v})"))
    })
}

fn per_axis(name: &'static str, v: &[usize], rank: usize) -> Result<Vec<usize>, OpError> {
    if v.is_empty() {
        return Ok(vec![1; rank]);
    }
    if v.len() != rank {
        return Err(OpError::attr(name, format!("has {} values, expected {rank} (one per spatial axis)", v.len())));
    }
    if v.contains(&0) {
        return Err(OpError::attr(name, format!("{v:?} contains 0; every value must be at least 1")));
    }
    if let Some(big) = v.iter().find(|&&x| x > ATTRIBUTE_MAX as usize) {
        return Err(OpError::attr(name, format!("{big} exceeds the largest supported value {ATTRIBUTE_MAX}")));
    }
    Ok(v.to_vec())
}

#[allow(clippy::too_many_arguments)]
fn common(
    strides: &[usize],
    dilations: &[usize],
    pads: &[i64],
    kernel_shape: &[usize],
    group: usize,
    rank: usize,
    w: &Shape,
) -> Result<Common, OpError> {
    if group == 0 {
        return Err(OpError::attr("group", "must be at least 1"));
    }
    let strides = per_axis("strides", strides, rank)?;
    let dilations = per_axis("dilations", dilations, rank)?;
    let pads = if pads.is_empty() { vec![0; 2 * rank] } else { pads.to_vec() };
    if pads.len() != 2 * rank {
        return Err(OpError::attr(
            "pads",
            format!("has {} values, expected {} (begin and end for each of {rank} spatial axes)", pads.len(), 2 * rank),
        ));
    }
    if let Some(p) = pads.iter().find(|&&p| p < 0) {
        return Err(OpError::attr("pads", format!("{pads:?} contains {p}; pads must be non-negative")));
    }
    if let Some(p) = pads.iter().find(|&&p| p > ATTRIBUTE_MAX) {
        return Err(OpError::attr("pads", format!("{p} exceeds the largest supported value {ATTRIBUTE_MAX}")));
    }
    if !kernel_shape.is_empty() && kernel_shape != &w.dims()[2..] {
        return Err(OpError::attr(
            "kernel_shape",
            format!("is {kernel_shape:?} but the weight's spatial shape is {:?}", &w.dims()[2..]),
        ));
    }
    Ok(Common { strides, dilations, pads })
}

/// Checks X's and W's ranks; returns the spatial rank.
fn check_ranks(x: &Shape, w: &Shape) -> Result<usize, OpError> {
    if !(3..=5).contains(&x.rank()) {
        return Err(OpError::shape("X", "rank 3 to 5 (N, C, then 1 to 3 spatial axes)", x));
    }
    if w.rank() != x.rank() {
        return Err(OpError::shape("W", format!("rank {} like X", x.rank()), w));
    }
    if w.dims()[2..].contains(&0) {
        return Err(OpError::shape("W", "a non-empty kernel", w));
    }
    Ok(x.rank() - 2)
}

fn check_bias(inputs: &[&Shape], m: usize) -> Result<(), OpError> {
    match inputs.get(2) {
        Some(b) if b.dims() != [m] => Err(OpError::shape("B", format!("[{m}] (one per output channel)"), b)),
        _ => Ok(()),
    }
}

/// Splits a total padding per ONNX: SAME_UPPER puts the odd element at the end, otherwise at the start.
/// Floor division keeps a negative odd total consistent (the same split as the Python reference).
fn split_total(total: i64, upper: bool) -> (i64, i64) {
    let half = total.div_euclid(2);
    if upper { (half, total - half) } else { (total - half, half) }
}

impl ConvAttrs {
    /// Resolves every spatial axis for input X and weight W (shapes checked).
    pub fn geometry(&self, x: &Shape, w: &Shape) -> Result<Vec<AxisGeometry>, OpError> {
        let rank = check_ranks(x, w)?;
        let c = common(&self.strides, &self.dilations, &self.pads, &self.kernel_shape, self.group, rank, w)?;
        let (cin, g) = (x.dims()[1], self.group);
        if cin % g != 0 {
            return Err(OpError::attr("group", format!("{g} does not divide the {cin} input channels")));
        }
        if w.dims()[1] * g != cin || w.dims()[0] % g != 0 {
            return Err(OpError::shape(
                "W",
                format!("[M, C/group = {}, k…] with M divisible by group {g}", cin / g),
                w,
            ));
        }
        (0..rank)
            .map(|i| {
                let (input, kernel) = (x.dims()[2 + i], w.dims()[2 + i]);
                let (stride, dilation) = (c.strides[i], c.dilations[i]);
                let extent = fits(dilation as i128 * (kernel as i128 - 1) + 1, i)?;
                let (pad_begin, pad_end) = match self.auto_pad {
                    AutoPad::NotSet => (c.pads[i], c.pads[rank + i]),
                    AutoPad::Valid => (0, 0),
                    AutoPad::SameUpper | AutoPad::SameLower => {
                        let out = input.div_ceil(stride) as i128;
                        let total = fits((out - 1) * stride as i128 + extent as i128 - input as i128, i)?.max(0);
                        split_total(total, self.auto_pad == AutoPad::SameUpper)
                    }
                };
                let padded = fits(input as i128 + pad_begin as i128 + pad_end as i128, i)?;
                if padded < extent {
                    return Err(OpError::shape(
                        "X",
                        format!(
                            "spatial axis {i} of size {input} (padded {padded}) at least the dilated kernel extent {extent}"
                        ),
                        x,
                    ));
                }
                let output = ((padded - extent) / stride as i64 + 1) as usize;
                Ok(AxisGeometry { input, output, kernel, stride, dilation, pad_begin, pad_end, output_padding: 0 })
            })
            .collect()
    }
}

impl OpRule for ConvAttrs {
    fn input_names(&self) -> &'static [&'static str] {
        &["X", "W", "B"]
    }
    fn required_inputs(&self) -> usize {
        2
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        let (x, w) = (inputs[0], inputs[1]);
        let geometry = self.geometry(x, w)?;
        check_bias(inputs, w.dims()[0])?;
        let mut out = vec![x.dims()[0], w.dims()[0]];
        out.extend(geometry.iter().map(|a| a.output));
        Ok(vec![Shape(out)])
    }
    fn flops(&self, inputs: &[&Shape], outputs: &[Shape]) -> u64 {
        let w = inputs[1].dims();
        let out = outputs[0].numel() as u64;
        let macs = out * product(&w[1..]);
        2 * macs + if inputs.len() > 2 { out } else { 0 }
    }
}

impl ConvTransposeAttrs {
    /// Resolves every spatial axis for input X and weight W (shapes checked), following the ONNX formulas:
    /// out = s·(in − 1) + output_padding + d·(k − 1) + 1 − pad_begin − pad_end, with pads derived from
    /// `output_shape` or `auto_pad` when those are set (derived pads may be negative: extra output).
    pub fn geometry(&self, x: &Shape, w: &Shape) -> Result<Vec<AxisGeometry>, OpError> {
        let rank = check_ranks(x, w)?;
        let c = common(&self.strides, &self.dilations, &self.pads, &self.kernel_shape, self.group, rank, w)?;
        let (cin, g) = (x.dims()[1], self.group);
        if cin % g != 0 {
            return Err(OpError::attr("group", format!("{g} does not divide the {cin} input channels")));
        }
        if w.dims()[0] != cin {
            return Err(OpError::shape("W", format!("[C = {cin}, M/group, k…] (input channels first)"), w));
        }
        let output_padding = if self.output_padding.is_empty() {
            vec![0; rank]
        } else if self.output_padding.len() != rank {
            return Err(OpError::attr(
                "output_padding",
                format!("has {} values, expected {rank} (one per spatial axis)", self.output_padding.len()),
            ));
        } else {
            self.output_padding.clone()
        };
        let output_shape: Option<&[usize]> = match self.output_shape.len() {
            0 => None,
            n if n == rank => Some(&self.output_shape),
            n if n == rank + 2 => Some(&self.output_shape[2..]),
            n => {
                return Err(OpError::attr(
                    "output_shape",
                    format!("has {n} values, expected {rank} (spatial) or {} (full)", rank + 2),
                ));
            }
        };
        (0..rank)
            .map(|i| {
                let (input, kernel) = (x.dims()[2 + i], w.dims()[2 + i]);
                let (stride, dilation, op) = (c.strides[i], c.dilations[i], output_padding[i]);
                if op >= stride {
                    return Err(OpError::attr(
                        "output_padding",
                        format!("{op} on spatial axis {i} must be smaller than the stride {stride}"),
                    ));
                }
                let full = fits(
                    stride as i128 * (input as i128 - 1) + op as i128 + dilation as i128 * (kernel as i128 - 1) + 1,
                    i,
                )?;
                let upper = self.auto_pad == AutoPad::SameUpper;
                let (pad_begin, pad_end) = match (output_shape, self.auto_pad) {
                    // output_shape takes precedence over every auto_pad mode (as onnxruntime does).
                    (Some(target), _) => split_total(fits(full as i128 - target[i] as i128, i)?, upper),
                    (None, AutoPad::Valid) => (0, 0),
                    (None, AutoPad::NotSet) => (c.pads[i], c.pads[rank + i]),
                    (None, AutoPad::SameUpper | AutoPad::SameLower) => {
                        split_total(fits(full as i128 - input as i128 * stride as i128, i)?, upper)
                    }
                };
                let output = full - pad_begin - pad_end;
                if output < 1 {
                    let culprit = if output_shape.is_some() { "output_shape" } else { "pads" };
                    return Err(OpError::attr(
                        culprit,
                        format!("make the output size {output} on spatial axis {i}; it must be at least 1"),
                    ));
                }
                let output = output as usize;
                Ok(AxisGeometry { input, output, kernel, stride, dilation, pad_begin, pad_end, output_padding: op })
            })
            .collect()
    }
}

impl OpRule for ConvTransposeAttrs {
    fn input_names(&self) -> &'static [&'static str] {
        &["X", "W", "B"]
    }
    fn required_inputs(&self) -> usize {
        2
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        let (x, w) = (inputs[0], inputs[1]);
        let geometry = self.geometry(x, w)?;
        let m = w.dims()[1] * self.group;
        check_bias(inputs, m)?;
        let mut out = vec![x.dims()[0], m];
        out.extend(geometry.iter().map(|a| a.output));
        Ok(vec![Shape(out)])
    }
    fn flops(&self, inputs: &[&Shape], outputs: &[Shape]) -> u64 {
        // The direct (scatter) form: every input element meets M/group · k… weights.
        let w = inputs[1].dims();
        let macs = inputs[0].numel() as u64 * product(&w[1..]);
        2 * macs + if inputs.len() > 2 { outputs[0].numel() as u64 } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer_ct(attrs: ConvTransposeAttrs, x: &[usize], w: &[usize]) -> Result<Vec<usize>, OpError> {
        attrs.infer(&[&Shape(x.to_vec()), &Shape(w.to_vec())]).map(|v| v[0].0.clone())
    }

    #[test]
    fn conv_transpose_output_size_follows_onnx_formula() {
        // s·(in−1) + op + d·(k−1) + 1 − b − e = 3·2 + 1 + 2·2 + 1 − 1 − 2 = 9
        let a = ConvTransposeAttrs {
            strides: vec![3],
            dilations: vec![2],
            output_padding: vec![1],
            pads: vec![1, 2],
            ..Default::default()
        };
        assert_eq!(infer_ct(a, &[1, 2, 3], &[2, 4, 3]).unwrap(), vec![1, 4, 9]);
    }

    #[test]
    fn conv_transpose_same_upper_and_output_shape() {
        let same = ConvTransposeAttrs { strides: vec![2, 2], auto_pad: AutoPad::SameUpper, ..Default::default() };
        assert_eq!(infer_ct(same.clone(), &[1, 1, 3, 3], &[1, 1, 3, 3]).unwrap(), vec![1, 1, 6, 6]);
        // total = 2·2 + 3 − 6 = 1 → SAME_UPPER: (0, 1)
        let g = same.geometry(&Shape(vec![1, 1, 3, 3]), &Shape(vec![1, 1, 3, 3])).unwrap();
        assert_eq!((g[0].pad_begin, g[0].pad_end), (0, 1));
        // ONNX example: output_shape [10, 8] with strides [3, 2] on a 3×3 input and 3×3 kernel.
        let os = ConvTransposeAttrs { strides: vec![3, 2], output_shape: vec![10, 8], ..Default::default() };
        assert_eq!(infer_ct(os.clone(), &[1, 1, 3, 3], &[1, 2, 3, 3]).unwrap(), vec![1, 2, 10, 8]);
        // output_shape wins over auto_pad, VALID included.
        let valid = ConvTransposeAttrs { auto_pad: AutoPad::Valid, ..os };
        assert_eq!(infer_ct(valid, &[1, 1, 3, 3], &[1, 2, 3, 3]).unwrap(), vec![1, 2, 10, 8]);
    }

    #[test]
    fn negative_total_padding_grows_the_output() {
        // k=1, s=3: natural 7; SAME gives 9, so total = −2 → pads (−1, −1).
        let a = ConvTransposeAttrs { strides: vec![3], auto_pad: AutoPad::SameLower, ..Default::default() };
        let g = a.geometry(&Shape(vec![1, 1, 3]), &Shape(vec![1, 1, 1])).unwrap();
        assert_eq!((g[0].pad_begin, g[0].pad_end, g[0].output), (-1, -1, 9));
    }

    #[test]
    fn conv_transpose_refuses_bad_attributes() {
        let zero = ConvTransposeAttrs { strides: vec![0, 1], ..Default::default() };
        assert!(matches!(
            infer_ct(zero, &[1, 1, 3, 3], &[1, 1, 2, 2]),
            Err(OpError::Attribute { name: "strides", .. })
        ));
        let op = ConvTransposeAttrs { strides: vec![2], output_padding: vec![2], ..Default::default() };
        assert!(matches!(infer_ct(op, &[1, 1, 3], &[1, 1, 2]), Err(OpError::Attribute { name: "output_padding", .. })));
        // ≥ stride is refused even when smaller than the dilation (onnxruntime and the ONNX reference agree).
        let op = ConvTransposeAttrs { dilations: vec![3], output_padding: vec![2], ..Default::default() };
        assert!(matches!(infer_ct(op, &[1, 1, 3], &[1, 1, 2]), Err(OpError::Attribute { name: "output_padding", .. })));
        let grouped = ConvTransposeAttrs { group: 2, ..Default::default() };
        assert!(matches!(infer_ct(grouped, &[1, 3, 3], &[3, 1, 2]), Err(OpError::Attribute { name: "group", .. })));
        let neg = ConvTransposeAttrs { pads: vec![3, 3], ..Default::default() };
        assert!(infer_ct(neg, &[1, 1, 2], &[1, 1, 2]).is_err());
    }

    #[test]
    fn absurd_attributes_are_refused_not_overflowed() {
        let huge = ConvTransposeAttrs { strides: vec![usize::MAX], ..Default::default() };
        assert!(infer_ct(huge, &[1, 1, 3], &[1, 1, 2]).is_err());
        let pads = ConvTransposeAttrs { pads: vec![i64::MAX, i64::MAX], ..Default::default() };
        assert!(infer_ct(pads, &[1, 1, 3], &[1, 1, 2]).is_err());
        let wide = ConvTransposeAttrs { dilations: vec![1 << 30], strides: vec![1 << 30], ..Default::default() };
        let out = infer_ct(wide, &[1, 1, usize::MAX / 2], &[1, 1, 2]);
        assert!(out.is_err(), "{out:?}");
    }

    #[test]
    fn conv_same_padding_and_output() {
        let a = ConvAttrs { strides: vec![2], auto_pad: AutoPad::SameLower, ..Default::default() };
        let g = a.geometry(&Shape(vec![1, 1, 5]), &Shape(vec![1, 1, 4])).unwrap();
        // out = 3, total = 2·2 + 4 − 5 = 3 → SAME_LOWER puts the odd one first: (2, 1)
        assert_eq!((g[0].output, g[0].pad_begin, g[0].pad_end), (3, 2, 1));
        let grouped = ConvAttrs { group: 2, ..Default::default() };
        let err = grouped.infer(&[&Shape(vec![1, 4, 5]), &Shape(vec![6, 4, 3])]).unwrap_err();
        assert!(matches!(err, OpError::Shape { input: "W", .. }), "{err}");
    }
}
