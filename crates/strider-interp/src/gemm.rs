//! Matrix products through the `gemm` crate (runtime SIMD dispatch: AVX2/FMA, AVX-512, NEON; rayon
//! threads). This is the only module with `unsafe`: `gemm::gemm` takes raw pointers and strides, so
//! the safe wrappers here check that every element either operand or the destination can address
//! lies inside its slice, and that the destination's elements are distinct, before calling it.
#![allow(unsafe_code)]

/// A read-only strided matrix over a slice: element (i, j) is `data[i·row_stride + j·col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// A writable matrix over a slice, row-major or column-major with any leading dimension (so its
/// elements never alias).
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// A matrix shape or stride that would read or write outside its slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("matrix of {rows}×{cols} (strides {row_stride}, {col_stride}) does not fit in {len} elements")]
pub struct OutOfBounds {
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
    len: usize,
}

/// Whether every element of a rows × cols matrix with these strides lies inside `len` elements.
fn fits(rows: usize, cols: usize, row_stride: usize, col_stride: usize, len: usize) -> Result<(), OutOfBounds> {
    let error = OutOfBounds { rows, cols, row_stride, col_stride, len };
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let last = (rows - 1)
        .checked_mul(row_stride)
        .and_then(|r| (cols - 1).checked_mul(col_stride).and_then(|c| r.checked_add(c)))
        .ok_or(error)?;
    if last < len { Ok(()) } else { Err(error) }
}

impl<'a> MatRef<'a> {
    /// A strided view; fails if any element lies outside `data`.
    pub fn new(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self, OutOfBounds> {
        fits(rows, cols, row_stride, col_stride, data.len())?;
        Ok(MatRef { data, rows, cols, row_stride, col_stride })
    }

    /// A row-major rows × cols matrix at the start of `data`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Result<Self, OutOfBounds> {
        Self::new(data, rows, cols, cols, 1)
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        MatRef { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
}

impl<'a> MatMut<'a> {
    /// A row-major rows × cols matrix whose rows start `row_stride` ≥ cols elements apart.
    pub fn row_major_strided(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
    ) -> Result<Self, OutOfBounds> {
        let error = OutOfBounds { rows, cols, row_stride, col_stride: 1, len: data.len() };
        if row_stride < cols && rows > 1 {
            return Err(error);
        }
        fits(rows, cols, row_stride, 1, data.len())?;
        Ok(MatMut { data, rows, cols, row_stride, col_stride: 1 })
    }

    /// A contiguous row-major rows × cols matrix at the start of `data`.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Result<Self, OutOfBounds> {
        Self::row_major_strided(data, rows, cols, cols)
    }

    /// A contiguous column-major rows × cols matrix at the start of `data`: element (i, j) at j·rows + i.
    pub fn col_major(data: &'a mut [f32], rows: usize, cols: usize) -> Result<Self, OutOfBounds> {
        fits(rows, cols, 1, rows, data.len())?;
        Ok(MatMut { data, rows, cols, row_stride: 1, col_stride: rows })
    }
}

/// Why a product could not be computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("matrix product of {a_rows}×{a_cols} by {b_rows}×{b_cols} into {dst_rows}×{dst_cols}: shapes disagree")]
pub struct ShapeMismatch {
    a_rows: usize,
    a_cols: usize,
    b_rows: usize,
    b_cols: usize,
    dst_rows: usize,
    dst_cols: usize,
}

/// `dst = a · b`, or `dst += a · b` when `accumulate`, on up to `threads` threads of the current
/// rayon pool (the crate itself decides whether a product is large enough to split). For a given
/// thread count the result is the same from run to run: work is split over rows and columns of
/// `dst`, never over the summed dimension.
pub fn matmul(dst: MatMut, a: MatRef, b: MatRef, accumulate: bool, threads: usize) -> Result<(), ShapeMismatch> {
    if a.cols != b.rows || dst.rows != a.rows || dst.cols != b.cols {
        return Err(ShapeMismatch {
            a_rows: a.rows,
            a_cols: a.cols,
            b_rows: b.rows,
            b_cols: b.cols,
            dst_rows: dst.rows,
            dst_cols: dst.cols,
        });
    }
    let (m, n, k) = (a.rows, b.cols, a.cols);
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst.data[i * dst.row_stride + j * dst.col_stride] = 0.0;
                }
            }
        }
        return Ok(());
    }
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    let stride = |s: usize| s as isize;
    // SAFETY: `MatRef::new` and the `MatMut` constructors checked that every element (i, j) of each
    // operand, at offset i·row_stride + j·col_stride, lies inside its slice; the shapes agree (checked
    // above), so gemm reads only a[i, l], b[l, j] and writes only dst[i, j] for i < m, j < n, l < k.
    // The destination is row-major with row_stride ≥ cols or column-major with col_stride = rows, so
    // its elements are distinct, and it is
    // borrowed mutably, so it overlaps neither operand. Strides fit in isize because they index slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            stride(dst.col_stride),
            stride(dst.row_stride),
            accumulate,
            a.data.as_ptr(),
            stride(a.col_stride),
            stride(a.row_stride),
            b.data.as_ptr(),
            stride(b.col_stride),
            stride(b.row_stride),
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn products_match_the_definition_for_strided_and_transposed_operands() {
        for (m, k, n) in [(1, 1, 1), (3, 5, 7), (17, 33, 9), (64, 3, 130), (1, 100, 50)] {
            let a: Vec<f32> = (0..m * k).map(|v| (v % 7) as f32 - 3.0).collect();
            let b: Vec<f32> = (0..k * n).map(|v| (v % 5) as f32 * 0.5).collect();
            let want = naive(&a, &b, m, k, n);
            for threads in [1, 2] {
                let mut c = vec![f32::NAN; m * n];
                let dst = MatMut::row_major(&mut c, m, n).unwrap();
                matmul(dst, MatRef::row_major(&a, m, k).unwrap(), MatRef::row_major(&b, k, n).unwrap(), false, threads)
                    .unwrap();
                assert_eq!(c, want);
                // Aᵀ stored row-major, read through its transpose: the same product.
                let at: Vec<f32> = (0..k * m).map(|v| a[(v % m) * k + v / m]).collect();
                let mut c2 = vec![1.0; m * n];
                let dst = MatMut::row_major(&mut c2, m, n).unwrap();
                let a_view = MatRef::row_major(&at, k, m).unwrap().t();
                matmul(dst, a_view, MatRef::row_major(&b, k, n).unwrap(), true, threads).unwrap();
                assert_eq!(c2, want.iter().map(|v| v + 1.0).collect::<Vec<_>>());
                // A column-major destination holds the transpose of the row-major one.
                let mut c3 = vec![f32::NAN; m * n];
                let dst = MatMut::col_major(&mut c3, m, n).unwrap();
                matmul(dst, MatRef::row_major(&a, m, k).unwrap(), MatRef::row_major(&b, k, n).unwrap(), false, threads)
                    .unwrap();
                assert_eq!(c3, (0..m * n).map(|v| want[(v % m) * n + v / m]).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn out_of_bounds_views_and_mismatched_shapes_are_refused() {
        let data = [0.0; 6];
        assert!(MatRef::row_major(&data, 2, 4).is_err());
        assert!(MatRef::new(&data, 2, 3, usize::MAX, 1).is_err());
        let mut out = [0.0; 4];
        assert!(MatMut::row_major_strided(&mut out, 2, 3, 2).is_err());
        assert!(MatMut::col_major(&mut out, 3, 2).is_err());
        let a = MatRef::row_major(&data, 2, 3).unwrap();
        let dst = MatMut::row_major(&mut out, 2, 2).unwrap();
        assert!(matmul(dst, a, a, false, 1).is_err());
    }
}
