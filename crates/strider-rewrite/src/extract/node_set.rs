//! A persistent set of e-node indices that knows the sum of its members' costs.
//!
//! DAG-aware extraction gives every class the set of e-nodes its choice needs, and a parent's set is
//! the union of its children's plus itself. Copying sets makes a chain of N values cost N², so the set
//! is a big-endian Patricia trie over 64-bit words (the layout of Haskell's `Data.IntSet`): a set
//! built from another shares every subtree it did not change, a union returns the shared subtree as
//! soon as both sides point at the same one, and equal sets have the same shape. Each subtree caches
//! the sum of its members' costs, so a set's total is read, not recomputed, and the same set always
//! has the same total (the sum's order is fixed by the shape), which keeps tie-breaking stable.

use std::rc::Rc;

/// Members per leaf word.
const WORD_BITS: usize = 64;

/// A persistent set of e-node indices (see the module documentation).
#[derive(Clone, Debug, Default)]
pub(crate) struct NodeSet(Option<Rc<Tree>>);

#[derive(Debug)]
enum Tree {
    /// The members whose index divided by 64 is `word`, as a bitmap.
    Leaf { word: u32, bits: u64, sum: f64 },
    /// Members whose word indices share the bits above `branch` (`prefix`, bits at and below
    /// `branch` cleared), split on bit `branch`: clear in `low`, set in `high`.
    Branch { prefix: u32, branch: u32, low: Rc<Tree>, high: Rc<Tree>, sum: f64, len: u32 },
}

impl Tree {
    /// The word index (a leaf) or the common prefix (a branch) that places this subtree.
    fn key(&self) -> u32 {
        match self {
            Tree::Leaf { word, .. } => *word,
            Tree::Branch { prefix, .. } => *prefix,
        }
    }

    fn sum(&self) -> f64 {
        match self {
            Tree::Leaf { sum, .. } | Tree::Branch { sum, .. } => *sum,
        }
    }

    fn len(&self) -> u32 {
        match self {
            Tree::Leaf { bits, .. } => bits.count_ones(),
            Tree::Branch { len, .. } => *len,
        }
    }
}

impl NodeSet {
    /// The set with `index` added; `costs[i]` is the cost of e-node `i`.
    pub(crate) fn insert(&self, index: u32, costs: &[f64]) -> NodeSet {
        let (word, bit) = split(index);
        let single = leaf(word, 1 << bit, costs);
        self.union(&NodeSet(Some(single)), costs)
    }

    /// The union of two sets; `costs[i]` is the cost of e-node `i`.
    pub(crate) fn union(&self, other: &NodeSet, costs: &[f64]) -> NodeSet {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => NodeSet(Some(union(a, b, costs))),
            (Some(_), None) => self.clone(),
            (None, _) => other.clone(),
        }
    }

    /// Whether `index` is a member.
    pub(crate) fn contains(&self, index: u32) -> bool {
        let (word, bit) = split(index);
        let Some(mut tree) = self.0.as_ref() else { return false };
        loop {
            match &**tree {
                Tree::Leaf { word: w, bits, .. } => return *w == word && bits & (1 << bit) != 0,
                Tree::Branch { prefix, branch, low, high, .. } => {
                    if !has_prefix(word, *prefix, *branch) {
                        return false;
                    }
                    tree = if word & branch != 0 { high } else { low };
                }
            }
        }
    }

    /// The sum of the members' costs.
    pub(crate) fn sum(&self) -> f64 {
        self.0.as_ref().map_or(0.0, |t| t.sum())
    }

    /// The number of members.
    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |t| t.len() as usize)
    }

    /// The members in increasing order.
    #[cfg(test)]
    pub(crate) fn members(&self) -> Vec<u32> {
        fn walk(tree: &Tree, out: &mut Vec<u32>) {
            match tree {
                Tree::Leaf { word, bits, .. } => {
                    out.extend((0..WORD_BITS as u32).filter(|b| bits & (1 << b) != 0).map(|b| word * 64 + b))
                }
                Tree::Branch { low, high, .. } => {
                    walk(low, out);
                    walk(high, out);
                }
            }
        }
        let mut out = Vec::new();
        if let Some(t) = &self.0 {
            walk(t, &mut out);
        }
        out
    }
}

/// An index as (word, bit in the word).
fn split(index: u32) -> (u32, u32) {
    (index / WORD_BITS as u32, index % WORD_BITS as u32)
}

/// `word` with `branch` and every lower bit cleared.
fn prefix_of(word: u32, branch: u32) -> u32 {
    word & !(branch | (branch - 1))
}

fn has_prefix(word: u32, prefix: u32, branch: u32) -> bool {
    prefix_of(word, branch) == prefix
}

fn leaf(word: u32, bits: u64, costs: &[f64]) -> Rc<Tree> {
    let base = word as usize * WORD_BITS;
    let sum = (0..WORD_BITS).filter(|b| bits & (1 << b) != 0).map(|b| costs[base + b]).sum();
    Rc::new(Tree::Leaf { word, bits, sum })
}

fn branch(prefix: u32, branch: u32, low: Rc<Tree>, high: Rc<Tree>) -> Rc<Tree> {
    let (sum, len) = (low.sum() + high.sum(), low.len() + high.len());
    Rc::new(Tree::Branch { prefix, branch, low, high, sum, len })
}

/// Two subtrees whose keys differ above both their branch bits, under a new branch at the highest
/// bit where the keys differ.
fn join(a: &Rc<Tree>, b: &Rc<Tree>) -> Rc<Tree> {
    let differ = a.key() ^ b.key();
    let bit = 1 << (31 - differ.leading_zeros());
    let prefix = prefix_of(a.key(), bit);
    if a.key() & bit != 0 {
        branch(prefix, bit, b.clone(), a.clone())
    } else {
        branch(prefix, bit, a.clone(), b.clone())
    }
}

/// The union of two subtrees; returns one of them unchanged whenever it already holds the other, so
/// that sharing (and the pointer-equality shortcut) survives.
fn union(a: &Rc<Tree>, b: &Rc<Tree>, costs: &[f64]) -> Rc<Tree> {
    if Rc::ptr_eq(a, b) {
        return a.clone();
    }
    match (&**a, &**b) {
        (Tree::Leaf { word: wa, bits: ba, .. }, Tree::Leaf { word: wb, bits: bb, .. }) => {
            if wa != wb {
                join(a, b)
            } else if ba | bb == *ba {
                a.clone()
            } else if ba | bb == *bb {
                b.clone()
            } else {
                leaf(*wa, ba | bb, costs)
            }
        }
        (
            Tree::Branch { prefix: pa, branch: ma, low: la, high: ha, .. },
            Tree::Branch { prefix: pb, branch: mb, low: lb, high: hb, .. },
        ) => {
            if ma > mb {
                union_below(a, (*pa, *ma, la, ha), b, costs)
            } else if mb > ma {
                union_below(b, (*pb, *mb, lb, hb), a, costs)
            } else if pa != pb {
                join(a, b)
            } else {
                let (low, high) = (union(la, lb, costs), union(ha, hb, costs));
                if Rc::ptr_eq(&low, la) && Rc::ptr_eq(&high, ha) {
                    a.clone()
                } else if Rc::ptr_eq(&low, lb) && Rc::ptr_eq(&high, hb) {
                    b.clone()
                } else {
                    branch(*pa, *ma, low, high)
                }
            }
        }
        (Tree::Branch { prefix, branch, low, high, .. }, Tree::Leaf { .. }) => {
            union_below(a, (*prefix, *branch, low, high), b, costs)
        }
        (Tree::Leaf { .. }, Tree::Branch { prefix, branch, low, high, .. }) => {
            union_below(b, (*prefix, *branch, low, high), a, costs)
        }
    }
}

/// The union of the branch `outer` (given with its fields) and `inner`, a leaf or a branch on a lower
/// bit: `inner` goes into the side its key selects, or beside `outer` when the prefixes differ.
fn union_below(
    outer: &Rc<Tree>,
    (prefix, bit, low, high): (u32, u32, &Rc<Tree>, &Rc<Tree>),
    inner: &Rc<Tree>,
    costs: &[f64],
) -> Rc<Tree> {
    let key = inner.key();
    if !has_prefix(key, prefix, bit) {
        return join(outer, inner);
    }
    if key & bit != 0 {
        let merged = union(high, inner, costs);
        if Rc::ptr_eq(&merged, high) { outer.clone() } else { branch(prefix, bit, low.clone(), merged) }
    } else {
        let merged = union(low, inner, costs);
        if Rc::ptr_eq(&merged, low) { outer.clone() } else { branch(prefix, bit, merged, high.clone()) }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// Whole-number costs, so that sums are exact whatever their order.
    fn costs(n: usize) -> Vec<f64> {
        (0..n).map(|i| (i % 7 + 1) as f64).collect()
    }

    fn build(indices: &[u32], costs: &[f64]) -> NodeSet {
        indices.iter().fold(NodeSet::default(), |s, &i| s.insert(i, costs))
    }

    proptest! {
        #[test]
        fn behaves_like_a_set(a in proptest::collection::vec(0u32..5000, 0..60),
                              b in proptest::collection::vec(0u32..5000, 0..60),
                              probe in 0u32..5000) {
            let c = costs(5000);
            let (sa, sb) = (build(&a, &c), build(&b, &c));
            let union = sa.union(&sb, &c);
            let want: BTreeSet<u32> = a.iter().chain(&b).copied().collect();
            prop_assert_eq!(union.members(), want.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(union.len(), want.len());
            prop_assert_eq!(union.sum(), want.iter().map(|&i| c[i as usize]).sum::<f64>());
            prop_assert_eq!(union.contains(probe), want.contains(&probe));
            // Union does not depend on the order of its operands.
            prop_assert_eq!(sb.union(&sa, &c).members(), union.members());
        }
    }

    #[test]
    fn a_union_with_a_subset_returns_the_superset_itself() {
        let c = costs(1000);
        let big = build(&[1, 70, 300, 999, 5], &c);
        let small = build(&[70, 999], &c);
        let union = big.union(&small, &c);
        assert!(matches!((&union.0, &big.0), (Some(u), Some(b)) if Rc::ptr_eq(u, b)));
        let grown = big.insert(2, &c);
        assert!(matches!((&grown.union(&big, &c).0, &grown.0), (Some(u), Some(g)) if Rc::ptr_eq(u, g)));
    }

    #[test]
    fn the_empty_set_has_nothing() {
        let empty = NodeSet::default();
        assert_eq!((empty.len(), empty.sum(), empty.contains(0)), (0, 0.0, false));
        assert!(empty.members().is_empty());
    }
}
