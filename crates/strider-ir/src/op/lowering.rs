//! Ops that lowerings of ConvTranspose introduce: zero insertion (input dilation), ONNX `Col2Im`, and
//! the sub-pixel kernel rearrangement. They are ordinary ops: shape rules here, kernels in the
//! interpreter, and weight-only ones fold into constants.

use serde::{Deserialize, Serialize};

use super::{ATTRIBUTE_MAX, OpError, OpRule};
use crate::shape::Shape;

/// `ZeroInsert`: puts stride − 1 zeros between neighbouring elements of every spatial axis
/// (out = (in − 1) · stride + 1), the "fractional striding" of a transposed convolution.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroInsertAttrs {
    /// Spacing per spatial axis (1 leaves the axis unchanged).
    pub strides: Vec<usize>,
}

impl OpRule for ZeroInsertAttrs {
    fn input_names(&self) -> &'static [&'static str] {
        &["X"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        let x = inputs[0];
        if x.rank() < 3 || self.strides.len() != x.rank() - 2 {
            return Err(OpError::attr("strides", format!("needs one value per spatial axis of {x}")));
        }
        if let Some(bad) = self.strides.iter().find(|&&s| s == 0 || s > ATTRIBUTE_MAX as usize) {
            return Err(OpError::attr("strides", format!("{bad} is outside 1 to {ATTRIBUTE_MAX}")));
        }
        let mut out = x.dims()[..2].to_vec();
        for (&d, &s) in x.dims()[2..].iter().zip(&self.strides) {
            out.push(if d == 0 { 0 } else { (d - 1).saturating_mul(s).saturating_add(1) });
        }
        Ok(vec![Shape(out)])
    }
    fn flops(&self, _: &[&Shape], _: &[Shape]) -> u64 {
        0
    }
}

/// ONNX `Col2Im` (its `image_shape` and `block_shape` inputs as attributes): scatter-adds the columns of
/// an (N, C·∏block, L) tensor into an (N, C, image…) image, each column a block at its sliding position.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Col2ImAttrs {
    /// Spatial shape of the output image.
    pub image_shape: Vec<usize>,
    /// Spatial shape of one block (the kernel).
    pub block_shape: Vec<usize>,
    /// Dilation per spatial axis (empty: 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dilations: Vec<usize>,
    /// Begin pads, then end pads (empty: 0).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pads: Vec<usize>,
    /// Stride per spatial axis (empty: 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strides: Vec<usize>,
}

/// One spatial axis of a Col2Im, resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Col2ImAxis {
    /// Image size.
    pub image: usize,
    /// Block size.
    pub block: usize,
    /// Dilation.
    pub dilation: usize,
    /// Begin pad.
    pub pad_begin: usize,
    /// End pad.
    pub pad_end: usize,
    /// Stride.
    pub stride: usize,
    /// Number of block positions along this axis.
    pub positions: usize,
}

impl Col2ImAttrs {
    /// Resolves every spatial axis.
    pub fn axes(&self) -> Result<Vec<Col2ImAxis>, OpError> {
        let rank = self.image_shape.len();
        if rank == 0 || self.block_shape.len() != rank {
            return Err(OpError::attr("block_shape", format!("needs {rank} values like image_shape")));
        }
        let in_range = |v: &[usize]| v.iter().all(|&x| x >= 1 && x <= ATTRIBUTE_MAX as usize);
        let or_ones = |name: &'static str, v: &[usize]| -> Result<Vec<usize>, OpError> {
            match v.len() {
                0 => Ok(vec![1; rank]),
                n if n == rank && in_range(v) => Ok(v.to_vec()),
                _ => Err(OpError::attr(name, format!("needs {rank} values, each from 1 to {ATTRIBUTE_MAX}"))),
            }
        };
        let (dilations, strides) = (or_ones("dilations", &self.dilations)?, or_ones("strides", &self.strides)?);
        let pads = if self.pads.is_empty() { vec![0; 2 * rank] } else { self.pads.clone() };
        if pads.len() != 2 * rank || pads.iter().any(|&p| p > ATTRIBUTE_MAX as usize) {
            return Err(OpError::attr("pads", format!("needs {} values, each at most {ATTRIBUTE_MAX}", 2 * rank)));
        }
        (0..rank)
            .map(|i| {
                let (image, block) = (self.image_shape[i], self.block_shape[i]);
                if image == 0 || block == 0 {
                    return Err(OpError::attr("image_shape", "sizes must be at least 1"));
                }
                let extent = (dilations[i] as u128) * (block as u128 - 1) + 1;
                let padded = image as u128 + pads[i] as u128 + pads[rank + i] as u128;
                if padded < extent {
                    return Err(OpError::attr(
                        "block_shape",
                        format!("block does not fit the padded image on axis {i}"),
                    ));
                }
                let positions = ((padded - extent) / strides[i] as u128 + 1) as usize;
                Ok(Col2ImAxis {
                    image,
                    block,
                    dilation: dilations[i],
                    pad_begin: pads[i],
                    pad_end: pads[rank + i],
                    stride: strides[i],
                    positions,
                })
            })
            .collect()
    }
}

impl OpRule for Col2ImAttrs {
    fn input_names(&self) -> &'static [&'static str] {
        &["input"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        let x = inputs[0];
        let axes = self.axes()?;
        let overflow = || OpError::attr("block_shape", "block and image sizes overflow");
        let block = axes.iter().try_fold(1usize, |acc, a| acc.checked_mul(a.block)).ok_or_else(overflow)?;
        let positions = axes.iter().try_fold(1usize, |acc, a| acc.checked_mul(a.positions)).ok_or_else(overflow)?;
        if x.rank() != 3 || x.dims()[1] % block != 0 || x.dims()[2] != positions {
            return Err(OpError::shape(
                "input",
                format!(
                    "(N, C·{block}, {positions}) for blocks {:?} on image {:?}",
                    self.block_shape, self.image_shape
                ),
                x,
            ));
        }
        let mut out = vec![x.dims()[0], x.dims()[1] / block];
        out.extend(&self.image_shape);
        Ok(vec![Shape(out)])
    }
    fn flops(&self, inputs: &[&Shape], _: &[Shape]) -> u64 {
        // One add per column element.
        inputs[0].numel() as u64
    }
}

/// `SubpixelKernel`: rearranges a ConvTranspose weight (C, M/group, k…) into the weight of the
/// stride-1 Conv that computes all s^d output phases at once, (M·∏s, C/group, L…) with
/// L = ⌊d·(k − 1)/s⌋ + 1. Output channel m·∏s + r holds phase r of output channel m; tap t of phase r
/// on an axis is `W[k]` for the k with k·d ≡ r (mod s) and ⌊k·d/s⌋ = L − 1 − t, zero where no k exists.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubpixelKernelAttrs {
    /// ConvTranspose strides.
    pub strides: Vec<usize>,
    /// ConvTranspose dilations (empty: 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dilations: Vec<usize>,
    /// ConvTranspose group.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub group: usize,
}

fn one() -> usize {
    1
}

fn is_one(v: &usize) -> bool {
    *v == 1
}

impl SubpixelKernelAttrs {
    /// Dilations with the default filled in.
    pub fn dilations_or_ones(&self) -> Vec<usize> {
        if self.dilations.is_empty() { vec![1; self.strides.len()] } else { self.dilations.clone() }
    }

    /// Sub-kernel length per axis for kernel sizes `k`.
    pub fn taps(&self, k: &[usize]) -> Vec<usize> {
        let d = self.dilations_or_ones();
        k.iter().zip(&self.strides).zip(&d).map(|((&k, &s), &d)| d * (k - 1) / s + 1).collect()
    }
}

impl OpRule for SubpixelKernelAttrs {
    fn input_names(&self) -> &'static [&'static str] {
        &["W"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        let w = inputs[0];
        let rank = self.strides.len();
        let dilations = self.dilations_or_ones();
        check_weight_op(w, rank, "(C, M/group, k…)", &[("strides", &self.strides), ("dilations", &dilations)])?;
        check_group(w, self.group)?;
        let phases = checked_product(&self.strides, "strides")?;
        let mut out = vec![w.dims()[1].saturating_mul(self.group).saturating_mul(phases), w.dims()[0] / self.group];
        out.extend(self.taps(&w.dims()[2..]));
        Ok(vec![Shape(out)])
    }
    fn flops(&self, _: &[&Shape], _: &[Shape]) -> u64 {
        0
    }
}

/// `ResizeConvKernel`: the weight of the phase convolution that computes Conv(Upsample_nearest(x, f))
/// directly on x (resize-conv fusion). For a stride-1 Conv weight (M, C/group, k…) with dilation d and
/// begin pad p, output phase r on an axis reads x at offset ⌊(r + t·d − p)/f⌋ through tap t, so the
/// fused weight is (M·∏f, C/group, L…) with channel m·∏f + r and tap e summing every W tap t whose
/// offset is e + ⌊−p/f⌋; L = ⌊(f − 1 + d·(k − 1) − p)/f⌋ − ⌊−p/f⌋ + 1.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResizeConvKernelAttrs {
    /// Upsampling factor per spatial axis.
    pub factors: Vec<usize>,
    /// Conv dilation per spatial axis.
    pub dilations: Vec<usize>,
    /// Conv begin pad per spatial axis.
    pub pads_begin: Vec<usize>,
}

impl ResizeConvKernelAttrs {
    /// Lowest low-resolution offset any tap reads: ⌊−p/f⌋ per axis.
    pub fn first_offset(&self) -> Vec<i64> {
        self.pads_begin.iter().zip(&self.factors).map(|(&p, &f)| (-(p as i64)).div_euclid(f as i64)).collect()
    }

    /// Fused kernel length per axis for kernel sizes `k`.
    pub fn taps(&self, k: &[usize]) -> Vec<usize> {
        (0..k.len())
            .map(|a| {
                let (f, d, p) = (self.factors[a] as i64, self.dilations[a] as i64, self.pads_begin[a] as i64);
                let last = (f - 1 + d * (k[a] as i64 - 1) - p).div_euclid(f);
                (last - (-p).div_euclid(f) + 1) as usize
            })
            .collect()
    }
}

impl OpRule for ResizeConvKernelAttrs {
    fn input_names(&self) -> &'static [&'static str] {
        &["W"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        let w = inputs[0];
        let rank = self.factors.len();
        check_weight_op(w, rank, "(M, C/group, k…)", &[("factors", &self.factors), ("dilations", &self.dilations)])?;
        if self.pads_begin.len() != rank || self.pads_begin.iter().any(|&p| p > ATTRIBUTE_MAX as usize) {
            return Err(OpError::attr("pads_begin", format!("needs {rank} values, each at most {ATTRIBUTE_MAX}")));
        }
        let phases = checked_product(&self.factors, "factors")?;
        let mut out = vec![w.dims()[0].saturating_mul(phases), w.dims()[1]];
        out.extend(self.taps(&w.dims()[2..]));
        Ok(vec![Shape(out)])
    }
    fn flops(&self, _: &[&Shape], _: &[Shape]) -> u64 {
        0
    }
}

/// `PhaseKernel`: the taps of a ConvTranspose weight (C, M/group, k…) that serve one output phase r
/// (per axis, the taps k with k·d ≡ r mod s), as the weight (M, C/group, L…) of a stride-1 Conv:
/// tap t holds `W[k]` for ⌊k·d/s⌋ = J − t, where J is the largest such offset and L = J − J₀ + 1.
/// Unlike `SubpixelKernel`, each phase keeps only its own window, so no tap is padding.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseKernelAttrs {
    /// ConvTranspose strides.
    pub strides: Vec<usize>,
    /// ConvTranspose dilations.
    pub dilations: Vec<usize>,
    /// ConvTranspose group.
    pub group: usize,
    /// The phase r per spatial axis (each below its stride).
    pub phase: Vec<usize>,
}

impl PhaseKernelAttrs {
    /// Per axis, the smallest and largest offset ⌊k·d/s⌋ among the taps of this phase, or `None` when
    /// the phase has no tap on some axis.
    pub fn offsets(&self, kernel: &[usize]) -> Option<Vec<(usize, usize)>> {
        (0..kernel.len())
            .map(|a| {
                let (s, d, r) = (self.strides[a], self.dilations[a], self.phase[a]);
                let js = (0..kernel[a]).filter(|k| (k * d) % s == r).map(|k| k * d / s);
                let (lo, hi) = js.fold((usize::MAX, 0), |(lo, hi), j| (lo.min(j), hi.max(j)));
                (lo != usize::MAX).then_some((lo, hi))
            })
            .collect()
    }
}

impl OpRule for PhaseKernelAttrs {
    fn input_names(&self) -> &'static [&'static str] {
        &["W"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        let w = inputs[0];
        let rank = self.strides.len();
        check_weight_op(w, rank, "(C, M/group, k…)", &[("strides", &self.strides), ("dilations", &self.dilations)])?;
        if self.phase.len() != rank {
            return Err(OpError::attr("phase", format!("has {} values, expected {rank}", self.phase.len())));
        }
        if self.phase.iter().zip(&self.strides).any(|(r, s)| r >= s) {
            return Err(OpError::attr("phase", "each phase must be smaller than its stride"));
        }
        check_group(w, self.group)?;
        let offsets =
            self.offsets(&w.dims()[2..]).ok_or_else(|| OpError::attr("phase", "no kernel tap serves this phase"))?;
        let mut out = vec![w.dims()[1] * self.group, w.dims()[0] / self.group];
        out.extend(offsets.iter().map(|(lo, hi)| hi - lo + 1));
        Ok(vec![Shape(out)])
    }
    fn flops(&self, _: &[&Shape], _: &[Shape]) -> u64 {
        0
    }
}

/// Checks a weight-rearranging op's input and attributes: W has `rank` spatial axes (1 to 3) and a
/// non-empty kernel, and every per-axis list has `rank` values in 1..=ATTRIBUTE_MAX, so that sizes
/// derived from them are exact in 64-bit arithmetic.
fn check_weight_op(w: &Shape, rank: usize, layout: &str, lists: &[(&'static str, &[usize])]) -> Result<(), OpError> {
    if w.rank() != rank + 2 || !(1..=3).contains(&rank) {
        return Err(OpError::shape("W", format!("{layout} with {rank} spatial axes"), w));
    }
    if w.dims()[2..].contains(&0) {
        return Err(OpError::shape("W", "a non-empty kernel", w));
    }
    for (name, values) in lists {
        if values.len() != rank {
            return Err(OpError::attr(
                name,
                format!("has {} values, expected {rank} (one per spatial axis)", values.len()),
            ));
        }
        if let Some(bad) = values.iter().find(|&&v| v == 0 || v > ATTRIBUTE_MAX as usize) {
            return Err(OpError::attr(name, format!("{bad} is outside 1 to {ATTRIBUTE_MAX}")));
        }
    }
    Ok(())
}

/// Product of per-axis counts, or an error naming `what` when it overflows.
fn checked_product(values: &[usize], what: &'static str) -> Result<usize, OpError> {
    values
        .iter()
        .try_fold(1usize, |acc, &v| acc.checked_mul(v))
        .ok_or_else(|| OpError::attr(what, "the product overflows"))
}

/// Checks that `group` divides the input channels of a ConvTranspose weight (C, M/group, k…).
fn check_group(w: &Shape, group: usize) -> Result<(), OpError> {
    if group == 0 || w.dims()[0] % group != 0 {
        return Err(OpError::attr("group", format!("{group} does not divide the {} input channels", w.dims()[0])));
    }
    Ok(())
}
