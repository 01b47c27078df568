//! What the engine does to compute an op, for cost models: which kernel it dispatches to (the same
//! decisions [`conv`](super::conv) and [`conv_transpose`](super::conv_transpose) make) and the bytes
//! that kernel moves — operands, result and the im2col / column workspace it fills and reads back.
//! A profile calibrated per kernel then prices an op the way this engine will run it.

use serde::{Deserialize, Serialize};
use strider_ir::{Layout, Op, Shape};

use super::direct;
use super::geometry::{padded, volume};

/// The kernel family an op runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kernel {
    /// Conv with few channels per group, computed directly.
    ConvDirect,
    /// 1×1, stride-1, unpadded Conv: one GEMM on the input as it is.
    ConvPointwise,
    /// Conv as im2col + GEMM.
    ConvIm2col,
    /// ConvTranspose with few channels per group, computed directly.
    ConvTransposeDirect,
    /// ConvTranspose as GEMM + col2im.
    ConvTransposeGemm,
    /// Dense matrix product.
    MatMul,
    /// Sparse matrix times dense matrix.
    SparseMatMul,
    /// Scatter-add of columns into an image.
    Col2Im,
    /// Everything else: element-wise, layout and resize ops, bound by memory.
    Memory,
}

impl Kernel {
    /// Every kernel family.
    pub const ALL: [Kernel; 9] = [
        Kernel::ConvDirect,
        Kernel::ConvPointwise,
        Kernel::ConvIm2col,
        Kernel::ConvTransposeDirect,
        Kernel::ConvTransposeGemm,
        Kernel::MatMul,
        Kernel::SparseMatMul,
        Kernel::Col2Im,
        Kernel::Memory,
    ];
}

/// An op's work on the engine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KernelWork {
    /// The kernel it runs on.
    pub kernel: Kernel,
    /// Floating-point operations.
    pub flops: f64,
    /// Bytes read and written: operands, result, and workspace written and read back.
    pub bytes: f64,
}

/// How the engine computes `op` on inputs of `inputs` shapes stored as `layouts`, giving `output`.
pub fn kernel_work(op: &Op, inputs: &[&Shape], layouts: &[Layout], output: &Shape) -> KernelWork {
    let flops = op.flops_with_layouts(inputs, layouts, std::slice::from_ref(output)) as f64;
    let operands: usize = inputs.iter().zip(layouts).map(|(s, l)| l.size_bytes(s, 4)).sum();
    let bytes = (operands + output.numel() * 4) as f64;
    // Columns are written once and read once: 8 bytes per element.
    let with_columns = |kernel, columns: usize| KernelWork { kernel, flops, bytes: bytes + 8.0 * columns as f64 };
    let memory = KernelWork { kernel: Kernel::Memory, flops, bytes };
    match op {
        Op::Conv(a) => {
            let (x, w) = (inputs[0], inputs[1]);
            let Some(g) = a.geometry(x, w).ok().and_then(|g| padded(&g).ok()) else { return memory };
            let groups = a.group.max(1);
            let (n, c, m) = (x.dims()[0], x.dims()[1], w.dims()[0]);
            let (k_len, out_len) = (volume(&g, |a| a.kernel), volume(&g, |a| a.output));
            let pointwise = k_len == 1 && g.iter().all(|a| a.stride == 1 && a.pad_begin == 0 && a.input == a.output);
            if direct::prefers_direct(c / groups, m / groups) {
                KernelWork { kernel: Kernel::ConvDirect, flops, bytes }
            } else if pointwise {
                KernelWork { kernel: Kernel::ConvPointwise, flops, bytes }
            } else {
                with_columns(Kernel::ConvIm2col, n * c * k_len * out_len)
            }
        }
        Op::ConvTranspose(a) => {
            let (x, w) = (inputs[0], inputs[1]);
            let Some(g) = a.geometry(x, w).ok().and_then(|g| padded(&g).ok()) else { return memory };
            let groups = a.group.max(1);
            let (n, c, mg) = (x.dims()[0], x.dims()[1], w.dims()[1]);
            let (k_len, in_len) = (volume(&g, |a| a.kernel), volume(&g, |a| a.input));
            if direct::prefers_direct(c / groups, mg) {
                KernelWork { kernel: Kernel::ConvTransposeDirect, flops, bytes }
            } else {
                with_columns(Kernel::ConvTransposeGemm, n * mg * groups * k_len * in_len)
            }
        }
        Op::MatMul => KernelWork { kernel: Kernel::MatMul, flops, bytes },
        Op::SparseMatMul(_) => KernelWork { kernel: Kernel::SparseMatMul, flops, bytes },
        Op::Col2Im(_) => KernelWork { kernel: Kernel::Col2Im, flops, bytes },
        _ => memory,
    }
}

#[cfg(test)]
mod tests {
    use strider_ir::op::{ConvAttrs, ConvTransposeAttrs};

    use super::*;

    fn shape(d: &[usize]) -> Shape {
        Shape(d.to_vec())
    }

    #[test]
    fn convolutions_are_dispatched_as_the_kernels_do() {
        let dense = [Layout::Dense; 2];
        let (x, w, y) = (shape(&[1, 64, 8, 8]), shape(&[32, 64, 3, 3]), shape(&[1, 32, 6, 6]));
        let im2col = kernel_work(&Op::Conv(ConvAttrs::default()), &[&x, &w], &dense, &y);
        assert_eq!(im2col.kernel, Kernel::ConvIm2col);
        // Operands, result, and 64·9·36 column elements written and read.
        assert_eq!(im2col.bytes, (4 * (64 * 64 + 32 * 64 * 9 + 32 * 36) + 8 * 64 * 9 * 36) as f64);
        let (w1, y1) = (shape(&[32, 64, 1, 1]), shape(&[1, 32, 8, 8]));
        assert_eq!(kernel_work(&Op::Conv(ConvAttrs::default()), &[&x, &w1], &dense, &y1).kernel, Kernel::ConvPointwise);
        let depthwise = ConvAttrs { group: 64, ..Default::default() };
        let (wd, yd) = (shape(&[64, 1, 3, 3]), shape(&[1, 64, 6, 6]));
        assert_eq!(kernel_work(&Op::Conv(depthwise), &[&x, &wd], &dense, &yd).kernel, Kernel::ConvDirect);
        let up = ConvTransposeAttrs { strides: vec![2, 2], ..Default::default() };
        let (wt, yt) = (shape(&[64, 16, 2, 2]), shape(&[1, 16, 16, 16]));
        let gemm = kernel_work(&Op::ConvTranspose(up), &[&x, &wt], &dense, &yt);
        assert_eq!(gemm.kernel, Kernel::ConvTransposeGemm);
        assert_eq!(gemm.flops, (2 * 64 * 16 * 4 * 64) as f64);
        assert_eq!(kernel_work(&Op::Relu, &[&x], &dense[..1], &x).kernel, Kernel::Memory);
    }
}
