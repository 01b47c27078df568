//! `MatMul`: numpy matrix product. 1-D operands are promoted (a leading or trailing 1) and the promoted
//! axis removed from the result; batch axes broadcast.

use super::{OpError, OpRule};
use crate::shape::{Shape, broadcast};

pub(super) struct MatMulRule;

/// Shapes of a MatMul after 1-D promotion: (batch, n, k, m), and whether A or B was 1-D.
pub struct MatMulDims {
    /// Broadcast batch axes.
    pub batch: Vec<usize>,
    /// Rows of A.
    pub n: usize,
    /// Shared axis.
    pub k: usize,
    /// Columns of B.
    pub m: usize,
    /// A was 1-D (its promoted row axis is dropped from the result).
    pub a_vector: bool,
    /// B was 1-D (its promoted column axis is dropped from the result).
    pub b_vector: bool,
}

impl MatMulDims {
    /// Resolves the shapes of A and B.
    pub fn new(a: &Shape, b: &Shape) -> Result<Self, OpError> {
        if a.rank() == 0 {
            return Err(OpError::shape("A", "rank ≥ 1", a));
        }
        if b.rank() == 0 {
            return Err(OpError::shape("B", "rank ≥ 1", b));
        }
        let (a_vector, b_vector) = (a.rank() == 1, b.rank() == 1);
        let ad: Vec<usize> = if a_vector { vec![1, a.dims()[0]] } else { a.dims().to_vec() };
        let bd: Vec<usize> = if b_vector { vec![b.dims()[0], 1] } else { b.dims().to_vec() };
        let (n, k) = (ad[ad.len() - 2], ad[ad.len() - 1]);
        let (kb, m) = (bd[bd.len() - 2], bd[bd.len() - 1]);
        if k != kb {
            return Err(OpError::shape("B", format!("{k} rows to match A's {k} columns"), b));
        }
        let batch = broadcast(&ad[..ad.len() - 2], &bd[..bd.len() - 2])
            .ok_or_else(|| OpError::shape("B", format!("batch axes that broadcast with A's {a}"), b))?;
        Ok(MatMulDims { batch: batch.0, n, k, m, a_vector, b_vector })
    }

    /// The result shape.
    pub fn output(&self) -> Shape {
        let mut out = self.batch.clone();
        if !self.a_vector {
            out.push(self.n);
        }
        if !self.b_vector {
            out.push(self.m);
        }
        Shape(out)
    }
}

impl OpRule for MatMulRule {
    fn input_names(&self) -> &'static [&'static str] {
        &["A", "B"]
    }
    fn infer(&self, inputs: &[&Shape]) -> Result<Vec<Shape>, OpError> {
        Ok(vec![MatMulDims::new(inputs[0], inputs[1])?.output()])
    }
    fn flops(&self, inputs: &[&Shape], _: &[Shape]) -> u64 {
        MatMulDims::new(inputs[0], inputs[1])
            .map(|d| 2 * super::product(&d.batch) * (d.n * d.k * d.m) as u64)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(a: &[usize], b: &[usize]) -> Result<Vec<usize>, OpError> {
        MatMulDims::new(&Shape(a.to_vec()), &Shape(b.to_vec())).map(|d| d.output().0)
    }

    #[test]
    fn numpy_promotion_and_broadcast() {
        assert_eq!(out(&[2, 3], &[3, 4]).unwrap(), vec![2, 4]);
        assert_eq!(out(&[3], &[3, 4]).unwrap(), vec![4]);
        assert_eq!(out(&[2, 3], &[3]).unwrap(), vec![2]);
        assert_eq!(out(&[3], &[3]).unwrap(), Vec::<usize>::new());
        assert_eq!(out(&[5, 1, 2, 3], &[4, 3, 6]).unwrap(), vec![5, 4, 2, 6]);
        assert!(out(&[2, 3], &[4, 5]).is_err());
    }
}
