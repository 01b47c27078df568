//! Tensor shapes and element types, and the arithmetic every shape rule shares.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Element type of a tensor. Only `f32` exists today; the IR carries it so that other types can come
/// without changing every signature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DType {
    /// IEEE 754 single precision.
    #[default]
    F32,
}

impl DType {
    /// Bytes per element.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
        }
    }
}

/// A static tensor shape (NCHW order for images).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Shape(pub Vec<usize>);

impl Shape {
    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Element count, or `None` when it overflows `usize`.
    pub fn checked_numel(&self) -> Option<usize> {
        self.0.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// Element count (saturating; graphs are checked against [`crate::Limits`] before this matters).
    pub fn numel(&self) -> usize {
        self.checked_numel().unwrap_or(usize::MAX)
    }

    /// The axes as a slice.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }
}

impl From<Vec<usize>> for Shape {
    fn from(v: Vec<usize>) -> Self {
        Shape(v)
    }
}

impl From<&[usize]> for Shape {
    fn from(v: &[usize]) -> Self {
        Shape(v.to_vec())
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(v: [usize; N]) -> Self {
        Shape(v.to_vec())
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

/// How a tensor's elements are stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Layout {
    /// Every element, row-major.
    #[default]
    Dense,
    /// A 2-D matrix in compressed sparse rows with this many stored elements.
    Csr {
        /// Stored (non-structural-zero) elements.
        nnz: usize,
    },
}

impl Layout {
    /// Bytes of a tensor of `shape` with elements of `element` bytes in this layout (CSR: values,
    /// 64-bit column indices and row offsets).
    pub fn size_bytes(self, shape: &Shape, element: usize) -> usize {
        match self {
            Layout::Dense => shape.numel().saturating_mul(element),
            Layout::Csr { nnz } => {
                let rows = shape.dims().first().copied().unwrap_or(0);
                nnz.saturating_mul(element + 8).saturating_add(rows.saturating_add(1).saturating_mul(8))
            }
        }
    }
}

/// Element type, shape and storage of a value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TensorType {
    /// Element type.
    pub dtype: DType,
    /// Static shape.
    pub shape: Shape,
    /// Storage.
    pub layout: Layout,
}

impl TensorType {
    /// A dense `f32` tensor of the given shape.
    pub fn f32(shape: impl Into<Shape>) -> Self {
        TensorType { dtype: DType::F32, shape: shape.into(), layout: Layout::Dense }
    }

    /// Bytes this tensor occupies.
    pub fn size_bytes(&self) -> usize {
        self.layout.size_bytes(&self.shape, self.dtype.size_bytes())
    }
}

/// Multidirectional (numpy) broadcasting of two shapes, or `None` when they are incompatible.
pub fn broadcast(a: &[usize], b: &[usize]) -> Option<Shape> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for (i, slot) in out.iter_mut().enumerate() {
        let da = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
        let db = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
        *slot = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(Shape(out))
}

/// Resolves a possibly negative ONNX axis against `rank`, or `None` when out of range.
pub fn normalize_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast(&[2, 3, 4], &[4]), Some(Shape(vec![2, 3, 4])));
        assert_eq!(broadcast(&[2, 1, 4], &[3, 1]), Some(Shape(vec![2, 3, 4])));
        assert_eq!(broadcast(&[2, 3], &[4]), None);
        assert_eq!(broadcast(&[], &[5]), Some(Shape(vec![5])));
    }

    #[test]
    fn axes_normalize() {
        assert_eq!(normalize_axis(-1, 4), Some(3));
        assert_eq!(normalize_axis(4, 4), None);
        assert_eq!(normalize_axis(-5, 4), None);
    }
}
