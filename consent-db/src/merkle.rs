//! The transparency log's Merkle tree, after RFC 9162 §2.1: hashing, the
//! right-edge frontier that grows the tree one leaf at a time, which stored
//! nodes a proof needs, and proof verification.
//!
//! Storage model: every *perfect* subtree is a node `(level, index)` that
//! covers leaves `index·2^level .. (index+1)·2^level`. Such a node never
//! changes once its last leaf exists, so the store writes each one once, in
//! the transaction that completes it. Any tree head and any proof is then a
//! fold over O(log n) stored nodes.

use aws_lc_rs::digest;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// SHA-256(0x00 ‖ data): the hash of one leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&[0x00]);
    ctx.update(data);
    to_hash(ctx.finish())
}

/// SHA-256(0x01 ‖ left ‖ right): the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&[0x01]);
    ctx.update(left);
    ctx.update(right);
    to_hash(ctx.finish())
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    to_hash(digest::digest(&digest::SHA256, b""))
}

fn to_hash(d: digest::Digest) -> Hash {
    let mut h = [0u8; 32];
    h.copy_from_slice(d.as_ref());
    h
}

/// A perfect subtree: leaves `index·2^level .. (index+1)·2^level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    pub fn new(level: u8, index: u64) -> Self {
        NodeId { level, index }
    }

    /// The first leaf the node covers.
    pub fn first_leaf(&self) -> u64 {
        self.index << self.level
    }

    /// One past the last leaf it covers: the tree size at which it completes.
    pub fn end(&self) -> u64 {
        (self.index + 1) << self.level
    }
}

/// The right edge of a tree: the root of every perfect subtree in the
/// decomposition of its size, one per set bit. Enough to append leaves and to
/// compute the root; O(log n) memory however large the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `levels[k]` is set exactly when bit k of `size` is.
    levels: Vec<Option<Hash>>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// The nodes a frontier of `size` leaves consists of, highest level first.
    pub fn node_ids(size: u64) -> Vec<NodeId> {
        (0..64u8)
            .rev()
            .filter(|k| size >> k & 1 == 1)
            .map(|k| NodeId::new(k, (size >> k) - 1))
            .collect()
    }

    /// Rebuilds the frontier of a tree of `size` leaves from its nodes (as
    /// [`Frontier::node_ids`] names them); `None` if one is missing.
    pub fn from_nodes(size: u64, mut get: impl FnMut(NodeId) -> Option<Hash>) -> Option<Self> {
        let mut levels = vec![None; 64 - size.leading_zeros() as usize];
        for id in Self::node_ids(size) {
            levels[usize::from(id.level)] = Some(get(id)?);
        }
        Some(Frontier { size, levels })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; calls `completed` with every node this leaf
    /// completes, the leaf itself first, then upwards.
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(NodeId, &Hash)) {
        let mut hash = leaf;
        let mut id = NodeId::new(0, self.size);
        completed(id, &hash);
        let mut level = 0usize;
        // A right child (odd index) completes its parent with the frontier's
        // node of the same level as left sibling.
        while id.index & 1 == 1 {
            let Some(left) = self.levels.get_mut(level).and_then(Option::take) else {
                break; // unreachable for a consistent frontier
            };
            hash = node_hash(&left, &hash);
            id = NodeId::new(id.level + 1, id.index >> 1);
            completed(id, &hash);
            level += 1;
        }
        if self.levels.len() <= level {
            self.levels.resize(level + 1, None);
        }
        self.levels[level] = Some(hash);
        self.size += 1;
    }

    /// The tree head: the RFC 9162 root of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut acc: Option<Hash> = None;
        // Lower levels are further right; fold from the right.
        for h in self.levels.iter().flatten() {
            acc = Some(match acc {
                None => *h,
                Some(right) => node_hash(h, &right),
            });
        }
        acc.unwrap_or_else(empty_root)
    }
}

/// The RFC 9162 root of `leaves` (leaf hashes), by the definition. For tests
/// and small trees.
pub fn root_of(leaves: &[Hash]) -> Hash {
    let mut f = Frontier::new();
    for leaf in leaves {
        f.push(*leaf, |_, _| {});
    }
    f.root()
}

/// A range of leaves `[begin, end)` whose hash is one element of a proof.
/// Every range a proof needs starts at a multiple of a power of two at least
/// its length, so its hash is a fold of [`Span::nodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub begin: u64,
    pub end: u64,
}

impl Span {
    /// The perfect subtrees that make up the span, left to right.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut pos = self.begin;
        let len = self.end - self.begin;
        for level in (0..64u8).rev() {
            if len >> level & 1 == 1 {
                out.push(NodeId::new(level, pos >> level));
                pos += 1 << level;
            }
        }
        out
    }

    /// MTH of the span from its nodes' hashes (left to right): the RFC
    /// 9162 split at the largest power of two makes it a right fold.
    pub fn fold(hashes: &[Hash]) -> Option<Hash> {
        let (last, rest) = hashes.split_last()?;
        Some(rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc)))
    }
}

/// A proof cannot be made or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The request names sizes or indexes the tree cannot have.
    #[error("{0}")]
    OutOfRange(String),
    /// The proof does not lead to the expected root.
    #[error("the proof does not verify: {0}")]
    Invalid(&'static str),
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The spans of the inclusion proof of leaf `index` in the tree of `size`
/// leaves (RFC 9162 §2.1.3.1, PATH), in proof order.
pub fn inclusion_spans(index: u64, size: u64) -> Result<Vec<Span>, ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange(format!(
            "index {index} is not below the tree size {size}"
        )));
    }
    let mut out = Vec::new();
    path(index, 0, size, &mut out);
    Ok(out)
}

fn path(m: u64, lo: u64, hi: u64, out: &mut Vec<Span>) {
    let n = hi - lo;
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m - lo < k {
        path(m, lo, lo + k, out);
        out.push(Span {
            begin: lo + k,
            end: hi,
        });
    } else {
        path(m, lo + k, hi, out);
        out.push(Span {
            begin: lo,
            end: lo + k,
        });
    }
}

/// The spans of the consistency proof from the tree of `from` leaves to the
/// tree of `to` leaves (RFC 9162 §2.1.4.1, PROOF), in proof order. Empty when
/// the sizes are equal.
pub fn consistency_spans(from: u64, to: u64) -> Result<Vec<Span>, ProofError> {
    if from == 0 {
        return Err(ProofError::OutOfRange(
            "a consistency proof starts from a tree of at least one leaf".into(),
        ));
    }
    if from > to {
        return Err(ProofError::OutOfRange(format!(
            "from ({from}) is larger than to ({to})"
        )));
    }
    let mut out = Vec::new();
    subproof(from, 0, to, true, &mut out);
    Ok(out)
}

/// SUBPROOF(m, D[lo:hi], b) with `m` counted from `lo`.
fn subproof(m: u64, lo: u64, hi: u64, whole: bool, out: &mut Vec<Span>) {
    let n = hi - lo;
    if m == n {
        if !whole {
            out.push(Span { begin: lo, end: hi });
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, lo, lo + k, whole, out);
        out.push(Span {
            begin: lo + k,
            end: hi,
        });
    } else {
        subproof(m - k, lo + k, hi, false, out);
        out.push(Span {
            begin: lo,
            end: lo + k,
        });
    }
}

/// Verifies an inclusion proof as RFC 9162 §2.1.3.2 describes.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::Invalid("the index is not below the tree size"));
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::Invalid("the proof is too long"));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::Invalid("the proof is too short"));
    }
    if &r != root {
        return Err(ProofError::Invalid("the root differs"));
    }
    Ok(())
}

/// Verifies a consistency proof as RFC 9162 §2.1.4.2 describes, plus the
/// trivial cases it leaves to the caller (equal sizes: an empty proof and
/// equal roots).
pub fn verify_consistency(
    from: u64,
    to: u64,
    proof: &[Hash],
    from_root: &Hash,
    to_root: &Hash,
) -> Result<(), ProofError> {
    if from > to {
        return Err(ProofError::Invalid(
            "the first tree is larger than the second",
        ));
    }
    if from == to {
        return if proof.is_empty() && from_root == to_root {
            Ok(())
        } else {
            Err(ProofError::Invalid(
                "equal sizes need an empty proof and equal roots",
            ))
        };
    }
    if from == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::Invalid("a proof from the empty tree is empty"))
        };
    }
    if proof.is_empty() {
        return Err(ProofError::Invalid("the proof is empty"));
    }
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if from.is_power_of_two() {
        path.push(from_root);
    }
    path.extend(proof);
    let (mut fn_, mut sn) = (from - 1, to - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (first, rest) = path
        .split_first()
        .ok_or(ProofError::Invalid("the proof is empty"))?;
    let (mut fr, mut sr) = (**first, **first);
    for c in rest {
        if sn == 0 {
            return Err(ProofError::Invalid("the proof is too long"));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::Invalid("the proof is too short"));
    }
    if &fr != from_root || &sr != to_root {
        return Err(ProofError::Invalid("the roots differ"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
