//! Element-wise comparison of two tensors with numpy's `allclose` criterion:
//! |got − want| ≤ atol + rtol · |want| for every element. Non-finite values match only themselves: NaN
//! equals NaN and an infinity the same infinity, so a NaN output never counts as a match for a number.

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

impl Tolerance {
    /// Tolerances that mean something: finite and not negative (a NaN bound would pass everything).
    pub fn new(atol: f32, rtol: f32) -> Result<Tolerance, String> {
        for (name, v) in [("atol", atol), ("rtol", rtol)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} must be a finite number ≥ 0, found {v}"));
            }
        }
        Ok(Tolerance { atol, rtol })
    }
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
        let (diff, within) = if w.is_finite() && g.is_finite() {
            let diff = (g as f64 - w as f64).abs();
            // Written so that a NaN bound fails rather than passes.
            (diff, diff <= tol.atol as f64 + tol.rtol as f64 * (w as f64).abs())
        } else if (w.is_nan() && g.is_nan()) || w == g {
            (0.0, true)
        } else {
            (f64::INFINITY, false)
        };
        if !within {
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
        assert!(!compare("y", &arr(&[f32::NAN, 1., 1., 1.]), &arr(&[1., 1., 1., 1.]), tol).pass);
    }

    #[test]
    fn infinities_match_only_the_same_infinity_even_with_a_huge_tolerance() {
        let tol = Tolerance { atol: f32::MAX, rtol: f32::MAX };
        let inf = f32::INFINITY;
        assert!(compare("y", &arr(&[inf, 1., 1., 1.]), &arr(&[inf, 1., 1., 1.]), tol).pass);
        assert!(!compare("y", &arr(&[inf, 1., 1., 1.]), &arr(&[-inf, 1., 1., 1.]), tol).pass);
        assert!(!compare("y", &arr(&[1., 1., 1., 1.]), &arr(&[inf, 1., 1., 1.]), tol).pass);
        let nan = compare("y", &arr(&[1., 1., 1., 1.]), &arr(&[f32::NAN, 1., 1., 1.]), tol);
        assert_eq!((nan.pass, nan.mismatched, nan.worst_index.clone()), (false, 1, vec![0, 0]));
        assert_eq!(nan.max_abs, f64::INFINITY);
    }

    #[test]
    fn a_nan_tolerance_fails_rather_than_passes() {
        let tol = Tolerance { atol: f32::NAN, rtol: 0.0 };
        assert!(!compare("y", &arr(&[1., 2., 3., 4.]), &arr(&[1., 2., 3., 5.]), tol).pass);
        assert_eq!(compare("y", &arr(&[1., 2., 3., 4.]), &arr(&[1., 2., 3., 5.]), tol).mismatched, 4);
    }

    #[test]
    fn tolerances_must_be_finite_and_not_negative() {
        assert!(Tolerance::new(0.0, 1e-4).is_ok());
        for (atol, rtol) in [(f32::NAN, 0.0), (-1.0, 0.0), (0.0, f32::INFINITY), (0.0, -1e-9)] {
            let err = Tolerance::new(atol, rtol).unwrap_err();
            assert!(err.contains("must be a finite number ≥ 0"), "{err}");
        }
    }
}
