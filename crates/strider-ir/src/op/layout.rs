//! Layout ops: they move, copy or drop elements but compute nothing (zero FLOPs).

use serde::{Deserialize, Serialize};

use super::{OpError, OpRule};
use crate::shape::{Shape, normalize_axis};

/// `Concat` attributes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcatAttrs {
    /// Axis to join along (negative counts from the end). Required, as in ONNX.
    pub axis: i64,
}

impl OpRule for ConcatAttrs {
    fn input_names(&self) -> &'static [&'static str] {
        &["inputs"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        let first = inputs[0];
        let axis = normalize_axis(self.axis, first.rank())
            .ok_or_else(|| OpError::attr("axis", format!("{} is out of range for rank {}", self.axis, first.rank())))?;
        let mut out = first.clone();
        for s in &inputs[1..] {
            let same_elsewhere = s.rank() == first.rank()
                && s.dims().iter().zip(first.dims()).enumerate().all(|(i, (a, b))| i == axis || a == b);
            if !same_elsewhere {
                return Err(OpError::shape("inputs", format!("{first} on every axis but {axis}"), s));
            }
            out.0[axis] = out.0[axis].saturating_add(s.dims()[axis]);
        }
        Ok(vec![out])
    }
    fn flops(&self, _: &[&Shape], _: &[Shape]) -> u64 {
        0
    }
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// `Reshape` attributes: ONNX's `shape` input, as an attribute.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReshapeAttrs {
    /// Target shape; 0 copies the input's axis (unless `allowzero`), −1 is inferred (at most one).
    pub shape: Vec<i64>,
    /// Treat 0 as a literal zero-size axis.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allowzero: bool,
}

impl OpRule for ReshapeAttrs {
    fn input_names(&self) -> &'static [&'static str] {
        &["data"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        let x = inputs[0];
        let mut out = Vec::with_capacity(self.shape.len());
        let mut inferred = None;
        for (i, &d) in self.shape.iter().enumerate() {
            out.push(match d {
                -1 if inferred.is_some() => return Err(OpError::attr("shape", "has more than one -1")),
                -1 => {
                    inferred = Some(i);
                    1
                }
                0 if !self.allowzero => *x.dims().get(i).ok_or_else(|| {
                    OpError::attr("shape", format!("copies axis {i} (0) but the input has rank {}", x.rank()))
                })?,
                d if d < 0 => return Err(OpError::attr("shape", format!("contains {d}"))),
                d => d as usize,
            });
        }
        let known = Shape(out.clone()).numel();
        let total = x.numel();
        if let Some(i) = inferred {
            if known == 0 || total % known != 0 {
                return Err(OpError::shape(
                    "data",
                    format!("a size divisible by {known} for shape {:?}", self.shape),
                    x,
                ));
            }
            out[i] = total / known;
        } else if known != total {
            return Err(OpError::shape("data", format!("{known} elements for shape {:?}", self.shape), x));
        }
        Ok(vec![Shape(out)])
    }
    fn flops(&self, _: &[&Shape], _: &[Shape]) -> u64 {
        0
    }
}

fn one() -> i64 {
    1
}

/// `Flatten` attributes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlattenAttrs {
    /// Axes before this one form the rows (ONNX default 1).
    #[serde(default = "one")]
    pub axis: i64,
}

impl Default for FlattenAttrs {
    fn default() -> Self {
        FlattenAttrs { axis: 1 }
    }
}

impl OpRule for FlattenAttrs {
    fn input_names(&self) -> &'static [&'static str] {
        &["input"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        let x = inputs[0];
        // Flatten takes axis in [−rank, rank]; a negative axis counts from rank.
        let rank = x.rank() as i64;
        let resolved = if self.axis < 0 { self.axis + rank } else { self.axis };
        if !(0..=rank).contains(&resolved) {
            return Err(OpError::attr("axis", format!("{} is out of range for rank {}", self.axis, x.rank())));
        }
        let axis = resolved as usize;
        let rows = Shape(x.dims()[..axis].to_vec()).numel();
        let cols = Shape(x.dims()[axis..].to_vec()).numel();
        Ok(vec![Shape(vec![rows, cols])])
    }
    fn flops(&self, _: &[&Shape], _: &[Shape]) -> u64 {
        0
    }
}

/// `Transpose` attributes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransposeAttrs {
    /// Output axis i is input axis `perm[i]`; empty means reversed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub perm: Vec<usize>,
}

impl TransposeAttrs {
    /// The permutation for an input of this rank (the default reverses the axes).
    pub fn resolved(&self, rank: usize) -> Vec<usize> {
        if self.perm.is_empty() { (0..rank).rev().collect() } else { self.perm.clone() }
    }
}

impl OpRule for TransposeAttrs {
    fn input_names(&self) -> &'static [&'static str] {
        &["data"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        let x = inputs[0];
        let perm = self.resolved(x.rank());
        let mut seen = vec![false; x.rank()];
        let valid =
            perm.len() == x.rank() && perm.iter().all(|&p| p < x.rank() && !std::mem::replace(&mut seen[p], true));
        if !valid {
            return Err(OpError::attr("perm", format!("{perm:?} is not a permutation of the {} axes", x.rank())));
        }
        Ok(vec![Shape(perm.iter().map(|&p| x.dims()[p]).collect())])
    }
    fn flops(&self, _: &[&Shape], _: &[Shape]) -> u64 {
        0
    }
}

/// `Pad` mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PadMode {
    /// Fill with `value`.
    #[default]
    Constant,
    /// Mirror without repeating the edge.
    Reflect,
    /// Repeat the edge.
    Edge,
    /// Wrap around.
    Wrap,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// `Pad` attributes: ONNX's `pads` and `constant_value` inputs, as attributes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PadAttrs {
    /// Begin pads for every axis, then end pads; negative values crop.
    pub pads: Vec<i64>,
    /// How new elements are filled.
    #[serde(skip_serializing_if = "is_default")]
    pub mode: PadMode,
    /// Fill value in constant mode.
    #[serde(skip_serializing_if = "is_default")]
    pub value: f32,
}

impl OpRule for PadAttrs {
    fn input_names(&self) -> &'static [&'static str] {
        &["data"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        let x = inputs[0];
        let r = x.rank();
        if self.pads.len() != 2 * r {
            return Err(OpError::attr(
                "pads",
                format!("has {} values, expected {} (begin and end per axis)", self.pads.len(), 2 * r),
            ));
        }
        let mut out = Vec::with_capacity(r);
        for (i, &d) in x.dims().iter().enumerate() {
            let (b, e) = (self.pads[i], self.pads[r + i]);
            let size = d as i128 + b as i128 + e as i128;
            if size < 1 {
                return Err(OpError::attr("pads", format!("crop axis {i} of size {d} to {size}")));
            }
            let largest = b.max(e) as i128;
            let limit = match self.mode {
                PadMode::Constant => i128::MAX,
                PadMode::Reflect => d as i128 - 1,
                PadMode::Edge | PadMode::Wrap => d as i128,
            };
            if largest > limit {
                return Err(OpError::attr(
                    "pads",
                    format!(
                        "pad {largest} on axis {i} of size {d} exceeds what {:?} mode can fill ({limit})",
                        self.mode
                    ),
                ));
            }
            out.push(usize::try_from(size).unwrap_or(usize::MAX));
        }
        Ok(vec![Shape(out)])
    }
    fn flops(&self, _: &[&Shape], _: &[Shape]) -> u64 {
        0
    }
}

/// `Slice` attributes: ONNX's starts/ends/axes/steps inputs, as attributes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SliceAttrs {
    /// Start per sliced axis (negative counts from the end; clamped).
    pub starts: Vec<i64>,
    /// End (exclusive) per sliced axis (negative counts from the end; clamped).
    pub ends: Vec<i64>,
    /// Which axes; empty means 0, 1, ….
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub axes: Vec<i64>,
    /// Step per sliced axis (non-zero); empty means 1.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<i64>,
}

/// One axis of a resolved slice: elements start, start + step, … (len of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceAxis {
    /// First index taken.
    pub start: usize,
    /// Step (negative walks backwards).
    pub step: i64,
    /// Elements taken.
    pub len: usize,
}

impl SliceAttrs {
    /// Resolves every axis of an input with this shape (untouched axes take everything).
    pub fn resolve(&self, x: &Shape) -> Result<Vec<SliceAxis>, OpError> {
        let n = self.starts.len();
        if self.ends.len() != n {
            return Err(OpError::attr("ends", format!("has {} values but starts has {n}", self.ends.len())));
        }
        for (name, len) in [("axes", self.axes.len()), ("steps", self.steps.len())] {
            if len != 0 && len != n {
                return Err(OpError::attr(name, format!("has {len} values but starts has {n}")));
            }
        }
        if self.axes.is_empty() && n > x.rank() {
            return Err(OpError::attr("starts", format!("has {n} values but the input has only {} axes", x.rank())));
        }
        let mut out: Vec<SliceAxis> = x.dims().iter().map(|&d| SliceAxis { start: 0, step: 1, len: d }).collect();
        let mut seen = vec![false; x.rank()];
        for i in 0..n {
            let raw_axis = self.axes.get(i).copied().unwrap_or(i as i64);
            let axis = normalize_axis(raw_axis, x.rank())
                .ok_or_else(|| OpError::attr("axes", format!("{raw_axis} is out of range for rank {}", x.rank())))?;
            if std::mem::replace(&mut seen[axis], true) {
                return Err(OpError::attr("axes", format!("names axis {axis} twice")));
            }
            let step = self.steps.get(i).copied().unwrap_or(1);
            if step == 0 {
                return Err(OpError::attr("steps", "contains 0"));
            }
            let d = x.dims()[axis] as i64;
            if d == 0 {
                out[axis] = SliceAxis { start: 0, step, len: 0 };
                continue;
            }
            let wrap = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
            let (start, end) = (wrap(self.starts[i]), wrap(self.ends[i]));
            let (start, end) = if step > 0 {
                (start.clamp(0, d), end.clamp(0, d))
            } else {
                (start.clamp(0, d - 1), end.clamp(-1, d - 1))
            };
            let span = if step > 0 { end - start } else { start - end };
            let len = if span <= 0 { 0 } else { (span as u64).div_ceil(step.unsigned_abs()) };
            out[axis] = SliceAxis { start: start.max(0) as usize, step, len: len as usize };
        }
        Ok(out)
    }
}

impl OpRule for SliceAttrs {
    fn input_names(&self) -> &'static [&'static str] {
        &["data"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        Ok(vec![Shape(self.resolve(inputs[0])?.iter().map(|a| a.len).collect())])
    }
    fn flops(&self, _: &[&Shape], _: &[Shape]) -> u64 {
        0
    }
}

/// Channel order of `DepthToSpace`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DepthToSpaceMode {
    /// depth-column-row: channel = (block offsets…, c) with c fastest-varying last (ONNX default).
    #[default]
    DCR,
    /// column-row-depth: channel = (c, block offsets…), PyTorch's PixelShuffle.
    CRD,
}

/// `DepthToSpace` attributes. Generalised from ONNX's 4-D to any spatial rank: C/blocksize^d channels.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepthToSpaceAttrs {
    /// Block edge length.
    pub blocksize: usize,
    /// Channel order.
    #[serde(default, skip_serializing_if = "is_default")]
    pub mode: DepthToSpaceMode,
}

impl OpRule for DepthToSpaceAttrs {
    fn input_names(&self) -> &'static [&'static str] {
        &["input"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        let x = inputs[0];
        if x.rank() < 3 {
            return Err(OpError::shape("input", "rank ≥ 3 (N, C, spatial…)", x));
        }
        let b = self.blocksize;
        if b == 0 {
            return Err(OpError::attr("blocksize", "must be at least 1"));
        }
        let block = b.checked_pow((x.rank() - 2) as u32).unwrap_or(usize::MAX);
        let c = x.dims()[1];
        if c % block != 0 {
            return Err(OpError::shape(
                "input",
                format!("channels divisible by blocksize^{} = {block}", x.rank() - 2),
                x,
            ));
        }
        let mut out = vec![x.dims()[0], c / block];
        out.extend(x.dims()[2..].iter().map(|&d| d.saturating_mul(b)));
        Ok(vec![Shape(out)])
    }
    fn flops(&self, _: &[&Shape], _: &[Shape]) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[usize]) -> Shape {
        Shape(v.to_vec())
    }

    #[test]
    fn reshape_zero_and_minus_one() {
        let r = ReshapeAttrs { shape: vec![0, -1], allowzero: false };
        assert_eq!(r.infer(&[&s(&[2, 3, 4])]).unwrap()[0], s(&[2, 12]));
        let bad = ReshapeAttrs { shape: vec![5, -1], allowzero: false };
        assert!(bad.infer(&[&s(&[2, 3, 4])]).is_err());
    }

    #[test]
    fn slice_clamps_like_onnx() {
        // ONNX example: data 2×4, starts [1, 0], ends [2, 3], steps [1, 2] → 1×2.
        let a = SliceAttrs { starts: vec![1, 0], ends: vec![2, 3], axes: vec![0, 1], steps: vec![1, 2] };
        assert_eq!(a.infer(&[&s(&[2, 4])]).unwrap()[0], s(&[1, 2]));
        // Reverse everything: starts −1, ends −huge, step −1.
        let rev = SliceAttrs { starts: vec![-1], ends: vec![i64::MIN], axes: vec![1], steps: vec![-1] };
        let ax = rev.resolve(&s(&[2, 4])).unwrap();
        assert_eq!(ax[1], SliceAxis { start: 3, step: -1, len: 4 });
    }

    #[test]
    fn extreme_slice_and_pad_values_do_not_overflow() {
        let a = SliceAttrs { starts: vec![i64::MAX], ends: vec![i64::MIN], axes: vec![], steps: vec![i64::MIN] };
        assert_eq!(a.infer(&[&s(&[5])]).unwrap()[0], s(&[1]));
        assert_eq!(a.infer(&[&s(&[0])]).unwrap()[0], s(&[0]));
        let p = PadAttrs { pads: vec![i64::MAX, i64::MAX], ..Default::default() };
        assert_eq!(p.infer(&[&s(&[5])]).unwrap()[0], s(&[usize::MAX]));
        let crop = PadAttrs { pads: vec![i64::MIN, i64::MIN], ..Default::default() };
        assert!(crop.infer(&[&s(&[5])]).is_err());
    }

    #[test]
    fn depth_to_space_and_concat_shapes() {
        let d = DepthToSpaceAttrs { blocksize: 2, mode: DepthToSpaceMode::CRD };
        assert_eq!(d.infer(&[&s(&[1, 8, 2, 3])]).unwrap()[0], s(&[1, 2, 4, 6]));
        let c = ConcatAttrs { axis: -3 };
        assert_eq!(c.infer(&[&s(&[1, 2, 4, 4]), &s(&[1, 3, 4, 4])]).unwrap()[0], s(&[1, 5, 4, 4]));
        assert!(c.infer(&[&s(&[1, 2, 4, 4]), &s(&[1, 3, 4, 5])]).is_err());
    }

    #[test]
    fn flatten_and_transpose() {
        assert_eq!(FlattenAttrs { axis: 0 }.infer(&[&s(&[2, 3])]).unwrap()[0], s(&[1, 6]));
        assert_eq!(FlattenAttrs { axis: 2 }.infer(&[&s(&[2, 3])]).unwrap()[0], s(&[6, 1]));
        // ONNX: a negative axis counts from the rank.
        assert_eq!(FlattenAttrs { axis: -1 }.infer(&[&s(&[2, 3, 4])]).unwrap()[0], s(&[6, 4]));
        assert_eq!(FlattenAttrs { axis: -3 }.infer(&[&s(&[2, 3, 4])]).unwrap()[0], s(&[1, 24]));
        assert!(FlattenAttrs { axis: -4 }.infer(&[&s(&[2, 3, 4])]).is_err());
        assert_eq!(TransposeAttrs::default().infer(&[&s(&[2, 3, 4])]).unwrap()[0], s(&[4, 3, 2]));
        assert!(TransposeAttrs { perm: vec![0, 0] }.infer(&[&s(&[2, 3])]).is_err());
    }
}
