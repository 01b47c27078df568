//! Sparse kernels: building the convolution matrix C of a ConvTranspose (column storage, via sprs) and the
//! product of dense rows with a CSR matrix.

use ndarray::{ArrayD, ArrayViewD};
use rayon::prelude::*;
use sprs::CsMat;
use strider_ir::Shape;
use strider_ir::op::ConvMatrixAttrs;

use super::reference::scatter_triples;
use super::{Ctx, KernelError, array, cartesian};

/// C with C[c·∏in + i, (g·M/g + m)·∏out + o] = W[c, m, k] for every tap k with
/// o = i·stride + k·dilation − pad_begin inside the output (g = c's group). Stored by columns (CSC):
/// a column of C is what one output element sums, which is how the dense × sparse product reads it.
pub fn conv_matrix(attrs: &ConvMatrixAttrs, w: &ArrayViewD<f32>) -> Result<CsMat<f32>, KernelError> {
    let w_shape = Shape(w.shape().to_vec());
    let geometry = attrs.conv_transpose.geometry(&attrs.x_shape(&w_shape), &w_shape)?;
    let (c, mg, groups) = (w.shape()[0], w.shape()[1], attrs.conv_transpose.group);
    let cg = c / groups;
    let in_len: usize = geometry.iter().map(|a| a.input).product();
    let out_of_memory = |elements| KernelError::OutOfMemory { elements };
    // The matrix may be empty (no weight channels) while its output positions cannot be counted.
    let out_len = geometry.iter().try_fold(1usize, |n, a| n.checked_mul(a.output)).ok_or(out_of_memory(usize::MAX))?;
    let k_len: usize = geometry.iter().map(|a| a.kernel).product();
    let per_axis: Vec<Vec<(usize, usize, usize)>> = geometry.iter().map(scatter_triples).collect();
    // Flat (input position, tap, output position) triples shared by every channel pair.
    let flat: Vec<(usize, usize, usize)> = cartesian(&per_axis)
        .into_iter()
        .map(|combo| {
            combo.iter().zip(&geometry).fold((0, 0, 0), |(i, k, o), (&(ia, ka, oa), a)| {
                (i * a.input + ia, k * a.kernel + ka, o * a.output + oa)
            })
        })
        .collect();
    // Per output position, its (input position, tap) pairs in input order: a column's rows, ascending.
    let mut by_output: Vec<Vec<(usize, usize)>> =
        strider_ir::alloc::try_filled(out_len, Vec::new()).map_err(|e| out_of_memory(e.elements))?;
    for &(i, k, o) in &flat {
        by_output[o].push((i, k));
    }
    by_output.iter_mut().for_each(|pairs| pairs.sort_unstable());
    let w = w.as_standard_layout();
    let ws = w.as_slice().ok_or(KernelError::Layout)?;
    // Built straight into column storage: 12 bytes per entry, reserved up front (no triplets).
    let nnz = c * mg * flat.len();
    let cols = mg * groups * out_len;
    let (mut indptr, mut indices, mut data) = (Vec::new(), Vec::<usize>::new(), Vec::<f32>::new());
    indptr.try_reserve_exact(cols + 1).map_err(|_| out_of_memory(cols + 1))?;
    indices.try_reserve_exact(nnz).map_err(|_| out_of_memory(nnz))?;
    data.try_reserve_exact(nnz).map_err(|_| out_of_memory(nnz))?;
    indptr.push(0);
    for group in 0..groups {
        for m in 0..mg {
            for pairs in &by_output {
                for ch in group * cg..(group + 1) * cg {
                    let taps = &ws[(ch * mg + m) * k_len..][..k_len];
                    for &(i, k) in pairs {
                        indices.push(ch * in_len + i);
                        data.push(taps[k]);
                    }
                }
                indptr.push(indices.len());
            }
        }
    }
    CsMat::try_new_csc((c * in_len, cols), indptr, indices, data).map_err(|_| KernelError::Layout)
}

/// A sparse matrix operand, stored by columns so that each output element of `X · A` is one dot
/// product of a row of X with a column of A (parallel over columns, no scatter).
#[derive(Clone, Debug, PartialEq)]
pub struct SparseOperand(CsMat<f32>);

impl SparseOperand {
    /// Wraps a matrix, converting it to column storage if it is not.
    pub fn new(matrix: CsMat<f32>) -> Self {
        SparseOperand(if matrix.is_csc() { matrix } else { matrix.to_csc() })
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.0.rows()
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.0.cols()
    }

    /// The matrix (CSC).
    pub fn matrix(&self) -> &CsMat<f32> {
        &self.0
    }

    /// Memory in `f32`-sized units: each stored value with its index, and the column pointers.
    pub fn stored_elements(&self) -> usize {
        let index = size_of::<usize>() / size_of::<f32>();
        self.0.nnz() * (1 + index) + (self.0.cols() + 1) * index
    }
}

/// Y = X · A for dense X (N, r) and A (r, c): each output element is a row of X times a column of A.
pub fn matmul(ctx: &mut Ctx, x: &ArrayViewD<f32>, a: &SparseOperand) -> Result<ArrayD<f32>, KernelError> {
    let x = x.view().into_dimensionality::<ndarray::Ix2>().map_err(|_| KernelError::Layout)?;
    let (n, r, cols) = (x.nrows(), x.ncols(), a.cols());
    if r != a.rows() {
        return Err(KernelError::Unsupported(format!("{n}×{r} times a sparse {}×{cols} matrix", a.rows())));
    }
    let x = x.as_standard_layout();
    let xs = x.as_slice().ok_or(KernelError::Layout)?;
    let mut y = ctx.output(n * cols)?;
    let matrix = a.matrix();
    y.par_chunks_mut(cols.max(1)).zip(xs.par_chunks(r.max(1))).for_each(|(y_row, x_row)| {
        y_row.par_chunks_mut(COLUMNS_PER_TASK).enumerate().for_each(|(chunk, y_part)| {
            for (j, out) in y_part.iter_mut().enumerate() {
                let column = matrix.outer_view(chunk * COLUMNS_PER_TASK + j);
                *out = column.map_or(0.0, |col| col.iter().map(|(i, &v)| x_row[i] * v).sum());
            }
        });
    });
    array(&[n, cols], y)
}

/// Output columns one task computes (enough to amortise scheduling, few enough to balance).
const COLUMNS_PER_TASK: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;
    use strider_ir::op::ConvTransposeAttrs;

    #[test]
    fn textbook_matrix_transposed_gives_the_transposed_convolution() {
        // The 2×2 kernel [[0,1],[2,3]] on a 2×2 input: C is 4×9, and x·C is the textbook answer.
        let w = ArrayD::from_shape_vec(IxDyn(&[1, 1, 2, 2]), vec![0., 1., 2., 3.]).unwrap();
        let attrs = ConvMatrixAttrs { input_shape: vec![2, 2], conv_transpose: ConvTransposeAttrs::default() };
        let c = conv_matrix(&attrs, &w.view()).unwrap();
        assert_eq!((c.rows(), c.cols(), c.nnz()), (4, 9, 16));
        // Row 0 (input pixel (0,0)) holds the kernel at output pixels (0,0), (0,1), (1,0), (1,1).
        let row0: Vec<(usize, f32)> = (0..9).filter_map(|j| c.get(0, j).map(|&v| (j, v))).collect();
        assert_eq!(row0, vec![(0, 0.), (1, 1.), (3, 2.), (4, 3.)]);
        let x = ArrayD::from_shape_vec(IxDyn(&[1, 4]), vec![0., 1., 2., 3.]).unwrap();
        let y = matmul(&mut Ctx::new(2), &x.view(), &SparseOperand::new(c)).unwrap();
        assert_eq!(y.as_slice().unwrap(), &[0., 0., 1., 0., 4., 6., 4., 12., 9.]);
    }

    #[test]
    fn counted_nnz_matches_the_built_matrix() {
        // The IR counts stored elements in closed form (before allocating); the kernel builds them.
        for (input, kernel, strides, dilations, pads, group) in [
            (vec![3, 4], vec![3, 2], vec![2, 3], vec![1, 2], vec![1, 0, 2, 1], 1),
            (vec![5], vec![4], vec![3], vec![2], vec![3, 0], 2),
            (vec![2, 2, 3], vec![2, 1, 3], vec![1, 2, 2], vec![1, 1, 3], vec![0, 1, 2, 1, 0, 3], 1),
        ] {
            let w_shape = [&[2 * group, 2][..], &kernel].concat();
            let n = w_shape.iter().product();
            let w = ArrayD::from_shape_vec(IxDyn(&w_shape), (1..=n).map(|v| v as f32).collect()).unwrap();
            let conv_transpose = ConvTransposeAttrs { strides, dilations, pads, group, ..Default::default() };
            let attrs = ConvMatrixAttrs { input_shape: input, conv_transpose };
            let built = conv_matrix(&attrs, &w.view()).unwrap();
            assert_eq!(attrs.nnz(&Shape(w_shape.clone())).unwrap(), built.nnz(), "{attrs:?}");
        }
    }
}
