//! Element-wise comparison of two tensors with numpy's `allclose` criterion:
//! |got − want| ≤ atol + rtol · |want| for every element (NaN equals NaN).

use ndarray::ArrayD;
use serde::Serialize;

/// Tolerances.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Tolerance {
    /// Absolute tolerance.
    pub atol: f32,
    /// Relative tolerance.
    pub rtol: f32,
}

impl Default for Tolerance {
    /// atol 1e-5, rtol 1e-4: f32 sums of thousands of products differ in their last few bits between
    /// summation orders, which these bound with room to spare; a wrong lowering misses by far more.
    fn default() -> Self {
        Tolerance { atol: 1e-5, rtol: 1e-4 }
    }
}

/// How one output compares.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// Output name.
    pub output: String,
    /// Largest |got − want|.
    pub max_abs: f64,
    /// Largest |got − want| / |want| (over elements with want ≠ 0).
    pub max_rel: f64,
    /// Index of the element with the largest |got − want| (the worst).
    pub worst_index: Vec<usize>,
    /// Reference value there.
    pub want: f32,
    /// Lowered value there.
    pub got: f32,
    /// Elements outside the tolerance.
    pub mismatched: usize,
    /// Whether every element is within tolerance (and the shapes agree).
    pub pass: bool,
}

/// Compares `got` against the reference `want`.
pub fn compare(output: &str, want: &ArrayD<f32>, got: &ArrayD<f32>, tol: Tolerance) -> Comparison {
    let mut c = Comparison {
        output: output.to_string(),
        max_abs: 0.0,
        max_rel: 0.0,
        worst_index: vec![],
        want: f32::NAN,
        got: f32::NAN,
        mismatched: 0,
        pass: true,
    };
    if want.shape() != got.shape() {
        c.max_abs = f64::INFINITY;
        c.max_rel = f64::INFINITY;
        c.mismatched = want.len().max(got.len());
        c.pass = false;
        return c;
    }
    let mut worst: Option<(f64, usize)> = None;
    for (i, (&w, &g)) in want.iter().zip(got.iter()).enumerate() {
        let both_nan = w.is_nan() && g.is_nan();
        let diff = if both_nan { 0.0 } else { (g as f64 - w as f64).abs() };
        let diff = if diff.is_nan() { f64::INFINITY } else { diff };
        if diff > tol.atol as f64 + tol.rtol as f64 * (w as f64).abs() {
            c.mismatched += 1;
        }
        if w != 0.0 {
            c.max_rel = c.max_rel.max(diff / (w as f64).abs());
        }
        if worst.is_none_or(|(d, _)| diff > d) {
            worst = Some((diff, i));
        }
    }
    if let Some((diff, flat)) = worst {
        c.max_abs = diff;
        c.worst_index = unflatten(flat, want.shape());
        c.want = want.iter().nth(flat).copied().unwrap_or(f32::NAN);
        c.got = got.iter().nth(flat).copied().unwrap_or(f32::NAN);
    }
    c.pass = c.mismatched == 0;
    c
}

fn unflatten(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &d) in index.iter_mut().zip(shape).rev() {
        *slot = flat % d.max(1);
        flat /= d.max(1);
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    fn arr(v: &[f32]) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(&[2, 2]), v.to_vec()).unwrap()
    }

    #[test]
    fn reports_the_worst_element_and_counts_mismatches() {
        let tol = Tolerance { atol: 0.01, rtol: 0.0 };
        let c = compare("y", &arr(&[1., 2., 3., 4.]), &arr(&[1., 2.5, 3.005, 4.]), tol);
        assert!(!c.pass);
        assert_eq!(c.mismatched, 1);
        assert_eq!(c.worst_index, vec![0, 1]);
        assert_eq!((c.want, c.got), (2.0, 2.5));
        assert!((c.max_rel - 0.25).abs() < 1e-9);
        let ok = compare("y", &arr(&[1., 2., 3., 4.]), &arr(&[1., 2.005, 3., 4.]), tol);
        assert!(ok.pass);
    }

    #[test]
    fn nan_equals_nan_but_not_a_number() {
        let tol = Tolerance::default();
        assert!(compare("y", &arr(&[f32::NAN, 1., 1., 1.]), &arr(&[f32::NAN, 1., 1., 1.]), tol).pass);
        assert!(!compare("y", &arr(&[1., 1., 1., 1.]), &arr(&[f32::NAN, 1., 1., 1.]), tol).pass);
    }
}
