//! Lowerings of ConvTranspose. Each rule matches a bias-free ConvTranspose (`bias_is_add` splits the
//! bias off first) and states an exact identity under the conditions its applier checks.

use egg::{Id, rewrite};
use strider_ir::Op;
use strider_ir::op::{
    AxisGeometry, Col2ImAttrs, ConcatAttrs, ConvAttrs, ConvMatrixAttrs, ConvTransposeAttrs, DepthToSpaceAttrs,
    DepthToSpaceMode, PhaseKernelAttrs, SliceAttrs, SparseMatMulAttrs, SubpixelKernelAttrs, ZeroInsertAttrs,
};

use super::{Lower, Matched, Rule};

/// The matched ConvTranspose: attributes, resolved geometry and the shapes of X and W.
struct Parts {
    attrs: ConvTransposeAttrs,
    geometry: Vec<AxisGeometry>,
    x: Vec<usize>,
    w: Vec<usize>,
}

impl Parts {
    fn of(m: &Matched) -> Option<Parts> {
        let Op::ConvTranspose(attrs) = &m.op else { return None };
        let (x, w) = (m.shape(m.inputs[0])?, m.shape(m.inputs[1])?);
        let geometry = attrs.geometry(&x, &w).ok()?;
        Some(Parts { attrs: attrs.clone(), geometry, x: x.0, w: w.0 })
    }
    fn rank(&self) -> usize {
        self.geometry.len()
    }
    fn out_channels(&self) -> usize {
        self.w[1] * self.attrs.group
    }
    fn kernel_len(&self) -> usize {
        self.w[2..].iter().product()
    }
    fn strides(&self) -> Vec<usize> {
        self.geometry.iter().map(|a| a.stride).collect()
    }
    fn dilations(&self) -> Vec<usize> {
        self.geometry.iter().map(|a| a.dilation).collect()
    }
    /// Output length before cropping: s·(in − 1) + output_padding + d·(k − 1) + 1.
    fn full(a: &AxisGeometry) -> usize {
        a.stride * (a.input - 1) + a.output_padding + a.dilation * (a.kernel - 1) + 1
    }
}

/// `(ConvTranspose ?a ?x ?w ?b)` = `Add(ConvTranspose(?a, ?x, ?w), Reshape(?b, [M, 1, …]))`: the bias
/// is a per-channel add. Lowerings match the bias-free form.
pub fn bias_is_add() -> Rule {
    rewrite!("convtranspose-bias-is-add"; "(ConvTranspose ?a ?x ?w ?b)" => { Lower::new(&["?a", "?x", "?w", "?b"], split_bias) })
}

fn split_bias(m: &mut Matched) -> Option<Id> {
    let parts = Parts::of(m)?;
    let (x, w, b) = (m.inputs[0], m.inputs[1], m.inputs[2]);
    let plain = m.add(m.op.clone(), &[x, w], "nobias")?;
    let mut shape = vec![parts.out_channels()];
    shape.extend(std::iter::repeat_n(1, parts.rank()));
    let bias = m.reshape(b, &shape, "bias")?;
    m.add(Op::Add, &[plain, bias], "add_bias")
}

/// ConvTranspose(x, W) = Conv(Pad(ZeroInsert(x, s), d·(k−1) − pads (+ output_padding at the end)),
/// flip(W) with input and output channels swapped per group, dilation d, stride 1).
/// Negative padding is a crop. Holds for every stride, dilation, padding, output_padding and group.
pub fn zero_insert_conv() -> Rule {
    rewrite!("convtranspose-to-zero-insert-conv"; "(ConvTranspose ?a ?x ?w)" => { Lower::new(&["?a", "?x", "?w"], zero_insert) })
}

fn zero_insert(m: &mut Matched) -> Option<Id> {
    let p = Parts::of(m)?;
    let (x, w) = (m.inputs[0], m.inputs[1]);
    let rank = p.rank();
    let mut z = x;
    if p.geometry.iter().any(|a| a.stride > 1) {
        z = m.add(Op::ZeroInsert(ZeroInsertAttrs { strides: p.strides() }), &[x], "zero_insert")?;
    }
    let reach = |a: &AxisGeometry| (a.dilation * (a.kernel - 1)) as i64;
    let begin: Vec<i64> = p.geometry.iter().map(|a| reach(a) - a.pad_begin).collect();
    let end: Vec<i64> = p.geometry.iter().map(|a| reach(a) - a.pad_end + a.output_padding as i64).collect();
    // Conv pads non-negative amounts itself; with a crop anywhere, one Pad does both (a crop alone
    // could empty an axis that the padding at its other end refills).
    let pads = if begin.iter().chain(&end).any(|&p| p < 0) {
        z = m.pad_spatial(z, &begin, &end, "pad")?;
        vec![0; 2 * rank]
    } else {
        [begin, end].concat()
    };
    let flipped = m.add(
        Op::Slice(SliceAttrs {
            starts: vec![-1; rank],
            ends: vec![i64::MIN; rank],
            axes: (2..2 + rank as i64).collect(),
            steps: vec![-1; rank],
        }),
        &[w],
        "flip",
    )?;
    let g = p.attrs.group;
    let (c, mg) = (p.w[0], p.w[1]);
    let spatial_perm = (2..2 + rank).collect::<Vec<_>>();
    let kernel = if g == 1 {
        m.transpose(flipped, [vec![1, 0], spatial_perm].concat(), "swap_channels")?
    } else {
        let grouped = m.reshape(flipped, &[&[g, c / g, mg][..], &p.w[2..]].concat(), "group_kernel")?;
        let perm = [vec![0, 2, 1], (3..3 + rank).collect()].concat();
        let swapped = m.transpose(grouped, perm, "swap_channels")?;
        m.reshape(swapped, &[&[g * mg, c / g][..], &p.w[2..]].concat(), "conv_kernel")?
    };
    let conv = ConvAttrs { dilations: p.dilations(), group: g, pads, ..Default::default() };
    m.add(Op::Conv(conv), &[z, kernel], "conv")
}

/// ConvTranspose(x, W) = Col2Im(Wᵀ·x) per group: the columns are one MatMul over input channels, and
/// Col2Im scatter-adds each column's kernel-sized block into the output. Negative derived pads become
/// zero padding after Col2Im. Condition: output_padding < stride on every axis (so the block count of
/// Col2Im equals the input size).
pub fn gemm_col2im() -> Rule {
    rewrite!("convtranspose-to-gemm-col2im"; "(ConvTranspose ?a ?x ?w)" => { Lower::new(&["?a", "?x", "?w"], col2im) })
}

fn col2im(m: &mut Matched) -> Option<Id> {
    let p = Parts::of(m)?;
    if p.geometry.iter().any(|a| a.output_padding >= a.stride) {
        return None;
    }
    let (x, w) = (m.inputs[0], m.inputs[1]);
    let (n, c, g) = (p.x[0], p.x[1], p.attrs.group);
    let (mg, k, l) = (p.w[1], p.kernel_len(), p.x[2..].iter().product::<usize>());
    let cols = if g == 1 {
        let xr = m.reshape(x, &[n, c, l], "x_matrix")?;
        let wr = m.reshape(w, &[c, mg * k], "w_matrix")?;
        let wt = m.transpose(wr, vec![1, 0], "w_transposed")?;
        m.add(Op::MatMul, &[wt, xr], "columns")?
    } else {
        let xr = m.reshape(x, &[n, g, c / g, l], "x_matrix")?;
        let wr = m.reshape(w, &[g, c / g, mg * k], "w_matrix")?;
        let wt = m.transpose(wr, vec![0, 2, 1], "w_transposed")?;
        let cols = m.add(Op::MatMul, &[wt, xr], "group_columns")?;
        m.reshape(cols, &[n, g * mg * k, l], "columns")?
    };
    let nonneg = |v: i64| v.max(0) as usize;
    let image_shape =
        p.geometry.iter().map(|a| Parts::full(a) - nonneg(a.pad_begin) - nonneg(a.pad_end)).collect::<Vec<_>>();
    let pads = [
        p.geometry.iter().map(|a| nonneg(a.pad_begin)).collect::<Vec<_>>(),
        p.geometry.iter().map(|a| nonneg(a.pad_end)).collect(),
    ]
    .concat();
    let attrs = Col2ImAttrs {
        image_shape,
        block_shape: p.w[2..].to_vec(),
        dilations: p.dilations(),
        pads,
        strides: p.strides(),
    };
    let image = m.add(Op::Col2Im(attrs), &[cols], "col2im")?;
    let extra = |v: i64| (-v).max(0);
    let begin: Vec<i64> = p.geometry.iter().map(|a| extra(a.pad_begin)).collect();
    let end: Vec<i64> = p.geometry.iter().map(|a| extra(a.pad_end)).collect();
    m.pad_spatial(image, &begin, &end, "extend")
}

/// ConvTranspose(x, W) = crop(interleave(Conv(x, SubpixelKernel(W), stride 1))): output phase r (of
/// ∏s) is a stride-1 convolution of x with the taps of W that land on r; the phases are interleaved
/// (DepthToSpace in CRD order when all strides are equal, Reshape/Transpose otherwise), then cropped
/// (or padded) to the output. No multiplication touches an inserted zero unless dilation leaves gaps
/// in a sub-kernel. Holds for every stride, dilation, padding, output_padding and group.
pub fn subpixel() -> Rule {
    rewrite!("convtranspose-to-subpixel-conv"; "(ConvTranspose ?a ?x ?w)" => { Lower::new(&["?a", "?x", "?w"], subpixel_conv) })
}

fn subpixel_conv(m: &mut Matched) -> Option<Id> {
    let p = Parts::of(m)?;
    let (x, w) = (m.inputs[0], m.inputs[1]);
    let strides = p.strides();
    let sub = SubpixelKernelAttrs { strides: strides.clone(), dilations: p.dilations(), group: p.attrs.group };
    let taps = sub.taps(&p.w[2..]);
    let wsub = m.add(Op::SubpixelKernel(sub), &[w], "subpixel_kernel")?;
    let q: Vec<usize> = p.geometry.iter().map(|a| Parts::full(a).div_ceil(a.stride)).collect();
    let pads = [
        taps.iter().map(|&t| t as i64 - 1).collect::<Vec<_>>(),
        q.iter().zip(&p.x[2..]).map(|(&q, &i)| (q - i) as i64).collect(),
    ]
    .concat();
    let conv = ConvAttrs { group: p.attrs.group, pads, ..Default::default() };
    let phases = m.add(Op::Conv(conv), &[x, wsub], "phases")?;
    let interleaved = m.interleave_phases(phases, p.x[0], p.out_channels(), &strides, &q)?;
    let begin: Vec<i64> = p.geometry.iter().map(|a| -a.pad_begin).collect();
    let end: Vec<i64> =
        p.geometry.iter().zip(&q).map(|(a, &q)| a.output as i64 + a.pad_begin - (q * a.stride) as i64).collect();
    m.pad_spatial(interleaved, &begin, &end, "crop")
}

/// With a 1×…×1 spatial input, group 1, dilation 1 and output_padding 0, ConvTranspose(x, W) is
/// crop(Reshape(Reshape(x, [N, C]) · Reshape(W, [C, M·∏k]), [N, M, k…])) — DCGAN's first layer.
pub fn matmul_1x1_input() -> Rule {
    rewrite!("convtranspose-1x1-input-to-matmul"; "(ConvTranspose ?a ?x ?w)" => { Lower::new(&["?a", "?x", "?w"], matmul_1x1) })
}

fn matmul_1x1(m: &mut Matched) -> Option<Id> {
    let p = Parts::of(m)?;
    let legal =
        p.attrs.group == 1 && p.geometry.iter().all(|a| a.input == 1 && a.dilation == 1 && a.output_padding == 0);
    if !legal {
        return None;
    }
    let (x, w) = (m.inputs[0], m.inputs[1]);
    let (n, c, mo, k) = (p.x[0], p.x[1], p.out_channels(), p.kernel_len());
    let xr = m.reshape(x, &[n, c], "x_matrix")?;
    let wr = m.reshape(w, &[c, mo * k], "w_matrix")?;
    let product = m.add(Op::MatMul, &[xr, wr], "matmul")?;
    let image = m.reshape(product, &[&[n, mo][..], &p.w[2..]].concat(), "image")?;
    let begin: Vec<i64> = p.geometry.iter().map(|a| -a.pad_begin).collect();
    let end: Vec<i64> = p.geometry.iter().map(|a| -a.pad_end).collect();
    m.pad_spatial(image, &begin, &end, "crop")
}

/// With kernel = stride, no padding, dilation 1, output_padding 0 and group 1, every input pixel owns
/// a disjoint k-block of the output: ConvTranspose(x, W) = Reshape(Transpose(Reshape(
/// Transpose(x → N, spatial…, C) · Reshape(W, [C, M·∏k]))) — U-Net's k2 s2 up-convolution.
pub fn matmul_kernel_equals_stride() -> Rule {
    rewrite!("convtranspose-kernel-equals-stride-to-matmul"; "(ConvTranspose ?a ?x ?w)" => { Lower::new(&["?a", "?x", "?w"], matmul_blocks) })
}

fn matmul_blocks(m: &mut Matched) -> Option<Id> {
    let p = Parts::of(m)?;
    let legal = p.attrs.group == 1
        && p.geometry.iter().all(|a| {
            a.kernel == a.stride && a.dilation == 1 && a.output_padding == 0 && a.pad_begin == 0 && a.pad_end == 0
        });
    if !legal {
        return None;
    }
    let (x, w) = (m.inputs[0], m.inputs[1]);
    let rank = p.rank();
    let (n, c, mo, k) = (p.x[0], p.x[1], p.out_channels(), p.kernel_len());
    let spatial = &p.x[2..];
    let channels_last = m.transpose(x, [vec![0], (2..2 + rank).collect(), vec![1]].concat(), "channels_last")?;
    let wr = m.reshape(w, &[c, mo * k], "w_matrix")?;
    let product = m.add(Op::MatMul, &[channels_last, wr], "matmul")?;
    let blocks = m.reshape(product, &[&[n][..], spatial, &[mo], &p.w[2..]].concat(), "blocks")?;
    let mut perm = vec![0, 1 + rank];
    for a in 0..rank {
        perm.extend([1 + a, 2 + rank + a]);
    }
    let placed = m.transpose(blocks, perm, "place_blocks")?;
    let out: Vec<usize> = spatial.iter().zip(&p.w[2..]).map(|(i, k)| i * k).collect();
    m.reshape(placed, &[&[n, mo][..], &out].concat(), "image")
}

/// ConvTranspose(x, W) = Reshape(vec(x) · C, [N, M, out…]) = Cᵀ·vec(x) per batch element, where C =
/// ConvMatrix(W) is the sparse matrix of the convolution with the same weights and attributes (rows:
/// input positions × channels, columns: output positions × channels) — the identity that gives
/// transposed convolution its name. Holds for every stride, dilation, padding, output_padding and group.
pub fn sparse_matrix_transpose() -> Rule {
    rewrite!("convtranspose-to-sparse-matrix-transpose"; "(ConvTranspose ?a ?x ?w)" => { Lower::new(&["?a", "?x", "?w"], sparse_matmul) })
}

fn sparse_matmul(m: &mut Matched) -> Option<Id> {
    let p = Parts::of(m)?;
    let (x, w) = (m.inputs[0], m.inputs[1]);
    let attrs = ConvMatrixAttrs { input_shape: p.x[2..].to_vec(), conv_transpose: p.attrs.clone() };
    let matrix = m.add(Op::ConvMatrix(attrs), &[w], "conv_matrix")?;
    let rows = m.reshape(x, &[p.x[0], p.x[1..].iter().product()], "x_rows")?;
    let product = m.add(Op::SparseMatMul(SparseMatMulAttrs {}), &[rows, matrix], "sparse_matmul")?;
    let out: Vec<usize> = p.geometry.iter().map(|a| a.output).collect();
    m.reshape(product, &[&[p.x[0], p.out_channels()][..], &out].concat(), "image")
}

/// ConvTranspose(x, W) = interleave(Conv(x_window_b, PhaseKernel_b(W)) for each output block b): output
/// position o with o ≡ b (mod s) is phase r = (b + pad_begin) mod s, a stride-1 convolution of x with
/// only the taps of W that land on r, computed exactly at the n = out / s positions of its block; the
/// blocks are concatenated and interleaved by DepthToSpace (DCR order). Unlike the sub-pixel form no
/// position is computed and then cropped, and no tap is padding (for dilation 1). Conditions: every
/// output length is a multiple of its stride, and every phase has at least one tap. A bias goes into
/// every phase convolution (each computes all M output channels).
pub fn exact_phases() -> Vec<Rule> {
    vec![
        rewrite!("convtranspose-to-exact-phase-convs"; "(ConvTranspose ?a ?x ?w)" => { Lower::new(&["?a", "?x", "?w"], exact_phase_convs) }),
        rewrite!("biased-convtranspose-to-exact-phase-convs"; "(ConvTranspose ?a ?x ?w ?b)" => { Lower::new(&["?a", "?x", "?w", "?b"], exact_phase_convs) }),
    ]
}

fn exact_phase_convs(m: &mut Matched) -> Option<Id> {
    let p = Parts::of(m)?;
    if p.geometry.iter().any(|a| a.output % a.stride != 0) {
        return None;
    }
    let (x, w, bias) = (m.inputs[0], m.inputs[1], m.inputs.get(2).copied());
    let rank = p.rank();
    let strides = p.strides();
    let n: Vec<usize> = p.geometry.iter().map(|a| a.output / a.stride).collect();
    // Each phase adds its kernel, maybe a window Pad, and its Conv (an attribute and an apply node
    // each); the interleave a few more.
    let blocks = strides.iter().try_fold(1usize, |acc, &s| acc.checked_mul(s))?;
    if !m.may_add(blocks.saturating_mul(6).saturating_add(8), || format!("{blocks} phases of strides {strides:?}")) {
        return None;
    }
    let mut phases = Vec::with_capacity(blocks);
    for flat in 0..blocks {
        // Block multi-index, row-major, and the phase it holds.
        let mut b = vec![0usize; rank];
        let mut rest = flat;
        for a in (0..rank).rev() {
            b[a] = rest % strides[a];
            rest /= strides[a];
        }
        let phase: Vec<usize> = p
            .geometry
            .iter()
            .zip(&b)
            .map(|(g, &b)| (b as i64 + g.pad_begin).rem_euclid(g.stride as i64) as usize)
            .collect();
        let attrs =
            PhaseKernelAttrs { strides: strides.clone(), dilations: p.dilations(), group: p.attrs.group, phase };
        let offsets = attrs.offsets(&p.w[2..])?;
        let (mut begin, mut end) = (Vec::with_capacity(rank), Vec::with_capacity(rank));
        for (a, g) in p.geometry.iter().enumerate() {
            let (s, r) = (g.stride as i64, attrs.phase[a] as i64);
            let first_q = -((r - g.pad_begin).div_euclid(s));
            let (lo, hi) = (offsets[a].0 as i64, offsets[a].1 as i64);
            let pad_begin = hi - first_q;
            begin.push(pad_begin);
            end.push(n[a] as i64 - g.input as i64 - pad_begin + (hi - lo + 1) - 1);
        }
        let kernel = m.add(Op::PhaseKernel(attrs), &[w], &format!("phase{flat}_kernel"))?;
        let (input, pads) = if begin.iter().chain(&end).any(|&v| v < 0) {
            (m.pad_spatial(x, &begin, &end, &format!("phase{flat}_window"))?, vec![0; 2 * rank])
        } else {
            (x, [begin, end].concat())
        };
        let conv = ConvAttrs { group: p.attrs.group, pads, ..Default::default() };
        let operands: Vec<Id> = [input, kernel].into_iter().chain(bias).collect();
        phases.push(m.add(Op::Conv(conv), &operands, &format!("phase{flat}"))?);
    }
    if blocks == 1 {
        return Some(phases[0]);
    }
    let stacked = m.add(Op::Concat(ConcatAttrs { axis: 1 }), &phases, "blocks")?;
    let (batch, channels) = (p.x[0], p.out_channels());
    if strides.iter().all(|&s| s == strides[0]) {
        let d2s = DepthToSpaceAttrs { blocksize: strides[0], mode: DepthToSpaceMode::DCR };
        return m.add(Op::DepthToSpace(d2s), &[stacked], "interleave");
    }
    // DCR order by hand: (N, s…, M, n…) → (N, M, n₁, s₁, n₂, s₂, …).
    let split = m.reshape(stacked, &[&[batch][..], &strides, &[channels], &n].concat(), "split_blocks")?;
    let mut perm = vec![0, 1 + rank];
    for a in 0..rank {
        perm.extend([2 + rank + a, 1 + a]);
    }
    let moved = m.transpose(split, perm, "interleave")?;
    let out: Vec<usize> = p.geometry.iter().map(|a| a.output).collect();
    m.reshape(moved, &[&[batch, channels][..], &out].concat(), "merge_blocks")
}
