//! Fallible allocation for buffers whose size a model decides: a request the system refuses (or that
//! cannot even be counted) is an [`OutOfMemory`] error the caller reports, never an abort.

use ndarray::{ArrayD, IxDyn};

/// The system refused memory for a buffer of `elements` `f32`s (or the size overflows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot allocate {elements} elements ({} bytes): the system refused the memory", *elements as u128 * 4)]
pub struct OutOfMemory {
    /// Elements asked for.
    pub elements: usize,
}

/// An empty vector with room for `n` elements, reserved with `try_reserve_exact`.
pub fn try_with_capacity<T>(n: usize) -> Result<Vec<T>, OutOfMemory> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| OutOfMemory { elements: n })?;
    Ok(v)
}

/// The first `n` items of `items` in a vector reserved up front (fewer if `items` ends first).
pub fn try_collect<T>(n: usize, items: impl IntoIterator<Item = T>) -> Result<Vec<T>, OutOfMemory> {
    let mut v = try_with_capacity(n)?;
    v.extend(items.into_iter().take(n));
    Ok(v)
}

/// `n` copies of `value`.
pub fn try_filled<T: Clone>(n: usize, value: T) -> Result<Vec<T>, OutOfMemory> {
    try_collect(n, std::iter::repeat_n(value, n))
}

/// An array of `shape` holding `items` in row-major order; `items` must yield at least as many
/// elements as `shape` holds (missing ones are zeros).
pub fn try_array(shape: &[usize], items: impl IntoIterator<Item = f32>) -> Result<ArrayD<f32>, OutOfMemory> {
    let n = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or(OutOfMemory { elements: usize::MAX })?;
    let mut data = try_collect(n, items)?;
    data.resize(n, 0.0);
    Ok(ArrayD::from_shape_vec(IxDyn(shape), data).expect("the length is the shape's element count"))
}

/// A copy of `a` in standard layout.
pub fn try_clone(a: &ArrayD<f32>) -> Result<ArrayD<f32>, OutOfMemory> {
    try_array(a.shape(), a.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_sizes_are_errors_and_the_rest_are_filled() {
        assert_eq!(try_filled(usize::MAX / 2, 0f32), Err(OutOfMemory { elements: usize::MAX / 2 }));
        assert_eq!(try_with_capacity::<f32>(1 << 60).unwrap_err().elements, 1 << 60);
        assert_eq!(try_array(&[1 << 40, 1 << 30], std::iter::empty()).unwrap_err().elements, usize::MAX);
        assert_eq!(try_filled(3, 1.5f32).unwrap(), [1.5; 3]);
        let a = try_array(&[2, 2], [1., 2., 3.]).unwrap();
        assert_eq!(a.as_slice().unwrap(), &[1., 2., 3., 0.]);
        let t = a.t().to_owned().into_dyn();
        assert_eq!(try_clone(&t).unwrap(), t);
        let err = OutOfMemory { elements: 1 << 40 }.to_string();
        assert_eq!(err, "cannot allocate 1099511627776 elements (4398046511104 bytes): the system refused the memory");
    }
}
